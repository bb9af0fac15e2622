//! `corio::scope` (borrowing coroutines), `coroutine_local!`, and
//! `future::block_on` woken from a plain thread many times.

mod common;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_hundred_scoped_coroutines_each_mutate_their_own_chunk_of_a_borrowed_vec() {
    common::within(2, Duration::from_secs(60), "scope", || {
        let mut data: Vec<u64> = (0..100_000).collect();
        let total = AtomicUsize::new(0); // borrowed by reference too
        corio::scope(|s| {
            for chunk in data.chunks_mut(1_000) {
                let total = &total;
                s.spawn(move || {
                    for x in chunk.iter_mut() {
                        *x *= 2;
                    }
                    corio::yield_now(); // interleave with the others
                    total.fetch_add(chunk.len(), Ordering::SeqCst);
                });
            }
        });
        assert_eq!(total.load(Ordering::SeqCst), 100_000);
        assert!(data.iter().enumerate().all(|(i, &x)| x == 2 * i as u64));
    });
}

/// A scoped coroutine's value may borrow for 'scope: when its handle is
/// dropped unjoined, the value is dropped before `scope` returns. Its
/// destructor here is slow (it sleeps), and records, in a value `scope` lent
/// it, that it ran: the scope must have waited for it.
#[test]
fn a_detached_scoped_coroutines_value_is_dropped_before_the_scope_returns() {
    struct SlowDrop<'a>(&'a AtomicUsize);
    impl Drop for SlowDrop<'_> {
        fn drop(&mut self) {
            corio::time::sleep(Duration::from_millis(50));
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    common::within(2, Duration::from_secs(30), "scope value drop", || {
        for _ in 0..5 {
            let dropped = AtomicUsize::new(0);
            corio::scope(|s| {
                for _ in 0..4 {
                    let dropped = &dropped;
                    drop(s.spawn(move || SlowDrop(dropped))); // detached at once
                }
            });
            assert_eq!(dropped.load(Ordering::SeqCst), 4, "scope returned before a value was dropped");
        }
    });
}

#[test]
fn a_panicking_scoped_coroutine_makes_the_scope_panic_after_all_finish() {
    common::within(2, Duration::from_secs(30), "scope panic", || {
        let finished = AtomicUsize::new(0);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            corio::scope(|s| {
                s.spawn(|| panic!("one of them"));
                for _ in 0..10 {
                    s.spawn(|| {
                        corio::time::sleep(Duration::from_millis(5));
                        finished.fetch_add(1, Ordering::SeqCst);
                    });
                }
            })
        }));
        assert!(result.is_err(), "the scope panics");
        assert_eq!(finished.load(Ordering::SeqCst), 10, "after every coroutine finished");
        // A joined panic is not propagated (as std's scope).
        let value = corio::scope(|s| {
            let h = s.spawn(|| -> u8 { panic!("joined") });
            h.join().is_err()
        });
        assert!(value);
    });
}

corio::coroutine_local! {
    static COUNTER: Cell<u64> = Cell::new(0);
}

#[test]
fn coroutine_locals_are_per_coroutine_across_10000_interleaving_coroutines() {
    common::within(2, Duration::from_secs(60), "coroutine_local", || {
        let handles: Vec<_> = (0..10_000u64)
            .map(|i| {
                corio::spawn(move || {
                    for _ in 0..3 {
                        COUNTER.with(|c| c.set(c.get() + i));
                        corio::yield_now(); // others run on this worker in between
                    }
                    COUNTER.with(|c| c.get())
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), 3 * i as u64);
        }
        // The main coroutine's own value was never touched by the others.
        assert_eq!(COUNTER.with(|c| c.get()), 0);
    });
}

struct DropCounter(Arc<AtomicUsize>);
impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn coroutine_locals_are_dropped_when_their_coroutine_ends() {
    use std::cell::RefCell;
    corio::coroutine_local! {
        static HELD: RefCell<Option<DropCounter>> = RefCell::new(None);
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    common::within(2, Duration::from_secs(30), "locals dropped", move || {
        let handles: Vec<_> = (0..100)
            .map(|_| {
                let d = d.clone();
                corio::spawn(move || HELD.with(|h| *h.borrow_mut() = Some(DropCounter(d))))
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        // Joined means finished; the worker drops the locals as it returns.
        common::poll_until("100 locals dropped", || d.load(Ordering::SeqCst) == 100);
    });
    assert_eq!(drops.load(Ordering::SeqCst), 100);
}

#[test]
fn block_on_woken_from_a_plain_thread_100000_times() {
    common::within(2, Duration::from_secs(60), "100,000 wakes", || {
        let (tx, rx) = async_channel::bounded::<u32>(1);
        let sender = std::thread::spawn(move || {
            for i in 0..100_000 {
                tx.send_blocking(i).unwrap();
            }
        });
        let mut sum = 0u64;
        for _ in 0..100_000 {
            sum += corio::future::block_on(rx.recv()).unwrap() as u64;
        }
        sender.join().unwrap();
        assert_eq!(sum, (0..100_000u64).sum::<u64>());
    });
}

#[test]
fn a_scope_alive_at_shutdown_ends_cleanly() {
    common::run_in_child("child_scope_at_shutdown", Duration::from_secs(60));
}

#[test]
#[ignore = "run by a_scope_alive_at_shutdown_ends_cleanly in a child process"]
fn child_scope_at_shutdown() {
    // A coroutine inside a scope, its scoped coroutines parked, when the
    // runtime shuts down: they are unwound before it (newest first), so the
    // scope's frame is never freed under them, and nothing aborts.
    for workers in [1, 2] {
        let runtime = corio::Runtime::builder().workers(workers).build().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        runtime.spawn(move || {
            let borrowed = vec![1u8; 1024];
            corio::scope(|s| {
                for _ in 0..3 {
                    let b = &borrowed;
                    s.spawn(move || loop {
                        corio::coroutine::park();
                        assert_eq!(b.len(), 1024);
                    });
                }
                tx.send(()).unwrap();
                loop {
                    corio::coroutine::park();
                }
            });
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        drop(runtime);
    }
}
