//! The elastic pool of blocking threads (states and rules in the module doc
//! of `blocking`).

use parking_lot::{Condvar, Mutex};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

/// The default limit on a runtime's blocking threads (as tokio's).
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 512;

/// How long an idle blocking thread waits for work before it exits.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// A pool of plain threads for blocking jobs.
pub(crate) struct Pool {
    state: Mutex<State>,
    work: Condvar,
    max_threads: usize,
    name: String,
}

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    shutdown: bool,
    /// Jobs run so far.
    completed: u64,
}

/// The blocking pool's figures, in `Metrics::blocking`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockingMetrics {
    /// Threads alive (running a job or idle).
    pub threads: usize,
    /// Of those, the idle ones.
    pub idle: usize,
    /// Jobs waiting for a thread (the pool is at its limit).
    pub queued: usize,
    /// Jobs run so far.
    pub completed: u64,
    /// The limit on threads.
    pub max_threads: usize,
}

/// The pools of live runtimes, by scheduler id.
static POOLS: Mutex<Option<HashMap<u64, Arc<Pool>>>> = Mutex::new(None);

impl Pool {
    pub(crate) fn new(max_threads: usize, name: &str) -> Arc<Pool> {
        Arc::new(Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                shutdown: false,
                completed: 0,
            }),
            work: Condvar::new(),
            max_threads: max_threads.max(1),
            name: format!("{name}-blocking"),
        })
    }

    /// Makes `pool` the blocking pool of the runtime `scheduler_id`.
    pub(crate) fn register(scheduler_id: u64, pool: &Arc<Pool>) {
        POOLS.lock().get_or_insert_with(HashMap::new).insert(scheduler_id, pool.clone());
    }

    /// The blocking pool of the runtime `scheduler_id`, if it has one.
    pub(crate) fn of(scheduler_id: u64) -> Option<Arc<Pool>> {
        POOLS.lock().as_ref()?.get(&scheduler_id).cloned()
    }

    /// The process-wide pool for calls outside any runtime.
    pub(crate) fn global() -> Arc<Pool> {
        static GLOBAL: OnceLock<Arc<Pool>> = OnceLock::new();
        GLOBAL.get_or_init(|| Pool::new(DEFAULT_MAX_BLOCKING_THREADS, "corio")).clone()
    }

    /// Queues `job`; wakes an idle thread or starts one if below the limit.
    pub(crate) fn submit(self: &Arc<Pool>, job: Job) {
        let mut state = self.state.lock();
        if state.shutdown {
            drop(state);
            // The runtime is gone: the job is dropped (its handle reports
            // the cancellation), in teardown mode so its captures' waits give up.
            crate::sched::context::with_teardown_mode(|| drop(job));
            return;
        }
        state.queue.push_back(job);
        if state.idle > state.queue.len() - 1 {
            drop(state);
            self.work.notify_one();
            return;
        }
        if state.threads < self.max_threads {
            state.threads += 1;
            drop(state);
            let pool = self.clone();
            let started = thread::Builder::new().name(self.name.clone()).spawn(move || pool.run_thread());
            if let Err(err) = started {
                let mut state = self.state.lock();
                state.threads -= 1;
                if state.threads == 0 {
                    // Nobody will ever run the queue: fail loudly rather than hang.
                    drop(state);
                    panic!("corio: cannot start a blocking thread: {err}");
                }
                // Another thread will get to the job.
            }
        }
        // At the limit: the job waits its turn (FIFO).
    }

    fn run_thread(self: Arc<Pool>) {
        let mut state = self.state.lock();
        loop {
            if let Some(job) = state.queue.pop_front() {
                drop(state);
                job();
                state = self.state.lock();
                state.completed += 1;
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let timed_out = self.work.wait_for(&mut state, IDLE_TIMEOUT).timed_out();
            state.idle -= 1;
            if timed_out && state.queue.is_empty() {
                break;
            }
        }
        state.threads -= 1;
    }

    /// The runtime is dropped: drop what is queued, let idle threads exit.
    pub(crate) fn shut_down(&self, scheduler_id: u64) {
        if let Some(pools) = POOLS.lock().as_mut() {
            pools.remove(&scheduler_id);
        }
        let queued = {
            let mut state = self.state.lock();
            state.shutdown = true;
            std::mem::take(&mut state.queue)
        };
        self.work.notify_all();
        crate::sched::context::with_teardown_mode(|| drop(queued));
    }

    pub(crate) fn metrics(&self) -> BlockingMetrics {
        let state = self.state.lock();
        BlockingMetrics {
            threads: state.threads,
            idle: state.idle,
            queued: state.queue.len(),
            completed: state.completed,
            max_threads: self.max_threads,
        }
    }
}
