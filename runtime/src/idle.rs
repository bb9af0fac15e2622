//! How idle workers sleep, and who wakes them: Go's spinning-worker protocol.
//!
//! Two kinds of work reach a worker:
//! - *Shared work* (fresh coroutines in any worker's stealable queue, or in the
//!   global injector) can run anywhere. Whoever submits it calls
//!   [`Idle::notify_work`], which wakes one sleeping worker, but only if no
//!   worker is already *searching* (spinning through the queues to steal):
//!   a searcher will find it. This keeps a burst of spawns from waking every
//!   worker (no thundering herd).
//! - *Targeted work* (a started coroutine woken from another thread) can only
//!   run on its owner, so it goes to the owner's inbox followed by
//!   [`Sleeper::wake`] on the owner.
//!
//! # No lost wake-up for shared work (a Dekker pair, as in Go's proc.go)
//! - Submitter: push the work; `fence(SeqCst)`; read `searching` and `idle`.
//! - Searcher giving up: decrement `searching` (SeqCst); recheck every queue.
//! - Worker going to sleep: add itself to `sleepers` (SeqCst); recheck every
//!   queue; then sleep.
//!
//! Either the submitter sees a searcher or a sleeper (and relies on, or wakes,
//! it), or the worker's recheck sees the work. A woken worker starts as a
//! searcher (the waker counted it), and when the last searcher finds work it
//! calls `notify_work` again so another worker looks for the rest.
//!
//! # Sleeper states (one per worker)
//! ```text
//!   EMPTY --sleep()--> SLEEPING --wake()--> NOTIFIED --sleep() returns--> EMPTY
//!   EMPTY --wake()--> NOTIFIED   (the next sleep() returns at once)
//!   SLEEPING --timeout--> EMPTY
//! ```
//! `wake` is a single atomic swap unless the worker really sleeps, so waking a
//! busy or spinning worker costs no syscall.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{fence, AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

const EMPTY: u8 = 0;
const NOTIFIED: u8 = 1;
const SLEEPING: u8 = 2;

/// Puts one worker thread to sleep and wakes it; token semantics.
pub(crate) struct Sleeper {
    state: AtomicU8,
    lock: Mutex<()>,
    condvar: Condvar,
}

impl Sleeper {
    pub(crate) fn new() -> Sleeper {
        Sleeper { state: AtomicU8::new(EMPTY), lock: Mutex::new(()), condvar: Condvar::new() }
    }

    /// Makes the next (or current) `sleep` return.
    pub(crate) fn wake(&self) {
        if self.state.swap(NOTIFIED, Ordering::AcqRel) == SLEEPING {
            // Taking the lock orders this notify after the sleeper's wait began.
            drop(self.lock.lock());
            self.condvar.notify_one();
        }
    }

    /// Sleeps until woken or until `deadline`. Returns at once if a wake is pending.
    pub(crate) fn sleep(&self, deadline: Option<Instant>) {
        if self.state.compare_exchange(NOTIFIED, EMPTY, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return;
        }
        let mut guard = self.lock.lock();
        if self.state.compare_exchange(EMPTY, SLEEPING, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // A wake slipped in: consume it.
            self.state.store(EMPTY, Ordering::Release);
            return;
        }
        loop {
            let timed_out = match deadline {
                Some(deadline) => self.condvar.wait_until(&mut guard, deadline).timed_out(),
                None => {
                    self.condvar.wait(&mut guard);
                    false
                }
            };
            if self.state.compare_exchange(NOTIFIED, EMPTY, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                return;
            }
            if timed_out {
                if self.state.compare_exchange(SLEEPING, EMPTY, Ordering::AcqRel, Ordering::Acquire).is_err()
                {
                    self.state.store(EMPTY, Ordering::Release);
                }
                return;
            }
            // Spurious condvar wake-up: sleep again.
        }
    }
}

/// Counts of searching and sleeping workers, and the sleepers' list.
pub(crate) struct Idle {
    worker_count: usize,
    searching: AtomicUsize,
    sleeping: AtomicUsize,
    sleepers: Mutex<Vec<usize>>,
}

impl Idle {
    pub(crate) fn new(worker_count: usize) -> Idle {
        Idle {
            worker_count,
            searching: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            sleepers: Mutex::new(Vec::with_capacity(worker_count)),
        }
    }

    /// Called after pushing shared work. Returns the worker to wake, if any;
    /// the caller wakes it (it has the sleepers' `Sleeper`s).
    pub(crate) fn worker_to_wake(&self) -> Option<usize> {
        fence(Ordering::SeqCst);
        if self.searching.load(Ordering::SeqCst) != 0 || self.sleeping.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let mut sleepers = self.sleepers.lock();
        // Recheck under the lock: another submitter may have woken the last one.
        if self.searching.load(Ordering::SeqCst) != 0 {
            return None;
        }
        let index = sleepers.pop()?;
        self.sleeping.fetch_sub(1, Ordering::SeqCst);
        // The woken worker starts out searching; counting it now stops other
        // submitters from waking a second worker for the same work.
        self.searching.fetch_add(1, Ordering::SeqCst);
        Some(index)
    }

    /// Tries to become a searcher; at most half the workers search at once,
    /// so spinning never eats the CPU the busy workers need.
    pub(crate) fn try_begin_search(&self) -> bool {
        let searching = self.searching.load(Ordering::SeqCst);
        if 2 * searching >= self.worker_count.max(2) {
            return false;
        }
        self.searching.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Stops searching. Returns true if this was the last searcher.
    pub(crate) fn end_search(&self) -> bool {
        self.searching.fetch_sub(1, Ordering::SeqCst) == 1
    }

    /// Registers `index` as sleeping; the caller must recheck the queues after.
    pub(crate) fn go_to_sleep(&self, index: usize) {
        let mut sleepers = self.sleepers.lock();
        sleepers.push(index);
        self.sleeping.fetch_add(1, Ordering::SeqCst);
    }

    /// After waking: removes `index` from the sleepers if nobody else did.
    /// Returns true if it was still there (woken by a timer, a targeted wake or
    /// its own recheck), false if `worker_to_wake` took it (so it is counted as
    /// a searcher).
    pub(crate) fn leave_sleep(&self, index: usize) -> bool {
        let mut sleepers = self.sleepers.lock();
        match sleepers.iter().position(|&i| i == index) {
            Some(position) => {
                sleepers.swap_remove(position);
                self.sleeping.fetch_sub(1, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn wake_before_sleep_is_not_lost() {
        let sleeper = Sleeper::new();
        sleeper.wake();
        sleeper.sleep(None); // returns at once
    }

    #[test]
    fn wake_from_another_thread_ends_an_untimed_sleep() {
        for _ in 0..200 {
            let sleeper = Arc::new(Sleeper::new());
            let waker = {
                let sleeper = sleeper.clone();
                std::thread::spawn(move || sleeper.wake())
            };
            sleeper.sleep(None);
            waker.join().unwrap();
        }
    }

    #[test]
    fn sleep_times_out() {
        let sleeper = Sleeper::new();
        sleeper.sleep(Some(Instant::now() + Duration::from_millis(2)));
    }

    #[test]
    fn only_one_sleeper_is_woken_while_a_search_is_pending() {
        let idle = Idle::new(4);
        idle.go_to_sleep(1);
        idle.go_to_sleep(2);
        assert_eq!(idle.worker_to_wake(), Some(2));
        assert_eq!(idle.worker_to_wake(), None, "the woken worker counts as searching");
        assert!(!idle.leave_sleep(2), "it was taken by the waker");
        assert!(idle.end_search());
        assert!(idle.leave_sleep(1));
    }
}
