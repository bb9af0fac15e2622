//! `JoinHandle`: waiting for a coroutine's result, from a coroutine or a
//! thread. The slot it shares with the coroutine's root, and the slot's
//! states, are in `task::root`.
//!
//! `join` loops: take the result if the slot is done, else register the
//! caller as the slot's waiter and park; a spurious return from `park` just
//! loops. A `Completer` dropped without completing (the coroutine never ran,
//! or was unwound at shutdown) completes with [`CANCELLED`], so `join` never
//! hangs on a coroutine that will not finish.

use crate::coroutine::{self, CoroutineId};
use crate::sched::context;
use crate::sched::park::park_for;
use crate::task::{JoinSlot, WaitReason, CANCELLED};
use std::fmt;
use std::thread;

/// An owned permission to wait for a coroutine's result (`std::thread`'s
/// `JoinHandle` for coroutines). Dropping it detaches the coroutine.
pub struct JoinHandle<T> {
    /// The slot, in the coroutine's task (which `cancel` uses too) or, for
    /// a blocking job, of its own.
    slot: JoinSlot<T>,
    id: CoroutineId,
    /// The result was taken: nothing to drop when the handle goes.
    taken: bool,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(slot: JoinSlot<T>, id: CoroutineId) -> JoinHandle<T> {
        JoinHandle { slot, id, taken: false }
    }

    /// Cancels the coroutine. Its current or next blocking corio call, and
    /// every later one, stops waiting: a call that returns `io::Result`
    /// (socket I/O, files) fails with an error [`crate::is_cancelled_error`]
    /// recognises (not `Interrupted`, which std's `write_all` and
    /// `read_exact` would retry); any other (park, sleep, channel
    /// operations, locks, join) unwinds with the [`CANCELLED`] payload, so
    /// destructors run and `join` returns `Err` with [`crate::is_cancelled`]
    /// true. Never an unwind at an arbitrary point: only inside a corio
    /// blocking call. A coroutine that has not started is dropped without
    /// running. A socket a cancelled coroutine waited on stays usable by
    /// others. A blocking job (`spawn_blocking`) cannot be interrupted:
    /// cancelling its handle does nothing.
    pub fn cancel(&self) {
        if let Some(task) = self.slot.task() {
            task.cancel();
        }
    }
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
    pub fn join(mut self) -> thread::Result<T> {
        let result = self.join_inner();
        crate::sched::budget::spend();
        result
    }

    fn join_inner(&mut self) -> thread::Result<T> {
        loop {
            {
                let mut state = self.slot.slot().state.lock();
                if state.done {
                    self.taken = true;
                    return state.result.take().expect("a join handle takes the result once");
                }
                if context::cancelling() {
                    return Err(Box::new(CANCELLED));
                }
                state.waiter = Some(coroutine::current().into_unparker());
            }
            crate::sched::park::set_wait_object(crate::task::WaitObject::Join { id: self.id.as_u64().get() });
            park_for(WaitReason::Join);
        }
    }

    /// As `join`, but never returns before the coroutine has finished or
    /// been dropped, even when the caller is cancelled (a destructor run by
    /// a shutdown unwind): it then blocks the thread. For `block_on`, whose
    /// coroutine may borrow from the caller's frame.
    pub(crate) fn join_to_the_end(mut self) -> thread::Result<T> {
        // The job may borrow the caller's frame: no cancel or unwind may cut
        // this wait short (`until_done`).
        super::until_done::wait_until_done("a job borrowing its caller's frame", |waiter| {
            let mut state = self.slot.slot().state.lock();
            if state.done {
                return true;
            }
            if waiter.is_some() {
                state.waiter = waiter;
            }
            false
        });
        self.taken = true;
        self.slot.slot().state.lock().result.take().expect("a join handle takes the result once")
    }

    /// Has the coroutine finished (returned, panicked or been cancelled)?
    pub fn is_finished(&self) -> bool {
        self.slot.slot().state.lock().done
    }

    /// The coroutine's id.
    pub fn id(&self) -> CoroutineId {
        self.id
    }
}

/// Awaiting a `JoinHandle` from async code (any executor): ready with what
/// `join` would return once the coroutine has finished. The waker is woken
/// from the thread that completes the coroutine.
impl<T> std::future::Future for JoinHandle<T> {
    type Output = thread::Result<T>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.get_mut();
        let mut state = this.slot.slot().state.lock();
        if state.done {
            this.taken = true;
            return std::task::Poll::Ready(state.result.take().expect("a join handle takes the result once"));
        }
        state.waiter = Some(crate::task::Unparker::Waker(cx.waker().clone()));
        std::task::Poll::Pending
    }
}

/// Dropping the handle detaches the coroutine: a result already delivered
/// is dropped now, one delivered later as it is delivered (`task::root`).
impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if !self.taken {
            self.slot.detach();
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish_non_exhaustive()
    }
}
