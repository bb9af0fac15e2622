//! The shared channel object behind every `Sender`/`Receiver` pair.
//!
//! One `parking_lot::Mutex` guards the buffer, the flags and both wait queues
//! (Go's design: one lock per channel). Critical sections are short and never
//! park, allocate only when a queue grows, and never run user code: values that
//! have to be dropped (on disconnection) are moved out first and dropped after
//! the lock is released. Waiters are unparked after the lock is released, too.
//!
//! # Invariants (under the lock)
//!
//! * A *live* entry is one whose context is still `WAITING` (see `selection`)
//!   and whose coroutine is not doomed (peers abort the entries of doomed
//!   waiters as they meet them, and a waiter unwound at shutdown withdraws its
//!   entries, see `selection`).
//! * If `recvq` holds a live entry, the buffer is empty: a receiver only
//!   queues when the buffer is empty, and every sender tries to hand off to a
//!   live receiver before it buffers.
//! * If `sendq` holds a live entry, the buffer is full (`cap` values; always
//!   the case for a rendezvous channel, whose cap is 0): a sender only queues
//!   when it cannot buffer, and a receiver that frees a slot refills it from
//!   the oldest live sender, which keeps each sender's values in FIFO order.
//! * Once `closed` is set, both queues stay empty of live entries: closing
//!   claims them all, and no operation queues on a closed channel.
//! * Once `receivers_gone` is set, the buffer stays empty and sends fail.
//!
//! # Channel states
//!
//! ```text
//!  OPEN ──close() / last Sender dropped──▶ CLOSED: sends fail, receivers drain the
//!   │                                      buffer, then get Disconnected
//!   └──last Receiver dropped──▶ NO_RECEIVERS: buffer dropped, sends fail
//! ```
//! (Both may happen; each is permanent.)
//!
//! # Buffer memory
//!
//! The buffer shrinks when it is mostly empty, so that a burst does not pin
//! its peak memory until the channel is dropped: see [`Inner::pop_buf`].

use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use parking_lot::lock_api::RawMutex as _;
use parking_lot::{Mutex, MutexGuard};

use super::selection::{Entry, Outcome, PacketCell, Selection};
use crate::coroutine::Coroutine;

/// The channel shared by all handles.
pub(crate) struct Chan<T> {
    inner: Mutex<Inner<T>>,
    /// Buffer capacity: `None` for unbounded, `Some(0)` for rendezvous.
    pub(crate) cap: Option<usize>,
    /// Number of live `Sender` handles.
    pub(crate) senders: AtomicUsize,
    /// Number of live `Receiver` handles.
    pub(crate) receivers: AtomicUsize,
}

/// The state guarded by the channel lock.
pub(crate) struct Inner<T> {
    buf: VecDeque<T>,
    /// No more sends: `close()` was called or every sender is gone.
    closed: bool,
    /// Every receiver is gone.
    receivers_gone: bool,
    sendq: VecDeque<Entry<T>>,
    recvq: VecDeque<Entry<T>>,
}

/// Result of a send attempt that must not block.
pub(crate) enum TrySend<T> {
    /// Sent; unpark this coroutine (a receiver that was handed the value).
    Sent(Option<Coroutine>),
    /// No room and no waiting receiver.
    Full(T),
    /// Closed or no receivers.
    Disconnected(T),
}

/// Result of a receive attempt that must not block.
pub(crate) enum TryRecv<T> {
    /// Received; unpark this coroutine (a sender whose value was taken).
    Received(T, Option<Coroutine>),
    /// Nothing available yet.
    Empty,
    /// Closed and drained.
    Disconnected,
}

/// Below this capacity (in values) the buffer is never shrunk.
const SHRINK_FLOOR: usize = 64;

/// Pops the first entry of `q` that can still be claimed, dropping stale ones
/// (and aborting those of doomed waiters, which `try_select` refuses).
fn pop_claimed<T>(q: &mut VecDeque<Entry<T>>) -> Option<Entry<T>> {
    while let Some(e) = q.pop_front() {
        if e.ctx().try_select(e.case) {
            return Some(e);
        }
    }
    None
}

/// Claims every live entry of `q` (without touching packets), for closing.
fn claim_all<T>(q: &mut VecDeque<Entry<T>>, wake: &mut Vec<Coroutine>) {
    for e in q.drain(..) {
        if e.ctx().try_select(e.case) {
            wake.push(e.ctx().coroutine());
        }
    }
}

