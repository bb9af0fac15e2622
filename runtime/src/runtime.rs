//! The runtime: its worker threads, its shared queues, and its life cycle.
//!
//! `Runtime::builder().workers(n).stack_size(bytes).build()` starts `n` worker
//! threads; `block_on(f)` runs `f` as a coroutine and blocks the calling thread
//! until it returns; dropping the runtime shuts it down:
//!
//! 1. the shutdown flag is set and every worker is woken;
//! 2. each worker, between two coroutine runs, sees the flag, force-unwinds
//!    every coroutine it owns *on its own thread* (their destructors run;
//!    `park` returns at once inside them), drops what is queued (the
//!    JoinHandles of coroutines that never ran report them as cancelled), and
//!    exits;
//! 3. the dropping thread joins the workers, then frees the queues and stacks.
//!
//! A coroutine that never parks or yields keeps its worker from seeing the
//! flag (there is no preemption); shutdown then waits for it.
//!
//! `corio::run(f)` is the one-line entry: a default runtime, `block_on(f)`,
//! and shutdown, so coroutines still alive when `f` returns are dropped with
//! their destructors run, as a Go program ends when `main` returns.

use crate::blocking;
use crate::coroutine::{self, JoinHandle};
use crate::debug::monitor::{self, Monitor};
use crate::debug::{self, Dump, Metrics};
use crate::sched::{self, context, Scheduler, WorkerHandle};
use crate::stack::{overflow, round_stack_size};
use crate::task::Task;
use crossbeam_deque::Worker;
use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Default usable stack size of a coroutine.
pub const DEFAULT_STACK_SIZE: usize = 64 << 10;

/// Default threshold of the stall report.
pub const DEFAULT_STALL_THRESHOLD: Duration = Duration::from_millis(100);

/// Default window of the stack trim ([`RuntimeBuilder::stack_trim_after`]).
pub const DEFAULT_STACK_TRIM_AFTER: Duration = Duration::from_secs(5);

/// Configures and builds a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeBuilder {
    workers: Option<usize>,
    stack_size: usize,
    thread_name: String,
    stall_threshold: Option<Option<Duration>>,
    dump_signals: Vec<libc::c_int>,
    max_blocking_threads: usize,
    stack_trim_after: Option<Duration>,
}

impl RuntimeBuilder {
    fn new() -> RuntimeBuilder {
        RuntimeBuilder {
            workers: None,
            stack_size: DEFAULT_STACK_SIZE,
            thread_name: "corio-worker".into(),
            stall_threshold: None,
            dump_signals: Vec::new(),
            max_blocking_threads: blocking::DEFAULT_MAX_BLOCKING_THREADS,
            stack_trim_after: Some(DEFAULT_STACK_TRIM_AFTER),
        }
    }

    /// Number of worker threads (default: the available parallelism).
    pub fn workers(mut self, count: usize) -> RuntimeBuilder {
        self.workers = Some(count.max(1));
        self
    }

    /// Default usable stack size of each coroutine, in bytes (default 64 KiB;
    /// rounded up to whole pages, at least 16 KiB). There is no growth: a
    /// coroutine that needs more overflows into its guard page and the process
    /// aborts with a message naming the coroutine.
    pub fn stack_size(mut self, bytes: usize) -> RuntimeBuilder {
        self.stack_size = bytes;
        self
    }

    /// Prefix of the worker threads' names (default `corio-worker`).
    pub fn thread_name(mut self, name: impl Into<String>) -> RuntimeBuilder {
        self.thread_name = name.into();
        self
    }

    /// Report a worker that runs one coroutine for longer than `threshold`
    /// without yielding (the stall report, docs/observability.md); `None`
    /// turns the report off. Default: 100 ms, or `CORIO_STALL_MS` from the
    /// environment (0 turns it off). Set here, it wins over the environment.
    /// The report is one of the monitor thread's jobs: the thread runs while
    /// any of them is on (see also [`stack_trim_after`](Self::stack_trim_after)).
    pub fn stall_threshold(mut self, threshold: Option<Duration>) -> RuntimeBuilder {
        self.stall_threshold = Some(threshold);
        self
    }

