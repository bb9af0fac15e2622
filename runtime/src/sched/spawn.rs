//! Creating a coroutine: its stack, id, join slot and entry frame, queued
//! where a worker will find it.

use super::{context, metrics, Scheduler};
use crate::stack::round_stack_size;
use crate::task::{reserve_ids, Entry, Job, JoinSlot, Task};
use std::io;
use std::panic::Location;
use std::sync::Arc;

/// Creates a coroutine running `f` on `scheduler` and queues it: on the
/// current worker's stealable queue when called from one of its workers, on
/// the global injector otherwise. Returns its id and its join slot. One
/// allocation: the task, with `f` and the slot at its tail (`task::root`).
///
/// # Safety
/// The caller must not let `'a` end before the coroutine's entry has been run
/// or dropped, which the join slot reports (`JoinHandle::join_to_the_end`):
/// until then the coroutine may run `f` or drop it, and write the slot.
pub(crate) unsafe fn spawn_borrowing<'a, F, T>(
    scheduler: &Arc<Scheduler>,
    name: Option<String>,
    stack_size: Option<usize>,
    spawned_at: Option<&'static Location<'static>>,
    f: F,
) -> io::Result<(u64, JoinSlot<T>)>
where
    F: FnOnce() -> T + Send + 'a,
    T: Send + 'a,
{
    let size = match stack_size {
        Some(bytes) => round_stack_size(bytes)?,
        None => scheduler.default_stack_size,
    };
    let local = context::worker().filter(|w| Arc::ptr_eq(&w.scheduler, scheduler));
    let (stack, id) = match local {
        Some(worker) => {
            let stack = worker.stacks.borrow_mut().get(&scheduler.stack_pool, size)?;
            worker.count_cached_stacks();
            (stack, worker.next_id())
        }
        None => {
            let mut one = Vec::with_capacity(1);
            scheduler.stack_pool.take(size, 1, &mut one)?;
            (one.pop().expect("take returned Ok with a stack"), reserve_ids(1))
        }
    };
    let parent = context::with_current_task(|task| task.map_or(0, |task| task.id));
    let task: Arc<Task<Job<F, T>>> = Arc::new(Task::new(id, name, Job::new(f), stack, parent, spawned_at));
    let slot = task.entry.slot_ptr();
    let task: Arc<Task<dyn Entry + 'a>> = task;
    // SAFETY: only the trait object's lifetime bound changes (same layout and
    // vtable). The caller keeps 'a alive until the entry has been run or
    // dropped (the function's contract), which is all the task needs of it;
    // after that the entry holds nothing of 'a (`task::root`: DETACHED).
    let task: Arc<Task> = unsafe { std::mem::transmute::<Arc<Task<dyn Entry + 'a>>, Arc<Task>>(task) };
    // SAFETY: `slot` points into this task's `Job<F, T>`.
    let join = unsafe { JoinSlot::in_task(task.clone(), slot) };
    match local {
        Some(worker) => {
            metrics::bump(&worker.me().metrics.spawned);
            worker.push_fresh(task)
        }
        None => scheduler.injector.push(task),
    }
    scheduler.notify_work();
    Ok((id, join))
}
