//! `UdpSocket`: `std::net::UdpSocket`'s API, parking the coroutine while the
//! socket is not ready. Timeouts report `TimedOut` (see `tcp` for why).

use super::source::IoSource;
use super::tcp::{each_addr, impl_fd_traits, impl_timeouts};
use corio_netpoll::Direction;
use std::fmt;
use std::io;
use std::net::{self, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, RawFd};

/// A UDP socket.
pub struct UdpSocket {
    source: IoSource<net::UdpSocket>,
}

impl UdpSocket {
    fn from_nonblocking(socket: net::UdpSocket) -> UdpSocket {
        UdpSocket { source: IoSource::new(socket) }
    }

    /// Binds to `addr` (each resolved address tried in turn).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |addr| {
            let socket = net::UdpSocket::bind(addr)?;
            socket.set_nonblocking(true)?;
            Ok(UdpSocket::from_nonblocking(socket))
        })
    }

    /// Sets the default peer for `send`/`recv` and filters other senders.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |addr| self.source.get_ref().connect(addr))
    }

    /// Sends to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Write, |s| s.send(buf))
    }

    /// Receives from the connected peer, parking until a datagram arrives.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.source.do_io(Direction::Read, |s| s.recv(buf))
    }

    /// Sends to `addr` (the first resolved address).
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let addr = super::resolve::resolve(&addr)?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))?;
        self.source.do_io(Direction::Write, |s| s.send_to(buf, addr))
    }

    /// Receives a datagram and its sender's address.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.do_io(Direction::Read, |s| s.recv_from(buf))
    }

    /// As `recv_from`, without consuming the datagram.
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.source.do_io(Direction::Read, |s| s.peek_from(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.source.get_ref().peer_addr()
    }

    /// SO_BROADCAST.
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.source.get_ref().set_broadcast(broadcast)
    }

    /// IP_TTL.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source.get_ref().set_ttl(ttl)
    }

    /// SO_ERROR, cleared.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source.get_ref().take_error()
    }

    /// A second handle to the same socket, with the same timeouts.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let clone =
            UdpSocket { source: IoSource::new_clone_of(self.source.get_ref().try_clone()?, &self.source) };
        Ok(clone)
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("addr", &self.local_addr().ok())
            .field("fd", &self.source.fd())
            .finish()
    }
}

impl_fd_traits!(UdpSocket, net::UdpSocket, UdpSocket::from_nonblocking);
impl_timeouts!(UdpSocket);
