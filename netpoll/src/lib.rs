//! corio-netpoll: a readiness layer over the [`polling`] crate (epoll on Linux) that knows
//! nothing of coroutines. The corio coroutine runtime parks coroutines on it; a callback-style
//! event loop can drive it directly; tests drive it with plain threads.
//!
//! # Pieces
//!
//! - [`Poller`] ([`poller`] module): one epoll instance plus its registration table.
//!   [`Poller::wait`] blocks for readiness and dispatches it; [`Poller::notify`] wakes a blocked
//!   `wait`, with no syscall when the owner is awake.
//! - [`Registration`] ([`registration`] module): owns one fd, registered once, edge-triggered,
//!   for read and write. Its key is a slab index plus a generation ([`slab`] module), so events
//!   fetched for a closed fd whose number (or index) was reused are dropped.
//! - Per registration, a read slot and a write slot ([`slot`] module), Go's `pollDesc`:
//!   `Empty` / `Ready` / `Waiting(waker)`. Readiness that arrives before anyone waits is kept
//!   as `Ready`, so the EAGAIN-then-park race cannot lose a wake-up. The state machine and the
//!   race it closes are documented there.
//! - [`Wake`] ([`wake`] module): the waker abstraction; the runtime plugs in "unpark this
//!   coroutine", a callback loop "mark this channel ready", a thread `Thread::unpark`.
//! - [`PollError`] ([`error`] module): `Closed` (the registration was closed while or before
//!   waiting; as an `io::Error`, kind `NotConnected`, see [`is_closed`]) and `Busy` (double
//!   wait).
//!
//! # Topology: one `Poller` per worker
//!
//! `polling` lets only one thread wait at a time (a second concurrent `wait` returns at once
//! with nothing). Rather than one shared poller handed from worker to worker (tokio's driver:
//! a worker that blocks while holding it stalls all I/O, and handing it over costs wake-ups),
//! each worker owns one `Poller`, registers the fds of the coroutines it runs, and is the only
//! thread that waits on it. An idle worker blocks in its own poller with the timeout of its
//! next timer; other threads that give it work push to its inbox and call `notify()`, which
//! costs a syscall only if the worker is actually asleep. A readiness event for a coroutine
//! owned by another worker is woken through its `Wake` impl, which pushes to that worker's
//! inbox and notifies it. A `wait` is one `epoll_wait` (not `polling`'s five syscalls: see
//! [`Events`]); a coalesced `notify()` to an awake owner costs ~3 ns, and a notify to a blocked
//! owner until its `wait` returns p50 ~16 us (`examples/measure.rs`). Even so a worker should not
//! poll with timeout 0 on every scheduler tick: poll when idle (blocking) and, while busy, only
//! every N ticks.
//!
//! # Callback-style use
//!
//! Register with [`Registration::with_token`] and call [`Poller::wait_with`]: it reports
//! `ReadyEvent { token, readable, writable }` for each live registration that became ready.
//! Slots still record readiness (harmless if unused; clear with [`Registration::take_ready`]).
//!
//! ```
//! use corio_netpoll::{Events, Poller, Registration};
//! use std::io::Write;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//!
//! let poller = Poller::new()?;
//! let (a, mut b) = UnixStream::pair()?;
//! a.set_nonblocking(true)?;
//! let reg = Registration::with_token(&poller, a, 42)?;
//! b.write_all(b"hi")?;
//! let mut events = Events::new();
//! let mut seen = Vec::new();
//! poller.wait_with(&mut events, Some(Duration::from_secs(5)), |ev| seen.push(ev))?;
//! assert!(seen.iter().any(|ev| ev.token == 42 && ev.readable));
//! # drop(reg);
//! # std::io::Result::Ok(())
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod events;
pub mod poller;
pub mod registration;
pub mod slab;
pub mod slot;
pub mod wake;

pub use error::{is_closed, PollError};
pub use events::{Events, RawEvent};
pub use poller::{Poller, ReadyEvent};
pub use registration::Registration;
pub use slot::{Direction, Readiness};
pub use wake::{ArcWake, Wake};
