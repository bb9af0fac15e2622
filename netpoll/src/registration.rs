//! [`Registration`]: one file descriptor registered once, edge-triggered, for read and write.
//!
//! The registration owns the I/O object `T` (a socket, an `OwnedFd`, ...). That is what makes
//! it safe: it deletes the fd from epoll in [`close`](Registration::close) (called by `Drop` and
//! [`into_inner`](Registration::into_inner)) *before* `T` can be dropped, so an fd is never
//! closed while still registered, and its number is never reused while this registration could
//! still touch epoll with it.
//!
//! Invariants:
//! - Registered exactly once, edge-triggered, for `EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI`
//!   (a direct `epoll_ctl`: `polling`'s `Event` cannot express `EPOLLRDHUP`), never modified:
//!   no per-wait re-arm syscalls. Edge mode reports each new arrival once; the slots of
//!   [`crate::slot`] remember it until a waiter consumes it.
//! - `close` runs at most once: it marks the state closed (events are dropped from then on),
//!   deletes the fd from epoll, frees the slab entry (retiring the key's generation) and wakes
//!   both waiters, who then get [`PollError::Closed`].
//! - `T::as_fd` must keep returning the same fd for the registration's whole life (true of
//!   every std and socket2 type; do not put an fd you swap out behind interior mutability).
//!
//! # Using it from a coroutine runtime (the "no lost wake-up" loop)
//!
//! One waiter per direction at a time, and that waiter must make the syscall after every
//! `Ready` it consumes: an edge may stand for several arrivals (two datagrams, two
//! connections), so whoever consumed it must look at the socket again. A runtime that lets
//! several tasks wait on one direction serialises whole operations, syscall included (corio's
//! `IoLock`, Go's `fdMutex`), not just the wait.
//!
//! ```text
//! loop {
//!     match syscall(reg.get_ref()) {            // e.g. recv on a non-blocking socket
//!         Err(e) if e.kind() == WouldBlock => {}
//!         other => return other,
//!     }
//!     loop {
//!         match reg.poll_ready(Direction::Read, &me)? {
//!             Readiness::Ready => break,       // readiness came in: retry the syscall
//!             Readiness::Armed => {
//!                 if park_until(deadline) == TimedOut {   // wake() is a permit: safe if early
//!                     reg.cancel(Direction::Read, &me);
//!                     return Err(TimedOut);
//!                 }
//!                 // woken: loop to poll_ready, which now finds Ready (or Closed)
//!             }
//!         }
//!     }
//! }
//! ```

use crate::error::PollError;
use crate::poller::Poller;
use crate::slot::{Direction, IoState, Readiness};
use crate::wake::ArcWake;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::Arc;

/// An I/O object registered with a [`Poller`], with a read and a write readiness slot.
///
/// `Send`/`Sync` when `T` is; share it (e.g. in an `Arc`) between a reader and a writer, one
/// waiter per direction at a time.
pub struct Registration<T: AsFd> {
    /// `Some` except transiently inside `into_inner`.
    io: Option<T>,
    fd: RawFd,
    state: Arc<IoState>,
    poller: Poller,
    key: usize,
}

impl<T: AsFd> Registration<T> {
    /// Register `io` (which should be in non-blocking mode) with `poller`, token 0.
    pub fn new(poller: &Poller, io: T) -> io::Result<Registration<T>> {
        Self::with_token(poller, io, 0)
    }

    /// Register `io` with a user `token`, reported in [`ReadyEvent`](crate::ReadyEvent)s by
    /// [`Poller::wait_with`] (for callback-style event loops).
    pub fn with_token(poller: &Poller, io: T, token: usize) -> io::Result<Registration<T>> {
        let fd = io.as_fd().as_raw_fd();
        let state = Arc::new(IoState::new(token));
        let key = poller.inner.slab.lock().insert(state.clone())?;
        // The fd must be deleted from the poller before it is closed. `self` owns `io`;
        // `close()` deletes `fd` and runs before `io` is dropped or handed out: in `Drop` (the
        // field is dropped after `drop` returns) and in `into_inner` (which calls `close`
        // first). `io` cannot be replaced or closed through `&self` (no `get_mut`) and the
        // module documents that `as_fd` must be stable. If `add` fails, nothing was registered
        // and `io` is dropped normally.
        // SAFETY: by the above, `fd` stays open until it is deleted from the poller.
        let added = unsafe { add_edge_triggered(&poller.inner.poller, fd, key) };
        if let Err(e) = added {
            poller.inner.slab.lock().remove(key);
            return Err(e);
        }
        Ok(Registration { io: Some(io), fd, state, poller: poller.clone(), key })
    }

    /// The registered I/O object, for issuing syscalls.
    pub fn get_ref(&self) -> &T {
        self.io.as_ref().expect("registration used after into_inner")
    }

    /// Deregister and return the I/O object. Waiters are woken with [`PollError::Closed`].
    pub fn into_inner(mut self) -> io::Result<T> {
        let r = self.close();
        let io = self.io.take().expect("io present");
        r.map(|()| io)
    }

