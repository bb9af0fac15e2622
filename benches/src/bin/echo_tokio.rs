//! `echo_tokio`: the tokio anchor echo server for corio's benchmarks.
//!
//! `echo_tokio [ADDR] [--addr ADDR] [--workers N]` (default 127.0.0.1:7000, N = available
//! parallelism): a multi-thread tokio runtime with N workers, one task per connection, a 16 KiB
//! read buffer per connection, TCP_NODELAY, and a listening socket made with socket2 with an
//! explicit backlog of 1,024. Accept errors (EMFILE and the like) are logged and retried after a
//! back-off (tokio `time`; the runtime is built with `enable_all`, the usual configuration)
//! instead of ending the server.

use std::time::Duration;

use corio_benches::{bind_listener, raise_nofile_limit_or_warn, ServerArgs, ECHO_BUF};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    let args = ServerArgs::from_env("echo_tokio");
    raise_nofile_limit_or_warn("echo_tokio");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(args.workers).enable_all().build()?;
    rt.block_on(serve(args))
}

async fn serve(args: ServerArgs) -> std::io::Result<()> {
    let std_listener = bind_listener(args.addr)?;
    std_listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(std_listener)?;
    eprintln!("echo_tokio: listening on {} with {} workers", listener.local_addr()?, args.workers);
    let mut backoff = Duration::from_millis(5);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(5);
                tokio::spawn(handle(stream));
            }
            Err(e) => {
                eprintln!("echo_tokio: accept: {e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn handle(mut stream: TcpStream) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
