//! An HTTP/1.1 server in plain blocking style: one coroutine per connection, requests framed by
//! `httparse` (examples/shared/http/proto.rs). A template to copy, not a framework.
//!
//! ```sh
//! cargo run --release --example http -- [ADDR] [--workers N] [--static DIR]   # default 127.0.0.1:8080
//! curl -i 127.0.0.1:8080/plaintext
//! curl -i 127.0.0.1:8080/json
//! curl -i --data-binary @Cargo.toml 127.0.0.1:8080/echo
//! curl -i 127.0.0.1:8080/static/index.html    # from --static DIR (default ./static, if present)
//! ```
//!
//! Keep-alive and pipelining (every complete request in the buffer is answered, and the replies
//! go out in one write), `Content-Length` and chunked request bodies, 431 for a head over 64 KiB,
//! 413 for a body over 1 MiB, 400 for a malformed request (each then closes), a 10 s deadline
//! for a whole request head (`HTTP_HEADER_TIMEOUT_MS` overrides it) and a 60 s keep-alive idle
//! timeout (`HTTP_IDLE_TIMEOUT_MS`); a client that takes no reply bytes for 30 s is dropped
//! (`HTTP_WRITE_TIMEOUT_MS`). On SIGTERM or Ctrl-C it stops accepting, lets each connection finish its current
//! request, closes the idle ones and exits 0 (within 10 s).

#[path = "shared/mod.rs"]
mod shared;

#[path = "shared/http/proto.rs"]
mod proto;

use corio::net::{TcpListener, TcpStream};
use proto::{Parsed, Refused, Request, Response};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const READ_SIZE: usize = 16 * 1024;
/// A body that stops arriving for this long is given up on.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Idle connections wake this often to notice a shutdown.
const SHUTDOWN_POLL: Duration = Duration::from_millis(200);
/// How long open connections get to finish after the signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

pub(crate) struct Config {
    /// Where `GET /static/<name>` files come from; `None`: disabled.
    pub(crate) static_dir: Option<PathBuf>,
    /// Deadline for a whole request head, from its first byte.
    pub(crate) header_timeout: Duration,
    /// Idle keep-alive connections are closed after this long.
    pub(crate) idle_timeout: Duration,
    /// A client that takes no reply bytes for this long is dropped.
    pub(crate) write_timeout: Duration,
    /// Set on SIGTERM/SIGINT: finish the current request, then close.
    pub(crate) stopping: AtomicBool,
}

// ---- Routes ----------------------------------------------------------------------------------

fn route<'a>(req: &Request<'a>, config: &Config) -> Response<'a> {
    const HELLO: &str = "Hello, World!";
    let path = req.path;
    match (req.method, path) {
        ("GET", "/" | "/plaintext") => Response::new(200, "text/plain", HELLO.as_bytes()),
        ("GET", "/json") => {
            let body = serde_json::to_vec(&serde_json::json!({ "message": HELLO })).expect("JSON");
            Response::new(200, "application/json", body)
        }
        ("POST", "/echo") => Response::new(200, "application/octet-stream", req.body.clone()),
        ("GET", _) if path.starts_with("/static/") => static_file(&path["/static/".len()..], config),
        (_, "/" | "/plaintext" | "/json") => not_allowed("GET"),
        (_, "/echo") => not_allowed("POST"),
        (_, _) if path.starts_with("/static/") => not_allowed("GET"),
        _ => Response::status(404),
    }
}

fn not_allowed(allow: &'static str) -> Response<'static> {
    Response { allow: Some(allow), ..Response::status(405) }
}

/// `GET /static/<name>`: a file under the static directory, read through `corio::fs` (on the
/// blocking pool). Only plain names are served: `..`, `/`-rooted paths and `.` are refused.
fn static_file(name: &str, config: &Config) -> Response<'static> {
    let Some(dir) = &config.static_dir else { return Response::status(404) };
    let relative = Path::new(name);
    if name.is_empty() || !relative.components().all(|c| matches!(c, Component::Normal(_))) {
        return Response::status(403);
    }
    match corio::fs::read(dir.join(relative)) {
        Ok(bytes) => Response::new(200, proto::content_type(name), bytes),
        Err(err) if err.kind() == io::ErrorKind::PermissionDenied => Response::status(403),
        Err(_) => Response::status(404), // missing, a directory, ...
    }
}

