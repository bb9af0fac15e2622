//! WaitGroup, Semaphore, Barrier and OnceLock, from plain threads.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{current_tid, eventually, spawn_thread, wait_until_blocked, with_timeout};
use corio::sync::{Barrier, OnceLock, Semaphore, WaitGroup};

#[test]
fn waitgroup_waits_for_every_task() {
    with_timeout(30, || {
        let wg = WaitGroup::new();
        let finished = Arc::new(AtomicUsize::new(0));
        let tasks = 100;
        for _ in 0..tasks {
            wg.add(1);
            let (wg, finished) = (wg.clone(), Arc::clone(&finished));
            thread::spawn(move || {
                finished.fetch_add(1, Ordering::SeqCst);
                wg.done();
            });
        }
        // Several waiters at once.
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (wg, finished) = (wg.clone(), Arc::clone(&finished));
                thread::spawn(move || {
                    wg.wait();
                    finished.load(Ordering::SeqCst)
                })
            })
            .collect();
        wg.wait();
        assert_eq!(finished.load(Ordering::SeqCst), tasks);
        for w in waiters {
            assert_eq!(w.join().unwrap(), tasks);
        }
    });
}

#[test]
fn waitgroup_many_done_calls() {
    // 100,000 tasks finished from a few threads.
    with_timeout(30, || {
        let wg = WaitGroup::new();
        wg.add(100_000);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let wg = wg.clone();
                thread::spawn(move || {
                    for _ in 0..25_000 {
                        wg.done();
                    }
                })
            })
            .collect();
        wg.wait();
        assert_eq!(wg.count(), 0);
        for h in hs {
            h.join().unwrap();
        }
    });
}

#[test]
fn waitgroup_timeout_reuse_and_misuse() {
    let wg = WaitGroup::new();
    wg.wait(); // zero: returns at once
    wg.add(2);
    assert!(!wg.wait_timeout(Duration::from_millis(10)));
    wg.done();
    wg.done();
    assert!(wg.wait_timeout(Duration::from_millis(10)));
    // Reusable for a new round.
    wg.add(1);
    let w2 = wg.clone();
    let h = thread::spawn(move || w2.done());
    wg.wait();
    h.join().unwrap();
    assert_eq!(format!("{wg:?}"), "WaitGroup { count: 0 }");
    let r = std::panic::catch_unwind(|| WaitGroup::new().done());
    assert!(r.is_err(), "done() below zero panics");
}

