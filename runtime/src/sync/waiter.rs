//! The parked-waiter record shared by every primitive of `sync`.
//!
//! Each primitive keeps its own queue of `Arc<Waiter>` behind a short
//! `parking_lot::Mutex` (never held across a park). A waiter is created
//! `WAITING` and moves exactly once to a primitive-specific non-zero state
//! chosen by the party that removes it from the queue ("notify"). That
//! transition is always made **under the queue lock**, and so is the removal,
//! which gives the timeout rule:
//!
//! ```text
//!   WAITING ──notifier pops it and stores a state, under the queue lock──▶ NOTIFIED(s ≠ 0)
//!      │
//!      └──deadline passed: the waiter takes the queue lock; if still WAITING it removes
//!         itself (timed out, nobody will notify it); else it was notified just before
//!         and takes the result (e.g. owns the lock it was handed).
//! ```
//!
//! Notifiers unpark after releasing the queue lock. Because `park` returns
//! spuriously and may find a stale token, every wait is a loop on the state.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::coroutine::{self, Coroutine};
use crate::task::WaitReason;

/// The state of a waiter that has not been notified yet.
pub(crate) const WAITING: u8 = 0;

/// A parked coroutine waiting to be notified.
pub(crate) struct Waiter {
    state: AtomicU8,
    co: Coroutine,
}

impl Waiter {
    /// A `WAITING` waiter for the calling coroutine.
    pub(crate) fn new() -> Arc<Waiter> {
        Arc::new(Waiter { state: AtomicU8::new(WAITING), co: coroutine::current() })
    }

    /// The current state (acquire).
    pub(crate) fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    /// Sets the final state `to` (non-zero); call under the queue lock after
    /// removing the waiter from the queue. Returns the coroutine to unpark
    /// once the queue lock is released.
    pub(crate) fn notify(&self, to: u8) -> Coroutine {
        debug_assert_ne!(to, WAITING);
        self.state.store(to, Ordering::Release);
        self.co.clone()
    }

    /// Parks until notified; returns the state it was notified with.
    pub(crate) fn wait(&self) -> u8 {
        loop {
            let s = self.state();
            if s != WAITING {
                return s;
            }
            coroutine::park_for(WaitReason::Sync);
        }
    }

    /// Parks until notified or until `deadline`. `None` means the deadline
    /// passed while still `WAITING`: the caller must then check again under
    /// the queue lock and withdraw (see the module docs).
    pub(crate) fn wait_until(&self, deadline: Instant) -> Option<u8> {
        loop {
            let s = self.state();
            if s != WAITING {
                return Some(s);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            coroutine::park_until(deadline, WaitReason::Sync);
        }
    }

    /// True if `self` and `other` are the same waiter.
    pub(crate) fn is(self: &Arc<Self>, other: &Arc<Waiter>) -> bool {
        Arc::ptr_eq(self, other)
    }
}

/// Unparks every coroutine in `cos` (after the queue lock was released).
pub(crate) fn unpark_all(cos: Vec<Coroutine>) {
    for co in cos {
        co.unpark();
    }
}
