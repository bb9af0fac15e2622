//! Coroutine-aware synchronisation: locks and coordination primitives whose
//! waiting **parks the calling coroutine** instead of blocking the worker
//! thread.
//!
//! | type | what it is | fairness / policy |
//! | --- | --- | --- |
//! | [`Mutex`] / [`MutexGuard`] | mutual exclusion, no poisoning | Go's: barging allowed, direct hand-off to a waiter that has waited 1 ms |
//! | [`RwLock`] | many readers or one writer | FIFO once anybody queues; adjacent readers granted together |
//! | [`Condvar`] | wait for a condition under a [`Mutex`] | FIFO notification |
//! | [`WaitGroup`] | Go's `sync.WaitGroup` (`add`/`done`/`wait`) | wakes all at zero |
//! | [`Semaphore`] | counting semaphore with RAII permits | FIFO, hand-off of released permits |
//! | [`Barrier`] | `n` parties meet, one is the leader | reusable |
//! | [`OnceLock`] | one-time initialisation | losers park until the winner is done |
//!
//! Every primitive follows the same pattern: an atomic fast path that takes
//! no lock (`Mutex::lock` uncontended is one CAS), and a slow path that
//! queues a waiter record in a FIFO behind a short internal
//! `parking_lot::Mutex` (never held while parking) and then parks through
//! `crate::coroutine::park`. The party that removes a waiter from a queue
//! sets its final state under that queue lock; this is what makes timeouts
//! race-free. Each module documents its state machine.
//!
//! From a plain thread the same calls block that thread, so these types also
//! work between threads and coroutines.
//!
//! # Shutdown
//!
//! A primitive may outlive the runtime whose coroutines wait on it (held by
//! `main`, or shared with another runtime). Dropping the runtime unwinds its
//! parked coroutines; a waiter unwound while queued leaves the queue, or gives
//! back what it was handed (a lock, a permit, a notification), and no lock,
//! permit or notification is ever handed to a coroutine that will not run
//! again (a *doomed* one: being unwound, or of a runtime shutting down). So the
//! primitive stays fully usable from the outside afterwards.
//!
//! Destructors that run during that unwind cannot park. In them,
//! [`WaitGroup::wait`] and [`Barrier::wait`] give up at once; lock
//! acquisitions ([`Mutex`], [`RwLock`], [`Semaphore`], and a [`Condvar`] wait
//! that unwinds re-locking its mutex) wait for the holder with
//! `std::thread::yield_now`, and abort the process with a message naming the
//! coroutine after a few seconds if the holder is a coroutine that was parked
//! at the shutdown and is only unwound later on the same worker (it would
//! never release). The state machines are in each module's docs, the shared
//! waiter protocol in `waiter`'s.
//!
//! # The hazard these types exist for
//!
//! A coroutine runs on a worker thread shared with many other coroutines. If
//! it blocks the *thread* (not just itself), every coroutine queued on that
//! worker stalls with it, and if the thing it waits for must be produced by
//! one of those stalled coroutines, the program deadlocks. So inside a
//! coroutine:
//!
//! * use [`Mutex`], [`RwLock`], [`Condvar`] from here, not `std::sync` or
//!   `parking_lot` ones, whenever the lock may be contended for more than a
//!   few instructions or is held across anything that can park;
//! * never hold a `std`/`parking_lot` guard across a corio blocking call (a
//!   channel `send`/`recv`, `select!`, a `corio::sync` wait, corio I/O, sleep):
//!   the coroutine parks with the thread lock held, and any other coroutine
//!   that then tries that lock blocks its whole worker;
//! * use `corio::chan` instead of `std::sync::mpsc` / `crossbeam-channel`,
//!   and [`WaitGroup`]/[`Barrier`] instead of `std::sync::Barrier` or
//!   `thread::join`-style waits.
//!
//! ```
//! use corio::sync::Mutex;
//! use std::sync::Arc;
//!
//! // Good: a corio Mutex held across a channel send parks only this coroutine.
//! let log = Arc::new(Mutex::new(Vec::new()));
//! let (tx, rx) = corio::chan::bounded(1);
//! {
//!     let mut g = log.lock();
//!     g.push("sending");
//!     tx.send(1).unwrap(); // may park; other coroutines keep running
//! }
//! assert_eq!(rx.recv(), Ok(1));
//! ```
//!
//! A `std::sync::Mutex` (or `parking_lot::Mutex`) is still fine for data
//! touched in short critical sections that never park, which is how this
//! module uses `parking_lot` internally.

mod barrier;
mod condvar;
mod mutex;
mod once;
mod rwlock;
mod semaphore;
mod waiter;
mod waitgroup;

pub use self::barrier::{Barrier, BarrierWaitResult};
pub use self::condvar::{Condvar, WaitTimeoutResult};
pub use self::mutex::{Mutex, MutexGuard};
pub use self::once::OnceLock;
pub use self::rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use self::semaphore::{Semaphore, SemaphorePermit};
pub use self::waitgroup::WaitGroup;
