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

use crate::context;
use crate::coroutine::CoroutineId;
use crate::idle::Idle;
use crate::join::{self, JoinHandle};
use crate::overflow;
use crate::stack::{round_stack_size, StackPool};
use crate::task::Task;
use crate::worker::{self, WorkerShared};
use crossbeam_deque::{Injector, Worker};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

/// Default usable stack size of a coroutine.
pub const DEFAULT_STACK_SIZE: usize = 64 << 10;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static NEXT_RUNTIME_ID: AtomicU64 = AtomicU64::new(1);

/// Reserves `count` consecutive coroutine ids; returns the first.
pub(crate) fn reserve_ids(count: u64) -> u64 {
    NEXT_ID.fetch_add(count, Ordering::Relaxed)
}

/// State shared by all workers of one runtime.
pub(crate) struct Shared {
    /// Unique per runtime for the life of the process (never reused, unlike
    /// an address): sockets remember which runtime's poller they are
    /// registered with.
    pub(crate) id: u64,
    pub(crate) workers: Box<[Arc<WorkerShared>]>,
    pub(crate) injector: Injector<Arc<Task>>,
    pub(crate) idle: Idle,
    pub(crate) stack_pool: StackPool,
    pub(crate) default_stack_size: usize,
    shutdown: AtomicBool,
}

impl Shared {
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Wakes a sleeping worker for newly queued shared work, if needed.
    pub(crate) fn notify_work(&self) {
        if let Some(index) = self.idle.worker_to_wake() {
            self.workers[index].sleeper.wake();
        }
    }
}

/// Configures and builds a [`Runtime`].
#[derive(Debug, Clone)]
pub struct Builder {
    workers: Option<usize>,
    stack_size: usize,
    thread_name: String,
}

impl Builder {
    fn new() -> Builder {
        Builder { workers: None, stack_size: DEFAULT_STACK_SIZE, thread_name: "corio-worker".into() }
    }

    /// Number of worker threads (default: the available parallelism).
    pub fn workers(mut self, count: usize) -> Builder {
        self.workers = Some(count.max(1));
        self
    }

    /// Default usable stack size of each coroutine, in bytes (default 64 KiB;
    /// rounded up to whole pages, at least 16 KiB). There is no growth: a
    /// coroutine that needs more overflows into its guard page and the process
    /// aborts with a message naming the coroutine.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// Prefix of the worker threads' names (default `corio-worker`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Builder {
        self.thread_name = name.into();
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
            .map(|(i, w)| WorkerShared::new(i, w.stealer()).map(Arc::new))
            .collect::<io::Result<_>>()?;
        let shared = Arc::new(Shared {
            id: NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed),
            workers,
            injector: Injector::new(),
            idle: Idle::new(count),
            stack_pool: StackPool::new(),
            default_stack_size: round_stack_size(self.stack_size)?,
            shutdown: AtomicBool::new(false),
        });
        let mut runtime = Runtime { shared: shared.clone(), threads: Vec::with_capacity(count) };
        for (index, fresh) in locals.into_iter().enumerate() {
            let shared = shared.clone();
            let thread = thread::Builder::new()
                .name(format!("{}-{index}", self.thread_name))
                .spawn(move || worker::run_worker(shared, index, fresh))?;
            runtime.threads.push(thread);
        }
        Ok(runtime)
    }
}

