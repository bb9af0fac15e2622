//! The engine behind [`select!`](crate::select): waiting on several channel
//! operations at once.
//!
//! # Algorithm (Go's `selectgo`, on the protocol of `selection`)
//!
//! 1. **Lock** the channels of all cases, in address order, each distinct
//!    channel once (a channel may appear in several cases). Every other
//!    operation takes at most one channel lock, so the fixed order rules out
//!    deadlock between selects.
//! 2. **Poll** the cases in a fresh random order and complete the first that
//!    can complete without waiting (a recv or send on a disconnected channel
//!    counts: it completes with an error). Random order makes the choice among
//!    ready cases uniform, so no case starves. With every lock held, nothing
//!    can change between the poll and step 3.
//! 3. If none is ready: return for `default`, otherwise **register** one entry
//!    per case, all sharing one fresh `Selection`, then **unlock** and **park**
//!    until a peer claims the context (CAS `WAITING → SELECTED(i)`) or the
//!    `default(timeout)` deadline aborts it (`WAITING → ABORTED`).
//! 4. **Withdraw** (a guard, so it also runs when the shutdown unwind passes
//!    through the wait): abort the context if it is still waiting, lock the
//!    channels again and remove the entries of every case. Peers that met an entry of ours after the claim found the CAS
//!    failing and left their value in place (the other message stays
//!    available to other receivers). Only then read the selected case's
//!    packet.
//!
//! A send case's value is evaluated and moved into the select before it
//! blocks, as in Go; if another case is chosen, the value is dropped with the
//! case.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::error::{RecvError, SendError};
use super::selection::{Outcome, Packet, Selection};
use super::shared::{TryRecv, TrySend};
use super::{Receiver, Sender};
use crate::coroutine::Coroutine;

/// When a select gives up waiting.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// No `default` case: wait for ever.
    Block,
    /// `default =>`: do not wait at all.
    NonBlocking,
    /// `default(timeout) =>`: wait until this instant.
    Deadline(Instant),
}

impl Mode {
    /// The mode of `default(timeout)`, measured from now.
    pub fn timeout(timeout: Duration) -> Mode {
        match Instant::now().checked_add(timeout) {
            Some(d) => Mode::Deadline(d),
            None => Mode::Block,
        }
    }
}

/// One case of a select, type-erased so that cases of different message
/// types can sit in one slice. Used by the `select!` expansion only; its only
/// implementors are [`RecvCase`] and [`SendCase`].
///
/// The select driver locks and unlocks channels through these methods and
/// reaches into the locked channel state from them, so memory safety rests
/// on every implementor keeping the contract below: the trait is `unsafe` to
/// implement.
///
/// # Safety
///
/// An implementor must guarantee:
///
/// 1. **One lock per address.** `chan_addr` returns the same value on every
///    call for the whole life of the case, and it identifies the mutex that
///    `lock` and `unlock` act on: two cases (of any types) return equal
///    addresses if and only if they lock the same mutex. The driver locks each
///    distinct address once, in address order, and unlocks exactly what it
///    locked; a lying address means a double lock (deadlock) or the release
///    of a mutex this thread does not hold.
/// 2. **Lock discipline.** `lock` returns holding that mutex; `unlock`
///    releases it and is only called (by the driver) when this thread holds
///    it through `lock`. No other method takes, releases, or waits for any
///    lock of any channel, and none parks.
/// 3. **Locked access only.** `try_complete`, `register` and `unregister`
///    touch the channel's guarded state only while its mutex is held by the
///    calling select, and keep no reference to it past the call. The driver
///    calls them one at a time, so such a reference is never aliased.
/// 4. **The waiter protocol** of the channel module: `register` queues only
///    entries of `ctx` for `case`, whose packet the case keeps until
///    `complete_selected`; `unregister` removes every entry of `ctx` that
///    `register` queued on this case's channel; `complete_selected` reads
///    only the case's own packet.
///
/// The `unsafe` methods in turn require of their caller that the case's
/// channel is locked by this select through [`SelectCase::lock`].
#[doc(hidden)]
pub unsafe trait SelectCase {
    /// Address of the channel, for lock ordering and deduplication.
    fn chan_addr(&self) -> usize;
    /// Locks the channel.
    fn lock(&self);
    /// Unlocks the channel.
    ///
    /// # Safety
    /// The channel is locked by this select, through [`SelectCase::lock`].
    unsafe fn unlock(&self);
    /// Completes the case now if it needs no waiting; stores the result.
    ///
    /// # Safety
    /// As [`SelectCase::unlock`], and no other call on a case of the same
    /// channel runs concurrently.
    unsafe fn try_complete(&mut self, wake: &mut Option<Coroutine>) -> bool;
    /// Queues an entry for `case` of `ctx`.
    ///
    /// # Safety
    /// As [`SelectCase::try_complete`].
    unsafe fn register(&mut self, ctx: &Arc<Selection>, case: usize);
    /// Removes the entries of `ctx`.
    ///
    /// # Safety
    /// As [`SelectCase::try_complete`].
    unsafe fn unregister(&mut self, ctx: &Arc<Selection>);
    /// After withdrawal: the case was selected by a peer; store its result.
    fn complete_selected(&mut self);
}

