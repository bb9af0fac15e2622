//! The per-registration readiness state: Go's `pollDesc` idea, without the coroutines.
//!
//! Each registration has two slots, one per [`Direction`], plus a `closed` flag, all behind one
//! small mutex (a few ns uncontended; every operation that takes it is far cheaper than the
//! syscalls around it, and a mutex keeps the state machine obviously correct).
//!
//! # Slot state machine
//!
//! ```text
//!   state        | readiness event        | poll_ready(w)            | cancel(w)   | close
//!   -------------+------------------------+--------------------------+-------------+-----------
//!   Empty        | -> Ready               | -> Waiting(w), Armed     | no-op       | -> Empty
//!   Ready        | -> Ready (edges merge) | -> Empty, Ready (retry)  | no-op       | -> Empty
//!   Waiting(w)   | -> Ready, wake w       | same w: Armed; other:    | -> Empty    | -> Empty,
//!                |                        |   Err(Busy)              | (if same w) |    wake w
//!   (closed)     | ignored                | Err(Closed)              | no-op       | no-op
//! ```
//!
//! - `poll_ready(dir, w)`: closed → `Err(Closed)`; `Ready` → `Empty`, returns `Ready` (the caller
//!   retries its syscall); `Empty` → `Waiting(w)`, returns `Armed` (the caller parks);
//!   `Waiting(w)` with the same `w` → unchanged, `Armed` (a spurious wake-up re-parks);
//!   `Waiting(other)` → `Err(Busy)` (double wait).
//! - readiness event: `Empty`/`Ready` → `Ready`; `Waiting(w)` → `Ready` and `w` is woken. The woken
//!   waiter calls `poll_ready` again, finds `Ready`, consumes it and retries its syscall. (Go's
//!   `netpollunblock` also leaves `pdReady` behind for the woken goroutine to consume.)
//! - `cancel(dir, w)` (a timed-out waiter): `Waiting(w)` → `Empty`; otherwise unchanged. A
//!   readiness that already arrived stays `Ready` for the next operation, so nothing is lost.
//! - `close`: sets `closed`, takes both wakers, wakes them; they then get `Err(Closed)`.
//!   Events for a closed registration are ignored.
//!
//! # The race this closes
//!
//! A coroutine's read is "try the syscall; on `EAGAIN` park until readable". With an
//! edge-triggered poller the kernel reports each new arrival once. If data arrives after the
//! syscall returned `EAGAIN` but before the waiter is registered, a design that only wakes
//! registered waiters drops that edge and the coroutine sleeps forever with data in its socket.
//! Here the event lands in the slot as `Ready` whether or not anyone waits; the waiter's
//! `poll_ready` (one atomic step under the lock) either finds `Ready` and retries, or installs its
//! waker, after which any event wakes it. The window between `poll_ready` returning `Armed` and
//! the coroutine actually suspending is the runtime's to close: its wake must act as a permit
//! (see [`crate::wake`]).
//!
//! A stale `Ready` (readiness whose data a previous syscall already consumed) only costs one
//! extra syscall that returns `EAGAIN` again, after which the waiter arms normally.

use crate::error::PollError;
use crate::wake::{same_waker, ArcWake};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Which half of the readiness a waiter cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Readable (also reported on hang-up and error).
    Read,
    /// Writable (also reported on hang-up and error).
    Write,
}

/// Outcome of [`Registration::poll_ready`](crate::Registration::poll_ready).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// A readiness event was pending and has been consumed: retry the syscall now.
    Ready,
    /// No readiness was pending; the waker is installed and will be woken once. Park now.
    Armed,
}

enum Slot {
    Empty,
    Ready,
    Waiting(ArcWake),
}

struct Inner {
    read: Slot,
    write: Slot,
    closed: bool,
}

impl Inner {
    fn slot(&mut self, dir: Direction) -> &mut Slot {
        match dir {
            Direction::Read => &mut self.read,
            Direction::Write => &mut self.write,
        }
    }
}

/// Wakers taken out of the slots under the lock, to be woken after it is released.
#[must_use = "taken wakers must be woken"]
pub(crate) struct Wakers([Option<ArcWake>; 2]);

