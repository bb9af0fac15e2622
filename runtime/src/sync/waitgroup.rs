//! Go's `sync.WaitGroup`: wait for a collection of tasks to finish.
//!
//! # State machine
//!
//! `count` is the number of outstanding tasks. `add(n)` raises it, `done()`
//! lowers it by one, and the transition `1 → 0` wakes every parked `wait`er:
//!
//! ```text
//!  wait():   count == 0, or a cancelling context ──────────────▶ return at once
//!            count > 0: under the queue lock, re-check; still > 0 → queue, park
//!  done():   count 1 → 0: under the queue lock, notify and drain every waiter
//!            count 0 → -1: panic (as Go), the count stays 0
//!  a queued wait() unwound at shutdown: removes itself from the queue
//! ```
//!
//! A waiter whose park unwinds (its coroutine dropped at shutdown) removes
//! itself from the queue. In a cancelling context (a destructor run by the
//! shutdown unwind, which cannot park) `wait` and `wait_timeout` do not
//! queue: they return at once, `wait_timeout` returning whether the count is
//! zero. The tasks they would wait for may have been unwound without calling
//! `done()`, so waiting there could only spin for ever.
//!
//! The re-check under the queue lock closes the race with a concurrent
//! `1 → 0`: the `done` side takes the same lock after its decrement, so a
//! waiter either sees 0 or is already queued when the waiters are drained.
//!
//! As in Go, calls to `add` that start a new round must happen after the
//! `wait` calls of the previous round have returned.
//!
//! `WaitGroup` is a cheap handle around an `Arc`: `clone` gives another
//! handle to the same group (it does **not** add a task, unlike
//! crossbeam's `WaitGroup`), which is convenient to move into each task.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::waiter::{unpark_all, Waiter};
use crate::sched::context;

const RELEASED: u8 = 1;

struct Inner {
    count: AtomicUsize,
    waiters: parking_lot::Mutex<Vec<Arc<Waiter>>>,
}

/// Go's `WaitGroup`: `add(n)` before starting tasks, `done()` at the end of
/// each, `wait()` parks until all are done.
///
/// ```
/// use corio::sync::WaitGroup;
/// let wg = WaitGroup::new();
/// for _ in 0..4 {
///     wg.add(1);
///     let wg = wg.clone();
///     std::thread::spawn(move || wg.done());
/// }
/// wg.wait();
/// assert_eq!(wg.count(), 0);
/// ```
#[derive(Clone)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

impl WaitGroup {
    /// A group with no outstanding tasks.
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Arc::new(Inner {
                count: AtomicUsize::new(0),
                waiters: parking_lot::Mutex::new(Vec::new()),
            }),
        }
    }

    /// Adds `n` outstanding tasks.
    pub fn add(&self, n: usize) {
        let prev = self.inner.count.fetch_add(n, Ordering::AcqRel);
        assert!(prev.checked_add(n).is_some(), "WaitGroup counter overflow");
    }

    /// Marks one task as done; the last one wakes every waiter.
    ///
    /// # Panics
    /// If no task is outstanding (Go: "negative WaitGroup counter").
    pub fn done(&self) {
        let dec = self.inner.count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1));
        match dec {
            Err(_) => panic!("WaitGroup::done: negative WaitGroup counter"),
            Ok(1) => self.release_all(),
            Ok(_) => {}
        }
    }

    /// The number of outstanding tasks (a racy snapshot).
    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::Acquire)
    }

    /// Parks until the count is zero.
    ///
    /// In a destructor run while its runtime shuts down (the coroutine is
    /// being unwound, so it cannot park) it returns at once, even if the
    /// count is not zero: see the module docs.
    pub fn wait(&self) {
        if let Some(w) = self.enqueue() {
            crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
                kind: crate::task::SyncKind::WaitGroup,
                addr: (self as *const Self).cast::<()>() as usize,
            });
            w.wait_or(|| self.withdraw(&w));
        }
    }

    /// Parks until the count is zero or `timeout` elapses; returns true if
    /// the count reached zero. Returns at once in a destructor run by the
    /// shutdown unwind (see [`WaitGroup::wait`]).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        if context::cancelling() {
            return self.count() == 0;
        }
        let Some(deadline) = Instant::now().checked_add(timeout) else {
            self.wait();
            return true;
        };
        let Some(w) = self.enqueue() else {
            return true;
        };
        crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
            kind: crate::task::SyncKind::WaitGroup,
            addr: (self as *const Self).cast::<()>() as usize,
        });
        if w.wait_until_or(deadline, || self.withdraw(&w)).is_some() {
            return true;
        }
        let mut ws = self.inner.waiters.lock();
        if w.notified().is_none() {
            ws.retain(|x| !x.is(&w));
            false
        } else {
            true
        }
    }

    /// The unwind withdraw: leave the queue (a release is broadcast, so
    /// there is nothing to pass on).
    #[cold]
    fn withdraw(&self, w: &Arc<Waiter>) {
        self.inner.waiters.lock().retain(|x| !x.is(w));
    }

    /// Queues a waiter unless the count is already zero, or unless this is a
    /// cancelling context (see the module docs).
    fn enqueue(&self) -> Option<Arc<Waiter>> {
        if self.count() == 0 || context::cancelling() {
            return None;
        }
        let mut ws = self.inner.waiters.lock();
        if self.count() == 0 {
            return None;
        }
        let w = Waiter::new();
        ws.push(Arc::clone(&w));
        Some(w)
    }

    fn release_all(&self) {
        let wake: Vec<_> = {
            let mut ws = self.inner.waiters.lock();
            ws.drain(..).map(|w| w.notify(RELEASED)).collect()
        };
        unpark_all(wake);
    }
}

impl Default for WaitGroup {
    fn default() -> Self {
        WaitGroup::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup").field("count", &self.count()).finish()
    }
}
