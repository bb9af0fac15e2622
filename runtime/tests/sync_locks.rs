//! Mutex, RwLock and Condvar, from plain threads (what the shim provides).

mod common;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{eventually, spawn_coroutine, wait_until_parked, with_timeout};
use corio::sync::{Condvar, Mutex, RwLock};
use corio::WaitReason;

#[test]
fn mutex_counter_under_contention() {
    with_timeout(30, || {
        let threads = 16;
        let per = 5_000;
        let m = Arc::new(Mutex::new(0usize));
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                let m = Arc::clone(&m);
                thread::spawn(move || {
                    for _ in 0..per {
                        // A read-modify-write that would lose updates without
                        // mutual exclusion.
                        let mut g = m.lock();
                        let v = *g;
                        std::hint::black_box(&mut *g);
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock(), threads * per);
        assert!(!m.is_locked());
    });
}

#[test]
fn mutex_basics() {
    let m = Mutex::new(vec![1]);
    {
        let g = m.lock();
        assert!(m.is_locked());
        assert!(m.try_lock().is_none());
        assert_eq!(format!("{m:?}"), r#"Mutex { data: "<locked>" }"#);
        drop(g);
    }
    m.try_lock().unwrap().push(2);
    assert_eq!(format!("{m:?}"), "Mutex { data: [1, 2] }");
    let mut m = m;
    m.get_mut().push(3);
    assert_eq!(m.into_inner(), [1, 2, 3]);
    assert_eq!(*Mutex::<u8>::default().lock(), 0);
    static GLOBAL: Mutex<u32> = Mutex::new(5);
    *GLOBAL.lock() += 1;
    assert_eq!(*GLOBAL.lock(), 6);
}

#[test]
fn mutex_is_not_poisoned_by_a_panic() {
    let m = Arc::new(Mutex::new(1));
    let m2 = Arc::clone(&m);
    let r = thread::spawn(move || {
        let _g = m2.lock();
        panic!("boom");
    })
    .join();
    assert!(r.is_err());
    assert_eq!(*m.lock(), 1);
}

#[test]
fn mutex_waiter_is_not_starved() {
    // Two threads hammer the mutex; a third must still get it (the 1 ms
    // hand-off guarantees progress). Bounded by the timeout only.
    with_timeout(30, || {
        let m = Arc::new(Mutex::new(0u64));
        let stop = Arc::new(AtomicBool::new(false));
        let hammering = Arc::new(AtomicUsize::new(0));
        let hammers: Vec<_> = (0..2)
            .map(|_| {
                let (m, stop, hammering) = (Arc::clone(&m), Arc::clone(&stop), Arc::clone(&hammering));
                thread::spawn(move || {
                    hammering.fetch_add(1, Ordering::SeqCst);
                    while !stop.load(Ordering::Relaxed) {
                        let mut g = m.lock();
                        *g += 1;
                        // Hold it a little so the lock is almost always taken.
                        let t = Instant::now();
                        while t.elapsed() < Duration::from_micros(50) {
                            std::hint::spin_loop();
                        }
                    }
                })
            })
            .collect();
        // Both hammers are in their loop and have taken the mutex a few times.
        eventually(|| hammering.load(Ordering::SeqCst) == 2 && *m.lock() >= 20);
        for _ in 0..50 {
            let g = m.lock();
            drop(g);
        }
        stop.store(true, Ordering::Relaxed);
        for h in hammers {
            h.join().unwrap();
        }
    });
}

#[test]
fn a_waiter_queued_past_1ms_is_handed_the_mutex_before_a_relocking_barger() {
    // Go's starvation mode, on one worker: the barger B holds the mutex while
    // the waiter W queues, then unlocks and re-locks in a tight loop that
    // never yields. Each re-lock would find the mutex free (barging) unless
    // the unlock handed it to W, which has waited > 1 ms: then B's next lock
    // parks and W, the only other coroutine, runs and owns the mutex.
    // Without the hand-off, W only runs once B has done all its iterations.
    const ITERATIONS: usize = 100_000;
    with_timeout(30, || {
        let rt = corio::Runtime::builder().workers(1).build().unwrap();
        let m = Arc::new(Mutex::new(()));
        let iteration = Arc::new(AtomicUsize::new(0));
        let waiter_done = Arc::new(AtomicBool::new(false));
        let (m2, i2, done2) = (Arc::clone(&m), Arc::clone(&iteration), Arc::clone(&waiter_done));
        let (barger, b) = spawn_coroutine(&rt, move || {
            let mut guard = m2.lock();
            corio::coroutine::park(); // until W has queued for over 1 ms
            for i in 1..=ITERATIONS {
                i2.store(i, Ordering::SeqCst);
                drop(guard);
                guard = m2.lock();
                if done2.load(Ordering::SeqCst) {
                    break;
                }
            }
        });
        wait_until_parked(&barger, WaitReason::Park);
        let (m2, i2, done2) = (Arc::clone(&m), Arc::clone(&iteration), Arc::clone(&waiter_done));
        let (waiter, w) = spawn_coroutine(&rt, move || {
            let _guard = m2.lock();
            done2.store(true, Ordering::SeqCst);
            i2.load(Ordering::SeqCst) // the barger's iteration when W got the mutex
        });
        wait_until_parked(&waiter, WaitReason::Sync);
        let queued = Instant::now();
        while queued.elapsed() < Duration::from_millis(3) {
            thread::yield_now();
        }
        barger.unpark();
        let seen = w.join().unwrap();
        b.join().unwrap();
        assert!(seen < 10, "the starving waiter got the mutex after {seen} of the barger's re-locks");
    });
}

#[test]
fn mutex_guard_can_move_between_threads() {
    // A coroutine holding a guard may resume on another worker.
    let m = Arc::new(Mutex::new(1));
    let g = m.lock();
    let h = thread::scope(|s| s.spawn(move || *g + 1).join().unwrap());
    assert_eq!(h, 2);
    assert!(!m.is_locked());
}

#[test]
fn rwlock_readers_share_writers_exclude() {
    with_timeout(30, || {
        let l = Arc::new(RwLock::new((0u64, 0u64)));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (l, stop) = (Arc::clone(&l), Arc::clone(&stop));
                thread::spawn(move || {
                    let mut reads = 0u64;
                    while !stop.load(Ordering::Relaxed) || reads == 0 {
                        let g = l.read();
                        assert_eq!(g.0, g.1, "torn write observed");
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let writers: Vec<_> = (0..3)
            .map(|_| {
                let l = Arc::clone(&l);
                thread::spawn(move || {
                    for _ in 0..2000 {
                        let mut g = l.write();
                        g.0 += 1;
                        std::hint::black_box(&mut *g);
                        g.1 += 1;
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        assert_eq!(*l.read(), (6000, 6000));
    });
}

#[test]
fn rwlock_try_and_queueing() {
    with_timeout(20, || {
        let l = Arc::new(RwLock::new(1));
        let r1 = l.read();
        let r2 = l.try_read().unwrap();
        assert!(l.try_write().is_none());
        // A writer queues behind the readers ...
        let l2 = Arc::clone(&l);
        let w = thread::spawn(move || {
            *l2.write() += 1;
        });
        // ... and once it is queued, new readers wait behind it (fairness).
        eventually(|| l.try_read().is_none());
        drop((r1, r2));
        w.join().unwrap();
        assert_eq!(*l.read(), 2);
        let mut l = Arc::try_unwrap(l).unwrap();
        *l.get_mut() += 1;
        assert_eq!(format!("{l:?}"), "RwLock { data: 3 }");
        assert_eq!(l.into_inner(), 3);
    });
}

#[test]
fn rwlock_writer_not_starved_by_readers() {
    with_timeout(30, || {
        let l = Arc::new(RwLock::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (l, stop) = (Arc::clone(&l), Arc::clone(&stop));
                thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _g = l.read();
                        thread::yield_now();
                    }
                })
            })
            .collect();
        for _ in 0..100 {
            *l.write() += 1;
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(*l.read(), 100);
    });
}

#[test]
fn condvar_producer_consumer() {
    with_timeout(30, || {
        struct Queue {
            items: Mutex<VecDeque<u64>>,
            not_empty: Condvar,
            not_full: Condvar,
        }
        let q = Arc::new(Queue {
            items: Mutex::new(VecDeque::new()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        });
        let cap = 4;
        let producers = 3;
        let per = 2000u64;
        let ps: Vec<_> = (0..producers)
            .map(|p| {
                let q = Arc::clone(&q);
                thread::spawn(move || {
                    for i in 0..per {
                        let mut g = q.items.lock();
                        q.not_full.wait_while(&mut g, |items| items.len() >= cap);
                        g.push_back(p * per + i);
                        drop(g);
                        q.not_empty.notify_one();
                    }
                })
            })
            .collect();
        let total = producers * per;
        let taken = Arc::new(AtomicUsize::new(0));
        let cs: Vec<_> = (0..2)
            .map(|_| {
                let (q, taken) = (Arc::clone(&q), Arc::clone(&taken));
                thread::spawn(move || {
                    let mut sum = 0u64;
                    loop {
                        let mut g = q.items.lock();
                        while g.is_empty() {
                            if taken.load(Ordering::SeqCst) as u64 >= total {
                                return sum;
                            }
                            q.not_empty.wait_timeout(&mut g, Duration::from_millis(5));
                        }
                        sum += g.pop_front().unwrap();
                        taken.fetch_add(1, Ordering::SeqCst);
                        drop(g);
                        q.not_full.notify_one();
                    }
                })
            })
            .collect();
        for p in ps {
            p.join().unwrap();
        }
        let sum: u64 = cs.into_iter().map(|c| c.join().unwrap()).sum();
        assert_eq!(sum, total * (total - 1) / 2);
    });
}

#[test]
fn condvar_timeout_and_notify_all() {
    with_timeout(20, || {
        let m = Arc::new(Mutex::new(0));
        let cv = Arc::new(Condvar::new());
        let mut g = m.lock();
        let start = Instant::now();
        let r = cv.wait_timeout(&mut g, Duration::from_millis(20));
        assert!(r.timed_out());
        assert!(start.elapsed() >= Duration::from_millis(20));
        let r = cv.wait_timeout_while(&mut g, Duration::from_millis(5), |v| *v == 0);
        assert!(r.timed_out());
        drop(g);
        assert!(!cv.notify_one(), "the timed-out waiter was withdrawn");

        let waiting = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let (m, cv, waiting) = (Arc::clone(&m), Arc::clone(&cv), Arc::clone(&waiting));
                thread::spawn(move || {
                    let mut g = m.lock();
                    waiting.fetch_add(1, Ordering::SeqCst);
                    cv.wait_while(&mut g, |go| *go == 0);
                    *g += 1;
                })
            })
            .collect();
        eventually(|| waiting.load(Ordering::SeqCst) == 4);
        *m.lock() = 1;
        // All four are queued once they have released the mutex.
        let _ = m.lock();
        assert_eq!(cv.notify_all(), 4);
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*m.lock(), 5);
    });
}