fn unpark(co: Option<Coroutine>) {
    if let Some(co) = co {
        co.unpark();
    }
}

impl<T> Inner<T> {
    /// Takes the oldest buffered value, shrinking the buffer when it is
    /// mostly empty. The rule: when fewer than a quarter of the slots are in
    /// use and the capacity is above [`SHRINK_FLOOR`], shrink to twice the
    /// length (at least the floor). Amortised O(1): a shrink from capacity
    /// `c` copies fewer than `c / 4` values and leaves the buffer half full,
    /// so at least `len / 2` pops (or `len` pushes, to grow again) must
    /// happen before the next reallocation, each paying for a constant share.
    fn pop_buf(&mut self) -> Option<T> {
        let v = self.buf.pop_front()?;
        let (len, cap) = (self.buf.len(), self.buf.capacity());
        if cap > SHRINK_FLOOR && len < cap / 4 {
            self.buf.shrink_to((2 * len).max(SHRINK_FLOOR));
        }
        Some(v)
    }

    /// Sends `v` if that can be done without waiting.
    pub(crate) fn try_send(&mut self, cap: Option<usize>, v: T) -> TrySend<T> {
        if self.closed || self.receivers_gone {
            return TrySend::Disconnected(v);
        }
        if let Some(e) = pop_claimed(&mut self.recvq) {
            *e.packet().lock() = Some(v);
            return TrySend::Sent(Some(e.ctx().coroutine()));
        }
        if cap.is_none_or(|c| self.buf.len() < c) {
            self.buf.push_back(v);
            return TrySend::Sent(None);
        }
        TrySend::Full(v)
    }

    /// Receives a value if that can be done without waiting.
    pub(crate) fn try_recv(&mut self) -> TryRecv<T> {
        if let Some(v) = self.pop_buf() {
            // A slot was freed: move the oldest waiting sender's value in.
            let mut wake = None;
            if let Some(e) = pop_claimed(&mut self.sendq) {
                let moved = e.packet().lock().take();
                self.buf.push_back(moved.expect("a live send entry always holds its value"));
                wake = Some(e.ctx().coroutine());
            }
            return TryRecv::Received(v, wake);
        }
        if let Some(e) = pop_claimed(&mut self.sendq) {
            let v = e.packet().lock().take();
            let v = v.expect("a live send entry always holds its value");
            return TryRecv::Received(v, Some(e.ctx().coroutine()));
        }
        if self.closed {
            return TryRecv::Disconnected;
        }
        TryRecv::Empty
    }

    /// Queues a blocked send case (its value is in `packet`). The caller
    /// keeps `ctx` and `packet` alive until its withdrawal (`Entry`).
    pub(crate) fn register_send(&mut self, ctx: &Selection, case: usize, packet: &PacketCell<T>) {
        self.sendq.push_back(Entry::new(ctx, case, packet));
    }

    /// Queues a blocked receive case (as `register_send`).
    pub(crate) fn register_recv(&mut self, ctx: &Selection, case: usize, packet: &PacketCell<T>) {
        self.recvq.push_back(Entry::new(ctx, case, packet));
    }

    /// Removes every entry of `ctx` from both queues.
    pub(crate) fn unregister(&mut self, ctx: &Selection) {
        self.sendq.retain(|e| !e.belongs_to(ctx));
        self.recvq.retain(|e| !e.belongs_to(ctx));
    }

    /// Slots allocated for the buffer (for the shrink test).
    #[cfg(test)]
    fn buf_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Number of buffered values.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// True once no further value can ever be received beyond the buffer.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// True once sends fail: closed, or every receiver is gone.
    pub(crate) fn is_send_disconnected(&self) -> bool {
        self.closed || self.receivers_gone
    }
}

impl<T> Chan<T> {
    /// A channel with one sender and one receiver counted.
    pub(crate) fn new(cap: Option<usize>) -> Chan<T> {
        Chan {
            inner: Mutex::new(Inner {
                buf: VecDeque::with_capacity(cap.unwrap_or(0).min(1024)),
                closed: false,
                receivers_gone: false,
                sendq: VecDeque::new(),
                recvq: VecDeque::new(),
            }),
            cap,
            senders: AtomicUsize::new(1),
            receivers: AtomicUsize::new(1),
        }
    }

