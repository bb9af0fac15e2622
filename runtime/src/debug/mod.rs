//! Seeing a stuck runtime: the coroutine dump, the stall report, metrics
//! (docs/observability.md is the user's guide).
//!
//! - [`dump`]: every coroutine of a runtime, what it waits on, for how long,
//!   where it was spawned, and its stack, symbolised ([`Dump`]; `Display` in
//!   Go's shape, `to_json`). Collected by the workers themselves
//!   (`sched::dump`); a worker stuck in one coroutine is sampled by a signal
//!   instead (`sample`).
//! - The stall report, by each runtime's monitor thread (`monitor`).
//! - [`metrics()`]: counters and gauges per worker ([`Metrics`]).
//!
//! Layer: on `sched` (and the public API); nothing below imports it.

mod collect;
mod format;
mod info;
mod metrics;
pub(crate) mod monitor;
mod sample;
mod symbolize;

pub use self::info::{
    CoroutineInfo, CoroutineState, Dump, Frame, IoDirection, SpawnLocation, SyncKind, WaitObject, WorkerInfo,
};
pub use self::metrics::{Metrics, WorkerMetrics};
use crate::sched::Scheduler;

/// A snapshot of every coroutine of the runtime the caller is in (called
/// from one of its coroutines), or else of the most recently built runtime
/// still alive (called from a plain thread; use [`Runtime::dump`] to choose
/// among several). Callable from anywhere while the runtime keeps running:
/// each worker answers for its own coroutines between two runs, so the
/// caller waits up to a second; a worker stuck in one coroutine does not
/// answer, and its running coroutine is sampled instead. With no runtime,
/// the dump is empty.
///
/// ```
/// corio::run(|| {
///     let h = corio::coroutine::Builder::new()
///         .name("sleeper".into())
///         .spawn(|| corio::time::sleep(std::time::Duration::from_secs(60)))
///         .unwrap();
///     while h.is_finished() { corio::yield_now(); }
///     corio::time::sleep(std::time::Duration::from_millis(10));
///     let dump = corio::debug::dump();
///     assert!(dump.find("sleeper").is_some());
///     println!("{dump}");
/// });
/// ```
///
/// [`Runtime::dump`]: crate::Runtime::dump
pub fn dump() -> Dump {
    match Scheduler::current_or_latest() {
        Some(scheduler) => collect::dump_scheduler(&scheduler),
        None => Dump {
            taken_at: std::time::SystemTime::now(),
            workers: Vec::new(),
            coroutines: Vec::new(),
            not_started_global: 0,
        },
    }
}

/// The metrics of the runtime [`dump`] would pick (empty with no runtime).
pub fn metrics() -> Metrics {
    Scheduler::current_or_latest().map(|s| Metrics::of(&s)).unwrap_or_default()
}

pub(crate) fn dump_of(scheduler: &Scheduler) -> Dump {
    collect::dump_scheduler(scheduler)
}
