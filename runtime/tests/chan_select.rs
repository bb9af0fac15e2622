//! `select!` semantics, after Go's select_test.go / chan_test.go (rewritten):
//! default and timeout, readiness of disconnected cases, random fairness,
//! duplicate channels, self-select, withdrawal of the cases not taken, stress.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{spawn_thread, wait_until_blocked, with_timeout};
use corio::chan::{bounded, unbounded, Receiver, RecvError, SendError, Sender, TrySendError};
use corio::select;

#[test]
fn default_runs_when_nothing_is_ready() {
    let (tx, rx) = bounded::<i32>(0);
    let r = select! {
        recv(rx) -> _ => "recv",
        send(tx, 1) -> _ => "send",
        default => "default",
    };
    assert_eq!(r, "default");
    // Only a default.
    let r = select! { default => 7 };
    assert_eq!(r, 7);
    // Nothing left behind by the non-blocking select.
    assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
}

#[test]
fn default_timeout_fires_after_the_timeout() {
    let (_tx, rx) = unbounded::<i32>();
    let start = Instant::now();
    let r = select! {
        recv(rx) -> m => Some(m),
        default(Duration::from_millis(30)) => None,
    };
    assert_eq!(r, None);
    assert!(start.elapsed() >= Duration::from_millis(30));
    // Zero cases and a timeout.
    let r = select! { default(Duration::from_millis(1)) => { 3 } };
    assert_eq!(r, 3);
}

#[test]
fn ready_operations_complete() {
    let (tx1, rx1) = unbounded();
    let (tx2, rx2) = bounded::<&str>(1);
    tx1.send(10).unwrap();
    let v = select! {
        recv(rx1) -> m => m.unwrap(),
        default => panic!("rx1 is ready"),
    };
    assert_eq!(v, 10);
    select! {
        send(tx2, "hi") -> res => res.unwrap(),
        default => panic!("tx2 has room"),
    }
    assert_eq!(rx2.try_recv(), Ok("hi"));
    // References, method-call expressions and block bodies are accepted.
    let pair = (tx1.clone(), &rx1);
    tx1.send(11).unwrap();
    let got = select! {
        recv(pair.1) -> m => { m.unwrap() }
        send(&pair.0, 12) -> _ => { 0 }
    };
    assert!(got == 11 || (got == 0 && rx1.try_recv() == Ok(11)));
}

#[test]
fn disconnected_cases_are_ready() {
    let (tx, rx) = bounded::<i32>(0);
    drop(tx);
    let r = select! { recv(rx) -> m => m };
    assert_eq!(r, Err(RecvError));
    let (tx, rx) = bounded::<i32>(0);
    drop(rx);
    let r = select! { send(tx, 5) -> res => res };
    assert_eq!(r, Err(SendError(5)));
    let (tx, rx) = unbounded::<i32>();
    tx.close();
    let r = select! { recv(rx) -> m => m, default => Ok(0) };
    assert_eq!(r, Err(RecvError));
}

#[test]
fn select_parked_is_woken_by_close() {
    with_timeout(20, || {
        let (tx1, rx1) = bounded::<i32>(0);
        let (_tx2, rx2) = unbounded::<i32>();
        let (tid, h) = spawn_thread(move || {
            select! {
                recv(rx1) -> m => m.map(|_| 1),
                recv(rx2) -> m => m.map(|_| 2),
            }
        });
        wait_until_blocked(tid); // parked in the select
        assert!(!h.is_finished());
        drop(tx1);
        assert_eq!(h.join().unwrap(), Err(RecvError));
    });
}

#[test]
fn choice_among_ready_receives_is_fair() {
    // Two always-ready channels: each must be picked a fair share of the time.
    let n = 10_000;
    let (tx1, rx1) = unbounded();
    let (tx2, rx2) = unbounded();
    for i in 0..n {
        tx1.send(i).unwrap();
        tx2.send(i).unwrap();
    }
    let mut counts = [0usize; 2];
    for _ in 0..n {
        select! {
            recv(rx1) -> _ => counts[0] += 1,
            recv(rx2) -> _ => counts[1] += 1,
        }
    }
    for c in counts {
        assert!(c > n * 4 / 10, "unfair choice: {counts:?}");
    }
}

#[test]
fn choice_among_ready_sends_is_fair() {
    // Go's pseudo-random send test: two send cases on one channel.
    let (tx, rx) = unbounded();
    let n = 4000;
    for _ in 0..n {
        select! {
            send(tx, 0) -> r => r.unwrap(),
            send(tx, 1) -> r => r.unwrap(),
        }
    }
    let ones: usize = rx.try_iter().sum();
    assert!(ones > n * 4 / 10 && ones < n * 6 / 10, "ones = {ones} of {n}");
}

