//! `TcpListener` and `TcpStream`: `std::net`'s API, blocking the coroutine
//! (not the worker) when the socket is not ready.
//!
//! Differences from std, all deliberate:
//! - a timeout (`set_read_timeout`, `set_write_timeout`, `connect_timeout`)
//!   reports `io::ErrorKind::TimedOut`; std on Unix reports `WouldBlock`
//!   (EAGAIN from SO_RCVTIMEO), which is indistinguishable from a
//!   non-blocking socket's "try again";
//! - `bind` listens with a backlog of 1024 (std: 128, which overflowed under
//!   a burst of 1,000 connects here) and sets SO_REUSEADDR;
//!   [`TcpListener::bind_with`] sets the backlog and SO_REUSEPORT;
//! - accepted sockets come from `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`;
//! - name resolution in `bind`/`connect` with a host name (not an IP
//!   literal) runs on the blocking pool in a coroutine (`resolve`).

use super::source::IoSource;
use corio_netpoll::Direction;
use socket2::{Domain, SockRef, Socket, Type};
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::{self, Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, RawFd};
use std::time::{Duration, Instant};

/// Listen backlog of [`TcpListener::bind`].
pub const DEFAULT_BACKLOG: i32 = 1024;

/// Calls `f` on each resolved address until one succeeds, as std does.
pub(crate) fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last_err = None;
    for addr in super::resolve::resolve(&addr)? {
        match f(&addr) {
            Ok(value) => return Ok(value),
            Err(err) => last_err = Some(err),
        }
    }
    Err(last_err
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any addresses")))
}

/// A TCP socket server, listening for connections.
pub struct TcpListener {
    source: IoSource<net::TcpListener>,
}

impl TcpListener {
    /// Binds to `addr` with SO_REUSEADDR and a backlog of [`DEFAULT_BACKLOG`].
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |addr| TcpListener::bind_one(addr, DEFAULT_BACKLOG, false))
    }

    /// Binds to `addr` (each resolved address in turn, as `bind`) with the
    /// given backlog and, if `reuse_port`, SO_REUSEPORT (several listeners on
    /// one port, the kernel spreading connections).
    pub fn bind_with<A: ToSocketAddrs>(addr: A, backlog: i32, reuse_port: bool) -> io::Result<TcpListener> {
        each_addr(addr, |addr| TcpListener::bind_one(addr, backlog, reuse_port))
    }

    fn bind_one(addr: &SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<TcpListener> {
        let socket = Socket::new(Domain::for_address(*addr), Type::STREAM.nonblocking(), None)?;
        socket.set_reuse_address(true)?;
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&(*addr).into())?;
        socket.listen(backlog)?;
        Ok(TcpListener { source: IoSource::new(socket.into()) })
    }

    /// Accepts a connection, parking the coroutine until one arrives.
    ///
    /// Errors are returned, never retried here: in particular `EMFILE`
    /// ("too many open files") is an error the caller should back off from,
    /// as the accept loop of `examples/echo.rs` does.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.source.do_io(Direction::Read, |listener| {
            let (socket, addr) = SockRef::from(listener).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)?;
            let addr = addr
                .as_socket()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "accepted a non-IP peer"))?;
            Ok((TcpStream::from_nonblocking(socket.into()), addr))
        })
    }

    /// An endless iterator of accepted connections (`accept` in a loop).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address this listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// A second handle to the same listening socket.
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        let clone =
            TcpListener { source: IoSource::new_clone_of(self.source.get_ref().try_clone()?, &self.source) };
        Ok(clone)
    }

    /// With `true`, `accept` returns `WouldBlock` instead of parking.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.source.set_nonblocking(nonblocking);
        Ok(())
    }

    /// IP_TTL.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source.get_ref().set_ttl(ttl)
    }

    /// SO_ERROR, cleared.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source.get_ref().take_error()
    }

    /// Wraps a std listener (switched to non-blocking mode).
    pub fn from_std(listener: net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener { source: IoSource::new(listener) })
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.source.fd())
            .finish()
    }
}

/// The iterator of [`TcpListener::incoming`]; never returns `None`.
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

/// A TCP connection. `Read` and `Write` are implemented for `TcpStream` and
/// `&TcpStream`, so one coroutine can read while another writes.
pub struct TcpStream {
    source: IoSource<net::TcpStream>,
}

impl TcpStream {
    fn from_nonblocking(stream: net::TcpStream) -> TcpStream {
        TcpStream { source: IoSource::new(stream) }
    }

