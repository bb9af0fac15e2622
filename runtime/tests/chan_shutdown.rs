//! Channels shared with the outside world when the runtime shuts down: a
//! coroutine parked in `send`, `recv` or `select!` is unwound at shutdown and
//! must leave the channel's queues; no peer may hand a value to it or take its
//! value afterwards (issue #8, the class "a waiter unwound while queued").
//!
//! Every test uses a plain-thread `main` and a runtime of 2 workers, dropped
//! while its coroutines are parked on channels that `main` keeps using.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use common::{eventually, with_timeout, Tracked};
use corio::chan::{bounded, unbounded, Receiver, Sender, TryRecvError, TrySendError};
use corio::coroutine::{self, Coroutine};
use corio::{select, Runtime, WaitReason};

fn runtime() -> Runtime {
    Runtime::builder().workers(2).build().expect("a runtime")
}

fn make<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    match cap {
        Some(c) => bounded(c),
        None => unbounded(),
    }
}

/// Spawns `f` on `rt` and waits until the coroutine is parked on a channel.
fn spawn_parked(rt: &Runtime, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std_mpsc::channel::<Coroutine>();
    rt.spawn(move || {
        tx.send(coroutine::current()).unwrap();
        f();
    });
    let co = rx.recv_timeout(Duration::from_secs(10)).expect("the coroutine started");
    eventually(|| co.wait_reason() == WaitReason::Sync);
}

#[test]
fn receiver_unwound_while_queued_does_not_swallow_later_sends() {
    with_timeout(30, || {
        for cap in [None, Some(1), Some(3)] {
            let (tx, rx) = make::<i32>(cap);
            let rt = runtime();
            let rx2 = rx.clone();
            spawn_parked(&rt, move || {
                let _ = rx2.recv();
            });
            drop(rt);
            assert_eq!(tx.send(42), Ok(()), "cap {cap:?}");
            assert_eq!(
                rx.recv_timeout(Duration::from_secs(5)),
                Ok(42),
                "cap {cap:?}: the value went to the unwound receiver"
            );
        }
    });
}

#[test]
fn rendezvous_try_send_to_an_unwound_receiver_is_full() {
    with_timeout(30, || {
        let (tx, rx) = bounded::<i32>(0);
        let rt = runtime();
        let rx2 = rx.clone();
        spawn_parked(&rt, move || {
            let _ = rx2.recv();
        });
        drop(rt);
        assert_eq!(tx.try_send(42), Err(TrySendError::Full(42)));
        // A blocking send from another thread meets main's receive, not the
        // dead coroutine.
        let h = std::thread::spawn(move || tx.send(43));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(43));
        h.join().unwrap().unwrap();
    });
}

#[test]
fn sender_unwound_while_queued_withdraws_its_value() {
    with_timeout(30, || {
        for cap in [0usize, 1] {
            let live = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = bounded::<Tracked>(cap);
            for i in 0..cap {
                tx.send(Tracked::new(i, &live)).unwrap();
            }
            let rt = runtime();
            let (tx2, l2) = (tx.clone(), Arc::clone(&live));
            spawn_parked(&rt, move || {
                let _ = tx2.send(Tracked::new(100, &l2));
            });
            drop(rt);
            assert_eq!(
                live.load(Ordering::SeqCst),
                cap,
                "cap {cap}: the unwound sender's value is still alive"
            );
            for i in 0..cap {
                assert_eq!(rx.try_recv().map(|t| t.value), Ok(i));
            }
            assert!(
                matches!(rx.try_recv(), Err(TryRecvError::Empty)),
                "cap {cap}: received the value of a send whose coroutine was unwound"
            );
            assert_eq!(live.load(Ordering::SeqCst), 0);
            drop(tx);
        }
    });
}

#[test]
fn select_unwound_while_queued_leaves_every_channel() {
    with_timeout(30, || {
        let live = Arc::new(AtomicUsize::new(0));
        let (ta, ra) = unbounded::<i32>();
        let (tz, rz) = bounded::<i32>(0);
        let (tb, rb) = bounded::<Tracked>(0);
        let rt = runtime();
        let (ra2, rz2, tb2, l2) = (ra.clone(), rz.clone(), tb.clone(), Arc::clone(&live));
        spawn_parked(&rt, move || {
            select! {
                recv(ra2) -> _ => {},
                recv(rz2) -> _ => {},
                send(tb2, Tracked::new(7, &l2)) -> _ => {},
            }
        });
        drop(rt);
        assert_eq!(live.load(Ordering::SeqCst), 0, "the unwound select's send value is still alive");
        assert!(matches!(rb.try_recv(), Err(TryRecvError::Empty)));
        assert_eq!(tz.try_send(1), Err(TrySendError::Full(1)));
        assert_eq!(ta.send(42), Ok(()));
        assert_eq!(ra.recv_timeout(Duration::from_secs(5)), Ok(42));
        drop((tb, rz));
    });
}

/// One channel of the hammer.
struct Lane {
    cap: Option<usize>,
    tx: Sender<Tracked>,
    rx: Receiver<Tracked>,
}

