//! An fd closed and reused while a coroutine waited on (a clone of) the old
//! socket: the new socket's readiness must reach only the new owner.
//!
//! Alone in its test binary, so no other test opens fds concurrently and the
//! kernel really hands the closed fd number to the next accepted socket.

mod common;

use common::{poll_until, spawn_observed, wait_until_parked, within};
use corio::net::{Shutdown, TcpListener, TcpStream};
use corio::WaitReason;
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn an_fd_closed_and_reused_while_its_old_waiter_waits_elsewhere_gets_no_stray_data() {
    within(2, Duration::from_secs(30), "fd reuse", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut first_peer = TcpStream::connect(addr).unwrap();
        let (first, _) = listener.accept().unwrap();
        let first_fd = std::os::fd::AsRawFd::as_raw_fd(&first);
        let mut other_peer = TcpStream::connect(addr).unwrap();
        let (other, _) = listener.accept().unwrap();
        // Coroutine A blocks on `first` (registering fd `first_fd` with
        // netpoll), is woken by data, closes it, then blocks on `other`.
        let (a_co, a) = spawn_observed(move || {
            let mut buf = [0u8; 8];
            let n = (&first).read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"one");
            drop(first); // deregistered, then fd `first_fd` closed
            let n = (&other).read(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        wait_until_parked(&a_co, WaitReason::Io); // blocked on `first`
                                                  // The next connection is already queued before `first_fd` is freed.
        let mut second_peer = TcpStream::connect(addr).unwrap();
        first_peer.write_all(b"one").unwrap();
        poll_until("A closed `first`", || first_peer_closed(&mut first_peer));
        wait_until_parked(&a_co, WaitReason::Io); // now blocked on `other`
        let (second, _) = listener.accept().unwrap();
        assert_eq!(std::os::fd::AsRawFd::as_raw_fd(&second), first_fd, "the fd number was reused");
        // Traffic on the reused fd reaches its new owner only.
        let b = corio::spawn(move || {
            let mut buf = [0u8; 3];
            (&second).read_exact(&mut buf).unwrap();
            second.shutdown(Shutdown::Both).unwrap();
            buf
        });
        second_peer.write_all(b"two").unwrap();
        assert_eq!(&b.join().unwrap(), b"two");
        // Had the new socket's readiness reached A, A would have run: it would
        // have returned, or read nothing and parked again. Wait until it is
        // settled either way; it must still be waiting on `other`.
        poll_until("A is parked or finished", || a.is_finished() || a_co.wait_reason() == WaitReason::Io);
        assert!(!a.is_finished(), "A returned without data on its own socket");
        other_peer.write_all(b"three").unwrap();
        assert_eq!(a.join().unwrap(), b"three");
    });
}

/// True once the server side of `peer` has been closed (reads EOF).
fn first_peer_closed(peer: &mut TcpStream) -> bool {
    peer.set_nonblocking(true).unwrap();
    let closed = matches!(peer.read(&mut [0u8; 1]), Ok(0));
    peer.set_nonblocking(false).unwrap();
    closed
}
