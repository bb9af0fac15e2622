//! Property tests: random mixes of senders, receivers, capacities, ways of
//! sending/receiving (plain, select, timeout loops) and closing. Every value
//! that was sent successfully is received exactly once, values of one sender
//! arrive in order, nothing deadlocks (bounded by a timeout), all threads end.

mod common;

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::with_timeout;
use corio::chan::{
    bounded, unbounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender, TryRecvError, TrySendError,
};
use corio::select;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Scenario {
    cap: Option<usize>,
    send_kinds: Vec<u8>,
    recv_kinds: Vec<u8>,
    per_sender: usize,
    /// Close explicitly right after the k-th successful send overall.
    close_after: Option<usize>,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop_oneof![Just(None), (0usize..4).prop_map(Some)],
        prop::collection::vec(0u8..3, 1..4),
        prop::collection::vec(0u8..3, 1..4),
        0usize..80,
        prop::option::of(0usize..150),
    )
        .prop_map(|(cap, send_kinds, recv_kinds, per_sender, close_after)| Scenario {
            cap,
            send_kinds,
            recv_kinds,
            per_sender,
            close_after,
        })
}

type Msg = (usize, usize); // (sender, sequence number)

/// Sends `v` in the way `kind` says; `Err` once the channel is disconnected.
fn send_one(kind: u8, tx: &Sender<Msg>, idle: &Sender<Msg>, v: Msg) -> Result<(), ()> {
    match kind {
        0 => tx.send(v).map_err(|_| ()),
        1 => select! {
            send(tx, v) -> r => r.map_err(|_| ()),
            send(idle, v) -> _ => unreachable!("nobody receives on the idle channel"),
        },
        _ => loop {
            match tx.send_timeout(v, Duration::from_micros(200)) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Timeout(_)) => continue,
                Err(SendTimeoutError::Disconnected(_)) => return Err(()),
            }
        },
    }
}

/// Receives in the way `kind` says; `None` once disconnected and drained.
fn recv_one(kind: u8, rx: &Receiver<Msg>, idle: &Receiver<Msg>) -> Option<Msg> {
    match kind {
        0 => rx.recv().ok(),
        1 => select! {
            recv(rx) -> m => m.ok(),
            recv(idle) -> _ => unreachable!("nobody sends on the idle channel"),
        },
        _ => loop {
            match rx.recv_timeout(Duration::from_micros(200)) {
                Ok(v) => return Some(v),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        },
    }
}

fn run(sc: Scenario) {
    let (tx, rx) = match sc.cap {
        Some(c) => bounded::<Msg>(c),
        None => unbounded::<Msg>(),
    };
    // Channels nobody completes on, for the select variants; kept open
    // (two of them, so that a selecting sender and a selecting receiver do
    // not meet on the idle channel).
    let (idle_tx, _keep_idle_rx) = bounded::<Msg>(0);
    let (_keep_idle_tx, idle_rx) = bounded::<Msg>(0);
    let sent_ok = Arc::new(AtomicUsize::new(0));

    let senders: Vec<_> = sc
        .send_kinds
        .iter()
        .enumerate()
        .map(|(id, &kind)| {
            let tx = tx.clone();
            let idle = idle_tx.clone();
            let sent_ok = Arc::clone(&sent_ok);
            let (n, close_after) = (sc.per_sender, sc.close_after);
            thread::spawn(move || {
                let mut sent = 0;
                for seq in 0..n {
                    if send_one(kind, &tx, &idle, (id, seq)).is_err() {
                        break;
                    }
                    sent += 1;
                    let total = sent_ok.fetch_add(1, Ordering::SeqCst) + 1;
                    if Some(total) == close_after {
                        tx.close();
                    }
                }
                sent
            })
        })
        .collect();
    drop(tx);

    let receivers: Vec<_> = sc
        .recv_kinds
        .iter()
        .map(|&kind| {
            let rx = rx.clone();
            let idle = idle_rx.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                while let Some(m) = recv_one(kind, &rx, &idle) {
                    got.push(m);
                }
                got
            })
        })
        .collect();
    drop(rx);

    let sent: Vec<usize> = senders.into_iter().map(|h| h.join().unwrap()).collect();
    let mut seen = HashSet::new();
    for h in receivers {
        let got = h.join().unwrap();
        let mut last: Vec<Option<usize>> = vec![None; sent.len()];
        for (s, seq) in got {
            assert!(seen.insert((s, seq)), "({s}, {seq}) received twice");
            assert!(last[s] < Some(seq), "sender {s}: {seq} after {:?}", last[s]);
            last[s] = Some(seq);
        }
    }
    let expected: HashSet<Msg> =
        sent.iter().enumerate().flat_map(|(s, &n)| (0..n).map(move |seq| (s, seq))).collect();
    assert_eq!(seen, expected, "received set differs from successfully sent set");
    if sc.close_after.is_none() {
        assert!(sent.iter().all(|&n| n == sc.per_sender));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mpmc_every_value_once_in_sender_order(sc in scenario()) {
        with_timeout(20, move || run(sc));
    }

    /// Single-threaded model check of the non-blocking operations against
    /// a VecDeque.
    #[test]
    fn try_ops_match_a_queue_model(
        cap in prop_oneof![Just(None), (1usize..5).prop_map(Some)],
        ops in prop::collection::vec(0u8..10, 0..200),
    ) {
        let (tx, rx) = match cap {
            Some(c) => bounded::<u32>(c),
            None => unbounded::<u32>(),
        };
        let mut model = VecDeque::new();
        let mut closed = false;
        let mut next = 0u32;
        for op in ops {
            match op {
                0..=4 => {
                    let r = tx.try_send(next);
                    if closed {
                        prop_assert_eq!(r, Err(TrySendError::Disconnected(next)));
                    } else if cap.is_some_and(|c| model.len() >= c) {
                        prop_assert_eq!(r, Err(TrySendError::Full(next)));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        model.push_back(next);
                    }
                    next += 1;
                }
                5..=8 => {
                    let r = rx.try_recv();
                    match model.pop_front() {
                        Some(v) => prop_assert_eq!(r, Ok(v)),
                        None if closed => prop_assert_eq!(r, Err(TryRecvError::Disconnected)),
                        None => prop_assert_eq!(r, Err(TryRecvError::Empty)),
                    }
                }
                _ => {
                    prop_assert_eq!(tx.close(), !closed);
                    closed = true;
                }
            }
            prop_assert_eq!(rx.len(), model.len());
            prop_assert_eq!(rx.is_closed(), closed);
        }
    }
}
