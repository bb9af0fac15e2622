//! `Metrics`: a runtime's counters and gauges as a plain struct
//! (`Runtime::metrics`, `corio::debug::metrics`). Reading them costs the
//! caller a few relaxed loads per worker and one lock of the stack pool;
//! keeping them costs the workers plain stores (`sched::metrics`).

use crate::blocking::{BlockingMetrics, Pool};
use crate::sched::Scheduler;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One worker's figures (or the sum over the workers, in [`Metrics::total`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerMetrics {
    /// Coroutines started on this worker and not finished.
    pub alive: u64,
    /// Of those, the ones suspended in a park (woken or not).
    pub parked: u64,
    /// Of those, the ones ready to run (or running).
    pub runnable: u64,
    /// Coroutines spawned on it (or placed on it) and not started yet.
    pub not_started: u64,
    /// Coroutines spawned by its coroutines, in all.
    pub spawned: u64,
    /// Coroutines started on it, in all.
    pub started: u64,
    /// Coroutines that finished on it, in all.
    pub finished: u64,
    /// Resumes of a coroutine, in all.
    pub resumes: u64,
    /// Fresh coroutines it stole from other workers or the global queue.
    pub steals: u64,
    /// Fresh coroutines it handed to a less loaded worker (placement).
    pub placements: u64,
    /// Wake-ups of its coroutines that came from other threads.
    pub remote_wakes: u64,
    /// Waits in its poller (blocking when idle, or a quick look when busy).
    pub poll_waits: u64,
    /// Readiness events those waits delivered.
    pub poll_events: u64,
    /// Timers armed on its heap (timed parks, sleeps, I/O deadlines).
    pub timers_armed: u64,
    /// Stacks in its private cache right now.
    pub stacks_cached: u64,
    /// Stalls the monitor reported (a coroutine ran past the threshold).
    pub stalls: u64,
    /// The longest of those stalls.
    pub longest_stall: Duration,
}

/// A runtime's metrics ([`Runtime::metrics`](crate::Runtime::metrics)).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Per worker, by index.
    pub workers: Vec<WorkerMetrics>,
    /// The sum over the workers (`longest_stall`: the longest).
    pub total: WorkerMetrics,
    /// Coroutines spawned from outside the runtime, not started yet.
    pub not_started_global: u64,
    /// Stacks carved out of memory mappings so far (each is a coroutine's,
    /// cached, or free in the pool).
    pub stacks_mapped: u64,
    /// Stacks free in the shared pool.
    pub stacks_pooled: u64,
    /// Of those, the ones whose pages may still be resident (not trimmed
    /// since their coroutine ended).
    pub stacks_pooled_warm: u64,
    /// Stacks whose pages the trim returned to the OS, in all
    /// ([`RuntimeBuilder::stack_trim_after`](crate::RuntimeBuilder::stack_trim_after)).
    pub stacks_trimmed: u64,
    /// The resident bytes those trims returned, in all.
    pub stack_bytes_trimmed: u64,
    /// The blocking pool (`corio::blocking`).
    pub blocking: BlockingMetrics,
}

impl Metrics {
    pub(crate) fn of(scheduler: &Scheduler) -> Metrics {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let workers: Vec<WorkerMetrics> = scheduler
            .workers
            .iter()
            .map(|w| {
                let c = &w.metrics;
                let alive = w.live.load(Ordering::Relaxed) as u64;
                let parked = load(&c.parked).min(alive);
                WorkerMetrics {
                    alive,
                    parked,
                    runnable: alive - parked,
                    not_started: (w.stealer.len() + w.placed.len()) as u64,
                    spawned: load(&c.spawned),
                    started: load(&c.started),
                    finished: load(&c.finished),
                    resumes: load(&c.resumes),
                    steals: load(&c.steals),
                    placements: load(&c.placements),
                    remote_wakes: load(&c.remote_wakes),
                    poll_waits: load(&c.poll_waits),
                    poll_events: load(&c.poll_events),
                    timers_armed: load(&c.timers_armed),
                    stacks_cached: load(&c.stacks_cached),
                    stalls: load(&c.stalls),
                    longest_stall: Duration::from_millis(load(&c.longest_stall_ms)),
                }
            })
            .collect();
        let mut total = WorkerMetrics::default();
        for w in &workers {
            total.alive += w.alive;
            total.parked += w.parked;
            total.runnable += w.runnable;
            total.not_started += w.not_started;
            total.spawned += w.spawned;
            total.started += w.started;
            total.finished += w.finished;
            total.resumes += w.resumes;
            total.steals += w.steals;
            total.placements += w.placements;
            total.remote_wakes += w.remote_wakes;
            total.poll_waits += w.poll_waits;
            total.poll_events += w.poll_events;
            total.timers_armed += w.timers_armed;
            total.stacks_cached += w.stacks_cached;
            total.stalls += w.stalls;
            total.longest_stall = total.longest_stall.max(w.longest_stall);
        }
        let pool = scheduler.stack_pool.stats();
        Metrics {
            workers,
            total,
            not_started_global: scheduler.injector.len() as u64,
            stacks_mapped: pool.carved as u64,
            stacks_pooled: pool.free as u64,
            stacks_pooled_warm: pool.warm as u64,
            stacks_trimmed: pool.trimmed_stacks,
            stack_bytes_trimmed: pool.trimmed_bytes,
            blocking: Pool::of(scheduler.id).map(|pool| pool.metrics()).unwrap_or_default(),
        }
    }
}

/// One line per worker and a total, for logs and `examples/echo --stats`.
impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |f: &mut fmt::Formatter<'_>, who: &str, m: &WorkerMetrics| {
            writeln!(
                f,
                "{who:>6}: alive {} (parked {}, runnable {}), not started {}, spawned {}, finished {}, \
                 resumes {}, steals {}, placements {}, remote wakes {}, polls {} ({} events), timers {}, \
                 stalls {} (longest {:?})",
                m.alive,
                m.parked,
                m.runnable,
                m.not_started,
                m.spawned,
                m.finished,
                m.resumes,
                m.steals,
                m.placements,
                m.remote_wakes,
                m.poll_waits,
                m.poll_events,
                m.timers_armed,
                m.stalls,
                m.longest_stall
            )
        };
        for (i, w) in self.workers.iter().enumerate() {
            line(f, &format!("w{i}"), w)?;
        }
        line(f, "total", &self.total)?;
        write!(
            f,
            " stacks: {} mapped, {} pooled ({} warm), {} cached, {} trimmed ({} KiB returned); {} not started (global); \
             blocking pool: {} threads ({} idle), {} queued, {} done",
            self.stacks_mapped,
            self.stacks_pooled,
            self.stacks_pooled_warm,
            self.total.stacks_cached,
            self.stacks_trimmed,
            self.stack_bytes_trimmed / 1024,
            self.not_started_global,
            self.blocking.threads,
            self.blocking.idle,
            self.blocking.queued,
            self.blocking.completed
        )
    }
}
