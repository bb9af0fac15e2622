//! TCP end to end: echo under concurrency, timeouts, resets, half-close,
//! refused connects, fd reuse, and plain threads talking to coroutines.

mod common;

use common::{pattern, poll_until, spawn_observed, wait_until_parked, within};
use corio::net::{Shutdown, TcpListener, TcpStream};
use corio::WaitReason;
use rand::Rng;
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The echo handler of examples/echo.rs, minus logging.
fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Starts an echo server coroutine; returns its address.
fn start_echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    corio::spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(stream) => {
                    corio::spawn(move || echo(stream));
                }
                Err(err) => panic!("accept failed: {err}"),
            }
        }
    });
    addr
}

#[test]
fn echo_with_a_thousand_concurrent_connections_and_random_sizes() {
    within(2, Duration::from_secs(120), "1,000-connection echo", || {
        let addr = start_echo_server();
        let clients: Vec<_> = (0..1000)
            .map(|conn| {
                corio::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut rng = rand::thread_rng();
                    let mut echoed = 0usize;
                    for index in 0..5 {
                        let len = rng.gen_range(1..=20_000);
                        let msg = pattern(conn, index, len);
                        stream.write_all(&msg).unwrap();
                        let mut back = vec![0u8; len];
                        stream.read_exact(&mut back).unwrap();
                        assert!(back == msg, "conn {conn} message {index}: echoed bytes differ");
                        echoed += len;
                    }
                    echoed
                })
            })
            .collect();
        let total: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        assert!(total > 1000 * 5);
    });
}

#[test]
fn a_read_timeout_fires_and_the_connection_stays_usable() {
    within(2, Duration::from_secs(30), "read timeout", || {
        let addr = start_echo_server();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        assert_eq!(stream.read_timeout().unwrap(), Some(Duration::from_millis(50)));
        let mut buf = [0u8; 16];
        let start = Instant::now();
        let err = stream.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert!(start.elapsed() >= Duration::from_millis(50));
        stream.write_all(b"still here").unwrap();
        stream.read_exact(&mut buf[..10]).unwrap();
        assert_eq!(&buf[..10], b"still here");
        assert_eq!(
            stream.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    });
}

#[test]
fn a_peer_reset_wakes_a_blocked_read_with_an_error() {
    within(2, Duration::from_secs(30), "reset during read", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        let (reader, handle) = spawn_observed(move || {
            let mut buf = [0u8; 64];
            let first = stream.read(&mut buf);
            (first, stream.read(&mut buf))
        });
        wait_until_parked(&reader, WaitReason::Io); // blocked in the read
                                                    // SO_LINGER 0 turns close into a reset.
        socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
        let (first, second) = handle.join().unwrap();
        // Linux reports a reset on an established socket once, as ECONNRESET
        // (the pending socket error), never as EOF or data...
        assert_eq!(first.map_err(|err| err.kind()), Err(ErrorKind::ConnectionReset));
        // ...and the reads after it see the closed receive side: EOF.
        assert_eq!(second.map_err(|err| err.kind()), Ok(0));
    });
}

#[test]
fn writing_to_a_reset_peer_is_broken_pipe_not_sigpipe() {
    within(2, Duration::from_secs(30), "reset during write", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        let (writer, handle) = spawn_observed(move || {
            let chunk = vec![7u8; 64 * 1024];
            // Keep writing until the reset is noticed; the peer never reads.
            for _ in 0..10_000 {
                if let Err(err) = stream.write_all(&chunk) {
                    return err.kind();
                }
            }
            panic!("writes to a reset peer kept succeeding");
        });
        // The socket buffers are full: the writer is blocked in a write.
        wait_until_parked(&writer, WaitReason::Io);
        socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
        let kind = handle.join().unwrap();
        assert!(matches!(kind, ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{kind:?}");
    });
}

#[test]
fn shutdown_write_is_seen_as_eof_and_the_other_half_still_works() {
    within(2, Duration::from_secs(30), "half-close", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = corio::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut all = Vec::new();
            stream.read_to_end(&mut all).unwrap(); // ends at the client's shutdown
            stream.write_all(&all).unwrap(); // the server's write half still works
            all.len()
        });
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(b"request body").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).unwrap();
        assert_eq!(reply, b"request body");
        assert_eq!(server.join().unwrap(), 12);
    });
}

