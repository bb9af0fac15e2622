//! examples/ws_echo.rs end to end with tungstenite's client: 1,000 connections from coroutines
//! (corio's default 64 KiB stack, 200 at a time) echoing text and binary with a ping; a
//! fragmented message with a ping between its fragments; a 1 MiB message; clients that vanish
//! without a close frame (the server closes their sockets and keeps serving).
//! `stack_need` (ignored; run with `--ignored --nocapture`) measures tungstenite's stack need.

#[path = "common/servers.rs"]
mod servers;
#[path = "common/stack_probe.rs"]
mod stack_probe;

use rand::{rngs::StdRng, Rng, SeedableRng};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::{Error, Message, WebSocket};

const READ_TIMEOUT: Duration = Duration::from_secs(10);

fn connect_corio(addr: SocketAddr) -> WebSocket<corio::net::TcpStream> {
    let sock = corio::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    sock.set_nodelay(true).unwrap();
    tungstenite::client(format!("ws://{addr}/"), sock).unwrap_or_else(|e| panic!("handshake: {e}")).0
}

fn connect_std(addr: SocketAddr) -> WebSocket<std::net::TcpStream> {
    let sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    tungstenite::client(format!("ws://{addr}/"), sock).unwrap_or_else(|e| panic!("handshake: {e}")).0
}

/// The next data or pong message (skipping nothing else: the server sends only those).
fn next<S: Read + Write>(ws: &mut WebSocket<S>) -> Message {
    ws.read().unwrap_or_else(|e| panic!("reading the echo: {e}"))
}

/// Sends a close frame and reads until the server's reply ends the connection.
fn close<S: Read + Write>(mut ws: WebSocket<S>) {
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Ok(Message::Pong(_)) => {}
            Ok(other) => panic!("unexpected message while closing: {other:?}"),
            Err(Error::ConnectionClosed) => return,
            Err(e) => panic!("closing: {e}"),
        }
    }
}

fn session<S: Read + Write>(mut ws: WebSocket<S>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let len = rng.gen_range(1..=4096);
    let text: String = (0..len).map(|_| rng.gen_range('a'..='z')).collect();
    ws.send(Message::Text(text.clone())).unwrap();
    assert_eq!(next(&mut ws), Message::Text(text));
    let bin: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    ws.send(Message::Binary(bin.clone())).unwrap();
    assert_eq!(next(&mut ws), Message::Binary(bin));
    ws.send(Message::Ping(seed.to_be_bytes().to_vec())).unwrap();
    assert_eq!(next(&mut ws), Message::Pong(seed.to_be_bytes().to_vec()));
    close(ws);
}

#[test]
fn thousand_connections() {
    let server = servers::start("ws_echo", None);
    let addr = server.addr;
    let plain = std::thread::spawn(move || session(connect_std(addr), 1_000_000));
    let runtime = corio::Runtime::builder().workers(2).build().unwrap();
    let start = Instant::now();
    for wave in 0..5u64 {
        let handles: Vec<_> = (0..200u64)
            .map(|i| runtime.spawn(move || session(connect_corio(addr), wave * 200 + i)))
            .collect();
        for h in handles {
            h.join().unwrap_or_else(|_| panic!("a client failed; server stderr: {:?}", server.stderr.lock()));
        }
    }
    plain.join().unwrap();
    eprintln!("1,000 WebSocket sessions in {:?}", start.elapsed());
    assert!(server.stderr.lock().is_empty(), "server stderr: {:?}", server.stderr.lock());
}

#[test]
fn fragmented_and_large_messages() {
    let server = servers::start("ws_echo", None);
    let addr = server.addr;
    let runtime = corio::Runtime::builder().workers(2).build().unwrap();
    runtime.block_on(move || {
        let mut ws = connect_corio(addr);
        // A text message in five fragments, with a ping between two of them.
        let parts = ["Hello, ", "frag", "mented ", "wörld", "!"];
        for (i, part) in parts.iter().enumerate() {
            let opcode = if i == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
            ws.write(Message::Frame(Frame::message(part.as_bytes().to_vec(), opcode, i == parts.len() - 1)))
                .unwrap();
            if i == 2 {
                ws.write(Message::Ping(b"mid".to_vec())).unwrap();
            }
        }
        ws.flush().unwrap();
        assert_eq!(next(&mut ws), Message::Pong(b"mid".to_vec()));
        assert_eq!(next(&mut ws), Message::Text(parts.concat()));

        // A binary message in 64 fragments of 1 KiB.
        let data: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
        for (i, chunk) in data.chunks(1024).enumerate() {
            let opcode = if i == 0 { OpCode::Data(Data::Binary) } else { OpCode::Data(Data::Continue) };
            ws.write(Message::Frame(Frame::message(chunk.to_vec(), opcode, i == 63))).unwrap();
        }
        ws.flush().unwrap();
        assert_eq!(next(&mut ws), Message::Binary(data));

        // 1 MiB in one message, both kinds.
        let mut rng = StdRng::seed_from_u64(3);
        let big: Vec<u8> = (0..1 << 20).map(|_| rng.gen()).collect();
        ws.send(Message::Binary(big.clone())).unwrap();
        assert!(next(&mut ws) == Message::Binary(big), "1 MiB binary echo differs");
        let big_text: String = (0..1 << 20).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        ws.send(Message::Text(big_text.clone())).unwrap();
        assert!(next(&mut ws) == Message::Text(big_text), "1 MiB text echo differs");
        close(ws);
    });
    assert!(server.stderr.lock().is_empty(), "server stderr: {:?}", server.stderr.lock());
}

