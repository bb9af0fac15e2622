//! corio's side of the scheduler micro-benchmarks (issue 2, item 8), the same
//! measurements as `go/micro/main.go`, printed in the same form so
//! `run-micro.sh` can put them side by side (the binaries `micro_corio` and
//! `micro_corio_mimalloc` differ only in the global allocator and the label):
//!
//! ```text
//! corio <name> <value> <unit> n=<count>
//! ```
//!
//! `micro_corio [--workers 2] [--scale K] [--only parked,spawn_join,handoff,chan,mutex,sleep]`
//!
//! - parked_rss / parked_start: VmRSS delta per coroutine and start time for
//!   1,000,000 coroutines each parked (run first, so no pooled stack is reused).
//! - spawn_join: ns per coroutine to spawn and join 1,000,000 in batches of 1,000.
//! - handoff: one-way hand-off between two coroutines ping-ponging through a
//!   one-value slot with park/unpark (Go's side uses unbuffered channels).
//! - chan_handoff: one-way hand-off over unbuffered corio channels (ping-pong).
//! - chan_buffered_1p / _4p: ns per message, 1 or 4 producers, capacity 128.
//! - mutex: ns per lock/unlock, 1,000 coroutines x 1,000 on one corio Mutex.
//! - sleep_overhead / sleep_p99_late: 100,000 coroutines each sleeping 10 ms.

use corio::coroutine::{self, Coroutine};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The first word of every output line (set once by `run`; read on worker threads).
static LABEL: OnceLock<&'static str> = OnceLock::new();

fn report(name: &str, value: f64, unit: &str, n: usize) {
    let label = LABEL.get().copied().unwrap_or("corio");
    println!("{label} {name} {value:.3} {unit} n={n}");
}

fn rss_kib() -> i64 {
    crate::proc_rss_kib(None).expect("VmRSS") as i64
}

/// `n` coroutines parked until released.
struct ParkedSet {
    handles: Arc<Vec<OnceLock<Coroutine>>>,
    release: Arc<AtomicBool>,
    joins: Vec<corio::JoinHandle<()>>,
}

impl ParkedSet {
    /// Spawns `n` coroutines and returns once every one has started (and parks).
    fn spawn(n: usize) -> ParkedSet {
        let handles: Arc<Vec<OnceLock<Coroutine>>> = Arc::new((0..n).map(|_| OnceLock::new()).collect());
        let started = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(AtomicBool::new(false));
        let joins = (0..n)
            .map(|i| {
                let (handles, started, release) = (handles.clone(), started.clone(), release.clone());
                corio::spawn(move || {
                    handles[i].set(coroutine::current()).ok();
                    started.fetch_add(1, Ordering::Release);
                    while !release.load(Ordering::Acquire) {
                        coroutine::park();
                    }
                })
            })
            .collect();
        while started.load(Ordering::Acquire) < n {
            corio::time::sleep(Duration::from_millis(1));
        }
        ParkedSet { handles, release, joins }
    }

    fn release(self) {
        self.release.store(true, Ordering::Release);
        self.handles.iter().for_each(|h| h.get().unwrap().unpark());
        self.joins.into_iter().for_each(|j| j.join().unwrap());
    }
}

fn parked(n: usize) {
    let before = rss_kib();
    let start = Instant::now();
    let set = ParkedSet::spawn(n);
    let elapsed = start.elapsed().as_secs_f64();
    let after = rss_kib();
    report("parked_rss", (after - before) as f64 / n as f64, "KiB/coroutine", n);
    report("parked_start", elapsed, "s", n);
    set.release();
}

/// A coroutine dump of `n` parked coroutines, taken from a coroutine.
fn dump(n: usize) {
    let set = ParkedSet::spawn(n);
    let start = Instant::now();
    let dump = corio::debug::dump();
    let took = start.elapsed().as_secs_f64();
    assert!(dump.coroutines.len() >= n, "the dump lists every parked coroutine");
    report("dump", took, "s", n);
    set.release();
}

fn spawn_join(n: usize, batch: usize) {
    let run = |batches: usize| {
        for _ in 0..batches {
            let handles: Vec<_> = (0..batch).map(|_| corio::spawn(|| ())).collect();
            handles.into_iter().for_each(|h| h.join().unwrap());
        }
    };
    run(10);
    let batches = (n / batch).max(1);
    let start = Instant::now();
    run(batches);
    let ns = start.elapsed().as_nanos() as f64 / (batches * batch) as f64;
    report("spawn_join", ns, "ns/coroutine", batches * batch);
}

