//! The example echo server: one coroutine per connection, plain blocking code.
//!
//! ```sh
//! cargo run --release --example echo -- [ADDR] [--workers N]   # default 127.0.0.1:7000
//! nc 127.0.0.1 7000                                           # type lines, see them echoed
//! ```
//!
//! Each connection waits for data *before* it takes a read buffer (`TcpStream::readable`), and
//! borrows its worker's spare buffer only while it echoes: an idle connection then costs its
//! coroutine (a stack page and a task) and no buffer. The README shows the plainest loop, a buffer
//! per connection held across the blocking read; it works the same, with 16 KiB more per idle
//! connection (or 4 KiB touched of it).
//!
//! The accept loop has Go's shape (`for conn in listener.incoming() { go handle(conn) }`) and
//! survives running out of file descriptors: on EMFILE/ENFILE it backs off 5 ms, doubling to
//! 1 s (as Go's net/http does), instead of dying or spinning.

#[path = "shared/mod.rs"]
mod shared;

use corio::net::{TcpListener, TcpStream};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::time::Duration;

const BUF_SIZE: usize = 16 * 1024;

thread_local! {
    /// The worker thread's spare read buffer, lent to one connection at a time.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

fn handle(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    loop {
        stream.readable()?; // idle until data (or EOF) is there, holding no buffer
                            // Taken by value, not borrowed: if the read or write below waits (a slow
                            // peer), the next connection on this worker just makes itself a buffer.
        let mut buf = SPARE.take();
        buf.resize(BUF_SIZE, 0);
        let echoed = echo_once(&stream, &mut buf);
        SPARE.set(buf);
        if echoed? == 0 {
            return Ok(()); // the peer closed its side
        }
    }
}

/// Reads what is there and writes it back; returns the byte count (0 at EOF).
fn echo_once(mut stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let n = stream.read(buf)?;
    stream.write_all(&buf[..n])?;
    Ok(n)
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
