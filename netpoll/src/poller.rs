//! [`Poller`]: one epoll instance, its registration table, waiting, dispatch and notification.
//!
//! # Who may call what
//!
//! - [`Poller::wait`] / [`Poller::wait_with`] / [`Poller::wait_raw`]: one thread at a time (the
//!   owner; in the runtime, the worker this poller belongs to). A concurrent second call returns
//!   an error instead of `polling`'s silent `Ok(0)`.
//! - [`Poller::notify`], [`Poller::dispatch`], registering and closing
//!   [`Registration`](crate::Registration)s: any thread, any time, including while the owner is
//!   blocked in `wait` (`epoll_ctl` is thread-safe).
//! - Wakers run on the thread that dispatches (normally the owner, inside `wait`) or on the
//!   thread that closes a registration, with no lock of this crate held.
//!
//! # Notification state machine (coalescing)
//!
//! Waiting is one `epoll_wait` on `polling`'s epoll fd (see [`crate::events`] for why not
//! `polling::Poller::wait`), and a wake-up is a write to the poller's own eventfd, registered
//! edge-triggered under a key no registration can have. Most cross-thread wake-ups target a
//! worker that is awake and will look at its inbox anyway, so this crate keeps its own `sleep`
//! state and only issues the write when the owner is (about to be) blocked:
//!
//! ```text
//!   AWAKE ──(blocking wait: CAS)──▶ SLEEPING ──(wait returns: swap)──▶ AWAKE
//!     │                                │
//!     │ notify(): swap, no syscall     │ notify(): swap + polling::notify() syscall
//!     ▼                                ▼
//!   NOTIFIED ◀─────────────────────────┘
//!     │ blocking wait finds NOTIFIED: swap to AWAKE, wait with timeout 0 instead of blocking
//! ```
//!
//! All transitions are `SeqCst` read-modify-writes on one atomic, so they are totally ordered and
//! each one the owner makes reads (and synchronises with) the latest notifier's write.
//!
//! Contract: a notifier first publishes its work (pushes
//! to the owner's inbox), then calls `notify()`; the owner checks its inbox after every
//! *blocking* wait returns and before the next blocking wait. Then no notification is lost:
//! either `notify` sees `SLEEPING` and interrupts the wait, or the owner's next blocking wait
//! sees `NOTIFIED` and does not block. A non-blocking wait (`Some(Duration::ZERO)`) never touches
//! the state. Cost of losing a race: at most one spurious early return of a later wait (when the
//! notifier's syscall lands after the wait already timed out), never a hang.

use crate::events::Events;
use crate::slab::{Slab, INDEX_MASK};
use crate::slot::IoState;
use parking_lot::Mutex;
use polling::{Event, PollMode};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

const AWAKE: u8 = 0;
const SLEEPING: u8 = 1;
const NOTIFIED: u8 = 2;

/// A readiness event for a live registration, as seen by a callback-style event loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyEvent {
    /// The token given to [`Registration::with_token`](crate::Registration::with_token).
    pub token: usize,
    /// Readable, or hang-up/error.
    pub readable: bool,
    /// Writable, or hang-up/error.
    pub writable: bool,
}

/// The epoll key of the poller's own wake-up eventfd. Slab keys never equal
/// it: their index half is always below `INDEX_MASK`.
const WAKE_KEY: usize = INDEX_MASK;

pub(crate) struct PollerInner {
    pub(crate) poller: polling::Poller,
    /// Written by `notify` to interrupt a blocked `epoll_wait`; registered
    /// edge-triggered, so each write raises one event.
    wake_fd: OwnedFd,
    pub(crate) slab: Mutex<Slab>,
    sleep: AtomicU8,
    in_wait: AtomicBool,
    /// Reused dispatch buffer: (state, readable, writable) of the live entries of one batch.
    scratch: Mutex<Vec<(Arc<IoState>, bool, bool)>>,
}

