//! `http_may`: the `may` HTTP anchor of `run-http.sh`: the same httparse loop
//! as the thread anchor (`benches/src/http.rs`), one may coroutine per
//! connection, workers unpinned (see `echo_may`).
//!
//! `http_may [ADDR] [--workers N]`.

use corio_benches::{raise_nofile_limit_or_warn, ServerArgs};
use may::net::TcpListener;

fn main() {
    let args = ServerArgs::from_env("http_may");
    raise_nofile_limit_or_warn("http_may");
    may::config().set_workers(args.workers);
    may::config().set_worker_pin(false);
    // SAFETY: may's `spawn` is unsafe because a coroutine may migrate between
    // threads; the accept loop and the handlers keep no thread-local state of
    // their own across a switch (the Date cache is re-read on each use).
    let acceptor = unsafe {
        may::coroutine::spawn(move || {
            let listener = TcpListener::bind(args.addr).unwrap_or_else(|e| {
                eprintln!("http_may: bind {}: {e}", args.addr);
                std::process::exit(1);
            });
            eprintln!("http_may: listening on {} with {} workers", args.addr, args.workers);
            for stream in listener.incoming().flatten() {
                let _ = stream.set_nodelay(true);
                // SAFETY: as above.
                may::coroutine::spawn(move || corio_benches::http::serve_conn(stream));
            }
        })
    };
    if acceptor.join().is_err() {
        std::process::exit(1);
    }
}
