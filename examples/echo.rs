//! The example echo server: one coroutine per connection, plain blocking code.
//!
//! ```sh
//! cargo run --release --example echo -- [ADDR] [--workers N]   # default 127.0.0.1:7000
//! nc 127.0.0.1 7000                                           # type lines, see them echoed
//! ```
//!
//! The accept loop has Go's shape (`for conn in listener.incoming() { go handle(conn) }`) and
//! survives running out of file descriptors: on EMFILE/ENFILE it backs off 5 ms, doubling to
//! 1 s (as Go's net/http does), instead of dying or spinning.

#[path = "shared/mod.rs"]
mod shared;

use corio::net::{TcpListener, TcpStream};
use std::io::{self, Read, Write};
use std::time::Duration;

const BUF_SIZE: usize = 16 * 1024;

fn handle(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(()); // the peer closed its side
        }
        stream.write_all(&buf[..n])?;
    }
}

fn is_out_of_fds(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

fn serve(listener: TcpListener) {
    let mut backoff = Duration::ZERO;
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                backoff = Duration::ZERO;
                corio::spawn(move || {
                    if let Err(err) = handle(stream) {
                        if !matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) {
                            eprintln!("echo: connection error: {err}");
                        }
                    }
                });
            }
            Err(err) => {
                backoff = if backoff.is_zero() {
                    Duration::from_millis(5)
                } else {
                    (backoff * 2).min(Duration::from_secs(1))
                };
                if is_out_of_fds(&err) {
                    eprintln!("echo: accept: {err}; retrying in {backoff:?}");
                } else {
                    eprintln!("echo: accept error: {err}; retrying in {backoff:?}");
                }
                corio::time::sleep(backoff);
            }
        }
    }
}

fn main() {
    let shared::cli::Args { addr, workers } = shared::cli::parse_args("echo");
    shared::cli::raise_fd_limit();
    let mut builder = corio::Runtime::builder();
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let runtime = builder.build().unwrap_or_else(|err| {
        eprintln!("echo: cannot start the runtime: {err}");
        std::process::exit(1);
    });
    let listener = match TcpListener::bind(&addr) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("echo: cannot listen on {addr}: {err}");
            std::process::exit(1);
        }
    };
    println!(
        "echo: listening on {} with {} workers (try: nc {} {})",
        listener.local_addr().map(|a| a.to_string()).unwrap_or(addr.clone()),
        runtime.workers(),
        addr.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h),
        addr.rsplit_once(':').map_or("7000", |(_, p)| p),
    );
    runtime.block_on(move || serve(listener));
}
