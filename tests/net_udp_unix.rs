//! UDP and Unix-domain round trips, in coroutines and on plain threads.

mod common;

use common::{pattern, within};
use corio::net::unix::{UnixListener, UnixStream};
use corio::net::UdpSocket;
use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

#[test]
fn udp_round_trips_between_coroutines() {
    within(2, Duration::from_secs(30), "udp", || {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let echo = corio::spawn(move || {
            let mut buf = [0u8; 2048];
            for _ in 0..100 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                server.send_to(&buf[..n], from).unwrap();
            }
        });
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(addr).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for i in 0..100 {
            let msg = pattern(1, i, 1 + i * 10);
            client.send(&msg).unwrap();
            let mut buf = [0u8; 2048];
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &msg[..]);
        }
        echo.join().unwrap();
    });
}

#[test]
fn udp_recv_timeout_is_timed_out() {
    within(1, Duration::from_secs(30), "udp timeout", || {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        let err = socket.recv_from(&mut [0u8; 16]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
    });
}

#[test]
fn unix_stream_round_trips_through_a_listener() {
    let dir = std::env::temp_dir().join(format!("corio-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let _ = std::fs::remove_file(&path);
    within(2, Duration::from_secs(30), "unix", move || {
        let listener = UnixListener::bind(&path).unwrap();
        corio::spawn(move || {
            for stream in listener.incoming().take(3) {
                let mut stream = stream.unwrap();
                corio::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => stream.write_all(&buf[..n]).unwrap(),
                        }
                    }
                });
            }
        });
        let clients: Vec<_> = (0..3)
            .map(|c| {
                let path = path.clone();
                corio::spawn(move || {
                    let mut stream = UnixStream::connect(&path).unwrap();
                    for i in 0..20 {
                        let msg = pattern(c, i, 3000);
                        stream.write_all(&msg).unwrap();
                        let mut back = vec![0u8; msg.len()];
                        stream.read_exact(&mut back).unwrap();
                        assert!(back == msg);
                    }
                })
            })
            .collect();
        clients.into_iter().for_each(|c| c.join().unwrap());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    });
}

#[test]
fn unix_pair_works_between_a_coroutine_and_a_plain_thread() {
    let runtime = corio::Runtime::builder().workers(1).build().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let handle = runtime.spawn(move || {
        let mut a = a;
        let mut buf = [0u8; 5];
        a.read_exact(&mut buf).unwrap();
        a.write_all(&buf).unwrap();
    });
    b.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    b.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    handle.join().unwrap();
}