/// A set of worker threads running coroutines. Dropping it shuts it down (see
/// the module documentation).
pub struct Runtime {
    shared: Arc<Shared>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Runtime {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A runtime with the defaults.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// Number of worker threads.
    pub fn workers(&self) -> usize {
        self.shared.workers.len()
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
        let handle = unsafe { spawn_borrowing_on(&self.shared, Some("main".into()), None, f) }
            .unwrap_or_else(|err| panic!("corio: could not spawn the main coroutine: {err}"));
        match handle.join_to_the_end() {
            Ok(value) => value,
            Err(payload) => panic::resume_unwind(payload),
        }
    }

    /// Spawns a coroutine on this runtime from any thread.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        spawn_on(&self.shared, None, None, f)
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
        if context::worker().is_some_and(|w| Arc::ptr_eq(&w.shared, &self.shared)) {
            // The worker would wait for itself. Leave the runtime running (it
            // is leaked) rather than deadlock or half shut it down.
            eprintln!(
                "corio: a Runtime was dropped from inside one of its own coroutines; \
                 it is leaked instead (drop it from the thread that built it)"
            );
            return;
        }
        for worker in self.shared.workers.iter() {
            worker.begin_shutdown();
        }
        self.shared.shutdown.store(true, Ordering::Release);
        for worker in self.shared.workers.iter() {
            worker.sleeper.wake();
        }
        for thread in self.threads.drain(..) {
            // A worker thread only panics on a bug in corio itself; the runtime
            // is going away either way.
            let _ = thread.join();
        }
        // Queued tasks hold the `Shared` alive: drop them to break the cycle.
        context::tearing_down(|| loop {
            match self.shared.injector.steal() {
                crossbeam_deque::Steal::Success(task) => drop(task),
                crossbeam_deque::Steal::Retry => continue,
                crossbeam_deque::Steal::Empty => break,
            }
        });
        for worker in self.shared.workers.iter() {
            worker.close_and_clear_inbox();
        }
    }
}

/// Creates a coroutine on `shared` and queues it: on the current worker's
/// stealable queue when called from one of this runtime's workers, on the
/// global injector otherwise.
pub(crate) fn spawn_on<F, T>(
    shared: &Arc<Shared>,
    name: Option<String>,
    stack_size: Option<usize>,
    f: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: everything is 'static: no borrow to outlive.
    unsafe { spawn_borrowing_on(shared, name, stack_size, f) }
}

/// What a coroutine's entry owns, in the order it is dropped: the closure
/// (with whatever it borrows) before the completer, whose drop reports the
/// coroutine as finished. (Struct fields drop in declaration order.)
struct Entry<F, T> {
    f: F,
    completer: join::Completer<T>,
}

/// `spawn_on` for closures that may borrow (lifetime `'a`).
///
/// # Safety
/// The caller must not let `'a` end before the returned handle's
/// `join_to_the_end` has returned: until then the coroutine may run `f` or
/// drop it, and the result slot may be written.
pub(crate) unsafe fn spawn_borrowing_on<'a, F, T>(
    shared: &Arc<Shared>,
    name: Option<String>,
    stack_size: Option<usize>,
    f: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    let size = match stack_size {
        Some(bytes) => round_stack_size(bytes)?,
        None => shared.default_stack_size,
    };
    let local = context::worker().filter(|w| Arc::ptr_eq(&w.shared, shared));
    let (stack, id) = match local {
        Some(worker) => (worker.stacks.borrow_mut().get(&shared.stack_pool, size)?, worker.next_id()),
        None => {
            let mut one = Vec::with_capacity(1);
            shared.stack_pool.take(size, 1, &mut one)?;
            (one.pop().expect("take returned Ok with a stack"), reserve_ids(1))
        }
    };
    let (completer, handle) = join::pair::<T>(CoroutineId::from_raw(id));
    let entry = Entry { f, completer };
    let entry: Box<dyn FnOnce() + Send + 'a> = Box::new(move || {
        let entry = entry; // the whole struct, so its drop order holds
        join::run_and_complete(entry.f, entry.completer)
    });
    // SAFETY: only the lifetime changes (same layout). The caller keeps 'a
    // alive until the entry has been run or dropped (the function's
    // contract), which is all the task needs of it.
    let entry: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(entry) };
    let task = Arc::new(Task::new(id, name, entry, stack));
    match local {
        Some(worker) => worker.push_fresh(task),
        None => shared.injector.push(task),
    }
    shared.notify_work();
    Ok(handle)
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

/// A stack from a process-wide pool, for unit tests of queue structures.
#[cfg(test)]
pub(crate) fn test_stack() -> crate::stack::Stack {
    use std::sync::OnceLock;
    static POOL: OnceLock<StackPool> = OnceLock::new();
    let pool = POOL.get_or_init(StackPool::new);
    let mut one = Vec::new();
    pool.take(round_stack_size(DEFAULT_STACK_SIZE).unwrap(), 1, &mut one).unwrap();
    one.pop().unwrap()
}

/// A task that is never run, for unit tests of queue structures.
#[cfg(test)]
pub(crate) fn test_task() -> Arc<Task> {
    Arc::new(Task::new(reserve_ids(1), None, Box::new(|| {}), test_stack()))
}
