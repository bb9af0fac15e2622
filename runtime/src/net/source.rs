//! `IoSource`: a non-blocking socket made to look blocking.
//!
//! Every corio socket wraps its std counterpart, switched to non-blocking
//! mode, in an `IoSource`. On a plain thread an operation tries the syscall
//! and, if the socket would block, waits in `poll(2)` and tries again. In a
//! coroutine it follows the protocol below, waiting on the socket's netpoll
//! slot and parking the coroutine (wait reason `Io`) instead.
//!
//! # The protocol of one direction (in a coroutine)
//!
//! 1. Take the direction's [`IoLock`](super::io_lock) (one reader and one
//!    writer at a time per socket, as Go's `fdMutex`; FIFO; parks while
//!    another operation of this direction holds it).
//! 2. Make the syscall, unless the *drained hint* says the receive buffer is
//!    empty (below). Any result but `WouldBlock` ends the operation.
//! 3. Poll the slot: `Ready` (an edge arrived since the last consume) means go
//!    to 2; `Armed` means park until the poller's wake-up (or the deadline),
//!    then poll again.
//! 4. Release the lock; the head of its queue starts at 2.
//!
//! No wake-up is lost: only a lock holder consumes the slot's readiness, and
//! after every consume it makes the syscall; every new holder makes the
//! syscall before it waits. So when one edge stood for two arrivals (two
//! datagrams, two bytes, two connections), the second is found by the next
//! holder's syscall rather than waited for. (The lock used to cover only the
//! wait: a woken waiter consumed the Ready, released the lock before its
//! syscall, and the next waiter parked for ever on an Empty slot.)
//!
//! The drained hint: after a short stream read (fewer bytes than asked) the
//! kernel buffer was empty, so the next read by the lock holder starts at 3
//! instead of paying for a `recv` that fails with EAGAIN (tokio does the
//! same): half the read syscalls of a ping-pong server. It cannot strand
//! data: it is written only by read-lock holders (set by a short stream read,
//! cleared by every other read result), only they consume the slot, and
//! bytes that arrive after the short read raise an edge that stays in the
//! slot until a holder consumes it. What raises no further edge is an EOF or
//! reset that came with the data, or data behind TCP's urgent mark (Linux
//! ends a read there): netpoll remembers EPOLLRDHUP and EPOLLPRI and the hint
//! is then ignored. Used for TCP only: a Unix stream read also stops early at
//! a message carrying file descriptors, with data still queued.
//!
//! # Registration
//!
//! A socket is registered with netpoll lazily, on its first wait in a
//! coroutine, with the poller of that coroutine's worker (edge-triggered, both
//! directions), and remembers the runtime it registered with. Used later in
//! another runtime (a socket returned from one `corio::run` and used in the
//! next), it registers again with the new runtime's poller; the old
//! registration, in a poller nobody may be polling any more, is dropped. A
//! socket whose operations always succeed is never registered.
//!
//! Invariants:
//! - `registration` is declared before `io`, so it is dropped first: the fd
//!   leaves epoll before it is closed and its number can be reused (an event
//!   for the old fd can then no longer reach anyone: netpoll keys carry a
//!   generation). Clones of the `Arc` live only inside a wait, which borrows
//!   the source.
//! - Timeouts and the non-blocking mode live in `Settings`, shared by
//!   `try_clone`d handles, as std's live in the kernel's socket.
//! - Timeouts are deadlines: a read with a 5 s timeout that is woken twice by
//!   partial data still fails after 5 s in all. A timed-out or unwound wait
//!   cancels its waker, so a late event wakes nobody.
//! - A coroutine that cannot wait any more (a destructor run by the shutdown
//!   unwind) gets `crate::is_cancelled_error`, never `Interrupted`, which
//!   std's `write_all` and friends retry for ever.

use super::io_lock::{timed_out, IoLock};
use crate::cancel::cancelled_error;
use crate::coroutine;
use crate::sched::budget::spend as spend_budget;
use crate::sched::context;
use crate::sched::park::set_wait_object;
use crate::task::{IoDirection, Task, WaitObject, WaitReason};
use corio_netpoll::{ArcWake, Direction, Readiness, Registration};
use parking_lot::Mutex;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A raw fd handed to netpoll; the `IoSource` that owns the real fd keeps it
/// open for as long as the registration lives (see the invariants).
pub(crate) struct FdRef(RawFd);