#[test]
fn connecting_to_a_closed_port_is_connection_refused() {
    within(2, Duration::from_secs(30), "refused", || {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        }; // closed again
        let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn connect_timeout_to_a_listener_with_a_full_backlog_times_out() {
    within(2, Duration::from_secs(30), "connect timeout", || {
        // A listener with a full backlog never completes more handshakes:
        // fill it from plain sockets, then a connect must time out.
        let listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        listener.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let mut fillers = Vec::new();
        let mut timed_out = false;
        for _ in 0..64 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                Ok(stream) => fillers.push(stream),
                Err(err) => {
                    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
                    timed_out = true;
                    break;
                }
            }
        }
        assert!(timed_out, "the backlog never filled up");
    });
}

#[test]
fn one_coroutine_reads_while_another_writes_the_same_stream() {
    within(2, Duration::from_secs(30), "split read/write", || {
        let addr = start_echo_server();
        let stream = Arc::new(TcpStream::connect(addr).unwrap());
        let writer = {
            let stream = stream.clone();
            corio::spawn(move || {
                for i in 0..200 {
                    (&*stream).write_all(&pattern(0, i, 1000)).unwrap();
                }
            })
        };
        let mut got = vec![0u8; 200 * 1000];
        (&*stream).read_exact(&mut got).unwrap();
        let expected: Vec<u8> = (0..200).flat_map(|i| pattern(0, i, 1000)).collect();
        assert!(got == expected);
        writer.join().unwrap();
    });
}

#[test]
fn several_coroutines_blocked_reading_one_stream_all_get_served() {
    within(2, Duration::from_secs(30), "concurrent readers", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        let server = Arc::new(server);
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let server = server.clone();
                let (reader, handle) = spawn_observed(move || {
                    let mut byte = [0u8; 1];
                    (&*server).read_exact(&mut byte).unwrap();
                    byte[0]
                });
                wait_until_parked(&reader, WaitReason::Io);
                handle
            })
            .collect();
        // All four are blocked; each byte completes exactly one of them.
        for b in 1..=4u8 {
            (&client).write_all(&[b]).unwrap();
            poll_until(&format!("byte {b} is read"), || {
                readers.iter().filter(|r| r.is_finished()).count() == b as usize
            });
        }
        let mut got: Vec<u8> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, vec![1, 2, 3, 4]);
    });
}

#[test]
fn a_plain_thread_client_talks_to_a_coroutine_server() {
    let runtime = corio::Runtime::builder().workers(2).build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn(move || {
        let addr = start_echo_server();
        tx.send(addr).unwrap();
    });
    let addr = rx.recv().unwrap();
    // corio's TcpStream on a plain thread blocks the thread (poll(2)).
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for i in 0..50 {
        let msg = pattern(9, i, 3000);
        stream.write_all(&msg).unwrap();
        let mut back = vec![0u8; msg.len()];
        stream.read_exact(&mut back).unwrap();
        assert!(back == msg);
    }
    // And a std client works too.
    let mut std_stream = std::net::TcpStream::connect(addr).unwrap();
    std_stream.write_all(b"std").unwrap();
    let mut back = [0u8; 3];
    std_stream.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"std");
}

#[test]
fn a_read_timeout_on_a_plain_thread_is_timed_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
    let err = (&stream).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
}

