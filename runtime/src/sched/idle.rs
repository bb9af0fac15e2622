//! The idle/wake-up protocol: how idle workers search and sleep, and who
//! wakes them (Go's spinning-worker protocol, `runtime/proc.go`). Told here
//! once; the worker loop (`worker`) and `Scheduler::notify_work` follow it.
//!
//! Two kinds of work reach a worker:
//! - *Shared work* (fresh coroutines in any worker's stealable queue, or in the
//!   global injector) can run anywhere. Its submitter wakes one sleeping
//!   worker, but only if no worker is already *searching* (passing over the
//!   queues to steal): a searcher will find it. So a burst of spawns does not
//!   wake every worker (no thundering herd).
//! - *Targeted work* (a started coroutine woken from another thread, or a
//!   fresh one handed over by placement) can only run on its owner: it goes to
//!   the owner's inbox, followed by `IoDriver::wake` on the owner (token
//!   semantics: a wake before the sleep ends that sleep at once).
//!
//! # The steps
//! 1. Submitter of shared work: push it; `fence(SeqCst)`; then
//!    `worker_to_wake`: if a worker is searching, stop (it will find the work);
//!    else pop a sleeper, count it as searching, and wake it.
//! 2. Worker with nothing to run: `try_begin_search` (at most half the workers
//!    search at once), pass over the injector and the other workers' fresh
//!    queues a few times (`worker::search`).
//! 3. A searcher that finds work: `end_search`; if it was the last searcher,
//!    it calls `notify_work` again (step 1) so another worker looks for the
//!    rest.
//! 4. A searcher that gives up: `end_search` (SeqCst), then rechecks every
//!    queue (`work_visible`) before going further.
//! 5. Going to sleep: `go_to_sleep` adds the worker to `sleepers` (SeqCst),
//!    rechecks every queue, then sleeps in its I/O driver until woken, until a
//!    socket of its poller is ready, or until its next timer.
//! 6. Waking: `leave_sleep` takes the worker off the list unless a submitter
//!    already did (then it was counted searching in step 1 and starts at 2).
//!
//! # Why no wake-up of shared work is lost (a Dekker pair)
//! Steps 1 and 4/5 each write (work pushed / searcher gone or sleeper added)
//! with SeqCst, then read the other side. Either the submitter sees a
//! searcher or a sleeper (and relies on it, or wakes it), or the worker's
//! recheck sees the work.

use parking_lot::Mutex;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

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
