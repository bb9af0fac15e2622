//! The key-value service of examples/kv.rs in the callback model: `corio-reactor` event loops,
//! a [`LineDecoder`] in front of the business handler, and the per-connection state (the
//! MULTI queue, the STATS counter) kept in the handler as an explicit state machine.
//! tests/kv_protocol.rs runs one suite against both servers.
//!
//! ```sh
//! cargo run --release --example kv_callback -- [ADDR] [--workers N]   # default 127.0.0.1:7000
//! printf 'SET a 1\nGET a\nQUIT\n' | nc 127.0.0.1 7000
//! ```
//!
//! The protocol is documented in examples/kv.rs. Differences in shape, not behaviour: partial
//! lines are buffered by the decoder (and lines that lie whole in one read are not copied),
//! replies are queued with `Context::write` and flushed by the loop after each read, and a
//! too-long line reaches the handler as an error event.

use corio_reactor::{Context, FrameTooLong, Handler, LineDecoder, ServerBuilder};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

const MAX_LINE: usize = 64 * 1024;

// ---- The protocol: identical in examples/kv.rs and examples/kv_callback.rs ----

type Map = HashMap<Vec<u8>, Vec<u8>>;

/// The store, shared by all connections (on all event loops). Held only for hash-map operations
/// (one command, or one EXEC batch), never across I/O: a contended lock blocks an event loop
/// for well under a microsecond. (In examples/kv.rs the same comment explains why a plain
/// `Mutex` is fine under coroutines too.)
type Store = Arc<Mutex<Map>>;

/// A command on the store.
enum Op<'a> {
    Set(&'a [u8], &'a [u8]),
    Get(&'a [u8]),
    Del(&'a [u8]),
    Stats,
}

enum Request<'a> {
    Data(Op<'a>),
    Multi,
    Exec,
    Discard,
    Quit,
}

fn parse(line: &[u8]) -> Option<Request<'_>> {
    let (word, arg) = match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    };
    let key = |k: &[u8]| !k.is_empty() && !k.contains(&b' ');
    Some(match (word, arg) {
        (b"SET", Some(arg)) => {
            let i = arg.iter().position(|&b| b == b' ')?;
            if !key(&arg[..i]) {
                return None;
            }
            Request::Data(Op::Set(&arg[..i], &arg[i + 1..]))
        }
        (b"GET", Some(k)) if key(k) => Request::Data(Op::Get(k)),
        (b"DEL", Some(k)) if key(k) => Request::Data(Op::Del(k)),
        (b"STATS", None) => Request::Data(Op::Stats),
        (b"MULTI", None) => Request::Multi,
        (b"EXEC", None) => Request::Exec,
        (b"DISCARD", None) => Request::Discard,
        (b"QUIT", None) => Request::Quit,
        _ => return None,
    })
}

/// Runs `op` on the locked store and appends its reply line to `out`.
fn apply(map: &mut Map, op: Op<'_>, commands: u64, out: &mut Vec<u8>) {
    match op {
        Op::Set(k, v) => {
            map.insert(k.to_vec(), v.to_vec());
            out.extend_from_slice(b"OK\n");
        }
        Op::Get(k) => match map.get(k) {
            Some(v) => {
                out.extend_from_slice(b"VALUE ");
                out.extend_from_slice(v);
                out.push(b'\n');
            }
            None => out.extend_from_slice(b"NOT_FOUND\n"),
        },
        Op::Del(k) => {
            out.extend_from_slice(if map.remove(k).is_some() { b"DELETED\n" } else { b"NOT_FOUND\n" })
        }
        Op::Stats => out.extend_from_slice(format!("COMMANDS {commands}\n").as_bytes()),
    }
}

/// EXEC: runs the queued lines under one lock (atomically) and appends `RESULTS n` and their
/// replies to `out`.
fn exec(store: &Store, queued: &[Vec<u8>], commands: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("RESULTS {}\n", queued.len()).as_bytes());
    let mut map = store.lock().unwrap();
    for line in queued {
        if let Some(Request::Data(op)) = parse(line) {
            apply(&mut map, op, commands, out);
        }
    }
}

