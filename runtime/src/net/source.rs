//! `IoSource`: a non-blocking socket made to look blocking.
//!
//! Every corio socket wraps its std counterpart, switched to non-blocking
//! mode, in an `IoSource`. An operation first tries the syscall; if the socket
//! would block, the caller waits for readiness and tries again:
//!
//! - inside a coroutine, it arms the socket's netpoll slot with the
//!   coroutine's waker and parks (wait reason `Io`); the poller that sees the
//!   readiness event unparks it. The slot remembers readiness that arrives
//!   between the failed syscall and the arming, so no wake-up is lost (see
//!   `corio_netpoll::slot`);
//! - on a plain thread, it blocks the thread in `poll(2)` on the fd.
//!
//! The socket is registered with netpoll lazily, on its first blocking wait
//! in a coroutine, with the poller of that coroutine's worker (the worker
//! that will be polling for it anyway); once, edge-triggered, for both
//! directions. A socket whose operations always succeed is never registered.
//!
//! Invariants:
//! - `registration` is declared before `io`, so it is dropped first: the fd
//!   leaves epoll before it is closed and its number can be reused (an event
//!   for the old fd can then no longer reach anyone: netpoll keys carry a
//!   generation).
//! - netpoll allows one waiter per direction; `IoLock`s serialise the waiters
//!   of one direction (several coroutines may read one `&TcpStream`, as
//!   std allows), like Go's `fdMutex`. The lock is taken only on the slow path.
//! - A waiter that gives up on the lock (timeout) passes a wake-up it may
//!   have received on to the next waiter.
//! - Timeouts are deadlines: a read with a 5 s timeout that is woken twice by
//!   partial data still fails after 5 s in all. A timed-out wait cancels its
//!   waker, so a late event wakes nobody.

use crate::context;
use crate::coroutine::{self, Coroutine};
use crate::task::{WaitReason, IO_BUDGET};
use corio_netpoll::{Direction, Readiness, Registration};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
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

/// A std socket in non-blocking mode, plus what corio needs to block on it.
pub(crate) struct IoSource<T: AsFd> {
    registration: OnceLock<Registration<FdRef>>,
    io: T,
    /// Timeouts in nanoseconds, 0 meaning none.
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
    /// `set_nonblocking(true)` by the user: report `WouldBlock` instead of waiting.
    user_nonblocking: AtomicBool,
    /// Read operations started so far (any kind: read, peek, vectored, from
    /// any coroutine or thread).
    read_ops: AtomicU64,
    /// The `read_ops` number of the last read that came back short (0: none).
    /// If it is still the latest read operation, the receive buffer is
    /// drained, so the next read waits for a readiness edge first instead of
    /// paying for a `recv` that fails with EAGAIN. Any other read operation
    /// in between (a peek, a vectored read, a second reader) may have
    /// consumed the slot's Ready without the data, so it voids this.
    drained_by_op: AtomicU64,
    read_lock: IoLock,
    write_lock: IoLock,
}

impl<T: AsFd> IoSource<T> {
    /// Wraps `io`, which must already be in non-blocking mode.
    pub(crate) fn new(io: T) -> IoSource<T> {
        IoSource {
            registration: OnceLock::new(),
            io,
            read_timeout: AtomicU64::new(0),
            write_timeout: AtomicU64::new(0),
            user_nonblocking: AtomicBool::new(false),
            read_ops: AtomicU64::new(0),
            drained_by_op: AtomicU64::new(0),
            read_lock: IoLock::new(),
            write_lock: IoLock::new(),
        }
    }

    pub(crate) fn get_ref(&self) -> &T {
        &self.io
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
        let deadline = self.timeout(dir).and_then(|t| Instant::now().checked_add(t));
        if dir == Direction::Read {
            self.read_ops.fetch_add(1, Ordering::AcqRel); // voids `drained_by_op`
        }
        self.do_io_until(dir, deadline, op)
    }

