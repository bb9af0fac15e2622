//! The HTTP, TLS and WebSocket example servers on ONE runtime at once, under
//! load from coroutine clients on the same runtime; every byte is checked.
//! The examples are included as modules so their own accept loops run here.
// Each example includes examples/shared/ itself: three copies here, on purpose.
#![allow(clippy::duplicate_mod)]

#[path = "../examples/http.rs"]
#[allow(dead_code, unused_imports)]
mod http_example;
#[path = "../examples/tls_echo.rs"]
#[allow(dead_code, unused_imports)]
mod tls_example;
#[path = "../examples/ws_echo.rs"]
#[allow(dead_code, unused_imports)]
mod ws_example;

use corio::net::{TcpListener, TcpStream};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, StreamOwned};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(20);

/// Deterministic test bytes.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn http_client(addr: std::net::SocketAddr, seed: u64) {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    for i in 0..10u64 {
        let body = bytes(seed * 100 + i, 1 + (seed as usize * 37 + i as usize * 101) % 4000);
        let request = format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len());
        writer.write_all(request.as_bytes()).unwrap();
        writer.write_all(&body).unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");
        let mut len = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut echoed = vec![0u8; len];
        reader.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, body, "http echo {seed}/{i}");
    }
}

fn tls_client(config: Arc<ClientConfig>, addr: std::net::SocketAddr, seed: u64) {
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    let conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, sock);
    let data = bytes(seed, 1 + (seed as usize * 7919) % 30_000);
    tls.write_all(&data).unwrap();
    let mut echoed = vec![0u8; data.len()];
    tls.read_exact(&mut echoed).unwrap();
    assert_eq!(echoed, data, "tls echo {seed}");
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

fn ws_client(addr: std::net::SocketAddr, seed: u64) {
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/"), sock).unwrap();
    for i in 0..5u64 {
        let data = bytes(seed * 10 + i, 1 + (seed as usize * 131 + i as usize * 977) % 20_000);
        ws.send(tungstenite::Message::binary(data.clone())).unwrap();
        match ws.read().unwrap() {
            tungstenite::Message::Binary(echoed) => {
                assert_eq!(echoed.as_slice(), &data[..], "ws echo {seed}/{i}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let _ = ws.close(None);
}

#[test]
fn http_tls_and_websocket_servers_share_one_runtime_under_load() {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = corio::Runtime::builder().workers(2).build().unwrap();
        runtime.block_on(|| {
            // HTTP.
            let http = TcpListener::bind("127.0.0.1:0").unwrap();
            let http_addr = http.local_addr().unwrap();
            let config = Arc::new(http_example::Config {
                static_dir: None,
                header_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(60),
                write_timeout: Duration::from_secs(30),
                stopping: AtomicBool::new(false),
            });
            corio::spawn(move || http_example::accept_loop(http, config, Arc::new(AtomicUsize::new(0))));
            // TLS, with a certificate made here.
            let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
            let cert = CertificateDer::from(certified.cert.der().to_vec());
            let key = PrivateKeyDer::try_from(certified.key_pair.serialize_der()).unwrap();
            let server_config = ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![cert.clone()], key)
                .unwrap();
            let tls = TcpListener::bind("127.0.0.1:0").unwrap();
            let tls_addr = tls.local_addr().unwrap();
            corio::spawn(move || tls_example::serve(tls, Arc::new(server_config)));
            let mut roots = RootCertStore::empty();
            roots.add(cert).unwrap();
            let client_config =
                Arc::new(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth());
            // WebSocket.
            let ws = TcpListener::bind("127.0.0.1:0").unwrap();
            let ws_addr = ws.local_addr().unwrap();
            corio::spawn(move || ws_example::serve(ws));
            // Load: all three at once, from coroutines of the same runtime.
            let mut clients = Vec::new();
            for seed in 1..=60u64 {
                clients.push(corio::spawn(move || http_client(http_addr, seed)));
                let config = client_config.clone();
                // rustls needs more than the default stack in debug builds
                // (measured 48-52 KiB; see docs/guide.md): give it room.
                clients.push(
                    corio::coroutine::Builder::new()
                        .stack_size(128 << 10)
                        .spawn(move || tls_client(config, tls_addr, seed))
                        .unwrap(),
                );
                clients.push(
                    corio::coroutine::Builder::new()
                        .stack_size(128 << 10)
                        .spawn(move || ws_client(ws_addr, seed))
                        .unwrap(),
                );
            }
            for client in clients {
                client.join().expect("a client failed");
            }
        });
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the three servers did not finish under load in time");
}
