//! Readiness for any file descriptor: [`Async`] wraps a pipe, an eventfd, a
//! signalfd, a pidfd, a tty (anything `AsFd` that `epoll` accepts) in the
//! same machinery as corio's sockets, so a read or write that would block
//! parks the calling coroutine instead of its worker thread.
//!
//! ```
//! use corio::io::Async;
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//!
//! corio::run(|| {
//!     let (a, b) = UnixStream::pair().unwrap();
//!     let (mut a, mut b) = (Async::new(a).unwrap(), Async::new(b).unwrap());
//!     let reader = corio::spawn(move || {
//!         let mut buf = [0u8; 5];
//!         b.read_exact(&mut buf).unwrap(); // parks until the write below
//!         buf
//!     });
//!     a.write_all(b"hello").unwrap();
//!     assert_eq!(&reader.join().unwrap(), b"hello");
//! });
//! ```
//!
//! The name is smol's (`async_io::Async`): the wrapped value is made
//! asynchronous (non-blocking) underneath, while the calls look blocking.
//!
//! Invariants:
//! - The fd is in non-blocking mode from [`Async::new`] until
//!   [`Async::into_inner`] (which leaves it so: say so to whoever takes it).
//! - Every operation goes through the `IoSource` protocol of `net/source.rs`
//!   (per-direction lock, lazy edge-triggered netpoll registration, `poll(2)`
//!   on a plain thread), except the `&mut self` `Read`/`Write` of a `T` that
//!   is only `Read`/`Write` by `&mut`: there the exclusive borrow stands for
//!   the lock (nobody else can operate on this `Async` meanwhile), and the
//!   wait is the same `wait_ready` as [`Async::readable`].
//! - Regular files on disk never report `WouldBlock` (their reads block the
//!   thread on a slow disk instead) and epoll rejects them (`EPERM`, so
//!   `readable` fails): use [`spawn_blocking`](crate::blocking::spawn_blocking)
//!   for files.

use crate::net::source::IoSource;
use crate::sched::budget::spend as spend_budget;
use corio_netpoll::Direction;
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

/// An fd in non-blocking mode whose reads and writes park the calling
/// coroutine (or block a plain thread in `poll(2)`) until it is ready.
pub struct Async<T: AsFd> {
    source: IoSource<T>,
}

impl<T: AsFd> Async<T> {
    /// Switches `io`'s fd to non-blocking mode (`O_NONBLOCK`) and wraps it.
    /// The fd is registered with the poller lazily, on its first wait.
    ///
    /// # Errors
    /// If `fcntl` fails (a closed or invalid fd).
    pub fn new(io: T) -> io::Result<Async<T>> {
        set_nonblocking(io.as_fd(), true)?;
        Ok(Async { source: IoSource::new(io) })
    }

    /// The wrapped value.
    pub fn get_ref(&self) -> &T {
        self.source.get_ref()
    }

    /// Unwraps the value (leaving the poller); its fd stays non-blocking.
    pub fn into_inner(self) -> T {
        self.source.into_inner()
    }

    /// Waits until the fd may be readable: parks a coroutine until the poller
    /// reports it, blocks a plain thread in `poll(2)`. May return when a read
    /// would still block (another reader took the data first): retry.
    ///
    /// # Errors
    /// If the fd cannot be registered with the poller (epoll rejects regular
    /// files), or the coroutine is being cancelled.
    pub fn readable(&self) -> io::Result<()> {
        self.source.wait_ready(Direction::Read, None)
    }

    /// Waits until the fd may be writable; as [`readable`](Async::readable).
    ///
    /// # Errors
    /// As [`readable`](Async::readable).
    pub fn writable(&self) -> io::Result<()> {
        self.source.wait_ready(Direction::Write, None)
    }

    /// Runs `op` (a non-blocking read-side operation) until it returns
    /// anything but `WouldBlock`, waiting for readability in between.
    /// `Interrupted` is retried too.
    ///
    /// ```
    /// # use corio::io::Async;
    /// # use std::io::{Read, Write};
    /// # use std::os::unix::net::UnixStream;
    /// corio::run(|| {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     let b = Async::new(b).unwrap();
    ///     (&a).write_all(b"x").unwrap();
    ///     let mut buf = [0u8; 1];
    ///     assert_eq!(b.read_with(|s| (&*s).read(&mut buf)).unwrap(), 1);
    /// });
    /// ```
    ///
    /// # Errors
    /// `op`'s error, or a failed wait (as [`readable`](Async::readable)).
    pub fn read_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.source.do_io(Direction::Read, op)
    }

    /// Runs `op` (a non-blocking write-side operation) until it returns
    /// anything but `WouldBlock`, waiting for writability in between.
    ///
    /// # Errors
    /// `op`'s error, or a failed wait (as [`readable`](Async::readable)).
    pub fn write_with<R>(&self, op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.source.do_io(Direction::Write, op)
    }

    /// `op` on the value by `&mut`, retried after waiting for `dir` while it
    /// reports `WouldBlock` (module invariants: `&mut self` is the lock).
    fn with_mut<R>(&mut self, dir: Direction, mut op: impl FnMut(&mut T) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(self.source.get_mut()) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.source.wait_ready(dir, None)?;
                }
                result => {
                    spend_budget();
                    return result;
                }
            }
        }
    }
}

impl<T: AsFd + Read> Read for Async<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.with_mut(Direction::Read, |io| io.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.with_mut(Direction::Read, |io| io.read_vectored(bufs))
    }
}

impl<T: AsFd + Write> Write for Async<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.with_mut(Direction::Write, |io| io.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.with_mut(Direction::Write, |io| io.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.with_mut(Direction::Write, |io| io.flush())
    }
}

impl<T: AsFd> Read for &Async<T>
where
    for<'a> &'a T: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(|mut io| io.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.read_with(|mut io| io.read_vectored(bufs))
    }
}

impl<T: AsFd> Write for &Async<T>
where
    for<'a> &'a T: Write,
{
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_with(|mut io| io.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.write_with(|mut io| io.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_with(|mut io| io.flush())
    }
}

impl<T: AsFd> AsFd for Async<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.source.get_ref().as_fd()
    }
}

impl<T: AsFd> AsRawFd for Async<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.source.fd()
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async").field("io", self.get_ref()).finish()
    }
}

/// Sets or clears `O_NONBLOCK` on `fd`.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>, nonblocking: bool) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: F_GETFL on a borrowed (so open) fd reads its flags only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let new = if nonblocking { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    // SAFETY: F_SETFL on a borrowed (so open) fd changes only its status flags.
    if new != flags && unsafe { libc::fcntl(fd, libc::F_SETFL, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
