//! A counting semaphore whose `acquire` parks the coroutine.
//!
//! # State machine
//!
//! `state = permits << 1 | QUEUED`, where `QUEUED ⇔ !queue.is_empty()` holds
//! under the queue lock, and `QUEUED ⇒ permits == 0` (a release never adds a
//! permit while somebody is queued: it hands it to the head instead).
//!
//! ```text
//!  acquire, fast:  !QUEUED and permits > 0 ──CAS permits-1──▶ (acquired)
//!  acquire, slow (queue lock): same check, else set QUEUED, push, park
//!                  until GRANTED (the permit was handed over, state unchanged)
//!  release(n), fast:  !QUEUED ──CAS permits+n──▶
//!  release(n), slow (queue lock): pop up to n waiters, notify them GRANTED;
//!                  add what is left to permits; clear QUEUED if now empty
//!  timeout (queue lock): still WAITING → remove itself (clear QUEUED if now
//!                  empty), fail; SKIPPED → fail; else it was granted just
//!                  before: succeed
//!  release_slow skips doomed waiters at the head (pops them, marks them
//!                  SKIPPED, no permit, no unpark)
//!  unwind withdraw (a queued waiter's park unwinds at shutdown; queue lock):
//!                  still WAITING → remove itself (clear QUEUED if now empty);
//!                  GRANTED → give the permit back (release(1))
//!  acquire in a cancelling context (a destructor run by the shutdown unwind):
//!                  never queues; retries the fast path with
//!                  std::thread::yield_now; `acquire` aborts after
//!                  SHUTDOWN_LOCK_WAIT, `acquire_timeout` fails then (or at
//!                  its deadline)
//! ```
//!
//! Fairness: FIFO. Once anybody is queued, newcomers queue behind them and
//! released permits go to the head of the queue, so a waiter cannot be
//! overtaken.
//!
//! Shutdown: as for [`Mutex`](super::Mutex), a semaphore shared with the
//! outside stays usable after a runtime whose coroutines were queued on it is
//! dropped: their permits are neither lost nor handed to the dead.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::{
    pop_live, unpark_all, wait_while_cancelling, wait_while_cancelling_until, Waiter, WAITING,
};
use crate::sched::context;

const QUEUED: usize = 1;
const PERMIT: usize = 2;

const GRANTED: u8 = 1;

/// A counting semaphore: at most `permits` holders at a time.
///
/// ```
/// use corio::sync::Semaphore;
/// let s = Semaphore::new(2);
/// let a = s.acquire();
/// let _b = s.acquire();
/// assert!(s.try_acquire().is_none());
/// drop(a);
/// assert!(s.try_acquire().is_some());
/// ```
pub struct Semaphore {
    state: AtomicUsize,
    queue: parking_lot::Mutex<VecDeque<Arc<Waiter>>>,
}

