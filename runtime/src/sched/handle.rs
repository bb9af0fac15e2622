//! `WorkerHandle`: the part of a worker that other threads see, and the
//! task layer's `Schedule` for the coroutines it owns.
//!
//! - its *stealer*, through which idle workers take its not-yet-started coroutines;
//! - its *inbox*, where other threads put its started coroutines that they woke (and fresh
//!   ones that placement hands it); the owner drains it on every tick;
//! - its *I/O driver*, the netpoll `Poller` it sleeps in and is woken through;
//! - its count of live coroutines, read by other workers' placement;
//! - its *placed* queue: fresh coroutines that another worker's placement
//!   handed to it. Unlike the inbox it is stealable, so fresh coroutines
//!   never wait behind a worker that is stuck in one coroutine;
//! - what it is running (`running`, stored at each resume) and since when
//!   (`running_since`, noted by the runtime's monitor thread when it sees a
//!   resume begin: the hot path reads no clock), for the stall monitor,
//!   placement and dumps; its thread, for sampling; its
//!   counters (`metrics`).
//!
//! Invariants: a push to the inbox is followed by a wake of the sleeper (token semantics, so
//! a worker that is about to sleep does not miss it), and `inbox_pending` is only changed
//! under the inbox lock. After the runtime is torn down (`closed`), pushes drop what they
//! pushed instead of leaving it in a queue nobody drains.

use super::context;
use super::driver::IoDriver;
use super::dump::DumpRequest;
use super::metrics::WorkerCounters;
use crate::task::{Schedule, Task};
use crossbeam_deque::{Injector, Stealer};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A worker that has run one coroutine for this long is passed by placement.
const STUCK_MS: u64 = 10;

/// The part of a worker that other threads see.
pub(crate) struct WorkerHandle {
    pub(crate) index: usize,
    /// Started, unfinished coroutines owned by this worker (for placement).
    pub(crate) live: AtomicUsize,
    /// Set when the runtime is torn down: later inbox pushes are dropped.
    closed: AtomicBool,
    /// Set when the runtime's shutdown begins: a parked coroutine of this
    /// worker will never run again except to be unwound.
    shutting_down: AtomicBool,
    pub(crate) stealer: Stealer<Arc<Task>>,
    inbox: Mutex<Vec<Arc<Task>>>,
    inbox_pending: AtomicBool,
    /// Fresh coroutines placed here by other workers; stealable.
    pub(crate) placed: Injector<Arc<Task>>,
    pub(crate) driver: IoDriver,
    /// The id of the coroutine this worker is running, 0 when none (relaxed
    /// stores by the owner at each resume and after it).
    pub(crate) running: AtomicU64,
    /// Coarse ms (`clock`) when the monitor first saw the current resume, 0
    /// when none (or no monitor runs): written by the monitor only.
    pub(crate) running_since: AtomicU64,
    /// The resume count (`metrics.resumes`) the monitor saw then (monitor).
    pub(crate) running_tick: AtomicU64,
    /// The worker thread (`pthread_self`), 0 until it starts: for sampling
    /// its stack with a signal.
    pub(crate) thread: AtomicU64,
    /// Counters for `Runtime::metrics`.
    pub(crate) metrics: WorkerCounters,
    /// Dumps waiting for this worker's answer (`dump`), and their flag.
    pub(crate) dump_requests: Mutex<Vec<Arc<DumpRequest>>>,
    pub(crate) dump_pending: AtomicBool,
}

impl WorkerHandle {
    pub(crate) fn new(index: usize, stealer: Stealer<Arc<Task>>) -> io::Result<WorkerHandle> {
        Ok(WorkerHandle {
            index,
            live: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            stealer,
            inbox: Mutex::new(Vec::new()),
            inbox_pending: AtomicBool::new(false),
            placed: Injector::new(),
            driver: IoDriver::new()?,
            running: AtomicU64::new(0),
            running_since: AtomicU64::new(0),
            running_tick: AtomicU64::new(0),
            thread: AtomicU64::new(0),
            metrics: WorkerCounters::default(),
            dump_requests: Mutex::new(Vec::new()),
            dump_pending: AtomicBool::new(false),
        })
    }

    /// Hands a fresh coroutine to this worker (placement); any idle worker
    /// may still steal it from here.
    pub(crate) fn place(&self, task: Arc<Task>) {
        self.placed.push(task);
        self.driver.wake();
    }

