//! examples/tls_echo.rs end to end: 1,000 rustls clients in coroutines (corio's default 64 KiB
//! stack) plus one on a plain thread, random sizes byte-verified; a client sending garbage; a
//! client stalling mid-handshake is dropped by the handshake timeout while others are served.
//! `stack_need` (ignored; run with `--ignored --nocapture`) measures rustls's stack need.

#[path = "common/servers.rs"]
mod servers;
#[path = "common/stack_probe.rs"]
mod stack_probe;

use rand::{rngs::StdRng, Rng, SeedableRng};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use servers::Server;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts tls_echo on a free port with the given handshake timeout; returns it and the path of
/// its certificate.
fn start(handshake_timeout_ms: &str) -> (Server, std::path::PathBuf) {
    let cert =
        std::env::temp_dir().join(format!("corio-tls-test-{}-{:?}.pem", std::process::id(), Instant::now()));
    let mut child = Command::new(servers::example_binary("tls_echo"))
        .args(["127.0.0.1:0", "--workers", "2", "--cert-out"])
        .arg(&cert)
        .env("TLS_ECHO_HANDSHAKE_TIMEOUT_MS", handshake_timeout_ms)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("tls_echo: listening on ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    let stderr = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let lines = stderr.clone();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            lines.lock().push(line);
        }
    });
    (Server { name: "tls_echo", child, addr, stderr }, cert)
}

fn client_config(cert: &std::path::Path) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    Arc::new(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

/// Sends `len` random bytes through `tls` and checks the echo, then closes cleanly (close_notify
/// both ways, then EOF).
fn round_trip<S: Read + Write>(tls: &mut StreamOwned<ClientConnection, S>, len: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    tls.write_all(&data).unwrap();
    tls.flush().unwrap();
    let mut back = vec![0u8; len];
    tls.read_exact(&mut back).unwrap_or_else(|e| panic!("client {seed}: reading {len} bytes back: {e}"));
    assert!(back == data, "client {seed}: echo differs ({len} bytes)");
    tls.conn.send_close_notify();
    tls.flush().unwrap();
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest).unwrap_or_else(|e| panic!("client {seed}: waiting for close_notify: {e}"));
    assert!(rest.is_empty());
}

fn size(rng: &mut StdRng) -> usize {
    // Sizes spread over 1 B ..= 64 KiB on a log scale, so small and large records both occur.
    let bits = rng.gen_range(0..=16);
    rng.gen_range(1..=(1usize << bits)).min(64 << 10)
}

fn coroutine_client(config: Arc<ClientConfig>, addr: std::net::SocketAddr, len: usize, seed: u64) {
    let sock = corio::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    sock.set_nodelay(true).unwrap();
    let conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    round_trip(&mut StreamOwned::new(conn, sock), len, seed);
}

#[test]
fn thousand_clients_round_trip() {
    let (server, cert) = start("10000");
    let config = client_config(&cert);
    let addr = server.addr;

    // One client on a plain thread, through std's TcpStream, to 127.0.0.1 (an IP SAN).
    let plain = {
        let config = config.clone();
        std::thread::spawn(move || {
            let sock = std::net::TcpStream::connect(addr).unwrap();
            sock.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
            let name = ServerName::try_from("127.0.0.1").unwrap();
            let conn = ClientConnection::new(config, name).unwrap();
            round_trip(&mut StreamOwned::new(conn, sock), 64 << 10, 1_000_000);
        })
    };

    // 1,000 coroutine clients with corio's default stack, 100 at a time.
    let runtime = corio::Runtime::builder().workers(2).build().unwrap();
    let mut rng = StdRng::seed_from_u64(42);
    let start = Instant::now();
    let mut total = 0;
    for wave in 0..10u64 {
        let handles: Vec<_> = (0..100u64)
            .map(|i| {
                let (config, len, seed) = (config.clone(), size(&mut rng), wave * 100 + i);
                total += len;
                runtime.spawn(move || coroutine_client(config, addr, len, seed))
            })
            .collect();
        for h in handles {
            h.join().unwrap_or_else(|_| panic!("a client failed; server stderr: {:?}", server.stderr.lock()));
        }
    }
    plain.join().unwrap();
    eprintln!("1,000 TLS clients, {total} bytes echoed, in {:?}", start.elapsed());
    assert!(server.stderr.lock().is_empty(), "server stderr: {:?}", server.stderr.lock());
    let _ = std::fs::remove_file(cert);
}

