//! What happens to coroutines still alive when the runtime goes away.

mod common;

use common::{current_tid, poll_until, spawn_observed, wait_until_blocked, wait_until_parked};
use corio::{Runtime, WaitReason};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct CountsDrops(Arc<AtomicUsize>);
impl Drop for CountsDrops {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn coroutines_alive_when_main_returns_are_dropped_with_destructors() {
    let drops = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (d, s) = (drops.clone(), started.clone());
    finishes_within(Duration::from_secs(30), "drop of 1,000 live coroutines", move || {
        corio::run(move || {
            for _ in 0..1000 {
                let guard = CountsDrops(d.clone());
                let started = s.clone();
                corio::spawn(move || {
                    let _guard = guard;
                    started.fetch_add(1, Ordering::SeqCst);
                    corio::coroutine::park(); // never unparked
                    corio::coroutine::park();
                    unreachable!("nobody unparks this coroutine twice");
                });
            }
            // Some of them start (and park); the rest may be dropped before starting.
            poll_until("a coroutine started", || s.load(Ordering::SeqCst) > 0);
        });
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1000, "every coroutine's captured state was dropped");
    assert!(started.load(Ordering::SeqCst) > 0);
}

#[test]
fn join_of_a_coroutine_cancelled_at_shutdown_reports_cancelled() {
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = CountsDrops(drops.clone());
    finishes_within(Duration::from_secs(30), "join of a cancelled coroutine", move || {
        let runtime = Runtime::builder().workers(2).build().unwrap();
        let handle = runtime.spawn(move || {
            let _guard = guard;
            loop {
                corio::time::sleep(Duration::from_secs(3600));
            }
        });
        drop(runtime);
        let err = handle.join().unwrap_err();
        assert!(corio::is_cancelled(&*err));
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the cancelled coroutine's state was dropped");
}

#[test]
fn destructors_that_block_during_shutdown_do_not_hang_it() {
    struct SleepsOnDrop(Arc<AtomicUsize>);
    impl Drop for SleepsOnDrop {
        fn drop(&mut self) {
            // park returns at once during the shutdown unwind.
            corio::coroutine::park();
            corio::time::sleep(Duration::from_millis(1));
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    finishes_within(Duration::from_secs(30), "destructors that park and sleep", move || {
        corio::run(move || {
            for _ in 0..10 {
                let d = d.clone();
                let (co, _) = spawn_observed(move || {
                    let _d = SleepsOnDrop(d);
                    corio::coroutine::park();
                });
                wait_until_parked(&co, WaitReason::Park); // its destructor is armed
            }
        });
    });
    assert_eq!(drops.load(Ordering::SeqCst), 10, "every destructor ran to its end");
}

#[test]
fn many_runtimes_start_and_stop_without_leaking_threads() {
    fn thread_count() -> usize {
        std::fs::read_dir("/proc/self/task").unwrap().count()
    }
    let before = thread_count();
    finishes_within(Duration::from_secs(60), "50 runtimes", || {
        for i in 0..50 {
            let runtime = Runtime::builder().workers(4).build().unwrap();
            assert_eq!(runtime.block_on(move || corio::spawn(move || i).join().unwrap()), i);
        }
    });
    // Other tests in this binary may run concurrently, so allow their threads.
    assert!(thread_count() <= before + 16, "worker threads leaked");
}

#[test]
fn destructors_that_yield_join_or_read_during_shutdown_neither_abort_nor_hang() {
    struct BlocksOnDrop {
        other: Option<corio::JoinHandle<()>>,
        socket: Option<corio::net::TcpStream>,
        drops: Arc<AtomicUsize>,
    }
    impl Drop for BlocksOnDrop {
        fn drop(&mut self) {
            corio::yield_now(); // would abort if it suspended during the unwind
            if let Some(other) = self.other.take() {
                let err = other.join().unwrap_err(); // would hang if it waited
                assert!(corio::is_cancelled(&*err));
            }
            if let Some(socket) = self.socket.take() {
                use std::io::Read;
                // Returns (EOF or an error) instead of waiting for data.
                let _ = (&socket).read(&mut [0u8; 1]);
            }
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    finishes_within(Duration::from_secs(30), "destructors that yield, join and read", move || {
        // One worker, so the joined coroutine is unwound after its joiner.
        let runtime = Runtime::builder().workers(1).build().unwrap();
        runtime.block_on(move || {
            let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let client = corio::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            let (first_co, first) = spawn_observed(corio::coroutine::park);
            let (guarded, _) = spawn_observed(move || {
                let _guard = BlocksOnDrop { other: Some(first), socket: Some(server), drops: d };
                corio::coroutine::park();
            });
            // Both started, in this order, and wait for the shutdown.
            wait_until_parked(&first_co, WaitReason::Park);
            wait_until_parked(&guarded, WaitReason::Park);
            corio::spawn(move || {
                let _client = client; // kept open until shutdown
                corio::coroutine::park();
            });
        });
        drop(runtime); // must return
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the destructor ran to its end");
}

/// Runs `f` on a thread and fails if it does not return within `limit`.
fn finishes_within(limit: Duration, what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        tx.send(()).ok();
    });
    rx.recv_timeout(limit).unwrap_or_else(|_| panic!("did not finish within {limit:?}: {what}"));
}

#[test]
fn a_destructor_that_sleeps_for_an_hour_does_not_hold_up_shutdown() {
    struct SleepsOnDrop(Arc<AtomicUsize>);
    impl Drop for SleepsOnDrop {
        fn drop(&mut self) {
            corio::time::sleep(Duration::from_secs(3600));
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    finishes_within(Duration::from_secs(30), "hour-long sleep in a destructor", move || {
        corio::run(move || {
            let (co, _) = spawn_observed(move || {
                let _d = SleepsOnDrop(d);
                corio::coroutine::park();
            });
            wait_until_parked(&co, WaitReason::Park);
        });
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the destructor's sleep returned early");
}

#[test]
fn parking_after_catching_the_shutdown_unwind_raises_it_again() {
    // A Go-style supervisor (`loop { catch_unwind(serve) }`) catches the
    // unwind that ends its coroutine at shutdown. Every further park raises
    // it again instead of returning at once (which would spin), so a loop
    // that re-raises or gives up ends; one that catches for ever cannot be
    // stopped by any runtime without preemption.
    let caught = Arc::new(AtomicUsize::new(0));
    let counter = caught.clone();
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = CountsDrops(drops.clone());
    finishes_within(Duration::from_secs(30), "catch-all supervisor loop", move || {
        corio::run(move || {
            let (co, _) = spawn_observed(move || {
                let _guard = guard;
                for _ in 0..1000 {
                    if std::panic::catch_unwind(corio::coroutine::park).is_err() {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
            wait_until_parked(&co, WaitReason::Park);
        });
    });
    assert_eq!(caught.load(Ordering::SeqCst), 1000, "each park after the first unwind raised it again");
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the supervisor's state was dropped");
}

#[test]
fn a_coroutine_that_panics_with_its_own_payload_while_unwound_does_not_abort() {
    let drops = Arc::new(AtomicUsize::new(0));
    let guard = CountsDrops(drops.clone());
    finishes_within(Duration::from_secs(30), "re-panic during shutdown", move || {
        corio::run(move || {
            let (co, _) = spawn_observed(move || {
                let _guard = guard;
                if std::panic::catch_unwind(corio::coroutine::park).is_err() {
                    panic!("wrapped the shutdown unwind in my own panic");
                }
            });
            wait_until_parked(&co, WaitReason::Park);
        });
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the coroutine's state was dropped during its own panic");
}

#[test]
fn a_never_started_coroutine_whose_captured_value_joins_another_does_not_hang_drop() {
    struct JoinsOnDrop(Option<corio::JoinHandle<()>>, Arc<AtomicUsize>);
    impl Drop for JoinsOnDrop {
        fn drop(&mut self) {
            if let Some(h) = self.0.take() {
                assert!(h.join().is_err(), "the other coroutine never ran either");
            }
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let d = drops.clone();
    finishes_within(Duration::from_secs(30), "join in a never-started coroutine's drop", move || {
        let runtime = Runtime::builder().workers(1).build().unwrap();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        // Keep the only worker busy so the next two stay queued.
        let _busy = runtime.spawn(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv(); // blocks the worker on purpose
        });
        started_rx.recv().unwrap();
        let second = runtime.spawn(|| ());
        let guard = JoinsOnDrop(Some(second), d);
        runtime.spawn(move || drop(guard));
        // Release the worker only once the shutdown has begun (this thread is
        // blocked joining the workers), or it would start the two queued ones.
        let me = current_tid();
        let releaser = std::thread::spawn(move || {
            wait_until_blocked(me);
            drop(release_tx); // the worker's coroutine returns...
        });
        drop(runtime); // ...and shutdown drops the two queued ones unstarted
        releaser.join().unwrap();
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1, "the captured value's destructor ran to its end");
}

#[test]
fn dropping_a_runtime_inside_its_own_coroutine_is_reported_not_a_deadlock() {
    finishes_within(Duration::from_secs(30), "runtime dropped from within", || {
        let runtime = Arc::new(parking_lot::Mutex::new(Some(Runtime::builder().workers(2).build().unwrap())));
        let inner = runtime.clone();
        let handle = runtime.lock().as_ref().unwrap().spawn(move || {
            let rt = inner.lock().take();
            drop(rt); // leaked with a message instead of joining its own thread
            7
        });
        assert_eq!(handle.join().unwrap(), 7);
    });
}
