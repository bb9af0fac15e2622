//! Per-worker counters behind `Runtime::metrics` (the public struct is
//! `debug::Metrics`, which reads these).
//!
//! Invariants: each counter is written by one party, named on its field.
//! The owner's counters are bumped with a relaxed load and store (no
//! read-modify-write: nobody else writes them), so counting costs a plain
//! store on the hot path; readers on other threads see a recent value.

use std::sync::atomic::{AtomicU64, Ordering};

/// Adds 1 to a counter only its owner writes (no atomic read-modify-write).
pub(crate) fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Adds `n` to a counter only its owner writes.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    if n != 0 {
        counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }
}

/// Adds `n` (possibly negative) to a counter only its owner writes.
pub(crate) fn add_signed(counter: &AtomicU64, n: i64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n as u64), Ordering::Relaxed);
}

/// One worker's counters.
#[derive(Default)]
pub(crate) struct WorkerCounters {
    /// Coroutines spawned by coroutines of this worker (owner).
    pub(crate) spawned: AtomicU64,
    /// Coroutines started here (owner).
    pub(crate) started: AtomicU64,
    /// Coroutines that finished here (owner).
    pub(crate) finished: AtomicU64,
    /// Resumes of a coroutine (owner); also the stall monitor's tick.
    pub(crate) resumes: AtomicU64,
    /// Coroutines parked right now (suspended in a park, woken or not; owner).
    pub(crate) parked: AtomicU64,
    /// Fresh coroutines this worker stole from others or the injector (owner).
    pub(crate) steals: AtomicU64,
    /// Fresh coroutines this worker handed to another by placement (owner).
    pub(crate) placements: AtomicU64,
    /// Wake-ups of its coroutines from other threads (any thread: fetch_add).
    pub(crate) remote_wakes: AtomicU64,
    /// Waits in its poller, blocking or not (owner).
    pub(crate) poll_waits: AtomicU64,
    /// Readiness events those waits delivered (owner).
    pub(crate) poll_events: AtomicU64,
    /// Timers armed on its heap (owner).
    pub(crate) timers_armed: AtomicU64,
    /// Stacks in its private cache right now (owner).
    pub(crate) stacks_cached: AtomicU64,
    /// Stalls the monitor reported on this worker (monitor).
    pub(crate) stalls: AtomicU64,
    /// The longest stall seen, in ms (monitor).
    pub(crate) longest_stall_ms: AtomicU64,
}
