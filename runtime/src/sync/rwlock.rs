//! A reader-writer lock that parks the coroutine instead of the thread.
//!
//! # State machine
//!
//! `state` = `readers * READER | QUEUED | WRITER`:
//!
//! * `WRITER`: a writer owns the lock;
//! * `readers`: number of readers owning it (never together with `WRITER`);
//! * `QUEUED`: the waiter queue is non-empty (changed only under the queue
//!   lock, where `QUEUED ⇔ !queue.is_empty()` holds).
//!
//! ```text
//!  read, fast:   no WRITER, no QUEUED ──CAS readers+1──▶ (acquired)
//!  write, fast:  0 ──CAS──▶ WRITER
//!  slow paths (queue lock held): acquire as above if still possible,
//!                else set QUEUED, push (waiter, Read|Write), park until GRANTED
//!  read unlock:  readers-1; if that was the last reader and QUEUED: grant
//!  write unlock: WRITER ──CAS──▶ 0; if QUEUED: clear WRITER, grant
//!  grant (queue lock held, lock free): pop the head; if it is a writer, set
//!                WRITER for it; if readers, pop every reader at the head and
//!                add them all; update QUEUED; notify them GRANTED. Doomed
//!                waiters met at the head are popped and marked SKIPPED
//!                (granted nothing, not unparked) and the grant goes on
//!  unwind withdraw (a queued waiter's park unwinds at shutdown; queue lock):
//!                still WAITING → remove itself, clear QUEUED if now empty;
//!                GRANTED → it owns the lock: read/write unlock as usual
//!  slow path in a cancelling context (a destructor run by the shutdown
//!                unwind): never queues; retries the fast path with
//!                std::thread::yield_now, aborts after SHUTDOWN_LOCK_WAIT
//! ```
//!
//! # Fairness policy
//!
//! Once anybody is queued, newcomers (readers too) queue behind them instead
//! of acquiring, and releases hand the lock directly to the head of the queue
//! (a writer alone, or the run of readers at the head together). So a steady
//! stream of readers cannot starve a writer and vice versa: the queue is
//! served in FIFO order, batching adjacent readers.
//!
//! While `QUEUED` is set and the lock is free, a grant is in progress: the
//! releaser that made it free holds, or is about to take, the queue lock, and
//! nobody else can acquire meanwhile. No poisoning.
//!
//! # Shutdown
//!
//! As for [`Mutex`](super::Mutex): waiters unwound at shutdown leave the queue
//! or release what they were granted, grants skip doomed waiters, and a
//! destructor that locks during the shutdown unwind waits with `yield_now`,
//! aborting after a few seconds if the holder is a coroutine parked at the
//! shutdown (it would never release).

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::waiter::{skip_doomed, unpark_all, wait_while_cancelling, Waiter, WAITING};
use crate::sched::context;

const WRITER: usize = 1;
const QUEUED: usize = 2;
const READER: usize = 4;

const GRANTED: u8 = 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

/// A reader-writer lock for coroutines: any number of readers or one writer.
/// Contended acquisition parks the coroutine. FIFO fair; no poisoning.
///
/// Because readers queue behind a queued writer, taking a second read lock
/// while already holding one can deadlock (as with std's `RwLock`).
///
/// ```
/// use corio::sync::RwLock;
/// let l = RwLock::new(5);
/// {
///     let (a, b) = (l.read(), l.read());
///     assert_eq!(*a + *b, 10);
/// }
/// *l.write() += 1;
/// assert_eq!(*l.read(), 6);
/// ```
pub struct RwLock<T: ?Sized> {
    state: AtomicUsize,
    queue: parking_lot::Mutex<VecDeque<(Arc<Waiter>, Kind)>>,
    data: UnsafeCell<T>,
}

// SAFETY: writers get exclusive access (needs `Send`: the `T` may be mutated
// from any thread), readers shared access from several threads (needs `Sync`).
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to the data of a read-locked [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _marker: PhantomData<&'a T>,
}

/// Exclusive access to the data of a write-locked [`RwLock`].
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _marker: PhantomData<&'a mut T>,
}