/// A `recv(rx) -> msg` case.
#[doc(hidden)]
pub struct RecvCase<'a, T> {
    rx: &'a Receiver<T>,
    packet: Option<Packet<T>>,
    result: Option<Result<T, RecvError>>,
}

/// A `send(tx, value) -> res` case.
#[doc(hidden)]
pub struct SendCase<'a, T> {
    tx: &'a Sender<T>,
    value: Option<T>,
    packet: Option<Packet<T>>,
    result: Option<Result<(), SendError<T>>>,
}

/// Builds a receive case (used by `select!`).
#[doc(hidden)]
pub fn recv_case<T>(rx: &Receiver<T>) -> RecvCase<'_, T> {
    RecvCase { rx, packet: None, result: None }
}

/// Builds a send case (used by `select!`).
#[doc(hidden)]
pub fn send_case<T>(tx: &Sender<T>, value: T) -> SendCase<'_, T> {
    SendCase { tx, value: Some(value), packet: None, result: None }
}

impl<T> RecvCase<'_, T> {
    /// The result of the selected case.
    pub fn into_result(self) -> Result<T, RecvError> {
        self.result.expect("select!: the selected case has no result")
    }
}

impl<T> SendCase<'_, T> {
    /// The result of the selected case.
    pub fn into_result(self) -> Result<(), SendError<T>> {
        self.result.expect("select!: the selected case has no result")
    }
}

// SAFETY: (1) the address is that of the `Chan` the receiver points to,
// which is fixed for the case's life (it borrows the receiver) and owns the
// mutex `raw_lock`/`raw_unlock` act on; (2) `lock`/`unlock` are those calls,
// and the other methods only call non-locking, non-parking `Inner` methods;
// (3) they reach the state through `locked_inner` for the duration of the
// call only; (4) `register` queues one entry of `ctx` with a packet the case
// keeps, `unregister` removes every entry of `ctx`, `complete_selected`
// reads the case's packet only.
unsafe impl<T> SelectCase for RecvCase<'_, T> {
    fn chan_addr(&self) -> usize {
        self.rx.chan.addr()
    }

    fn lock(&self) {
        self.rx.chan.raw_lock();
    }

    unsafe fn unlock(&self) {
        // SAFETY: forwarded contract: this select holds the lock.
        unsafe { self.rx.chan.raw_unlock() }
    }

    unsafe fn try_complete(&mut self, wake: &mut Option<Coroutine>) -> bool {
        // SAFETY: the lock is held and no other reference to the state is
        // live (trait contract); the reference ends with this call.
        let inner = unsafe { self.rx.chan.locked_inner() };
        match inner.try_recv() {
            TryRecv::Received(v, w) => {
                *wake = w;
                self.result = Some(Ok(v));
                true
            }
            TryRecv::Disconnected => {
                self.result = Some(Err(RecvError));
                true
            }
            TryRecv::Empty => false,
        }
    }

    unsafe fn register(&mut self, ctx: &Arc<Selection>, case: usize) {
        let packet = Arc::new(Mutex::new(None));
        // SAFETY: as in `try_complete`.
        unsafe { self.rx.chan.locked_inner() }.register_recv(ctx, case, &packet);
        self.packet = Some(packet);
    }

    unsafe fn unregister(&mut self, ctx: &Arc<Selection>) {
        // SAFETY: as in `try_complete`.
        unsafe { self.rx.chan.locked_inner() }.unregister(ctx);
    }

    fn complete_selected(&mut self) {
        let got = self.packet.as_ref().and_then(|p| p.lock().take());
        self.result = Some(got.ok_or(RecvError));
    }
}

