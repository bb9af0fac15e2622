//! Taking a snapshot of every coroutine, for `corio::debug::dump`.
//!
//! A started coroutine's state lives on its owner worker, and its stack may
//! only be read there, so each worker answers for its own coroutines:
//!
//! 1. The requester ([`Scheduler::request_dump`]) gives every worker a
//!    [`DumpRequest`] (its `dump_requests` list and `dump_pending` flag) and
//!    wakes it; then it waits (parking if it is a coroutine, blocking if it
//!    is a thread) until every worker answered or the deadline passed.
//! 2. A worker sees the flag at its next tick (one relaxed load per tick; a
//!    worker stuck in a coroutine never does: it is reported unanswered) and
//!    snapshots each coroutine it owns: id, name, state, wait reason and
//!    object, since when it waits, parent, spawn location, and the stack.
//! 3. The stack of a suspended coroutine is read on its own stack: the
//!    worker sets the task's `dump_requested` and resumes it; the resume
//!    lands in `context::suspend_current`, which sees the flag, records the
//!    instruction pointers ([`record_stack`]) and suspends again at once,
//!    the same way it had suspended. No user code runs, the park state is
//!    not touched (a wake-up that arrived meanwhile stays queued and is
//!    served normally later), and the coroutine never leaves its thread.
//! 4. The last worker to answer wakes the requester.
//!
//! A worker is counted out without an answer in two ways: the requester
//! withdraws the request from workers that have not taken it by the deadline
//! (stuck in one coroutine), and a runtime that shuts down counts out its
//! workers for the requests still in their lists (`worker_gone`), whose
//! requester (a plain thread's dump of the latest runtime) would otherwise
//! wait for ever: a request cleared from the lists cannot be withdrawn.
//!
//! Nothing is paid while no dump is taken but the per-tick flag load.

use super::context;
use super::Scheduler;
use crate::task::{Task, Unparker, WaitObject, WaitReason};
use parking_lot::{Condvar, Mutex};
use std::panic::Location;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames recorded per coroutine at most.
const MAX_FRAMES: usize = 64;

/// Stack a coroutine must have left to record its frames (the unwinder's
/// own frames and buffers; measured at about 4 KiB, doubled and more).
pub(crate) const STACK_ROOM_NEEDED: usize = 12 << 10;

/// The state of a coroutine in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SnapState {
    /// Started, ready to run.
    Runnable,
    /// Suspended in a park.
    Parked,
}

/// One coroutine as its worker saw it.
pub(crate) struct TaskSnapshot {
    pub(crate) id: u64,
    pub(crate) name: Option<String>,
    pub(crate) state: SnapState,
    pub(crate) reason: WaitReason,
    pub(crate) object: WaitObject,
    /// Coarse ms when it parked (0: not parked).
    pub(crate) parked_since: u64,
    pub(crate) parent: u64,
    pub(crate) spawned_at: Option<&'static Location<'static>>,
    /// Instruction pointers of its stack, innermost first (unsymbolised).
    pub(crate) ips: Vec<usize>,
}

/// One worker's answer.
pub(crate) struct WorkerSnapshot {
    pub(crate) index: usize,
    pub(crate) tasks: Vec<TaskSnapshot>,
    /// Fresh coroutines in its queues.
    pub(crate) not_started: usize,
}

/// A dump in progress: answers gathered from the workers.
pub(crate) struct DumpRequest {
    answers: Mutex<Answers>,
    done: Condvar,
}

struct Answers {
    missing: usize,
    workers: Vec<WorkerSnapshot>,
    /// The requester, if it is a coroutine (woken by the last answer).
    requester: Option<Unparker>,
}

impl DumpRequest {
    fn answer(&self, snapshot: WorkerSnapshot) {
        self.count_out(Some(snapshot));
    }

    /// A worker that will never answer (its runtime has shut down with the
    /// request still in its list): counted out, so the requester does not
    /// wait for it.
    pub(crate) fn worker_gone(&self) {
        self.count_out(None);
    }

    /// One worker done with the request, with its snapshot or without;
    /// wakes the requester after the last.
    fn count_out(&self, snapshot: Option<WorkerSnapshot>) {
        let requester = {
            let mut answers = self.answers.lock();
            answers.workers.extend(snapshot);
            answers.missing -= 1;
            if answers.missing > 0 {
                return;
            }
            answers.requester.clone()
        };
        self.done.notify_all();
        if let Some(requester) = requester {
            requester.unpark();
        }
    }
}

