//! std fidelity: a program written against `std::sync::mpsc` compiles and
//! runs with `use corio::chan as mpsc;` (issue #8), inside coroutines too.

mod common;

use std::thread;
use std::time::Duration;

use common::with_timeout;
use corio::chan as mpsc;
use mpsc::{
    Receiver, RecvError, RecvTimeoutError, SendError, Sender, SyncSender, TryRecvError, TrySendError,
};

/// std's "worker threads report back" example, unchanged but for the import.
fn fan_in(n: usize) -> Vec<usize> {
    let (tx, rx): (Sender<usize>, Receiver<usize>) = mpsc::channel();
    let mut handles = Vec::new();
    for id in 0..n {
        let tx = tx.clone();
        handles.push(thread::spawn(move || tx.send(id).unwrap()));
    }
    drop(tx);
    let mut got: Vec<usize> = rx.iter().collect();
    for h in handles {
        h.join().unwrap();
    }
    got.sort();
    got
}

fn rendezvous() {
    let (tx, rx): (SyncSender<i32>, Receiver<i32>) = mpsc::sync_channel(0);
    assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
    let h = thread::spawn(move || {
        tx.send(53).unwrap();
        tx
    });
    assert_eq!(rx.recv(), Ok(53));
    drop(h.join().unwrap());
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
}

fn errors() {
    let (tx, rx) = mpsc::sync_channel::<String>(1);
    tx.send("a".to_string()).unwrap();
    match tx.try_send("b".to_string()) {
        Err(TrySendError::Full(v)) => assert_eq!(v, "b"),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(rx.recv_timeout(Duration::from_millis(1)).as_deref(), Ok("a"));
    assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
    drop(rx);
    let SendError(back) = tx.send("c".to_string()).unwrap_err();
    assert_eq!(back, "c");
    let e: Box<dyn std::error::Error> = Box::new(SendError(1));
    assert!(!e.to_string().is_empty());
}

#[test]
fn std_mpsc_program_runs_unchanged() {
    with_timeout(30, || {
        assert_eq!(fan_in(8), (0..8).collect::<Vec<_>>());
        rendezvous();
        errors();
    });
}

#[test]
fn std_mpsc_program_runs_in_coroutines() {
    with_timeout(30, || {
        corio::run(|| {
            let (tx, rx) = mpsc::channel();
            let handles: Vec<_> = (0..8)
                .map(|id| {
                    let tx = tx.clone();
                    corio::spawn(move || tx.send(id).unwrap())
                })
                .collect();
            drop(tx);
            let mut got: Vec<i32> = rx.iter().collect();
            got.sort();
            assert_eq!(got, (0..8).collect::<Vec<_>>());
            for h in handles {
                h.join().unwrap();
            }
            let (stx, srx) = mpsc::sync_channel(0);
            let h = corio::spawn(move || stx.send("hi").unwrap());
            assert_eq!(srx.recv(), Ok("hi"));
            h.join().unwrap();
        });
    });
}