/// One round: receiver and sender coroutines with random quotas (so that one
/// side ends up parked), some through `select!` with a second, idle channel;
/// the runtime is dropped after a random number of transfers. Then, from
/// `main`: only buffered values are alive, each is received once, no dead
/// sender's value shows up, and every value `main` sends is received by
/// `main` exactly once.
fn hammer_round(rng: &mut impl rand::Rng, next_id: &Arc<AtomicUsize>) {
    let live = Arc::new(AtomicUsize::new(0));
    let received = Arc::new(AtomicUsize::new(0));
    // Idle rendezvous channels for the select cases: nobody but main (after
    // the shutdown) sends on the first or receives from the second.
    let (idle_tx, idle_rx) = bounded::<Tracked>(0);
    let (idle_send_tx, idle_send_rx) = bounded::<Tracked>(0);
    let lanes: Vec<Lane> = [Some(0), Some(1), Some(3), None]
        .into_iter()
        .map(|cap| {
            let (tx, rx) = make(cap);
            Lane { cap, tx, rx }
        })
        .collect();
    let rt = runtime();
    let mut sure = 0; // transfers that complete whatever the schedule
    for lane in &lanes {
        let (mut sent, mut taken) = (0, 0);
        for _ in 0..rng.gen_range(1..4) {
            let quota = rng.gen_range(0..12);
            taken += quota;
            let (rx, idle, received) = (lane.rx.clone(), idle_rx.clone(), Arc::clone(&received));
            let via_select = rng.gen_bool(0.5);
            rt.spawn(move || {
                for _ in 0..quota {
                    let got = if via_select {
                        select! {
                            recv(rx) -> v => v,
                            recv(idle) -> v => v,
                        }
                    } else {
                        rx.recv()
                    };
                    assert!(got.is_ok(), "main keeps both ends open");
                    received.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        for _ in 0..rng.gen_range(1..4) {
            let quota = rng.gen_range(0..12);
            sent += quota;
            let (tx, idle, live, ids) =
                (lane.tx.clone(), idle_send_tx.clone(), Arc::clone(&live), Arc::clone(next_id));
            let via_select = rng.gen_bool(0.5);
            rt.spawn(move || {
                for _ in 0..quota {
                    let v = Tracked::new(ids.fetch_add(1, Ordering::SeqCst), &live);
                    let res = if via_select {
                        select! {
                            send(tx, v) -> r => r.map_err(|_| ()),
                            send(idle, Tracked::new(usize::MAX, &live)) -> r => r.map_err(|_| ()),
                        }
                    } else {
                        tx.send(v).map_err(|_| ())
                    };
                    assert!(res.is_ok(), "main keeps both ends open");
                }
            });
        }
        sure += sent.min(taken);
    }
    let stop_after = rng.gen_range(0..=sure);
    eventually(|| received.load(Ordering::SeqCst) >= stop_after);
    drop(rt);

    // Only buffered values may be alive: nothing is left in a dead waiter.
    let buffered: usize = lanes.iter().map(|l| l.rx.len()).sum();
    assert_eq!(live.load(Ordering::SeqCst), buffered, "values alive outside the buffers after shutdown");
    let mut seen = HashSet::new();
    for lane in &lanes {
        for v in lane.rx.try_iter() {
            assert_ne!(v.value, usize::MAX, "the idle channel's value went through a lane");
            assert!(seen.insert(v.value), "value {} received twice", v.value);
        }
        assert!(matches!(lane.rx.try_recv(), Err(TryRecvError::Empty)));
    }
    assert_eq!(live.load(Ordering::SeqCst), 0);
    assert!(matches!(idle_tx.try_send(Tracked::new(0, &live)), Err(TrySendError::Full(_))));
    assert!(matches!(idle_send_rx.try_recv(), Err(TryRecvError::Empty)));

    // Every value main sends now reaches main, once.
    for lane in &lanes {
        let n = lane.cap.unwrap_or(50);
        if lane.cap == Some(0) {
            let t = Tracked::new(0, &live);
            assert!(
                matches!(lane.tx.try_send(t), Err(TrySendError::Full(_))),
                "rendezvous with a dead receiver"
            );
        }
        for i in 0..n {
            assert!(lane.tx.send(Tracked::new(1_000_000 + i, &live)).is_ok());
        }
        for i in 0..n {
            let got = lane.rx.recv_timeout(Duration::from_secs(5)).expect("main's value was lost");
            assert_eq!(got.value, 1_000_000 + i);
        }
    }
    assert_eq!(live.load(Ordering::SeqCst), 0, "a value leaked or was dropped twice");
}

#[test]
fn a_waiter_unwound_while_queued_hammer() {
    with_timeout(60, || {
        use rand::SeedableRng;
        let seed: u64 = rand::random();
        eprintln!("a_waiter_unwound_while_queued_hammer: seed {seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let next_id = Arc::new(AtomicUsize::new(0));
        for _ in 0..150 {
            hammer_round(&mut rng, &next_id);
        }
    });
}
