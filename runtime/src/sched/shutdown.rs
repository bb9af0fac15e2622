//! Shutdown, steps 2-3 (step 1 is `Scheduler::begin_shutdown`, step 4
//! `Scheduler::finish_shutdown`; docs/design.md tells the whole sequence):
//! a worker unwinds every coroutine it owns, on its own thread, then drops
//! what is queued on it.
//!
//! Invariants: a started coroutine is unwound only by its owner (this
//! thread); every blocking call made by the destructors that run here gives
//! up instead of waiting (`context::cancelling` is true: the task's
//! `cancelling` flag while it unwinds, teardown mode while queued coroutines
//! are dropped); the loop repeats while those destructors spawn or wake more.

use super::context;
use super::worker::WorkerLocal;
use crate::task::{Body, Task};
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl WorkerLocal {
    /// Drops every coroutine this worker owns, unwinding each on this thread
    /// so destructors run, then everything queued here.
    pub(super) fn shut_down(&self) {
        loop {
            // Not-started coroutines go first: a started one may be waiting
            // for them (a scope's coroutines borrow from its frame), and they
            // hold no stack state to unwind.
            let dropped = self.drop_queued_fresh();
            let started = std::mem::take(&mut *self.registry.borrow_mut());
            if started.is_empty() && !dropped {
                break;
            }
            // Children before their parents: the coroutines a scope (or a
            // borrowing `block_on`) waits for are its children, and must be
            // gone before it is unwound (it cannot free what they borrow
            // while they exist). Otherwise newest first by id.
            for task in &children_first(started) {
                task.cancelling.store(true, Ordering::Relaxed);
                // SAFETY: we are the owner of every task in the registry.
                let body = std::mem::replace(unsafe { task.body_mut() }, Body::Gone);
                if let Body::Started(mut coro) = body {
                    self.enter(task);
                    // Unwinds on this thread; destructors run. A coroutine that
                    // caught the unwind and panicked with its own payload
                    // ends with that panic: ignore it, the coroutine is done.
                    let unwound =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| coro.force_unwind()));
                    self.leave();
                    if unwound.is_err() {
                        eprintln!("corio: coroutine {} panicked while being dropped at shutdown", task.id);
                    }
                    drop(coro);
                    // Its coroutine-locals go on this, its thread (they may be `!Send`).
                    drop(std::mem::take(&mut *task.locals.borrow_mut()));
                }
            }
        }
        self.timers.borrow_mut().clear();
        self.stacks.borrow_mut().drain_into(&self.scheduler.stack_pool);
    }

    /// Empties this worker's queues (inbox, ready, runnext, fresh, placed),
    /// dropping the coroutines that never started, in teardown mode (their
    /// `JoinHandle`s report the cancellation). Started ones stay in the
    /// registry, to be unwound. Returns whether anything was queued.
    fn drop_queued_fresh(&self) -> bool {
        let mut queued: Vec<Arc<Task>> = Vec::new();
        self.me().drain_inbox(&mut self.ready.borrow_mut());
        queued.extend(self.ready.borrow_mut().drain(..));
        queued.extend(self.runnext.borrow_mut().take());
        while let Some(task) = self.fresh.pop() {
            queued.push(task);
        }
        loop {
            match self.me().placed.steal() {
                crossbeam_deque::Steal::Success(task) => queued.push(task),
                crossbeam_deque::Steal::Retry => continue,
                crossbeam_deque::Steal::Empty => break,
            }
        }
        let any = !queued.is_empty();
        context::with_teardown_mode(|| {
            for task in queued {
                // SAFETY: we hold the queue entry of a fresh task, or own a
                // started one (whose body `discard_fresh` leaves alone).
                // Cancels its JoinHandle.
                if let Some(stack) = unsafe { task.discard_fresh() } {
                    self.stacks.borrow_mut().put(&self.scheduler.stack_pool, stack);
                }
            }
        });
        any
    }
}

/// Orders `tasks` so that every task comes before its parent (when both are
/// here), and otherwise by descending id.
fn children_first(mut tasks: Vec<Arc<Task>>) -> Vec<Arc<Task>> {
    tasks.sort_unstable_by_key(|task| std::cmp::Reverse(task.id));
    let mut ordered = Vec::with_capacity(tasks.len());
    while !tasks.is_empty() {
        let parents: std::collections::HashSet<u64> = tasks.iter().map(|task| task.parent).collect();
        let (leaves, rest): (Vec<_>, Vec<_>) =
            tasks.into_iter().partition(|task| !parents.contains(&task.id));
        if leaves.is_empty() {
            // Cannot happen (ids are unique and a coroutine is spawned by
            // one that already exists, so there is no cycle); be safe anyway.
            ordered.extend(rest);
            break;
        }
        ordered.extend(leaves);
        tasks = rest;
    }
    ordered
}