impl AsFd for FdRef {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the fd is owned by the `IoSource` holding this registration,
        // which drops the registration before closing the fd.
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

/// A netpoll registration and the runtime whose poller holds it.
struct Registered {
    runtime: u64,
    registration: Registration<FdRef>,
}

/// What std keeps in the kernel's socket (shared by `try_clone`d handles).
#[derive(Default)]
struct Settings {
    /// Timeouts in nanoseconds, 0 meaning none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    /// `set_nonblocking(true)` by the user: report `WouldBlock` instead of waiting.
    nonblocking: AtomicBool,
}

/// A std socket in non-blocking mode, plus what corio needs to block on it.
pub(crate) struct IoSource<T: AsFd> {
    registration: Mutex<Option<Arc<Registered>>>,
    io: T,
    settings: Arc<Settings>,
    /// The drained hint (module docs); written only by the read lock's holder.
    drained: AtomicBool,
    read_lock: IoLock,
    write_lock: IoLock,
}

/// What a read operation tells the drained hint when it ends.
#[derive(Clone, Copy)]
enum ReadKind {
    /// Not a read: the hint is not touched.
    Write,
    /// A read that never proves the buffer empty (peek, datagram, accept...).
    Other,
    /// A stream read into a buffer of this many bytes.
    Stream(usize),
}

impl<T: AsFd> IoSource<T> {
    /// Wraps `io`, which must already be in non-blocking mode.
    pub(crate) fn new(io: T) -> IoSource<T> {
        IoSource::with_settings(io, Arc::default())
    }

    fn with_settings(io: T, settings: Arc<Settings>) -> IoSource<T> {
        IoSource {
            registration: Mutex::new(None),
            io,
            settings,
            drained: AtomicBool::new(false),
            read_lock: IoLock::new(),
            write_lock: IoLock::new(),
        }
    }

    /// Wraps `io`, a `try_clone` (dup) of `original`'s socket, sharing its
    /// timeouts and mode as std's clones do.
    pub(crate) fn new_clone_of<U: AsFd>(io: T, original: &IoSource<U>) -> IoSource<T> {
        IoSource::with_settings(io, original.settings.clone())
    }

    pub(crate) fn get_ref(&self) -> &T {
        &self.io
    }

    /// The wrapped fd's owner, mutably (for `corio::io::Async`'s `Read` and
    /// `Write` of a `T` that needs `&mut self`: the `&mut` borrow excludes
    /// every other operation on this source).
    pub(crate) fn get_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Deregisters and returns the socket (still in non-blocking mode).
    pub(crate) fn into_inner(self) -> T {
        let IoSource { registration, io, .. } = self;
        drop(registration);
        io
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.io.as_fd().as_raw_fd()
    }

    /// Runs `op` until it does not report `WouldBlock`, waiting for `dir`
    /// readiness in between, until the direction's timeout (if any) expires.
    pub(crate) fn do_io<R>(&self, dir: Direction, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        let kind = match dir {
            Direction::Read => ReadKind::Other,
            Direction::Write => ReadKind::Write,
        };
        self.operate(dir, kind, op, |_| 0)
    }