#[test]
fn semaphore_never_exceeds_its_permits() {
    with_timeout(30, || {
        let permits = 3;
        let sem = Arc::new(Semaphore::new(permits));
        let active = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..12)
            .map(|i| {
                let (sem, active, max) = (Arc::clone(&sem), Arc::clone(&active), Arc::clone(&max));
                thread::spawn(move || {
                    for j in 0..300 {
                        let permit = if (i + j) % 3 == 0 {
                            loop {
                                if let Some(p) = sem.acquire_timeout(Duration::from_micros(100)) {
                                    break p;
                                }
                            }
                        } else {
                            sem.acquire()
                        };
                        let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(now, Ordering::SeqCst);
                        thread::yield_now();
                        active.fetch_sub(1, Ordering::SeqCst);
                        drop(permit);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let max = max.load(Ordering::SeqCst);
        assert!(max <= permits && max > 0, "max holders {max}");
        assert_eq!(sem.available_permits(), permits);
    });
}

#[test]
fn semaphore_try_timeout_forget_add() {
    with_timeout(20, || {
        let sem = Arc::new(Semaphore::new(1));
        let p = sem.try_acquire().unwrap();
        assert!(sem.try_acquire().is_none());
        assert!(sem.acquire_timeout(Duration::from_millis(10)).is_none());
        p.forget();
        assert_eq!(sem.available_permits(), 0);
        let s2 = Arc::clone(&sem);
        let (tid, h) = spawn_thread(move || {
            let _p = s2.acquire();
        });
        wait_until_blocked(tid);
        assert!(!h.is_finished(), "acquired without a permit");
        sem.add_permits(1); // handed to the parked thread
        h.join().unwrap();
        assert_eq!(sem.available_permits(), 1);
        sem.add_permits(2);
        assert_eq!(format!("{sem:?}"), "Semaphore { available_permits: 3 }");
    });
}

#[test]
fn barrier_releases_all_with_one_leader_per_round() {
    with_timeout(30, || {
        let n = 6;
        let rounds = 50;
        let barrier = Arc::new(Barrier::new(n));
        let arrived = Arc::new(AtomicUsize::new(0));
        let leaders = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let (b, arrived, leaders) =
                    (Arc::clone(&barrier), Arc::clone(&arrived), Arc::clone(&leaders));
                thread::spawn(move || {
                    for round in 1..=rounds {
                        arrived.fetch_add(1, Ordering::SeqCst);
                        if b.wait().is_leader() {
                            leaders.fetch_add(1, Ordering::SeqCst);
                        }
                        // Nobody passes before everyone of this round arrived.
                        assert!(arrived.load(Ordering::SeqCst) >= round * n);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(leaders.load(Ordering::SeqCst), rounds);
        assert!(Barrier::new(0).wait().is_leader());
    });
}

#[test]
fn oncelock_initialises_once_under_contention() {
    with_timeout(30, || {
        for _ in 0..20 {
            let cell = Arc::new(OnceLock::new());
            let runs = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let (cell, runs) = (Arc::clone(&cell), Arc::clone(&runs));
                    thread::spawn(move || {
                        *cell.get_or_init(|| {
                            runs.fetch_add(1, Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(2));
                            i
                        })
                    })
                })
                .collect();
            let vals: Vec<usize> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(runs.load(Ordering::SeqCst), 1);
            assert!(vals.iter().all(|v| *v == vals[0]));
            assert_eq!(cell.get(), Some(&vals[0]));
        }
    });
}

#[test]
fn oncelock_failed_init_lets_a_waiter_retry() {
    with_timeout(20, || {
        let cell = Arc::new(OnceLock::<u32>::new());
        let started = Arc::new(AtomicUsize::new(0));
        let c2 = Arc::clone(&cell);
        let s2 = Arc::clone(&started);
        let me = current_tid();
        let panicker = thread::spawn(move || {
            c2.get_or_init(|| {
                s2.store(1, Ordering::SeqCst);
                // Fail only once the other caller waits for this initialiser:
                // it announced its call (2), and it is blocked (in nothing else).
                eventually(|| s2.load(Ordering::SeqCst) == 2);
                wait_until_blocked(me);
                panic!("init failed");
            });
        });
        eventually(|| started.load(Ordering::SeqCst) == 1);
        started.store(2, Ordering::SeqCst);
        // Parks until the panicking initialiser gives up, then runs its own.
        assert_eq!(*cell.get_or_init(|| 7), 7);
        assert!(panicker.join().is_err());
        let r: Result<&u32, &str> = cell.get_or_try_init(|| Err("unused"));
        assert_eq!(r, Ok(&7));
        let empty = OnceLock::<u32>::new();
        assert_eq!(empty.get_or_try_init(|| Err::<u32, _>("no")), Err("no"));
        assert_eq!(empty.get(), None);
    });
}

#[test]
fn oncelock_set_take_and_reentrancy() {
    let mut cell = OnceLock::new();
    assert_eq!(cell.set(1), Ok(()));
    assert_eq!(cell.set(2), Err(2));
    assert_eq!(format!("{cell:?}"), "OnceLock(1)");
    *cell.get_mut().unwrap() += 1;
    assert_eq!(cell.clone().into_inner(), Some(2));
    assert_eq!(cell.take(), Some(2));
    assert_eq!(cell.get(), None);
    let live = Arc::new(AtomicUsize::new(0));
    {
        let c = OnceLock::new();
        let _ = c.set(common::Tracked::new(1, &live));
        assert_eq!(live.load(Ordering::SeqCst), 1);
    }
    assert_eq!(live.load(Ordering::SeqCst), 0, "value dropped with the cell");

    let cell = OnceLock::<u32>::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cell.get_or_init(|| *cell.get_or_init(|| 1) + 1);
    }));
    assert!(r.is_err(), "re-entrant initialisation panics");
    assert_eq!(*cell.get_or_init(|| 5), 5, "and leaves the cell usable");
}