impl Wakers {
    pub(crate) fn wake(self) {
        for w in self.0.into_iter().flatten() {
            w.wake();
        }
    }
}

/// Shared readiness state of one registration (referenced by the poller's slab and by the
/// [`Registration`](crate::Registration) handle).
pub(crate) struct IoState {
    inner: Mutex<Inner>,
    token: usize,
    /// Sticky: an event reported that the peer closed its write half, a
    /// hang-up or error (EPOLLRDHUP/EPOLLHUP/EPOLLERR), or urgent data
    /// (EPOLLPRI). A reader that saw a short read must not wait for another
    /// edge then: an EOF, an error or data past the urgent mark may be there
    /// to read, and no further edge will announce it.
    closed_or_urgent: AtomicBool,
}

impl IoState {
    pub(crate) fn new(token: usize) -> IoState {
        IoState {
            inner: Mutex::new(Inner { read: Slot::Empty, write: Slot::Empty, closed: false }),
            token,
            closed_or_urgent: AtomicBool::new(false),
        }
    }

    pub(crate) fn token(&self) -> usize {
        self.token
    }

    pub(crate) fn poll_ready(&self, dir: Direction, waker: &ArcWake) -> Result<Readiness, PollError> {
        let mut g = self.inner.lock();
        if g.closed {
            return Err(PollError::Closed);
        }
        let slot = g.slot(dir);
        match slot {
            Slot::Ready => {
                *slot = Slot::Empty;
                Ok(Readiness::Ready)
            }
            Slot::Empty => {
                *slot = Slot::Waiting(waker.clone());
                Ok(Readiness::Armed)
            }
            Slot::Waiting(w) if same_waker(w, waker) => Ok(Readiness::Armed),
            Slot::Waiting(_) => Err(PollError::Busy),
        }
    }

