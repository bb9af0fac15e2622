//! The parked-waiter record shared by every primitive of `sync`.
//!
//! Each primitive keeps its own queue of `Arc<Waiter>` behind a short
//! `parking_lot::Mutex` (never held across a park). A waiter is created
//! `WAITING` and moves exactly once to a primitive-specific non-zero state
//! chosen by the party that removes it from the queue ("notify"). That
//! transition is always made **under the queue lock**, and so is the removal,
//! which gives the timeout rule and the unwind rule:
//!
//! ```text
//!   WAITING ──notifier pops it and stores a state, under the queue lock──▶ NOTIFIED(s ∉ {0, SKIPPED})
//!      │                                                                  (owns what s says: a lock,
//!      │                                                                   a permit, a wake-up)
//!      ├──notifier finds it doomed at the head: pops it, no unpark──▶ SKIPPED
//!      │     (its coroutine will never run normally again, see below; the notifier
//!      │      goes on to the next waiter, so nothing is handed to the dead)
//!      │
//!      ├──deadline passed: the waiter takes the queue lock; if still WAITING it removes
//!      │  itself (timed out, nobody will notify it); if SKIPPED it was already removed
//!      │  (timed out too); else it was notified just before and takes the result
//!      │  (e.g. owns the lock it was handed).
//!      │
//!      └──the park unwinds (its coroutine is dropped at shutdown): the wait's drop guard
//!         (`Waiter::wait_or`) takes the queue lock; still WAITING → it removes itself
//!         ("unwind withdraw"); already NOTIFIED → it gives back what it was handed
//!         (unlocks, releases the permit, passes the wake-up on); SKIPPED → nothing.
//! ```
//!
//! *Doomed* ([`Coroutine::is_doomed`]): the waiter's coroutine is being unwound,
//! or its runtime's shutdown has begun, so it will only ever be resumed to be
//! unwound. Notifiers skip it: a lock, permit or notification handed to it
//! would otherwise be lost with it (held for ever by nobody, or waking nobody).
//! A skipped waiter that still runs (it was between queueing and parking)
//! keeps parking: `wait` never returns `SKIPPED`, the unwind ends the wait.
//!
//! Notifiers unpark after releasing the queue lock. Because `park` returns
//! spuriously and may find a stale token, every wait is a loop on the state.
//!
//! # Waiting in a destructor at shutdown
//!
//! During the shutdown unwind (`context::cancelling()`), `park` returns at once:
//! a wait cannot suspend. So no primitive queues there. Lock acquisitions
//! (`Mutex`, `RwLock`, `Semaphore`, a `Condvar` re-locking its mutex) retry
//! with `std::thread::yield_now` ([`wait_while_cancelling`]): a holder being
//! unwound on another worker, or a plain thread, releases soon. A holder that
//! is a coroutine parked at the shutdown and unwound *later on this worker*
//! never releases: after [`SHUTDOWN_LOCK_WAIT`] the process aborts with a
//! message naming the waiting coroutine, rather than hang for ever. Waits for
//! an event (`WaitGroup`, `Barrier`) give up at once instead.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::coroutine::{self, Coroutine};
use crate::task::WaitReason;

/// The state of a waiter that has not been notified yet.
pub(crate) const WAITING: u8 = 0;

/// The state of a doomed waiter a notifier removed without handing it
/// anything (see the module docs). Primitives' own states are small numbers.
pub(crate) const SKIPPED: u8 = u8::MAX;