    /// Locks the channel state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        self.inner.lock()
    }

    /// Address used to order (and deduplicate) channel locks in `select!`.
    pub(crate) fn addr(&self) -> usize {
        (self as *const Self).cast::<()>() as usize
    }

    /// Locks the channel without a guard (for `select!`, which holds several
    /// channel locks of different types at once).
    pub(crate) fn raw_lock(&self) {
        // SAFETY: `raw()` is unsafe only because the raw mutex could be
        // unlocked behind a live guard; `select!` pairs this lock with exactly
        // one `raw_unlock` and never creates a guard while it holds the lock.
        unsafe { self.inner.raw() }.lock();
    }

    /// Releases a lock taken with [`Chan::raw_lock`].
    ///
    /// # Safety
    /// The caller must hold the lock through `raw_lock` and must no longer use
    /// any reference obtained from [`Chan::locked_inner`].
    pub(crate) unsafe fn raw_unlock(&self) {
        // SAFETY: the caller holds the lock via `raw_lock` (contract above).
        unsafe { self.inner.force_unlock() }
    }

    /// The state behind a lock taken with [`Chan::raw_lock`].
    ///
    /// # Safety
    /// The caller must hold the lock through `raw_lock`, and must not let the
    /// returned reference overlap with another one to the same channel or
    /// outlive the lock.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn locked_inner(&self) -> &mut Inner<T> {
        // SAFETY: the lock is held (contract above), so this is the only
        // access to the data, and the caller keeps the reference unique.
        unsafe { &mut *self.inner.data_ptr() }
    }

    /// Sends `v`, parking until `deadline` (`None`: forever) if it cannot go
    /// at once. Errors: `Ok(Err(v))` = timed out, `Err(v)` = disconnected.
    pub(crate) fn send(&self, v: T, deadline: Option<Instant>) -> Result<(), SendFail<T>> {
        let result = self.send_inner(v, deadline);
        crate::sched::budget::spend();
        result
    }

    fn send_inner(&self, v: T, deadline: Option<Instant>) -> Result<(), SendFail<T>> {
        let mut g = self.inner.lock();
        let v = match g.try_send(self.cap, v) {
            TrySend::Sent(w) => {
                drop(g);
                unpark(w);
                return Ok(());
            }
            TrySend::Disconnected(v) => return Err(SendFail::Disconnected(v)),
            TrySend::Full(v) => v,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(SendFail::Timeout(v));
        }
        // In this frame, not allocated: the guard (declared last, so
        // dropped first) withdraws the entry before they go.
        let ctx = Selection::on_stack();
        let packet: PacketCell<T> = Mutex::new(Some(v));
        g.register_send(&ctx, 0, &packet);
        drop(g);
        let withdraw = Withdraw { chan: self, ctx: &ctx, _packet: &packet };
        crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
            kind: crate::task::SyncKind::ChanSend,
            addr: (self as *const Self).cast::<()>() as usize,
        });
        let outcome = ctx.wait(deadline);
        // Withdraw (and synchronise with the peer's transfer) before reading.
        drop(withdraw);
        let left = packet.lock().take();
        match (outcome, left) {
            (Outcome::Selected(_), None) => Ok(()),
            (Outcome::Selected(_), Some(v)) => Err(SendFail::Disconnected(v)),
            (Outcome::Aborted, Some(v)) => Err(SendFail::Timeout(v)),
            (Outcome::Aborted, None) => unreachable!("aborted send lost its value"),
        }
    }

    /// Receives, parking until `deadline` (`None`: forever) if nothing is
    /// available. `Ok(None)` = timed out, `Err(())` = disconnected.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Result<Option<T>, ()> {
        let result = self.recv_inner(deadline);
        crate::sched::budget::spend();
        result
    }

    fn recv_inner(&self, deadline: Option<Instant>) -> Result<Option<T>, ()> {
        let mut g = self.inner.lock();
        match g.try_recv() {
            TryRecv::Received(v, w) => {
                drop(g);
                unpark(w);
                return Ok(Some(v));
            }
            TryRecv::Disconnected => return Err(()),
            TryRecv::Empty => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        let ctx = Selection::on_stack();
        let packet: PacketCell<T> = Mutex::new(None);
        g.register_recv(&ctx, 0, &packet);
        drop(g);
        let withdraw = Withdraw { chan: self, ctx: &ctx, _packet: &packet };
        crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
            kind: crate::task::SyncKind::ChanReceive,
            addr: (self as *const Self).cast::<()>() as usize,
        });
        let outcome = ctx.wait(deadline);
        drop(withdraw);
        let got = packet.lock().take();
        match (outcome, got) {
            (Outcome::Selected(_), Some(v)) => Ok(Some(v)),
            (Outcome::Selected(_), None) => Err(()),
            (Outcome::Aborted, _) => Ok(None),
        }
    }

    /// Closes the channel for sending. Returns false if it was already closed.
    pub(crate) fn close(&self) -> bool {
        let mut wake = Vec::new();
        {
            let mut g = self.inner.lock();
            if g.closed {
                return false;
            }
            g.closed = true;
            let g = &mut *g;
            claim_all(&mut g.recvq, &mut wake);
            claim_all(&mut g.sendq, &mut wake);
        }
        for co in wake {
            co.unpark();
        }
        true
    }

    /// Called when the last receiver is dropped: fails pending and future
    /// sends and drops the buffered values (outside the lock).
    pub(crate) fn disconnect_receivers(&self) {
        let mut wake = Vec::new();
        let dropped;
        {
            let mut g = self.inner.lock();
            g.receivers_gone = true;
            dropped = std::mem::take(&mut g.buf);
            let g = &mut *g;
            claim_all(&mut g.sendq, &mut wake);
            claim_all(&mut g.recvq, &mut wake);
        }
        for co in wake {
            co.unpark();
        }
        drop(dropped);
    }
}