#[test]
fn duplicate_channel_in_one_select() {
    with_timeout(20, || {
        let (tx, rx) = bounded::<i32>(0);
        let h = thread::spawn(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
            }
        });
        for i in 0..100 {
            let v = select! {
                recv(rx) -> m => m.unwrap(),
                recv(rx) -> m => m.unwrap() + 1000,
            };
            assert_eq!(v % 1000, i);
        }
        h.join().unwrap();
    });
}

#[test]
fn self_select_never_talks_to_itself() {
    // Go's TestSelfSelect: two threads each select send(c, p) / recv(c) on
    // the same channel. On a rendezvous channel a thread must never
    // receive its own value.
    with_timeout(30, || {
        for cap in [0usize, 10] {
            let (tx, rx) = bounded::<usize>(cap);
            let hs: Vec<_> = (0..2)
                .map(|p| {
                    let (tx, rx) = (tx.clone(), rx.clone());
                    thread::spawn(move || {
                        for _ in 0..1000 {
                            select! {
                                send(tx, p) -> r => r.unwrap(),
                                recv(rx) -> v => {
                                    let v = v.unwrap();
                                    assert!(cap > 0 || v != p, "received own value {v}");
                                }
                            }
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        }
    });
}

#[test]
fn timed_out_select_leaves_nothing_behind() {
    let (tx1, rx1) = bounded::<i32>(0);
    let (tx2, rx2) = bounded::<i32>(0);
    let r = select! {
        recv(rx1) -> _ => 1,
        recv(rx2) -> _ => 2,
        default(Duration::from_millis(5)) => 0,
    };
    assert_eq!(r, 0);
    // A stale receiver entry must not swallow a value.
    assert_eq!(tx1.try_send(1), Err(TrySendError::Full(1)));
    assert_eq!(tx2.try_send(2), Err(TrySendError::Full(2)));
    let r = select! {
        send(tx1, 1) -> _ => 1,
        default(Duration::from_millis(5)) => 0,
    };
    assert_eq!(r, 0);
    assert!(rx1.try_recv().is_err());
}

/// One parked select, two peers completing on both of its channels at
/// once: exactly one operation completes for the select, and the other
/// message stays available.
fn withdrawal_round(cap: usize) {
    let (tx1, rx1) = bounded::<u32>(cap);
    let (tx2, rx2) = bounded::<u32>(cap);
    let start = Arc::new(Barrier::new(3));
    let selector = {
        let (rx1, rx2) = (rx1.clone(), rx2.clone());
        let start = Arc::clone(&start);
        thread::spawn(move || {
            start.wait();
            select! {
                recv(rx1) -> m => m.unwrap(),
                recv(rx2) -> m => m.unwrap(),
            }
        })
    };
    let senders: Vec<_> = [(tx1, 1u32), (tx2, 2u32)]
        .into_iter()
        .map(|(tx, v)| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                tx.send(v).unwrap();
            })
        })
        .collect();
    let got = selector.join().unwrap();
    // The other message is still there for somebody else.
    let other = if got == 1 { &rx2 } else { &rx1 };
    let rest = other.recv_timeout(Duration::from_secs(10)).unwrap();
    let mut both = [got, rest];
    both.sort();
    assert_eq!(both, [1, 2]);
    for s in senders {
        s.join().unwrap();
    }
    assert!(rx1.try_recv().is_err() && rx2.try_recv().is_err());
}

#[test]
fn select_woken_by_two_completes_exactly_one() {
    with_timeout(30, || {
        for _ in 0..300 {
            withdrawal_round(0);
            withdrawal_round(1);
        }
    });
}

#[test]
fn parked_send_select_withdraws_its_other_value() {
    // A select parked on two rendezvous sends; one receiver takes one value,
    // the other channel must not deliver the second value later.
    with_timeout(20, || {
        for _ in 0..200 {
            let (tx1, rx1) = bounded::<u32>(0);
            let (tx2, rx2) = bounded::<u32>(0);
            let h = thread::spawn(move || {
                select! {
                    send(tx1, 1) -> r => { r.unwrap(); 1 }
                    send(tx2, 2) -> r => { r.unwrap(); 2 }
                }
            });
            let got = select! {
                recv(rx1) -> m => m.unwrap(),
                recv(rx2) -> m => m.unwrap(),
            };
            assert_eq!(h.join().unwrap(), got);
            // The sender threads' select is over: both channels are
            // disconnected now and deliver nothing more.
            assert_eq!(rx1.recv(), Err(RecvError));
            assert_eq!(rx2.recv(), Err(RecvError));
        }
    });
}

#[test]
fn nonblocking_recv_sees_buffered_value_despite_close() {
    // Go's TestNonblockRecvRace.
    with_timeout(20, || {
        for _ in 0..500 {
            let (tx, rx) = bounded(1);
            tx.send(1).unwrap();
            let rx2 = rx.clone();
            let h = thread::spawn(move || {
                select! {
                    recv(rx2) -> _ => {}
                    default => panic!("channel is not ready"),
                }
            });
            tx.close();
            let _ = rx.try_recv();
            h.join().unwrap();
        }
    });
}

#[test]
fn ping_pong_through_selects() {
    with_timeout(20, || {
        let (a_tx, a_rx) = bounded::<u32>(0);
        let (b_tx, b_rx) = bounded::<u32>(0);
        let (_quit_tx, quit_rx) = bounded::<()>(0);
        let h = thread::spawn(move || loop {
            select! {
                recv(a_rx) -> m => match m {
                    Ok(v) => b_tx.send(v + 1).unwrap(),
                    Err(_) => break,
                },
                recv(quit_rx) -> _ => break,
            }
        });
        let mut v = 0;
        for _ in 0..2000 {
            select! { send(a_tx, v) -> r => r.unwrap() }
            v = select! { recv(b_rx) -> m => m.unwrap() };
        }
        assert_eq!(v, 2000);
        drop(a_tx);
        h.join().unwrap();
    });
}

#[test]
fn stress_many_selecting_senders_and_receivers() {
    // Go's TestSelectStress in our words: four channels of different
    // capacities, selecting senders and receivers; every value arrives once.
    with_timeout(40, || {
        let chans: Vec<(Sender<u64>, Receiver<u64>)> = vec![bounded(0), bounded(1), bounded(3), unbounded()];
        let per_sender = 3000u64;
        let senders: Vec<_> = (0..3u64)
            .map(|s| {
                let txs: Vec<Sender<u64>> = chans.iter().map(|c| c.0.clone()).collect();
                thread::spawn(move || {
                    for i in 0..per_sender {
                        let v = s * per_sender + i;
                        select! {
                            send(txs[0], v) -> r => r.unwrap(),
                            send(txs[1], v) -> r => r.unwrap(),
                            send(txs[2], v) -> r => r.unwrap(),
                            send(txs[3], v) -> r => r.unwrap(),
                        }
                    }
                })
            })
            .collect();
        let received = Arc::new(AtomicUsize::new(0));
        let receivers: Vec<_> = (0..3)
            .map(|_| {
                let rxs: Vec<Receiver<u64>> = chans.iter().map(|c| c.1.clone()).collect();
                let received = Arc::clone(&received);
                thread::spawn(move || {
                    let mut got = Vec::new();
                    let mut closed = [false; 4];
                    while !closed.iter().all(|c| *c) {
                        let (i, m) = select! {
                            recv(rxs[0]) -> m => (0, m),
                            recv(rxs[1]) -> m => (1, m),
                            recv(rxs[2]) -> m => (2, m),
                            recv(rxs[3]) -> m => (3, m),
                        };
                        match m {
                            Ok(v) => {
                                got.push(v);
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(RecvError) => closed[i] = true,
                        }
                    }
                    got
                })
            })
            .collect();
        drop(chans);
        for s in senders {
            s.join().unwrap();
        }
        let mut all = HashSet::new();
        for r in receivers {
            for v in r.join().unwrap() {
                assert!(all.insert(v), "value {v} received twice");
            }
        }
        assert_eq!(all.len() as u64, 3 * per_sender);
        assert_eq!(received.load(Ordering::Relaxed) as u64, 3 * per_sender);
    });
}

#[test]
fn unselected_send_values_are_dropped() {
    let live = Arc::new(AtomicUsize::new(0));
    let (tx1, rx1) = unbounded();
    let (tx2, _rx2) = bounded(0);
    select! {
        send(tx1, common::Tracked::new(1, &live)) -> r => r.unwrap(),
        send(tx2, common::Tracked::new(2, &live)) -> _ => panic!("nobody receives on tx2"),
    }
    assert_eq!(live.load(Ordering::SeqCst), 1, "only the sent value is alive");
    drop(rx1);
    assert_eq!(live.load(Ordering::SeqCst), 0);
}
