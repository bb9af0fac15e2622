//! Blocked channel operations: the per-operation [`Selection`] (the "selected
//! slot") and the per-channel queue [`Entry`].
//!
//! # The protocol
//!
//! A blocking operation (a plain `send`/`recv` that cannot complete at once,
//! or a `select!` none of whose cases is ready) creates one [`Selection`] and
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
//! A peer never claims a *doomed* waiter, one whose coroutine will never
//! return from its wait normally (`Coroutine::is_doomed`: it is being
//! unwound, or its runtime has begun to shut down). A value handed to it, or
//! taken from it, would be lost with it. The peer aborts such a context
//! instead (the same CAS, `WAITING → ABORTED`, so only if it is still
//! waiting), drops the entry and goes on to the next one, exactly as for a
//! stale entry.
//!
//! ```text
//!                    peer CAS (under the case's channel lock), waiter not doomed
//!   WAITING(0) ─────────────────────────────────────────────▶ SELECTED(i) = i + 2
//!       │                                                      (terminal: case i completed,
//!       │                                                       or found its channel closed)
//!       │  waiter CAS: its deadline passed, or its wait is
//!       │  being unwound (withdrawal guard, see below)
//!       ├─────────────────────────────────────────────────────▶ ABORTED(1)
//!       │  peer CAS (under a channel lock), waiter doomed        (terminal: nothing done)
//!       └─────────────────────────────────────────────────────▶ ABORTED(1)
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
//! It then unparks the waiter's coroutine, after releasing the lock. (A
//! doomed waiter aborted by a peer is not unparked: the shutdown unwind is
//! what ends its wait.)
//!
//! # Withdrawal, also when the wait is unwound
//!
//! The waiter withdraws through a guard created right after it queued its
//! entries and dropped when its wait ends, normally or because the shutdown
//! unwind passes through it (the unwind starts inside `park`, so the wait's
//! frames unwind and their destructors run). The guard first CASes the
//! context `WAITING → ABORTED` (a no-op if it is already terminal), then takes
//! every channel lock the operation registered under and removes its
//! remaining entries. So a waiter never stays queued after its coroutine is
//! gone: a channel shared with the outside world (a plain thread, another
//! runtime) does not route values into, or out of, a dead coroutine. An
//! unwound sender's value is dropped with its packet, once, by the unwinding
//! frame. Only after the withdrawal does a returning waiter look at the
//! packet of the selected case. Taking the locks also synchronises with the
//! peer's critical section, so the transfer is complete by then. A peer
//! claims only while holding the channel lock and the waiter withdraws under
//! the same lock, so no peer can be touching a packet after the withdrawal.
//!
//! A waiter that finds its context `ABORTED` without having aborted it
//! itself was found doomed by a peer: it does not return (it parks until the
//! unwind arrives), except in a wait begun by a destructor during the unwind,
//! which gives up at once as if its deadline had passed.
//!
//! One race is left, and is harmless: a peer may claim a waiter just before
//! its runtime begins to shut down. The transfer then happened while the
//! waiter was alive (as if it had received the value and been dropped right
//! after); the shutdown never makes a *later* operation lose a value.
//!
//! Invariants: a context leaves `WAITING` exactly once; an entry whose context
//! is not `WAITING` is stale and is skipped (and dropped) by peers; entries
//! are only ever touched under their channel's lock; once a waiter's
//! withdrawal guard has run, none of its entries is queued anywhere.

use std::ptr::NonNull;
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
pub struct Selection {
    /// `WAITING`, `ABORTED` or `FIRST_CASE + case`; see the module docs.
    state: AtomicUsize,
    /// The coroutine to unpark once the state is terminal.
    co: Coroutine,
}

impl Selection {
    /// A fresh `WAITING` context for the calling coroutine (shared by the
    /// cases of a `select!`).
    pub(crate) fn new() -> Arc<Selection> {
        Arc::new(Selection::on_stack())
    }

    /// A fresh `WAITING` context, to be kept in the waiter's frame (a plain
    /// `send`/`recv`: no allocation; its withdrawal guard, dropped before
    /// it, keeps the entries from outliving it).
    pub(crate) fn on_stack() -> Selection {
        Selection { state: AtomicUsize::new(WAITING), co: coroutine::current() }
    }