// ---- One connection --------------------------------------------------------------------------

fn handle(mut stream: TcpStream, config: &Config) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // Per write call, as std's: a client that stops reading (its window and our send buffer
    // full) is dropped instead of holding this coroutine for ever.
    stream.set_write_timeout(Some(config.write_timeout))?;
    // Bytes read and not yet answered are `buf[start..filled]`. The buffer is zeroed once and
    // then reused, never cleared again; it doubles when a large request fills it (the parser's
    // limits bound it).
    let mut buf = vec![0u8; READ_SIZE];
    let (mut start, mut filled) = (0, 0);
    let mut out: Vec<u8> = Vec::new(); // replies to write in one go
    let mut head_deadline: Option<Instant> = None; // set when a request's first bytes are in
    let mut idle_since: Option<Instant> = None; // set when a keep-alive wait times out
    let mut continue_sent = false;
    loop {
        // Answer every complete request in the buffer (pipelining).
        let mut close = false;
        let mut waiting = None;
        let mut date = None; // read once for all the replies of this batch
        while !close {
            match proto::parse(&buf[start..filled]) {
                Ok(Parsed::Complete(req, used)) => {
                    let keep_alive = req.keep_alive && !config.stopping.load(Ordering::SeqCst);
                    let date = date.get_or_insert_with(proto::date);
                    proto::write_response(&mut out, &route(&req, config), date, req.http10, keep_alive);
                    start += used;
                    (head_deadline, continue_sent, close) = (None, false, !keep_alive);
                }
                Ok(Parsed::Incomplete { head_done, expect_continue }) => {
                    waiting = Some((head_done, expect_continue));
                    break;
                }
                Err(Refused(status)) => {
                    let date = date.get_or_insert_with(proto::date);
                    proto::write_response(&mut out, &Response::status(status), date, false, false);
                    close = true;
                }
            }
        }
        if let Some((true, true)) = waiting {
            if !continue_sent {
                out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                continue_sent = true;
            }
        }
        if !out.is_empty() {
            match stream.write_all(&out) {
                Err(err) if err.kind() == io::ErrorKind::TimedOut => return Ok(()), // not reading
                result => result?,
            }
            out.clear();
            idle_since = None;
        }
        if close {
            return close_gracefully(stream);
        }
        // Read more, with a timeout that depends on where we are. The clock is read only when a
        // deadline is in play, not once per request.
        let timeout = if start == filled {
            // Between requests: idle keep-alive; wake now and then to notice a shutdown.
            if config.stopping.load(Ordering::SeqCst) {
                return Ok(());
            }
            match idle_since {
                None => SHUTDOWN_POLL, // the idle period starts with this read
                Some(since) => match config.idle_timeout.checked_sub(since.elapsed()) {
                    Some(left) if !left.is_zero() => left.min(SHUTDOWN_POLL),
                    _ => return Ok(()), // idle too long
                },
            }
        } else if let Some((false, _)) = waiting {
            // In a head: one deadline for the whole head, however slowly it trickles in.
            let now = Instant::now();
            let deadline = *head_deadline.get_or_insert(now + config.header_timeout);
            match deadline.checked_duration_since(now) {
                Some(left) if !left.is_zero() => left,
                _ => return Ok(()), // too slow: close
            }
        } else {
            BODY_TIMEOUT // in a body
        };
        let timeout = timeout.max(Duration::from_millis(1));
        stream.set_read_timeout(Some(timeout))?;
        // Make room: move the unanswered bytes to the front, or grow.
        if start == filled {
            (start, filled) = (0, 0);
        } else if start > 0 {
            buf.copy_within(start..filled, 0);
            (start, filled) = (0, filled - start);
        }
        if filled == buf.len() {
            buf.resize(2 * buf.len(), 0);
        }
        let idle = start == filled;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Ok(()), // the peer closed its side
            Ok(n) => (filled, idle_since) = (filled + n, None),
            Err(err) if err.kind() == io::ErrorKind::TimedOut => {
                if idle && idle_since.is_none() {
                    // The first quiet wait of an idle period: that period began one wait ago.
                    let now = Instant::now();
                    idle_since = Some(now.checked_sub(timeout).unwrap_or(now));
                }
            }
            Err(err) => return Err(err),
        }
    }
}