/// An epoll instance plus the registrations on it. Cheap to clone (an `Arc`); all clones are
/// the same poller.
#[derive(Clone)]
pub struct Poller {
    pub(crate) inner: Arc<PollerInner>,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("registrations", &self.registrations())
            .field("sleep", &self.inner.sleep.load(SeqCst))
            .finish()
    }
}

/// Resets `in_wait` even if a waker or callback panics.
struct WaitGuard<'a>(&'a AtomicBool);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.store(false, SeqCst);
    }
}

impl PollerInner {
    /// One `epoll_wait` into `events` (cleared by the caller). Wake-up events
    /// of our eventfd are consumed here and not reported.
    fn epoll_wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        // Milliseconds, rounded up so a timer never fires early.
        let timeout_ms = match timeout {
            None => -1,
            Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
        };
        let capacity = events.list.len().min(i32::MAX as usize) as libc::c_int;
        // SAFETY: the buffer holds `capacity` initialised epoll_event structs
        // that the kernel may overwrite; the epoll fd is alive as long as `self`.
        let n = unsafe {
            libc::epoll_wait(self.poller.as_fd().as_raw_fd(), events.list.as_mut_ptr(), capacity, timeout_ms)
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted { Ok(()) } else { Err(err) };
        }
        let mut kept = 0;
        for i in 0..n as usize {
            let ev = events.list[i];
            if ev.u64 as usize == WAKE_KEY {
                self.drain_wake_fd();
                continue;
            }
            events.list[kept] = ev;
            kept += 1;
        }
        events.len = kept;
        Ok(())
    }

    fn drain_wake_fd(&self) {
        let mut counter: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from an eventfd we own; it is
        // non-blocking, so an empty counter just fails with EAGAIN.
        unsafe {
            libc::read(self.wake_fd.as_raw_fd(), (&mut counter as *mut u64).cast(), 8);
        }
    }
}

