//! `IoLock`: one operation at a time per direction of a socket (Go's
//! `fdMutex` read and write locks), FIFO, parking the coroutine that waits.
//!
//! Why a lock around the whole operation, syscall included: netpoll's slot
//! holds one waiter per direction, and edge-triggered epoll reports an
//! arrival once. If the lock covered only the readiness wait, the woken
//! holder would consume the slot's Ready, release the lock and only then
//! make its syscall; the next waiter would find the slot Empty and park,
//! while the second datagram (or byte, or connection) that arrived under the
//! same edge stayed queued for ever. Under this lock only the holder ever
//! consumes the slot, and every holder makes its syscall before it waits
//! (see `source` for the steps), so what one edge stood for is always seen.
//!
//! # States
//!
//! `state` holds two bits; `QUEUED ⇔ !queue.is_empty()` holds under the
//! queue lock (the only place `QUEUED` changes).
//!
//! ```text
//!  lock, fast:      s without LOCKED ──CAS──▶ s | LOCKED        (barging allowed)
//!  unlock, fast:    LOCKED ──CAS──▶ 0                           (nobody queued)
//!  unlock, slow:    (queue lock) clear LOCKED, unpark the head   (QUEUED was set)
//!  wait:            (queue lock) push self, set QUEUED, try the fast lock again
//!                   (an unlock that ran before QUEUED was set left the lock free;
//!                   one that runs after it takes the slow path and unparks the
//!                   head), then park; woken: retry under the queue lock
//!  acquire queued:  (queue lock) remove self, clear QUEUED if now empty
//!  withdraw:        (queue lock) remove self, clear QUEUED if now empty; if the
//!                   lock is free, unpark the new head (the wake-up may have
//!                   been meant for us: pass it on)
//! ```
//!
//! A waiter leaves the queue on every way out: the lock, a timeout, a
//! cancellation at shutdown, and an unwind while parked (a drop guard), so an
//! unwound waiter never sits in the queue absorbing the next wake-up. The
//! woken head may lose the lock to a newcomer; it then stays at the head and
//! the newcomer's unlock wakes it again.

use crate::cancel::cancelled_error;
use crate::coroutine::{self, Coroutine};
use crate::sched::context;
use crate::task::WaitReason;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

const LOCKED: u8 = 1;
const QUEUED: u8 = 2;

/// See the module docs.
pub(crate) struct IoLock {
    state: AtomicU8,
    queue: Mutex<VecDeque<Coroutine>>,
}

/// The turn of the holder; dropping it unlocks.
pub(crate) struct IoLockGuard<'a>(&'a IoLock);

impl IoLock {
    pub(crate) fn new() -> IoLock {
        IoLock { state: AtomicU8::new(0), queue: Mutex::new(VecDeque::new()) }
    }

    fn try_lock(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & LOCKED == 0 {
            match self.state.compare_exchange_weak(s, s | LOCKED, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => s = actual,
            }
        }
        false
    }

    /// Takes the lock without waiting, if it is free.
    pub(crate) fn try_acquire(&self) -> Option<IoLockGuard<'_>> {
        self.try_lock().then_some(IoLockGuard(self))
    }

    /// Takes the lock, parking until it is free; fails with `TimedOut` at
    /// `deadline`, or with the cancellation error if the caller cannot wait.
    pub(crate) fn lock(&self, deadline: Option<Instant>) -> io::Result<IoLockGuard<'_>> {
        if self.try_lock() {
            return Ok(IoLockGuard(self));
        }
        if context::cancelling() || context::cancel_requested() {
            return Err(cancelled_error());
        }
        let queued = Queued { lock: self, me: coroutine::current() };
        loop {
            {
                let mut queue = self.queue.lock();
                if !queue.iter().any(|c| c.id() == queued.me.id()) {
                    queue.push_back(queued.me.clone());
                    self.state.fetch_or(QUEUED, Ordering::Relaxed);
                }
                if self.try_lock() {
                    remove(&mut queue, &queued.me, &self.state);
                    drop(queue);
                    std::mem::forget(queued);
                    return Ok(IoLockGuard(self));
                }
            }
            match deadline {
                Some(deadline) if Instant::now() >= deadline => return Err(timed_out()),
                Some(deadline) => coroutine::park_until(deadline, WaitReason::Io),
                None => coroutine::park_for(WaitReason::Io),
            }
            if context::cancelling() || context::cancel_requested() {
                return Err(cancelled_error());
            }
        }
    }

    fn unlock(&self) {
        if self.state.compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed).is_ok() {
            return;
        }
        let head = {
            let queue = self.queue.lock();
            self.state.fetch_and(!LOCKED, Ordering::Release);
            queue.front().cloned()
        };
        if let Some(head) = head {
            head.unpark();
        }
    }
}

/// Removes `me` from `queue` (under its lock), keeping `QUEUED` true to it.
fn remove(queue: &mut VecDeque<Coroutine>, me: &Coroutine, state: &AtomicU8) {
    queue.retain(|c| c.id() != me.id());
    if queue.is_empty() {
        state.fetch_and(!QUEUED, Ordering::Relaxed);
    }
}

/// A waiter's place in the queue; dropping it (timeout, cancellation, an
/// unwind while parked) withdraws it.
struct Queued<'a> {
    lock: &'a IoLock,
    me: Coroutine,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let next = {
            let mut queue = self.lock.queue.lock();
            remove(&mut queue, &self.me, &self.lock.state);
            if self.lock.state.load(Ordering::Acquire) & LOCKED == 0 {
                queue.front().cloned()
            } else {
                None
            }
        };
        if let Some(next) = next {
            next.unpark();
        }
    }
}

impl Drop for IoLockGuard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "corio: operation timed out")
}
