//! `Scheduler`: the state one runtime's workers share (the runtime's half
//! that outlives any one worker): the workers' handles, the global injector,
//! the idle protocol's counters, the stack pool, the shutdown flag.

use super::context;
use super::handle::WorkerHandle;
use super::idle::Idle;
use crate::stack::StackPool;
use crate::task::Task;
use crossbeam_deque::Injector;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

static NEXT_RUNTIME_ID: AtomicU64 = AtomicU64::new(1);

/// State shared by all workers of one runtime.
pub(crate) struct Scheduler {
    /// Unique per runtime for the life of the process (never reused, unlike
    /// an address): sockets remember which runtime's poller they are
    /// registered with.
    pub(crate) id: u64,
    pub(crate) workers: Box<[Arc<WorkerHandle>]>,
    pub(crate) injector: Injector<Arc<Task>>,
    pub(crate) idle: Idle,
    pub(crate) stack_pool: StackPool,
    pub(crate) default_stack_size: usize,
    shutdown: AtomicBool,
    /// Names of the named coroutines started and not finished, by id: for
    /// reports about a worker stuck in one (only named coroutines pay).
    pub(crate) names: Mutex<HashMap<u64, String>>,
    /// True while the worker threads may be signalled (sampling): cleared,
    /// under the write lock, before they are joined.
    pub(crate) threads_alive: RwLock<bool>,
}

/// The runtimes alive in this process, oldest first (for `debug::dump`
/// from a plain thread).
static LIVE: Mutex<Vec<Weak<Scheduler>>> = Mutex::new(Vec::new());

impl Scheduler {
    pub(crate) fn new(workers: Box<[Arc<WorkerHandle>]>, default_stack_size: usize) -> Scheduler {
        let count = workers.len();
        Scheduler {
            id: NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed),
            workers,
            injector: Injector::new(),
            idle: Idle::new(count),
            stack_pool: StackPool::new(),
            default_stack_size,
            shutdown: AtomicBool::new(false),
            names: Mutex::new(HashMap::new()),
            threads_alive: RwLock::new(true),
        }
    }

    /// Makes `scheduler` findable by `current_or_latest`.
    pub(crate) fn register(scheduler: &Arc<Scheduler>) {
        let mut live = LIVE.lock();
        live.retain(|weak| weak.strong_count() > 0);
        live.push(Arc::downgrade(scheduler));
    }

    /// The runtime of the calling coroutine, or else the most recently
    /// built one still alive.
    pub(crate) fn current_or_latest() -> Option<Arc<Scheduler>> {
        if let Some(worker) = context::worker() {
            return Some(worker.scheduler.clone());
        }
        LIVE.lock().iter().rev().find_map(Weak::upgrade)
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Wakes a sleeping worker for newly queued shared work, if needed (the
    /// submitter's half of the idle protocol, `idle`).
    pub(crate) fn notify_work(&self) {
        if let Some(index) = self.idle.worker_to_wake() {
            self.workers[index].driver.wake();
        }
    }

    /// Shutdown, step 1: marks every worker as shutting down (so waiters are
    /// doomed before any unwind starts), sets the flag, wakes every worker.
    /// Steps 2-3 are each worker's (`WorkerLocal::shut_down`).
    pub(crate) fn begin_shutdown(&self) {
        for worker in self.workers.iter() {
            worker.begin_shutdown();
        }
        self.shutdown.store(true, Ordering::Release);
        for worker in self.workers.iter() {
            worker.driver.wake();
        }
    }

    /// Shutdown, step 4, once every worker thread has exited: drops what is
    /// still queued in the injector (coroutines spawned from outside that no
    /// worker took) in teardown mode, so their `JoinHandle`s report
    /// cancellation, and closes the inboxes so a wake-up through a handle
    /// that outlives the runtime is dropped.
    pub(crate) fn finish_shutdown(&self) {
        context::with_teardown_mode(|| loop {
            match self.injector.steal() {
                // SAFETY: an injector entry is a queue entry.
                crossbeam_deque::Steal::Success(task) => unsafe { task.drop_queue_entry() },
                crossbeam_deque::Steal::Retry => continue,
                crossbeam_deque::Steal::Empty => break,
            }
        });
        for worker in self.workers.iter() {
            worker.close_and_clear_inbox();
            // Requests no worker took (a plain thread's dump of this runtime
            // as it shut down): their requesters must not wait for an answer
            // that cannot come. (Once a request has left the lists, its
            // requester's withdrawal at the deadline cannot find it.)
            let untaken = std::mem::take(&mut *worker.dump_requests.lock());
            for request in untaken {
                request.worker_gone();
            }
        }
    }
}
