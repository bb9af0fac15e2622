//! Channel semantics, after Go's chan_test.go (rewritten): buffered,
//! unbuffered and closed channels, len/cap, blocking, timeouts, iteration,
//! disconnection, drops.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    eventually, spawn_coroutine, spawn_thread, wait_until_blocked, wait_until_parked, with_timeout, Tracked,
};
use corio::chan::{
    bounded, unbounded, Receiver, RecvError, RecvTimeoutError, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};
use corio::WaitReason;

/// Every flavour: rendezvous, small and larger buffers, unbounded.
fn flavours() -> Vec<Option<usize>> {
    vec![Some(0), Some(1), Some(2), Some(10), None]
}

fn make<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    match cap {
        Some(c) => bounded(c),
        None => unbounded(),
    }
}

#[test]
fn new_channel_is_empty() {
    for cap in flavours() {
        let (tx, rx) = make::<i32>(cap);
        assert_eq!(tx.capacity(), cap);
        assert_eq!(rx.capacity(), cap);
        assert_eq!(rx.len(), 0);
        assert!(rx.is_empty() && tx.is_empty());
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvTimeoutError::Timeout));
        assert!(!rx.is_closed() && !tx.is_disconnected());
    }
}

#[test]
fn len_and_cap_of_buffered_channel() {
    for cap in [1usize, 2, 10] {
        let (tx, rx) = bounded(cap);
        for i in 0..cap {
            assert_eq!(tx.len(), i);
            tx.try_send(i).unwrap();
        }
        assert!(tx.is_full() && rx.is_full());
        assert_eq!(rx.len(), cap);
        assert_eq!(tx.try_send(99), Err(TrySendError::Full(99)));
        assert_eq!(tx.send_timeout(98, Duration::from_millis(5)), Err(SendTimeoutError::Timeout(98)));
        for i in 0..cap {
            assert_eq!(rx.try_recv(), Ok(i));
        }
        assert!(rx.is_empty());
    }
    let (tx, rx) = unbounded();
    for i in 0..10_000 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(rx.len(), 10_000);
    assert!(!tx.is_full());
    let (tx0, rx0) = bounded::<u8>(0);
    assert!(tx0.is_full() && rx0.is_empty());
    assert_eq!(tx0.try_send(1), Err(TrySendError::Full(1)));
}

#[test]
fn fifo_single_sender() {
    with_timeout(20, || {
        for cap in flavours() {
            let (tx, rx) = make(cap);
            let h = thread::spawn(move || {
                for i in 0..500 {
                    tx.send(i).unwrap();
                }
            });
            let got: Vec<i32> = rx.iter().collect();
            assert_eq!(got, (0..500).collect::<Vec<_>>(), "cap {cap:?}");
            h.join().unwrap();
        }
    });
}

#[test]
fn recv_parks_until_a_value_is_sent() {
    with_timeout(20, || {
        for cap in flavours() {
            let (tx, rx) = make(cap);
            let done = Arc::new(AtomicBool::new(false));
            let d = Arc::clone(&done);
            let (tid, h) = spawn_thread(move || {
                let v = rx.recv();
                d.store(true, Ordering::SeqCst);
                v
            });
            wait_until_blocked(tid);
            assert!(!done.load(Ordering::SeqCst), "recv returned before any send");
            tx.send(7).unwrap();
            assert_eq!(h.join().unwrap(), Ok(7));
        }
    });
}

#[test]
fn send_parks_while_full_and_rendezvous_waits_for_receiver() {
    with_timeout(20, || {
        for cap in [0usize, 1, 3] {
            let (tx, rx) = bounded(cap);
            for i in 0..cap {
                tx.send(i).unwrap();
            }
            let done = Arc::new(AtomicBool::new(false));
            let d = Arc::clone(&done);
            let (tid, h) = spawn_thread(move || {
                tx.send(100).unwrap();
                d.store(true, Ordering::SeqCst);
            });
            wait_until_blocked(tid);
            assert!(!done.load(Ordering::SeqCst), "send on a full channel returned");
            let first = rx.recv().unwrap();
            assert_eq!(first, if cap == 0 { 100 } else { 0 });
            h.join().unwrap();
            let rest: Vec<usize> = rx.try_iter().collect();
            let mut all = vec![first];
            all.extend(rest);
            let mut want: Vec<usize> = (0..cap).collect();
            want.push(100);
            assert_eq!(all, want);
        }
    });
}

#[test]
fn rendezvous_try_ops_need_a_waiting_peer() {
    with_timeout(20, || {
        let (tx, rx) = bounded::<i32>(0);
        let tx2 = tx.clone();
        let h = thread::spawn(move || tx2.send(5));
        let mut got = None;
        eventually(|| {
            got = rx.try_recv().ok();
            got.is_some()
        });
        assert_eq!(got, Some(5));
        assert_eq!(h.join().unwrap(), Ok(()));

        let rx2 = rx.clone();
        let h = thread::spawn(move || rx2.recv());
        eventually(|| tx.try_send(6).is_ok());
        assert_eq!(h.join().unwrap(), Ok(6));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    });
}

