//! A WebSocket echo server: tungstenite over `corio::net::TcpStream`, one coroutine per
//! connection, plain blocking code.
//!
//! ```sh
//! cargo run --release --example ws_echo -- [ADDR] [--workers N]   # default 127.0.0.1:7000
//! websocat ws://127.0.0.1:7000/                                   # type lines, see them echoed
//! ```
//!
//! Text and binary messages (fragmented or not, up to tungstenite's 64 MiB default) come back
//! as they were sent; pings are answered with pongs (tungstenite queues the pong and writes it
//! on the next read); a close frame is answered and the connection ends. A client that vanishes
//! without a close frame just ends its coroutine. The HTTP upgrade must complete within
//! `WS_ECHO_HANDSHAKE_TIMEOUT_MS` (default 5000).

#[path = "shared/mod.rs"]
mod shared;

use corio::net::{TcpListener, TcpStream};
use std::io;
use std::time::Duration;
use tungstenite::{Error, Message};

fn handshake_timeout() -> Duration {
    let ms = std::env::var("WS_ECHO_HANDSHAKE_TIMEOUT_MS").ok().and_then(|v| v.parse().ok());
    Duration::from_millis(ms.unwrap_or(5000))
}

fn handle(stream: TcpStream, timeout: Duration) -> Result<(), String> {
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let mut ws = tungstenite::accept(stream).map_err(|e| format!("handshake: {e}"))?;
    ws.get_mut().set_read_timeout(None).map_err(|e| e.to_string())?;
    loop {
        match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => match ws.send(msg) {
                Ok(()) => {}
                Err(err) => return gone(err),
            },
            // Pings: tungstenite has queued the pong; it goes out with the next read or send.
            // Close: the reply is queued; the next read sends it and reports ConnectionClosed.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_)) => {}
            Err(err) => return gone(err),
        }
    }
}

/// The end of a connection: normal ends (close handshake done, peer vanished) are not errors.
fn gone(err: Error) -> Result<(), String> {
    match err {
        Error::ConnectionClosed | Error::AlreadyClosed => Ok(()),
        Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => Ok(()),
        Error::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof
            ) =>
        {
            Ok(())
        }
        err => Err(err.to_string()),
    }
}

pub(crate) fn serve(listener: TcpListener) {
    let timeout = handshake_timeout();
    let mut backoff = Duration::ZERO;
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                backoff = Duration::ZERO;
                corio::spawn(move || {
                    if let Err(err) = handle(stream, timeout) {
                        eprintln!("ws_echo: connection error: {err}");
                    }
                });
            }
            Err(err) => {
                backoff = if backoff.is_zero() {
                    Duration::from_millis(5)
                } else {
                    (backoff * 2).min(Duration::from_secs(1))
                };
                eprintln!("ws_echo: accept error: {err}; retrying in {backoff:?}");
                corio::time::sleep(backoff);
            }
        }
    }
}

fn main() {
    let shared::cli::Args { addr, workers } = shared::cli::parse_args("ws_echo");
    shared::cli::raise_fd_limit();
    let mut builder = corio::Runtime::builder();
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let runtime = builder.build().unwrap_or_else(|err| {
        eprintln!("ws_echo: cannot start the runtime: {err}");
        std::process::exit(1);
    });
    let listener = TcpListener::bind(&addr).unwrap_or_else(|err| {
        eprintln!("ws_echo: cannot listen on {addr}: {err}");
        std::process::exit(1);
    });
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr.clone());
    println!("ws_echo: listening on {local} with {} workers", runtime.workers());
    runtime.block_on(move || serve(listener));
}