    pub(crate) fn take_ready(&self, dir: Direction) -> Result<bool, PollError> {
        let mut g = self.inner.lock();
        if g.closed {
            return Err(PollError::Closed);
        }
        let slot = g.slot(dir);
        if matches!(slot, Slot::Ready) {
            *slot = Slot::Empty;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    pub(crate) fn is_ready(&self, dir: Direction) -> bool {
        let mut g = self.inner.lock();
        !g.closed && matches!(g.slot(dir), Slot::Ready)
    }

    pub(crate) fn has_waiter(&self, dir: Direction) -> bool {
        matches!(self.inner.lock().slot(dir), Slot::Waiting(_))
    }

    /// Remove `waker` if it is the one waiting on `dir`. Returns true if it was removed (so it
    /// will not be woken by this registration); false if it was not there (already woken,
    /// never armed, or closed).
    pub(crate) fn cancel(&self, dir: Direction, waker: &ArcWake) -> bool {
        let mut g = self.inner.lock();
        let slot = g.slot(dir);
        match slot {
            Slot::Waiting(w) if same_waker(w, waker) => {
                *slot = Slot::Empty;
                true
            }
            _ => false,
        }
    }

    /// Record a readiness event. Returns `None` if the registration is closed (event dropped),
    /// else the wakers to wake once the lock is released.
    /// Records a peer close or urgent data (see `closed_or_urgent`); called
    /// by dispatch before `set_ready`, so a woken reader sees it.
    pub(crate) fn set_closed_or_urgent(&self) {
        self.closed_or_urgent.store(true, Ordering::Release);
    }

    pub(crate) fn is_closed_or_urgent(&self) -> bool {
        self.closed_or_urgent.load(Ordering::Acquire)
    }

    pub(crate) fn set_ready(&self, readable: bool, writable: bool) -> Option<Wakers> {
        let mut g = self.inner.lock();
        if g.closed {
            return None;
        }
        let mut out = [None, None];
        for (i, (hit, dir)) in
            [(readable, Direction::Read), (writable, Direction::Write)].into_iter().enumerate()
        {
            if hit {
                if let Slot::Waiting(w) = std::mem::replace(g.slot(dir), Slot::Ready) {
                    out[i] = Some(w);
                }
            }
        }
        Some(Wakers(out))
    }

    /// Mark closed and take every waker. Returns `None` if it was already closed.
    pub(crate) fn close(&self) -> Option<Wakers> {
        let mut g = self.inner.lock();
        if g.closed {
            return None;
        }
        g.closed = true;
        let take = |s: &mut Slot| match std::mem::replace(s, Slot::Empty) {
            Slot::Waiting(w) => Some(w),
            _ => None,
        };
        let r = take(&mut g.read);
        let w = take(&mut g.write);
        Some(Wakers([r, w]))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn counter() -> (Arc<AtomicUsize>, ArcWake) {
        let c = Arc::new(AtomicUsize::new(0));
        let c2 = c.clone();
        let w: ArcWake = Arc::new(move || {
            c2.fetch_add(1, Ordering::SeqCst);
        });
        (c, w)
    }

    #[test]
    fn ready_before_wait_is_remembered_and_consumed_once() {
        let s = IoState::new(0);
        let (c, w) = counter();
        s.set_ready(true, false).unwrap().wake();
        assert!(s.is_ready(Direction::Read));
        assert!(!s.is_ready(Direction::Write));
        assert_eq!(s.poll_ready(Direction::Read, &w), Ok(Readiness::Ready));
        assert_eq!(s.poll_ready(Direction::Read, &w), Ok(Readiness::Armed));
        assert_eq!(c.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn event_wakes_waiter_once_and_leaves_ready() {
        let s = IoState::new(0);
        let (c, w) = counter();
        assert_eq!(s.poll_ready(Direction::Write, &w), Ok(Readiness::Armed));
        s.set_ready(true, true).unwrap().wake();
        s.set_ready(false, true).unwrap().wake();
        assert_eq!(c.load(Ordering::SeqCst), 1);
        assert_eq!(s.poll_ready(Direction::Write, &w), Ok(Readiness::Ready));
        assert_eq!(s.poll_ready(Direction::Read, &w), Ok(Readiness::Ready));
    }

    #[test]
    fn double_wait_and_rearm() {
        let s = IoState::new(0);
        let (_, w1) = counter();
        let (_, w2) = counter();
        assert_eq!(s.poll_ready(Direction::Read, &w1), Ok(Readiness::Armed));
        assert_eq!(s.poll_ready(Direction::Read, &w1), Ok(Readiness::Armed));
        assert_eq!(s.poll_ready(Direction::Read, &w2), Err(PollError::Busy));
        assert_eq!(s.poll_ready(Direction::Write, &w2), Ok(Readiness::Armed));
    }

    #[test]
    fn cancel_only_removes_own_waker() {
        let s = IoState::new(0);
        let (c1, w1) = counter();
        let (_, w2) = counter();
        assert_eq!(s.poll_ready(Direction::Read, &w1), Ok(Readiness::Armed));
        assert!(!s.cancel(Direction::Read, &w2));
        assert!(s.cancel(Direction::Read, &w1));
        assert!(!s.cancel(Direction::Read, &w1));
        s.set_ready(true, false).unwrap().wake();
        assert_eq!(c1.load(Ordering::SeqCst), 0);
        // Readiness that arrived is kept for the next operation.
        assert!(!s.cancel(Direction::Read, &w1));
        assert!(s.is_ready(Direction::Read));
    }

    #[test]
    fn close_wakes_and_then_errors() {
        let s = IoState::new(0);
        let (c, w) = counter();
        assert_eq!(s.poll_ready(Direction::Read, &w), Ok(Readiness::Armed));
        assert_eq!(s.poll_ready(Direction::Write, &w), Ok(Readiness::Armed));
        s.close().unwrap().wake();
        assert_eq!(c.load(Ordering::SeqCst), 2);
        assert!(s.close().is_none());
        assert_eq!(s.poll_ready(Direction::Read, &w), Err(PollError::Closed));
        assert_eq!(s.take_ready(Direction::Write), Err(PollError::Closed));
        assert!(s.set_ready(true, true).is_none());
        assert!(s.is_closed());
    }
}
