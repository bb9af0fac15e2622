//! The task layer: one coroutine's header ([`Task`]), its park state machine
//! (`state`), its root frame and join slot (`root`), ids (`id`) and wait
//! reasons. A task reaches its scheduler only through the [`Schedule`] trait,
//! so this layer never names the scheduler (imports: `stack` only).
//!
//! The task: one coroutine's header, shared by every handle to it.
//!
//! A task is created by `spawn` in the *fresh* state: it holds its entry (the
//! `Send` closure and the join slot, in the task's own allocation: one
//! allocation per spawn) and a stack, and may be stolen by any worker. The
//! first worker to run it becomes its *owner* for life: it builds the
//! corosensei coroutine on the stack and resumes it; from then on the task is
//! *started* and only its owner touches the coroutine.
//!
//! Invariants (they make the `unsafe impl Send/Sync` below sound):
//! - `body` is accessed only by the thread currently holding the task as a
//!   queue entry while fresh, and only by the owner worker once started
//!   (`owner` is written once, before the first resume, and never changes).
//! - A started coroutine is never resumed by another thread: wake-ups from
//!   other threads go to the owner's inbox (see `parker`), which is the whole
//!   soundness argument for a safe `spawn` (docs/design.md).
//! - A task is in at most one run queue at a time (guaranteed by the parker's
//!   state machine), so two threads never try to run it at once.

mod id;
mod root;
mod state;
mod wait;

pub(crate) use self::id::reserve_ids;
pub use self::root::{is_cancelled, CANCELLED};
pub(crate) use self::root::{pair, Entry, Job, JoinSlot, Unparker};
pub(crate) use self::state::ParkState;
pub use self::wait::{IoDirection, SyncKind, WaitObject};

use crate::stack::Stack;
use corio_netpoll::{ArcWake, Wake};
use corosensei::{Coroutine, Yielder};
use std::cell::{Cell, RefCell, UnsafeCell};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};

/// Why a running coroutine handed control back to its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suspend {
    /// It is parking: the worker commits the park (PARKING -> PARKED).
    Park,
    /// `yield_now`: it stays runnable and goes to the back of the queue.
    Yield,
}

/// What a parked coroutine waits for, kept for diagnostics (the future
/// coroutine dump names it, like Go's "chan receive" or "IO wait").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum WaitReason {
    /// Running or runnable.
    None = 0,
    /// `coroutine::park` / `park_timeout` called by user code.
    Park = 1,
    /// `time::sleep`.
    Sleep = 2,
    /// `JoinHandle::join`.
    Join = 3,
    /// Waiting on a channel, lock or other synchronisation primitive.
    Sync = 4,
    /// Waiting for a socket to become ready.
    Io = 5,
}

impl WaitReason {
    fn from_u8(value: u8) -> WaitReason {
        match value {
            1 => WaitReason::Park,
            2 => WaitReason::Sleep,
            3 => WaitReason::Join,
            4 => WaitReason::Sync,
            5 => WaitReason::Io,
            _ => WaitReason::None,
        }
    }
}

pub(crate) type Coro = Coroutine<(), Suspend, (), Stack>;
pub(crate) type CoroYielder = Yielder<(), Suspend>;

/// The part of a task that only its runner touches.
pub(crate) enum Body {
    /// Not started: may run on any worker. The coroutine is built by the
    /// worker that first runs it, so the first touch of a new stack's pages
    /// (page faults, ~2.4 us each here) is spread over the workers instead of
    /// all landing on the spawner; measured: 1M coroutines start in ~2.0 s
    /// this way against ~3.5 s when built at spawn.
    Fresh { stack: Stack },
    /// Started on `owner`; never leaves that thread.
    Started(Coro),
    /// Finished, or dropped at shutdown.
    Gone,
}

