//! `echo_mio`: the callback model at its leanest, as an anchor echo server for corio's benchmarks:
//! mio event loops calling a per-connection handler, no framework.
//!
//! `echo_mio [ADDR] [--addr ADDR] [--workers N]` (default 127.0.0.1:7000, N = available
//! parallelism). Issue 14 measures corio's echo against this loop: the least a readiness-based
//! server can do per round trip.
//!
//! - **Threads**: N event loops, each a thread with its own `mio::Poll`, plus one acceptor thread
//!   (Netty's boss, as in `corio-reactor` and the `echo_callback` example) that blocks in
//!   `accept` and hands each connection to the loops round-robin: it pushes the stream into the
//!   loop's inbox and wakes the loop with its `mio::Waker` (an eventfd write) only if the inbox
//!   was empty. Why not N listeners with `SO_REUSEPORT`, one per loop: the kernel spreads
//!   connections by a hash of the 4-tuple, so 100 connections land unevenly (55/45 and worse)
//!   and a loop with more connections is slower on a shared 2-core machine; round-robin is exact.
//!   The acceptor costs nothing in the measured window (all connections are open before it; it
//!   sleeps in `accept`), and a hand-off costs one mutex push and at most one eventfd write per
//!   accepted connection.
//! - **Connections**: a `Vec<Option<Conn>>` slab indexed by `Token` with a free list; each
//!   connection is registered once, edge-triggered, for `READABLE` only.
//! - **Handler**: a [`Handler`] trait, called with the bytes of each read (statically
//!   dispatched: the loop is generic over it). The echo handler writes them back through
//!   [`Outbound`]. Reads go into one 16 KiB buffer per loop, shared by its connections (the
//!   callback model's advantage in memory: nothing per idle connection but the slab entry).
//! - **Writes**: written at once; the part a short write leaves goes into the connection's
//!   pending buffer and only then is `WRITABLE` interest added (one `epoll_ctl`), removed again
//!   when the buffer drains. While bytes are pending the connection is not read (back-pressure:
//!   a client that sends without reading fills its own socket buffers, nothing grows here beyond
//!   one read); when the pending bytes are flushed, reading resumes until `WouldBlock`, because
//!   an edge-triggered readiness already consumed is not reported again. No data is lost and
//!   nothing spins.
//! - **Edge-triggered**: every event is followed by reads until the socket is drained: until
//!   `WouldBlock`, or until a read returns less than the buffer holds. A short read of a stream
//!   socket means its receive queue was empty at that moment, and with edge-triggered epoll any
//!   byte that arrives later raises a new event, so the read that would only return `WouldBlock`
//!   is skipped: one `recvfrom` per round trip, not two (tokio does the same, tokio#5866).
//!   Except when the event reports the peer's FIN or an error (`EPOLLRDHUP`, `EPOLLERR`): that
//!   edge has been consumed, so reading goes on to the 0 or the error. A read of 0 (EOF) or an
//!   error (reset) closes the connection (dropping the stream closes the fd, which leaves the
//!   epoll set).
//! - **Accept errors** (EMFILE and the like) back off 5 ms doubling to 1 s, like the other
//!   anchors; TCP_NODELAY is set on every connection; the listener's backlog is 1,024
//!   ([`corio_benches::bind_listener`]).

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use corio_benches::{bind_listener, raise_nofile_limit_or_warn, ServerArgs, ECHO_BUF};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use parking_lot::Mutex;

/// The callbacks an event loop makes for one connection.
trait Handler {
    /// `data` was just read from the connection; reply through `out`.
    fn on_read(&mut self, data: &[u8], out: &mut Outbound<'_>);
}

/// The echo service: write back what was read.
struct Echo;

impl Handler for Echo {
    fn on_read(&mut self, data: &[u8], out: &mut Outbound<'_>) {
        out.write(data);
    }
}

/// A handler's way to write to its connection: writes at once, queues what the socket did not
/// take, and remembers a write error (the loop closes the connection after the callback).
struct Outbound<'a> {
    stream: &'a mut TcpStream,
    pending: &'a mut Vec<u8>,
    failed: &'a mut bool,
}

impl Outbound<'_> {
    fn write(&mut self, data: &[u8]) {
        if *self.failed {
            return;
        }
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(data);
            return;
        }
        let mut off = 0;
        while off < data.len() {
            match self.stream.write(&data[off..]) {
                Ok(0) => {
                    *self.failed = true;
                    return;
                }
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.pending.extend_from_slice(&data[off..]);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    *self.failed = true;
                    return;
                }
            }
        }
    }
}

/// One connection of an event loop.
struct Conn<H> {
    stream: TcpStream,
    handler: H,
    /// Bytes the socket has not taken yet; while non-empty the connection is not read.
    pending: Vec<u8>,
    /// Whether `WRITABLE` interest is registered (only while `pending` is non-empty).
    want_write: bool,
}

/// What to do with a connection after handling its event.
enum Next {
    Keep,
    Close,
}