// SAFETY: as for `RecvCase`, with the sender's `Chan`.
unsafe impl<T> SelectCase for SendCase<'_, T> {
    fn chan_addr(&self) -> usize {
        self.tx.chan.addr()
    }

    fn lock(&self) {
        self.tx.chan.raw_lock();
    }

    unsafe fn unlock(&self) {
        // SAFETY: forwarded contract: this select holds the lock.
        unsafe { self.tx.chan.raw_unlock() }
    }

    unsafe fn try_complete(&mut self, wake: &mut Option<Coroutine>) -> bool {
        let Some(v) = self.value.take() else {
            return false;
        };
        // SAFETY: the lock is held and no other reference to the state is
        // live (trait contract); the reference ends with this call.
        let inner = unsafe { self.tx.chan.locked_inner() };
        match inner.try_send(self.tx.chan.cap, v) {
            TrySend::Sent(w) => {
                *wake = w;
                self.result = Some(Ok(()));
                true
            }
            TrySend::Disconnected(v) => {
                self.result = Some(Err(SendError(v)));
                true
            }
            TrySend::Full(v) => {
                self.value = Some(v);
                false
            }
        }
    }

    unsafe fn register(&mut self, ctx: &Arc<Selection>, case: usize) {
        let packet = Arc::new(Mutex::new(self.value.take()));
        // SAFETY: as in `try_complete`.
        unsafe { self.tx.chan.locked_inner() }.register_send(ctx, case, &packet);
        self.packet = Some(packet);
    }

    unsafe fn unregister(&mut self, ctx: &Arc<Selection>) {
        // SAFETY: as in `try_complete`.
        unsafe { self.tx.chan.locked_inner() }.unregister(ctx);
    }

    fn complete_selected(&mut self) {
        let left = self.packet.as_ref().and_then(|p| p.lock().take());
        self.result = Some(match left {
            None => Ok(()),
            Some(v) => Err(SendError(v)),
        });
    }
}

/// Holds the locks of a set of cases; unlocks them on drop (also if a
/// method panics, so a poisoned select cannot wedge a channel).
struct Locked<'c, 'a> {
    cases: &'c mut [&'a mut dyn SelectCase],
    /// Case indices sorted by channel address.
    order: &'c [usize],
}

impl<'c, 'a> Locked<'c, 'a> {
    fn new(cases: &'c mut [&'a mut dyn SelectCase], order: &'c [usize]) -> Self {
        let mut prev = None;
        for &i in order {
            let addr = cases[i].chan_addr();
            if prev != Some(addr) {
                cases[i].lock();
                prev = Some(addr);
            }
        }
        Locked { cases, order }
    }
}

impl Drop for Locked<'_, '_> {
    fn drop(&mut self) {
        let mut prev = None;
        for &i in self.order {
            let addr = self.cases[i].chan_addr();
            if prev != Some(addr) {
                // SAFETY: `Locked::new` locked exactly these distinct channels.
                unsafe { self.cases[i].unlock() };
                prev = Some(addr);
            }
        }
    }
}

