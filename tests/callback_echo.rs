//! The two echo servers, examples/echo.rs (a coroutine per connection) and
//! examples/echo_callback.rs (corio-reactor event loops), run as child processes through the
//! same end-to-end tests: byte-verified echo over 1,000 concurrent connections, and a client
//! that writes far more than it reads, which must not grow the server's memory without bound
//! (back-pressure) and must get every byte back once it reads. Plus the callback acceptor's
//! EMFILE back-off (the coroutine echo's is tested in net_limits.rs).

mod common;
#[path = "common/servers.rs"]
mod servers;

use common::{pattern, raise_fd_limit, within};
use servers::{accept_survives_emfile, start, Server};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVERS: [&str; 2] = ["echo", "echo_callback"];

fn echo_thousand_connections(server: &Server) {
    const CONNS: usize = 1000;
    const SIZES: [usize; 5] = [1, 64, 1000, 16 * 1024, 40_000];
    let (addr, name) = (server.addr, server.name);
    within(2, Duration::from_secs(120), "1,000 echo connections", move || {
        let all_connected = Arc::new(corio::sync::Barrier::new(CONNS));
        let clients: Vec<_> = (0..CONNS)
            .map(|conn| {
                let all_connected = all_connected.clone();
                corio::spawn(move || {
                    let mut stream = corio::net::TcpStream::connect(addr).unwrap();
                    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    all_connected.wait(); // all 1,000 are open at once
                    for (index, size) in SIZES.into_iter().enumerate() {
                        let msg = pattern(conn, index, size);
                        stream.write_all(&msg).unwrap();
                        let mut back = vec![0u8; size];
                        stream.read_exact(&mut back).unwrap();
                        assert!(back == msg, "{name}: conn {conn} message {index}: wrong echo");
                    }
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
    });
}

#[test]
fn thousand_connections_echo_byte_verified_on_both_servers() {
    assert!(raise_fd_limit() > 1100, "fd limit too low for 1,000 connections");
    for name in SERVERS {
        echo_thousand_connections(&start(name, None));
    }
}

/// Byte `i` of the slow reader's stream (period 251: misordered or lost chunks show).
fn stream_byte(i: usize) -> u8 {
    (i % 251) as u8
}

fn slow_reader(server: &Server) {
    const TOTAL: usize = 128 << 20;
    const CHUNK: usize = 64 * 1024;
    const MAX_GROWTH_KIB: u64 = 32 * 1024;
    let name = server.name;
    let stream = std::net::TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let rss_before = server.rss_kib();
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (mut stream, written) = (stream.try_clone().unwrap(), written.clone());
        std::thread::spawn(move || {
            let mut chunk = vec![0u8; CHUNK];
            for start in (0..TOTAL).step_by(CHUNK) {
                chunk.iter_mut().enumerate().for_each(|(i, b)| *b = stream_byte(start + i));
                stream.write_all(&chunk).unwrap();
                written.fetch_add(CHUNK, Ordering::SeqCst);
            }
        })
    };
    // Write without reading until the writer is stuck: the server stopped reading us (or,
    // without back-pressure, buffered all of it, which the RSS check below catches).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut last, mut since) = (usize::MAX, Instant::now());
    while since.elapsed() < Duration::from_millis(300) && written.load(Ordering::SeqCst) < TOTAL {
        assert!(Instant::now() < deadline, "{name}: the writer never stalled");
        let now = written.load(Ordering::SeqCst);
        if now != last {
            (last, since) = (now, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stalled_at = written.load(Ordering::SeqCst);
    let growth = server.rss_kib().saturating_sub(rss_before);
    assert!(
        growth < MAX_GROWTH_KIB,
        "{name}: RSS grew by {growth} KiB while a client wrote {stalled_at} bytes without reading"
    );
    assert!(stalled_at < TOTAL, "{name}: accepted all {TOTAL} bytes without the client reading");
    // Now read: everything comes back, in order, and the writer finishes.
    let mut reader = stream;
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0;
    while received < TOTAL {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0, "{name}: EOF after {received} bytes");
        for (i, &b) in buf[..n].iter().enumerate() {
            assert_eq!(b, stream_byte(received + i), "{name}: byte {} differs", received + i);
        }
        received += n;
    }
    writer.join().unwrap();
    let growth = server.rss_kib().saturating_sub(rss_before);
    assert!(growth < MAX_GROWTH_KIB, "{name}: RSS grew by {growth} KiB after the echo drained");
}

#[test]
fn a_client_that_does_not_read_cannot_grow_server_memory_on_either_server() {
    for name in SERVERS {
        slow_reader(&start(name, None));
    }
}

#[test]
fn callback_acceptor_survives_emfile_backs_off_and_recovers() {
    // Room for the server's own fds plus a couple of dozen connections.
    let server = start("echo_callback", Some(40));
    accept_survives_emfile(&server);
}