#[test]
fn close_lets_receivers_drain_then_disconnects() {
    for cap in [Some(2), Some(10), None] {
        let (tx, rx) = make(cap);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert!(tx.close());
        assert!(!tx.close(), "second close reports false");
        assert!(rx.is_closed() && tx.is_disconnected());
        assert_eq!(tx.send(3), Err(SendError(3)));
        assert_eq!(tx.try_send(4), Err(TrySendError::Disconnected(4)));
        assert_eq!(tx.send_timeout(5, Duration::from_millis(1)), Err(SendTimeoutError::Disconnected(5)));
        assert_eq!(rx.len(), 2);
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.recv(), Err(RecvError));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Err(RecvTimeoutError::Disconnected));
        assert_eq!(rx.iter().count(), 0);
    }
}

#[test]
fn dropping_all_senders_disconnects() {
    for cap in flavours() {
        let (tx, rx) = make::<i32>(cap);
        let tx2 = tx.clone();
        if cap != Some(0) {
            tx.send(1).unwrap();
        }
        drop(tx);
        assert!(!rx.is_closed(), "a clone is still alive");
        drop(tx2);
        assert!(rx.is_closed());
        if cap != Some(0) {
            assert_eq!(rx.recv(), Ok(1));
        }
        assert_eq!(rx.recv(), Err(RecvError));
    }
}

/// Joins a thread or a coroutine.
type Joiner<T> = Box<dyn FnOnce() -> T>;

#[test]
fn close_wakes_parked_receivers_and_senders() {
    with_timeout(20, || {
        // Waiters of both kinds, each provably parked on the channel before
        // the close: two plain threads and two coroutines.
        let rt = corio::Runtime::builder().workers(2).build().unwrap();
        let (tx, rx) = bounded::<i32>(0);
        let mut receivers: Vec<Joiner<Result<i32, RecvError>>> = Vec::new();
        for _ in 0..2 {
            let rx = rx.clone();
            let (tid, h) = spawn_thread(move || rx.recv());
            wait_until_blocked(tid);
            receivers.push(Box::new(move || h.join().unwrap()));
        }
        for _ in 0..2 {
            let rx = rx.clone();
            let (co, h) = spawn_coroutine(&rt, move || rx.recv());
            wait_until_parked(&co, WaitReason::Sync);
            receivers.push(Box::new(move || h.join().unwrap()));
        }
        assert!(tx.close());
        for h in receivers {
            assert_eq!(h(), Err(RecvError));
        }

        let (tx, rx) = bounded::<String>(1);
        tx.send("a".into()).unwrap();
        let mut senders: Vec<Joiner<Result<(), SendError<String>>>> = Vec::new();
        for i in 0..3 {
            let tx = tx.clone();
            if i == 0 {
                let (tid, h) = spawn_thread(move || tx.send(format!("v{i}")));
                wait_until_blocked(tid);
                senders.push(Box::new(move || h.join().unwrap()));
            } else {
                let (co, h) = spawn_coroutine(&rt, move || tx.send(format!("v{i}")));
                wait_until_parked(&co, WaitReason::Sync);
                senders.push(Box::new(move || h.join().unwrap()));
            }
        }
        assert!(tx.close());
        let mut back = Vec::new();
        for h in senders {
            match h() {
                Err(SendError(v)) => back.push(v),
                Ok(()) => panic!("a send parked on a full channel succeeded after close"),
            }
        }
        back.sort();
        assert_eq!(back, ["v0", "v1", "v2"]);
        assert_eq!(rx.recv().as_deref(), Ok("a"));
        assert_eq!(rx.recv(), Err(RecvError));
    });
}

