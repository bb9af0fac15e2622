//! The coroutine's root frame, its entry ([`Job`]: the spawned closure and
//! the join slot) and the join slot's two ends.
//!
//! `run_and_complete` is the bottom frame of every coroutine: it runs the
//! user's closure, catches its panic, and completes the join slot. The root
//! holds a [`Completer`], the spawner's `JoinHandle` (in `coroutine`) the
//! other end ([`JoinSlot`]); both share a [`Slot`]. Completing stores the
//! result and unparks the waiter, if one is registered. A `Completer` dropped
//! without completing (the coroutine never ran, or was unwound at shutdown)
//! completes with a "cancelled" error, so `join` never hangs on a coroutine
//! that will not finish.
//!
//! One allocation per spawn: a coroutine's closure and its slot live in its
//! task's allocation (the [`Job`] at the tail of `Task<Job<F, T>>`, erased to
//! `Task<dyn Entry>`), and its `JoinHandle` points into it. A blocking job
//! (`spawn_blocking`) has no task: its slot is an `Arc<Slot>` of its own.
//!
//! Slot states (under a short `parking_lot` lock, never held across a park):
//! ```text
//!   PENDING { waiter: None } --join registers--> PENDING { waiter: Some(w) }
//!   PENDING --complete / drop Completer--> DONE(result)   (waiter unparked)
//!   DONE --join takes the result--> TAKEN
//!   any --JoinHandle dropped--> DETACHED (a stored result is dropped; one
//!                                delivered later is dropped at delivery)
//! ```
//! `join` loops: take the result if DONE, else register itself and park; a
//! spurious return from `park` just loops. DETACHED matters because the slot
//! may live on in the task's allocation (held by a queue entry, a waiter
//! list, a dump) after the handle and the coroutine are gone: no result, and
//! nothing the closure borrowed, is left in it once both ends are done.

use super::{abort_with, Task};
use parking_lot::Mutex;
use std::any::Any;
use std::cell::UnsafeCell;
use std::ops::Deref;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Arc;
use std::thread;

/// The panic payload `join` returns for a coroutine that was dropped at
/// runtime shutdown before it finished (or before it started).
pub const CANCELLED: &str = "corio: coroutine cancelled: the runtime shut down before it finished";

/// The result of one coroutine, shared by its root and its `JoinHandle`.
pub(crate) struct Slot<T> {
    pub(crate) state: Mutex<SlotState<T>>,
}

/// See the module docs for the states.
pub(crate) struct SlotState<T> {
    pub(crate) result: Option<thread::Result<T>>,
    pub(crate) done: bool,
    pub(crate) waiter: Option<Unparker>,
    /// The `JoinHandle` is gone: a result is dropped as it is delivered.
    detached: bool,
}

impl<T> Slot<T> {
    fn new() -> Slot<T> {
        Slot { state: Mutex::new(SlotState { result: None, done: false, waiter: None, detached: false }) }
    }

    /// The `JoinHandle`'s end is gone: drops a stored result (outside the
    /// lock: its destructor may do anything), and any delivered later.
    fn detach(&self) {
        let result = {
            let mut state = self.state.lock();
            state.detached = true;
            state.waiter = None;
            state.result.take()
        };
        drop(result);
    }
}

/// Whom to wake: a coroutine, or a plain thread (the handle behind the public
/// `coroutine::Coroutine`).
#[derive(Clone)]
pub(crate) enum Unparker {
    /// A coroutine.
    Task(Arc<Task>),
    /// A plain thread, with its id from the same counter as coroutines'.
    Thread { thread: thread::Thread, id: u64 },
    /// An async task awaiting a `JoinHandle` (never inside a `Coroutine`).
    Waker(std::task::Waker),
}

impl Unparker {
    /// Makes the token of the coroutine or thread available.
    pub(crate) fn unpark(&self) {
        match self {
            Unparker::Task(task) => task.unpark(),
            Unparker::Thread { thread, .. } => thread.unpark(),
            Unparker::Waker(waker) => waker.wake_by_ref(),
        }
    }

    /// The coroutine's or thread's id.
    pub(crate) fn id(&self) -> u64 {
        match self {
            Unparker::Task(task) => task.id,
            Unparker::Thread { id, .. } => *id,
            Unparker::Waker(_) => 0,
        }
    }
}

/// Owned by the coroutine's root (or a blocking job): delivers its result.
/// `S` is how it reaches the slot: an `Arc` (a blocking job) or a reference
/// into the task (a coroutine, whose task outlives its root frame).
pub(crate) struct Completer<S: Deref<Target = Slot<T>>, T> {
    slot: Option<S>,
}

impl<S: Deref<Target = Slot<T>>, T> Completer<S, T> {
    pub(crate) fn complete(mut self, result: thread::Result<T>) {
        let slot = self.slot.take().expect("a completer completes once");
        deliver(&slot, result);
    }
}

impl<S: Deref<Target = Slot<T>>, T> Drop for Completer<S, T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            deliver(&slot, Err(Box::new(CANCELLED)));
        }
    }
}

fn deliver<T>(slot: &Slot<T>, result: thread::Result<T>) {
    let (waiter, unwanted) = {
        let mut state = slot.state.lock();
        state.done = true;
        if state.detached {
            (None, Some(result))
        } else {
            state.result = Some(result);
            (state.waiter.take(), None)
        }
    };
    // A detached coroutine's result is dropped here, outside the lock.
    drop(unwanted);
    if let Some(waiter) = waiter {
        waiter.unpark();
    }
}

/// Creates the two ends of a join slot of its own (a blocking job's).
pub(crate) fn pair<T>() -> (Completer<Arc<Slot<T>>, T>, JoinSlot<T>) {
    let slot = Arc::new(Slot::new());
    (Completer { slot: Some(slot.clone()) }, JoinSlot::Alone(slot))
}