    /// A read from a stream socket into a buffer of `len` bytes.
    ///
    /// After a short read the kernel buffer was drained, so the next read
    /// starts by waiting for readiness (tokio does the same): this saves one
    /// failing `recv` per message, half the read syscalls of a ping-pong
    /// server. It cannot miss data: bytes that arrived after the short read
    /// raised an edge that the netpoll slot remembers as Ready, so the wait
    /// returns at once. What raises no further edge: an EOF (or reset) that
    /// arrived together with the data, and data behind TCP's urgent mark
    /// (Linux ends a read there); netpoll remembers EPOLLRDHUP and EPOLLPRI,
    /// and then the read goes ahead. Only the latest read operation's short
    /// result counts (see `drained_by_op`). Used for TCP streams only: a
    /// Unix stream read also stops early at a message carrying file
    /// descriptors, with data still queued. (Only in a coroutine whose socket
    /// is registered; a plain thread just reads.)
    pub(crate) fn read_stream(
        &self,
        len: usize,
        op: impl FnMut(&T) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let deadline = self.timeout(Direction::Read).and_then(|t| Instant::now().checked_add(t));
        let previous = self.read_ops.fetch_add(1, Ordering::AcqRel);
        let me = previous + 1;
        if previous != 0
            && self.drained_by_op.load(Ordering::Acquire) == previous
            && self.registration.get().is_some_and(|r| !r.peer_closed_or_urgent())
            && context::in_coroutine()
            && !self.user_nonblocking.load(Ordering::Relaxed)
        {
            self.wait_ready(Direction::Read, deadline)?;
        }
        let n = self.do_io_until(Direction::Read, deadline, op)?;
        if n > 0 && n < len {
            self.drained_by_op.store(me, Ordering::Release);
        }
        Ok(n)
    }

    /// As `do_io`, with an explicit deadline (`None`: wait forever).
    pub(crate) fn do_io_until<R>(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            match op(&self.io) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if self.user_nonblocking.load(Ordering::Relaxed) {
                        return Err(err);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                result => {
                    spend_budget();
                    return result;
                }
            }
            self.wait_ready(dir, deadline)?;
        }
    }

    /// Waits until `dir` may be ready (spurious returns allowed), or fails
    /// with `TimedOut` at `deadline`.
    pub(crate) fn wait_ready(&self, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
        let Some(task) = context::current_task() else {
            return poll_fd(self.fd(), dir, deadline);
        };
        if task.is_cancelling() {
            return Err(shutting_down());
        }
        let registration = self.registration()?;
        let waker = task.io_waker();
        let _turn = self.lock(dir).lock(deadline)?;
        loop {
            match registration.poll_ready(dir, &waker)? {
                Readiness::Ready => return Ok(()),
                Readiness::Armed => match deadline {
                    Some(deadline) if Instant::now() >= deadline => {
                        registration.cancel(dir, &waker);
                        return Err(timed_out());
                    }
                    Some(deadline) => coroutine::park_until(deadline, WaitReason::Io),
                    None => coroutine::park_for(WaitReason::Io),
                },
            }
        }
    }

    fn registration(&self) -> io::Result<&Registration<FdRef>> {
        if let Some(registration) = self.registration.get() {
            return Ok(registration);
        }
        let worker = context::worker().expect("a coroutine runs on a worker");
        let registration = Registration::new(worker.me().sleeper.poller(), FdRef(self.fd()))?;
        // Another coroutine may have registered meanwhile: keep the first,
        // drop ours (which deregisters it).
        let _ = self.registration.set(registration);
        Ok(self.registration.get().expect("just set"))
    }

    fn lock(&self, dir: Direction) -> &IoLock {
        match dir {
            Direction::Read => &self.read_lock,
            Direction::Write => &self.write_lock,
        }
    }

    fn timeout(&self, dir: Direction) -> Option<Duration> {
        let nanos = match dir {
            Direction::Read => self.read_timeout.load(Ordering::Relaxed),
            Direction::Write => self.write_timeout.load(Ordering::Relaxed),
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
            Direction::Read => self.read_timeout.store(nanos, Ordering::Relaxed),
            Direction::Write => self.write_timeout.store(nanos, Ordering::Relaxed),
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
        self.user_nonblocking.store(nonblocking, Ordering::Relaxed);
    }

    /// Copies the timeouts and mode to a clone (std's `try_clone` shares them
    /// because they live in the kernel's socket; ours live here).
    pub(crate) fn clone_settings_to<U: AsFd>(&self, other: &IoSource<U>) {
        other.read_timeout.store(self.read_timeout.load(Ordering::Relaxed), Ordering::Relaxed);
        other.write_timeout.store(self.write_timeout.load(Ordering::Relaxed), Ordering::Relaxed);
        other.user_nonblocking.store(self.user_nonblocking.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// A socket wait inside a destructor run by the shutdown unwind.
fn shutting_down() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "corio: the runtime is shutting down")
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "corio: operation timed out")
}