/// Closes after a final reply without losing it: stop writing, then read and drop what the
/// client still sends (a refused body) for a moment, so the close does not reset the connection
/// before the client has read the reply.
fn close_gracefully(mut stream: TcpStream) -> io::Result<()> {
    stream.shutdown(Shutdown::Write)?;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut sink = vec![0u8; READ_SIZE];
    let mut drained = 0;
    while drained < 8 * proto::MAX_BODY {
        let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
            break;
        };
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

// ---- Accepting and shutting down -------------------------------------------------------------

pub(crate) fn accept_loop(listener: TcpListener, config: Arc<Config>, open: Arc<AtomicUsize>) {
    let mut backoff = Duration::ZERO;
    for conn in listener.incoming() {
        if config.stopping.load(Ordering::SeqCst) {
            break; // the wake-up connection, or a late client: the listener closes here
        }
        match conn {
            Ok(stream) => {
                backoff = Duration::ZERO;
                let (config, open) = (config.clone(), open.clone());
                open.fetch_add(1, Ordering::SeqCst);
                corio::spawn(move || {
                    if let Err(err) = handle(stream, &config) {
                        if !matches!(err.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe) {
                            eprintln!("http: connection error: {err}");
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Err(err) => {
                // Out of fds (EMFILE/ENFILE) or similar: back off 5 ms doubling to 1 s.
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                eprintln!("http: accept error: {err}; retrying in {backoff:?}");
                corio::time::sleep(backoff);
            }
        }
    }
}

fn main() {
    let (shared::cli::Args { addr, workers }, options) =
        shared::cli::parse_args_with("http", "127.0.0.1:8080", &["--static"]);
    let static_dir = match options.into_iter().last() {
        Some((_, dir)) => Some(PathBuf::from(dir)),
        None => Some(PathBuf::from("static")).filter(|dir| dir.is_dir()),
    };
    let millis_from_env = |name: &str, default: Duration| {
        std::env::var(name).ok().and_then(|ms| ms.parse().ok()).map_or(default, Duration::from_millis)
    };
    let header_timeout = millis_from_env("HTTP_HEADER_TIMEOUT_MS", Duration::from_secs(10));
    let idle_timeout = millis_from_env("HTTP_IDLE_TIMEOUT_MS", Duration::from_secs(60));
    let write_timeout = millis_from_env("HTTP_WRITE_TIMEOUT_MS", Duration::from_secs(30));
    let stopping = AtomicBool::new(false);
    let config = Arc::new(Config { static_dir, header_timeout, idle_timeout, write_timeout, stopping });
    shared::cli::raise_fd_limit();
    let mut builder = corio::Runtime::builder();
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let runtime = builder.build().unwrap_or_else(|err| {
        eprintln!("http: cannot start the runtime: {err}");
        std::process::exit(1);
    });
    let open = runtime.block_on(move || {
        // Subscribe before listening, so no signal is missed.
        let signals = corio::signal::notify(&[libc::SIGTERM, libc::SIGINT]).expect("signal delivery");
        let listener = TcpListener::bind(&addr).unwrap_or_else(|err| {
            eprintln!("http: cannot listen on {addr}: {err}");
            std::process::exit(1);
        });
        let local = listener.local_addr().expect("local address");
        println!("http: listening on {local}");
        let open = Arc::new(AtomicUsize::new(0));
        let acceptor = corio::spawn({
            let (config, open) = (config.clone(), open.clone());
            move || accept_loop(listener, config, open)
        });
        let signal = signals.recv().expect("the signal channel stays open");
        eprintln!("http: signal {signal}: no more connections; draining");
        config.stopping.store(true, Ordering::SeqCst);
        drop(TcpStream::connect(local)); // wake the acceptor so it drops the listener now
        acceptor.join().expect("the acceptor ends");
        let deadline = Instant::now() + DRAIN_DEADLINE;
        while open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            corio::time::sleep(Duration::from_millis(20));
        }
        open.load(Ordering::SeqCst)
    });
    drop(runtime); // whatever is still open is dropped with the runtime
    eprintln!("http: done ({open} connections cut at the deadline)");
}