impl<H: Handler> Conn<H> {
    /// Handles one readiness event: flush what is pending, then read until the socket is
    /// drained (`WouldBlock`, or a short read unless `closing`: the event reported the peer's FIN
    /// or an error) or a reply is left pending, calling the handler for every read.
    fn on_event(&mut self, token: Token, registry: &Registry, buf: &mut [u8], closing: bool) -> Next {
        if !self.pending.is_empty() && !self.flush() {
            return Next::Close;
        }
        let mut failed = false;
        while self.pending.is_empty() {
            match self.stream.read(buf) {
                Ok(0) => return Next::Close,
                Ok(n) => {
                    let mut out = Outbound {
                        stream: &mut self.stream,
                        pending: &mut self.pending,
                        failed: &mut failed,
                    };
                    self.handler.on_read(&buf[..n], &mut out);
                    if failed {
                        return Next::Close;
                    }
                    if n < buf.len() && !closing {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
        let want_write = !self.pending.is_empty();
        if want_write != self.want_write {
            let interest =
                if want_write { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            if registry.reregister(&mut self.stream, token, interest).is_err() {
                return Next::Close;
            }
            self.want_write = want_write;
        }
        Next::Keep
    }

    /// Writes pending bytes until done or `WouldBlock`; false on an error.
    fn flush(&mut self) -> bool {
        let mut off = 0;
        let ok = loop {
            if off == self.pending.len() {
                break true;
            }
            match self.stream.write(&self.pending[off..]) {
                Ok(0) => break false,
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break false,
            }
        };
        self.pending.drain(..off);
        ok
    }
}

/// The token of a loop's waker; connection tokens are slab indices.
const WAKER: Token = Token(usize::MAX);

/// The part of an event loop the acceptor sees.
struct LoopHandle {
    inbox: Mutex<Vec<std::net::TcpStream>>,
    waker: Waker,
}

/// One event loop: a thread, a poller, a slab of connections and one read buffer.
fn run_loop<H: Handler>(mut poll: Poll, handle: Arc<LoopHandle>, new_handler: fn() -> H) {
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn<H>>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; ECHO_BUF];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            eprintln!("echo_mio: poll: {e}");
            std::process::exit(1);
        }
        for ev in events.iter() {
            let token = ev.token();
            if token == WAKER {
                let incoming = std::mem::take(&mut *handle.inbox.lock());
                for s in incoming {
                    let idx = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    let mut stream = TcpStream::from_std(s);
                    // Registering an already readable socket reports it at once (epoll checks
                    // readiness on EPOLL_CTL_ADD), so bytes sent before this are not missed.
                    if poll.registry().register(&mut stream, Token(idx), Interest::READABLE).is_err() {
                        free.push(idx);
                        continue;
                    }
                    conns[idx] =
                        Some(Conn { stream, handler: new_handler(), pending: Vec::new(), want_write: false });
                }
                continue;
            }
            // An event for a slot closed earlier in this batch finds `None` (or, if the slot was
            // reused meanwhile, costs the new connection one read that returns `WouldBlock`).
            let Some(Some(conn)) = conns.get_mut(token.0) else { continue };
            let closing = ev.is_read_closed() || ev.is_error();
            if let Next::Close = conn.on_event(token, poll.registry(), &mut buf, closing) {
                conns[token.0] = None;
                free.push(token.0);
            }
        }
    }
}

/// Accepts forever, handing connections to the loops round-robin.
fn accept_loop(listener: TcpListener, loops: Vec<Arc<LoopHandle>>) {
    let mut next = 0;
    let mut backoff = Duration::from_millis(5);
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("echo_mio: accept: {e}; retrying in {backoff:?}");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(5);
        if stream.set_nodelay(true).is_err() || stream.set_nonblocking(true).is_err() {
            continue;
        }
        let l = &loops[next];
        next = (next + 1) % loops.len();
        let was_empty = {
            let mut inbox = l.inbox.lock();
            inbox.push(stream);
            inbox.len() == 1
        };
        if was_empty {
            if let Err(e) = l.waker.wake() {
                eprintln!("echo_mio: waking an event loop: {e}");
            }
        }
    }
}

fn main() -> io::Result<()> {
    let args = ServerArgs::from_env("echo_mio");
    raise_nofile_limit_or_warn("echo_mio");
    let listener = bind_listener(args.addr)?;
    let mut loops = Vec::with_capacity(args.workers);
    let mut threads = Vec::with_capacity(args.workers);
    for i in 0..args.workers {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let handle = Arc::new(LoopHandle { inbox: Mutex::new(Vec::new()), waker });
        loops.push(handle.clone());
        let t = std::thread::Builder::new().name(format!("echo-mio-{i}"));
        threads.push(t.spawn(move || run_loop(poll, handle, || Echo))?);
    }
    eprintln!("echo_mio: listening on {} with {} event loops", listener.local_addr()?, args.workers);
    accept_loop(listener, loops);
    Ok(())
}