/// The withdrawal guard of a blocked `send`/`recv` (see `selection`): dropped
/// when the wait returns, or by the shutdown unwind passing through the wait,
/// it aborts the context if it is still waiting and removes its entry. It is
/// declared after the packet, so an unwound sender's value is dropped (by the
/// packet, after this) outside the lock.
struct Withdraw<'a, T> {
    chan: &'a Chan<T>,
    ctx: &'a Selection,
    /// Borrowed so the packet cannot move while its entry may be queued.
    _packet: &'a PacketCell<T>,
}

impl<T> Drop for Withdraw<'_, T> {
    fn drop(&mut self) {
        self.ctx.abort();
        self.chan.inner.lock().unregister(self.ctx);
    }
}

/// Why a blocking send did not complete (the value is handed back).
pub(crate) enum SendFail<T> {
    /// The deadline passed.
    Timeout(T),
    /// The channel is closed or has no receivers.
    Disconnected(T),
}

#[cfg(test)]
mod tests {
    use super::{Chan, TryRecv, TrySend, SHRINK_FLOOR};

    #[test]
    fn drained_unbounded_buffer_shrinks() {
        let chan = Chan::<[u8; 256]>::new(None);
        let mut g = chan.lock();
        for _ in 0..100_000 {
            assert!(matches!(g.try_send(None, [7; 256]), TrySend::Sent(None)));
        }
        assert!(g.buf_capacity() >= 100_000);
        for _ in 0..100_000 - 10 {
            assert!(matches!(g.try_recv(), TryRecv::Received(..)));
        }
        assert_eq!(g.len(), 10);
        assert!(g.buf_capacity() <= 4 * SHRINK_FLOOR, "capacity {} kept after draining", g.buf_capacity());
        // Still a FIFO after the reallocations.
        for _ in 0..10 {
            assert!(matches!(g.try_recv(), TryRecv::Received(v, None) if v == [7; 256]));
        }
        assert!(matches!(g.try_recv(), TryRecv::Empty));
    }

    #[test]
    fn shrinking_keeps_order_and_floor() {
        let chan = Chan::<usize>::new(None);
        let mut g = chan.lock();
        let mut next_out = 0;
        for round in 0..4 {
            for i in 0..5_000 {
                assert!(matches!(g.try_send(None, round * 5_000 + i), TrySend::Sent(None)));
            }
            while g.len() > round {
                match g.try_recv() {
                    TryRecv::Received(v, None) => assert_eq!(v, next_out),
                    _ => unreachable!("a value is buffered"),
                }
                next_out += 1;
                assert!(g.buf_capacity() >= g.len());
            }
            assert!(g.buf_capacity() <= 4 * SHRINK_FLOOR);
        }
    }
}
