//! corio::chan and corio::sync from coroutines across workers (their own
//! crate tests in runtime/tests/ use plain threads): contention, hand-offs
//! between coroutines and threads, select withdrawal under many workers.

mod common;

use common::within;
use corio::chan::{bounded, unbounded};
use corio::sync::{Barrier, Condvar, Mutex, Semaphore, WaitGroup};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn ten_thousand_coroutines_increment_a_mutex_counter_across_workers() {
    let total = within(4, Duration::from_secs(60), "mutex contention", || {
        let counter = Arc::new(Mutex::new(0u64));
        let handles: Vec<_> = (0..10_000)
            .map(|_| {
                let counter = counter.clone();
                corio::spawn(move || {
                    for _ in 0..10 {
                        let mut guard = counter.lock();
                        let value = *guard;
                        corio::yield_now(); // hold the lock across a switch
                        *guard = value + 1;
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        let total = *counter.lock();
        total
    });
    assert_eq!(total, 100_000);
}

#[test]
fn wait_group_with_a_hundred_thousand_coroutines() {
    within(2, Duration::from_secs(60), "waitgroup", || {
        let wg = WaitGroup::new();
        let done = Arc::new(AtomicUsize::new(0));
        // Each queued coroutine holds its stack: fewer where each stack
        // guard costs a mapping (kernels before 6.13).
        let count = 100_000.min(corio::max_coroutines_hint());
        wg.add(count);
        for _ in 0..count {
            let (wg, done) = (wg.clone(), done.clone());
            corio::spawn(move || {
                done.fetch_add(1, Ordering::Relaxed);
                wg.done();
            });
        }
        wg.wait();
        assert_eq!(done.load(Ordering::Relaxed), count);
    });
}

#[test]
fn condvar_producer_consumer_between_coroutines() {
    within(2, Duration::from_secs(60), "condvar", || {
        let state = Arc::new((Mutex::new(Vec::<u32>::new()), Condvar::new()));
        let consumer = {
            let state = state.clone();
            corio::spawn(move || {
                let (queue, cv) = &*state;
                let mut got = Vec::new();
                while got.len() < 10_000 {
                    let mut q = queue.lock();
                    while q.is_empty() {
                        cv.wait(&mut q);
                    }
                    got.extend(q.drain(..));
                }
                got
            })
        };
        let producers: Vec<_> = (0..4u32)
            .map(|p| {
                let state = state.clone();
                corio::spawn(move || {
                    for i in 0..2_500u32 {
                        state.0.lock().push(p * 10_000 + i);
                        state.1.notify_one();
                        if i % 100 == 0 {
                            corio::yield_now();
                        }
                    }
                })
            })
            .collect();
        producers.into_iter().for_each(|p| p.join().unwrap());
        let mut got = consumer.join().unwrap();
        got.sort_unstable();
        let mut expected: Vec<u32> = (0..4).flat_map(|p| (0..2_500).map(move |i| p * 10_000 + i)).collect();
        expected.sort_unstable();
        assert_eq!(got, expected);
    });
}

#[test]
fn semaphore_and_barrier_across_workers() {
    within(4, Duration::from_secs(60), "semaphore/barrier", || {
        let sem = Arc::new(Semaphore::new(3));
        let inside = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(Barrier::new(50));
        let leaders = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let (sem, inside, barrier, leaders) =
                    (sem.clone(), inside.clone(), barrier.clone(), leaders.clone());
                corio::spawn(move || {
                    for _ in 0..20 {
                        let _permit = sem.acquire();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 3, "{now} holders of a 3-permit semaphore");
                        corio::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                    if barrier.wait().is_leader() {
                        leaders.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(leaders.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn unbuffered_ping_pong_between_a_coroutine_and_a_plain_thread() {
    within(2, Duration::from_secs(60), "rendezvous with a thread", || {
        let (ping_tx, ping_rx) = bounded::<u32>(0);
        let (pong_tx, pong_rx) = bounded::<u32>(0);
        let thread = std::thread::spawn(move || {
            for v in &ping_rx {
                pong_tx.send(v + 1).unwrap();
            }
        });
        for i in 0..10_000 {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), i + 1);
        }
        drop(ping_tx);
        while !thread.is_finished() {
            corio::time::sleep(Duration::from_millis(1));
        }
    });
}

#[test]
fn select_withdraws_the_losing_case_under_many_workers() {
    within(4, Duration::from_secs(60), "select withdrawal", || {
        for _ in 0..200 {
            let (tx1, rx1) = bounded::<u32>(0);
            let (tx2, rx2) = bounded::<u32>(0);
            let selector = corio::spawn(move || {
                corio::select! {
                    recv(rx1) -> v => (1, v.unwrap(), rx1, rx2),
                    recv(rx2) -> v => (2, v.unwrap(), rx1, rx2),
                }
            });
            let s1 = corio::spawn(move || tx1.send(10).is_ok());
            let s2 = corio::spawn(move || tx2.send(20).is_ok());
            let (which, value, rx1, rx2) = selector.join().unwrap();
            assert_eq!(value, if which == 1 { 10 } else { 20 });
            // The other sender is still blocked with its value, not lost:
            let other = if which == 1 { rx2.recv().unwrap() } else { rx1.recv().unwrap() };
            assert_eq!(other, if which == 1 { 20 } else { 10 });
            assert!(s1.join().unwrap() && s2.join().unwrap());
        }
    });
}

#[derive(Debug, Clone)]
struct ChanCase {
    capacity: Option<usize>,
    senders: Vec<(bool, usize)>, // (plain thread?, values to send)
    receivers: usize,
    workers: usize,
}

fn chan_case() -> impl Strategy<Value = ChanCase> {
    (
        prop_oneof![Just(None), (0usize..4).prop_map(Some)],
        proptest::collection::vec((any::<bool>(), 0usize..200), 1..5),
        1usize..4,
        1usize..4,
    )
        .prop_map(|(capacity, senders, receivers, workers)| ChanCase {
            capacity,
            senders,
            receivers,
            workers,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn every_value_is_received_once_in_per_sender_order(case in chan_case()) {
        let c = case.clone();
        let received = within(c.workers, Duration::from_secs(30), &format!("{case:?}"), move || {
            let (tx, rx) = match c.capacity {
                Some(n) => bounded::<(usize, usize)>(n),
                None => unbounded(),
            };
            let receivers: Vec<_> = (0..c.receivers)
                .map(|_| {
                    let rx = rx.clone();
                    corio::spawn(move || rx.iter().collect::<Vec<_>>())
                })
                .collect();
            drop(rx);
            let mut threads = Vec::new();
            let mut coroutines = Vec::new();
            for (id, &(plain, count)) in c.senders.iter().enumerate() {
                let tx = tx.clone();
                let body = move || (0..count).for_each(|i| tx.send((id, i)).unwrap());
                if plain { threads.push(std::thread::spawn(body)) } else { coroutines.push(corio::spawn(body)) }
            }
            drop(tx);
            coroutines.into_iter().for_each(|h| h.join().unwrap());
            for t in threads {
                while !t.is_finished() { corio::time::sleep(Duration::from_millis(1)); }
            }
            receivers.into_iter().map(|r| r.join().unwrap()).collect::<Vec<_>>()
        });
        let mut next: HashMap<usize, usize> = HashMap::new();
        let mut total = 0;
        for per_receiver in &received {
            let mut last: HashMap<usize, usize> = HashMap::new();
            for &(sender, i) in per_receiver {
                if let Some(&prev) = last.get(&sender) { prop_assert!(i > prev, "per-sender order broken"); }
                last.insert(sender, i);
                *next.entry(sender).or_default() += 1;
                total += 1;
            }
        }
        let expected: usize = case.senders.iter().map(|s| s.1).sum();
        prop_assert_eq!(total, expected, "every value exactly once");
        for (id, &(_, count)) in case.senders.iter().enumerate() {
            prop_assert_eq!(next.get(&id).copied().unwrap_or(0), count);
        }
    }
}
