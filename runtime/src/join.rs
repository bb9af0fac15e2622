//! `JoinHandle`: waiting for a coroutine's result, from a coroutine or a thread.
//!
//! The coroutine's root holds a [`Completer`], the spawner a [`JoinHandle`];
//! both share a slot. Completing stores the result and unparks the waiter, if
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

use crate::context;
use crate::coroutine::{self, Coroutine, CoroutineId};
use crate::task::WaitReason;
use parking_lot::Mutex;
use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread;

/// The panic payload `join` returns for a coroutine that was dropped at
/// runtime shutdown before it finished (or before it started).
pub const CANCELLED: &str = "corio: coroutine cancelled: the runtime shut down before it finished";

struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

struct SlotState<T> {
    result: Option<thread::Result<T>>,
    done: bool,
    waiter: Option<Coroutine>,
}

/// Owned by the coroutine's root: delivers its result.
pub(crate) struct Completer<T> {
    slot: Option<Arc<Slot<T>>>,
}

impl<T> Completer<T> {
    fn complete(mut self, result: thread::Result<T>) {
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

/// Creates the two ends for a coroutine with id `id`.
pub(crate) fn pair<T>(id: CoroutineId) -> (Completer<T>, JoinHandle<T>) {
    let slot = Arc::new(Slot { state: Mutex::new(SlotState { result: None, done: false, waiter: None }) });
    (Completer { slot: Some(slot.clone()) }, JoinHandle { slot, id })
}

/// The root of every coroutine: runs `f`, catching its panic, and delivers
/// the outcome. The forced unwind that drops a coroutine at shutdown is not a
/// user panic: it is re-raised (so corosensei can finish unwinding) and the
/// completer's drop reports the coroutine as cancelled.
pub(crate) fn run_and_complete<F, T>(f: F, completer: Completer<T>)
where
    F: FnOnce() -> T,
{
    let outcome = match panic::catch_unwind(AssertUnwindSafe(f)) {
        Err(payload) if context::cancelling() => {
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
        crate::abort_with("a coroutine's result (or panic payload) panicked when dropped");
    }
}

/// An owned permission to wait for a coroutine's result (`std::thread`'s
/// `JoinHandle` for coroutines). Dropping it detaches the coroutine.
pub struct JoinHandle<T> {
    slot: Arc<Slot<T>>,
    id: CoroutineId,
}

impl<T> JoinHandle<T> {
    /// Waits for the coroutine to finish and returns its value, or the payload
    /// of its panic (`Err`), as `std::thread::JoinHandle::join`. A coroutine
    /// dropped at runtime shutdown yields `Err` with [`CANCELLED`] as payload.
    ///
    /// Inside a coroutine this parks the coroutine; on a plain thread it
    /// blocks the thread. Called by a destructor while the runtime shuts down
    /// and unwinds the caller, it returns the cancellation error at once if
    /// the coroutine has not finished (it is being torn down as well).
    pub fn join(self) -> thread::Result<T> {
        loop {
            {
                let mut state = self.slot.state.lock();
                if state.done {
                    return state.result.take().expect("a join handle takes the result once");
                }
                if context::cancelling() {
                    return Err(Box::new(CANCELLED));
                }
                state.waiter = Some(coroutine::current());
            }
            coroutine::park_for(WaitReason::Join);
        }
    }

    /// As `join`, but never returns before the coroutine has finished or
    /// been dropped, even when the caller is cancelled (a destructor run by
    /// a shutdown unwind): it then blocks the thread. For `block_on`, whose
    /// coroutine may borrow from the caller's frame.
    pub(crate) fn join_to_the_end(self) -> thread::Result<T> {
        loop {
            let cancelled = {
                let mut state = self.slot.state.lock();
                if state.done {
                    return state.result.take().expect("a join handle takes the result once");
                }
                let cancelled = context::cancelling();
                state.waiter =
                    Some(if cancelled { coroutine::current_thread() } else { coroutine::current() });
                cancelled
            };
            if cancelled {
                std::thread::park();
            } else {
                coroutine::park_for(WaitReason::Join);
            }
        }
    }

    /// Has the coroutine finished (returned, panicked or been cancelled)?
    pub fn is_finished(&self) -> bool {
        self.slot.state.lock().done
    }

    /// The coroutine's id.
    pub fn id(&self) -> CoroutineId {
        self.id
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Is this `join` error the cancellation of a coroutine at shutdown?
pub fn is_cancelled(payload: &(dyn Any + Send)) -> bool {
    payload.downcast_ref::<&str>().is_some_and(|s| *s == CANCELLED)
}