    /// Print a coroutine dump on stderr when the process receives `signal`
    /// (e.g. `libc::SIGQUIT`), and keep running (Java's `jcmd Thread.print`;
    /// Go exits after its SIGQUIT dump, but a dump is a diagnosis here, not a
    /// crash report). May be called for several signals. Default: none, or
    /// `CORIO_DUMP_SIGNAL=SIGQUIT|SIGUSR1|SIGUSR2` from the environment.
    pub fn dump_on_signal(mut self, signal: libc::c_int) -> RuntimeBuilder {
        self.dump_signals.push(signal);
        self
    }

    /// The most threads the blocking pool may run at once
    /// ([`corio::blocking`](crate::blocking); default 512). Past it, blocking
    /// jobs queue.
    pub fn max_blocking_threads(mut self, count: usize) -> RuntimeBuilder {
        self.max_blocking_threads = count.max(1);
        self
    }

    /// Return the memory of stacks that stay unused to the OS. A finished
    /// coroutine's stack is kept for the next one with the pages it touched
    /// still resident (reuse then costs no page fault); stacks that no spawn
    /// needed during a whole window of `after` (beyond a few kept per worker
    /// and per stack size) have their pages released, so a server that once
    /// had 100,000 connections does not keep their stack memory for ever.
    /// The monitor thread does it, off the workers. A stack is released after
    /// staying unused for between one and about two windows; `None` keeps
    /// every page (and, with the stall report and dump signals off, starts no
    /// monitor thread). Default: 5 s ([`DEFAULT_STACK_TRIM_AFTER`]).
    pub fn stack_trim_after(mut self, after: Option<Duration>) -> RuntimeBuilder {
        self.stack_trim_after = after.map(|after| after.max(Duration::from_millis(1)));
        self
    }

    /// Starts the worker threads.
    pub fn build(self) -> io::Result<Runtime> {
        overflow::install_handler();
        let count = self.workers.unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()));
        let locals: Vec<Worker<Arc<Task>>> = (0..count).map(|_| Worker::new_fifo()).collect();
        let workers = locals
            .iter()
            .enumerate()
            .map(|(i, w)| WorkerHandle::new(i, w.stealer()).map(Arc::new))
            .collect::<io::Result<_>>()?;
        let scheduler = Arc::new(Scheduler::new(workers, round_stack_size(self.stack_size)?));
        Scheduler::register(&scheduler);
        let pool = blocking::Pool::new(self.max_blocking_threads, &self.thread_name);
        blocking::Pool::register(scheduler.id, &pool);
        let mut runtime = Runtime {
            scheduler: scheduler.clone(),
            threads: Vec::with_capacity(count),
            monitor: None,
            blocking: pool,
        };
        for (index, fresh) in locals.into_iter().enumerate() {
            let scheduler = scheduler.clone();
            let thread = thread::Builder::new()
                .name(format!("{}-{index}", self.thread_name))
                .spawn(move || sched::run_worker(scheduler, index, fresh))?;
            runtime.threads.push(thread);
        }
        let threshold = self
            .stall_threshold
            .or_else(monitor::stall_threshold_from_env)
            .unwrap_or(Some(DEFAULT_STALL_THRESHOLD));
        let mut signals = self.dump_signals.clone();
        signals.extend(monitor::dump_signal_from_env());
        let config =
            monitor::MonitorConfig { threshold, dump_signals: &signals, trim_after: self.stack_trim_after };
        runtime.monitor = monitor::start(&scheduler, config, &self.thread_name)?;
        Ok(runtime)
    }
}

/// A set of worker threads running coroutines.
///
/// Dropping it shuts it down: every worker finishes the coroutine it is
/// running, unwinds every coroutine still alive on its own thread (their
/// destructors run; blocking calls inside them give up instead of waiting),
/// drops the coroutines that never started (their `JoinHandle`s report
/// [`CANCELLED`](crate::CANCELLED)), and the worker threads are joined. A
/// coroutine that never parks or yields delays this (there is no preemption).
pub struct Runtime {
    scheduler: Arc<Scheduler>,
    threads: Vec<thread::JoinHandle<()>>,
    monitor: Option<Monitor>,
    blocking: Arc<blocking::Pool>,
}

