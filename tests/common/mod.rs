//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

#[path = "../../runtime/tests/common/child.rs"]
mod child;
#[allow(unused_imports)] // not every test binary runs a child
pub use child::{run_in_child, run_in_child_expecting_abort, run_in_child_expecting_abort_status};
#[path = "../../runtime/tests/common/threads.rs"]
mod threads;
#[allow(unused_imports)] // not every test binary watches threads
pub use threads::{current_tid, is_blocked, spawn_thread, wait_until_blocked};

use corio::coroutine::Coroutine;
use corio::WaitReason;

use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` as the main coroutine of a fresh runtime with `workers` threads,
/// failing with `what` if it takes longer than `limit` (a hang is a bug).
pub fn within<T: Send + 'static>(
    workers: usize,
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = corio::Runtime::builder().workers(workers).build().unwrap();
        let value = runtime.block_on(f);
        tx.send(value).ok();
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung for {limit:?}: {what}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the runtime thread panicked: {what}"),
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

/// Deterministic test bytes for message `index` of connection `conn`.
pub fn pattern(conn: usize, index: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (conn.wrapping_mul(31) ^ index.wrapping_mul(7) ^ i) as u8).collect()
}

/// Waits until `cond` holds, checking every millisecond, failing with `what`
/// after 10 s. Sleeps with `corio::time::sleep`, so from a coroutine it lets
/// the others run (even on one worker); on a plain thread it blocks it.
pub fn poll_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(10), "never happened within 10 s: {what}");
        corio::time::sleep(Duration::from_millis(1));
    }
}

/// Waits until the coroutine `co` is parked for `reason` (see [`poll_until`]).
pub fn wait_until_parked(co: &Coroutine, reason: WaitReason) {
    poll_until(&format!("{co:?} parked for {reason:?}"), || co.wait_reason() == reason);
}

/// `corio::spawn` from within a coroutine, also returning the new
/// coroutine's handle (once it has started, for [`wait_until_parked`]).
pub fn spawn_observed<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> (Coroutine, corio::JoinHandle<T>) {
    let (tx, rx) = corio::chan::bounded(1);
    let handle = corio::spawn(move || {
        tx.send(corio::coroutine::current()).unwrap();
        f()
    });
    let co = rx.recv_timeout(Duration::from_secs(10)).expect("the coroutine started");
    (co, handle)
}

/// Recurses until the stack overflows (512-byte frames the optimiser
/// keeps): for the tests that an overflow hits its guard page.
#[inline(never)]
pub fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    frame[0] = depth as u8;
    let frame = std::hint::black_box(frame);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + frame[0] as u64
}
