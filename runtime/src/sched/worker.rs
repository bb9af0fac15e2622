//! A worker: one OS thread that runs coroutines, and its scheduling loop.
//!
//! On each tick a worker first moves its inbox (wake-ups from other threads)
//! into `ready`, fires due timers every 16th tick, and every 61st tick
//! collects socket readiness and takes from the global injector first (so it
//! cannot be starved by busy local queues: Go's rule). Then it takes from its
//! three run queues in this order:
//! 1. `runnext`, a one-slot queue for the coroutine this worker woke last (a
//!    channel hand-off runs the receiver next while its data is in cache, as in
//!    Go); at most `RUNNEXT_STREAK` times in a row, so a ping-pong pair cannot
//!    starve the rest;
//! 2. `ready`, a private FIFO of coroutines woken or yielded here, and of the
//!    inbox's contents: wake-ups from other threads, and fresh coroutines that
//!    another worker's placement handed over (started here or handed on). It
//!    is never stolen from: a started coroutine stays on its worker for life;
//! 3. `fresh`, a crossbeam-deque of coroutines not yet started, which idle
//!    workers steal in batches (half, at most 32).
//!
//! `ready` and `fresh` alternate by tick parity so neither starves the other;
//! the global injector (spawns from outside the runtime) comes last.
//! Just before a fresh coroutine starts, the worker may hand it to a less
//! loaded worker (`less_loaded_worker`): placement is the only balancing a
//! started coroutine ever gets.
//!
//! When every queue is empty, the worker fires due timers, then searches and
//! sleeps following the idle protocol (steps in `idle`): a few passes over the
//! other workers' queues to steal, then a sleep in its I/O driver until woken,
//! until a socket is ready, or until its next timer. Under load it also polls
//! every 61st tick, so sockets are never starved by busy queues.
//!
//! The park commit (step 5 of the park protocol, `task::state`) is made here,
//! after the coroutine's switch off its stack: see `run`.
//!
//! Invariants:
//! - `WorkerLocal` is used only by its own thread: by the loop, and by the
//!   coroutines the loop resumes. No `RefCell` borrow is held across a resume.
//! - Every started, unfinished coroutine of this worker is in `registry`, so a
//!   shutdown can unwind each one on this thread.

use super::handle::WorkerHandle;
use super::timer::TimerHeap;
use super::Scheduler;
use super::{clock, context, metrics};
use crate::stack::overflow::{self, RunningCoroutine};
use crate::stack::StackCache;
use crate::task::{abort_with, reserve_ids, Body, Schedule, Suspend, Task};
use corio_netpoll::Events;
use corosensei::{Coroutine, CoroutineResult};
use crossbeam_deque::{Steal, Worker};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNNEXT_STREAK: u32 = 3;
const GLOBAL_QUEUE_INTERVAL: u32 = 61;
/// Under load, timers are checked every this many ticks (and always when idle).
const TIMER_CHECK_INTERVAL: u32 = 16;
/// A fresh coroutine moves to another worker only if that one owns at least
/// this many (and at least an eighth) fewer live coroutines.
const BALANCE_SLACK: usize = 4;
/// How long an idle worker with spin credit waits for its inbox.
const INBOX_SPIN: Duration = Duration::from_micros(10);
const MAX_SPIN_CREDIT: u32 = 8;
/// Passes an idle worker makes over the other queues before it sleeps.
const SEARCH_PASSES: usize = 4;
/// Coroutine ids are taken from the global counter in blocks of this size.
const ID_BLOCK: u64 = 256;

/// The part of a worker only its own thread touches.
pub(crate) struct WorkerLocal {
    pub(crate) index: usize,
    pub(crate) scheduler: Arc<Scheduler>,
    pub(super) fresh: Worker<Arc<Task>>,
    pub(super) ready: RefCell<VecDeque<Arc<Task>>>,
    pub(super) runnext: RefCell<Option<Arc<Task>>>,
    runnext_streak: Cell<u32>,
    pub(crate) timers: RefCell<TimerHeap>,
    pub(crate) stacks: RefCell<StackCache>,
    pub(super) events: RefCell<Events>,
    pub(super) registry: RefCell<Vec<Arc<Task>>>,
    tick: Cell<u32>,
    spin_credit: Cell<u32>,
    rng: Cell<u64>,
    /// Next id to hand out and the end of the reserved block.
    ids: Cell<(u64, u64)>,
}

