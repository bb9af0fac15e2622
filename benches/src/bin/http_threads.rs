//! `http_threads`: the thread-per-connection HTTP anchor of `run-http.sh`
//! (`benches/src/http.rs`'s responder on std threads).
//!
//! `http_threads [ADDR] [--workers N]` (--workers ignored: a thread per connection).

use corio_benches::{bind_listener, raise_nofile_limit_or_warn, ServerArgs};

fn main() -> std::io::Result<()> {
    let args = ServerArgs::from_env("http_threads");
    raise_nofile_limit_or_warn("http_threads");
    let listener = bind_listener(args.addr)?;
    eprintln!("http_threads: listening on {}", listener.local_addr()?);
    for stream in listener.incoming().flatten() {
        let _ = stream.set_nodelay(true);
        if let Err(e) = std::thread::Builder::new().spawn(move || corio_benches::http::serve_conn(stream)) {
            eprintln!("http_threads: spawn: {e}");
        }
    }
    Ok(())
}