/// A coroutine's header, with its entry `E` at the tail of the same
/// allocation: built as `Task<Job<F, T>>` and used everywhere as
/// `Task<dyn Entry>` (an unsized coercion of the `Arc`).
pub(crate) struct Task<E: ?Sized = dyn Entry> {
    pub(crate) id: u64,
    pub(crate) name: Option<String>,
    pub(crate) stack_size: usize,
    /// The stack's guard page range, for the overflow handler.
    pub(crate) guard: (usize, usize),
    pub(crate) park_state: ParkState,
    /// The worker that started the coroutine; set once, before the first
    /// resume. Every wake-up is queued through it.
    pub(crate) owner: OnceLock<Arc<dyn Schedule>>,
    /// Set by the owner before it force-unwinds the coroutine at shutdown, so
    /// the root can tell corosensei's unwind from a user panic, and `park`
    /// returns at once inside destructors run by that unwind.
    pub(crate) cancelling: AtomicBool,
    /// Set by `cancel` (`JoinHandle::cancel`, `Coroutine::cancel`): its
    /// current or next blocking call stops waiting (any thread sets it).
    cancel_requested: AtomicBool,
    wait_reason: AtomicU8,
    /// Position in the owner's registry of started tasks (owner only).
    pub(crate) registry_index: Cell<usize>,
    /// The coroutine's yielder, which lives on its own stack; set by the
    /// coroutine when it starts (owner only). Kept outside `body` because the
    /// worker holds `&mut` to the body while the coroutine runs.
    pub(crate) yielder: Cell<*const CoroYielder>,
    /// Operations left before a coroutine whose operations never park
    /// yields (owner only; see `sched::budget`).
    pub(crate) budget: Cell<u32>,
    /// Handed to another worker by placement once already (the queue
    /// holder only, while fresh): never placed again.
    pub(crate) placed: Cell<bool>,
    /// Counted in its owner's `parked` metric (owner only).
    pub(crate) counted_parked: Cell<bool>,
    /// The coroutine that spawned it (0: a plain thread).
    pub(crate) parent: u64,
    /// Where it was spawned (`#[track_caller]`), if known.
    pub(crate) spawned_at: Option<&'static Location<'static>>,
    /// What it waits on while parked (owner only; for dumps).
    pub(crate) wait_object: Cell<WaitObject>,
    /// Coarse ms when it last parked (owner only; for dumps).
    pub(crate) parked_since: Cell<u64>,
    /// Its slot in the owner's timer heap, while it has an entry there
    /// (owner only; see `sched::timer`).
    pub(crate) timer_slot: Cell<Option<usize>>,
    /// Set by its worker to have the next resume record the coroutine's
    /// stack into `dump_stack` and suspend again at once (owner only).
    pub(crate) dump_requested: Cell<bool>,
    /// The instruction pointers recorded by that resume (owner only).
    pub(crate) dump_stack: RefCell<Vec<usize>>,
    /// Its `coroutine_local!` values, by key address (the coroutine itself
    /// only; dropped when it ends, see `coroutine::local`).
    pub(crate) locals: RefCell<Vec<(usize, Box<dyn std::any::Any>)>>,
    /// This coroutine's netpoll waker, made on its first blocking I/O and
    /// reused (it holds a `Weak` to the task, so no cycle).
    io_waker: OnceLock<ArcWake>,
    body: UnsafeCell<Body>,
    /// The closure and join slot (`root`); last, as an unsized tail must be.
    pub(crate) entry: E,
}

// SAFETY: the non-thread-safe parts (`body`, `registry_index`, `yielder`,
// `budget`, `placed`, `counted_parked`, `wait_object`, `parked_since`,
// `timer_slot`, `dump_requested`, `dump_stack`, `locals`) are accessed only by the thread entitled to
// by the module invariants: the queue holder while fresh, the owner worker
// (and the coroutine it runs) once started. A fresh task holds
// a `Send` entry and an unused stack; the `!Send` coroutine exists only once
// started, and a started task never moves. The entry is `Send + Sync`
// itself. Everything else is atomic or immutable.
unsafe impl<E: ?Sized + Send + Sync> Send for Task<E> {}
// SAFETY: as above.
unsafe impl<E: ?Sized + Send + Sync> Sync for Task<E> {}

impl<E: Entry> Task<E> {
    pub(crate) fn new(
        id: u64,
        name: Option<String>,
        entry: E,
        stack: Stack,
        parent: u64,
        spawned_at: Option<&'static Location<'static>>,
    ) -> Task<E> {
        Task {
            id,
            name,
            stack_size: stack.size(),
            guard: stack.guard_range(),
            park_state: ParkState::new(),
            owner: OnceLock::new(),
            cancelling: AtomicBool::new(false),
            cancel_requested: AtomicBool::new(false),
            wait_reason: AtomicU8::new(WaitReason::None as u8),
            registry_index: Cell::new(usize::MAX),
            yielder: Cell::new(std::ptr::null()),
            budget: Cell::new(BUDGET),
            placed: Cell::new(false),
            counted_parked: Cell::new(false),
            parent,
            spawned_at,
            wait_object: Cell::new(WaitObject::None),
            parked_since: Cell::new(0),
            timer_slot: Cell::new(None),
            dump_requested: Cell::new(false),
            dump_stack: RefCell::new(Vec::new()),
            locals: RefCell::new(Vec::new()),
            io_waker: OnceLock::new(),
            body: UnsafeCell::new(Body::Fresh { stack }),
            entry,
        }
    }
}

impl Task {
    /// Drops a task that will never start: its closure unrun (its captures'
    /// destructors run here), then its `JoinHandle` hears it was cancelled.
    /// Returns its stack. Does nothing to a started task (returns `None`).
    ///
    /// # Safety
    /// The caller holds one of the task's queue entries (so, if it is fresh,
    /// the only one, which entitles it to the body), and holds no reference
    /// from `body_mut`.
    pub(crate) unsafe fn discard_fresh(&self) -> Option<Stack> {
        if self.owner.get().is_some() {
            return None; // started: its body is its owner's alone
        }
        // SAFETY: fresh, and we hold its only queue entry (the contract).
        let body = unsafe { self.body_mut() };
        let Body::Fresh { .. } = body else { return None };
        let Body::Fresh { stack } = std::mem::replace(body, Body::Gone) else { unreachable!() };
        // SAFETY: entitled as above; nothing ran, and nothing will.
        unsafe { self.entry.discard() };
        Some(stack)
    }