/// A one-value slot: `put` waits while full, `take` waits while empty.
struct Slot {
    value: AtomicU64,
    full: AtomicBool,
    waiter: parking_lot::Mutex<Option<Coroutine>>,
}

impl Slot {
    fn new() -> Arc<Slot> {
        Arc::new(Slot {
            value: AtomicU64::new(0),
            full: AtomicBool::new(false),
            waiter: parking_lot::Mutex::new(None),
        })
    }
    fn put(&self, v: u64) {
        self.value.store(v, Ordering::Relaxed);
        self.full.store(true, Ordering::Release);
        if let Some(w) = self.waiter.lock().take() {
            w.unpark();
        }
    }
    fn take(&self) -> u64 {
        self.take_waiting(None)
    }
    /// `take`, each wait with a deadline `timeout` away (armed and disarmed per wait, as a
    /// read with a timeout does).
    fn take_waiting(&self, timeout: Option<Duration>) -> u64 {
        loop {
            if self.full.swap(false, Ordering::Acquire) {
                return self.value.load(Ordering::Relaxed);
            }
            *self.waiter.lock() = Some(coroutine::current());
            if self.full.swap(false, Ordering::Acquire) {
                self.waiter.lock().take();
                return self.value.load(Ordering::Relaxed);
            }
            match timeout {
                Some(timeout) => coroutine::park_timeout(timeout),
                None => coroutine::park(),
            }
        }
    }
}

fn handoff(n: usize) {
    let ping = Slot::new();
    let pong = Slot::new();
    let (ping2, pong2) = (ping.clone(), pong.clone());
    let echo = corio::spawn(move || loop {
        let v = ping2.take();
        pong2.put(v);
        if v == u64::MAX {
            break;
        }
    });
    for i in 0..1000 {
        ping.put(i);
        pong.take();
    }
    let start = Instant::now();
    for i in 0..n as u64 {
        ping.put(i);
        assert_eq!(pong.take(), i, "handoff: wrong value");
    }
    let ns = start.elapsed().as_nanos() as f64 / (2 * n) as f64;
    ping.put(u64::MAX);
    pong.take();
    echo.join().unwrap();
    report("handoff", ns, "ns/one-way", n);
}

/// `handoff` with a deadline on every wait (a 60 s one, re-armed per wait like a read timeout),
/// while `others` coroutines sleep on timers of their own, so each worker's heap is not trivial.
fn timed_handoff(n: usize, others: usize) {
    const TIMEOUT: Duration = Duration::from_secs(60);
    let sleepers: Vec<_> = (0..others)
        .map(|i| {
            corio::spawn(move || {
                corio::time::sleep(Duration::from_secs(30) + Duration::from_millis(i as u64))
            })
        })
        .collect();
    let ping = Slot::new();
    let pong = Slot::new();
    let (ping2, pong2) = (ping.clone(), pong.clone());
    let echo = corio::spawn(move || loop {
        let v = ping2.take_waiting(Some(TIMEOUT));
        pong2.put(v);
        if v == u64::MAX {
            break;
        }
    });
    for i in 0..1000 {
        ping.put(i);
        pong.take_waiting(Some(TIMEOUT));
    }
    let start = Instant::now();
    for i in 0..n as u64 {
        ping.put(i);
        assert_eq!(pong.take_waiting(Some(TIMEOUT)), i, "timed_handoff: wrong value");
    }
    let ns = start.elapsed().as_nanos() as f64 / (2 * n) as f64;
    ping.put(u64::MAX);
    pong.take();
    echo.join().unwrap();
    for sleeper in sleepers {
        sleeper.cancel();
        assert!(sleeper.join().is_err(), "timed_handoff: a sleeper woke early");
    }
    report("timed_handoff", ns, "ns/one-way", n);
}

