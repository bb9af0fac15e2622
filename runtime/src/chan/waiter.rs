//! Blocked channel operations: the per-operation [`Context`] (the "selected
//! slot") and the per-channel queue [`Entry`].
//!
//! # The protocol
//!
//! A blocking operation (a plain `send`/`recv` that cannot complete at once,
//! or a `select!` none of whose cases is ready) creates one [`Context`] and
//! pushes one [`Entry`] per case onto the wait queue of that case's channel
//! (`sendq` for a send, `recvq` for a receive), each entry carrying the case's
//! index and a [`Packet`], a one-slot mailbox for the value. It then parks
//! until the context leaves `WAITING`.
//!
//! A *peer* is any other party that finds the entry while holding the
//! channel's lock: a sender or receiver that can complete with it, or the
//! party that closes or disconnects the channel. Before doing anything with
//! an entry, the peer must *claim* it by CAS-ing the entry's context from
//! `WAITING` to `SELECTED(entry.case)`. Only one CAS can ever win, so a waiter
//! registered on several channels is completed by at most one of them; a peer
//! whose CAS fails drops the (stale) entry and tries the next one, so a value
//! is never handed to a waiter that will not take it (no lost message).
//!
//! ```text
//!                    peer CAS (under the case's channel lock)
//!   WAITING(0) ─────────────────────────────────────────────▶ SELECTED(i) = i + 2
//!       │                                                      (terminal: case i completed,
//!       │  waiter CAS after its deadline passed                 or found its channel closed)
//!       └─────────────────────────────────────────────────────▶ ABORTED(1)
//!                                                               (terminal: timed out, nothing done)
//! ```
//!
//! After a successful claim the peer, still under the channel lock, completes
//! the transfer through the entry's packet:
//!
//! * a receiver claiming a waiting sender takes the value out of its packet
//!   (an empty packet after `SELECTED` therefore means "sent");
//! * a sender claiming a waiting receiver puts the value into its packet (an
//!   empty packet after `SELECTED` therefore means "disconnected");
//! * closing or disconnecting claims every entry and leaves the packets as they
//!   are, which by the two rules above reads as "disconnected" on both sides.
//!
//! It then unparks the waiter's coroutine, after releasing the lock.
//!
//! The waiter, once it sees a terminal state, takes every channel lock it
//! registered under again and removes its remaining entries. Only then does it
//! look at the packet of the selected case. Taking the locks also
//! synchronises with the peer's critical section, so the transfer is complete
//! by then. A peer claims only while holding the channel lock and the waiter
//! withdraws under the same lock, so no peer can be touching a packet
//! after the withdrawal.
//!
//! Invariants: a context leaves `WAITING` exactly once; an entry whose context
//! is not `WAITING` is stale and is skipped (and dropped) by peers; entries
//! are only ever touched under their channel's lock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use crate::coroutine::{self, Coroutine};
use crate::task::WaitReason;

const WAITING: usize = 0;
const ABORTED: usize = 1;
const FIRST_CASE: usize = 2;

/// How a blocked operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A peer claimed case `i` (completed it, or found its channel closed).
    Selected(usize),
    /// The deadline passed first; no case was touched.
    Aborted,
}

/// The "selected" slot of one blocked operation, shared by all its entries.
#[doc(hidden)]
pub struct Context {
    /// `WAITING`, `ABORTED` or `FIRST_CASE + case`; see the module docs.
    state: AtomicUsize,
    /// The coroutine to unpark once the state is terminal.
    co: Coroutine,
}

impl Context {
    /// A fresh `WAITING` context for the calling coroutine.
    pub(crate) fn new() -> Arc<Context> {
        Arc::new(Context { state: AtomicUsize::new(WAITING), co: coroutine::current() })
    }

    /// Peer side: claims the waiter for `case`. Returns false if it is
    /// already claimed or aborted (the entry is stale).
    pub(crate) fn try_select(&self, case: usize) -> bool {
        self.state.compare_exchange(WAITING, FIRST_CASE + case, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// The coroutine to unpark after a successful [`Context::try_select`].
    pub(crate) fn coroutine(&self) -> Coroutine {
        self.co.clone()
    }

    /// Waiter side: parks until a peer claims the context or `deadline`
    /// passes (then it aborts, unless a peer claims it first).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Outcome {
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s != WAITING {
                return decode(s);
            }
            // A destructor run by the shutdown unwind must not wait (park
            // returns at once there): it gives up as if its deadline passed.
            let give_up = crate::context::cancelling();
            match deadline {
                None if !give_up => coroutine::park_for(WaitReason::Sync),
                _ => {
                    let d = deadline.unwrap_or_else(Instant::now);
                    let now = Instant::now();
                    if now >= d || give_up {
                        match self.state.compare_exchange(
                            WAITING,
                            ABORTED,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => return Outcome::Aborted,
                            Err(s) => return decode(s),
                        }
                    }
                    coroutine::park_until(d, WaitReason::Sync);
                }
            }
        }
    }
}

fn decode(s: usize) -> Outcome {
    debug_assert!(s != WAITING);
    if s == ABORTED {
        Outcome::Aborted
    } else {
        Outcome::Selected(s - FIRST_CASE)
    }
}

/// One-slot mailbox shared by a waiter and the entry it queued.
pub(crate) type Packet<T> = Arc<Mutex<Option<T>>>;

/// A blocked case queued on one channel.
pub(crate) struct Entry<T> {
    /// The operation's context (shared by its entries on all channels).
    pub(crate) ctx: Arc<Context>,
    /// This case's index within the operation.
    pub(crate) case: usize,
    /// The value being sent (send entries) or the slot to receive into.
    pub(crate) packet: Packet<T>,
}

impl<T> Entry<T> {
    /// Builds an entry for `case` of `ctx` around `packet`.
    pub(crate) fn new(ctx: &Arc<Context>, case: usize, packet: &Packet<T>) -> Entry<T> {
        Entry { ctx: Arc::clone(ctx), case, packet: Arc::clone(packet) }
    }
}