    /// A read from a TCP stream into a buffer of `len` bytes: as `do_io`,
    /// with the drained hint (module docs).
    pub(crate) fn read_stream(
        &self,
        len: usize,
        op: impl FnMut(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.operate(Direction::Read, ReadKind::Stream(len), op, |n| *n)
    }

    fn operate<R>(
        &self,
        dir: Direction,
        kind: ReadKind,
        mut op: impl FnMut(&T) -> io::Result<R>,
        count: impl Fn(&R) -> usize,
    ) -> io::Result<R> {
        let deadline = self.timeout(dir).and_then(|t| Instant::now().checked_add(t));
        let Some(task) = context::current_task() else {
            return self.operate_on_thread(dir, deadline, op);
        };
        let nonblocking = self.settings.nonblocking.load(Ordering::Relaxed);
        let turn = if nonblocking {
            // Never waits, so never touches the slot: no turn needed, but
            // take a free one so the drained hint stays the holder's.
            self.lock(dir).try_acquire()
        } else {
            Some(self.lock(dir).lock(deadline)?)
        };
        let outcome = if turn.is_some() {
            self.operate_in_turn(
                &task,
                dir,
                deadline,
                matches!(kind, ReadKind::Stream(_)),
                &mut op,
                nonblocking,
            )
        } else {
            Ok(retry_interrupted(|| op(&self.io)))
        };
        if turn.is_some() {
            let drained = match (kind, &outcome) {
                (ReadKind::Write, _) => None,
                (ReadKind::Stream(len), Ok(Ok(value))) => Some((1..len).contains(&count(value))),
                _ => Some(false),
            };
            if let Some(drained) = drained {
                self.drained.store(drained, Ordering::Relaxed);
            }
        }
        drop(turn);
        let result = outcome?;
        spend_budget();
        result
    }

    /// Steps 2 and 3 of the protocol, holding the direction's lock. The outer
    /// error is a failed wait (timeout, cancellation, netpoll), the inner
    /// result the syscall's.
    fn operate_in_turn<R>(
        &self,
        task: &Arc<Task>,
        dir: Direction,
        deadline: Option<Instant>,
        stream_read: bool,
        op: &mut impl FnMut(&T) -> io::Result<R>,
        nonblocking: bool,
    ) -> io::Result<io::Result<R>> {
        let mut registered = None;
        let mut skip_syscall = stream_read && !nonblocking && self.read_is_drained(&mut registered);
        loop {
            if !skip_syscall {
                match retry_interrupted(|| op(&self.io)) {
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock && !nonblocking => {}
                    result => return Ok(result),
                }
            }
            skip_syscall = false;
            self.wait_slot(task, dir, deadline, &mut registered)?;
        }
    }

    /// The drained hint, valid only with a registration in this runtime
    /// whose slot would have recorded every arrival since.
    fn read_is_drained(&self, registered: &mut Option<Arc<Registered>>) -> bool {
        if !self.drained.load(Ordering::Relaxed) {
            return false;
        }
        let Some(current) = self.current_registration() else { return false };
        let usable = !current.registration.peer_closed_or_urgent();
        *registered = Some(current);
        usable
    }

    /// Without the lock, on a plain thread: `poll(2)` is level-triggered.
    fn operate_on_thread<R>(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            match retry_interrupted(|| op(&self.io)) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if self.settings.nonblocking.load(Ordering::Relaxed) {
                        return Err(err);
                    }
                }
                result => return result,
            }
            if context::cancelling() {
                // Dropping coroutines that never started: nothing to wait for.
                return Err(cancelled_error());
            }
            poll_fd(self.fd(), dir, deadline)?;
        }
    }

    /// Waits until a stream read would probably not wait (`TcpStream::readable`):
    /// a read-lock holder's step 2 and 3 of the protocol, with `peek` (a
    /// one-byte `MSG_PEEK`, which consumes nothing) as the syscall, skipped
    /// when the drained hint says the buffer is empty, and not repeated after
    /// the slot reports readiness: so in a request-reply loop it costs no
    /// syscall beyond the read's. That readiness can be stale (an edge for
    /// data that a read took without waiting), so the next read may still
    /// wait. Clears the drained hint: the read that follows makes its syscall.
    pub(crate) fn wait_readable_stream(
        &self,
        mut peek: impl FnMut(&T) -> io::Result<usize>,
    ) -> io::Result<()> {
        let deadline = self.timeout(Direction::Read).and_then(|t| Instant::now().checked_add(t));
        let Some(task) = context::current_task() else {
            if context::cancelling() {
                return Err(cancelled_error());
            }
            return poll_fd(self.fd(), Direction::Read, deadline);
        };
        if self.settings.nonblocking.load(Ordering::Relaxed) {
            return retry_interrupted(|| peek(&self.io)).map(drop);
        }
        let turn = self.lock(Direction::Read).lock(deadline)?;
        let mut registered = None;
        let result = if self.read_is_drained(&mut registered) {
            self.wait_slot(&task, Direction::Read, deadline, &mut registered)
        } else {
            match retry_interrupted(|| peek(&self.io)) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.wait_slot(&task, Direction::Read, deadline, &mut registered)
                }
                result => result.map(drop),
            }
        };
        self.drained.store(false, Ordering::Relaxed);
        drop(turn);
        result
    }

    /// Waits until `dir` may be ready (spurious returns allowed), or fails
    /// with `TimedOut` at `deadline` (a connect's wait for writability).
    pub(crate) fn wait_ready(&self, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
        let Some(task) = context::current_task() else {
            if context::cancelling() {
                return Err(cancelled_error());
            }
            return poll_fd(self.fd(), dir, deadline);
        };
        let _turn = self.lock(dir).lock(deadline)?;
        self.wait_slot(&task, dir, deadline, &mut None)
    }

    /// Step 3: returns once the slot reported readiness (consumed).
    fn wait_slot(
        &self,
        task: &Arc<Task>,
        dir: Direction,
        deadline: Option<Instant>,
        registered: &mut Option<Arc<Registered>>,
    ) -> io::Result<()> {
        if task.is_cancelling() || task.cancel_requested() {
            return Err(cancelled_error());
        }
        let registered = match registered {
            Some(registered) => registered,
            None => registered.insert(self.registration()?),
        };
        let registration = &registered.registration;
        let waker = task.io_waker();
        // The deadline is looked at only after a park: it was computed from
        // the clock just before this wait, and one that has passed since
        // fires at the worker's next timer check, which ends that first park
        // (one clock read per wait instead of three).
        let mut parked = false;
        loop {
            if task.cancel_requested() {
                registration.cancel(dir, &waker);
                return Err(cancelled_error());
            }
            match registration.poll_ready(dir, &waker)? {
                Readiness::Ready => return Ok(()),
                Readiness::Armed => {
                    if parked && deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                        registration.cancel(dir, &waker);
                        return Err(timed_out());
                    }
                    // An unwind out of the park (shutdown) must not leave the
                    // waker armed: the slot takes one waiter per direction.
                    let armed = Armed { registration, dir, waker: &waker };
                    let direction = match dir {
                        Direction::Read => IoDirection::Read,
                        Direction::Write => IoDirection::Write,
                    };
                    // The peer is looked up when a dump asks (no syscall here).
                    set_wait_object(WaitObject::Socket { fd: self.fd(), direction, peer: None });
                    match deadline {
                        Some(deadline) => coroutine::park_until(deadline, WaitReason::Io),
                        None => coroutine::park_for(WaitReason::Io),
                    }
                    parked = true;
                    std::mem::forget(armed);
                }
            }
        }
    }

    /// The registration in the current runtime, if there is one.
    fn current_registration(&self) -> Option<Arc<Registered>> {
        let runtime = context::worker()?.scheduler.id;
        self.registration.lock().as_ref().filter(|r| r.runtime == runtime).cloned()
    }

    /// The registration in the current runtime, made now if there is none
    /// (or only one in another runtime, which is dropped).
    fn registration(&self) -> io::Result<Arc<Registered>> {
        let worker = context::worker().expect("a coroutine runs on a worker");
        let runtime = worker.scheduler.id;
        let mut slot = self.registration.lock();
        if let Some(registered) = slot.as_ref().filter(|r| r.runtime == runtime) {
            return Ok(registered.clone());
        }
        let registration = Registration::new(worker.me().driver.poller(), FdRef(self.fd()))?;
        let registered = Arc::new(Registered { runtime, registration });
        let stale = slot.replace(registered.clone());
        drop(slot);
        drop(stale); // leaves the old runtime's poller
        Ok(registered)
    }

    fn lock(&self, dir: Direction) -> &IoLock {
        match dir {
            Direction::Read => &self.read_lock,
            Direction::Write => &self.write_lock,
        }
    }

    fn timeout(&self, dir: Direction) -> Option<Duration> {
        let nanos = match dir {
            Direction::Read => self.settings.read_timeout.load(Ordering::Relaxed),
            Direction::Write => self.settings.write_timeout.load(Ordering::Relaxed),
        };
        (nanos != 0).then(|| Duration::from_nanos(nanos))
    }

    /// std's rules: `Some(ZERO)` is an `InvalidInput` error; `None` clears.
    pub(crate) fn set_timeout(&self, dir: Direction, timeout: Option<Duration>) -> io::Result<()> {
        let nanos = match timeout {
            Some(t) if t.is_zero() => {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"))
            }
            Some(t) => u64::try_from(t.as_nanos()).unwrap_or(u64::MAX).max(1),
            None => 0,
        };
        match dir {
            Direction::Read => self.settings.read_timeout.store(nanos, Ordering::Relaxed),
            Direction::Write => self.settings.write_timeout.store(nanos, Ordering::Relaxed),
        }
        Ok(())
    }

    pub(crate) fn read_timeout(&self) -> Option<Duration> {
        self.timeout(Direction::Read)
    }

    pub(crate) fn write_timeout(&self) -> Option<Duration> {
        self.timeout(Direction::Write)
    }

    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.settings.nonblocking.store(nonblocking, Ordering::Relaxed);
    }
}

/// A waker armed in a slot while its coroutine is parked; dropped only by an
/// unwind out of the park, which disarms it.
struct Armed<'a> {
    registration: &'a Registration<FdRef>,
    dir: Direction,
    waker: &'a ArcWake,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        self.registration.cancel(self.dir, self.waker);
    }
}

/// Runs `op` again while it fails with `Interrupted` (EINTR).
fn retry_interrupted<R>(mut op: impl FnMut() -> io::Result<R>) -> io::Result<R> {
    loop {
        match op() {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// Blocks a plain thread until `fd` is ready for `dir` or `deadline` passes.
fn poll_fd(fd: RawFd, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
    let events = match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    let mut pollfd = libc::pollfd { fd, events, revents: 0 };
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out());
                }
                // Round up so we never wake just before the deadline.
                left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
            }
        };
        // SAFETY: `pollfd` is a valid array of one element for the call.
        let rc = unsafe { libc::poll(&mut pollfd, 1, timeout_ms) };
        if rc > 0 {
            return Ok(());
        }
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}
