//! Readiness, waiting, closing and stale-key behaviour, driven by plain threads over loopback.

mod common;

use common::*;
use corio_netpoll::{is_closed, Direction, Events, PollError, Poller, Readiness, Registration};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const FIVE_S: Option<Duration> = Some(Duration::from_secs(5));

#[test]
fn readiness_before_wait_is_remembered() {
    let poller = Poller::new().unwrap();
    let (reg, mut peer) = pair(&poller);
    let (count, w) = counting_waker();
    // A fresh socket is writable: the edge is reported once after add.
    let mut events = Events::new();
    assert!(poller.wait(&mut events, FIVE_S).unwrap() >= 1);
    assert!(reg.is_ready(Direction::Write));
    assert!(!reg.is_ready(Direction::Read));

    peer.write_all(b"x").unwrap();
    assert_eq!(poller.wait(&mut events, FIVE_S).unwrap(), 1);
    // Nobody was waiting; the readiness is kept as Ready and consumed once.
    assert!(reg.is_ready(Direction::Read));
    assert_eq!(reg.poll_ready(Direction::Read, &w), Ok(Readiness::Ready));
    assert_eq!(reg.poll_ready(Direction::Read, &w), Ok(Readiness::Armed));
    assert_eq!(count.load(Ordering::SeqCst), 0);
    assert!(reg.cancel(Direction::Read, &w));
    let mut buf = [0u8; 4];
    assert_eq!(reg.get_ref().read(&mut buf).unwrap(), 1);
}

#[test]
fn waiter_is_woken_on_data() {
    bounded(LIMIT, || {
        let poller = Poller::new().unwrap();
        let (reg, mut peer) = pair(&poller);
        let reg = Arc::new(reg);
        let pt = PollThread::start(&poller);
        let r2 = reg.clone();
        let reader = thread::spawn(move || {
            let w = thread_waker();
            let mut buf = [0u8; 16];
            let n = read_blocking(&r2, &mut buf, &w, Instant::now() + LIMIT).unwrap();
            buf[..n].to_vec()
        });
        // Wait until the reader has armed, so the wake really goes through the slot.
        while !reg.has_waiter(Direction::Read) {
            thread::yield_now();
        }
        peer.write_all(b"hello").unwrap();
        assert_eq!(reader.join().unwrap(), b"hello");
        pt.stop();
    });
}

/// Ping-pong over TCP loopback: each side parks after EAGAIN while the other's data is in
/// flight, so readiness keeps landing between the EAGAIN and the park. Any lost edge hangs.
#[test]
fn edge_triggered_ping_pong_loses_no_events() {
    bounded(LIMIT, || {
        let poller = Poller::new().unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        for x in [&c, &s] {
            x.set_nonblocking(true).unwrap();
            x.set_nodelay(true).unwrap();
        }
        let rc = Arc::new(Registration::new(&poller, c).unwrap());
        let rs = Arc::new(Registration::new(&poller, s).unwrap());
        let pt = PollThread::start(&poller);
        const ROUNDS: usize = 2000;
        let echo = thread::spawn(move || {
            let w = thread_waker();
            let dl = Instant::now() + LIMIT;
            let mut buf = [0u8; 64];
            loop {
                let n = wait_io(&rs, Direction::Read, &w, dl, |mut s| s.read(&mut buf)).unwrap();
                if n == 0 {
                    return;
                }
                let mut out = &buf[..n];
                while !out.is_empty() {
                    let k = wait_io(&rs, Direction::Write, &w, dl, |mut s| s.write(out)).unwrap();
                    out = &out[k..];
                }
            }
        });
        let w = thread_waker();
        let dl = Instant::now() + LIMIT;
        for i in 0..ROUNDS {
            let msg = (i as u32).to_le_bytes();
            wait_io(&rc, Direction::Write, &w, dl, |mut s| s.write_all(&msg)).unwrap();
            let mut got = [0u8; 4];
            let mut have = 0;
            while have < 4 {
                have += wait_io(&rc, Direction::Read, &w, dl, |mut s| s.read(&mut got[have..])).unwrap();
            }
            assert_eq!(got, msg);
        }
        rc.get_ref().shutdown(std::net::Shutdown::Write).unwrap();
        echo.join().unwrap();
        pt.stop();
    });
}

/// Data arriving in many bursts between waits, a reader consuming in small pieces.
#[test]
fn edge_triggered_stream_loses_no_bytes() {
    bounded(LIMIT, || {
        let poller = Poller::new().unwrap();
        let (reg, mut peer) = pair(&poller);
        let pt = PollThread::start(&poller);
        const TOTAL: usize = 1 << 20;
        let writer = thread::spawn(move || {
            let mut sent = 0usize;
            let mut i = 0u8;
            while sent < TOTAL {
                let len = (1 + (i as usize * 37) % 500).min(TOTAL - sent);
                let chunk: Vec<u8> = (0..len).map(|k| (sent + k) as u8).collect();
                peer.write_all(&chunk).unwrap();
                sent += len;
                i = i.wrapping_add(1);
            }
        });
        let w = thread_waker();
        let dl = Instant::now() + LIMIT;
        let mut got = 0usize;
        let mut buf = [0u8; 97];
        while got < TOTAL {
            let n = read_blocking(&reg, &mut buf, &w, dl).unwrap();
            assert!(n > 0, "early EOF");
            for (k, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, (got + k) as u8);
            }
            got += n;
        }
        writer.join().unwrap();
        pt.stop();
    });
}