fn chan_handoff(n: usize) {
    let (ping_tx, ping_rx) = corio::chan::bounded::<u64>(0);
    let (pong_tx, pong_rx) = corio::chan::bounded::<u64>(0);
    let echo = corio::spawn(move || {
        for v in &ping_rx {
            pong_tx.send(v).unwrap();
        }
    });
    for i in 0..1000 {
        ping_tx.send(i).unwrap();
        pong_rx.recv().unwrap();
    }
    let start = Instant::now();
    for i in 0..n as u64 {
        ping_tx.send(i).unwrap();
        assert_eq!(pong_rx.recv().unwrap(), i, "chan_handoff: wrong value");
    }
    let ns = start.elapsed().as_nanos() as f64 / (2 * n) as f64;
    drop(ping_tx);
    echo.join().unwrap();
    report("chan_handoff", ns, "ns/one-way", n);
}

/// `producers` coroutines send `n` messages in all through a channel of
/// capacity 128 to one receiver; ns per message.
fn chan_buffered(n: usize, producers: usize) {
    let (tx, rx) = corio::chan::bounded::<u64>(128);
    let per = n / producers;
    let start = Instant::now();
    let senders: Vec<_> = (0..producers)
        .map(|_| {
            let tx = tx.clone();
            corio::spawn(move || (0..per as u64).for_each(|i| tx.send(i).unwrap()))
        })
        .collect();
    drop(tx);
    let received = rx.iter().count();
    let ns = start.elapsed().as_nanos() as f64 / received as f64;
    senders.into_iter().for_each(|s| s.join().unwrap());
    assert_eq!(received, per * producers);
    report(&format!("chan_buffered_{producers}p"), ns, "ns/msg", received);
}

/// 1,000 coroutines each lock and unlock one mutex 1,000 times.
fn mutex(coroutines: usize, iters: usize) {
    let counter = Arc::new(corio::sync::Mutex::new(0usize));
    let gate = corio::sync::WaitGroup::new();
    gate.add(1);
    let handles: Vec<_> = (0..coroutines)
        .map(|_| {
            let (counter, gate) = (counter.clone(), gate.clone());
            corio::spawn(move || {
                gate.wait();
                for _ in 0..iters {
                    *counter.lock() += 1;
                }
            })
        })
        .collect();
    corio::time::sleep(Duration::from_millis(10)); // all created and waiting
    let start = Instant::now();
    gate.done();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let ns = start.elapsed().as_nanos() as f64 / (coroutines * iters) as f64;
    assert_eq!(*counter.lock(), coroutines * iters, "mutex: lost update");
    report("mutex", ns, "ns/lock", coroutines * iters);
}

fn sleepers(n: usize, d: Duration) {
    let start = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            corio::spawn(move || {
                let s = Instant::now();
                corio::time::sleep(d);
                s.elapsed() - d
            })
        })
        .collect();
    let mut late: Vec<Duration> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let over = start.elapsed() - d;
    late.sort();
    let p99 = late[late.len() * 99 / 100];
    report("sleep_overhead", over.as_secs_f64() * 1e3, "ms", n);
    report("sleep_p99_late", p99.as_secs_f64() * 1e3, "ms", n);
}

/// Parses the command line and runs the selected measurements, printing each line with `label`.
pub fn run(label: &'static str) {
    let _ = LABEL.set(label);
    let mut workers = 2;
    let mut scale = 1;
    let mut only = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--workers" => workers = args.next().and_then(|v| v.parse().ok()).expect("--workers N"),
            "--scale" => scale = args.next().and_then(|v| v.parse().ok()).expect("--scale K"),
            "--only" => only = args.next().expect("--only names"),
            _ => panic!("usage: micro_corio [--workers N] [--scale K] [--only a,b]"),
        }
    }
    let want = move |name: &str| only.is_empty() || only.split(',').any(|n| n.trim() == name);
    let runtime = corio::Runtime::builder().workers(workers).build().expect("runtime");
    let s: usize = scale.max(1);
    runtime.block_on(move || {
        if want("parked") {
            parked(1_000_000 / s);
        }
        if want("spawn_join") {
            spawn_join(1_000_000 / s, 1_000);
        }
        if want("handoff") {
            handoff(1_000_000 / s);
        }
        if want("timed_handoff") {
            timed_handoff(1_000_000 / s, 1_000);
        }
        if want("chan") {
            chan_handoff(1_000_000 / s);
            chan_buffered(4_000_000 / s, 1);
            chan_buffered(4_000_000 / s, 4);
        }
        if want("mutex") {
            mutex((1_000 / s).max(1), 1_000);
        }
        if want("sleep") {
            sleepers(100_000 / s, Duration::from_millis(10));
        }
        if want("dump") {
            dump(100_000 / s);
        }
    });
}
