//! The coroutine API, shaped after `std::thread`: `Builder`, `current`,
//! `park`, `park_timeout`, `yield_now`, and the `Coroutine` handle whose
//! `unpark` wakes a parked coroutine from any thread.
//!
//! Every function also works on a plain thread (one that is not running a
//! coroutine): there `current()` names the thread, `park` is
//! `std::thread::park` and `yield_now` is `std::thread::yield_now`. Primitives
//! built on this API (channels, locks) therefore work in both worlds.

mod join_handle;
mod local;
mod scope;
mod until_done;

pub use self::join_handle::JoinHandle;
pub use self::local::LocalKey;
pub use self::scope::{scope, Scope, ScopedJoinHandle};
pub(crate) use crate::sched::park::{consume_token, park_for, park_until};

use crate::sched::{context, Scheduler};
use crate::task::{reserve_ids, Suspend, Unparker, WaitReason};
use std::cell::Cell;
use std::fmt;
use std::io;
use std::num::NonZeroU64;
use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A coroutine's unique id (plain threads get one too, from the same counter).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoroutineId(NonZeroU64);

impl CoroutineId {
    pub(crate) fn from_raw(id: u64) -> CoroutineId {
        CoroutineId(NonZeroU64::new(id).expect("coroutine ids start at 1"))
    }

    /// The id as a number.
    pub fn as_u64(&self) -> NonZeroU64 {
        self.0
    }
}

impl fmt::Debug for CoroutineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CoroutineId({})", self.0)
    }
}

impl fmt::Display for CoroutineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

thread_local! {
    static THREAD_ID: Cell<u64> = const { Cell::new(0) };
}

fn plain_thread_id() -> u64 {
    THREAD_ID.with(|id| {
        if id.get() == 0 {
            id.set(reserve_ids(1));
        }
        id.get()
    })
}

/// A handle to a coroutine (or to a plain thread), as `std::thread::Thread`.
#[derive(Clone)]
pub struct Coroutine {
    inner: Unparker,
}

impl Coroutine {
    /// This coroutine's id.
    pub fn id(&self) -> CoroutineId {
        CoroutineId::from_raw(self.inner.id())
    }

    /// The name given at spawn (`Builder::name`), or the thread's name.
    pub fn name(&self) -> Option<&str> {
        match &self.inner {
            Unparker::Task(task) => task.name.as_deref(),
            Unparker::Thread { thread, .. } => thread.name(),
            Unparker::Waker(_) => None,
        }
    }

    /// Makes this coroutine's park token available: its current or next
    /// `park` returns. Callable from any thread or coroutine.
    pub fn unpark(&self) {
        self.inner.unpark();
    }

    /// Will this coroutine never return from its current wait normally? True
    /// once it is being unwound, and for every coroutine of a runtime whose
    /// shutdown has begun (a parked one is only ever resumed to be unwound).
    /// Primitives never hand a value, a lock or a permit to such a waiter:
    /// it would be lost with it. Always false for a plain thread.
    pub(crate) fn is_doomed(&self) -> bool {
        match &self.inner {
            Unparker::Task(task) => task.is_cancelling() || task.runtime_shutting_down(),
            Unparker::Thread { .. } | Unparker::Waker(_) => false,
        }
    }

    /// What the coroutine is parked on, if it is parked (for diagnostics).
    pub fn wait_reason(&self) -> WaitReason {
        match &self.inner {
            Unparker::Task(task) => task.wait_reason(),
            Unparker::Thread { .. } | Unparker::Waker(_) => WaitReason::None,
        }
    }

    /// Cancels the coroutine: its current or next blocking corio call stops
    /// waiting (see [`JoinHandle::cancel`]). Does nothing to a plain thread.
    pub fn cancel(&self) {
        if let Unparker::Task(task) = &self.inner {
            task.cancel();
        }
    }

    pub(crate) fn into_unparker(self) -> Unparker {
        self.inner
    }
}

impl fmt::Debug for Coroutine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coroutine").field("id", &self.id()).field("name", &self.name()).finish()
    }
}

