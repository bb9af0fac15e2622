//! Several coroutines waiting on one direction of one socket (issue: "two
//! waiters on one socket direction: the second is never woken").
//!
//! N coroutines block in `recv_from` on one `Arc<UdpSocket>`, in a 1-byte
//! `read` on one `Arc<TcpStream>`, or in `accept` on one `Arc<TcpListener>`;
//! then M arrivals come (datagrams, bytes, connections), followed by one stop
//! marker per waiter. Every waiter must return for each arrival it takes and
//! exit on its stop marker: a waiter left parked while an arrival is queued
//! (the lost wake-up of an edge that stood for two arrivals) hangs the run.
//! The exact reproductions (2 waiters, 2 arrivals, both parked first) run in
//! child processes with a deadline; the proptest varies N, M, the kind, and
//! whether the arrivals come before or after the waiters park.

mod common;

use common::{run_in_child, within};
use corio::coroutine::Coroutine;
use corio::net::{TcpListener, UdpSocket};
use corio::WaitReason;
use proptest::prelude::*;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const STOP: u8 = 0xFF;
const DATA: u8 = 1;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Udp,
    TcpRead,
    Accept,
}

/// What the waiters saw: data arrivals taken, stop markers taken.
fn scenario(kind: Kind, waiters: usize, arrivals: usize, park_first: bool) -> (usize, usize) {
    let data = Arc::new(AtomicUsize::new(0));
    let stops = Arc::new(AtomicUsize::new(0));
    let (data2, stops2) = (data.clone(), stops.clone());
    within(
        2,
        Duration::from_secs(20),
        &format!("{kind:?} x{waiters} waiters, {arrivals} arrivals"),
        move || {
            let (cos_tx, cos_rx) = corio::chan::unbounded::<Coroutine>();
            let (addr, handles, peer): (SocketAddr, Vec<_>, Option<std::net::TcpStream>) = match kind {
                Kind::Udp => {
                    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
                    let addr = socket.local_addr().unwrap();
                    let handles = (0..waiters)
                        .map(|_| {
                            let (socket, cos_tx, data, stops) =
                                (socket.clone(), cos_tx.clone(), data2.clone(), stops2.clone());
                            corio::spawn(move || {
                                cos_tx.send(corio::coroutine::current()).unwrap();
                                let mut buf = [0u8; 16];
                                loop {
                                    let (n, _) = socket.recv_from(&mut buf).unwrap();
                                    assert_eq!(n, 1);
                                    if buf[0] == STOP {
                                        stops.fetch_add(1, Ordering::SeqCst);
                                        return;
                                    }
                                    data.fetch_add(1, Ordering::SeqCst);
                                }
                            })
                        })
                        .collect();
                    (addr, handles, None)
                }
                Kind::TcpRead => {
                    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                    let addr = listener.local_addr().unwrap();
                    // The peer is the plain thread below: it connects, we accept.
                    let (peer_tx, peer_rx) = std::sync::mpsc::channel();
                    std::thread::spawn(move || {
                        let stream = std::net::TcpStream::connect(addr).unwrap();
                        peer_tx.send(stream).unwrap();
                    });
                    let (stream, _) = listener.accept().unwrap();
                    let stream = Arc::new(stream);
                    let peer = peer_rx.recv().unwrap();
                    let peer_addr = peer.local_addr().unwrap();
                    let handles = (0..waiters)
                        .map(|_| {
                            let (stream, cos_tx, data, stops) =
                                (stream.clone(), cos_tx.clone(), data2.clone(), stops2.clone());
                            corio::spawn(move || {
                                cos_tx.send(corio::coroutine::current()).unwrap();
                                let mut byte = [0u8; 1];
                                loop {
                                    assert_eq!((&*stream).read(&mut byte).unwrap(), 1);
                                    if byte[0] == STOP {
                                        stops.fetch_add(1, Ordering::SeqCst);
                                        return;
                                    }
                                    data.fetch_add(1, Ordering::SeqCst);
                                }
                            })
                        })
                        .collect();
                    (peer_addr, handles, Some(peer))
                }
                Kind::Accept => {
                    let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
                    let addr = listener.local_addr().unwrap();
                    let handles = (0..waiters)
                        .map(|_| {
                            let (listener, cos_tx, data, stops) =
                                (listener.clone(), cos_tx.clone(), data2.clone(), stops2.clone());
                            corio::spawn(move || {
                                cos_tx.send(corio::coroutine::current()).unwrap();
                                loop {
                                    let (mut conn, _) = listener.accept().unwrap();
                                    let mut byte = [0u8; 1];
                                    conn.read_exact(&mut byte).unwrap();
                                    if byte[0] == STOP {
                                        stops.fetch_add(1, Ordering::SeqCst);
                                        return;
                                    }
                                    data.fetch_add(1, Ordering::SeqCst);
                                }
                            })
                        })
                        .collect();
                    (addr, handles, None)
                }
            };
            let cos: Vec<Coroutine> = (0..waiters).map(|_| cos_rx.recv().unwrap()).collect();
            if park_first {
                // Every waiter parked (on the socket or in the queue for its turn).
                let start = Instant::now();
                while !cos.iter().all(|c| c.wait_reason() == WaitReason::Io) {
                    assert!(start.elapsed() < Duration::from_secs(10), "the waiters never parked");
                    corio::time::sleep(Duration::from_millis(1));
                }
            }
            let sender = std::thread::spawn(move || {
                let marks = std::iter::repeat_n(DATA, arrivals).chain(std::iter::repeat_n(STOP, waiters));
                match kind {
                    Kind::Udp => {
                        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                        for mark in marks {
                            socket.send_to(&[mark], addr).unwrap();
                        }
                    }
                    Kind::TcpRead => {
                        let mut peer = peer.expect("the TCP peer");
                        let bytes: Vec<u8> = marks.collect();
                        peer.write_all(&bytes).unwrap();
                        peer.set_read_timeout(Some(Duration::from_secs(20)))
                            .and_then(|()| peer.read(&mut [0u8; 1]))
                            .ok(); // keep the connection open until the server side closes
                    }
                    Kind::Accept => {
                        // All connects first, so that several connections
                        // wait in the backlog before an acceptor runs.
                        let conns: Vec<_> =
                            marks.map(|mark| (std::net::TcpStream::connect(addr).unwrap(), mark)).collect();
                        for (mut conn, mark) in conns {
                            conn.write_all(&[mark]).unwrap();
                        }
                    }
                }
            });
            for handle in handles {
                handle.join().unwrap();
            }
            sender.join().unwrap();
        },
    );
    (data.load(Ordering::SeqCst), stops.load(Ordering::SeqCst))
}