#[test]
fn data_and_eof_arriving_together_are_both_read_never_a_hang() {
    // After a short read corio waits for the next readiness edge instead of
    // calling recv again; an EOF that came with the data raises no new edge,
    // so this must still read it (netpoll remembers EPOLLRDHUP).
    within(2, Duration::from_secs(60), "data+EOF in one edge", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        for round in 0..200u32 {
            let mut client = TcpStream::connect(addr).unwrap();
            let (stream, _) = listener.accept().unwrap();
            let (reader, handle) = spawn_observed(move || {
                let mut all = Vec::new();
                let mut buf = [0u8; 64];
                loop {
                    let n = (&stream).read(&mut buf).unwrap();
                    if n == 0 {
                        return all;
                    }
                    all.extend_from_slice(&buf[..n]);
                }
            });
            if round % 2 == 0 {
                wait_until_parked(&reader, WaitReason::Io); // the reader parks first
            }
            client.write_all(&round.to_le_bytes()).unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            assert_eq!(handle.join().unwrap(), round.to_le_bytes());
        }
    });
}

/// A connected pair: a corio stream (the side under test) and a std peer
/// driven by a plain thread.
fn stream_pair() -> (TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (stream, _) = listener.accept().unwrap();
    (stream, peer)
}

/// One scripted action of the peer.
type PeerStep = Box<dyn FnOnce(&mut std::net::TcpStream) + Send>;

/// Runs `peer` on a plain thread: it waits for a go-ahead on `go` before each step, and
/// reports each step done on `done` (corio channels work from threads too).
fn scripted_peer(
    mut peer: std::net::TcpStream,
    steps: Vec<PeerStep>,
) -> (corio::chan::Sender<()>, corio::chan::Receiver<()>) {
    let (go_tx, go_rx) = corio::chan::unbounded::<()>();
    let (done_tx, done_rx) = corio::chan::unbounded::<()>();
    std::thread::spawn(move || {
        for step in steps {
            if go_rx.recv().is_err() {
                return;
            }
            step(&mut peer);
            done_tx.send(()).ok();
        }
        let _ = go_rx.recv(); // keep the connection open until the test ends
    });
    (go_tx, done_rx)
}

#[test]
fn a_peek_or_vectored_read_after_a_short_read_does_not_strand_buffered_data() {
    // After a short read corio may skip the next recv and wait for an edge;
    // a peek or vectored read in between consumes that edge without (all)
    // the data, so the following read must go to the socket, not wait.
    within(1, Duration::from_secs(30), "peek/vectored after a short read", || {
        for use_peek in [true, false] {
            let (mut stream, peer) = stream_pair();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let (go, done) = scripted_peer(
                peer,
                vec![
                    Box::new(|p| p.write_all(b"a").unwrap()),
                    Box::new(|p| p.write_all(b"bcdefgh").unwrap()),
                ],
            );
            let mut buf = [0u8; 64];
            go.send(()).unwrap();
            assert_eq!(stream.read(&mut buf).unwrap(), 1, "a short read");
            done.recv().unwrap();
            go.send(()).unwrap();
            if use_peek {
                assert!(stream.peek(&mut buf).unwrap() >= 1);
            } else {
                let mut small = [0u8; 2];
                assert_eq!(stream.read_vectored(&mut [std::io::IoSliceMut::new(&mut small)]).unwrap(), 2);
            }
            done.recv().unwrap();
            let n = stream.read(&mut buf).expect("buffered data is read, not waited for");
            assert!(n >= 1);
        }
    });
}