impl Runtime {
    /// A builder with the defaults.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::new()
    }

    /// A runtime with the defaults.
    pub fn new() -> io::Result<Runtime> {
        RuntimeBuilder::new().build()
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.scheduler.workers.len()
    }

    /// A snapshot of every coroutine of this runtime (see
    /// [`corio::debug::dump`](crate::debug::dump)).
    pub fn dump(&self) -> Dump {
        debug::dump_of(&self.scheduler)
    }

    /// This runtime's counters and gauges.
    pub fn metrics(&self) -> Metrics {
        Metrics::of(&self.scheduler)
    }

    /// Runs `f` as a coroutine named "main" and blocks the calling thread
    /// until it returns its value. A panic in `f` is resumed on the caller.
    ///
    /// `f` may borrow from the caller (as `std::thread::scope`'s closures
    /// do): `block_on` returns only once the main coroutine has finished,
    /// panicked or been dropped, never while it could still use a borrow.
    ///
    /// ```
    /// let rt = corio::Runtime::new().unwrap();
    /// let words = vec!["borrowed", "not moved"];
    /// let count = rt.block_on(|| words.len());
    /// assert_eq!((count, words.len()), (2, 2));
    /// ```
    ///
    /// Called from inside a coroutine, it parks that coroutine instead.
    #[track_caller]
    pub fn block_on<'a, F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'a,
        T: Send + 'a,
    {
        // SAFETY: the handle is joined below with `join_to_the_end`, which
        // returns only after the coroutine's entry (the closure and all it
        // borrows, and the result slot) has been consumed or dropped, even
        // if the calling coroutine is cancelled meanwhile; and `&self` keeps
        // the runtime (which could otherwise drop the entry later) alive.
        let handle = unsafe {
            coroutine::spawn_borrowing_on(
                &self.scheduler,
                Some("main".into()),
                None,
                Some(Location::caller()),
                f,
            )
        }
        .unwrap_or_else(|err| panic!("corio: could not spawn the main coroutine: {err}"));
        match handle.join_to_the_end() {
            Ok(value) => value,
            Err(payload) => panic::resume_unwind(payload),
        }
    }

    /// Spawns a coroutine on this runtime from any thread.
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        coroutine::spawn_on(&self.scheduler, None, None, Some(Location::caller()), f)
            .unwrap_or_else(|err| panic!("corio: could not spawn a coroutine: {err}"))
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("workers", &self.workers()).finish_non_exhaustive()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if context::worker().is_some_and(|w| Arc::ptr_eq(&w.scheduler, &self.scheduler)) {
            // The worker would wait for itself. Leave the runtime running (it
            // is leaked) rather than deadlock or half shut it down.
            eprintln!(
                "corio: a Runtime was dropped from inside one of its own coroutines; \
                 it is leaked instead (drop it from the thread that built it)"
            );
            return;
        }
        // Shutdown begins before anything else waits (the monitor's thread
        // is joined next), so nothing queued starts after the drop began.
        self.scheduler.begin_shutdown();
        drop(self.monitor.take());
        // No more signals to the worker threads (sampling) once they may exit.
        *self.scheduler.threads_alive.write() = false;
        for thread in self.threads.drain(..) {
            // A worker thread only panics on a bug in corio itself; the runtime
            // is going away either way.
            let _ = thread.join();
        }
        self.scheduler.finish_shutdown();
        self.blocking.shut_down(self.scheduler.id);
    }
}

/// Runs `f` on a new default runtime as the main coroutine and returns its
/// value; then shuts the runtime down, dropping coroutines still alive (their
/// destructors run), as a Go program ends when `main` returns.
///
/// `f` may borrow from the caller:
///
/// ```
/// let n = 10;
/// assert_eq!(corio::run(|| n * 2), 20);
/// ```
///
/// # Panics
/// If the runtime cannot start, if `f` panics (the panic is resumed after
/// shutdown), or if called from inside a coroutine (it would block a worker
/// thread while the inner runtime shuts down; use `spawn` instead).
#[track_caller]
pub fn run<'a, F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    assert!(
        !context::in_coroutine(),
        "corio::run called from inside a coroutine; use corio::spawn and join instead"
    );
    let runtime = Runtime::new().unwrap_or_else(|err| panic!("corio: could not start the runtime: {err}"));
    let result = panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(f)));
    drop(runtime);
    match result {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    }
}