/// One permit of a [`Semaphore`]; released on drop.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl Semaphore {
    /// A semaphore with `permits` permits available.
    ///
    /// # Panics
    /// If `permits` exceeds `usize::MAX / 2`.
    pub const fn new(permits: usize) -> Semaphore {
        assert!(permits <= usize::MAX / PERMIT, "too many permits");
        Semaphore {
            state: AtomicUsize::new(permits * PERMIT),
            queue: parking_lot::const_mutex(VecDeque::new()),
        }
    }

    /// Takes a permit, parking until one is available.
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        crate::sched::budget::spend(); // before taking it (see Mutex::lock)
        if !self.try_fast() {
            if context::cancelling() {
                // A destructor run by the shutdown unwind: it cannot park.
                wait_while_cancelling("Semaphore permit", || self.try_fast());
            } else if let Some(w) = self.enqueue() {
                crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
                    kind: crate::task::SyncKind::Semaphore,
                    addr: (self as *const Self).cast::<()>() as usize,
                });
                w.wait_or(|| self.withdraw(&w));
            }
        }
        SemaphorePermit { sem: self }
    }

    /// Takes a permit if one is available and nobody is queued for one.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_fast().then(|| SemaphorePermit { sem: self })
    }

    /// As [`Semaphore::acquire`], but gives up after `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        if self.try_fast() {
            return Some(SemaphorePermit { sem: self });
        }
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            return Some(self.acquire());
        };
        if context::cancelling() {
            // A destructor run by the shutdown unwind: it cannot park.
            return wait_while_cancelling_until(deadline, || self.try_fast())
                .then_some(SemaphorePermit { sem: self });
        }
        let Some(w) = self.enqueue() else {
            return Some(SemaphorePermit { sem: self });
        };
        crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
            kind: crate::task::SyncKind::Semaphore,
            addr: (self as *const Self).cast::<()>() as usize,
        });
        if w.wait_until_or(deadline, || self.withdraw(&w)).is_some() {
            return Some(SemaphorePermit { sem: self });
        }
        let mut q = self.queue.lock();
        if w.notified().is_some() {
            return Some(SemaphorePermit { sem: self });
        }
        self.remove(&mut q, &w);
        None
    }

    /// Removes `w` from the queue (queue lock held), clearing QUEUED if it
    /// is then empty.
    fn remove(&self, q: &mut VecDeque<Arc<Waiter>>, w: &Arc<Waiter>) {
        q.retain(|x| !x.is(w));
        if q.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Release);
        }
    }

    /// The unwind withdraw of `w` (see the module docs).
    #[cold]
    fn withdraw(&self, w: &Arc<Waiter>) {
        let state = {
            let mut q = self.queue.lock();
            let s = w.state();
            if s == WAITING {
                self.remove(&mut q, w);
            }
            s
        };
        if state == GRANTED {
            self.add_permits(1);
        }
    }

    /// Adds `n` permits (handing them to queued waiters first). Also the way
    /// to return a permit given up with [`SemaphorePermit::forget`].
    pub fn add_permits(&self, n: usize) {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & QUEUED == 0 {
            let next =
                s.checked_add(n.checked_mul(PERMIT).expect("too many permits")).expect("too many permits");
            match self.state.compare_exchange_weak(s, next, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(x) => s = x,
            }
        }
        self.release_slow(n);
    }

    /// Number of permits available right now (a racy snapshot).
    pub fn available_permits(&self) -> usize {
        self.state.load(Ordering::Relaxed) / PERMIT
    }

    fn try_fast(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & QUEUED == 0 && s >= PERMIT {
            match self.state.compare_exchange_weak(s, s - PERMIT, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(x) => s = x,
            }
        }
        false
    }

    /// Slow path of acquire: takes a permit (`None`) or queues a waiter.
    #[cold]
    fn enqueue(&self) -> Option<Arc<Waiter>> {
        let mut q = self.queue.lock();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let (free, next) =
                if s & QUEUED == 0 && s >= PERMIT { (true, s - PERMIT) } else { (false, s | QUEUED) };
            match self.state.compare_exchange_weak(s, next, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) if free => return None,
                Ok(_) => break,
                Err(x) => s = x,
            }
        }
        let w = Waiter::new();
        q.push_back(Arc::clone(&w));
        Some(w)
    }

    #[cold]
    fn release_slow(&self, n: usize) {
        let mut wake = Vec::new();
        {
            let mut q = self.queue.lock();
            let mut left = n;
            while left > 0 {
                let Some(w) = pop_live(&mut q, |w| &**w) else { break };
                wake.push(w.notify(GRANTED));
                left -= 1;
            }
            if q.is_empty() {
                let add = left.checked_mul(PERMIT).expect("too many permits");
                let _ = self.state.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |s| {
                    Some((s & !QUEUED).checked_add(add).expect("too many permits"))
                });
            }
        }
        unpark_all(wake);
    }
}

impl SemaphorePermit<'_> {
    /// Gives the permit up without returning it: the semaphore has one
    /// permit fewer until [`Semaphore::add_permits`] adds one back.
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.add_permits(1);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").field("available_permits", &self.available_permits()).finish()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphorePermit { .. }")
    }
}