/// A handle to the calling coroutine, or to the calling thread outside one.
pub fn current() -> Coroutine {
    match context::current_task() {
        Some(task) => Coroutine { inner: Unparker::Task(task) },
        None => current_thread(),
    }
}

/// A handle to the calling OS thread, even inside a coroutine: its `unpark`
/// is `std::thread::Thread::unpark` (for waits that must block the thread).
pub(crate) fn current_thread() -> Coroutine {
    Coroutine { inner: Unparker::Thread { thread: std::thread::current(), id: plain_thread_id() } }
}

/// Blocks the calling coroutine until its token is made available by
/// [`Coroutine::unpark`], consuming the token; returns at once if it already
/// is. May return spuriously: call it in a loop that checks your condition.
/// On a plain thread this is `std::thread::park`.
pub fn park() {
    park_for(WaitReason::Park);
}

/// As [`park`], but returns after `dur` at the latest.
pub fn park_timeout(dur: Duration) {
    if dur.is_zero() {
        return consume_token(); // nothing to wait for
    }
    match Instant::now().checked_add(dur) {
        Some(deadline) => park_until(deadline, WaitReason::Park),
        None => park(),
    }
}

/// Lets the other coroutines of this worker run before continuing. On a plain
/// thread, `std::thread::yield_now`.
pub fn yield_now() {
    if context::cancelling() {
        // Inside a destructor run by the shutdown unwind (suspending would
        // re-raise the unwind there), or while dropping coroutines that
        // never started: there is nobody left to yield to.
        return;
    }
    if context::in_coroutine() {
        context::suspend_current(Suspend::Yield);
    } else {
        std::thread::yield_now();
    }
}

/// Spawns a coroutine on the current runtime (see [`Builder::spawn`]).
///
/// # Panics
/// Outside a corio coroutine (use `Runtime::spawn` there), or if no stack can
/// be allocated.
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().spawn(f).unwrap_or_else(|err| panic!("{err}"))
}

/// Configures a new coroutine, as `std::thread::Builder`.
#[derive(Debug, Default, Clone)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the runtime's defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the coroutine (shown in stack-overflow reports).
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Usable stack size in bytes (rounded up to pages, at least 16 KiB),
    /// instead of the runtime's default.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the coroutine on the runtime of the calling coroutine. Fails if
    /// called outside a coroutine, or if no stack could be allocated (out of
    /// memory mappings or address space; the error says which sysctl to raise).
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(worker) = context::worker() else {
            return Err(io::Error::other(
                "corio::spawn called outside a corio runtime; use corio::run or Runtime::spawn",
            ));
        };
        spawn_on(&worker.scheduler, self.name, self.stack_size, Some(Location::caller()), f)
    }
}

/// Creates a coroutine on `scheduler` (see `sched::spawn`).
pub(crate) fn spawn_on<F, T>(
    scheduler: &Arc<Scheduler>,
    name: Option<String>,
    stack_size: Option<usize>,
    spawned_at: Option<&'static Location<'static>>,
    f: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    // SAFETY: everything is 'static: there is no borrow to outlive.
    unsafe { spawn_borrowing_on(scheduler, name, stack_size, spawned_at, f) }
}

/// `spawn_on` for a closure that may borrow (lifetime `'a`).
///
/// # Safety
/// The caller must not let `'a` end before the handle's `join_to_the_end`
/// has returned (see `sched::spawn::spawn_borrowing`).
pub(crate) unsafe fn spawn_borrowing_on<'a, F, T>(
    scheduler: &Arc<Scheduler>,
    name: Option<String>,
    stack_size: Option<usize>,
    spawned_at: Option<&'static Location<'static>>,
    f: F,
) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    // SAFETY: the caller's contract is the callee's.
    let (id, slot) = unsafe { crate::sched::spawn_borrowing(scheduler, name, stack_size, spawned_at, f)? };
    Ok(JoinHandle::new(slot, CoroutineId::from_raw(id)))
}
