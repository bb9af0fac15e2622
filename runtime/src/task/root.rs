//! The coroutine's root frame and its join slot.
//!
//! `run_and_complete` is the bottom frame of every coroutine: it runs the
//! user's closure, catches its panic, and completes the join slot. The root
//! holds a [`Completer`], the spawner's `JoinHandle` (in `coroutine`) the
//! other end; both share a [`Slot`]. Completing stores the result and unparks the waiter, if
//! one is registered. A `Completer` dropped without completing (the coroutine
//! never ran, or was unwound at shutdown) completes with a "cancelled" error,
//! so `join` never hangs on a coroutine that will not finish.
//!
//! Slot states (under a short `parking_lot` lock, never held across a park):
//! ```text
//!   PENDING { waiter: None } --join registers--> PENDING { waiter: Some(w) }
//!   PENDING --complete / drop Completer--> DONE(result)   (waiter unparked)
//!   DONE --join takes the result--> TAKEN
//! ```
//! `join` loops: take the result if DONE, else register itself and park; a
//! spurious return from `park` just loops.

use super::{abort_with, Task};
use parking_lot::Mutex;
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
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

/// Owned by the coroutine's root: delivers its result.
pub(crate) struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
}

impl<T> Completer<T> {
    pub(crate) fn complete(mut self, result: thread::Result<T>) {
        let slot = self.slot.take().expect("a completer completes once");
        deliver(&slot, result);
    }
}

impl<T> Drop for Completer<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            deliver(&slot, Err(Box::new(CANCELLED)));
        }
    }
}

fn deliver<T>(slot: &Slot<T>, result: thread::Result<T>) {
    let waiter = {
        let mut state = slot.state.lock();
        state.result = Some(result);
        state.done = true;
        state.waiter.take()
    };
    if let Some(waiter) = waiter {
        waiter.unpark();
    }
}

/// Creates the two ends of a join slot.
pub(crate) fn pair<T>() -> (Completer<T>, Arc<Slot<T>>) {
    let slot = Arc::new(Slot { state: Mutex::new(SlotState { result: None, done: false, waiter: None }) });
    (Completer { slot: Some(slot.clone()) }, slot)
}

/// The root of every coroutine: runs `f`, catching its panic, and delivers
/// the outcome. The forced unwind that drops a coroutine at shutdown is not a
/// user panic: it is re-raised (so corosensei can finish unwinding) and the
/// completer's drop reports the coroutine as cancelled. `cancelling` tells
/// the two apart (the scheduler's answer: is this coroutine being unwound?).
pub(crate) fn run_and_complete<F, T>(f: F, completer: Completer<T>, cancelling: fn() -> bool)
where
    F: FnOnce() -> T,
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
