//! Networking with `std::net`'s names and behaviour, for coroutines: a call
//! that would block parks the calling coroutine, and its worker runs others
//! until the socket is ready. Porting std code means changing the import.
//!
//! ```no_run
//! use corio::net::TcpListener;
//! use std::io::{Read, Write};
//!
//! corio::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:7000").unwrap();
//!     for stream in listener.incoming() {
//!         let mut stream = stream.unwrap();
//!         corio::spawn(move || {
//!             let mut buf = [0u8; 16 * 1024];
//!             loop {
//!                 let n = stream.read(&mut buf).unwrap_or(0);
//!                 if n == 0 || stream.write_all(&buf[..n]).is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!     }
//! });
//! ```
//!
//! On a plain thread the same calls block the thread (via `poll(2)`).
//! Differences from std: timeouts report `ErrorKind::TimedOut` (std on Unix
//! reports `WouldBlock`), listeners use a backlog of 1024, and reads and
//! writes of a coroutine that keeps finding its socket ready yield to its
//! siblings every 128 operations. Several coroutines may wait on one socket
//! direction (readers of one `Arc<TcpStream>`, acceptors of one listener):
//! they take turns, one operation at a time, in arrival order.

mod io_lock;
mod resolve;
pub(crate) mod source;
mod tcp;
mod udp;
pub mod unix;

pub use resolve::{lookup_host, set_resolver_delay};
pub use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs,
};
pub use tcp::{Incoming, TcpListener, TcpStream, DEFAULT_BACKLOG};
pub use udp::UdpSocket;