impl<T> RwLock<T> {
    /// A new unlocked lock holding `value`.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            state: AtomicUsize::new(0),
            queue: parking_lot::const_mutex(VecDeque::new()),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock, returning its data.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, parking while a writer holds the lock or anybody
    /// is queued ahead.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        crate::sched::budget::spend(); // before taking it (see Mutex::lock)
        if !self.try_read_fast() {
            self.acquire_slow(Kind::Read);
        }
        RwLockReadGuard { lock: self, _marker: PhantomData }
    }

    /// Locks for writing, parking while anybody holds the lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        crate::sched::budget::spend(); // before taking it (see Mutex::lock)
        if !self.try_write_fast() {
            self.acquire_slow(Kind::Write);
        }
        RwLockWriteGuard { lock: self, _marker: PhantomData }
    }

    /// Read-locks if possible without waiting (fails while a writer holds
    /// the lock or anybody is queued).
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        self.try_read_fast().then(|| RwLockReadGuard { lock: self, _marker: PhantomData })
    }

    /// Write-locks if the lock is free right now.
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        self.try_write_fast().then(|| RwLockWriteGuard { lock: self, _marker: PhantomData })
    }

    /// Mutable access without locking: `&mut self` proves exclusivity.
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn try_read_fast(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & (WRITER | QUEUED) == 0 {
            match self.state.compare_exchange_weak(s, s + READER, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(x) => s = x,
            }
        }
        false
    }

    fn try_write_fast(&self) -> bool {
        self.state.compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    #[cold]
    fn acquire_slow(&self, kind: Kind) {
        if context::cancelling() {
            // A destructor run by the shutdown unwind: it cannot park.
            return wait_while_cancelling("RwLock", || match kind {
                Kind::Read => self.try_read_fast(),
                Kind::Write => self.try_write_fast(),
            });
        }
        let waiter = {
            let mut q = self.queue.lock();
            let mut s = self.state.load(Ordering::Relaxed);
            loop {
                let (free, acquired) = match kind {
                    Kind::Read => (s & (WRITER | QUEUED) == 0, s + READER),
                    Kind::Write => (s == 0, WRITER),
                };
                let next = if free { acquired } else { s | QUEUED };
                match self.state.compare_exchange_weak(s, next, Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) if free => return,
                    Ok(_) => break,
                    Err(x) => s = x,
                }
            }
            let w = Waiter::new();
            q.push_back((Arc::clone(&w), kind));
            w
        };
        // Granted: the granter already registered us as an owner.
        let sync_kind = match kind {
            Kind::Read => crate::task::SyncKind::RwLockRead,
            Kind::Write => crate::task::SyncKind::RwLockWrite,
        };
        crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
            kind: sync_kind,
            addr: (self as *const Self).cast::<()>() as usize,
        });
        waiter.wait_or(|| self.withdraw(&waiter, kind));
    }

    /// The unwind withdraw of `w` (see the module docs).
    #[cold]
    fn withdraw(&self, w: &Arc<Waiter>, kind: Kind) {
        let state = {
            let mut q = self.queue.lock();
            let s = w.state();
            if s == WAITING {
                q.retain(|(x, _)| !x.is(w));
                if q.is_empty() {
                    self.state.fetch_and(!QUEUED, Ordering::Release);
                }
            }
            s
        };
        if state == GRANTED {
            match kind {
                Kind::Read => self.read_unlock(),
                Kind::Write => self.write_unlock(),
            }
        }
    }

    fn read_unlock(&self) {
        let prev = self.state.fetch_sub(READER, Ordering::AcqRel);
        if prev & !QUEUED == READER && prev & QUEUED != 0 {
            self.grant();
        }
    }

    fn write_unlock(&self) {
        if self.state.compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed).is_err() {
            // QUEUED is set: free the lock (nobody can take it while QUEUED)
            // and hand it to the head of the queue.
            self.state.fetch_and(!WRITER, Ordering::Release);
            self.grant();
        }
    }

    /// Hands the free lock to the head of the queue (see the module docs).
    #[cold]
    fn grant(&self) {
        let mut wake = Vec::new();
        {
            let mut q = self.queue.lock();
            let s = self.state.load(Ordering::Acquire);
            if s & WRITER != 0 || s >= READER || q.is_empty() {
                return; // owned again (cannot happen) or nothing to do
            }
            let mut next = 0;
            skip_doomed(&mut q, |(w, _)| &**w);
            if q.front().is_some_and(|(_, k)| *k == Kind::Write) {
                let (w, _) = q.pop_front().expect("non-empty");
                next = WRITER;
                wake.push(w.notify(GRANTED));
            } else {
                while q.front().is_some_and(|(_, k)| *k == Kind::Read) {
                    let (w, _) = q.pop_front().expect("non-empty");
                    next += READER;
                    wake.push(w.notify(GRANTED));
                    skip_doomed(&mut q, |(w, _)| &**w);
                }
            }
            if !q.is_empty() {
                next |= QUEUED;
            }
            // Nobody else changes the state while it is free and QUEUED.
            self.state.store(next, Ordering::Release);
        }
        unpark_all(wake);
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read guard exists only while the lock is read-held, so no
        // `&mut T` exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.read_unlock();
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a write guard exists only while the lock is write-held by
        // its owner, so no other reference to the data exists.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` keeps this reference unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.write_unlock();
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> Self {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_read() {
            Some(g) => f.debug_struct("RwLock").field("data", &&*g).finish(),
            None => f.debug_struct("RwLock").field("data", &"<locked>").finish(),
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
