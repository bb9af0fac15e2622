//! Waiting for work that borrows from the caller's frame (a scope's
//! coroutines, a borrowing `block_on` or blocking job) to be done, in a way
//! no unwind can cut short: the frame must outlive the borrow.
//!
//! The wait parks the coroutine (a cancel does not unwind it) or blocks a
//! plain thread. When it cannot park (a destructor run by the shutdown
//! unwind, or an unwind out of the park itself), it waits by yielding the
//! thread: the work may finish on another worker or thread. Work that can
//! only finish on this very worker (which is stuck in this wait) never
//! does; rather than free what it borrows, the process aborts with a
//! message after `SHUTDOWN_WAIT`. The shutdown unwinds a worker's coroutines
//! newest first, so a scope's own coroutines are normally gone first.

use super::{current, current_thread};
use crate::sched::{context, park};
use crate::task::{Unparker, WaitReason};
use std::time::{Duration, Instant};

/// How long a wait that cannot park yields before it gives up and aborts.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Waits until `done()`; `register(unparker)` records who to wake (under
/// the caller's lock, re-checking `done` there) and returns true if done.
pub(crate) fn wait_until_done(what: &str, mut register: impl FnMut(Option<Unparker>) -> bool) {
    // If anything below unwinds (a forced unwind starts inside the park),
    // the guard finishes the wait before the frame is gone.
    let mut guard = Guard { what, register: &mut register, armed: true };
    loop {
        let can_park = !context::cancelling();
        let me = if can_park && context::in_coroutine() { current() } else { current_thread() };
        let in_coroutine = can_park && context::in_coroutine();
        if (guard.register)(Some(me.into_unparker())) {
            guard.armed = false;
            return;
        }
        if !can_park {
            guard.wait_yielding();
            guard.armed = false;
            return;
        }
        if in_coroutine {
            park::park_for_uncancellable(WaitReason::Join);
        } else {
            std::thread::park();
        }
    }
}

struct Guard<'a, F: FnMut(Option<Unparker>) -> bool> {
    what: &'a str,
    register: &'a mut F,
    armed: bool,
}

impl<F: FnMut(Option<Unparker>) -> bool> Guard<'_, F> {
    fn wait_yielding(&mut self) {
        let start = Instant::now();
        while !(self.register)(None) {
            if start.elapsed() >= SHUTDOWN_WAIT {
                crate::task::abort_with(&format!(
                    "{} was still running {SHUTDOWN_WAIT:?} after the coroutine waiting for it was \
                     unwound (it borrows that coroutine's frame, which cannot be freed before it ends)",
                    self.what
                ));
            }
            std::thread::yield_now();
        }
    }
}

impl<F: FnMut(Option<Unparker>) -> bool> Drop for Guard<'_, F> {
    fn drop(&mut self) {
        if self.armed {
            self.wait_yielding();
        }
    }
}
