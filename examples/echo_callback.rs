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

use corio_reactor::{Context, Handler, ServerBuilder};
use std::io;

/// The whole service: write back what was read. The framework reads (into the loop's buffer),
/// queues, flushes, pauses reading under back-pressure and closes on EOF.
struct Echo;

impl Handler for Echo {
    fn read(&mut self, ctx: &mut Context<'_>, data: &[u8]) {
        ctx.write(data);
    }

    fn error(&mut self, ctx: &mut Context<'_>, err: &io::Error) {
        if !matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) {
            eprintln!("echo_callback: connection error: {err}");
        }
        ctx.close();
    }
}

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
                println!("usage: echo_callback [ADDR] [--workers N]   (default 127.0.0.1:7000)");
                return;
            }
            other if !other.starts_with('-') => addr = other.to_string(),
            other => {
                eprintln!("echo_callback: unknown flag {other}; usage: echo_callback [ADDR] [--workers N]");
                std::process::exit(2);
            }
        }
    }
    raise_fd_limit();
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
