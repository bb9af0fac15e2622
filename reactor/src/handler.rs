//! Handlers, the pipeline they form, and the [`HandlerContext`] through which they act.
//!
//! This is Netty's data-processing model, cut down to what a byte-stream server needs:
//!
//! - A [`Handler`] reacts to a connection's events: [`active`](Handler::active) (connected),
//!   [`read`](Handler::read) (bytes, or a frame decoded by the handler in front),
//!   [`writable`](Handler::writable) (queued output drained below the low-water mark after
//!   back-pressure), [`inactive`](Handler::inactive) (closed) and [`error`](Handler::error).
//! - A [`Pipeline`] is the ordered list of a connection's handlers, built once per connection by
//!   the server's initialiser (Netty's `ChannelInitializer`): typically decoders first, then the
//!   business handler. The loop delivers each event to the first handler; a handler passes it
//!   on with the context's `fire_*` methods. Every callback's default implementation passes the
//!   event on unchanged, so a handler overrides only what it cares about.
//! - Messages are byte slices: raw socket bytes at the head, frames after a decoder. A decoder
//!   fires each frame to the rest of the pipeline as a slice of its buffer or of the loop's read
//!   buffer; nothing is allocated per frame.
//! - Output goes through [`HandlerContext::write`], which appends to the connection's output queue.
//!   The event loop flushes the queue after each callback batch (one `write(2)` for all replies
//!   produced by one read) and again when the socket becomes writable.
//!
//! # Invariants
//!
//! - A connection, its pipeline and its output queue belong to one event loop thread for life:
//!   handlers are called from that thread only, one event at a time, so they need no locks and
//!   need not be `Send` (the initialiser that builds them runs on the loop thread).
//! - At the tail of the pipeline, an unhandled `read` is dropped and an unhandled `error` closes
//!   the connection.
//! - After [`HandlerContext::close`] no more `read` events are delivered on that connection (the rest of
//!   the current read is dropped); queued output is still flushed before the socket is closed,
//!   then `inactive` fires once.

use std::io;
use std::net::SocketAddr;

/// A stage of a connection's [`Pipeline`]. Every method has a default that forwards the event
/// to the next handler, so implement only what you need.
pub trait Handler {
    /// The connection was accepted and registered with its event loop.
    fn active(&mut self, ctx: &mut HandlerContext<'_>) {
        ctx.fire_active();
    }

    /// Bytes arrived: raw socket bytes at the head of the pipeline, or one frame after a decoder.
    /// `data` borrows a loop- or decoder-owned buffer and is only valid during the call.
    fn read(&mut self, ctx: &mut HandlerContext<'_>, data: &[u8]) {
        ctx.fire_read(data);
    }

    /// The connection became writable again: after reading was paused because more than the
    /// high-water mark of output was queued, the queue drained below the low-water mark and
    /// reading resumed (Netty's `channelWritabilityChanged` to writable).
    fn writable(&mut self, ctx: &mut HandlerContext<'_>) {
        ctx.fire_writable();
    }

    /// The connection was closed (by the peer, by [`HandlerContext::close`], by an I/O error, or at
    /// server shutdown). Called exactly once, last; writes are discarded from here on.
    fn inactive(&mut self, ctx: &mut HandlerContext<'_>) {
        ctx.fire_inactive();
    }

    /// An I/O error (the connection is closed right after) or a decoder's error such as
    /// [`FrameTooLong`](crate::FrameTooLong) (the connection stays open unless a handler, or
    /// the tail of the pipeline, closes it).
    fn error(&mut self, ctx: &mut HandlerContext<'_>, err: &io::Error) {
        ctx.fire_error(err);
    }
}

/// The ordered handlers of one connection (Netty's `ChannelPipeline`), filled by the server's
/// initialiser.
#[derive(Default)]
pub struct Pipeline {
    pub(crate) handlers: Vec<Box<dyn Handler>>,
}

impl Pipeline {
    /// Appends `handler` after the handlers already added: events flow from the first added
    /// to the last.
    pub fn add_last(&mut self, handler: impl Handler + 'static) -> &mut Pipeline {
        self.handlers.push(Box::new(handler));
        self
    }

    /// Number of handlers.
    pub fn len(&self) -> usize {
        self.handlers.len()
    }

    /// True if no handler was added.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }
}

