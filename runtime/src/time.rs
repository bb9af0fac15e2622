//! Sleeping: `sleep` and `sleep_until`, which park the calling coroutine on its
//! worker's timer heap (and simply sleep the thread outside a coroutine).
//!
//! A sleep parks with a deadline; a spurious wake-up (a stray `unpark`) just
//! parks again until the deadline has passed, so a sleep never ends early.

use crate::coroutine;
use crate::task::WaitReason;
use std::time::{Duration, Instant};

/// Puts the calling coroutine to sleep for at least `dur`; its worker runs
/// other coroutines meanwhile. On a plain thread it blocks the thread.
pub fn sleep(dur: Duration) {
    match Instant::now().checked_add(dur) {
        Some(deadline) => sleep_until(deadline),
        // A deadline past the end of representable time: sleep "forever".
        None => loop {
            if crate::sched::context::cancelling() {
                return;
            }
            coroutine::park_timeout(Duration::from_secs(86_400 * 365));
        },
    }
}

/// Puts the calling coroutine to sleep until `deadline`.
///
/// Inside a destructor run while the runtime shuts down it returns at once
/// (the runtime is going away; waiting would only delay that).
pub fn sleep_until(deadline: Instant) {
    loop {
        if crate::sched::context::cancelling() {
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        crate::sched::park::set_wait_object(crate::task::WaitObject::Sleep { until: deadline });
        coroutine::park_until(deadline, WaitReason::Sleep);
    }
}
