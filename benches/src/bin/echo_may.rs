//! `echo_may`: the `may` anchor echo server for corio's benchmarks.
//!
//! `echo_may [ADDR] [--addr ADDR] [--workers N]` (default 127.0.0.1:7000, N = available
//! parallelism): may's stackful coroutines on N workers, one coroutine per connection, a 16 KiB
//! heap read buffer per connection, TCP_NODELAY, may's default coroutine stack size. may's
//! `TcpListener::bind` already listens with a backlog of 1,024 (and sets SO_REUSEADDR and
//! SO_REUSEPORT).
//!
//! Workers are NOT pinned to cores (`may::config().set_worker_pin(false)`): may pins by default,
//! which cost it 35-47 % on this 2-core machine when the load generator shares the cores.

use std::io::{Read, Write};
use std::time::Duration;

use corio_benches::{raise_nofile_limit_or_warn, ServerArgs, ECHO_BUF};
use may::net::{TcpListener, TcpStream};

fn main() {
    let args = ServerArgs::from_env("echo_may");
    raise_nofile_limit_or_warn("echo_may");
    may::config().set_workers(args.workers);
    may::config().set_worker_pin(false);
    // SAFETY: may's `spawn` is unsafe because a coroutine may migrate between worker threads,
    // which is unsound if it holds references into thread-local storage across a switch. The
    // accept loop touches no thread-local state of its own (only may's own, which is designed
    // for this), and it is joined before `main` returns.
    let acceptor = unsafe { may::coroutine::spawn(move || accept_loop(args)) };
    if acceptor.join().is_err() {
        std::process::exit(1);
    }
}

fn accept_loop(args: ServerArgs) {
    let listener = match TcpListener::bind(args.addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo_may: bind {}: {e}", args.addr);
            std::process::exit(1);
        }
    };
    eprintln!("echo_may: listening on {} with {} workers (unpinned)", args.addr, args.workers);
    let mut backoff = Duration::from_millis(5);
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(5);
                // SAFETY: as above: `handle` uses no thread-local storage of its own, so the
                // coroutine may run on any worker. The JoinHandle is dropped (detached).
                unsafe {
                    may::coroutine::spawn(move || handle(stream));
                }
            }
            Err(e) => {
                eprintln!("echo_may: accept: {e}; retrying in {backoff:?}");
                may::coroutine::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

fn handle(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}
