//! An event loop (Netty's `EventLoop`): one thread, one [`Poller`], the connections bound to it.
//!
//! # The loop
//!
//! ```text
//! until stopped:
//!     wait for readiness (block; or just poll if connections hit their fairness cap last time)
//!     take the connections the acceptor handed over (inbox), register them, fire `active`
//!     for each ready connection: Connection::on_ready (flush, read until EAGAIN, callbacks)
//!     for each connection that hit the fairness cap last time: read on
//! on stop: fire `inactive` on every connection and close it
//! ```
//!
//! # Invariants
//!
//! - Only this thread touches its connections, so handlers run without locks. Other threads
//!   reach the loop only through `LoopShared`: the inbox (a mutex held for a push or a swap)
//!   and [`Poller::notify`]. The acceptor pushes, then notifies; the loop drains the inbox after
//!   every wait, which is the order `corio-netpoll`'s notify protocol requires for no
//!   hand-over to be missed.
//! - A connection's token is its index in `conns`. A token can outlive its connection only in
//!   the fairness list `again` (netpoll drops events of closed registrations); if the index has
//!   been reused meanwhile, the new connection gets one extra read attempt, which is harmless.
//! - One read buffer per loop (`read_buf`, 16 KiB by default), shared by all its connections:
//!   a read's bytes are consumed by the pipeline before the next read, and a decoder copies out
//!   only an incomplete frame. An idle connection therefore holds no read buffer at all: this
//!   is the callback model's memory advantage over a coroutine (or thread) per connection,
//!   whose stack and buffer stay allocated while it waits.
//! - A panicking handler closes its connection (without `inactive`: its state may be torn) and
//!   the loop goes on; the panic is reported by the panic hook.

use crate::connection::{Connection, Step};
use crate::handler::Pipeline;
use crate::server::{Config, Init};
use corio_netpoll::{Events, Poller, ReadyEvent};
use parking_lot::Mutex;
use std::net::{SocketAddr, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The parts of an event loop other threads may touch.
pub(crate) struct LoopShared {
    pub(crate) poller: Poller,
    inbox: Mutex<Vec<(TcpStream, SocketAddr)>>,
}

impl LoopShared {
    pub(crate) fn new() -> std::io::Result<LoopShared> {
        Ok(LoopShared { poller: Poller::new()?, inbox: Mutex::new(Vec::new()) })
    }

    /// Hands a new (non-blocking) connection to this loop. Any thread.
    pub(crate) fn hand_over(&self, stream: TcpStream, peer: SocketAddr) {
        self.inbox.lock().push((stream, peer));
        // Publish first, then notify (see the module docs).
        let _ = self.poller.notify();
    }

    /// Wakes the loop so it sees the stop flag. Any thread.
    pub(crate) fn wake(&self) {
        let _ = self.poller.notify();
    }
}

pub(crate) struct EventLoop {
    index: usize,
    shared: Arc<LoopShared>,
    stop: Arc<AtomicBool>,
    config: Arc<Config>,
    init: Init,
    conns: Vec<Option<Connection>>,
    free: Vec<usize>,
    read_buf: Box<[u8]>,
    events: Events,
    ready: Vec<ReadyEvent>,
    /// Connections that hit the fairness cap: read on after this round's events.
    again: Vec<usize>,
    inbox: Vec<(TcpStream, SocketAddr)>,
}

impl EventLoop {
    pub(crate) fn new(
        index: usize,
        shared: Arc<LoopShared>,
        stop: Arc<AtomicBool>,
        config: Arc<Config>,
        init: Init,
    ) -> EventLoop {
        let read_buf = vec![0; config.read_buffer_size].into_boxed_slice();
        EventLoop {
            index,
            shared,
            stop,
            config,
            init,
            conns: Vec::new(),
            free: Vec::new(),
            read_buf,
            events: Events::new(),
            ready: Vec::new(),
            again: Vec::new(),
            inbox: Vec::new(),
        }
    }

    /// Runs until the stop flag is set (and the loop notified), then closes every connection.
    pub(crate) fn run(mut self) {
        while !self.stop.load(Ordering::SeqCst) {
            let timeout = if self.again.is_empty() { None } else { Some(Duration::ZERO) };
            let ready = &mut self.ready;
            if let Err(err) = self.shared.poller.wait_with(&mut self.events, timeout, |ev| ready.push(ev)) {
                if err.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                eprintln!("corio-reactor: event loop {}: poll failed: {err}; stopping", self.index);
                break;
            }
            let again = std::mem::take(&mut self.again);
            self.install_new();
            let mut ready = std::mem::take(&mut self.ready);
            for ev in ready.drain(..) {
                self.dispatch(ev.token, |conn, buf, config| {
                    conn.on_ready(ev.readable, ev.writable, buf, config)
                });
            }
            self.ready = ready;
            for token in again {
                self.dispatch(token, |conn, buf, config| conn.read_again(buf, config));
            }
        }
        for token in 0..self.conns.len() {
            self.remove(token, true);
        }
    }

    /// Registers the connections the acceptor handed over and fires `active` on them.
    fn install_new(&mut self) {
        std::mem::swap(&mut self.inbox, &mut *self.shared.inbox.lock());
        let mut inbox = std::mem::take(&mut self.inbox);
        for (stream, peer) in inbox.drain(..) {
            let token = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let init = &self.init;
            let built = catch_unwind(AssertUnwindSafe(|| {
                let mut pipeline = Pipeline::default();
                init(&mut pipeline);
                pipeline.handlers
            }));
            let Ok(handlers) = built else {
                self.free.push(token);
                continue; // the initialiser panicked; the panic hook reported it
            };
            let (poller, config) = (&self.shared.poller, &self.config);
            match Connection::new(poller, stream, peer, token, handlers, config, self.index) {
                Ok(conn) => {
                    self.conns[token] = Some(conn);
                    self.dispatch(token, |conn, _, config| conn.activate(config));
                }
                Err(err) => {
                    eprintln!("corio-reactor: cannot register a connection from {peer}: {err}");
                    self.free.push(token);
                }
            }
        }
        self.inbox = inbox;
    }

    /// Runs `f` on connection `token` (if it is still there) and acts on the resulting step.
    fn dispatch(&mut self, token: usize, f: impl FnOnce(&mut Connection, &mut [u8], &Config) -> Step) {
        let Some(Some(conn)) = self.conns.get_mut(token) else { return };
        let (buf, config) = (&mut self.read_buf[..], &*self.config);
        match catch_unwind(AssertUnwindSafe(|| f(conn, buf, config))) {
            Ok(Step::Wait) => {}
            Ok(Step::Again) => self.again.push(token),
            Ok(Step::Closed) => self.remove(token, true),
            Err(_panic) => self.remove(token, false),
        }
    }

    /// Closes and drops connection `token`, firing `inactive` if `notify`.
    fn remove(&mut self, token: usize, notify: bool) {
        let Some(mut conn) = self.conns.get_mut(token).and_then(Option::take) else { return };
        self.free.push(token);
        if notify {
            // If `inactive` panics, the connection is dropped (and its socket closed) anyway.
            let _ = catch_unwind(AssertUnwindSafe(|| conn.close()));
        }
    }
}