    /// Drops a queue entry at teardown: a fresh task's closure is dropped
    /// unrun (see `discard_fresh`), so its `JoinHandle` does not wait for
    /// ever; a started one's entry is just dropped.
    ///
    /// # Safety
    /// As `discard_fresh`: `self` is a queue entry.
    pub(crate) unsafe fn drop_queue_entry(self: Arc<Task>) {
        // SAFETY: the caller's contract. The stack slot is left to its pool,
        // which is being torn down.
        let _stack = unsafe { self.discard_fresh() };
    }

    /// # Safety
    /// The caller is the thread entitled to the body (module invariants), and
    /// holds no other reference obtained from this function.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn body_mut(&self) -> &mut Body {
        // SAFETY: exclusive access is the caller's contract (above).
        unsafe { &mut *self.body.get() }
    }

    pub(crate) fn set_wait_reason(&self, reason: WaitReason) {
        self.wait_reason.store(reason as u8, Ordering::Relaxed);
    }

    pub(crate) fn wait_reason(&self) -> WaitReason {
        WaitReason::from_u8(self.wait_reason.load(Ordering::Relaxed))
    }

    pub(crate) fn is_cancelling(&self) -> bool {
        self.cancelling.load(Ordering::Relaxed)
    }

    /// The waker netpoll calls when a socket this coroutine waits on is ready.
    pub(crate) fn io_waker(self: &Arc<Task>) -> ArcWake {
        self.io_waker.get_or_init(|| Arc::new(TaskWaker(Arc::downgrade(self)))).clone()
    }

    /// Makes the task's wake-up token available; if that took it out of
    /// PARKED, queues it on its owner (steps in `state`). Any thread.
    pub(crate) fn unpark(self: &Arc<Task>) {
        if self.park_state.unpark() {
            // Set before the first resume, which happens-before the park
            // commit that our CAS out of PARKED read.
            let owner = self.owner.get().expect("a parked coroutine has started");
            owner.schedule(self.clone());
        }
    }

    /// Asks the coroutine to stop waiting: its current or next blocking call
    /// returns a cancellation error (I/O) or unwinds with `CANCELLED`; a
    /// coroutine not started yet is dropped without running. Any thread.
    pub(crate) fn cancel(self: &Arc<Task>) {
        self.cancel_requested.store(true, Ordering::SeqCst);
        if self.owner.get().is_some() {
            self.unpark();
        }
    }

    /// Was `cancel` called?
    pub(crate) fn cancel_requested(&self) -> bool {
        self.cancel_requested.load(Ordering::Relaxed)
    }

    /// Has the runtime this task belongs to begun to shut down?
    pub(crate) fn runtime_shutting_down(&self) -> bool {
        self.owner.get().is_some_and(|owner| owner.is_shutting_down())
    }
}

/// How a task reaches the scheduler that owns it (tokio's `task::Schedule`);
/// implemented by the worker that starts it.
pub(crate) trait Schedule: Send + Sync {
    /// Queues `task`, just taken out of PARKED by an unpark on any thread, to
    /// run on this worker: its local queue when called on the worker itself,
    /// its inbox (and a wake-up) otherwise.
    fn schedule(&self, task: Arc<Task>);

    /// Has the runtime's shutdown begun? (A parked coroutine will then only
    /// be resumed to be unwound.)
    fn is_shutting_down(&self) -> bool;

    /// The worker's index in its runtime (for diagnostics).
    fn worker_index(&self) -> usize;
}

/// Prints `corio: fatal: <why>` and aborts the process: for failures that
/// cannot be reported to anyone (a panic with nowhere to unwind to).
pub(crate) fn abort_with(why: &str) -> ! {
    eprintln!("corio: fatal: {why}");
    std::process::abort()
}

impl<E: ?Sized> Drop for Task<E> {
    fn drop(&mut self) {
        if matches!(self.body.get_mut(), Body::Started(_)) {
            // Dropping it here would unwind a started coroutine on whatever
            // thread holds the last handle: never allowed. Workers empty every
            // started body before they exit, so this is a corio bug.
            abort_with("a started coroutine outlived its worker");
        }
    }
}

/// Operations that could have parked (socket I/O, channel operations, locks,
/// joins) a coroutine may complete in a row without parking before it
/// yields, so a coroutine whose operations are always ready cannot starve its
/// worker's other coroutines (tokio's coop budget is also 128).
pub(crate) const BUDGET: u32 = 128;

/// Wakes a coroutine from netpoll's dispatch (any thread).
struct TaskWaker(Weak<Task>);

impl Wake for TaskWaker {
    fn wake(&self) {
        if let Some(task) = self.0.upgrade() {
            task.unpark();
        }
    }
}

/// A task that is never run, for unit tests of queue structures.
#[cfg(test)]
pub(crate) fn test_task() -> Arc<Task> {
    Arc::new(Task::new(reserve_ids(1), None, Job::new(|| {}), crate::stack::test_stack(), 0, None))
}
