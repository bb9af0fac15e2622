//! Fresh coroutines never wait behind a worker that is stuck in one
//! coroutine, and a coroutine whose operations are always ready still gives
//! its worker's other coroutines a turn (the cooperative budget).
//!
//! The reproduction (issue 10): the main coroutine spawns N coroutines that
//! each send on a `std::sync::mpsc` channel and park, then blocks its own
//! worker in `recv()` for the N messages. Only 5 of N ran: the other worker
//! placed every further fresh coroutine on the frozen one, through its
//! inbox, where nobody could take it. The failure is a hang, so each case
//! runs in a child process with a deadline.

mod common;

use common::run_in_child;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// How the main coroutine waits, blocking its worker.
#[derive(Clone, Copy)]
enum Block {
    /// In `std::sync::mpsc::Receiver::recv`.
    StdRecv,
    /// In a CPU loop that never yields.
    Spin,
}

fn main_blocks_its_worker(workers: usize, n: usize, block: Block) {
    let runtime = corio::Runtime::builder().workers(workers).build().unwrap();
    let ran = runtime.block_on(move || {
        let (tx, rx) = mpsc::channel();
        let ran = Arc::new(AtomicUsize::new(0));
        for _ in 0..n {
            let (tx, ran) = (tx.clone(), ran.clone());
            corio::spawn(move || {
                ran.fetch_add(1, Ordering::SeqCst);
                tx.send(()).unwrap();
                corio::coroutine::park(); // parks for good
            });
        }
        match block {
            Block::StdRecv => {
                for _ in 0..n {
                    rx.recv().unwrap(); // blocks this worker (on purpose)
                }
            }
            Block::Spin => {
                while ran.load(Ordering::SeqCst) < n {
                    std::hint::spin_loop(); // never yields (on purpose)
                }
            }
        }
        ran.load(Ordering::SeqCst)
    });
    assert_eq!(ran, n, "every fresh coroutine ran");
    // The parked ones are dropped with the runtime.
}

#[test]
fn fresh_coroutines_run_while_main_blocks_in_std_recv_2_workers() {
    run_in_child("child_std_recv_2_workers", Duration::from_secs(60));
}

#[test]
fn fresh_coroutines_run_while_main_blocks_in_std_recv_4_workers() {
    run_in_child("child_std_recv_4_workers", Duration::from_secs(60));
}

#[test]
fn fresh_coroutines_run_while_main_spins_2_workers() {
    run_in_child("child_spin_2_workers", Duration::from_secs(60));
}

#[test]
#[ignore = "run by fresh_coroutines_run_while_main_blocks_in_std_recv_2_workers in a child process"]
fn child_std_recv_2_workers() {
    for n in [10, 100, 2_000] {
        main_blocks_its_worker(2, n, Block::StdRecv);
    }
}

#[test]
#[ignore = "run by fresh_coroutines_run_while_main_blocks_in_std_recv_4_workers in a child process"]
fn child_std_recv_4_workers() {
    for n in [10, 100, 2_000] {
        main_blocks_its_worker(4, n, Block::StdRecv);
    }
}

#[test]
#[ignore = "run by fresh_coroutines_run_while_main_spins_2_workers in a child process"]
fn child_spin_2_workers() {
    for n in [10, 100, 2_000] {
        main_blocks_its_worker(2, n, Block::Spin);
    }
}

#[test]
fn an_always_ready_channel_does_not_starve_the_workers_other_coroutines() {
    // One worker: a coroutine draining an always-ready channel must let its
    // sibling run while the drain is in progress (it never parks, so only
    // the budget makes it yield).
    const ITEMS: usize = 1_000_000;
    common::within(1, Duration::from_secs(60), "drain with a sibling", || {
        let (tx, rx) = corio::chan::unbounded();
        for i in 0..ITEMS {
            tx.send(i).unwrap();
        }
        let sibling_runs = Arc::new(AtomicUsize::new(0));
        let runs = sibling_runs.clone();
        let sibling = corio::spawn(move || {
            for _ in 0..1_000 {
                runs.fetch_add(1, Ordering::SeqCst);
                corio::yield_now();
            }
        });
        let runs = sibling_runs.clone();
        let drain = corio::spawn(move || {
            let mut seen_at_half = None;
            for i in 0..ITEMS {
                assert_eq!(rx.recv().unwrap(), i);
                if i == ITEMS / 2 {
                    seen_at_half = Some(runs.load(Ordering::SeqCst));
                }
            }
            seen_at_half.unwrap()
        });
        let at_half = drain.join().unwrap();
        assert!(at_half > 0, "the sibling never ran during the first half of the drain");
        sibling.join().unwrap();
    });
}
