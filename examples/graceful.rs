//! Graceful shutdown: an echo server that, on SIGTERM or Ctrl-C, stops
//! accepting, gives the open connections a deadline to finish, and exits 0.
//!
//! ```sh
//! cargo run --release --example graceful -- 127.0.0.1:7003
//! nc 127.0.0.1 7003          # type lines; then Ctrl-C the server: this
//!                            # connection may finish within the deadline
//! ```
//!
//! The shape is Go's: a signal channel (`corio::signal::notify`), a flag the
//! connections check between requests, a count of open connections, and a
//! deadline after which whatever is still open is dropped with the runtime.

#[path = "shared/mod.rs"]
mod shared;

use corio::net::{TcpListener, TcpStream};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long open connections get to finish after the signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

fn handle(mut stream: TcpStream, stopping: &AtomicBool) -> io::Result<()> {
    // Wake up now and then to notice the shutdown between requests.
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => stream.write_all(&buf[..n])?,
            Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                if stopping.load(Ordering::SeqCst) {
                    return Ok(()); // idle at shutdown: close
                }
            }
            Err(err) => return Err(err),
        }
    }
}

fn main() {
    let shared::cli::Args { addr, workers } = shared::cli::parse_args("graceful");
    let mut builder = corio::Runtime::builder();
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let runtime = builder.build().expect("start the runtime");
    let open = runtime.block_on(move || {
        // Subscribe before listening, so no signal is missed.
        let signals = corio::signal::notify(&[libc::SIGTERM, libc::SIGINT]).expect("signal delivery");
        let listener = TcpListener::bind(&addr).unwrap_or_else(|err| {
            eprintln!("graceful: cannot listen on {addr}: {err}");
            std::process::exit(1);
        });
        let local = listener.local_addr().expect("local address");
        println!("graceful: listening on {local}");
        let stopping = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let (stop, count) = (stopping.clone(), open.clone());
        let acceptor = corio::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break; // the wake-up connection below, or a late client
                }
                let Ok(stream) = stream else { continue };
                let (stop, count) = (stop.clone(), count.clone());
                count.fetch_add(1, Ordering::SeqCst);
                corio::spawn(move || {
                    if let Err(err) = handle(stream, &stop) {
                        eprintln!("graceful: connection: {err}");
                    }
                    count.fetch_sub(1, Ordering::SeqCst);
                });
            }
            // The listener is dropped here: new connections are refused.
        });
        let signal = signals.recv().expect("the signal channel stays open");
        eprintln!("graceful: signal {signal}: no more connections; draining");
        stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor out of `accept` so it drops the listener now.
        drop(TcpStream::connect(local));
        acceptor.join().expect("the acceptor ends");
        let deadline = Instant::now() + DRAIN_DEADLINE;
        while open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            corio::time::sleep(Duration::from_millis(20));
        }
        open.load(Ordering::SeqCst)
    });
    // Whatever is still open is dropped with the runtime (destructors run).
    drop(runtime);
    eprintln!("graceful: done ({open} connections cut at the deadline)");
}