    /// Peer side: claims the waiter for `case`. Returns false if it is
    /// already claimed or aborted (the entry is stale), or if its coroutine
    /// is doomed: the context is then aborted instead (see the module docs).
    pub(crate) fn try_select(&self, case: usize) -> bool {
        if self.co.is_doomed() {
            self.abort();
            return false;
        }
        self.state.compare_exchange(WAITING, FIRST_CASE + case, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// `WAITING → ABORTED`; false if the context was already terminal.
    pub(crate) fn abort(&self) -> bool {
        self.state.compare_exchange(WAITING, ABORTED, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// The coroutine to unpark after a successful [`Selection::try_select`].
    pub(crate) fn coroutine(&self) -> Coroutine {
        self.co.clone()
    }

    /// Waiter side: parks until a peer claims the context or `deadline`
    /// passes (then it aborts, unless a peer claims it first). Does not
    /// return if a peer found the waiter doomed, unless it is waiting inside
    /// a destructor run by the shutdown unwind (see the module docs).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Outcome {
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s == ABORTED {
                // Only a peer aborts while we are in this loop: we are doomed.
                return wait_for_unwind();
            }
            if s != WAITING {
                return decode(s);
            }
            // A destructor run by the shutdown unwind must not wait (park
            // returns at once there): it gives up as if its deadline passed.
            let give_up = crate::sched::context::cancelling();
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

/// A doomed waiter's wait: park until the shutdown unwind starts inside
/// `park` (it never returns from there), or give up at once inside a
/// destructor run by that unwind.
fn wait_for_unwind() -> Outcome {
    while !crate::sched::context::cancelling() {
        coroutine::park_for(WaitReason::Sync);
    }
    Outcome::Aborted
}

fn decode(s: usize) -> Outcome {
    debug_assert!(s != WAITING);
    if s == ABORTED {
        Outcome::Aborted
    } else {
        Outcome::Selected(s - FIRST_CASE)
    }
}

/// One-slot mailbox shared by a waiter and the entry it queued (a `select!`
/// case keeps it in an `Arc`; a plain `send`/`recv` in its frame).
pub(crate) type Packet<T> = Arc<PacketCell<T>>;

/// The mailbox itself.
pub(crate) type PacketCell<T> = Mutex<Option<T>>;

/// A blocked case queued on one channel. It points into the waiter's frame
/// (or into `Arc`s the frame holds): the context and the packet.
///
/// Why that is sound: an entry is only ever touched under its channel's
/// lock, and the waiter's withdrawal guard takes that lock and removes its
/// entries before the frame lets go of the context and the packet (the
/// guard is declared after them, so it is dropped first, on return and on
/// unwind alike). A peer that claims an entry copies what it needs (the
/// coroutine to unpark) before it releases the lock.
pub(crate) struct Entry<T> {
    /// The operation's context (shared by its entries on all channels).
    ctx: NonNull<Selection>,
    /// This case's index within the operation.
    pub(crate) case: usize,
    /// The value being sent (send entries) or the slot to receive into.
    packet: NonNull<PacketCell<T>>,
}

// SAFETY: an entry is used only under its channel's lock, while the waiter
// keeps what it points to alive (see `Entry`); it carries a `T` between
// threads only as a channel does, so it is `Send` when `T` is.
unsafe impl<T: Send> Send for Entry<T> {}

impl<T> Entry<T> {
    /// Builds an entry for `case` of `ctx` around `packet`. The caller (the
    /// waiter) keeps both alive until its withdrawal has removed the entry.
    pub(crate) fn new(ctx: &Selection, case: usize, packet: &PacketCell<T>) -> Entry<T> {
        Entry { ctx: NonNull::from(ctx), case, packet: NonNull::from(packet) }
    }

    /// The operation's context. Only under the channel lock.
    pub(crate) fn ctx(&self) -> &Selection {
        // SAFETY: alive while the entry is queued, and entries are used only
        // under the channel lock (see `Entry`).
        unsafe { self.ctx.as_ref() }
    }

    /// The case's mailbox. Only under the channel lock.
    pub(crate) fn packet(&self) -> &PacketCell<T> {
        // SAFETY: as in `ctx`.
        unsafe { self.packet.as_ref() }
    }

    /// Is this an entry of `ctx`?
    pub(crate) fn belongs_to(&self, ctx: &Selection) -> bool {
        std::ptr::eq(self.ctx.as_ptr(), ctx)
    }
}