#[test]
fn a_short_read_at_the_urgent_mark_does_not_strand_the_rest() {
    // Linux ends a read at TCP's urgent mark with data still queued; netpoll
    // records EPOLLPRI so the next read goes to the socket.
    within(1, Duration::from_secs(30), "urgent data", || {
        use std::os::fd::AsRawFd;
        let (mut stream, peer) = stream_pair();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (go, done) = scripted_peer(
            peer,
            vec![
                Box::new(|p| p.write_all(b"0").unwrap()),
                Box::new(|p| {
                    p.write_all(b"hello").unwrap();
                    // SAFETY: sends one byte from a live buffer on an open socket.
                    let sent = unsafe { libc::send(p.as_raw_fd(), b"X".as_ptr().cast(), 1, libc::MSG_OOB) };
                    assert_eq!(sent, 1);
                    p.write_all(b"world").unwrap();
                }),
            ],
        );
        let mut buf = [0u8; 64];
        go.send(()).unwrap();
        assert_eq!(stream.read(&mut buf).unwrap(), 1);
        done.recv().unwrap();
        go.send(()).unwrap();
        done.recv().unwrap();
        let mut got = Vec::new();
        while got.len() < 10 {
            let n = stream.read(&mut buf).expect("data after the urgent mark is read, not waited for");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"helloworld");
    });
}

#[test]
fn readable_waits_for_data_or_eof_and_consumes_nothing() {
    within(1, Duration::from_secs(30), "readable", || {
        let (stream, peer) = stream_pair();
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (go, done) = scripted_peer(
            peer,
            vec![
                Box::new(|p| p.write_all(b"ping").unwrap()),
                Box::new(|p| p.write_all(b"pong").unwrap()),
                Box::new(|p| p.shutdown(Shutdown::Write).unwrap()),
            ],
        );
        let mut buf = [0u8; 64];
        // Nothing queued: it parks until the peer writes.
        let (co, handle) = spawn_observed(move || {
            stream.readable().unwrap();
            stream
        });
        wait_until_parked(&co, WaitReason::Io);
        go.send(()).unwrap();
        let mut stream = handle.join().unwrap();
        done.recv().unwrap();
        assert_eq!(stream.read(&mut buf).unwrap(), 4, "readable consumed nothing");
        assert_eq!(&buf[..4], b"ping");
        // That short read emptied the buffer: it parks again (no syscall)
        // until more comes.
        let (co, handle) = spawn_observed(move || {
            stream.readable().unwrap();
            stream
        });
        wait_until_parked(&co, WaitReason::Io);
        go.send(()).unwrap();
        let mut stream = handle.join().unwrap();
        done.recv().unwrap();
        // Data queued: it returns at once, as often as asked.
        stream.readable().unwrap();
        stream.readable().unwrap();
        assert_eq!(stream.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"pong");
        // End of stream is readable too.
        go.send(()).unwrap();
        done.recv().unwrap();
        stream.readable().unwrap();
        assert_eq!(stream.read(&mut buf).unwrap(), 0);
        drop(go);
    });
}

#[test]
fn readable_times_out_with_the_read_timeout_and_reports_a_reset() {
    within(1, Duration::from_secs(30), "readable timeout", || {
        let (stream, peer) = stream_pair();
        stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        assert_eq!(stream.readable().unwrap_err().kind(), ErrorKind::TimedOut);
        // A reset (SO_LINGER 0, then close) is readable, as an error.
        socket2::SockRef::from(&peer).set_linger(Some(Duration::ZERO)).unwrap();
        drop(peer);
        stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        match stream.readable() {
            Err(err) => assert_eq!(err.kind(), ErrorKind::ConnectionReset),
            Ok(()) => assert_eq!(
                (&stream).read(&mut [0u8; 8]).unwrap_err().kind(),
                ErrorKind::ConnectionReset,
                "readable returned: the read reports the reset"
            ),
        }
    });
}

#[test]
fn readable_on_a_plain_thread_blocks_the_thread_until_data() {
    let (stream, mut peer) = stream_pair();
    let (tid, reader) = common::spawn_thread(move || {
        stream.readable().unwrap();
        let mut buf = [0u8; 8];
        let n = (&stream).read(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    common::wait_until_blocked(tid);
    peer.write_all(b"hi").unwrap();
    assert_eq!(reader.join().unwrap(), b"hi");
}
