//! A condition variable for [`Mutex`](super::Mutex), parking coroutines.
//!
//! # Protocol
//!
//! `wait` puts a fresh waiter at the tail of the condvar's FIFO queue *while
//! still holding the mutex*, then unlocks the mutex and parks. A notifier
//! pops waiters from the head under the queue lock and marks them
//! `NOTIFIED`. Since a waiter is queued before the mutex is released, a
//! notification issued after the waiter's last check of the condition (which
//! needs the mutex, or happens after it) always finds it: no lost wake-ups.
//!
//! ```text
//!  WAITING ──notify_one/notify_all pops it──▶ NOTIFIED → relock the mutex, return
//!     ├──deadline (wait_timeout): under the queue lock, notified?
//!     │    no  → remove itself (if a notifier skipped it, it is gone already),
//!     │          relock, return timed_out = true
//!     │    yes → it was notified meanwhile: relock, return timed_out = false
//!     ├──a notifier finds it doomed at the head ──▶ SKIPPED: popped, not woken,
//!     │    not counted; notify_one goes on to the next waiter
//!     └──the park unwinds (shutdown): still WAITING → remove itself;
//!          NOTIFIED → pass the notification on (notify_one); then relock the
//!          mutex before the unwind leaves `wait` (see below)
//! ```
//!
//! So `notify_one` returns true only if it woke a waiter that can still run,
//! and a notification is never lost on a coroutine dropped at shutdown.
//!
//! An unwinding wait re-locks the mutex, as std's does: the caller's
//! `MutexGuard` is only borrowed, it unlocks when the unwind reaches the
//! caller's frame (and a `catch_unwind` around the wait could even keep using
//! it), so leaving the mutex unlocked would let that guard unlock a mutex
//! somebody else holds. During the shutdown unwind the re-lock cannot park: it
//! waits with `yield_now` and aborts after a few seconds if the holder is a
//! coroutine parked at the shutdown (see `Mutex`'s docs).
//!
//! `wait` returns only after a notification (no spurious wake-ups reach the
//! caller), but as with any condition variable the condition must be
//! re-checked: another coroutine may have changed it first. `wait_while` does
//! that loop.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::mutex::{MutexGuard, RawMutex};
use super::waiter::{pop_live, unpark_all, Waiter, SKIPPED, WAITING};

const NOTIFIED: u8 = 1;

/// Whether a timed condvar wait returned because of its timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// True if the wait ended because the timeout elapsed.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable: lets coroutines park until notified, releasing a
/// [`Mutex`](super::Mutex) meanwhile.
///
/// ```
/// use corio::sync::{Condvar, Mutex};
/// use std::sync::Arc;
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let p2 = Arc::clone(&pair);
/// let t = std::thread::spawn(move || {
///     *p2.0.lock() = true;
///     p2.1.notify_one();
/// });
/// let mut ready = pair.0.lock();
/// pair.1.wait_while(&mut ready, |r| !*r);
/// assert!(*ready);
/// # drop(ready);
/// # t.join().unwrap();
/// ```
pub struct Condvar {
    queue: parking_lot::Mutex<VecDeque<Arc<Waiter>>>,
}

impl Condvar {
    /// A condition variable with no waiters.
    pub const fn new() -> Condvar {
        Condvar { queue: parking_lot::const_mutex(VecDeque::new()) }
    }

    /// Unlocks the guard's mutex, parks until notified, and locks it again.
    pub fn wait<T: ?Sized>(&self, guard: &mut MutexGuard<'_, T>) {
        let w = self.enqueue();
        let raw = MutexGuard::mutex(guard).raw();
        // SAFETY: `guard` proves the lock is held; it is re-acquired below
        // before `guard` can be used again (we hold `&mut` to it), also if
        // the park unwinds.
        unsafe { raw.unlock() };
        crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
            kind: crate::task::SyncKind::Condvar,
            addr: (self as *const Self).cast::<()>() as usize,
        });
        w.wait_or(|| self.unwind(&w, raw));
        raw.lock();
    }

    /// As [`Condvar::wait`], but gives up after `timeout`.
    pub fn wait_timeout<T: ?Sized>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Duration,
    ) -> WaitTimeoutResult {
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            self.wait(guard);
            return WaitTimeoutResult(false);
        };
        let w = self.enqueue();
        let raw = MutexGuard::mutex(guard).raw();
        // SAFETY: as in `wait`.
        unsafe { raw.unlock() };
        crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
            kind: crate::task::SyncKind::Condvar,
            addr: (self as *const Self).cast::<()>() as usize,
        });
        let timed_out = match w.wait_until_or(deadline, || self.unwind(&w, raw)) {
            Some(_) => false,
            None => {
                let mut q = self.queue.lock();
                if w.notified().is_none() {
                    q.retain(|x| !x.is(&w));
                    true
                } else {
                    false
                }
            }
        };
        raw.lock();
        WaitTimeoutResult(timed_out)
    }

    /// The unwind of a wait (see the module docs): leave the queue or pass a
    /// notification on, then hold the mutex again, because the caller's
    /// guard still exists and will unlock it. (Forgetting the guard instead
    /// would never block, but it is borrowed, not moved in: we cannot.)
    #[cold]
    fn unwind(&self, w: &Arc<Waiter>, raw: &RawMutex) {
        let state = {
            let mut q = self.queue.lock();
            let s = w.state();
            if s == WAITING {
                q.retain(|x| !x.is(w));
            }
            s
        };
        if state != WAITING && state != SKIPPED {
            self.notify_one();
        }
        raw.lock();
    }

    /// Waits while `condition` holds: returns with the mutex locked and the
    /// condition false.
    pub fn wait_while<T: ?Sized, F>(&self, guard: &mut MutexGuard<'_, T>, mut condition: F)
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut **guard) {
            self.wait(guard);
        }
    }

    /// As [`Condvar::wait_while`], but gives up after `timeout` in total;
    /// `timed_out()` is then true (and the condition may still hold).
    pub fn wait_timeout_while<T: ?Sized, F>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        timeout: Duration,
        mut condition: F,
    ) -> WaitTimeoutResult
    where
        F: FnMut(&mut T) -> bool,
    {
        let start = Instant::now();
        while condition(&mut **guard) {
            let Some(left) = timeout.checked_sub(start.elapsed()) else {
                return WaitTimeoutResult(true);
            };
            self.wait_timeout(guard, left);
        }
        WaitTimeoutResult(false)
    }

    /// Wakes the longest-waiting coroutine, if any. Returns whether one was
    /// woken (waiters of a runtime that is shutting down are skipped: they
    /// will never run again).
    pub fn notify_one(&self) -> bool {
        let co = {
            let mut q = self.queue.lock();
            match pop_live(&mut q, |w| &**w) {
                Some(w) => w.notify(NOTIFIED),
                None => return false,
            }
        };
        co.unpark();
        true
    }

    /// Wakes every waiting coroutine. Returns how many were woken (waiters
    /// of a runtime that is shutting down are dropped, not counted).
    pub fn notify_all(&self) -> usize {
        let wake: Vec<_> = {
            let mut q = self.queue.lock();
            let mut wake = Vec::with_capacity(q.len());
            while let Some(w) = pop_live(&mut q, |w| &**w) {
                wake.push(w.notify(NOTIFIED));
            }
            wake
        };
        let n = wake.len();
        unpark_all(wake);
        n
    }

    fn enqueue(&self) -> Arc<Waiter> {
        let w = Waiter::new();
        self.queue.lock().push_back(Arc::clone(&w));
        w
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Condvar { .. }")
    }
}
