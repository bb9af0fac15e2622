//! The lazy timer heap (`sched/timer.rs`) under real coroutines: entries left disarmed in the
//! heap and re-armed earlier or later, coroutines that end or are cancelled with entries still
//! there, and shutdowns with armed and disarmed entries and timed waits in destructors. A lost
//! timer shows as a hang (the watchdog), a stale slot or a double borrow as a panic or abort.
//! (Written by a review of the change.)
mod common;

use common::with_timeout;
use corio::coroutine::{self, Coroutine};
use corio::Runtime;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

/// Each coroutine alternates: a timed park cut short by a peer's unpark (leaves
/// a disarmed entry), then a sleep for a random deadline that may be earlier
/// or later than that entry (re-arm earlier / lazily later). Every sleep lasts
/// at least its duration; a lost timer hangs (caught by the watchdog).
#[test]
fn rearmed_timers_fire_never_early_never_lost() {
    with_timeout(120, || {
        let rt = Runtime::builder().workers(2).build().unwrap();
        rt.block_on(move || {
            let mut handles = Vec::new();
            for seed in 0..64u64 {
                handles.push(corio::spawn(move || {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                    let me = coroutine::current();
                    for _ in 0..100 {
                        // A long timed park, cut short by a peer after ~0-1 ms.
                        let long = Duration::from_millis(rng.gen_range(2..40));
                        let waker: Coroutine = me.clone();
                        let delay = Duration::from_micros(rng.gen_range(0..1000));
                        let peer = corio::spawn(move || {
                            corio::time::sleep(delay);
                            waker.unpark();
                        });
                        coroutine::park_timeout(long);
                        // Now a sleep: earlier or later than the disarmed entry.
                        let d = Duration::from_micros(rng.gen_range(0..30_000));
                        let start = Instant::now();
                        corio::time::sleep(d);
                        let took = start.elapsed();
                        assert!(took >= d, "slept {took:?} < {d:?}");
                        peer.join().unwrap();
                    }
                }));
            }
            for h in handles {
                h.join().unwrap();
            }
        });
    });
}

/// Coroutines end while their (disarmed or armed) entries are still in the
/// heap; then the runtime shuts down with coroutines parked on armed timers
/// and with disarmed entries, some ending during the shutdown. Nothing may
/// abort or panic (debug assertions on).
#[test]
fn entries_outlive_coroutines_and_shutdown() {
    with_timeout(60, || {
        for round in 0..20 {
            let rt = Runtime::builder().workers(2).build().unwrap();
            rt.block_on(move || {
                // Short-lived coroutines leaving disarmed entries behind.
                let hs: Vec<_> = (0..200)
                    .map(|i| {
                        corio::spawn(move || {
                            let me = coroutine::current();
                            me.unpark();
                            coroutine::park_timeout(Duration::from_secs(60 + i));
                            // Park with a token consumed at begin_park at most.
                            let other = coroutine::current();
                            let t = corio::spawn(move || other.unpark());
                            coroutine::park_timeout(Duration::from_secs(30));
                            t.join().unwrap();
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
                // Left parked at shutdown: armed (sleeping), disarmed then parked forever.
                for i in 0..100 {
                    std::mem::drop(corio::spawn(move || {
                        if i % 2 == 0 {
                            corio::time::sleep(Duration::from_secs(3600));
                        } else {
                            let me = coroutine::current();
                            me.unpark();
                            coroutine::park_timeout(Duration::from_secs(3600));
                            loop {
                                coroutine::park();
                            }
                        }
                    }));
                }
                corio::time::sleep(Duration::from_millis(5 + round % 3));
            });
            drop(rt);
        }
    });
}

/// Timed waits in a destructor.
struct WaitOnDrop;

impl Drop for WaitOnDrop {
    fn drop(&mut self) {
        // Timed waits inside a destructor run by the shutdown (or cancel) unwind.
        coroutine::park_timeout(Duration::from_secs(3600));
        corio::time::sleep(Duration::from_secs(3600));
        let (_tx, rx) = corio::chan::bounded::<u8>(1);
        let _ = rx.recv_timeout(Duration::from_secs(3600));
    }
}

/// Cancelled coroutines (armed and disarmed entries) end through the root and
/// forget their entries; at shutdown, destructors that wait with deadlines
/// and coroutines that catch the unwind and park again with a deadline.
#[test]
fn cancel_and_unwind_paths() {
    with_timeout(60, || {
        for _ in 0..10 {
            let rt = Runtime::builder().workers(2).build().unwrap();
            rt.block_on(|| {
                let hs: Vec<_> = (0..100)
                    .map(|i| {
                        corio::spawn(move || {
                            let _g = WaitOnDrop;
                            if i % 2 == 0 {
                                let me = coroutine::current();
                                me.unpark();
                                coroutine::park_timeout(Duration::from_secs(100));
                            }
                            corio::time::sleep(Duration::from_secs(3600));
                        })
                    })
                    .collect();
                corio::time::sleep(Duration::from_millis(5));
                for h in &hs {
                    h.cancel();
                }
                for h in hs {
                    assert!(h.join().is_err());
                }
                for i in 0..50 {
                    std::mem::drop(corio::spawn(move || {
                        let _g = WaitOnDrop;
                        if i % 3 == 0 {
                            let _ =
                                std::panic::catch_unwind(|| corio::time::sleep(Duration::from_secs(3600)));
                            // Caught the shutdown unwind: parks again with a deadline.
                            corio::time::sleep(Duration::from_secs(3600));
                        } else {
                            corio::time::sleep(Duration::from_secs(3600));
                        }
                    }));
                }
                corio::time::sleep(Duration::from_millis(5));
            });
            drop(rt);
        }
    });
}

/// `park_timeout(ZERO)` never waits and consumes a pending token (as std's); a deadline that
/// has passed by the time the coroutine parks (1 ns) is fired by the worker's next timer check,
/// even while another coroutine keeps the worker busy; an I/O wait with such a deadline fails
/// with `TimedOut` instead of waiting for data.
#[test]
fn deadlines_already_past_end_the_wait() {
    with_timeout(60, || {
        let rt = Runtime::builder().workers(1).build().unwrap();
        rt.block_on(|| {
            let me = coroutine::current();
            me.unpark();
            coroutine::park_timeout(Duration::ZERO); // takes the token
            coroutine::park_timeout(Duration::ZERO); // nothing to take: returns
            let start = Instant::now();
            coroutine::park_timeout(Duration::from_millis(20));
            assert!(start.elapsed() >= Duration::from_millis(20), "a token was left by park_timeout(ZERO)");

            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let busy = {
                let stop = stop.clone();
                corio::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        coroutine::yield_now();
                    }
                })
            };
            for _ in 0..1000 {
                coroutine::park_timeout(Duration::from_nanos(1));
                corio::time::sleep(Duration::from_nanos(1));
            }
            let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let _client = corio::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            server.set_read_timeout(Some(Duration::from_nanos(1))).unwrap();
            for _ in 0..100 {
                let err = std::io::Read::read(&mut server, &mut [0u8; 8]).unwrap_err();
                assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            busy.join().unwrap();
        });
    });
}