/// Events fetched for fd N (key k1), then N closed and reused by a new registration in the
/// same slab index: dispatching the old batch must not touch the new owner.
#[test]
fn stale_event_for_reused_fd_is_dropped() {
    let poller = Poller::new().unwrap();
    let mut events = Events::new();
    let (old, mut old_peer) = pair(&poller);
    poller.wait(&mut events, FIVE_S).unwrap(); // initial writable edge
    old_peer.write_all(b"for the old owner").unwrap();
    poller.wait_raw(&mut events, FIVE_S).unwrap();
    let old_key = old.key();
    assert!(events.iter().any(|e| e.key == old_key && e.readable));
    let old_fd = old.get_ref().as_raw_fd();
    drop(old); // deregister + close
    drop(old_peer);

    let (a, b) = UnixStream::pair().unwrap();
    let (a, _b) = if a.as_raw_fd() == old_fd { (a, b) } else { (b, a) };
    assert_eq!(a.as_raw_fd(), old_fd, "fd number was reused");
    a.set_nonblocking(true).unwrap();
    let new = Registration::new(&poller, a).unwrap();
    assert_ne!(new.key(), old_key);
    let (count, w) = counting_waker();
    assert_eq!(new.poll_ready(Direction::Read, &w), Ok(Readiness::Armed));

    assert_eq!(poller.dispatch(&events, |_| panic!("stale event delivered")), 0);
    assert_eq!(count.load(Ordering::SeqCst), 0, "stray wake-up for the new owner");
    assert!(new.has_waiter(Direction::Read));
    assert!(!new.is_ready(Direction::Read));
}

#[test]
fn close_wakes_waiters_with_error() {
    bounded(LIMIT, || {
        let poller = Poller::new().unwrap();
        let (reg, _peer) = pair(&poller);
        let reg = Arc::new(reg);
        let r2 = reg.clone();
        let reader = thread::spawn(move || {
            let w = thread_waker();
            let mut buf = [0u8; 8];
            read_blocking(&r2, &mut buf, &w, Instant::now() + LIMIT)
        });
        while !reg.has_waiter(Direction::Read) {
            thread::yield_now();
        }
        assert_eq!(poller.registrations(), 1);
        reg.close().unwrap();
        reg.close().unwrap(); // idempotent
        assert_eq!(poller.registrations(), 0);
        let err = reader.join().unwrap().unwrap_err();
        assert!(is_closed(&err));
        assert_eq!(err.kind(), io::ErrorKind::NotConnected);
    });
}

#[test]
fn drop_wakes_both_waiters_once() {
    let poller = Poller::new().unwrap();
    let (reg, _peer) = pair(&poller);
    let (cr, wr) = counting_waker();
    let (cw, ww) = counting_waker();
    let mut events = Events::new();
    poller.wait(&mut events, FIVE_S).unwrap();
    assert_eq!(reg.poll_ready(Direction::Write, &ww), Ok(Readiness::Ready));
    assert_eq!(reg.poll_ready(Direction::Write, &ww), Ok(Readiness::Armed));
    assert_eq!(reg.poll_ready(Direction::Read, &wr), Ok(Readiness::Armed));
    drop(reg);
    assert_eq!(cr.load(Ordering::SeqCst), 1);
    assert_eq!(cw.load(Ordering::SeqCst), 1);
    assert_eq!(poller.registrations(), 0);
}

#[test]
fn into_inner_deregisters_and_returns_io() {
    let poller = Poller::new().unwrap();
    let (reg, mut peer) = pair(&poller);
    let key = reg.key();
    let mut s = reg.into_inner().unwrap();
    assert_eq!(poller.registrations(), 0);
    peer.write_all(b"z").unwrap();
    let mut events = Events::new();
    poller.wait_raw(&mut events, Some(Duration::from_millis(50))).unwrap();
    assert!(events.iter().all(|e| e.key != key), "deleted from epoll");
    let mut b = [0u8; 1];
    assert_eq!(s.read(&mut b).unwrap(), 1);
}

#[test]
fn double_wait_is_busy_and_cancel_removes_waker() {
    let poller = Poller::new().unwrap();
    let (reg, mut peer) = pair(&poller);
    let (c1, w1) = counting_waker();
    let (c2, w2) = counting_waker();
    assert_eq!(reg.poll_ready(Direction::Read, &w1), Ok(Readiness::Armed));
    assert_eq!(reg.poll_ready(Direction::Read, &w2), Err(PollError::Busy));
    let e: io::Error = PollError::Busy.into();
    assert!(!is_closed(&e));
    // A timed-out waiter cancels; later data does not wake it, and stays remembered.
    assert!(reg.cancel(Direction::Read, &w1));
    peer.write_all(b"late").unwrap();
    let mut events = Events::new();
    poller.wait(&mut events, FIVE_S).unwrap();
    assert_eq!(c1.load(Ordering::SeqCst), 0);
    assert_eq!(reg.poll_ready(Direction::Read, &w2), Ok(Readiness::Ready));
    assert_eq!(c2.load(Ordering::SeqCst), 0);
    assert_eq!(reg.take_ready(Direction::Read), Ok(false));
}

#[test]
fn callback_style_tokens() {
    let poller = Poller::new().unwrap();
    let mut regs = Vec::new();
    let mut peers = Vec::new();
    for t in 0..4usize {
        let (a, b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        regs.push(Registration::with_token(&poller, a, 100 + t).unwrap());
        peers.push(b);
    }
    let mut events = Events::new();
    let mut seen = Vec::new();
    // Initial writable edges for all four.
    while seen.len() < 4 {
        poller.wait_with(&mut events, FIVE_S, |e| seen.push(e)).unwrap();
    }
    seen.clear();
    peers[2].write_all(b"!").unwrap();
    poller.wait_with(&mut events, FIVE_S, |e| seen.push(e)).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].token, 102);
    assert!(seen[0].readable);
    assert_eq!(regs[2].token(), 102);
}
