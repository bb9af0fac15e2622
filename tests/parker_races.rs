//! Races of the park/unpark protocol, hammered: lost wake-ups, double resumes,
//! a started coroutine changing thread. Bugs here show up as a hang (caught by
//! a watchdog with a clear message), a failed assertion in the worker (the
//! runtime asserts a queued coroutine is never found parked), or a coroutine
//! observing a different OS thread after a park.

mod common;

use common::within;
use corio::coroutine::{self, Coroutine};
use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Joins a plain thread from a coroutine without blocking the worker thread
/// (`std::thread::JoinHandle::join` would stall every coroutine of the worker).
fn join_thread<T>(handle: std::thread::JoinHandle<T>) -> T {
    while !handle.is_finished() {
        corio::time::sleep(Duration::from_millis(1));
    }
    handle.join().unwrap()
}

/// A counting semaphore on park/unpark: the simplest primitive that loses
/// a wake-up if the parker does.
struct Permits {
    count: AtomicUsize,
    owner: parking_lot::Mutex<Option<Coroutine>>,
    published: AtomicBool,
}

impl Permits {
    fn new() -> Arc<Permits> {
        Arc::new(Permits {
            count: AtomicUsize::new(0),
            owner: parking_lot::Mutex::new(None),
            published: AtomicBool::new(false),
        })
    }
    fn publish_owner(&self) {
        *self.owner.lock() = Some(coroutine::current());
        self.published.store(true, Ordering::Release);
    }
    fn give(&self) {
        while !self.published.load(Ordering::Acquire) {
            coroutine::yield_now();
        }
        self.count.fetch_add(1, Ordering::SeqCst);
        self.owner.lock().as_ref().unwrap().unpark();
    }
    fn take(&self) {
        loop {
            let n = self.count.load(Ordering::SeqCst);
            if n > 0 && self.count.compare_exchange(n, n - 1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                return;
            }
            coroutine::park();
        }
    }
}

#[derive(Debug, Clone)]
enum GiverStep {
    Give(usize),
    Yield,
    Sleep(u64),
    SpawnAndJoin,
}

fn giver_step(takers: usize) -> impl Strategy<Value = GiverStep> {
    prop_oneof![
        4 => (0..takers).prop_map(GiverStep::Give),
        1 => Just(GiverStep::Yield),
        1 => (0u64..3).prop_map(GiverStep::Sleep),
        1 => Just(GiverStep::SpawnAndJoin),
    ]
}

#[derive(Debug, Clone)]
struct Schedule {
    workers: usize,
    takers: usize,
    /// Each giver's steps; a giver is a coroutine or, if `plain_thread`, an OS thread.
    givers: Vec<(bool, Vec<GiverStep>)>,
    taker_yields: bool,
}

fn schedule() -> impl Strategy<Value = Schedule> {
    (1usize..=4, 1usize..=8).prop_flat_map(|(workers, takers)| {
        let giver = (any::<bool>(), proptest::collection::vec(giver_step(takers), 1..30));
        (proptest::collection::vec(giver, 1..6), any::<bool>())
            .prop_map(move |(givers, taker_yields)| Schedule { workers, takers, givers, taker_yields })
    })
}