// ---- The connection: a handler called once per line, state in its fields ----

/// Where the connection is in the protocol: the state the coroutine version keeps in the
/// position of its code (inside `transaction` or not) and in a local variable.
enum State {
    Normal,
    /// After MULTI: the lines queued so far.
    Multi(Vec<Vec<u8>>),
}

struct Kv {
    store: Store,
    state: State,
    /// Lines received (for STATS).
    commands: u64,
    out: Vec<u8>,
}

impl Handler for Kv {
    fn read(&mut self, ctx: &mut Context<'_>, line: &[u8]) {
        self.commands += 1;
        self.out.clear();
        match (&mut self.state, parse(line)) {
            (State::Normal, Some(Request::Data(op))) => {
                apply(&mut self.store.lock().unwrap(), op, self.commands, &mut self.out);
            }
            (State::Normal, Some(Request::Multi)) => {
                self.state = State::Multi(Vec::new());
                self.out.extend_from_slice(b"OK\n");
            }
            (State::Normal, Some(Request::Exec)) => self.out.extend_from_slice(b"ERROR EXEC without MULTI\n"),
            (State::Normal, Some(Request::Discard)) => {
                self.out.extend_from_slice(b"ERROR DISCARD without MULTI\n");
            }
            (State::Multi(queued), Some(Request::Data(_))) => {
                queued.push(line.to_vec());
                self.out.extend_from_slice(b"QUEUED\n");
            }
            (State::Multi(queued), Some(Request::Exec)) => {
                exec(&self.store, queued, self.commands, &mut self.out);
                self.state = State::Normal;
            }
            (State::Multi(_), Some(Request::Discard)) => {
                self.state = State::Normal;
                self.out.extend_from_slice(b"OK\n");
            }
            (State::Multi(_), Some(Request::Multi)) => self.out.extend_from_slice(b"ERROR nested MULTI\n"),
            (_, Some(Request::Quit)) => {
                self.out.extend_from_slice(b"BYE\n");
                ctx.close(); // after the queued BYE is flushed; later lines are not delivered
            }
            (_, None) => self.out.extend_from_slice(b"ERROR unknown command\n"),
        }
        ctx.write(&self.out);
    }

    fn error(&mut self, ctx: &mut Context<'_>, err: &io::Error) {
        if FrameTooLong::is(err) {
            ctx.write(b"ERROR line too long\n");
        } else if !matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) {
            eprintln!("kv_callback: connection error: {err}");
        }
        ctx.close();
    }
}

// ---- Main: as in examples/echo_callback.rs ----

fn raise_fd_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() {
    let mut addr = String::from("127.0.0.1:7000");
    let mut workers = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workers" => workers = args.next().and_then(|n| n.parse().ok()),
            "--addr" => addr = args.next().unwrap_or(addr),
            "-h" | "--help" => {
                println!("usage: kv_callback [ADDR] [--workers N]   (default 127.0.0.1:7000)");
                return;
            }
            other if !other.starts_with('-') => addr = other.to_string(),
            other => {
                eprintln!("kv_callback: unknown flag {other}; usage: kv_callback [ADDR] [--workers N]");
                std::process::exit(2);
            }
        }
    }
    raise_fd_limit();
    let mut builder = ServerBuilder::new().nodelay(true);
    if let Some(n) = workers {
        builder = builder.loops(n);
    }
    let store = Store::default();
    let server = builder.bind(&addr, move |pipeline| {
        pipeline.add_last(LineDecoder::new(MAX_LINE));
        pipeline.add_last(Kv { store: store.clone(), state: State::Normal, commands: 0, out: Vec::new() });
    });
    let server = server.unwrap_or_else(|err| {
        eprintln!("kv_callback: cannot listen on {addr}: {err}");
        std::process::exit(1);
    });
    println!("kv_callback: listening on {} with {} event loops", server.local_addr(), server.loops());
    server.wait();
}