impl Poller {
    /// Create a new epoll-backed poller.
    pub fn new() -> io::Result<Poller> {
        let poller = polling::Poller::new()?;
        // SAFETY: eventfd has no memory-safety preconditions.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd that nothing else owns.
        let wake_fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `wake_fd` lives in `PollerInner` beside the epoll instance and
        // is closed only when the inner is dropped, which closes the epoll fd
        // too (an fd closed while registered is removed from epoll by the kernel).
        unsafe { poller.add_with_mode(wake_fd.as_raw_fd(), Event::readable(WAKE_KEY), PollMode::Edge)? };
        Ok(Poller {
            inner: Arc::new(PollerInner {
                poller,
                wake_fd,
                slab: Mutex::new(Slab::new()),
                sleep: AtomicU8::new(AWAKE),
                in_wait: AtomicBool::new(false),
                scratch: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Wait for readiness (up to `timeout`; `None` = forever, `Some(ZERO)` = do not block) and
    /// dispatch it to the registrations: slots become `Ready`, armed waiters are woken.
    /// Returns the number of events delivered to live registrations.
    ///
    /// Returns early (possibly with 0) on [`notify`](Self::notify) and, rarely, spuriously.
    /// `events` is cleared first; its capacity bounds the batch (`Events::new()` holds 1024).
    /// Timeouts are rounded up to whole milliseconds (`epoll_wait`'s unit).
    /// Owner thread only (see the module docs).
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        self.wait_with(events, timeout, |_| {})
    }

    /// [`wait`](Self::wait), also calling `on_event` for each event of a live registration
    /// (after its slots were updated and its waker woken). This is the entry point for a
    /// callback-style event loop: register with [`Registration::with_token`] and react to
    /// `(token, readable, writable)`.
    ///
    /// [`Registration::with_token`]: crate::Registration::with_token
    pub fn wait_with(
        &self,
        events: &mut Events,
        timeout: Option<Duration>,
        on_event: impl FnMut(ReadyEvent),
    ) -> io::Result<usize> {
        self.wait_raw(events, timeout)?;
        Ok(self.dispatch(events, on_event))
    }

    /// The waiting half of [`wait`](Self::wait) without dispatch: clears `events`, blocks (with
    /// the notification protocol of the module docs) and leaves the raw events in `events`.
    /// Pass them to [`dispatch`](Self::dispatch). Owner thread only.
    pub fn wait_raw(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
        let inner = &*self.inner;
        if inner.in_wait.swap(true, SeqCst) {
            return Err(io::Error::other("corio-netpoll: Poller::wait called from two threads at once"));
        }
        let _guard = WaitGuard(&inner.in_wait);
        events.clear();
        if timeout == Some(Duration::ZERO) {
            return inner.epoll_wait(events, timeout);
        }
        match inner.sleep.compare_exchange(AWAKE, SLEEPING, SeqCst, SeqCst) {
            Ok(_) => {
                let r = inner.epoll_wait(events, timeout);
                // An RMW, not a store: it reads the last notifier's swap, so every notifier that
                // found us SLEEPING or NOTIFIED before this point has its work visible to us.
                inner.sleep.swap(AWAKE, SeqCst);
                r.map(drop)
            }
            Err(_notified) => {
                // A notify arrived while we were awake: do not block, but still collect I/O.
                // Consume it with an RMW (see above) so a notify racing with this very line
                // is either consumed here (and its work visible) or left for the next wait.
                inner.sleep.swap(AWAKE, SeqCst);
                inner.epoll_wait(events, Some(Duration::ZERO))
            }
        }
    }

    /// Deliver `events` (from [`wait_raw`](Self::wait_raw) on this poller) to their
    /// registrations. Events whose key is stale (the registration was closed, even if its fd
    /// number or slab index has been reused since) are dropped. Returns the number delivered.
    /// Any thread may call it, but normally the owner does, right after `wait_raw`.
    pub fn dispatch(&self, events: &Events, mut on_event: impl FnMut(ReadyEvent)) -> usize {
        if events.is_empty() {
            return 0;
        }
        let inner = &*self.inner;
        // Take the buffer out so no lock is held while wakers and callbacks run.
        let mut hits = std::mem::take(&mut *inner.scratch.lock());
        {
            let slab = inner.slab.lock();
            for ev in events.iter() {
                if let Some(state) = slab.get(ev.key) {
                    if ev.closed_or_urgent {
                        state.set_closed_or_urgent();
                    }
                    hits.push((state.clone(), ev.readable, ev.writable));
                }
            }
        }
        let mut delivered = 0;
        for (state, readable, writable) in hits.drain(..) {
            if let Some(wakers) = state.set_ready(readable, writable) {
                wakers.wake();
                delivered += 1;
                on_event(ReadyEvent { token: state.token(), readable, writable });
            }
        }
        *inner.scratch.lock() = hits;
        delivered
    }

    /// Make the owner's current blocking wait return, or its next one not block. Any thread.
    ///
    /// Returns `Ok(true)` if it had to issue the wake-up syscall (the owner was sleeping),
    /// `Ok(false)` if the owner was awake and only a flag was set (about one atomic swap).
    pub fn notify(&self) -> io::Result<bool> {
        let inner = &*self.inner;
        // Always an RMW (never a load shortcut): the owner's consuming swap must read this
        // value, or a later one, to synchronise with the work published before `notify`.
        if inner.sleep.swap(NOTIFIED, SeqCst) == SLEEPING {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
            let rc = unsafe { libc::write(inner.wake_fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
            // EAGAIN means the counter is saturated: a wake-up is pending anyway.
            if rc < 0 && io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
                return Err(io::Error::last_os_error());
            }
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// True while the owner is blocked (or about to block) in a wait.
    pub fn is_sleeping(&self) -> bool {
        self.inner.sleep.load(SeqCst) == SLEEPING
    }

    /// Number of live registrations.
    pub fn registrations(&self) -> usize {
        self.inner.slab.lock().len()
    }
}
