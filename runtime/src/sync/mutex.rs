//! A mutual-exclusion lock that parks the coroutine instead of the thread.
//!
//! # State machine
//!
//! `RawMutex::state` holds three bits:
//!
//! * `LOCKED`: somebody owns the mutex;
//! * `QUEUED`: the waiter queue is non-empty (only changed under the queue
//!   lock, where `QUEUED ⇔ !queue.is_empty()` holds);
//! * `HANDOFF`: the mutex is being handed to a parked waiter (set with
//!   `LOCKED` by the unlock that hands it, cleared by the waiter that gets it
//!   once it runs): nobody can take it meanwhile, so `lock` does not spin.
//!
//! ```text
//!  lock, fast path:    0 ──CAS──▶ LOCKED                         (one atomic, no lock)
//!  lock, spin:         4 bursts of 30 spin hints, each followed by try_lock (barging);
//!                      none while HANDOFF is set (Go does not spin in starvation mode)
//!  unlock, fast path:  LOCKED ──CAS──▶ 0
//!  lock, slow path (queue lock held):
//!      !LOCKED ──CAS──▶ LOCKED            (barging: allowed in normal mode)
//!      LOCKED  ──CAS──▶ LOCKED|QUEUED, push waiter, release queue lock, park
//!  unlock, slow path (QUEUED set; queue lock held): pop the front waiter W, then
//!      W waited <  1 ms:  clear LOCKED (and QUEUED if now empty), W := WOKEN
//!                         → W retries the slow path and may lose to a barger;
//!                           if so it re-queues at the *front*, keeping its age
//!      W waited >= 1 ms:  keep LOCKED, set HANDOFF (clear QUEUED if now empty),
//!                         W := HANDED → W owns the mutex on waking (direct
//!                         hand-off) and clears HANDOFF
//!      doomed waiters at the head are popped first and marked SKIPPED (never
//!      handed nor woken); if none is left: clear LOCKED and QUEUED
//!  unwind withdraw (the park of W unwinds at shutdown; queue lock held):
//!      W still WAITING:   remove W (clear QUEUED if now empty)
//!      W was HANDED:      W owns the mutex: clear HANDOFF, unlock it (the next
//!                         live waiter gets it)
//!      W was WOKEN:       pass the wake-up on: if try_lock succeeds, unlock
//!                         (which wakes the next waiter); else the holder will
//!  lock in a cancelling context (a destructor run by the shutdown unwind):
//!      never queues (it cannot park): try_lock, std::thread::yield_now, retry;
//!      abort after SHUTDOWN_LOCK_WAIT (see `waiter`'s module docs)
//! ```
//!
//! # Fairness policy (Go's starvation mode)
//!
//! In normal mode a newly arriving coroutine may take a just-released mutex
//! ahead of a woken waiter ("barging"): it is already running, so this keeps
//! throughput high. A woken waiter that loses goes back to the head of the
//! queue. Once the head waiter has been waiting for 1 ms or more (counted from
//! its first enqueue), unlock hands the mutex directly to it without ever
//! releasing it, so no newcomer can barge. The queue is FIFO otherwise, so
//! every waiter reaches the head and no waiter starves.
//!
//! No poisoning: a panic while holding the guard simply unlocks the mutex.
//!
//! # Shutdown
//!
//! A mutex may outlive the runtime whose coroutines wait on it (it is held by
//! `main` or shared with another runtime). Dropping the runtime unwinds its
//! parked coroutines: a queued one withdraws (or unlocks what it was handed),
//! and unlock never hands the mutex to a doomed waiter, so the mutex stays
//! usable afterwards. A destructor that locks during the shutdown unwind waits
//! for the holder with `yield_now`; if the holder is a coroutine that was
//! parked when the runtime shut down and is unwound later on the same worker,
//! it never releases, and the process aborts after a few seconds with a
//! message naming the waiting coroutine (instead of spinning for ever).

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::{pop_live, wait_while_cancelling, Waiter, WAITING};
use crate::sched::context;

const LOCKED: u8 = 1;
const QUEUED: u8 = 2;
const HANDOFF: u8 = 4;