/// How long a lock acquisition in a destructor at shutdown may wait before
/// the process aborts (see the module docs).
pub(crate) const SHUTDOWN_LOCK_WAIT: Duration = Duration::from_secs(5);

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

    /// Was it notified (a state other than `WAITING` and `SKIPPED`)? Read
    /// under the queue lock when deciding between withdrawal and success.
    pub(crate) fn notified(&self) -> Option<u8> {
        match self.state() {
            WAITING | SKIPPED => None,
            s => Some(s),
        }
    }

    /// Sets the final state `to` (non-zero); call under the queue lock after
    /// removing the waiter from the queue. Returns the coroutine to unpark
    /// once the queue lock is released.
    pub(crate) fn notify(&self, to: u8) -> Coroutine {
        debug_assert!(to != WAITING && to != SKIPPED);
        self.state.store(to, Ordering::Release);
        self.co.clone()
    }

    /// Will this waiter's coroutine never return from its wait normally?
    fn is_doomed(&self) -> bool {
        self.co.is_doomed()
    }

    /// Parks until notified; returns the state it was notified with (never
    /// `SKIPPED`: a skipped waiter is doomed and parks until it is unwound).
    fn wait(&self) -> u8 {
        loop {
            match self.state() {
                WAITING | SKIPPED => coroutine::park_for(WaitReason::Sync),
                s => return s,
            }
        }
    }

    /// As `wait`, but if the park unwinds (the coroutine is dropped at
    /// shutdown) runs `withdraw` during the unwind: it must leave the queue
    /// or give back what this waiter was handed (see the module docs).
    pub(crate) fn wait_or<F: FnOnce()>(&self, withdraw: F) -> u8 {
        let guard = OnUnwind(Some(withdraw));
        let s = self.wait();
        guard.disarm();
        s
    }

    /// Parks until notified or until `deadline`, running `withdraw` if the
    /// park unwinds (as `wait_or`). `None` means the deadline passed while
    /// not notified: the caller must then check again under the queue lock
    /// ([`Waiter::notified`]) and withdraw (see the module docs).
    pub(crate) fn wait_until_or<F: FnOnce()>(&self, deadline: Instant, withdraw: F) -> Option<u8> {
        let guard = OnUnwind(Some(withdraw));
        let r = loop {
            if let Some(s) = self.notified() {
                break Some(s);
            }
            if Instant::now() >= deadline {
                break None;
            }
            coroutine::park_until(deadline, WaitReason::Sync);
        };
        guard.disarm();
        r
    }

    /// True if `self` and `other` are the same waiter.
    pub(crate) fn is(self: &Arc<Self>, other: &Arc<Waiter>) -> bool {
        Arc::ptr_eq(self, other)
    }
}

/// Runs its closure when dropped, unless disarmed: the unwind withdraw.
struct OnUnwind<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> OnUnwind<F> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for OnUnwind<F> {
    fn drop(&mut self) {
        if let Some(withdraw) = self.0.take() {
            withdraw();
        }
    }
}

/// Notifier side, under the queue lock: pops the doomed waiters at the head
/// of `queue` (marking them `SKIPPED`, without unparking them), so that the
/// head, if any, is a waiter that can take what is handed to it.
pub(crate) fn skip_doomed<T>(queue: &mut VecDeque<T>, waiter: impl Fn(&T) -> &Waiter) {
    while queue.front().is_some_and(|x| waiter(x).is_doomed()) {
        let x = queue.pop_front().expect("non-empty");
        waiter(&x).state.store(SKIPPED, Ordering::Release);
    }
}

/// Pops the first waiter of `queue` that is not doomed (see `skip_doomed`).
pub(crate) fn pop_live<T>(queue: &mut VecDeque<T>, waiter: impl Fn(&T) -> &Waiter) -> Option<T> {
    skip_doomed(queue, &waiter);
    queue.pop_front()
}

/// A lock acquisition in a cancelling context (a destructor run by the
/// shutdown unwind, which cannot park): retries `try_acquire`, yielding the
/// thread in between, and aborts the process after [`SHUTDOWN_LOCK_WAIT`]
/// (see the module docs). `what` names the primitive in the message.
#[cold]
pub(crate) fn wait_while_cancelling(what: &str, mut try_acquire: impl FnMut() -> bool) {
    let start = Instant::now();
    while !try_acquire() {
        if start.elapsed() >= SHUTDOWN_LOCK_WAIT {
            let me = coroutine::current();
            crate::task::abort_with(&format!(
                "coroutine {} ({}): a destructor run at shutdown waited {:?} for a {what} held by a \
                 coroutine that was parked when the runtime shut down (it releases only when \
                 unwound, after this one on the same worker); release locks before parking, or do \
                 not lock in destructors that run at shutdown",
                me.id(),
                me.name().unwrap_or("unnamed"),
                SHUTDOWN_LOCK_WAIT,
            ));
        }
        std::thread::yield_now();
    }
}

/// As [`wait_while_cancelling`], but gives up (returns false) at `deadline`
/// or after [`SHUTDOWN_LOCK_WAIT`], whichever comes first: for the timed
/// acquisitions, which may fail.
#[cold]
pub(crate) fn wait_while_cancelling_until(deadline: Instant, mut try_acquire: impl FnMut() -> bool) -> bool {
    let limit = Instant::now() + SHUTDOWN_LOCK_WAIT;
    loop {
        if try_acquire() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline || now >= limit {
            return false;
        }
        std::thread::yield_now();
    }
}

/// Unparks every coroutine in `cos` (after the queue lock was released).
pub(crate) fn unpark_all(cos: Vec<Coroutine>) {
    for co in cos {
        co.unpark();
    }
}
