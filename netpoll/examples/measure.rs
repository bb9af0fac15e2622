//! Micro-measurements of the costs a worker loop cares about (numbers, not assertions).
//!
//! `cargo run -p corio-netpoll --release --example measure`
//!
//! - `wait(Some(0))` with nothing ready (the price of polling on a scheduler tick);
//! - `notify()` while the owner is awake (coalesced: no syscall) vs. raw `polling::notify`;
//! - notify -> wake latency: owner blocked in `wait(None)`, another thread notifies;
//! - readiness -> waiter latency: data written, the poll thread dispatches, a parked thread wakes.

use corio_netpoll::{ArcWake, Direction, Events, Poller, Readiness, Registration};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn pct(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize]
}

fn report(name: &str, v: &mut [u64]) {
    println!(
        "{name:<44} p50 {:>7.1} us   p99 {:>7.1} us   (n={})",
        pct(v, 0.50) as f64 / 1e3,
        pct(v, 0.99) as f64 / 1e3,
        v.len()
    );
}

fn main() -> std::io::Result<()> {
    let poller = Poller::new()?;
    let mut events = Events::new();

    // 1. Non-blocking wait with nothing ready, with 1,000 idle registrations.
    let mut keep = Vec::new();
    for _ in 0..1000 {
        let (a, b) = UnixStream::pair()?;
        a.set_nonblocking(true)?;
        keep.push((Registration::new(&poller, a)?, b));
    }
    while poller.wait(&mut events, Some(Duration::ZERO))? > 0 {} // drain initial edges
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        poller.wait(&mut events, Some(Duration::ZERO))?;
    }
    println!(
        "{:<44} {:>7.0} ns/call",
        "wait(Some(0)), nothing ready",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    drop(keep);

    // 2. notify() while the owner is awake.
    let n = 10_000_000;
    let t = Instant::now();
    for _ in 0..n {
        poller.notify()?;
    }
    println!(
        "{:<44} {:>7.1} ns/call",
        "notify(), owner awake (coalesced)",
        t.elapsed().as_nanos() as f64 / n as f64
    );
    poller.wait(&mut events, None)?; // consume it
    let raw = polling::Poller::new()?;
    let mut raw_events = polling::Events::new();
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        raw.notify()?;
        raw_events.clear();
        raw.wait(&mut raw_events, Some(Duration::ZERO))?;
    }
    println!(
        "{:<44} {:>7.0} ns/pair",
        "raw polling notify()+wait(0), nobody asleep",
        t.elapsed().as_nanos() as f64 / n as f64
    );

    // 3. notify -> wake latency.
    let base = Instant::now();
    let sent_at = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let rounds = 5_000;
    let owner = {
        let (p, s, d) = (poller.clone(), sent_at.clone(), done.clone());
        thread::spawn(move || {
            let mut ev = Events::new();
            let mut lat = Vec::with_capacity(rounds);
            while !d.load(Ordering::SeqCst) {
                p.wait(&mut ev, Some(Duration::from_secs(1))).unwrap();
                let now = base.elapsed().as_nanos() as u64;
                let sent = s.swap(0, Ordering::SeqCst);
                if sent != 0 {
                    lat.push(now - sent);
                }
            }
            lat
        })
    };
    for _ in 0..rounds {
        while !poller.is_sleeping() || sent_at.load(Ordering::SeqCst) != 0 {
            thread::yield_now();
        }
        sent_at.store(base.elapsed().as_nanos() as u64, Ordering::SeqCst);
        poller.notify()?;
    }
    while sent_at.load(Ordering::SeqCst) != 0 {
        thread::yield_now();
    }
    done.store(true, Ordering::SeqCst);
    poller.notify()?;
    let mut lat = owner.join().unwrap();
    report("notify -> blocked wait returns", &mut lat);

    // 4. Readiness -> parked waiter (poll thread dispatches, reader thread wakes).
    let (a, mut b) = UnixStream::pair()?;
    a.set_nonblocking(true)?;
    let reg = Arc::new(Registration::new(&poller, a)?);
    let stop = Arc::new(AtomicBool::new(false));
    let poll_thread = {
        let (p, s) = (poller.clone(), stop.clone());
        thread::spawn(move || {
            let mut ev = Events::new();
            while !s.load(Ordering::SeqCst) {
                p.wait(&mut ev, Some(Duration::from_secs(1))).unwrap();
            }
        })
    };
    let sent_at = Arc::new(AtomicU64::new(0));
    let reader = {
        let (r, s) = (reg.clone(), sent_at.clone());
        thread::spawn(move || {
            let me: ArcWake = Arc::new(thread::current());
            let mut lat = Vec::with_capacity(rounds);
            let mut buf = [0u8; 64];
            let mut parked = false;
            while lat.len() < rounds {
                match r.get_ref().read(&mut buf) {
                    Ok(_) => {
                        if parked {
                            lat.push(base.elapsed().as_nanos() as u64 - s.load(Ordering::SeqCst));
                        }
                        s.store(0, Ordering::SeqCst);
                        parked = false;
                        continue;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
                match r.poll_ready(Direction::Read, &me).unwrap() {
                    Readiness::Ready => {}
                    Readiness::Armed => {
                        parked = true;
                        thread::park();
                    }
                }
            }
            lat
        })
    };
    for _ in 0..rounds {
        while !reg.has_waiter(Direction::Read) || sent_at.load(Ordering::SeqCst) != 0 {
            thread::yield_now();
        }
        sent_at.store(base.elapsed().as_nanos() as u64, Ordering::SeqCst);
        b.write_all(b"x")?;
    }
    let mut lat = reader.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    poller.notify()?;
    poll_thread.join().unwrap();
    report("write -> dispatch -> parked thread runs", &mut lat);
    Ok(())
}