/// Waiter states (see the module docs).
const WOKEN: u8 = 1;
const HANDED: u8 = 2;

/// How long the head waiter may wait before unlock hands off directly.
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// The lock without data: the state word and the waiter queue.
pub(crate) struct RawMutex {
    state: AtomicU8,
    /// FIFO of parked waiters with the instant each first queued.
    queue: parking_lot::Mutex<VecDeque<(Arc<Waiter>, Instant)>>,
}

/// Spin bursts before parking, and `spin_loop` hints per burst (Go: 4 x 30).
const SPIN_ROUNDS: usize = 4;
const SPIN_PAUSES: usize = 30;

impl RawMutex {
    pub(crate) const fn new() -> RawMutex {
        RawMutex { state: AtomicU8::new(0), queue: parking_lot::const_mutex(VecDeque::new()) }
    }

    /// Acquires the mutex, parking while it is held.
    pub(crate) fn lock(&self) {
        if self.state.compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed).is_err() {
            if self.spin() {
                return;
            }
            self.lock_slow();
        }
    }

    /// Go's active spinning: a few short bursts of `spin_loop` retrying the
    /// lock before parking, because the holder is most likely running on
    /// another worker and about to release (critical sections are short),
    /// and parking costs a hand-off through the scheduler. Not when the lock
    /// is being handed to a starving waiter (it then never looks free).
    fn spin(&self) -> bool {
        for _ in 0..SPIN_ROUNDS {
            if self.state.load(Ordering::Relaxed) & HANDOFF != 0 {
                return false; // it will not look free before its new owner runs
            }
            for _ in 0..SPIN_PAUSES {
                std::hint::spin_loop();
            }
            if self.try_lock() {
                return true;
            }
        }
        false
    }

    /// Acquires the mutex if it is free (barging past queued waiters, as a
    /// fast-path `lock` would).
    pub(crate) fn try_lock(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & LOCKED == 0 {
            match self.state.compare_exchange_weak(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(x) => s = x,
            }
        }
        false
    }

    #[cold]
    fn lock_slow(&self) {
        if context::cancelling() {
            // A destructor run by the shutdown unwind: it cannot park.
            return wait_while_cancelling("Mutex", || self.try_lock());
        }
        let mut since: Option<Instant> = None;
        let mut at_front = false;
        loop {
            let waiter = {
                let mut q = self.queue.lock();
                let mut s = self.state.load(Ordering::Relaxed);
                loop {
                    if s & LOCKED == 0 {
                        match self.state.compare_exchange_weak(
                            s,
                            s | LOCKED,
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        ) {
                            Ok(_) => return,
                            Err(x) => s = x,
                        }
                    } else {
                        match self.state.compare_exchange_weak(
                            s,
                            s | QUEUED,
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        ) {
                            Ok(_) => break,
                            Err(x) => s = x,
                        }
                    }
                }
                let w = Waiter::new();
                let t = *since.get_or_insert_with(Instant::now);
                if at_front {
                    q.push_front((Arc::clone(&w), t));
                } else {
                    q.push_back((Arc::clone(&w), t));
                }
                w
            };
            crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
                kind: crate::task::SyncKind::Mutex,
                addr: (self as *const Self).cast::<()>() as usize,
            });
            match waiter.wait_or(|| self.withdraw(&waiter)) {
                HANDED => {
                    // We own it (LOCKED stayed set): end the hand-off.
                    self.state.fetch_and(!HANDOFF, Ordering::Relaxed);
                    return;
                }
                _woken => at_front = true,
            }
        }
    }

    /// The unwind withdraw of `w` (see the module docs).
    #[cold]
    fn withdraw(&self, w: &Arc<Waiter>) {
        let state = {
            let mut q = self.queue.lock();
            let s = w.state();
            if s == WAITING {
                q.retain(|(x, _)| !x.is(w));
                if q.is_empty() {
                    self.state.fetch_and(!QUEUED, Ordering::Relaxed);
                }
            }
            s
        };
        match state {
            // SAFETY: HANDED means the unlocker left the mutex LOCKED for us:
            // we own it.
            HANDED => unsafe {
                self.state.fetch_and(!HANDOFF, Ordering::Relaxed);
                self.unlock()
            },
            // Pass the wake-up on: unlocking wakes the next waiter.
            // SAFETY: `try_lock` just locked it for us.
            WOKEN if self.try_lock() => unsafe { self.unlock() },
            _ => {} // withdrawn, or SKIPPED: nothing was handed to us
        }
    }

    /// Releases the mutex.
    ///
    /// # Safety
    /// The caller must own the mutex (a `lock`/`try_lock` not yet released).
    pub(crate) unsafe fn unlock(&self) {
        if self.state.compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed).is_err() {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let co = {
            let mut q = self.queue.lock();
            let Some((w, since)) = pop_live(&mut q, |(w, _)| &**w) else {
                // Only doomed waiters were queued (or none, which is not
                // reachable while QUEUED ⇔ non-empty holds): release.
                self.state.fetch_and(!(LOCKED | QUEUED), Ordering::Release);
                return;
            };
            let empty_bit = if q.is_empty() { QUEUED } else { 0 };
            if since.elapsed() >= STARVATION_THRESHOLD {
                // Hand-off: the mutex stays LOCKED, now owned by `w`.
                self.state.fetch_and(!empty_bit, Ordering::Relaxed);
                self.state.fetch_or(HANDOFF, Ordering::Relaxed);
                w.notify(HANDED)
            } else {
                self.state.fetch_and(!(LOCKED | empty_bit), Ordering::Release);
                w.notify(WOKEN)
            }
        };
        co.unpark();
    }

    /// True if somebody holds the mutex right now.
    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & LOCKED != 0
    }
}

