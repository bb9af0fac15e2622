//! A TLS echo server: rustls over `corio::net::TcpStream`, one coroutine per connection, plain
//! blocking code (`rustls::StreamOwned` is a `Read + Write` like any other stream).
//!
//! ```sh
//! cargo run --release --example tls_echo -- [ADDR] [--workers N] [--cert-out PATH]
//! cargo run --release --example tls_echo -- [ADDR] --cert cert.pem --key key.pem
//! openssl s_client -connect 127.0.0.1:7443 -CAfile PATH     # type lines, see them echoed
//! ```
//!
//! Without `--cert`/`--key` a self-signed certificate for `localhost` and `127.0.0.1` is made at
//! start-up (rcgen) and its PEM written to `--cert-out PATH` (default: a file in the temporary
//! directory), so clients can trust it; the path is printed on the first line after the address.
//!
//! A client has `TLS_ECHO_HANDSHAKE_TIMEOUT_MS` (default 5000) to finish its handshake, or it
//! is dropped; a client sending something other than a ClientHello gets a TLS alert and its
//! connection is closed. Either way the server keeps serving everyone else.

#[path = "shared/mod.rs"]
mod shared;

use corio::net::{TcpListener, TcpStream};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BUF_SIZE: usize = 16 * 1024;

/// Stack of a connection coroutine. Measured (tests/tls.rs, `stack_need`; ECDSA P-256
/// certificate, TLS 1.3): a handshake plus echo needs 52 KiB in debug builds and at most 16 KiB
/// in release. 52 KiB fits corio's 64 KiB default with little margin, and other paths (an RSA
/// key given with --cert/--key, TLS 1.2, other cipher suites) may need more, so connections get
/// 128 KiB: only touched pages cost memory, so release builds lose nothing by it.
const CONN_STACK: usize = 128 * 1024;

struct Args {
    addr: String,
    workers: Option<usize>,
    cert: Option<String>,
    key: Option<String>,
    cert_out: Option<String>,
}

fn parse_args() -> Args {
    let usage = "usage: tls_echo [ADDR] [--workers N] [--cert PEM --key PEM | --cert-out PATH]   \
                 (default 127.0.0.1:7443)";
    let fail = |why: &str| -> ! {
        eprintln!("tls_echo: {why}\n{usage}");
        std::process::exit(2);
    };
    let mut parsed =
        Args { addr: "127.0.0.1:7443".into(), workers: None, cert: None, key: None, cert_out: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match arg.as_str() {
            "--workers" => match value("--workers").parse().ok().filter(|&n| n > 0) {
                Some(n) => parsed.workers = Some(n),
                None => fail("--workers needs a positive number"),
            },
            "--addr" => parsed.addr = value("--addr"),
            "--cert" => parsed.cert = Some(value("--cert")),
            "--key" => parsed.key = Some(value("--key")),
            "--cert-out" => parsed.cert_out = Some(value("--cert-out")),
            "-h" | "--help" => {
                println!("{usage}");
                std::process::exit(0);
            }
            other if !other.starts_with('-') => parsed.addr = other.to_string(),
            other => fail(&format!("unknown flag {other}")),
        }
    }
    if parsed.cert.is_some() != parsed.key.is_some() {
        fail("--cert and --key go together");
    }
    parsed
}

/// The certificate chain and key: read from `--cert`/`--key`, or made now and written out.
fn identity(
    args: &Args,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, Option<String>), String> {
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        let certs = CertificateDer::pem_file_iter(cert)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("reading {cert}: {e}"))?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("reading {key}: {e}"))?;
        return Ok((certs, key, None));
    }
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| format!("making a certificate: {e}"))?;
    let path = args.cert_out.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("tls_echo-{}.pem", std::process::id())).display().to_string()
    });
    std::fs::write(&path, cert.pem()).map_err(|e| format!("writing {path}: {e}"))?;
    let key = PrivateKeyDer::try_from(key_pair.serialize_der()).map_err(|e| format!("the key: {e}"))?;
    Ok((vec![cert.der().clone()], key, Some(path)))
}

fn handshake_timeout() -> Duration {
    let ms = std::env::var("TLS_ECHO_HANDSHAKE_TIMEOUT_MS").ok().and_then(|v| v.parse().ok());
    Duration::from_millis(ms.unwrap_or(5000))
}

fn handle(config: Arc<ServerConfig>, sock: TcpStream, timeout: Duration) -> io::Result<()> {
    sock.set_nodelay(true)?;
    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, sock);

    // The handshake, under one deadline: a client that stalls (or dribbles bytes) is dropped.
    let deadline = Instant::now() + timeout;
    while tls.conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"));
        }
        tls.sock.set_read_timeout(Some(left))?;
        // On a protocol error (garbage instead of a ClientHello) rustls queues an alert and
        // complete_io writes it before returning the error; dropping `tls` closes the socket.
        tls.conn.complete_io(&mut tls.sock)?;
    }
    tls.sock.set_read_timeout(None)?;

    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = match tls.read(&mut buf) {
            Ok(0) => break, // close_notify received
            Ok(n) => n,
            // The peer closed the TCP connection without close_notify: nothing more to say.
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(err) => return Err(err),
        };
        tls.write_all(&buf[..n])?;
        tls.flush()?;
    }
    tls.conn.send_close_notify();
    tls.conn.complete_io(&mut tls.sock)?;
    Ok(())
}

fn quiet(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)
}

pub(crate) fn serve(listener: TcpListener, config: Arc<ServerConfig>) {
    let timeout = handshake_timeout();
    let mut backoff = Duration::ZERO;
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                backoff = Duration::ZERO;
                let config = config.clone();
                let spawned = corio::coroutine::Builder::new().stack_size(CONN_STACK).spawn(move || {
                    if let Err(err) = handle(config, stream, timeout) {
                        if !quiet(&err) {
                            eprintln!("tls_echo: connection error: {err}");
                        }
                    }
                });
                if let Err(err) = spawned {
                    eprintln!("tls_echo: cannot start a coroutine: {err}");
                }
            }
            Err(err) => {
                backoff = if backoff.is_zero() {
                    Duration::from_millis(5)
                } else {
                    (backoff * 2).min(Duration::from_secs(1))
                };
                eprintln!("tls_echo: accept error: {err}; retrying in {backoff:?}");
                corio::time::sleep(backoff);
            }
        }
    }
}

fn main() {
    let args = parse_args();
    shared::cli::raise_fd_limit();
    let (certs, key, cert_path) = identity(&args).unwrap_or_else(|err| {
        eprintln!("tls_echo: {err}");
        std::process::exit(1);
    });
    let config =
        ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap_or_else(|err| {
            eprintln!("tls_echo: bad certificate or key: {err}");
            std::process::exit(1);
        });
    let mut builder = corio::Runtime::builder();
    if let Some(n) = args.workers {
        builder = builder.workers(n);
    }
    let runtime = builder.build().unwrap_or_else(|err| {
        eprintln!("tls_echo: cannot start the runtime: {err}");
        std::process::exit(1);
    });
    let listener = TcpListener::bind(&args.addr).unwrap_or_else(|err| {
        eprintln!("tls_echo: cannot listen on {}: {err}", args.addr);
        std::process::exit(1);
    });
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or(args.addr.clone());
    match cert_path {
        Some(path) => {
            println!("tls_echo: listening on {addr} with {} workers (certificate: {path})", runtime.workers())
        }
        None => println!("tls_echo: listening on {addr} with {} workers", runtime.workers()),
    }
    runtime.block_on(move || serve(listener, Arc::new(config)));
}
