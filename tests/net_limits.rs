//! The example echo server (examples/echo.rs, run as a child process) under
//! the limits a real server meets: ten thousand connections at once, and
//! running out of file descriptors in `accept` (EMFILE).

mod common;
#[path = "common/servers.rs"]
mod servers;

use common::{pattern, raise_fd_limit, within};
use corio::net::TcpStream;
use servers::{accept_survives_emfile, start};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn ten_thousand_connections_at_once_all_echo() {
    const CONNS: usize = 10_000;
    let limit = raise_fd_limit();
    assert!(limit as usize > CONNS + 100, "fd limit {limit} too low for this test");
    let server = start("echo", None);
    let addr = server.addr;
    within(2, Duration::from_secs(240), "10,000 connections", move || {
        let connected = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..CONNS)
            .map(|conn| {
                let connected = connected.clone();
                corio::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    connected.fetch_add(1, Ordering::SeqCst);
                    // Hold every connection open until all are connected.
                    while connected.load(Ordering::SeqCst) < CONNS {
                        corio::time::sleep(Duration::from_millis(10));
                    }
                    let msg = pattern(conn, 0, 100);
                    stream.write_all(&msg).unwrap();
                    let mut back = [0u8; 100];
                    stream.read_exact(&mut back).unwrap();
                    assert!(back[..] == msg[..], "conn {conn}: wrong echo");
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
    });
}

#[test]
fn accept_survives_emfile_backs_off_without_spinning_and_recovers() {
    // Room for the runtime's own fds plus 20 connections.
    let server = start("echo", Some(40));
    accept_survives_emfile(&server);
}