    /// Is this worker stuck in one coroutine: running the same one for
    /// `STUCK_MS` or more (by the coarse clock)? Then placement passes it by.
    pub(crate) fn is_stuck(&self, now_ms: u64) -> bool {
        let since = self.running_since.load(Ordering::Relaxed);
        since != 0
            && now_ms.saturating_sub(since) >= STUCK_MS
            // Still the resume the monitor saw then.
            && self.metrics.resumes.load(Ordering::Relaxed) == self.running_tick.load(Ordering::Relaxed)
            && self.running.load(Ordering::Relaxed) != 0
    }

    /// Hands a woken, started coroutine to this worker from another thread.
    pub(crate) fn push_inbox(&self, task: Arc<Task>) {
        self.metrics.remote_wakes.fetch_add(1, Ordering::Relaxed);
        {
            let mut inbox = self.inbox.lock();
            inbox.push(task);
            self.inbox_pending.store(true, Ordering::Release);
        }
        self.driver.wake();
        if self.closed.load(Ordering::SeqCst) {
            // The runtime is gone (a handle outlived it): nobody will run this.
            self.clear_inbox();
        }
    }

    /// Marks the start of the runtime's shutdown (before any unwind).
    pub(crate) fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Has this worker's runtime begun to shut down?
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    pub(crate) fn has_inbox(&self) -> bool {
        self.inbox_pending.load(Ordering::Acquire)
    }

    pub(crate) fn drain_inbox(&self, into: &mut VecDeque<Arc<Task>>) {
        if !self.has_inbox() {
            return;
        }
        let mut inbox = self.inbox.lock();
        self.inbox_pending.store(false, Ordering::Relaxed);
        into.extend(inbox.drain(..));
    }

    /// Drops whatever is left in the inbox (runtime teardown, to break the
    /// task -> runtime -> inbox -> task reference cycle).
    pub(crate) fn close_and_clear_inbox(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.clear_inbox();
    }

    /// Drops what is in the inbox. Some may be fresh coroutines (placement
    /// hands those over too) whose closures are dropped here: in teardown
    /// mode, so that a blocking call in a captured value's destructor (a
    /// `join`, a socket write) returns instead of blocking this thread.
    fn clear_inbox(&self) {
        let stale = std::mem::take(&mut *self.inbox.lock());
        context::with_teardown_mode(|| {
            for task in stale {
                // SAFETY: an inbox entry is a queue entry.
                unsafe { task.drop_queue_entry() };
            }
            loop {
                match self.placed.steal() {
                    // SAFETY: a placed entry is a queue entry.
                    crossbeam_deque::Steal::Success(task) => unsafe { task.drop_queue_entry() },
                    crossbeam_deque::Steal::Retry => continue,
                    crossbeam_deque::Steal::Empty => break,
                }
            }
        });
    }
}

impl Schedule for WorkerHandle {
    fn schedule(&self, task: Arc<Task>) {
        if let Some(worker) = context::worker() {
            if std::ptr::eq(&**worker.me(), self) {
                worker.push_woken(task);
                return;
            }
        }
        self.push_inbox(task);
    }

    fn is_shutting_down(&self) -> bool {
        WorkerHandle::is_shutting_down(self)
    }

    fn worker_index(&self) -> usize {
        self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::test_stack;
    use crate::task::reserve_ids;
    use std::sync::atomic::AtomicUsize;

    static DROPPED_CANCELLING: AtomicUsize = AtomicUsize::new(0);

    struct RecordsContext;
    impl Drop for RecordsContext {
        fn drop(&mut self) {
            if context::cancelling() {
                DROPPED_CANCELLING.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn fresh_tasks_left_in_a_closed_inbox_are_dropped_in_teardown_mode() {
        let worker = WorkerHandle::new(0, crossbeam_deque::Worker::new_fifo().stealer()).unwrap();
        let fresh = |value: RecordsContext| {
            let entry = crate::task::Job::new(move || drop(value));
            Arc::new(Task::new(reserve_ids(1), None, entry, test_stack(), 0, None)) as Arc<Task>
        };
        worker.push_inbox(fresh(RecordsContext));
        worker.close_and_clear_inbox();
        assert_eq!(DROPPED_CANCELLING.load(Ordering::SeqCst), 1, "dropped by the teardown");
        worker.push_inbox(fresh(RecordsContext));
        assert_eq!(DROPPED_CANCELLING.load(Ordering::SeqCst), 2, "a push after the close");
        assert!(!context::cancelling(), "the mode ends with the drop");
    }
}