fn check(kind: Kind, waiters: usize, arrivals: usize, park_first: bool) {
    let (data, stops) = scenario(kind, waiters, arrivals, park_first);
    assert_eq!(data, arrivals, "{kind:?}: every arrival consumed");
    assert_eq!(stops, waiters, "{kind:?}: every waiter returned");
}

#[test]
fn two_udp_waiters_both_get_a_datagram() {
    run_in_child("child_two_udp_waiters", Duration::from_secs(30));
}

#[test]
fn two_tcp_readers_both_get_a_byte() {
    run_in_child("child_two_tcp_readers", Duration::from_secs(30));
}

#[test]
fn two_acceptors_both_get_a_connection() {
    run_in_child("child_two_acceptors", Duration::from_secs(30));
}

#[test]
#[ignore = "run by two_udp_waiters_both_get_a_datagram in a child process"]
fn child_two_udp_waiters() {
    check(Kind::Udp, 2, 0, true);
}

#[test]
#[ignore = "run by two_tcp_readers_both_get_a_byte in a child process"]
fn child_two_tcp_readers() {
    check(Kind::TcpRead, 2, 0, true);
}

#[test]
#[ignore = "run by two_acceptors_both_get_a_connection in a child process"]
fn child_two_acceptors() {
    check(Kind::Accept, 2, 0, true);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn n_waiters_m_arrivals_all_consumed(
        kind in prop_oneof![Just(Kind::Udp), Just(Kind::TcpRead), Just(Kind::Accept)],
        waiters in 1usize..6,
        arrivals in 0usize..24,
        park_first in any::<bool>(),
    ) {
        check(kind, waiters, arrivals, park_first);
    }
}
