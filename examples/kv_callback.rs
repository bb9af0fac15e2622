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
//! replies are queued with `HandlerContext::write` and flushed by the loop after each read, and a
//! too-long line reaches the handler as an error event.

#[path = "shared/mod.rs"]
mod shared;

use corio_reactor::{FrameTooLong, Handler, HandlerContext, LineDecoder, ServerBuilder};
use std::io;

// The protocol (parsing, the store) is shared: examples/shared/kv_protocol.rs.
use shared::kv_protocol::{apply, exec, parse, Request, Store, MAX_LINE};

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
    fn read(&mut self, ctx: &mut HandlerContext<'_>, line: &[u8]) {
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

    fn error(&mut self, ctx: &mut HandlerContext<'_>, err: &io::Error) {
        if FrameTooLong::is(err) {
            ctx.write(b"ERROR line too long\n");
        } else if !matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) {
            eprintln!("kv_callback: connection error: {err}");
        }
        ctx.close();
    }
}

// ---- Main: as in examples/echo_callback.rs ----

fn main() {
    let shared::cli::Args { addr, workers } = shared::cli::parse_args("kv_callback");
    shared::cli::raise_fd_limit();
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
