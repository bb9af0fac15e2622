//! A line-based key-value server in the coroutine model: one corio coroutine per connection,
//! plain blocking code (`BufReader::read_until`, `BufWriter`). examples/kv_callback.rs is the
//! same service in the callback model; tests/kv_protocol.rs runs one suite against both.
//!
//! ```sh
//! cargo run --release --example kv -- [ADDR] [--workers N]   # default 127.0.0.1:7000
//! printf 'SET a 1\nGET a\nQUIT\n' | nc 127.0.0.1 7000
//! ```
//!
//! # Protocol
//!
//! Requests are lines ending in `\n` (or `\r\n`); each gets one reply line.
//!
//! | request       | reply                                                        |
//! |---------------|--------------------------------------------------------------|
//! | `SET k v`     | `OK` (`v` is the rest of the line, spaces included)          |
//! | `GET k`       | `VALUE v` or `NOT_FOUND`                                     |
//! | `DEL k`       | `DELETED` or `NOT_FOUND`                                     |
//! | `STATS`       | `COMMANDS n`: lines received on this connection, this one included |
//! | `MULTI`       | `OK`; then SET/GET/DEL/STATS reply `QUEUED` until:           |
//! | `EXEC`        | `RESULTS n` and the n queued commands' replies, run atomically |
//! | `DISCARD`     | `OK`, the queue dropped                                      |
//! | `QUIT`        | `BYE`, then the server closes the connection                 |
//! | anything else | `ERROR unknown command` (`ERROR nested MULTI`, `ERROR EXEC without MULTI`, `ERROR DISCARD without MULTI`) |
//!
//! A line longer than 64 KiB (terminator excluded) gets `ERROR line too long` and the
//! connection is closed, as soon as 64 KiB + 2 bytes arrived without a `\n`. Keys are
//! non-empty and contain no space. The store is shared by all connections; `MULTI`/`EXEC` is
//! per connection state, and `STATS` a per-connection counter.

#[path = "shared/mod.rs"]
mod shared;

use corio::net::{TcpListener, TcpStream};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::time::Duration;

const BUF_SIZE: usize = 16 * 1024;

// The protocol (parsing, the store) is shared: examples/shared/kv_protocol.rs.
use shared::kv_protocol::{apply, exec, parse, Request, Store, MAX_LINE};

// ---- The connection: blocking code, state in local variables ----

struct Conn<'a> {
    reader: BufReader<&'a TcpStream>,
    writer: BufWriter<&'a TcpStream>,
    line: Vec<u8>,
    /// Lines received (for STATS).
    commands: u64,
}

impl Conn<'_> {
    /// Reads the next request into `self.line`; false at EOF or after a too-long line.
    fn next_line(&mut self) -> io::Result<bool> {
        if self.reader.buffer().is_empty() {
            self.writer.flush()?; // replies to pipelined requests leave in one write
        }
        self.line.clear();
        // A line, a '\r' and the '\n' fit in MAX_LINE + 2 bytes; read no more than that.
        let n = (&mut self.reader).take(MAX_LINE as u64 + 2).read_until(b'\n', &mut self.line)?;
        let complete = self.line.pop() == Some(b'\n');
        if complete && self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        if (complete && self.line.len() > MAX_LINE) || (!complete && n == MAX_LINE + 2) {
            self.writer.write_all(b"ERROR line too long\n")?;
            return Ok(false);
        }
        self.commands += complete as u64;
        Ok(complete) // incomplete and short: EOF
    }

    fn reply(&mut self, reply: &[u8]) -> io::Result<()> {
        self.writer.write_all(reply)
    }
}

fn handle(stream: &TcpStream, store: &Store) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = Conn {
        reader: BufReader::with_capacity(BUF_SIZE, stream),
        writer: BufWriter::with_capacity(BUF_SIZE, stream),
        line: Vec::new(),
        commands: 0,
    };
    let mut out = Vec::new();
    while conn.next_line()? {
        match parse(&conn.line) {
            Some(Request::Data(op)) => {
                out.clear();
                apply(&mut store.lock().unwrap(), op, conn.commands, &mut out);
                conn.reply(&out)?;
            }
            Some(Request::Multi) => {
                conn.reply(b"OK\n")?;
                if !transaction(&mut conn, store)? {
                    break;
                }
            }
            Some(Request::Exec) => conn.reply(b"ERROR EXEC without MULTI\n")?,
            Some(Request::Discard) => conn.reply(b"ERROR DISCARD without MULTI\n")?,
            Some(Request::Quit) => {
                conn.reply(b"BYE\n")?;
                break;
            }
            None => conn.reply(b"ERROR unknown command\n")?,
        }
    }
    conn.writer.flush()
}

/// After MULTI: queues commands until EXEC or DISCARD. The queue is a local variable; the
/// transaction's state is where this function is. Returns false if the connection is to end.
fn transaction(conn: &mut Conn<'_>, store: &Store) -> io::Result<bool> {
    let mut queued = Vec::new();
    while conn.next_line()? {
        match parse(&conn.line) {
            Some(Request::Data(_)) => {
                queued.push(conn.line.clone());
                conn.reply(b"QUEUED\n")?;
            }
            Some(Request::Exec) => {
                let mut out = Vec::new();
                exec(store, &queued, conn.commands, &mut out);
                conn.reply(&out)?;
                return Ok(true);
            }
            Some(Request::Discard) => {
                conn.reply(b"OK\n")?;
                return Ok(true);
            }
            Some(Request::Multi) => conn.reply(b"ERROR nested MULTI\n")?,
            Some(Request::Quit) => {
                conn.reply(b"BYE\n")?;
                return Ok(false);
            }
            None => conn.reply(b"ERROR unknown command\n")?,
        }
    }
    Ok(false)
}

// ---- Accepting and main: as in examples/echo.rs ----

fn serve(listener: TcpListener, store: Store) {
    let mut backoff = Duration::ZERO;
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                backoff = Duration::ZERO;
                let store = store.clone();
                corio::spawn(move || {
                    if let Err(err) = handle(&stream, &store) {
                        if !matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) {
                            eprintln!("kv: connection error: {err}");
                        }
                    }
                });
            }
            Err(err) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                eprintln!("kv: accept error: {err}; retrying in {backoff:?}");
                corio::time::sleep(backoff);
            }
        }
    }
}

fn main() {
    let shared::cli::Args { addr, workers } = shared::cli::parse_args("kv");
    shared::cli::raise_fd_limit();
    let mut builder = corio::Runtime::builder();
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let runtime = builder.build().unwrap_or_else(|err| {
        eprintln!("kv: cannot start the runtime: {err}");
        std::process::exit(1);
    });
    let listener = TcpListener::bind(&addr).unwrap_or_else(|err| {
        eprintln!("kv: cannot listen on {addr}: {err}");
        std::process::exit(1);
    });
    println!(
        "kv: listening on {} with {} workers",
        listener.local_addr().map(|a| a.to_string()).unwrap_or(addr.clone()),
        runtime.workers(),
    );
    let store = Store::default();
    runtime.block_on(move || serve(listener, store));
}