/// A coroutine's entry, at the tail of its task: what the root frame runs.
pub(crate) trait Entry: Send + Sync {
    /// Runs the closure and completes the slot: the coroutine's root.
    ///
    /// # Safety
    /// Called at most once, and never after `discard`, by the thread entitled
    /// to the task's body (the `task` module's invariants).
    unsafe fn run(&self, cancelling: fn() -> bool);

    /// Drops the closure without running it (it is dropped first, then the
    /// slot completes as cancelled). Does nothing if it already ran.
    ///
    /// # Safety
    /// As `run`.
    unsafe fn discard(&self);
}

/// The spawned closure and its join slot: the tail of the task's allocation.
pub(crate) struct Job<F, T> {
    /// Taken by `run` or `discard` (the entitled thread only).
    f: UnsafeCell<Option<F>>,
    slot: Slot<T>,
}

impl<F, T> Job<F, T> {
    pub(crate) fn new(f: F) -> Job<F, T> {
        Job { f: UnsafeCell::new(Some(f)), slot: Slot::new() }
    }
}

// SAFETY: `f` is touched only through `run`/`discard`, whose contract gives
// one thread at a time exclusive access (the task's invariants); it is `Send`,
// so running or dropping it on that thread is sound. `slot` is a mutex
// around `T: Send`.
unsafe impl<F: Send, T: Send> Sync for Job<F, T> {}

impl<F, T> Entry for Job<F, T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    unsafe fn run(&self, cancelling: fn() -> bool) {
        // SAFETY: exclusive access to `f` is the caller's contract.
        let f = unsafe { (*self.f.get()).take() }.expect("a coroutine's entry runs once");
        run_and_complete(f, Completer { slot: Some(&self.slot) }, cancelling);
    }

    unsafe fn discard(&self) {
        // SAFETY: exclusive access to `f` is the caller's contract.
        if let Some(f) = unsafe { (*self.f.get()).take() } {
            drop(f); // what it captured goes before the handle hears of it
            deliver(&self.slot, Err(Box::new(CANCELLED)));
        }
    }
}

/// The `JoinHandle`'s end of a slot: in a coroutine's task, or of its own.
pub(crate) enum JoinSlot<T> {
    /// The slot in `task`'s `Job`, which the `Arc` keeps alive.
    InTask { task: Arc<Task>, slot: NonNull<Slot<T>> },
    /// A blocking job's slot.
    Alone(Arc<Slot<T>>),
}

// SAFETY: the pointer is into the allocation the `Arc<Task>` keeps alive, and
// the slot is a mutex around `T: Send`: sharing or sending the handle is as
// sound as sharing or sending an `Arc<Slot<T>>`.
unsafe impl<T: Send> Send for JoinSlot<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for JoinSlot<T> {}

impl<T> JoinSlot<T> {
    /// The slot of `task`, whose entry is a `Job<F, T>` at `slot`'s address.
    ///
    /// # Safety
    /// `slot` points to the `Slot<T>` inside `task`'s entry.
    pub(crate) unsafe fn in_task(task: Arc<Task>, slot: NonNull<Slot<T>>) -> JoinSlot<T> {
        JoinSlot::InTask { task, slot }
    }

    pub(crate) fn slot(&self) -> &Slot<T> {
        match self {
            // SAFETY: the slot is in the task's allocation, alive while we
            // hold the `Arc` (the constructor's contract).
            JoinSlot::InTask { slot, .. } => unsafe { slot.as_ref() },
            JoinSlot::Alone(slot) => slot,
        }
    }

    /// The coroutine's task (None for a blocking job).
    pub(crate) fn task(&self) -> Option<&Arc<Task>> {
        match self {
            JoinSlot::InTask { task, .. } => Some(task),
            JoinSlot::Alone(_) => None,
        }
    }

    /// The handle is dropped (see DETACHED in the module docs).
    pub(crate) fn detach(&self) {
        self.slot().detach();
    }
}

impl<F, T> Job<F, T> {
    /// Where its slot is (for `JoinSlot::in_task`).
    pub(crate) fn slot_ptr(&self) -> NonNull<Slot<T>> {
        NonNull::from(&self.slot)
    }
}

/// The root of every coroutine: runs `f`, catching its panic, and delivers
/// the outcome. The forced unwind that drops a coroutine at shutdown is not a
/// user panic: it is re-raised (so corosensei can finish unwinding) and the
/// completer's drop reports the coroutine as cancelled. `cancelling` tells
/// the two apart (the scheduler's answer: is this coroutine being unwound?).
pub(crate) fn run_and_complete<F, T, S>(f: F, completer: Completer<S, T>, cancelling: fn() -> bool)
where
    F: FnOnce() -> T,
    S: Deref<Target = Slot<T>>,
{
    let outcome = match panic::catch_unwind(AssertUnwindSafe(f)) {
        Err(payload) if cancelling() => {
            drop(completer);
            panic::resume_unwind(payload);
        }
        outcome => outcome,
    };
    // Delivering may drop the value (a detached coroutine's result, dropped
    // when nobody holds the JoinHandle); a panic there has nowhere to go. As
    // std does for a thread result that panics on drop, abort loudly rather
    // than unwind into the worker.
    if panic::catch_unwind(AssertUnwindSafe(|| completer.complete(outcome))).is_err() {
        abort_with("a coroutine's result (or panic payload) panicked when dropped");
    }
}

/// Is this `join` error the cancellation of a coroutine at shutdown?
pub fn is_cancelled(payload: &(dyn Any + Send)) -> bool {
    payload.downcast_ref::<&str>().is_some_and(|s| *s == CANCELLED)
}
