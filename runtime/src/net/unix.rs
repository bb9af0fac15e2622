//! Unix domain sockets: `std::os::unix::net`'s `UnixListener` and
//! `UnixStream`, parking the coroutine while the socket is not ready.

use super::source::IoSource;
use super::tcp::{impl_fd_traits, impl_timeouts};
use corio_netpoll::Direction;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, RawFd};
use std::os::unix::net::{self, SocketAddr};
use std::path::Path;

/// A Unix domain socket server.
pub struct UnixListener {
    source: IoSource<net::UnixListener>,
}

impl UnixListener {
    fn from_nonblocking(listener: net::UnixListener) -> UnixListener {
        UnixListener { source: IoSource::new(listener) }
    }

    /// Binds to the socket file at `path` (which must not exist).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let listener = net::UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(UnixListener::from_nonblocking(listener))
    }

    /// Accepts a connection, parking until one arrives.
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        self.source.do_io(Direction::Read, |l| {
            let (stream, addr) = l.accept()?;
            stream.set_nonblocking(true)?;
            Ok((UnixStream::from_nonblocking(stream), addr))
        })
    }

    /// An endless iterator of accepted connections.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<UnixStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(stream, _)| stream))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener").field("fd", &self.source.fd()).finish()
    }
}

/// A Unix domain stream; `Read`/`Write` for it and for `&UnixStream`.
pub struct UnixStream {
    source: IoSource<net::UnixStream>,
}

impl UnixStream {
    fn from_nonblocking(stream: net::UnixStream) -> UnixStream {
        UnixStream { source: IoSource::new(stream) }
    }

    /// Connects to the socket at `path`. (A Unix connect completes or fails
    /// at once unless the listener's backlog is full; then it parks.)
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let stream = net::UnixStream::connect(path)?;
        stream.set_nonblocking(true)?;
        Ok(UnixStream::from_nonblocking(stream))
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = net::UnixStream::pair()?;
        a.set_nonblocking(true)?;
        b.set_nonblocking(true)?;
        Ok((UnixStream::from_nonblocking(a), UnixStream::from_nonblocking(b)))
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// Shuts down one or both halves.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.source.get_ref().shutdown(how)
    }

    /// A second handle to the same stream, with the same timeouts.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        let clone =
            UnixStream { source: IoSource::new_clone_of(self.source.get_ref().try_clone()?, &self.source) };
        Ok(clone)
    }
}

impl Read for &UnixStream {
    /// (No short-read shortcut here, unlike TCP: a Unix stream read also
    /// stops at a message that carries file descriptors, with data queued.)
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Read, |mut s| s.read(buf))
    }
}

impl Write for &UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Write, |mut s| s.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream").field("fd", &self.source.fd()).finish()
    }
}

impl_fd_traits!(UnixStream, net::UnixStream, UnixStream::from_nonblocking);
impl_timeouts!(UnixStream);
impl_fd_traits!(UnixListener, net::UnixListener, UnixListener::from_nonblocking);
