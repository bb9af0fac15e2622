//! One connection (Netty's `Channel` plus its `unsafe`): the socket's registration, the
//! pipeline, the output queue, and what the event loop does on its readiness events.
//!
//! # Event handling (edge-triggered)
//!
//! The socket is registered once, edge-triggered, for read and write; the kernel reports each
//! new arrival once, so on every readiness event the connection does all the work that event
//! allows:
//!
//! - **writable**: flush the output queue until it is empty or `write(2)` would block.
//! - **readable**: `read(2)` into the loop's shared buffer until `EAGAIN`, handing each chunk to
//!   the pipeline and flushing the output it produced right after (so replies to one read leave
//!   in one `write(2)`, and a reply is on the wire before the next read). Stops early:
//!   - after `max_reads_per_event` full reads (fairness): the loop queues the connection to
//!     continue after the other ready connections had their turn (`Step::Again`);
//!   - when the output queue exceeds the high-water mark: reading pauses (below);
//!   - on EOF or [`HandlerContext::close`](crate::HandlerContext::close): the connection is closing.
//!
//! A short read ends the loop (Netty's and tokio's shortcut: the kernel buffer was drained, and
//! new data will raise a new edge), saving the `read(2)` that would fail with `EAGAIN`, unless
//! netpoll has seen the peer close or urgent data (`Registration::peer_closed_or_urgent`, from
//! `EPOLLRDHUP`/`EPOLLPRI`): a FIN that arrived together with the data raises no further edge,
//! and Linux ends a read at the urgent mark with data still queued, so then the loop reads on
//! until `EAGAIN`.
//!
//! # Back-pressure (Netty's writability and autoRead)
//!
//! When more than `high_water` bytes are queued after a flush, the connection stops reading
//! (`paused`). The kernel's receive buffer then fills, TCP's window closes and the peer's
//! writes block: a client that sends without reading cannot make the server buffer more than
//! `high_water` plus the output of one read chunk. When a writable event drains the queue to
//! `low_water` or less, reading resumes: `writable` fires and the connection reads at once
//! (edges that came in while paused were not acted on, and none will repeat).
//!
//! # Closing
//!
//! A closing connection (EOF, `close()`, or an error at the pipeline's tail) reads no more and
//! is closed by the loop once its queue is empty (`Step::Closed`). An I/O error fires `error`
//! and closes at once, dropping queued output. `inactive` fires exactly once, from
//! `Connection::close`.

use crate::handler::{ChannelState, Handler, HandlerContext, OutQueue};
use crate::server::Config;
use corio_netpoll::{Poller, Registration};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// What the loop must do with a connection after it handled an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing: wait for the next event.
    Wait,
    /// The fairness cap stopped reading while data may remain: read again soon.
    Again,
    /// Close it (call [`Connection::close`] and drop it).
    Closed,
}

pub(crate) struct Connection {
    reg: Registration<TcpStream>,
    handlers: Vec<Box<dyn Handler>>,
    state: ChannelState,
}

impl Connection {
    /// Registers `stream` (non-blocking) with `poller` under `token`.
    pub(crate) fn new(
        poller: &Poller,
        stream: TcpStream,
        peer: SocketAddr,
        token: usize,
        handlers: Vec<Box<dyn Handler>>,
        config: &Config,
        loop_index: usize,
    ) -> io::Result<Connection> {
        let reg = Registration::with_token(poller, stream, token)?;
        let state = ChannelState {
            out: OutQueue::default(),
            closing: false,
            closed: false,
            paused: false,
            high_water: config.high_water,
            peer,
            loop_index,
        };
        Ok(Connection { reg, handlers, state })
    }

    /// The head of the pipeline.
    fn head(&mut self) -> HandlerContext<'_> {
        HandlerContext { next: &mut self.handlers, state: &mut self.state }
    }

    /// Fires `active` and flushes what it wrote (a greeting, say).
    pub(crate) fn activate(&mut self, config: &Config) -> Step {
        self.head().fire_active();
        match self.flush(config) {
            Ok(()) => self.settle(Step::Wait),
            Err(err) => self.fail(&err),
        }
    }

    /// Handles one readiness event; `buf` is the loop's shared read buffer.
    pub(crate) fn on_ready(
        &mut self,
        readable: bool,
        writable: bool,
        buf: &mut [u8],
        config: &Config,
    ) -> Step {
        let mut readable = readable;
        if writable && self.state.out.len() > 0 {
            if let Err(err) = self.flush(config) {
                return self.fail(&err);
            }
        }
        if self.state.paused && self.state.out.len() <= config.low_water {
            self.state.paused = false;
            self.head().fire_writable();
            if let Err(err) = self.flush(config) {
                return self.fail(&err); // what `writable` queued
            }
            readable = true; // edges seen while paused were not acted on
        }
        let step = if readable && !self.state.paused && !self.state.closing {
            match self.read_until_blocked(buf, config) {
                Ok(step) => step,
                Err(err) => return self.fail(&err),
            }
        } else {
            Step::Wait
        };
        self.settle(step)
    }

    /// Continues reading after the fairness cap (`Step::Again`).
    pub(crate) fn read_again(&mut self, buf: &mut [u8], config: &Config) -> Step {
        self.on_ready(true, false, buf, config)
    }

    fn read_until_blocked(&mut self, buf: &mut [u8], config: &Config) -> io::Result<Step> {
        for _ in 0..config.max_reads_per_event {
            let n = match self.reg.get_ref().read(buf) {
                Ok(0) => {
                    self.state.closing = true; // EOF: flush what is queued, then close
                    return Ok(Step::Wait);
                }
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(Step::Wait),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            };
            self.head().fire_read(&buf[..n]);
            self.flush(config)?;
            if self.state.closing || self.state.paused {
                return Ok(Step::Wait);
            }
            if n < buf.len() && !self.reg.peer_closed_or_urgent() {
                return Ok(Step::Wait); // drained; the next arrival raises a new edge
            }
        }
        Ok(Step::Again)
    }

    /// Writes queued output until done or `EAGAIN`, then applies the high-water mark.
    fn flush(&mut self, config: &Config) -> io::Result<()> {
        while self.state.out.len() > 0 {
            match self.reg.get_ref().write(self.state.out.pending()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.state.out.consume(n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        if self.state.out.len() > config.high_water {
            self.state.paused = true;
        }
        Ok(())
    }

    /// A closing connection whose output has drained is done.
    fn settle(&self, step: Step) -> Step {
        if self.state.closing && self.state.out.len() == 0 {
            Step::Closed
        } else {
            step
        }
    }

    /// An I/O error: tell the pipeline, then close without flushing.
    fn fail(&mut self, err: &io::Error) -> Step {
        self.state.closing = true;
        self.head().fire_error(err);
        Step::Closed
    }

    /// Fires `inactive` (once) and deregisters; the socket closes when `self` is dropped.
    pub(crate) fn close(&mut self) {
        if self.state.closed {
            return;
        }
        self.state.closed = true;
        self.state.closing = true;
        self.head().fire_inactive();
        let _ = self.reg.close();
    }
}