/// Reads until EOF or reset; fails if the server keeps the connection open past `within`.
fn expect_closed(sock: &mut std::net::TcpStream, within: Duration) -> Vec<u8> {
    sock.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    match sock.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
    got
}

#[test]
fn garbage_and_stalled_handshakes() {
    let (server, cert) = start("500");
    let config = client_config(&cert);

    // Garbage instead of a ClientHello: a TLS alert (record type 21) comes back, then EOF.
    let mut garbage = std::net::TcpStream::connect(server.addr).unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let got = expect_closed(&mut garbage, Duration::from_secs(5));
    assert_eq!(got.first(), Some(&21), "expected an alert record, got {got:?}");

    // Stalled clients: one sends nothing, one half a ClientHello's record header.
    let t0 = Instant::now();
    let mut silent = std::net::TcpStream::connect(server.addr).unwrap();
    let mut partial = std::net::TcpStream::connect(server.addr).unwrap();
    partial.write_all(&[22, 3, 1, 0x02, 0x00, 1]).unwrap();

    // Meanwhile others are served.
    let runtime = corio::Runtime::builder().workers(2).build().unwrap();
    let handles: Vec<_> = (0..20u64)
        .map(|i| {
            let config = config.clone();
            let addr = server.addr;
            runtime.spawn(move || coroutine_client(config, addr, 1000 + i as usize, i))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }

    // The timeout (500 ms) drops both stalled clients.
    expect_closed(&mut silent, Duration::from_secs(5));
    expect_closed(&mut partial, Duration::from_secs(5));
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(400), "closed too early: {waited:?}");
    assert!(waited < Duration::from_secs(4), "closed too late: {waited:?}");

    // And the server still serves.
    runtime.block_on(move || coroutine_client(config, server.addr, 5000, 99));
    let errors = server.stderr.lock().clone();
    assert!(errors.iter().any(|l| l.contains("timed out")), "stderr: {errors:?}");
    let _ = std::fs::remove_file(cert);
}

// ---- Stack measurement ----------------------------------------------------------------------

const PROBE_ENV: &str = "CORIO_TLS_STACK_PROBE";

/// Child mode of `stack_need`: one TLS handshake plus a 64 KiB echo, in-process, with the side
/// named in `CORIO_TLS_STACK_PROBE=side:bytes` on a coroutine of that stack size (the other side
/// gets 1 MiB). An overflow aborts the child; success exits normally.
#[test]
#[ignore]
fn stack_probe_child() {
    let Ok(spec) = std::env::var(PROBE_ENV) else { return };
    let (side, bytes) = spec.split_once(':').unwrap();
    let bytes: usize = bytes.parse().unwrap();
    let (server_stack, client_stack) = if side == "server" { (bytes, 1 << 20) } else { (1 << 20, bytes) };

    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.key_pair.serialize_der()).unwrap();
    let server_config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![ck.cert.der().clone()], key)
            .unwrap(),
    );
    let mut roots = RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let client_config = Arc::new(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth());

    let runtime = corio::Runtime::builder().workers(1).build().unwrap();
    runtime.block_on(move || {
        let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = corio::coroutine::Builder::new()
            .stack_size(server_stack)
            .spawn(move || {
                let (sock, _) = listener.accept().unwrap();
                let conn = rustls::ServerConnection::new(server_config).unwrap();
                let mut tls = StreamOwned::new(conn, sock);
                let mut buf = vec![0u8; 16 << 10];
                loop {
                    match tls.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => tls.write_all(&buf[..n]).unwrap(),
                        Err(e) => panic!("{e}"),
                    }
                }
                tls.conn.send_close_notify();
                tls.conn.complete_io(&mut tls.sock).unwrap();
            })
            .unwrap();
        let client = corio::coroutine::Builder::new()
            .stack_size(client_stack)
            .spawn(move || coroutine_client(client_config, addr, 64 << 10, 7))
            .unwrap();
        client.join().unwrap();
        server.join().unwrap();
    });
}

/// Smallest stack (4 KiB steps) with which a rustls handshake + echo completes, per side.
#[test]
#[ignore]
fn stack_need() {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    for side in ["server", "client"] {
        let need = stack_probe::smallest_stack(PROBE_ENV, side);
        println!("rustls {side} handshake+echo ({profile}): needs {} KiB of stack", need >> 10);
    }
}