    /// Connects to `addr`, trying each resolved address in turn.
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |addr| TcpStream::connect_until(addr, None))
    }

    /// Connects to `addr`, failing with `TimedOut` after `timeout`.
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot set a 0 duration timeout"));
        }
        TcpStream::connect_until(addr, Instant::now().checked_add(timeout))
    }

    fn connect_until(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::for_address(*addr), Type::STREAM.nonblocking(), None)?;
        let stream = TcpStream::from_nonblocking(socket.into());
        match SockRef::from(stream.source.get_ref()).connect(&(*addr).into()) {
            Ok(()) => return Ok(stream),
            Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(err) => return Err(err),
        }
        loop {
            stream.source.wait_ready(Direction::Write, deadline)?;
            if let Some(err) = stream.source.get_ref().take_error()? {
                return Err(err);
            }
            match stream.source.get_ref().peer_addr() {
                Ok(_) => return Ok(stream),
                // Woken before the handshake finished (a spurious wake-up).
                Err(err) if err.kind() == io::ErrorKind::NotConnected => continue,
                Err(err) => return Err(err),
            }
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// Shuts down the read, write or both halves; the peer sees EOF after a
    /// write shutdown.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.source.get_ref().shutdown(how)
    }

    /// TCP_NODELAY.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.source.get_ref().set_nodelay(nodelay)
    }

    /// TCP_NODELAY.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.source.get_ref().nodelay()
    }

    /// Reads without consuming, waiting for data like `read`.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Read, |s| s.peek(buf))
    }

    /// Waits until data can be read, or the peer has closed or reset the
    /// connection, without reading anything: so a connection that waits for
    /// its next request need not hold a read buffer. `read` right after it
    /// then usually returns at once, but may still wait (the readiness can be
    /// stale, as with tokio's `readable`). Honours the read timeout
    /// (`TimedOut`) and cancellation like `read`; on a plain thread it waits
    /// in `poll(2)`. Returns the socket's error if it has one.
    ///
    /// ```no_run
    /// # use corio::net::TcpStream;
    /// # use std::io::{Read, Write};
    /// # fn handle(mut stream: TcpStream) -> std::io::Result<()> {
    /// loop {
    ///     stream.readable()?; // idle: no buffer held
    ///     let mut buf = vec![0u8; 16 * 1024];
    ///     let n = stream.read(&mut buf)?;
    ///     if n == 0 {
    ///         return Ok(());
    ///     }
    ///     stream.write_all(&buf[..n])?;
    /// }
    /// # }
    /// ```
    ///
    /// std has no such call (a blocking thread holds its buffer anyway);
    /// the name is tokio's (`TcpStream::readable`) and smol's
    /// (`Async::readable`). Unlike `peek(&mut [0; 1])`, which would do the
    /// same, it makes no syscall when the last read found the buffer empty,
    /// so a request-reply loop pays nothing for it.
    pub fn readable(&self) -> io::Result<()> {
        self.source.wait_readable_stream(|s| s.peek(&mut [0u8; 1]))
    }

    /// A second handle to the same connection (a `dup` of the fd), with the
    /// same timeouts.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        let clone =
            TcpStream { source: IoSource::new_clone_of(self.source.get_ref().try_clone()?, &self.source) };
        Ok(clone)
    }

    /// IP_TTL.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source.get_ref().set_ttl(ttl)
    }

    /// IP_TTL.
    pub fn ttl(&self) -> io::Result<u32> {
        self.source.get_ref().ttl()
    }

    /// SO_ERROR, cleared.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source.get_ref().take_error()
    }

    /// Wraps a connected std stream (switched to non-blocking mode).
    pub fn from_std(stream: net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream::from_nonblocking(stream))
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        self.source.read_stream(len, |mut s| s.read(buf))
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.source.do_io(Direction::Read, |mut s| s.read_vectored(bufs))
    }
}

impl Write for &TcpStream {
    /// Sends with MSG_NOSIGNAL (std does on Linux): a reset peer gives
    /// `BrokenPipe`, never SIGPIPE.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Write, |mut s| s.write(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.source.do_io(Direction::Write, |mut s| s.write_vectored(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("addr", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.source.fd())
            .finish()
    }
}

macro_rules! impl_fd_traits {
    ($type:ty, $std:ty, $from_nonblocking:expr) => {
        impl AsRawFd for $type {
            fn as_raw_fd(&self) -> RawFd {
                self.source.fd()
            }
        }

        impl AsFd for $type {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.source.get_ref().as_fd()
            }
        }

        impl FromRawFd for $type {
            /// # Safety
            /// `fd` must be an open socket of the right kind, owned by the caller.
            unsafe fn from_raw_fd(fd: RawFd) -> Self {
                // SAFETY: forwarded to the caller's contract.
                let io = unsafe { <$std>::from_raw_fd(fd) };
                let _ = io.set_nonblocking(true);
                $from_nonblocking(io)
            }
        }

        impl IntoRawFd for $type {
            /// Hands the fd back, still in non-blocking mode (and deregistered).
            fn into_raw_fd(self) -> RawFd {
                self.source.into_inner().into_raw_fd()
            }
        }
    };
}
pub(crate) use impl_fd_traits;

/// `set_read_timeout`, `set_write_timeout`, `read_timeout`, `write_timeout` and
/// `set_nonblocking` for a socket type with an `IoSource` in `self.source`,
/// with std's names and contracts (a zero timeout is `InvalidInput`).
macro_rules! impl_timeouts {
    ($type:ty) => {
        impl $type {
            /// Read timeout (`None`: wait forever). An operation that times out
            /// fails with `ErrorKind::TimedOut` (std on Unix says `WouldBlock`),
            /// and the socket stays usable.
            pub fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
                self.source.set_timeout(corio_netpoll::Direction::Read, timeout)
            }

            /// Write timeout, as [`set_read_timeout`](Self::set_read_timeout).
            pub fn set_write_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
                self.source.set_timeout(corio_netpoll::Direction::Write, timeout)
            }

            /// The read timeout.
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.source.read_timeout())
            }

            /// The write timeout.
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.source.write_timeout())
            }

            /// With `true`, operations return `WouldBlock` instead of parking.
            pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                self.source.set_nonblocking(nonblocking);
                Ok(())
            }
        }
    };
}
pub(crate) use impl_timeouts;

impl_fd_traits!(TcpStream, net::TcpStream, TcpStream::from_nonblocking);
impl_timeouts!(TcpStream);
impl_fd_traits!(TcpListener, net::TcpListener, |l| TcpListener { source: IoSource::new(l) });