#[test]
fn dropping_all_receivers_fails_sends_and_drops_buffer() {
    with_timeout(20, || {
        let live = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = bounded(2);
        tx.send(Tracked::new(1, &live)).unwrap();
        tx.send(Tracked::new(2, &live)).unwrap();
        let tx2 = tx.clone();
        let l2 = Arc::clone(&live);
        let (tid, h) = spawn_thread(move || tx2.send(Tracked::new(3, &l2)).map_err(|e| e.0.value));
        wait_until_blocked(tid);
        drop(rx);
        assert_eq!(h.join().unwrap(), Err(3));
        assert_eq!(live.load(Ordering::SeqCst), 0, "buffered values dropped");
        assert!(tx.is_disconnected());
        assert!(tx.send(Tracked::new(4, &live)).is_err());
        assert_eq!(live.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn values_are_dropped_exactly_once() {
    for cap in flavours() {
        let live = Arc::new(AtomicUsize::new(0));
        {
            let (tx, rx) = make(cap);
            if cap != Some(0) {
                for i in 0..cap.unwrap_or(5).min(5) {
                    tx.send(Tracked::new(i, &live)).unwrap();
                }
                drop(rx.recv().unwrap());
            }
            let _ = tx.try_send(Tracked::new(100, &live));
            // both ends dropped here with values possibly still buffered
        }
        assert_eq!(live.load(Ordering::SeqCst), 0, "cap {cap:?}");
    }
}

#[test]
fn timeouts_withdraw_cleanly() {
    with_timeout(20, || {
        let (tx, rx) = bounded::<i32>(0);
        let start = Instant::now();
        assert_eq!(rx.recv_timeout(Duration::from_millis(20)), Err(RecvTimeoutError::Timeout));
        assert!(start.elapsed() >= Duration::from_millis(20));
        // The timed-out receiver must not be waiting any more.
        assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
        assert_eq!(tx.send_timeout(2, Duration::from_millis(5)), Err(SendTimeoutError::Timeout(2)));
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        let deadline = Instant::now() + Duration::from_millis(5);
        assert_eq!(tx.send_deadline(3, deadline), Err(SendTimeoutError::Timeout(3)));
        assert_eq!(rx.recv_deadline(deadline), Err(RecvTimeoutError::Timeout));
        // Still a working channel.
        let h = thread::spawn(move || tx.send(4));
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(4));
        h.join().unwrap().unwrap();
        // A huge timeout behaves as "no timeout".
        let (tx, rx) = bounded(1);
        tx.send_timeout(1, Duration::MAX).unwrap();
        assert_eq!(rx.recv_timeout(Duration::MAX), Ok(1));
    });
}

#[test]
fn iterators() {
    let (tx, rx) = unbounded();
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.try_iter().take(2).collect::<Vec<_>>(), [0, 1]);
    let mut seen = Vec::new();
    tx.send(5).unwrap();
    drop(tx);
    for v in &rx {
        seen.push(v);
    }
    assert_eq!(seen, [2, 3, 4, 5]);
    assert_eq!(rx.iter().next(), None);

    let (tx, rx) = bounded(3);
    let h = thread::spawn(move || {
        for i in 0..10 {
            tx.send(i).unwrap();
        }
    });
    let sum: i32 = rx.into_iter().sum();
    assert_eq!(sum, 45);
    h.join().unwrap();
}

#[test]
fn multi_consumer() {
    // Go's TestMultiConsumer, in our words: one producer, several consumers,
    // nothing lost or duplicated.
    with_timeout(30, || {
        for cap in flavours() {
            let (tx, rx) = make::<u64>(cap);
            let total = Arc::new(AtomicUsize::new(0));
            let consumers: Vec<_> = (0..4)
                .map(|_| {
                    let rx = rx.clone();
                    let total = Arc::clone(&total);
                    thread::spawn(move || {
                        let mut sum = 0u64;
                        for v in rx {
                            sum += v;
                            total.fetch_add(1, Ordering::SeqCst);
                        }
                        sum
                    })
                })
                .collect();
            drop(rx);
            let n = 2000u64;
            for i in 0..n {
                tx.send(i).unwrap();
            }
            drop(tx);
            let sum: u64 = consumers.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(sum, n * (n - 1) / 2, "cap {cap:?}");
            assert_eq!(total.load(Ordering::SeqCst), n as usize);
        }
    });
}

#[test]
fn handles_and_errors_format() {
    let (tx, rx) = bounded::<i32>(1);
    assert!(tx.same_channel(&tx.clone()));
    assert!(rx.same_channel(&rx.clone()));
    let (tx2, _rx2) = bounded::<i32>(1);
    assert!(!tx.same_channel(&tx2));
    assert_eq!(format!("{tx:?} {rx:?}"), "Sender { .. } Receiver { .. }");

    fn is_error<E: std::error::Error>(_: &E) {}
    let e = SendError(1);
    is_error(&e);
    assert_eq!(e.to_string(), "sending on a disconnected channel");
    assert_eq!(format!("{e:?}"), "SendError { .. }");
    assert_eq!(e.into_inner(), 1);
    let e = TrySendError::Full(2);
    is_error(&e);
    assert!(e.is_full() && !e.is_disconnected());
    assert_eq!(e.to_string(), "sending on a full channel");
    assert_eq!(TrySendError::from(SendError(3)), TrySendError::Disconnected(3));
    let e = SendTimeoutError::Timeout(4);
    is_error(&e);
    assert!(e.is_timeout());
    assert_eq!(e.to_string(), "timed out waiting on send operation");
    assert_eq!(e.into_inner(), 4);
    is_error(&RecvError);
    assert_eq!(RecvError.to_string(), "receiving on an empty and disconnected channel");
    is_error(&TryRecvError::Empty);
    assert!(TryRecvError::Empty.is_empty());
    assert_eq!(TryRecvError::from(RecvError), TryRecvError::Disconnected);
    is_error(&RecvTimeoutError::Timeout);
    assert!(RecvTimeoutError::Timeout.is_timeout());
    assert_eq!(RecvTimeoutError::Timeout.to_string(), "timed out waiting on receive operation");
    assert!(RecvTimeoutError::from(RecvError).is_disconnected());
}