/// Counts an I/O operation against the running coroutine's budget; yields
/// when it is spent.
fn spend_budget() {
    let exhausted = context::with_current_task(|task| match task {
        Some(task) => {
            let left = task.io_budget.get();
            if left <= 1 {
                task.io_budget.set(IO_BUDGET);
                true
            } else {
                task.io_budget.set(left - 1);
                false
            }
        }
        None => false,
    });
    if exhausted {
        coroutine::yield_now();
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

/// A FIFO lock for the waiters of one direction of one socket; parks the
/// coroutine (or blocks the thread) while another waiter holds it.
///
/// States: `locked` false/true; `queue` holds the coroutines that found it
/// locked. Unlock clears `locked`, then unparks the head of the queue, which
/// retries (it may lose to a newcomer: no starvation in practice, since a
/// newcomer only arrives after its own syscall failed). A waiter registers
/// in the queue and re-checks `locked` under the queue's mutex, so an unlock
/// between its failed attempt and its park is never missed.
pub(crate) struct IoLock {
    locked: AtomicBool,
    queue: Mutex<VecDeque<Coroutine>>,
}

pub(crate) struct IoLockGuard<'a>(&'a IoLock);

impl IoLock {
    fn new() -> IoLock {
        IoLock { locked: AtomicBool::new(false), queue: Mutex::new(VecDeque::new()) }
    }

    fn try_lock(&self) -> bool {
        self.locked.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    fn lock(&self, deadline: Option<Instant>) -> io::Result<IoLockGuard<'_>> {
        if self.try_lock() {
            return Ok(IoLockGuard(self));
        }
        let me = coroutine::current();
        loop {
            if context::cancelling() {
                self.withdraw(&me);
                return Err(shutting_down());
            }
            {
                let mut queue = self.queue.lock();
                if self.try_lock() {
                    queue.retain(|c| c.id() != me.id());
                    return Ok(IoLockGuard(self));
                }
                if !queue.iter().any(|c| c.id() == me.id()) {
                    queue.push_back(me.clone());
                }
            }
            match deadline {
                Some(deadline) if Instant::now() >= deadline => {
                    self.withdraw(&me);
                    return Err(timed_out());
                }
                Some(deadline) => coroutine::park_until(deadline, WaitReason::Io),
                None => coroutine::park_for(WaitReason::Io),
            }
        }
    }

    /// Leaves the queue without the lock (timeout, shutdown). An unlock may
    /// have just unparked us as the head: if the lock is free now, pass that
    /// wake-up on to the new head, or it would wait for an unlock that
    /// already happened.
    fn withdraw(&self, me: &Coroutine) {
        let next = {
            let mut queue = self.queue.lock();
            queue.retain(|c| c.id() != me.id());
            if self.locked.load(Ordering::Acquire) {
                None
            } else {
                queue.front().cloned()
            }
        };
        if let Some(next) = next {
            next.unpark();
        }
    }
}

impl Drop for IoLockGuard<'_> {
    fn drop(&mut self) {
        self.0.locked.store(false, Ordering::Release);
        let next = self.0.queue.lock().front().cloned();
        if let Some(next) = next {
            next.unpark();
        }
    }
}
