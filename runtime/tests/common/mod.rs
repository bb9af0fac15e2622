//! Helpers shared by the integration tests.
#![allow(dead_code)]

mod child;
#[allow(unused_imports)] // not every test binary runs a child
pub use child::{run_in_child, run_in_child_expecting_abort};
mod threads;
#[allow(unused_imports)] // not every test binary watches threads
pub use threads::{current_tid, is_blocked, spawn_thread, wait_until_blocked};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use corio::coroutine::Coroutine;
use corio::WaitReason;

/// Runs `f` on a fresh thread and fails the test if it has not finished
/// within `secs` seconds (a deadlock guard); re-raises a panic of `f`.
pub fn with_timeout<F: FnOnce() + Send + 'static>(secs: u64, f: F) {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = h.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("test did not finish within {secs} s (deadlock?)")
        }
    }
}

/// Counts live instances, to check that channel values are dropped exactly once.
pub struct Tracked {
    pub value: usize,
    live: Arc<AtomicUsize>,
}

impl Tracked {
    pub fn new(value: usize, live: &Arc<AtomicUsize>) -> Tracked {
        live.fetch_add(1, Ordering::SeqCst);
        Tracked { value, live: Arc::clone(live) }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits (without a fixed sleep) until `cond` holds, failing after 10 s.
pub fn eventually(mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(10), "condition never became true");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Waits until the coroutine `co` is parked for `reason`, failing after 10 s.
/// Call it from a plain thread (it sleeps the thread between checks).
pub fn wait_until_parked(co: &Coroutine, reason: WaitReason) {
    let start = std::time::Instant::now();
    while co.wait_reason() != reason {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{co:?} never parked for {reason:?} (now {:?})",
            co.wait_reason()
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Spawns `f` on `rt`; returns the coroutine's handle (once it has started,
/// for [`wait_until_parked`]) and its join handle.
pub fn spawn_coroutine<T: Send + 'static>(
    rt: &corio::Runtime,
    f: impl FnOnce() -> T + Send + 'static,
) -> (Coroutine, corio::JoinHandle<T>) {
    let (tx, rx) = mpsc::channel();
    let handle = rt.spawn(move || {
        tx.send(corio::coroutine::current()).unwrap();
        f()
    });
    (rx.recv_timeout(Duration::from_secs(10)).expect("the coroutine started"), handle)
}