impl Scheduler {
    /// Asks every worker for a snapshot and waits for the answers. A worker
    /// that has not taken the request by `deadline` is stuck in one
    /// coroutine: the request is withdrawn from it and it is missing from
    /// the answers. A worker that took it is waited for (a worker owning
    /// 100,000 coroutines takes a while to answer).
    pub(crate) fn request_dump(&self, deadline: Instant) -> Vec<WorkerSnapshot> {
        if context::cancelling() {
            return Vec::new(); // a destructor at shutdown: nobody will answer
        }
        let current = context::current_task();
        let requester = current.clone().map(Unparker::Task);
        let request = Arc::new(DumpRequest {
            answers: Mutex::new(Answers { missing: self.workers.len(), workers: Vec::new(), requester }),
            done: Condvar::new(),
        });
        // Several dumps may be pending at once (a signal dump beside a
        // user's): each worker keeps a list and answers them all; each
        // requester withdraws only its own (also when unwound: the guard).
        let pending = Pending { scheduler: self, request: &request };
        for worker in self.workers.iter() {
            worker.dump_requests.lock().push(request.clone());
            worker.dump_pending.store(true, Ordering::Release);
            worker.driver.wake();
        }
        let mut withdrawn = false;
        loop {
            if Instant::now() >= deadline && !withdrawn {
                withdrawn = true;
                let stuck = pending.withdraw();
                request.answers.lock().missing -= stuck;
            }
            {
                let mut answers = request.answers.lock();
                if answers.missing == 0 {
                    let mut workers = std::mem::take(&mut answers.workers);
                    workers.sort_by_key(|w| w.index);
                    return workers;
                }
                // Workers that took the request are answering: wait for them
                // (the answer runs no user code, so it ends).
                let wake_at = if withdrawn { Instant::now() + Duration::from_secs(3600) } else { deadline };
                if current.is_none() {
                    request.done.wait_until(&mut answers, wake_at);
                    continue;
                }
            }
            // A coroutine: park, so that its own worker can answer too.
            let wake_at = if withdrawn { Instant::now() + Duration::from_secs(3600) } else { deadline };
            super::park::park_until(wake_at, WaitReason::Park);
        }
    }
}

/// A dump request handed to the workers; dropping it (the requester returns
/// or is unwound) withdraws it from those that did not take it.
struct Pending<'a> {
    scheduler: &'a Scheduler,
    request: &'a Arc<DumpRequest>,
}

impl Pending<'_> {
    /// Removes the request from every worker that has not taken it; returns
    /// how many that was (workers stuck in one coroutine).
    fn withdraw(&self) -> usize {
        let mut removed = 0;
        for worker in self.scheduler.workers.iter() {
            let mut list = worker.dump_requests.lock();
            let before = list.len();
            list.retain(|r| !Arc::ptr_eq(r, self.request));
            removed += before - list.len();
        }
        removed
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.withdraw();
    }
}

impl super::worker::WorkerLocal {
    /// Step 2: answers a pending dump request, if any (called every tick).
    pub(super) fn answer_dump_request(&self) {
        let me = self.me();
        if !me.dump_pending.swap(false, Ordering::Acquire) {
            return;
        }
        let requests = std::mem::take(&mut *me.dump_requests.lock());
        if requests.is_empty() {
            return;
        }
        let registry: Vec<Arc<Task>> = self.registry.borrow().clone();
        let not_started = self.fresh.len() + me.placed.len();
        for request in &requests {
            // Rarely more than one: each gets a snapshot of its own.
            let tasks = registry.iter().map(|task| self.snapshot(task)).collect();
            request.answer(WorkerSnapshot { index: self.index, tasks, not_started });
        }
    }

    fn snapshot(&self, task: &Arc<Task>) -> TaskSnapshot {
        let parked = task.counted_parked.get();
        let ips = if task.is_cancelling() { Vec::new() } else { self.capture_stack(task) };
        let mut object = task.wait_object.get();
        if let WaitObject::Socket { fd, peer: peer @ None, .. } = &mut object {
            *peer = peer_of(*fd);
        }
        TaskSnapshot {
            id: task.id,
            name: task.name.clone(),
            state: if parked { SnapState::Parked } else { SnapState::Runnable },
            reason: task.wait_reason(),
            object,
            parked_since: if parked { task.parked_since.get() } else { 0 },
            parent: task.parent,
            spawned_at: task.spawned_at,
            ips,
        }
    }

    /// Step 3: resumes `task` (suspended, owned by this worker) in "record
    /// your stack" mode.
    fn capture_stack(&self, task: &Arc<Task>) -> Vec<usize> {
        // SAFETY: we are the owner and no coroutine runs on this thread right
        // now (the worker loop calls us between two runs).
        let body = unsafe { task.body_mut() };
        let crate::task::Body::Started(coro) = body else { return Vec::new() };
        task.dump_requested.set(true);
        self.enter(task);
        let resumed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| coro.resume(())));
        self.leave();
        task.dump_requested.set(false);
        match resumed {
            Ok(corosensei::CoroutineResult::Yield(_)) => std::mem::take(&mut *task.dump_stack.borrow_mut()),
            _ => crate::task::abort_with("a coroutine resumed for a dump did not suspend again"),
        }
    }
}

/// Step 3, on the coroutine's own stack: records its instruction pointers.
pub(crate) fn record_stack(task: &Task) {
    // The coroutine's own stack; the unwinder would go on through
    // corosensei's trampoline into the worker's frames, which nobody needs.
    let (_, bottom) = task.guard;
    let top = bottom + task.stack_size;
    let mut ips = Vec::with_capacity(MAX_FRAMES);
    backtrace::trace(|frame| {
        let sp = frame.sp() as usize;
        if sp != 0 && !(bottom..top).contains(&sp) && !ips.is_empty() {
            return false;
        }
        ips.push(frame.ip() as usize);
        ips.len() < MAX_FRAMES
    });
    *task.dump_stack.borrow_mut() = ips;
}

/// The connected peer of socket `fd`, if any (`getpeername`).
fn peer_of(fd: i32) -> Option<std::net::SocketAddr> {
    // SAFETY: the fd belongs to a socket a parked coroutine of this worker
    // waits on, so it stays open while we look (the coroutine cannot run).
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    socket2::SockRef::from(&fd).peer_addr().ok()?.as_socket()
}
