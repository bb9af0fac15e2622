//! `echo_threads`: the thread-per-connection std anchor echo server for corio's benchmarks.
//!
//! `echo_threads [ADDR] [--addr ADDR] [--workers N]` (default 127.0.0.1:7000): one OS thread
//! per connection (std's default 2 MiB stack, of which only touched pages count towards RSS), a
//! 16 KiB heap read buffer, TCP_NODELAY, blocking std sockets, and a listening socket made with
//! socket2 with an explicit backlog of 1,024 (std's `TcpListener::bind` uses 128). `--workers`
//! is accepted for a uniform command line and ignored: this model has no worker pool. Accept
//! and thread-spawn errors are logged; accept errors are retried after a back-off.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use corio_benches::{bind_listener, raise_nofile_limit_or_warn, ServerArgs, ECHO_BUF};

fn main() -> std::io::Result<()> {
    let args = ServerArgs::from_env("echo_threads");
    raise_nofile_limit_or_warn("echo_threads");
    let listener = bind_listener(args.addr)?;
    eprintln!(
        "echo_threads: listening on {} (thread per connection; --workers ignored)",
        listener.local_addr()?
    );
    let mut backoff = Duration::from_millis(5);
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(5);
                if let Err(e) = std::thread::Builder::new().spawn(move || handle(stream)) {
                    eprintln!("echo_threads: spawn: {e}");
                }
            }
            Err(e) => {
                eprintln!("echo_threads: accept: {e}; retrying in {backoff:?}");
                std::thread::sleep(backoff);
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