/// Queued output bytes: one contiguous buffer, so a flush is one `write(2)` of all of it.
#[derive(Default)]
pub(crate) struct OutQueue {
    buf: Vec<u8>,
    /// Bytes of `buf` already written to the socket.
    sent: usize,
}

/// An output buffer larger than this is freed once it drains, so idle connections hold none.
const RETAIN: usize = 4 * 1024;

impl OutQueue {
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.sent
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        // Compact once the written prefix is at least half the buffer, so a queue that never
        // quite drains does not grow by the bytes it already sent (amortised O(1) per byte).
        if self.sent > 0 && self.sent >= self.buf.len() / 2 {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The bytes still to write.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.sent..]
    }

    /// Marks `n` bytes as written; frees the buffer when all were.
    pub(crate) fn consume(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
            if self.buf.capacity() > RETAIN {
                self.buf = Vec::new();
            }
        }
    }
}

/// The per-connection state a [`HandlerContext`] acts on (owned by the connection).
pub(crate) struct ChannelState {
    pub(crate) out: OutQueue,
    /// Close requested (by a handler, EOF or an error at the tail): read no more, deliver no
    /// more reads, close once `out` is empty.
    pub(crate) closing: bool,
    /// The socket is closed; writes are dropped.
    pub(crate) closed: bool,
    /// Reading is paused by back-pressure (more than `high_water` queued).
    pub(crate) paused: bool,
    pub(crate) high_water: usize,
    pub(crate) peer: SocketAddr,
    pub(crate) loop_index: usize,
}

/// A handler's view of its connection and of the rest of the pipeline, passed to every callback.
pub struct HandlerContext<'a> {
    pub(crate) next: &'a mut [Box<dyn Handler>],
    pub(crate) state: &'a mut ChannelState,
}

impl HandlerContext<'_> {
    /// Queues `data` for sending. The event loop writes it after the current callback batch, or
    /// when the socket becomes writable. Never blocks; back-pressure is applied by pausing reads
    /// (see [`is_writable`](Self::is_writable)). Dropped after the connection closed.
    pub fn write(&mut self, data: &[u8]) {
        if !self.state.closed {
            self.state.out.push(data);
        }
    }

    /// Closes the connection gracefully: no more reads are delivered, queued output is flushed,
    /// then the socket is closed and `inactive` fires.
    pub fn close(&mut self) {
        self.state.closing = true;
    }

    /// True once [`close`](Self::close) was called or the peer closed its side.
    pub fn is_closing(&self) -> bool {
        self.state.closing
    }

    /// False while more than the high-water mark of output is queued (or reading is paused for
    /// that reason): a handler that produces output on its own should then wait for
    /// [`Handler::writable`].
    pub fn is_writable(&self) -> bool {
        !self.state.paused && self.state.out.len() <= self.state.high_water
    }

    /// Bytes queued and not yet written to the socket.
    pub fn queued(&self) -> usize {
        self.state.out.len()
    }

    /// The remote address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.state.peer
    }

    /// Index of the event loop this connection is bound to.
    pub fn loop_index(&self) -> usize {
        self.state.loop_index
    }

    /// Calls `f` with the next handler and a context for the rest; `None` at the tail.
    fn next<R>(&mut self, f: impl FnOnce(&mut dyn Handler, &mut HandlerContext<'_>) -> R) -> Option<R> {
        let (handler, rest) = self.next.split_first_mut()?;
        Some(f(handler.as_mut(), &mut HandlerContext { next: rest, state: self.state }))
    }

    /// Passes `active` to the next handler.
    pub fn fire_active(&mut self) {
        self.next(|h, ctx| h.active(ctx));
    }

    /// Passes `data` to the next handler's `read` (nothing happens once the connection is
    /// closing, or at the tail).
    pub fn fire_read(&mut self, data: &[u8]) {
        if !self.state.closing {
            self.next(|h, ctx| h.read(ctx, data));
        }
    }

    /// Passes `writable` to the next handler.
    pub fn fire_writable(&mut self) {
        self.next(|h, ctx| h.writable(ctx));
    }

    /// Passes `inactive` to the next handler.
    pub fn fire_inactive(&mut self) {
        self.next(|h, ctx| h.inactive(ctx));
    }

    /// Passes `err` to the next handler; at the tail, closes the connection.
    pub fn fire_error(&mut self, err: &io::Error) {
        if self.next(|h, ctx| h.error(ctx, err)).is_none() {
            self.close();
        }
    }
}
