//! Observing a plain thread from another one: is it blocked in the kernel (a
//! futex wait behind `park`, a write to a full socket)? Read from /proc, so a
//! test can wait for "the thread is blocked" instead of sleeping and hoping.

#![allow(dead_code)] // each test binary uses a part of it

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The calling thread's kernel id.
pub fn current_tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self");
    link.file_name().and_then(|name| name.to_str()).and_then(|name| name.parse().ok()).expect("a tid")
}

/// Is thread `tid` of this process asleep in the kernel (state S)? False
/// once it has exited.
pub fn is_blocked(tid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold anything.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('S')),
        Err(_) => false,
    }
}

/// Waits until thread `tid` is blocked in the kernel, failing after 10 s.
pub fn wait_until_blocked(tid: u32) {
    let start = Instant::now();
    while !is_blocked(tid) {
        assert!(start.elapsed() < Duration::from_secs(10), "thread {tid} never blocked");
        thread::sleep(Duration::from_millis(1));
    }
}

/// Spawns a thread running `f`; returns its kernel id (known before `f`
/// starts, for [`wait_until_blocked`]) and its handle.
pub fn spawn_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> (u32, thread::JoinHandle<T>) {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        tx.send(current_tid()).unwrap();
        f()
    });
    (rx.recv().expect("the thread started"), handle)
}
