//! Blocking work off the workers: [`spawn_blocking`] runs a closure on a
//! pool of plain threads and returns the same [`JoinHandle`] as `spawn`
//! (its `join` parks a coroutine, blocks a plain thread, and returns a panic
//! as `Err`).
//!
//! A worker runs many coroutines, so anything that blocks its thread (a file
//! read, a DNS lookup, a C library call, a long computation) stalls every
//! coroutine started on it. Such work belongs here.
//!
//! # The pool
//!
//! One pool per runtime (`RuntimeBuilder::max_blocking_threads`, default
//! [`DEFAULT_MAX_BLOCKING_THREADS`]); calls from a plain thread outside any
//! runtime use a process-wide pool with the default limit. The pool is
//! elastic: a call that finds no idle thread starts one, up to the limit;
//! past the limit calls queue, first in first out (never unbounded threads).
//! A thread idle for [`IDLE_TIMEOUT`] exits. Queue depth and thread counts
//! are in the runtime's metrics (`Metrics::blocking`).
//!
//! States of the pool (under its lock): `threads` started and not exited,
//! `idle` of them waiting for work; `queue` of jobs not started. Submit:
//! push, then wake an idle thread if there is one, else start a thread if
//! below the limit (else the job waits its turn). A thread: take the head of
//! the queue and run it outside the lock; with nothing queued, wait (idle)
//! up to `IDLE_TIMEOUT`, then exit if still nothing. Shutdown (the runtime is
//! dropped): queued jobs are dropped (their `JoinHandle`s report
//! [`CANCELLED`](crate::CANCELLED)), idle threads exit, running jobs finish on
//! their own (their threads are not joined: a job may block for ever).
//!
//! **A blocking job that waits for another blocking job** (joins it, or waits
//! on a channel it fills) can deadlock once the pool is at its limit: every
//! thread waits and the job that would release them is queued behind them.
//! Keep blocking jobs independent, or raise the limit.

mod pool;

pub(crate) use self::pool::Pool;
pub use self::pool::{BlockingMetrics, DEFAULT_MAX_BLOCKING_THREADS, IDLE_TIMEOUT};

use crate::coroutine::{CoroutineId, JoinHandle};
use crate::task::{self, reserve_ids};
use std::panic::{self, AssertUnwindSafe};

/// Runs `f` on the blocking pool of the current runtime (a process-wide pool
/// when called from a plain thread) and returns a handle to its result.
///
/// ```
/// corio::run(|| {
///     let h = corio::blocking::spawn_blocking(|| std::fs::read_to_string("/proc/self/stat"));
///     assert!(h.join().unwrap().is_ok());
/// });
/// ```
///
/// # Panics
/// If no thread can be started and none is running (out of threads).
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: 'static: nothing to outlive.
    unsafe { spawn_blocking_borrowing(f) }
}

/// `spawn_blocking` for a closure that may borrow (lifetime `'a`).
///
/// # Safety
/// The caller must not let `'a` end before the returned handle's
/// `join_to_the_end` has returned (the job runs or is dropped by then).
pub(crate) unsafe fn spawn_blocking_borrowing<'a, F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    let (completer, slot) = task::pair::<T>();
    let id = reserve_ids(1);
    let job: Box<dyn FnOnce() + Send + 'a> = Box::new(move || {
        let outcome = panic::catch_unwind(AssertUnwindSafe(f));
        // Delivering may drop a result that panics in its destructor: there
        // is nobody to report that to (as std does for a thread's result).
        if panic::catch_unwind(AssertUnwindSafe(|| completer.complete(outcome))).is_err() {
            task::abort_with("a blocking task's result panicked when dropped");
        }
    });
    // SAFETY: only the lifetime changes; the caller keeps 'a alive until the
    // job has run or been dropped (the contract above).
    let job: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(job) };
    pool_for_caller().submit(job);
    JoinHandle::new(slot, CoroutineId::from_raw(id))
}

/// Runs `f` on the blocking pool when called from a coroutine (so the worker
/// keeps running others), directly otherwise; returns its value, resuming
/// its panic. For corio's own offloaded calls (fs, DNS).
pub(crate) fn run_blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    if !crate::sched::context::in_coroutine() || crate::sched::context::cancelling() {
        return f();
    }
    // SAFETY: joined to the end right here, before `f`'s borrows end.
    let handle = unsafe { spawn_blocking_borrowing(f) };
    match handle.join_to_the_end() {
        Ok(value) => value,
        Err(payload) if crate::is_cancelled(&*payload) => {
            panic::resume_unwind(Box::new(crate::CANCELLED));
        }
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// The pool of the caller's runtime; for a plain thread, the process-wide
/// pool (not the latest runtime's: a job of a thread unrelated to a runtime
/// must not be cancelled when that runtime shuts down).
fn pool_for_caller() -> std::sync::Arc<Pool> {
    match crate::sched::context::worker() {
        Some(worker) => Pool::of(worker.scheduler.id).unwrap_or_else(Pool::global),
        None => Pool::global(),
    }
}