    /// The epoll key (slab index + generation). Diagnostic; unique among live registrations of
    /// one poller, and a closed registration's key is never reused for the next owner of its
    /// slab index.
    pub fn key(&self) -> usize {
        self.key
    }

    /// The user token given at registration.
    pub fn token(&self) -> usize {
        self.state.token()
    }

    /// The poller this is registered with.
    pub fn poller(&self) -> &Poller {
        &self.poller
    }

    /// The heart of the waiting protocol, called after the syscall returned `EAGAIN`:
    /// - `Ok(Readiness::Ready)`: readiness arrived since the last consume; it is now consumed.
    ///   Retry the syscall.
    /// - `Ok(Readiness::Armed)`: `waker` is installed (or already was: calling again with the
    ///   same waker after a spurious wake-up is fine). Park; `waker.wake()` is called exactly
    ///   once, on the next readiness for `dir` or on close, possibly before you have parked.
    /// - `Err(PollError::Closed)`: the registration was closed.
    /// - `Err(PollError::Busy)`: a different waker already waits on `dir` (double wait).
    pub fn poll_ready(&self, dir: Direction, waker: &ArcWake) -> Result<Readiness, PollError> {
        self.state.poll_ready(dir, waker)
    }

    /// Remove `waker` from `dir` if it is still waiting there (a timed-out or abandoned
    /// wait). Returns true if removed; false if it was already woken (or never armed), in
    /// which case any readiness that arrived stays remembered for the next operation.
    pub fn cancel(&self, dir: Direction, waker: &ArcWake) -> bool {
        self.state.cancel(dir, waker)
    }

    /// Consume a pending readiness without arming a waiter: `Ok(true)` if `dir` was `Ready`.
    /// For callback loops, or a runtime that wants to clear readiness it has acted on.
    pub fn take_ready(&self, dir: Direction) -> Result<bool, PollError> {
        self.state.take_ready(dir)
    }

    /// Peek: is readiness pending on `dir` (and the registration open)?
    pub fn is_ready(&self, dir: Direction) -> bool {
        self.state.is_ready(dir)
    }

    /// Is a waiter currently armed on `dir`?
    pub fn has_waiter(&self, dir: Direction) -> bool {
        self.state.has_waiter(dir)
    }

    /// Has an event reported that the peer closed its write half, a hang-up
    /// or an error, or urgent (out-of-band) data? Sticky. A stream reader that
    /// saw a short read may skip the `recv` that would fail with EAGAIN and
    /// wait for the next edge instead, but only while this is false: a
    /// pending EOF raises no further edge, and Linux ends a read at the
    /// urgent mark with data still queued.
    pub fn peer_closed_or_urgent(&self) -> bool {
        self.state.is_closed_or_urgent()
    }

    /// Has [`close`](Self::close) run?
    pub fn is_closed(&self) -> bool {
        self.state.is_closed()
    }

    /// Deregister from epoll and wake both waiters (they get [`PollError::Closed`]). The fd
    /// stays open (owned by `self`) until `self` is dropped, so a concurrent syscall on it is
    /// still sound. Idempotent; any thread. Returns the `epoll_ctl(DEL)` error, if any (the
    /// waiters are woken regardless).
    pub fn close(&self) -> io::Result<()> {
        let Some(wakers) = self.state.close() else {
            return Ok(());
        };
        let io = self.get_ref();
        debug_assert_eq!(io.as_fd().as_raw_fd(), self.fd, "AsFd must be stable");
        let deleted = self.poller.inner.poller.delete(io.as_fd());
        self.poller.inner.slab.lock().remove(self.key);
        wakers.wake();
        deleted
    }
}

impl<T: AsFd> Drop for Registration<T> {
    fn drop(&mut self) {
        if self.io.is_some() {
            let _ = self.close();
        }
    }
}

impl<T: AsFd + std::fmt::Debug> std::fmt::Debug for Registration<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("io", &self.io)
            .field("key", &self.key)
            .field("token", &self.token())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Registers `fd` once for read, write and peer-close (`EPOLLRDHUP`),
/// edge-triggered, under `key`. Done with `epoll_ctl` directly because
/// `polling`'s `Event` cannot express `EPOLLRDHUP`, which the runtime needs to
/// tell "drained" from "drained and closed" (see `Registration::peer_closed_or_urgent`).
/// Deletion still goes through `polling`.
///
/// # Safety
/// `fd` must stay open until it is deleted from the poller (the
/// `Registration` guarantees it).
unsafe fn add_edge_triggered(poller: &polling::Poller, fd: RawFd, key: usize) -> io::Result<()> {
    let flags = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLPRI | libc::EPOLLET;
    let mut event = libc::epoll_event { events: flags as u32, u64: key as u64 };
    // SAFETY: a valid epoll fd, an open fd (caller's contract), a live event.
    let rc = unsafe { libc::epoll_ctl(poller.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