/// The withdrawal guard of a parked select (see the channel module's waiter
/// protocol): dropped when the wait returns, or by the shutdown unwind passing
/// through the wait, it aborts the context if it is still waiting, then locks
/// every case's channel again and removes the select's entries. The cases
/// (and their packets, with an unsent value) are dropped after it, outside
/// the locks.
struct Withdraw<'c, 'a> {
    cases: &'c mut [&'a mut dyn SelectCase],
    order: &'c [usize],
    ctx: &'c Arc<Selection>,
}

impl Drop for Withdraw<'_, '_> {
    fn drop(&mut self) {
        self.ctx.abort();
        let locked = Locked::new(self.cases, self.order);
        for i in 0..locked.cases.len() {
            // SAFETY: every case's channel is locked by `locked`; calls are
            // sequential.
            unsafe { locked.cases[i].unregister(self.ctx) };
        }
    }
}

/// Runs a select over `cases`. Returns the index of the completed case (its
/// result is stored in it), or `None` if the `default` case is to run.
#[doc(hidden)]
pub fn run(cases: &mut [&mut dyn SelectCase], mode: Mode) -> Option<usize> {
    let could_park = !matches!(mode, Mode::NonBlocking);
    let selected = run_inner(cases, mode);
    if could_park {
        crate::sched::budget::spend();
    }
    selected
}

fn run_inner(cases: &mut [&mut dyn SelectCase], mode: Mode) -> Option<usize> {
    let n = cases.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| cases[i].chan_addr());
    let poll = random_permutation(n);
    let deadline = match mode {
        Mode::Block => None,
        Mode::NonBlocking => Some(None),
        Mode::Deadline(d) => Some(Some(d)),
    };

    let ctx = {
        let locked = Locked::new(cases, &order);
        let mut wake = None;
        for &i in &poll {
            // SAFETY: all case channels are locked by `locked`; calls are
            // sequential.
            if unsafe { locked.cases[i].try_complete(&mut wake) } {
                drop(locked);
                if let Some(co) = wake {
                    co.unpark();
                }
                return Some(i);
            }
        }
        match deadline {
            Some(None) => return None,
            Some(Some(d)) if Instant::now() >= d => return None,
            _ => {}
        }
        let ctx = Selection::new();
        for i in 0..n {
            // SAFETY: as above.
            unsafe { locked.cases[i].register(&ctx, i) };
        }
        ctx
    };

    let outcome = {
        let _withdraw = Withdraw { cases: &mut *cases, order: &order, ctx: &ctx };
        crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
            kind: crate::task::SyncKind::Select,
            addr: 0,
        });
        ctx.wait(deadline.flatten())
    };
    match outcome {
        Outcome::Selected(i) => {
            cases[i].complete_selected();
            Some(i)
        }
        Outcome::Aborted => None,
    }
}

thread_local! {
    static RNG: Cell<u64> = Cell::new({
        let seed = RandomState::new().build_hasher().finish();
        seed | 1
    });
}

/// xorshift64* from a per-thread random seed.
fn next_random() -> u64 {
    RNG.with(|r| {
        let mut x = r.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        r.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
}

/// A uniformly random permutation of `0..n` (Fisher-Yates).
fn random_permutation(n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next_random() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

#[cfg(test)]
mod tests {
    use crate::chan::{bounded, unbounded};
    use std::time::Duration;

    /// The macro also expands inside the defining crate (`$crate` = `crate`).
    #[test]
    fn select_inside_the_crate() {
        let (tx, rx) = unbounded::<u8>();
        let (tx0, rx0) = bounded::<u8>(0);
        tx.send(1).unwrap();
        let got = crate::select! {
            recv(rx) -> m => m.unwrap(),
            recv(rx0) -> _ => 0,
            send(tx0, 9) -> _ => 0,
            default(Duration::from_millis(1)) => 0,
        };
        assert_eq!(got, 1);
        assert_eq!(super::random_permutation(0), Vec::<usize>::new());
        let mut p = super::random_permutation(5);
        p.sort();
        assert_eq!(p, [0, 1, 2, 3, 4]);
    }
}
