//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

#[path = "../../runtime/tests/common/child.rs"]
mod child;
#[allow(unused_imports)] // not every test binary runs a child
pub use child::run_in_child;

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
