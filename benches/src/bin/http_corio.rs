//! `http_corio`: corio running the same minimal httparse loop as the `may`
//! and thread anchors (`benches/src/http.rs`), to separate what the runtime
//! costs from what `examples/http.rs`'s limits and timeouts cost.
//!
//! `http_corio [ADDR] [--workers N]`.

use corio_benches::{raise_nofile_limit_or_warn, ServerArgs};

fn main() {
    let args = ServerArgs::from_env("http_corio");
    raise_nofile_limit_or_warn("http_corio");
    let runtime = corio::Runtime::builder().workers(args.workers).build().expect("runtime");
    runtime.block_on(move || {
        let listener = corio::net::TcpListener::bind(args.addr).unwrap_or_else(|e| {
            eprintln!("http_corio: bind {}: {e}", args.addr);
            std::process::exit(1);
        });
        eprintln!("http_corio: listening on {} with {} workers", args.addr, args.workers);
        for stream in listener.incoming().flatten() {
            let _ = stream.set_nodelay(true);
            corio::spawn(move || corio_benches::http::serve_conn(stream));
        }
    });
}