fn run_schedule(s: Schedule) {
    let permits: Vec<Arc<Permits>> = (0..s.takers).map(|_| Permits::new()).collect();
    let mut owed = vec![0usize; s.takers];
    for (_, steps) in &s.givers {
        for step in steps {
            if let GiverStep::Give(t) = step {
                owed[*t] += 1;
            }
        }
    }
    let what = format!("{s:?}");
    within(s.workers, Duration::from_secs(20), &what, move || {
        let takers: Vec<_> = permits
            .iter()
            .zip(owed)
            .map(|(p, owed)| {
                let p = p.clone();
                let yields = s.taker_yields;
                corio::spawn(move || {
                    p.publish_owner();
                    let thread = std::thread::current().id();
                    for _ in 0..owed {
                        p.take();
                        if yields {
                            coroutine::yield_now();
                        }
                        assert_eq!(std::thread::current().id(), thread, "a started coroutine changed thread");
                    }
                })
            })
            .collect();
        let mut threads = Vec::new();
        let mut givers = Vec::new();
        for (plain_thread, steps) in s.givers {
            let permits = permits.clone();
            let body = move || {
                for step in steps {
                    match step {
                        GiverStep::Give(t) => permits[t].give(),
                        GiverStep::Yield => coroutine::yield_now(),
                        GiverStep::Sleep(ms) => corio::time::sleep(Duration::from_millis(ms)),
                        GiverStep::SpawnAndJoin => {
                            if !plain_thread {
                                corio::spawn(coroutine::yield_now).join().unwrap();
                            }
                        }
                    }
                }
            };
            if plain_thread {
                threads.push(std::thread::spawn(body));
            } else {
                givers.push(corio::spawn(body));
            }
        }
        for t in takers {
            t.join().unwrap();
        }
        for g in givers {
            g.join().unwrap();
        }
        for t in threads {
            join_thread(t);
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn random_schedules_lose_no_wakeup_and_never_migrate(s in schedule()) {
        run_schedule(s);
    }
}

#[test]
fn ping_pong_between_coroutines_across_workers_repeated() {
    for round in 0..20 {
        within(2, Duration::from_secs(20), "ping-pong", move || {
            let a = Permits::new();
            let b = Permits::new();
            let (a2, b2) = (a.clone(), b.clone());
            let ponger = corio::spawn(move || {
                b2.publish_owner();
                for _ in 0..5_000 {
                    b2.take();
                    a2.give();
                }
            });
            a.publish_owner();
            for _ in 0..5_000 {
                b.give();
                a.take();
            }
            ponger.join().unwrap();
            round
        });
    }
}

#[test]
fn wakeups_from_plain_threads_reach_parked_coroutines() {
    within(2, Duration::from_secs(20), "plain-thread wake-ups", || {
        let permits: Vec<_> = (0..200).map(|_| Permits::new()).collect();
        let takers: Vec<_> = permits
            .iter()
            .map(|p| {
                let p = p.clone();
                corio::spawn(move || {
                    p.publish_owner();
                    for _ in 0..50 {
                        p.take();
                    }
                })
            })
            .collect();
        let threads: Vec<_> = (0..4)
            .map(|k| {
                let permits = permits.clone();
                std::thread::spawn(move || {
                    for round in 0..50 {
                        for (i, p) in permits.iter().enumerate() {
                            if (i + round) % 4 == k {
                                p.give();
                            }
                        }
                    }
                })
            })
            .collect();
        // Each taker gets exactly 50 gives: one per round from the thread
        // whose turn it is.
        for t in threads {
            join_thread(t);
        }
        for t in takers {
            t.join().unwrap();
        }
    });
}

#[test]
fn park_timeout_returns_without_an_unpark() {
    within(2, Duration::from_secs(10), "park_timeout", || {
        let start = std::time::Instant::now();
        coroutine::park_timeout(Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(20));
    });
}

#[test]
fn an_unpark_before_park_is_remembered() {
    within(1, Duration::from_secs(10), "token before park", || {
        coroutine::current().unpark();
        coroutine::park(); // must return at once: the token is there
    });
}

#[test]
fn many_coroutines_parked_and_woken_in_random_order_by_many_wakers() {
    use rand::seq::SliceRandom;
    for _ in 0..5 {
        within(4, Duration::from_secs(30), "random-order wakes", || {
            let permits: Vec<_> = (0..2_000).map(|_| Permits::new()).collect();
            let takers: Vec<_> = permits
                .iter()
                .map(|p| {
                    let p = p.clone();
                    corio::spawn(move || {
                        p.publish_owner();
                        p.take();
                    })
                })
                .collect();
            let mut order: Vec<usize> = (0..permits.len()).collect();
            order.shuffle(&mut rand::thread_rng());
            let wakers: Vec<_> = order
                .chunks(100)
                .map(|chunk| {
                    let chunk = chunk.to_vec();
                    let permits = permits.clone();
                    corio::spawn(move || chunk.into_iter().for_each(|i| permits[i].give()))
                })
                .collect();
            wakers.into_iter().for_each(|w| w.join().unwrap());
            takers.into_iter().for_each(|t| t.join().unwrap());
        });
    }
}
