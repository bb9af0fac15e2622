//! corio-reactor: a small callback-style server framework in Netty's model, built directly on
//! `corio-netpoll` (epoll, edge-triggered) and *not* on corio's coroutines. It exists so the two
//! ways of writing a server can be compared on the same readiness layer, with the same
//! workloads: this one, where event loops call handlers, and corio's, where a coroutine per
//! connection runs plain blocking code.
//!
//! # The model
//!
//! Netty's three layers map onto this crate's modules:
//!
//! | Netty                     | here                                                      |
//! |---------------------------|-----------------------------------------------------------|
//! | thread model: boss + `EventLoopGroup` | [`acceptor`] thread + N [`event_loop`]s, one thread and one `Poller` each |
//! | I/O model: `Channel.Unsafe` | [`connection`]: read until `EAGAIN`, batched writes, back-pressure |
//! | data model: `ChannelPipeline` | [`handler`]: [`Handler`] callbacks, [`Pipeline`], [`HandlerContext`]; [`codec`] decoders |
//!
//! ```text
//!   acceptor thread                      event loop k (one thread, one Poller)
//!   accept4(NONBLOCK|CLOEXEC) ──round-robin──▶ inbox ─▶ register ─▶ conns[token]
//!   EMFILE: back off 5 ms..1 s      notify()           on readiness: read ─▶ [decoder] ─▶ [handler]
//!                                                                    write ◀── HandlerContext::write
//! ```
//!
//! A handler sees its connection only through callbacks (`active`, `read`, `writable`,
//! `inactive`, `error`) and acts through a [`HandlerContext`]; anything it must remember between two
//! reads (a partial line, a transaction in progress) lives in its own fields, an explicit state
//! machine. That is the callback model's cost in code shape; the coroutine model keeps the same
//! state in local variables and in the position of the code, at the price of a stack per
//! connection.
//!
//! # Invariants
//!
//! - A connection is bound to one event loop for life, so handlers run on one thread, one
//!   event at a time, without locks, and need not be `Send`.
//! - Every socket is registered once, edge-triggered; each readiness event is acted on until
//!   the kernel says `EAGAIN` (or a fairness cap of 16 reads, after which the connection is
//!   resumed after the other ready ones), so no edge is ever lost.
//! - Output is queued by [`HandlerContext::write`] and flushed after each read's callbacks, one
//!   `write(2)` for all replies to one read; the rest goes out when the socket is writable.
//! - Back-pressure: with more than the high-water mark (64 KiB) of output queued a connection
//!   stops reading until the queue drains to the low-water mark (32 KiB). A peer that writes
//!   without reading therefore cannot grow the server's memory without bound; TCP flow control
//!   pushes back on it instead.
//! - Memory per connection: one shared 16 KiB read buffer per *loop*, not per connection. An
//!   idle connection holds its registration, its handlers' state and no buffers (output and
//!   decoder buffers are freed when they empty); a coroutine per connection holds its stack
//!   (and usually its own read buffer) while it waits. This is the callback model's memory
//!   advantage.
//!
//! # Example: an echo server
//!
//! ```no_run
//! use corio_reactor::{HandlerContext, Handler, ServerBuilder};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn read(&mut self, ctx: &mut HandlerContext<'_>, data: &[u8]) {
//!         ctx.write(data);
//!     }
//! }
//!
//! let server = ServerBuilder::new().loops(2).bind("127.0.0.1:7000", |p| {
//!     p.add_last(Echo);
//! })?;
//! println!("listening on {}", server.local_addr());
//! server.wait(); // until stopped through server.stopper()
//! # std::io::Result::Ok(())
//! ```
//!
//! The repository's `examples/echo_callback.rs` and `examples/kv_callback.rs` are complete
//! servers; `examples/echo.rs` and `examples/kv.rs` are the same services as coroutines.
#![warn(missing_docs)]

pub mod acceptor;
pub mod codec;
pub mod connection;
pub mod event_loop;
pub mod handler;
pub mod server;

pub use codec::{FrameTooLong, LengthFieldDecoder, LineDecoder};
pub use handler::{Handler, HandlerContext, Pipeline};
pub use server::{Server, ServerBuilder, Stopper};
