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
            let started = std::mem::take(&mut *self.registry.borrow_mut());
            // Newest first (by id: ids are handed out in spawn order, per
            // block): the coroutines a scope (or a borrowing `block_on`)
            // waits for are spawned after it, and must be gone before it is
            // unwound (it cannot free what they borrow while they exist).
            let mut started = started;
            started.sort_unstable_by_key(|task| std::cmp::Reverse(task.id));
            for task in &started {
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
            let mut queued: Vec<Arc<Task>> = Vec::new();
            self.me().drain_inbox(&mut self.ready.borrow_mut());
            queued.extend(self.ready.borrow_mut().drain(..));
            queued.extend(self.runnext.borrow_mut().take());
            while let Some(task) = self.fresh.pop() {
                queued.push(task);
            }
            if started.is_empty() && queued.is_empty() {
                break;
            }
            context::with_teardown_mode(|| {
                for task in queued {
                    // SAFETY: we hold the queue entry (fresh) or own the task.
                    let body = std::mem::replace(unsafe { task.body_mut() }, Body::Gone);
                    drop(body); // a fresh body's closure drop cancels its JoinHandle
                }
            });
        }
        self.timers.borrow_mut().clear();
        self.stacks.borrow_mut().drain_into(&self.scheduler.stack_pool);
    }
}
