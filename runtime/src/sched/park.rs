//! Parking and unparking, the scheduler's side: the entry points every
//! blocking call of the public API goes through (`park_for`, `park_until`),
//! with the plain-thread fallback, and the switch off the coroutine's stack.
//!
//! The protocol (states, steps, why no wake-up is lost and no coroutine is
//! resumed twice) is told once, in `task::state`; the worker's half (the
//! commit after the switch) is in `sched::worker`. A wake-up is
//! `Task::unpark`, which enqueues through the task's `Schedule` (the owner's
//! `WorkerHandle`).

use super::{clock, context, metrics};
use crate::task::{Suspend, Task, WaitObject, WaitReason};
use std::sync::Arc;
use std::time::Instant;

/// Parks the calling coroutine (`task`, running on this thread) until an
/// unpark, or until `deadline` if given. May return spuriously.
pub(crate) fn park_current(task: &Arc<Task>, deadline: Option<Instant>, reason: WaitReason) {
    park_current_inner(task, deadline, reason, true);
    // Whatever way the park ended (it may not have suspended at all), the
    // recorded wait object is over: a later bare park must not show it.
    task.wait_object.set(WaitObject::None);
}

fn park_current_inner(task: &Arc<Task>, deadline: Option<Instant>, reason: WaitReason, cancellable: bool) {
    if task.park_state.try_consume_token() {
        return;
    }
    let cancel = cancellable && task.cancel_requested() && reason != WaitReason::Io;
    if task.is_cancelling() || cancel {
        if std::thread::panicking() {
            // A destructor run by the shutdown (or cancel) unwind: it must
            // not suspend again; return (a spurious wake-up) and let it finish.
            return;
        }
        // Cancelled (`JoinHandle::cancel`), or user code caught the shutdown
        // unwind (a catch-all `catch_unwind`) and carried on: unwind with
        // the cancel payload, so destructors run and `join` reports it.
        // (An I/O wait is not unwound: it returns, and the I/O call fails
        // with the cancellation error instead, as `io::Result` callers expect.)
        std::panic::resume_unwind(Box::new(crate::task::CANCELLED));
    }
    let worker = context::worker().expect("a running coroutine is on a worker thread");
    if let Some(deadline) = deadline {
        // No clock read here: every caller has just read the clock, to
        // compute the deadline or to check that it has not passed. One that
        // passed since is found by the worker's next timer check, which
        // unparks us (a short extra wait, never a lost wake-up).
        metrics::bump(&worker.me().metrics.timers_armed);
        worker.timers.borrow_mut().arm(task, deadline);
    }
    if task.park_state.begin_park() {
        // It gives the worker back: a fresh budget (`budget`).
        task.budget.set(crate::task::BUDGET);
        task.parked_since.set(clock::coarse_now_ms());
        task.set_wait_reason(reason);
        super::chaos::pause();
        // Step 4 (steps in `task::state`).
        context::suspend_current(Suspend::Park);
        task.set_wait_reason(WaitReason::None);
    }
    if deadline.is_some() {
        worker.timers.borrow_mut().disarm(task);
    }
}

/// Parks the calling coroutine until an unpark (`reason` is what it waits
/// for, for diagnostics); on a plain thread, `std::thread::park`. May return
/// spuriously. Returns at once for a thread dropping never-started coroutines.
pub(crate) fn park_for(reason: WaitReason) {
    match context::current_task() {
        Some(task) => park_current(&task, None, reason),
        None if context::cancelling() => {} // dropping never-started coroutines
        None => std::thread::park(),
    }
}

/// As `park_for`, until `deadline` at the latest.
pub(crate) fn park_until(deadline: Instant, reason: WaitReason) {
    match context::current_task() {
        Some(task) => park_current(&task, Some(deadline), reason),
        None if context::cancelling() => {}
        None => {
            let now = Instant::now();
            if deadline > now {
                std::thread::park_timeout(deadline - now);
            }
        }
    }
}

/// A park that does not wait: consumes the caller's wake-up token if it has
/// one (`park_timeout(Duration::ZERO)`, as std's).
pub(crate) fn consume_token() {
    match context::current_task() {
        Some(task) => {
            task.park_state.try_consume_token();
        }
        None if context::cancelling() => {}
        None => std::thread::park_timeout(std::time::Duration::ZERO),
    }
}

/// Records what the calling coroutine is about to wait on, for dumps (a
/// plain store; cleared when its park returns). Nothing on a plain thread.
pub(crate) fn set_wait_object(object: WaitObject) {
    context::with_current_task(|task| {
        if let Some(task) = task {
            task.wait_object.set(object);
        }
    });
}

/// As `park_for`, but a cancel (`JoinHandle::cancel`) does not unwind it: for
/// waits that must last until something borrowed from the caller's frame is
/// released (a scope's coroutines, a borrowing blocking job).
pub(crate) fn park_for_uncancellable(reason: WaitReason) {
    match context::current_task() {
        Some(task) => {
            park_current_inner(&task, None, reason, false);
            task.wait_object.set(WaitObject::None);
        }
        None if context::cancelling() => {}
        None => std::thread::park(),
    }
}
