//! The echo service of examples/echo.rs in the callback model: N event loops of
//! `corio-reactor` (Netty's model, on corio-netpoll, no coroutines) call a handler per read.
//!
//! ```sh
//! cargo run --release --example echo_callback -- [ADDR] [--workers N]   # default 127.0.0.1:7000
//! nc 127.0.0.1 7000                                                    # type lines, see them echoed
//! ```
//!
//! Same flags, 16 KiB read buffer (one per event loop, shared by its connections) and
//! TCP_NODELAY as the coroutine echo; `--workers N` is the number of event loops (default: one
//! per CPU). The acceptor survives EMFILE with a 5 ms..1 s back-off, like echo.rs. A client that
//! sends without reading is stopped by back-pressure: past 64 KiB of queued echo its connection
//! is not read until the queue drains.

#[path = "shared/mod.rs"]
mod shared;

use corio_reactor::{Handler, HandlerContext, ServerBuilder};
use std::io;

/// The whole service: write back what was read. The framework reads (into the loop's buffer),
/// queues, flushes, pauses reading under back-pressure and closes on EOF.
struct Echo;

impl Handler for Echo {
    fn read(&mut self, ctx: &mut HandlerContext<'_>, data: &[u8]) {
        ctx.write(data);
    }

    fn error(&mut self, ctx: &mut HandlerContext<'_>, err: &io::Error) {
        if !matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) {
            eprintln!("echo_callback: connection error: {err}");
        }
        ctx.close();
    }
}

fn main() {
    let shared::cli::Args { addr, workers } = shared::cli::parse_args("echo_callback");
    shared::cli::raise_fd_limit();
    let mut builder = ServerBuilder::new().nodelay(true).read_buffer_size(16 * 1024);
    if let Some(n) = workers {
        builder = builder.loops(n);
    }
    let server = builder.bind(&addr, |pipeline| {
        pipeline.add_last(Echo);
    });
    let server = server.unwrap_or_else(|err| {
        eprintln!("echo_callback: cannot listen on {addr}: {err}");
        std::process::exit(1);
    });
    println!(
        "echo_callback: listening on {} with {} event loops (try: nc {} {})",
        server.local_addr(),
        server.loops(),
        addr.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h),
        addr.rsplit_once(':').map_or("7000", |(_, p)| p),
    );
    server.wait();
}
