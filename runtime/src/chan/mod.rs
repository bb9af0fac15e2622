//! Go-style channels for coroutines: `bounded`, `unbounded`, rendezvous
//! (`bounded(0)`), and [`select!`](crate::select).
//!
//! A channel is a multi-producer multi-consumer FIFO queue with
//! crossbeam-channel's shape. Both ends are cloneable; each value is received
//! exactly once; values from one sender arrive in the order it sent them.
//! Blocking operations **park the calling coroutine** (as
//! [`coroutine::park`](crate::coroutine::park) does), never the worker
//! thread, so they are safe to use inside coroutines; from a plain thread they
//! block that thread.
//!
//! ```
//! use corio::chan;
//!
//! let (tx, rx) = chan::bounded(2);
//! let producer = std::thread::spawn(move || {
//!     for i in 0..5 {
//!         tx.send(i).unwrap();
//!     }
//!     // dropping the last sender closes the channel
//! });
//! let got: Vec<i32> = rx.iter().collect();
//! assert_eq!(got, [0, 1, 2, 3, 4]);
//! producer.join().unwrap();
//! ```
//!
//! # Flavours
//!
//! * [`bounded(n)`](bounded), `n > 0`: a buffer of `n` values; `send` parks while
//!   it is full.
//! * [`bounded(0)`](bounded): rendezvous, like an unbuffered Go channel: `send`
//!   completes only when a receiver takes the value. `try_send` succeeds only
//!   if a receiver is already waiting, `try_recv` only if a sender is.
//! * [`unbounded()`](unbounded): `send` never parks.
//!
//! # Closing and disconnection
//!
//! Go closes with `close(ch)`; crossbeam closes when every sender is dropped.
//! corio does both: [`Sender::close`] closes the channel for every sender at
//! once (idempotent, returns whether this call closed it), and dropping the
//! last `Sender` closes it too. After closing:
//!
//! * sends fail with the value handed back (`SendError(v)`, `Disconnected(v)`),
//!   never a panic, including sends parked at the time of the close;
//! * receivers still get every buffered value, then `RecvError` /
//!   `Disconnected`; iterators end.
//!
//! Dropping the last `Receiver` drops the buffered values and makes every
//! send (pending or later) fail, as in crossbeam.
//!
//! # Waiting: the selected-slot protocol
//!
//! Every blocked operation (and every blocked `select!`) owns one atomic
//! "selected" slot, shared by the entries it queues on each channel it waits
//! on. A peer must win a CAS on that slot (`WAITING → SELECTED(case)`) before
//! it hands a value to the waiter or takes one from it. The waiter's own
//! timeout does `WAITING → ABORTED`. So a waiter is completed by at most one
//! operation, and a peer that loses the CAS keeps its value for someone else:
//! no message is lost or duplicated.
//!
//! # Channels at shutdown
//!
//! When a [`Runtime`](crate::Runtime) is dropped (also at the end of
//! [`run`](crate::run)), its parked coroutines are unwound. A coroutine parked
//! in a channel operation (`send`, `recv`, their timeout variants, or
//! `select!`) leaves the channel's wait queue as it unwinds, and from the
//! moment the shutdown begins no other party hands a value to it or takes one
//! from it. A channel shared with code outside the runtime (a plain thread, or
//! another runtime) therefore keeps working: a later `send` goes to the buffer
//! or to a live receiver, never into a dead coroutine, and a `try_send` on a
//! rendezvous channel whose only receivers were unwound reports
//! [`TrySendError::Full`]. The value of a send that was parked when its
//! coroutine was unwound was never sent: it is dropped, once, with that
//! coroutine's stack, and no receiver gets it.
//!
//! # Coming from `std::sync::mpsc`
//!
//! `use corio::chan as mpsc;` compiles most std programs unchanged:
//! [`channel`] and [`sync_channel`] build the two std flavours, [`SyncSender`]
//! names a sender of a bounded channel, and the error types
//! ([`SendError`], [`RecvError`], [`TryRecvError`], [`RecvTimeoutError`],
//! [`TrySendError`]) have std's names, variants and `pub` fields.
//!
//! ```
//! use corio::chan as mpsc;
//! use std::time::Duration;
//!
//! let (tx, rx) = mpsc::channel();
//! let tx2: mpsc::Sender<i32> = tx.clone();
//! let h = std::thread::spawn(move || tx2.send(1).unwrap());
//! assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(1));
//! h.join().unwrap();
//! drop(tx);
//! assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Disconnected));
//!
//! let (stx, srx): (mpsc::SyncSender<&str>, mpsc::Receiver<&str>) = mpsc::sync_channel(1);
//! stx.try_send("a").unwrap();
//! assert!(matches!(stx.try_send("b"), Err(mpsc::TrySendError::Full("b"))));
//! assert_eq!(srx.recv(), Ok("a"));
//! ```
//!
//! What differs from std: `Sender` and `SyncSender` are one type (so a trait
//! cannot be implemented for both), `Sender::try_send` exists for every
//! flavour, `Receiver` is cloneable (channels are multi-consumer) and `Sync`,
//! a sender can [`close`](Sender::close) the channel for all senders, and the
//! blocking calls park the calling coroutine rather than its thread.

mod error;
mod macros;
mod receiver;
mod select;
mod selection;
mod sender;
mod shared;

use std::sync::Arc;

pub use self::error::{RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
pub use self::receiver::{IntoIter, Iter, Receiver, TryIter};
pub use self::sender::Sender;

/// The sender of a bounded channel, under std's name: corio has one sender
/// type for every flavour (see the module docs for what differs from std).
pub type SyncSender<T> = Sender<T>;
pub use crate::select;

/// Items used by the expansion of [`select!`](crate::select); not public API.
#[doc(hidden)]
pub mod __private {
    pub use super::select::{recv_case, run, send_case, Mode, RecvCase, SelectCase, SendCase};
    pub use super::selection::Selection;
}

/// Creates a channel with a buffer of `cap` values; `cap == 0` makes a
/// rendezvous channel (a send waits for a receiver to take the value).
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    new(Some(cap))
}

/// Creates a channel whose buffer grows as needed: sends never wait.
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    new(None)
}

/// Creates an unbounded channel, as [`std::sync::mpsc::channel`]: the same
/// as [`unbounded`].
pub fn channel<T>() -> (Sender<T>, Receiver<T>) {
    unbounded()
}

/// Creates a channel with a buffer of `bound` values, as
/// [`std::sync::mpsc::sync_channel`]: the same as [`bounded`]; `0` makes a
/// rendezvous channel.
pub fn sync_channel<T>(bound: usize) -> (SyncSender<T>, Receiver<T>) {
    bounded(bound)
}

fn new<T>(cap: Option<usize>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(self::shared::Chan::new(cap));
    (Sender { chan: Arc::clone(&chan) }, Receiver { chan })
}
