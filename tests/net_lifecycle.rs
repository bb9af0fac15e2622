//! Sockets across runtimes, clones and shutdown: a socket follows the runtime
//! it is used in, `try_clone`d handles share their timeouts (as std's share
//! the kernel socket's), and socket I/O in destructors run by the shutdown
//! unwind gives up with an error std's helpers do not retry.

mod common;

use common::{run_in_child, within};
use corio::net::{TcpListener, TcpStream};
use corio::WaitReason;
use std::io::{BufWriter, ErrorKind, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A connected pair: (corio stream, std peer).
fn pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (stream, _) = listener.accept().unwrap();
    (stream, peer)
}

/// Polls (bounded) until `co` is parked on a socket.
fn until_parked_on_io(co: &corio::coroutine::Coroutine) {
    let start = Instant::now();
    while co.wait_reason() != WaitReason::Io {
        assert!(start.elapsed() < Duration::from_secs(10), "the reader never parked");
        corio::time::sleep(Duration::from_millis(1));
    }
}

/// Reads one byte in a coroutine that is parked before `peer` writes it, so
/// the read really waits on netpoll (and registers the socket).
fn read_after_a_wait(stream: TcpStream, mut peer: std::net::TcpStream) -> (TcpStream, std::net::TcpStream) {
    let (co_tx, co_rx) = corio::chan::bounded(1);
    let reader = corio::spawn(move || {
        co_tx.send(corio::coroutine::current()).unwrap();
        let mut byte = [0u8; 1];
        (&stream).read_exact(&mut byte).unwrap();
        assert_eq!(byte[0], 7);
        stream
    });
    until_parked_on_io(&co_rx.recv().unwrap());
    peer.write_all(&[7]).unwrap();
    (reader.join().unwrap(), peer)
}

#[test]
fn a_socket_that_waited_in_one_runtime_wakes_in_the_next() {
    let (stream, peer) = corio::run(|| {
        let (stream, peer) = pair();
        read_after_a_wait(stream, peer)
    });
    // Before the fix the socket stayed registered with the first runtime's
    // poller, which nobody polls any more: the read below never woke. The
    // read timeout turns that hang into a failure.
    within(2, Duration::from_secs(30), "a socket used in a second runtime", move || {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        read_after_a_wait(stream, peer);
    });
}

#[test]
fn a_timeout_set_after_try_clone_reaches_the_clone() {
    within(2, Duration::from_secs(30), "timeout after try_clone", || {
        let (stream, _peer) = pair();
        let clone = stream.try_clone().unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        assert_eq!(clone.read_timeout().unwrap(), Some(Duration::from_millis(50)));
        let err = (&clone).read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        clone.set_read_timeout(None).unwrap();
        assert_eq!(stream.read_timeout().unwrap(), None, "and back: one setting for both");
    });
}

#[test]
fn nonblocking_mode_is_shared_by_clones_too() {
    within(2, Duration::from_secs(30), "set_nonblocking after try_clone", || {
        let (stream, _peer) = pair();
        let clone = stream.try_clone().unwrap();
        stream.set_nonblocking(true).unwrap();
        let err = (&clone).read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
    });
}

static GAVE_UP: AtomicUsize = AtomicUsize::new(0);

/// Fills the socket's send path until a write would block.
fn fill(stream: &TcpStream) {
    stream.set_nonblocking(true).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match (&*stream).write(&chunk) {
            Ok(_) => continue,
            Err(err) if err.kind() == ErrorKind::WouldBlock => break,
            Err(err) => panic!("filling the socket: {err}"),
        }
    }
    stream.set_nonblocking(false).unwrap();
}

struct WritesAllOnDrop(TcpStream);
impl Drop for WritesAllOnDrop {
    fn drop(&mut self) {
        let err = self.0.write_all(&vec![1u8; 1 << 20]).unwrap_err();
        assert!(corio::is_cancelled_error(&err), "write_all: {err}");
        assert_ne!(err.kind(), ErrorKind::Interrupted);
        GAVE_UP.fetch_add(1, Ordering::SeqCst);
    }
}

struct ReadsExactOnDrop(TcpStream);
impl Drop for ReadsExactOnDrop {
    fn drop(&mut self) {
        let err = self.0.read_exact(&mut [0u8; 16]).unwrap_err();
        assert!(corio::is_cancelled_error(&err), "read_exact: {err}");
        GAVE_UP.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn socket_io_in_destructors_at_shutdown_gives_up() {
    run_in_child("child_socket_io_in_destructors_at_shutdown", Duration::from_secs(60));
}

#[test]
#[ignore = "run by socket_io_in_destructors_at_shutdown_gives_up in a child process"]
fn child_socket_io_in_destructors_at_shutdown() {
    let peers = corio::run(|| {
        let mut peers = Vec::new();
        let mut parked = Vec::new();
        for kind in 0..3 {
            let (stream, peer) = pair();
            peers.push(peer);
            let (co_tx, co_rx) = corio::chan::bounded(1);
            corio::spawn(move || {
                match kind {
                    0 => {
                        fill(&stream);
                        let _guard = WritesAllOnDrop(stream);
                        co_tx.send(corio::coroutine::current()).unwrap();
                        loop {
                            corio::coroutine::park();
                        }
                    }
                    1 => {
                        let _guard = ReadsExactOnDrop(stream);
                        co_tx.send(corio::coroutine::current()).unwrap();
                        loop {
                            corio::coroutine::park();
                        }
                    }
                    _ => {
                        // A BufWriter over a full socket, dropped by the unwind:
                        // its flush must give up, not retry for ever.
                        fill(&stream);
                        let mut writer = BufWriter::with_capacity(1 << 16, stream);
                        writer.write_all(&[2u8; 1000]).unwrap();
                        co_tx.send(corio::coroutine::current()).unwrap();
                        loop {
                            corio::coroutine::park();
                        }
                    }
                }
            });
            parked.push(co_rx.recv().unwrap());
        }
        let start = Instant::now();
        while !parked.iter().all(|co| co.wait_reason() == WaitReason::Park) {
            assert!(start.elapsed() < Duration::from_secs(10));
            corio::time::sleep(Duration::from_millis(1));
        }
        peers
    });
    assert_eq!(GAVE_UP.load(Ordering::SeqCst), 2, "both destructors ran and got the cancellation error");
    drop(peers);
}

#[test]
fn bind_with_takes_any_address_form_as_bind_does() {
    within(1, Duration::from_secs(30), "bind_with", || {
        let listener = TcpListener::bind_with("127.0.0.1:0", 16, false).unwrap();
        assert!(listener.local_addr().unwrap().ip().is_loopback());
        let listener = TcpListener::bind_with(("127.0.0.1", 0), 16, true).unwrap();
        assert!(listener.local_addr().unwrap().port() != 0);
    });
}

#[test]
fn run_and_block_on_accept_borrowing_closures() {
    let words: Vec<&str> = "a b c".split(' ').collect();
    let mut seen = 0;
    let n = corio::run(|| {
        seen = words.len();
        words.iter().map(|w| w.len()).sum::<usize>()
    });
    assert_eq!((n, seen), (3, 3));
    let runtime = corio::Runtime::builder().workers(1).build().unwrap();
    let text = String::from("borrowed");
    assert_eq!(runtime.block_on(|| text.as_str().len()), 8);
}
