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
//! # Sleeper (one per worker)
//! A worker sleeps by blocking in its own netpoll `Poller` (so socket readiness
//! and timers wake it as well), and is woken with `Poller::notify`, which has
//! token semantics: a notify before the sleep makes that sleep return at once,
//! and a notify to a worker that is awake costs one atomic swap, no syscall.
//! The states are documented in `corio_netpoll::poller`.

use corio_netpoll::{Events, Poller};
use parking_lot::Mutex;
use std::io;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Puts one worker thread to sleep in its poller and wakes it.
pub(crate) struct Sleeper {
    poller: Poller,
}

impl Sleeper {
    pub(crate) fn new() -> io::Result<Sleeper> {
        Ok(Sleeper { poller: Poller::new()? })
    }

    /// The worker's poller, where the fds of its coroutines are registered.
    pub(crate) fn poller(&self) -> &Poller {
        &self.poller
    }

    /// Makes the worker's current or next `sleep` return.
    pub(crate) fn wake(&self) {
        if let Err(err) = self.poller.notify() {
            // Only an eventfd write can fail here, and only if the process is
            // out of resources; the worker then wakes at its next timer.
            eprintln!("corio: could not wake a worker: {err}");
        }
    }

    /// Sleeps until woken, until an fd of this poller is ready, or until
    /// `deadline`, dispatching readiness to the waiting coroutines (which run
    /// their wakers on this thread). Returns the number of events delivered.
    pub(crate) fn sleep(&self, events: &mut Events, deadline: Option<Instant>) -> usize {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        self.wait(events, timeout)
    }

    /// Collects readiness without blocking.
    pub(crate) fn poll_now(&self, events: &mut Events) -> usize {
        self.wait(events, Some(Duration::ZERO))
    }

    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> usize {
        match self.poller.wait(events, timeout) {
            Ok(delivered) => delivered,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => 0,
            Err(err) => {
                eprintln!("corio: epoll wait failed: {err}");
                0
            }
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
        let limit = self.worker_count.max(2) / 2;
        self.searching
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1))
            .is_ok()
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

    #[test]
    fn wake_before_sleep_is_not_lost() {
        let sleeper = Sleeper::new().unwrap();
        sleeper.wake();
        sleeper.sleep(&mut Events::new(), None); // returns at once
    }

    #[test]
    fn wake_from_another_thread_ends_an_untimed_sleep() {
        let mut events = Events::new();
        for _ in 0..200 {
            let sleeper = Arc::new(Sleeper::new().unwrap());
            let waker = {
                let sleeper = sleeper.clone();
                std::thread::spawn(move || sleeper.wake())
            };
            sleeper.sleep(&mut events, None);
            waker.join().unwrap();
        }
    }

    #[test]
    fn sleep_times_out() {
        let sleeper = Sleeper::new().unwrap();
        sleeper.sleep(&mut Events::new(), Some(Instant::now() + Duration::from_millis(2)));
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