impl WorkerLocal {
    fn new(index: usize, scheduler: Arc<Scheduler>, fresh: Worker<Arc<Task>>) -> WorkerLocal {
        let stacks = StackCache::new(scheduler.default_stack_size);
        WorkerLocal {
            index,
            scheduler,
            fresh,
            ready: RefCell::new(VecDeque::new()),
            runnext: RefCell::new(None),
            runnext_streak: Cell::new(0),
            timers: RefCell::new(TimerHeap::new()),
            stacks: RefCell::new(stacks),
            events: RefCell::new(Events::new()),
            registry: RefCell::new(Vec::new()),
            tick: Cell::new(0),
            spin_credit: Cell::new(0),
            rng: Cell::new(0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)),
            ids: Cell::new((0, 0)),
        }
    }

    /// A fresh coroutine id, from this worker's reserved block.
    pub(crate) fn next_id(&self) -> u64 {
        let (mut next, mut end) = self.ids.get();
        if next == end {
            next = reserve_ids(ID_BLOCK);
            end = next + ID_BLOCK;
        }
        self.ids.set((next + 1, end));
        next
    }

    /// Queues a coroutine spawned on this worker (stealable).
    pub(crate) fn push_fresh(&self, task: Arc<Task>) {
        self.fresh.push(task);
    }

    /// Queues a coroutine this worker just woke, to run next.
    pub(crate) fn push_woken(&self, task: Arc<Task>) {
        if let Some(previous) = self.runnext.borrow_mut().replace(task) {
            self.ready.borrow_mut().push_back(previous);
        }
    }

    fn random(&self) -> u64 {
        // xorshift64*: victim selection only needs to be cheap and spread out.
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn me(&self) -> &Arc<WorkerHandle> {
        &self.scheduler.workers[self.index]
    }

    fn next_task(&self) -> Option<Arc<Task>> {
        let tick = self.tick.get().wrapping_add(1);
        self.tick.set(tick);
        self.me().drain_inbox(&mut self.ready.borrow_mut());
        self.answer_dump_request();
        if tick.is_multiple_of(TIMER_CHECK_INTERVAL) {
            self.fire_timers();
        }
        if tick.is_multiple_of(GLOBAL_QUEUE_INTERVAL) {
            // Under load, look at the network now and then too, so sockets
            // of this worker's poller are not starved by busy coroutines.
            self.poll_io();
            if let Some(task) = self.steal_from_injector() {
                return Some(task);
            }
        }
        if self.runnext_streak.get() < RUNNEXT_STREAK {
            if let Some(task) = self.runnext.borrow_mut().take() {
                self.runnext_streak.set(self.runnext_streak.get() + 1);
                return Some(task);
            }
        } else if let Some(task) = self.runnext.borrow_mut().take() {
            self.ready.borrow_mut().push_back(task);
        }
        self.runnext_streak.set(0);
        let from_ready = || self.ready.borrow_mut().pop_front();
        let from_fresh = || self.fresh.pop().or_else(|| steal_batch(&self.me().placed, &self.fresh));
        let local = if tick.is_multiple_of(2) {
            from_ready().or_else(from_fresh)
        } else {
            from_fresh().or_else(from_ready)
        };
        local.or_else(|| self.steal_from_injector())
    }

    fn steal_from_injector(&self) -> Option<Arc<Task>> {
        // Usually empty (only spawns from outside the workers land there):
        // a plain load first, before the steal's epoch pin.
        if self.scheduler.injector.is_empty() {
            return None;
        }
        loop {
            match self.scheduler.injector.steal_batch_and_pop(&self.fresh) {
                Steal::Success(task) => return Some(task),
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    /// One pass over the injector and the other workers' fresh queues.
    fn steal_once(&self) -> Option<Arc<Task>> {
        if let Some(task) = self.steal_from_injector() {
            return Some(task);
        }
        let workers = &self.scheduler.workers;
        let start = self.random() as usize % workers.len();
        for offset in 0..workers.len() {
            let victim = (start + offset) % workers.len();
            if victim == self.index {
                continue;
            }
            // Its placed queue first: fresh coroutines handed to it, which
            // it may be too busy (or stuck) to start.
            if let Some(task) = steal_batch(&workers[victim].placed, &self.fresh) {
                metrics::bump(&self.me().metrics.steals);
                return Some(task);
            }
            loop {
                match workers[victim].stealer.steal_batch_and_pop(&self.fresh) {
                    Steal::Success(task) => {
                        metrics::bump(&self.me().metrics.steals);
                        return Some(task);
                    }
                    Steal::Empty => break,
                    Steal::Retry => continue,
                }
            }
        }
        None
    }

    /// A few passes over inbox, injector and victims (Go makes 4). No
    /// timed spinning: on 2 cores a spinning worker takes the CPU that the
    /// busy worker or the peer process needs, and socket readiness is only
    /// collected once the worker blocks in its poller.
    fn search(&self) -> Option<Arc<Task>> {
        for _ in 0..SEARCH_PASSES {
            if self.me().has_inbox() {
                return self.next_task();
            }
            if let Some(task) = self.steal_once() {
                return Some(task);
            }
            if self.scheduler.is_shutting_down() {
                return None;
            }
            std::hint::spin_loop();
        }
        None
    }

    /// Adaptive spinning before sleeping. A wake-up sent to a sleeping worker
    /// costs a syscall on both sides and tens of microseconds; when coroutines
    /// on different workers hand off to each other (a lock, a channel), a
    /// worker that waits a few microseconds for its inbox saves all of that.
    /// When nothing comes (an I/O-bound server, whose wake-ups come from its
    /// own poller), spinning only burns CPU that the other threads need, so
    /// the worker earns the right to spin: `spin_credit` grows when spinning
    /// pays off or when a sleep was cut short by an inbox wake-up, and shrinks
    /// when a spin finds nothing. Returns true if work arrived.
    fn spin_for_inbox(&self) -> bool {
        let credit = self.spin_credit.get();
        if credit == 0 {
            return false;
        }
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if self.me().has_inbox() {
                    self.spin_credit.set((credit + 1).min(MAX_SPIN_CREDIT));
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= INBOX_SPIN || self.scheduler.is_shutting_down() {
                self.spin_credit.set(credit - 1);
                return false;
            }
        }
    }

    /// After a sleep: was it cut short by an inbox wake-up soon enough that
    /// spinning would have caught it?
    fn learn_from_sleep(&self, slept_at: Instant) {
        if self.me().has_inbox() && slept_at.elapsed() < 4 * INBOX_SPIN {
            self.spin_credit.set((self.spin_credit.get() + 2).min(MAX_SPIN_CREDIT));
        }
    }

    /// Is there work this worker could take, anywhere? (The recheck of the
    /// idle protocol; see `idle`.)
    fn work_visible(&self) -> bool {
        self.me().has_inbox()
            || !self.scheduler.injector.is_empty()
            || self.scheduler.workers.iter().any(|w| !w.stealer.is_empty() || !w.placed.is_empty())
            || !self.fresh.is_empty()
            || !self.ready.borrow().is_empty()
            || self.runnext.borrow().is_some()
    }

    /// Collects socket readiness without blocking; woken coroutines land in
    /// this worker's queues (or their owners' inboxes).
    fn poll_io(&self) -> usize {
        let events = self.me().driver.poll_now(&mut self.events.borrow_mut());
        self.count_poll(events);
        events
    }

    /// Mirrors the stack cache's size into the metrics (a plain store).
    pub(crate) fn count_cached_stacks(&self) {
        let cached = self.stacks.borrow().len() as u64;
        self.me().metrics.stacks_cached.store(cached, Ordering::Relaxed);
    }

    /// Counts one poller wait and the events it delivered.
    pub(super) fn count_poll(&self, events: usize) {
        let counters = &self.me().metrics;
        metrics::bump(&counters.poll_waits);
        metrics::add(&counters.poll_events, events as u64);
    }

    fn fire_timers(&self) -> usize {
        let mut timers = self.timers.borrow_mut();
        let Some(first) = timers.next_deadline() else { return 0 };
        let now = Instant::now();
        if first > now {
            return 0;
        }
        let mut woken = Vec::new();
        timers.fire_expired(now, |task| woken.push(task));
        drop(timers);
        let fired = woken.len();
        for task in woken {
            task.unpark();
        }
        fired
    }

    /// Runs `task` until it parks, yields or finishes.
    fn run(&self, task: Arc<Task>) {
        task.park_state.assert_runnable(task.id);
        if let Some(owner) = task.owner.get() {
            assert!(
                std::ptr::addr_eq(Arc::as_ptr(owner), Arc::as_ptr(self.me())),
                "corio bug: coroutine {} owned by worker {} queued on worker {}",
                task.id,
                owner.worker_index(),
                self.index
            );
        }
        // SAFETY: we hold the task's only queue entry, so if it is fresh we are
        // the thread entitled to its body; if it is started, it was queued only
        // on its owner, which is us. The reference is not held across any
        // other access to the body.
        let body = unsafe { task.body_mut() };
        if matches!(body, Body::Fresh { .. }) {
            if task.cancel_requested() {
                // Cancelled before it started: dropped without running (its
                // JoinHandle reports the cancellation).
                // SAFETY: we hold its only queue entry; `body` is not used again.
                let stack = context::with_teardown_mode(|| unsafe { task.discard_fresh() });
                if let Some(stack) = stack {
                    self.stacks.borrow_mut().put(&self.scheduler.stack_pool, stack);
                }
                return;
            }
            if !task.placed.get() {
                if let Some(target) = self.less_loaded_worker() {
                    // Still fresh, so it may move: see `less_loaded_worker`.
                    // Placed once only: whoever takes it next starts it.
                    task.placed.set(true);
                    metrics::bump(&self.me().metrics.placements);
                    target.place(task);
                    // Shared work now: a sleeping worker may take it if the
                    // target does not get to it first.
                    self.scheduler.notify_work();
                    return;
                }
            }
            self.start(&task, body);
        }
        if task.counted_parked.replace(false) {
            metrics::add_signed(&self.me().metrics.parked, -1);
        }
        let Body::Started(coro) = body else {
            return; // dropped at shutdown while queued
        };
        self.enter(&task);
        // The root catches every panic of user code; one escaping here would
        // end this worker and strand every coroutine it owns.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| coro.resume(())))
            .unwrap_or_else(|_| abort_with("a panic escaped a coroutine's root"));
        self.leave();
        match result {
            CoroutineResult::Yield(Suspend::Park) => {
                super::chaos::pause();
                if task.park_state.commit_park() {
                    task.counted_parked.set(true);
                    metrics::bump(&self.me().metrics.parked);
                } else {
                    self.ready.borrow_mut().push_back(task);
                }
            }
            CoroutineResult::Yield(Suspend::Yield) => self.ready.borrow_mut().push_back(task),
            CoroutineResult::Return(()) => {
                metrics::bump(&self.me().metrics.finished);
                // Its coroutine-local values end with it (their destructors
                // run here, on its thread, outside any coroutine).
                drop(std::mem::take(&mut *task.locals.borrow_mut()));
                self.timers.borrow_mut().forget(&task);
                let Body::Started(coro) = std::mem::replace(body, Body::Gone) else { unreachable!() };
                self.stacks.borrow_mut().put(&self.scheduler.stack_pool, coro.into_stack());
                self.count_cached_stacks();
                self.unregister(&task);
            }
        }
    }

    /// Publishes `task` as the coroutine running on this thread (for the
    /// runtime's thread-locals and the stack-overflow handler).
    pub(super) fn enter(&self, task: &Arc<Task>) {
        let (guard_start, guard_end) = task.guard;
        let name = task.name.as_deref().unwrap_or("");
        overflow::enter(RunningCoroutine {
            guard_start,
            guard_end,
            stack_size: task.stack_size,
            id: task.id,
            name_ptr: name.as_ptr(),
            name_len: name.len(),
        });
        context::set_current(Some(task));
        // What this worker runs, for the stall monitor, placement and dumps:
        // plain stores (only this thread writes them). Since when is the
        // monitor's to note (`WorkerHandle::running_since`): no clock here.
        let me = self.me();
        me.running.store(task.id, Ordering::Relaxed);
        metrics::bump(&me.metrics.resumes); // also the monitor's tick
    }

    pub(super) fn leave(&self) {
        let me = self.me();
        me.running.store(0, Ordering::Relaxed);
        context::set_current(None);
        overflow::leave();
    }

    /// Placement of new coroutines. A started coroutine never moves, so where
    /// it starts decides the balance for its whole life (a connection served
    /// for hours). Just before starting a fresh coroutine, this worker looks
    /// at one other worker, chosen at random (the "power of two choices"):
    /// if that one owns clearly fewer live coroutines, the fresh coroutine is
    /// handed to it instead (through its inbox). The slack keeps a pair of
    /// coroutines that talk to each other together, and keeps short-lived
    /// coroutines local.
    fn less_loaded_worker(&self) -> Option<&Arc<WorkerHandle>> {
        let workers = &self.scheduler.workers;
        if workers.len() < 2 {
            return None;
        }
        let mine = self.registry.borrow().len();
        if mine < BALANCE_SLACK {
            return None;
        }
        let mut other = self.random() as usize % (workers.len() - 1);
        if other >= self.index {
            other += 1;
        }
        if workers[other].is_stuck(clock::coarse_now_ms()) {
            // Stuck in one coroutine: whatever it is handed waits.
            return None;
        }
        let theirs = workers[other].live.load(Ordering::Relaxed);
        // Relative slack too: under a mass spawn both workers grow together,
        // and shuffling every other coroutine through an inbox only costs.
        let slack = BALANCE_SLACK.max(mine / 8);
        (theirs + slack <= mine).then(|| &workers[other])
    }

    /// Turns a fresh task into a started coroutine owned by this worker.
    fn start(&self, task: &Arc<Task>, body: &mut Body) {
        let Body::Fresh { stack } = std::mem::replace(body, Body::Gone) else { unreachable!() };
        let owner: Arc<dyn Schedule> = self.me().clone();
        if task.owner.set(owner).is_err() {
            unreachable!("a fresh task has no owner yet");
        }
        let entry = NonNull::from(&**task);
        let coro = Coroutine::with_stack(stack, move |yielder, ()| {
            // SAFETY: the coroutine lives in its task's body, so the task
            // outlives it; it runs only on this worker, the thread entitled
            // to the entry, and its root runs the entry once.
            let task = unsafe { entry.as_ref() };
            task.yielder.set(yielder as *const _);
            // SAFETY: as above.
            unsafe { task.entry.run(context::cancelling) };
        });
        *body = Body::Started(coro);
        let mut registry = self.registry.borrow_mut();
        task.registry_index.set(registry.len());
        registry.push(task.clone());
        self.me().live.store(registry.len(), Ordering::Relaxed);
        if let Some(name) = &task.name {
            self.scheduler.names.lock().insert(task.id, name.clone());
        }
        metrics::bump(&self.me().metrics.started);
    }

    fn unregister(&self, task: &Arc<Task>) {
        let mut registry = self.registry.borrow_mut();
        let index = task.registry_index.get();
        debug_assert!(Arc::ptr_eq(&registry[index], task));
        registry.swap_remove(index);
        if task.name.is_some() {
            self.scheduler.names.lock().remove(&task.id);
        }
        if let Some(moved) = registry.get(index) {
            moved.registry_index.set(index);
        }
        self.me().live.store(registry.len(), Ordering::Relaxed);
    }
}

/// Takes a batch of fresh coroutines from `from` into `into` and returns one.
fn steal_batch(from: &crossbeam_deque::Injector<Arc<Task>>, into: &Worker<Arc<Task>>) -> Option<Arc<Task>> {
    if from.is_empty() {
        return None; // a plain load, before the steal's epoch pin
    }
    loop {
        match from.steal_batch_and_pop(into) {
            Steal::Success(task) => return Some(task),
            Steal::Empty => return None,
            Steal::Retry => continue,
        }
    }
}

/// The worker thread's main function.
pub(crate) fn run_worker(scheduler: Arc<Scheduler>, index: usize, fresh: Worker<Arc<Task>>) {
    let _signal_stack = overflow::ensure_signal_stack();
    let local = Box::new(WorkerLocal::new(index, scheduler.clone(), fresh));
    // SAFETY: pthread_self has no preconditions.
    let thread = unsafe { libc::pthread_self() };
    local.me().thread.store(thread as u64, Ordering::Relaxed);
    context::set_worker(&*local);
    let mut searching = false;
    loop {
        if scheduler.is_shutting_down() {
            break;
        }
        if let Some(task) = local.next_task() {
            if searching {
                searching = false;
                if scheduler.idle.end_search() {
                    scheduler.notify_work();
                }
            }
            local.run(task);
            continue;
        }
        // (No non-blocking poll here: the blocking wait below, one
        // `epoll_wait`, collects the same events.)
        if local.fire_timers() > 0 {
            continue;
        }
        if !searching {
            searching = scheduler.idle.try_begin_search();
        }
        if searching {
            if let Some(task) = local.search() {
                searching = false;
                if scheduler.idle.end_search() {
                    scheduler.notify_work();
                }
                local.run(task);
                continue;
            }
            searching = false;
            scheduler.idle.end_search();
            if local.work_visible() {
                continue;
            }
        }
        if local.spin_for_inbox() {
            continue;
        }
        scheduler.idle.go_to_sleep(index);
        if !local.work_visible() && !scheduler.is_shutting_down() {
            let deadline = local.timers.borrow().next_deadline();
            let slept_at = Instant::now();
            let events = local.me().driver.sleep(&mut local.events.borrow_mut(), deadline);
            local.count_poll(events);
            local.learn_from_sleep(slept_at);
        }
        if !scheduler.idle.leave_sleep(index) {
            // `worker_to_wake` took us off the list and counted us searching.
            searching = true;
        }
    }
    if searching {
        scheduler.idle.end_search();
    }
    local.shut_down();
    context::set_worker(std::ptr::null());
}
