//! `examples/graceful.rs`: on SIGTERM the server stops accepting, lets an
//! open connection finish its exchange, and exits 0.

#[path = "common/servers.rs"]
mod servers;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn sigterm_stops_accepting_drains_and_exits_zero() {
    let mut server = servers::start("graceful", None);
    let mut client = TcpStream::connect(server.addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    client.write_all(b"before\n").unwrap();
    let mut buf = [0u8; 7];
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"before\n");
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM) };
    // The server says it is draining; the open connection still echoes.
    let start = Instant::now();
    while !server.stderr.lock().iter().any(|l| l.contains("draining")) {
        assert!(start.elapsed() < Duration::from_secs(10), "no drain message: {:?}", server.stderr.lock());
        std::thread::sleep(Duration::from_millis(5));
    }
    client.write_all(b"during\n").unwrap();
    client.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"during\n");
    // New connections are refused once the listener is gone.
    let start = Instant::now();
    while TcpStream::connect(server.addr).is_ok() {
        assert!(start.elapsed() < Duration::from_secs(10), "still accepting");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(client); // the connection finishes: the server exits
    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the server did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "exit status {status}: {:?}", server.stderr.lock());
}