fn open_fds(server: &servers::Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.child.id())).unwrap().count()
}

#[test]
fn vanishing_clients() {
    let server = servers::start("ws_echo", None);
    let addr = server.addr;
    // A served connection first, so every lazily opened fd of the server exists.
    session(connect_std(addr), 0);
    let baseline = open_fds(&server);

    let mut socks = Vec::new();
    for i in 0..60u64 {
        let mut ws = connect_std(addr);
        ws.send(Message::Text(format!("msg {i}"))).unwrap();
        assert_eq!(next(&mut ws), Message::Text(format!("msg {i}")));
        match i % 3 {
            0 => drop(ws), // gone after a message, no close frame
            1 => {
                // gone in the middle of a frame: a header announcing 100 bytes, then 10
                let mut sock = ws.into_inner_for_test();
                sock.write_all(&[0x82, 0x80 | 100, 1, 2, 3, 4]).unwrap();
                sock.write_all(&[0; 10]).unwrap();
                socks.push(sock);
            }
            _ => socks.push(ws.into_inner_for_test()), // idle, closed below
        }
    }
    assert!(open_fds(&server) > baseline, "the server should hold some connections now");
    drop(socks);

    // The server ends those coroutines and closes their sockets.
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds(&server) > baseline {
        assert!(
            Instant::now() < deadline,
            "server still holds {} fds (baseline {baseline})",
            open_fds(&server)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // And still serves.
    session(connect_std(addr), 7);
}

trait IntoInner {
    fn into_inner_for_test(self) -> std::net::TcpStream;
}

impl IntoInner for WebSocket<std::net::TcpStream> {
    fn into_inner_for_test(self) -> std::net::TcpStream {
        self.get_ref().try_clone().unwrap()
    }
}

// ---- Stack measurement ----------------------------------------------------------------------

const PROBE_ENV: &str = "CORIO_WS_STACK_PROBE";

/// Child mode of `stack_need`: a WebSocket upgrade, a 64 KiB binary echo, a ping, a close, with
/// the side named in `CORIO_WS_STACK_PROBE=side:bytes` on a coroutine of that stack size.
#[test]
#[ignore]
fn stack_probe_child() {
    let Ok(spec) = std::env::var(PROBE_ENV) else { return };
    let (side, bytes) = spec.split_once(':').unwrap();
    let bytes: usize = bytes.parse().unwrap();
    let (server_stack, client_stack) = if side == "server" { (bytes, 1 << 20) } else { (1 << 20, bytes) };
    let runtime = corio::Runtime::builder().workers(1).build().unwrap();
    runtime.block_on(move || {
        let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = corio::coroutine::Builder::new()
            .stack_size(server_stack)
            .spawn(move || {
                let (sock, _) = listener.accept().unwrap();
                let mut ws = tungstenite::accept(sock).unwrap();
                loop {
                    match ws.read() {
                        Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m).unwrap(),
                        Ok(_) => {}
                        Err(Error::ConnectionClosed) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
            .unwrap();
        let client = corio::coroutine::Builder::new()
            .stack_size(client_stack)
            .spawn(move || {
                let mut ws = connect_corio(addr);
                let data = vec![5u8; 64 << 10];
                ws.send(Message::Binary(data.clone())).unwrap();
                assert_eq!(next(&mut ws), Message::Binary(data));
                ws.send(Message::Ping(vec![1])).unwrap();
                assert_eq!(next(&mut ws), Message::Pong(vec![1]));
                close(ws);
            })
            .unwrap();
        client.join().unwrap();
        server.join().unwrap();
    });
}

/// Smallest stack (4 KiB steps) with which the session completes, per side.
#[test]
#[ignore]
fn stack_need() {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    for side in ["server", "client"] {
        let need = stack_probe::smallest_stack(PROBE_ENV, side);
        println!("tungstenite {side} upgrade+echo+close ({profile}): needs {} KiB of stack", need >> 10);
    }
}
