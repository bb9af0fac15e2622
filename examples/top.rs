//! Watching a running server: an echo server that prints its runtime's
//! metrics once a second, and a full coroutine dump on SIGQUIT (Ctrl-\) or
//! SIGUSR1, while it keeps serving. docs/observability.md explains the output.
//!
//! ```sh
//! cargo run --release --example top -- 127.0.0.1:7001
//! nc 127.0.0.1 7001                      # in another terminal; type lines
//! kill -USR1 $(pgrep -f 'examples/top')  # a coroutine dump on the server's stderr
//! ```

use corio::net::{TcpListener, TcpStream};
use std::io::{Read, Write};
use std::time::Duration;

fn handle(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n])?;
    }
}

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7001".into());
    let runtime = corio::Runtime::builder()
        .dump_on_signal(libc::SIGQUIT)
        .dump_on_signal(libc::SIGUSR1)
        .build()
        .expect("start the runtime");
    let listener = TcpListener::bind(&addr).expect("listen");
    println!("top: echo on {addr}; metrics every second; kill -USR1 {} for a dump", std::process::id());
    runtime.spawn(|| loop {
        // The metrics are read from a coroutine here; any thread may read them.
        println!("{}\n", corio::debug::metrics());
        corio::time::sleep(Duration::from_secs(1));
    });
    runtime.block_on(move || {
        for stream in listener.incoming().flatten() {
            let name = format!("conn {}", stream.peer_addr().map(|a| a.to_string()).unwrap_or_default());
            let _ = corio::coroutine::Builder::new().name(name).spawn(move || handle(stream));
        }
    });
}