/// A mutual-exclusion lock for coroutines: contended `lock` parks the
/// coroutine, not the worker thread. No poisoning; see the module docs for the
/// fairness policy.
///
/// ```
/// use corio::sync::Mutex;
/// let m = Mutex::new(1);
/// *m.lock() += 1;
/// assert_eq!(*m.lock(), 2);
/// ```
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: access to the `T` is serialised by the lock, so sharing the mutex
// only ever lets one thread at a time use the `T` (which must be `Send`).
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Exclusive access to the data of a locked [`Mutex`]; unlocks on drop.
///
/// Unlike std's, this guard is `Send` if `T: Send`: corio's mutex is not
/// tied to the OS thread that locked it (no pthread mutex underneath), so the
/// guard may be moved into another coroutine or thread and unlocked there. (A
/// coroutine holding it never resumes on another worker: started coroutines
/// do not migrate.)
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Gives the guard the auto traits of `&mut T`.
    _marker: PhantomData<&'a mut T>,
}

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `value`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex { raw: RawMutex::new(), data: UnsafeCell::new(value) }
    }

    /// Consumes the mutex, returning its data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, parking the calling coroutine while it is held.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        // Spent before taking the lock: a yield (or an unwind out of it)
        // then never happens with the lock held and no guard to release it.
        crate::sched::budget::spend();
        self.raw.lock();
        MutexGuard { mutex: self, _marker: PhantomData }
    }

    /// Locks the mutex if it is free right now.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        if self.raw.try_lock() {
            Some(MutexGuard { mutex: self, _marker: PhantomData })
        } else {
            None
        }
    }

    /// True if the mutex is held right now (a racy snapshot).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Mutable access without locking: `&mut self` proves exclusivity.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    pub(crate) fn raw(&self) -> &RawMutex {
        &self.raw
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks (for `Condvar`).
    pub(crate) fn mutex(guard: &Self) -> &'a Mutex<T> {
        guard.mutex
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this coroutine owns the lock, so
        // no `&mut T` exists elsewhere.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while this coroutine owns the lock,
        // and `&mut self` makes this the only reference derived from it.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: a live guard means the lock is held by its owner.
        unsafe { self.mutex.raw.unlock() }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_lock() {
            Some(g) => f.debug_struct("Mutex").field("data", &&*g).finish(),
            None => f.debug_struct("Mutex").field("data", &"<locked>").finish(),
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
