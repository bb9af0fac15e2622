//! Thread-local context: which worker this thread is, and which coroutine (if
//! any) is running on it right now.
//!
//! Invariants:
//! - `WORKER` is set for the whole life of a worker thread's loop and points to
//!   its `WorkerLocal`, which outlives the loop. It is null on every other
//!   thread (plain threads, the thread blocked in `block_on`).
//! - `CURRENT` is non-null exactly while a coroutine runs on this thread, and
//!   points to that coroutine's task, kept alive by the worker during the run.
//! - Because a started coroutine never changes thread, a coroutine reading
//!   these thread-locals always sees its own worker.

use super::worker::WorkerLocal;
use crate::task::{Suspend, Task};
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::Arc;

thread_local! {
    static WORKER: Cell<*const WorkerLocal> = const { Cell::new(std::ptr::null()) };
    static CURRENT: Cell<Option<NonNull<Task>>> = const { Cell::new(None) };
    /// Set while this thread drops coroutines that never started (their
    /// captured values' destructors run outside any coroutine).
    static TEARING_DOWN: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` in teardown mode (the flag that `cancelling` reports): for a
/// thread that drops coroutines that never started.
pub(crate) fn with_teardown_mode<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            TEARING_DOWN.with(|t| t.set(self.0));
        }
    }
    let _reset = Reset(TEARING_DOWN.with(|t| t.replace(true)));
    f()
}

/// The worker this thread runs, if it is a worker thread.
pub(crate) fn worker() -> Option<&'static WorkerLocal> {
    let ptr = WORKER.with(|w| w.get());
    // SAFETY: non-null only while the worker loop runs, and the `WorkerLocal`
    // outlives the loop (module invariants); every caller runs inside that loop
    // (in the worker itself or in a coroutine it resumed). The 'static lifetime
    // never escapes this thread's use during the loop.
    unsafe { ptr.as_ref() }
}

pub(crate) fn set_worker(worker: *const WorkerLocal) {
    WORKER.with(|w| w.set(worker));
}

/// The task of the coroutine running on this thread, if any.
pub(crate) fn current_task() -> Option<Arc<Task>> {
    let ptr = CURRENT.with(|c| c.get())?.as_ptr().cast_const();
    // SAFETY: `ptr` came from `Arc::as_ptr` of a task the worker holds for the
    // duration of the run, so the allocation is live and its strong count is
    // at least one; we add one for the returned handle.
    unsafe {
        Arc::increment_strong_count(ptr);
        Some(Arc::from_raw(ptr))
    }
}

/// Runs `f` with the current task without touching its reference count.
pub(crate) fn with_current_task<R>(f: impl FnOnce(Option<&Task>) -> R) -> R {
    let ptr = CURRENT.with(|c| c.get());
    // SAFETY: as in `current_task`: live for the whole run.
    f(ptr.map(|ptr| unsafe { ptr.as_ref() }))
}

/// Is the running coroutine being unwound at shutdown (or after a cancel),
/// or is this thread dropping coroutines that never started? Blocking calls made by their
/// destructors then fail or return at once instead of waiting: what they
/// wait for is being torn down too.
pub(crate) fn cancelling() -> bool {
    TEARING_DOWN.with(|t| t.get())
        || with_current_task(|task| {
            // Also the unwind of a cancelled coroutine: its destructors'
            // waits give up as at shutdown.
            task.is_some_and(|t| t.is_cancelling() || (t.cancel_requested() && std::thread::panicking()))
        })
}

/// Has the running coroutine been cancelled (`JoinHandle::cancel`)? Its
/// I/O waits fail with the cancellation error; its other waits unwind.
pub(crate) fn cancel_requested() -> bool {
    with_current_task(|task| task.is_some_and(|t| t.cancel_requested()))
}

pub(crate) fn in_coroutine() -> bool {
    CURRENT.with(|c| c.get()).is_some()
}

/// Publishes the task being resumed on this thread (`None` after).
pub(crate) fn set_current(task: Option<&Arc<Task>>) {
    CURRENT.with(|c| c.set(task.map(|task| NonNull::from(&**task))));
}

/// Switches from the running coroutine back to its worker with `why`.
///
/// Must be called from inside a coroutine.
pub(crate) fn suspend_current(why: Suspend) {
    let ptr = CURRENT.with(|c| c.get()).expect("suspend_current outside a coroutine").as_ptr().cast_const();
    // SAFETY: the task is live during the run (module invariants), and we are
    // on its owner thread, the only one that touches `yielder`.
    let yielder = unsafe { (*ptr).yielder.get() };
    debug_assert!(!yielder.is_null(), "a running coroutine has set its yielder");
    // SAFETY: the yielder lives on the coroutine's own stack for the
    // coroutine's whole life, and we are running on that stack right now.
    unsafe { (*yielder).suspend(why) };
    // A resume may be the worker asking for this coroutine's stack (a dump):
    // record it and suspend again at once, the same way, without returning
    // to the code that suspended (see `sched::dump`).
    // SAFETY: as above; the task outlives its run.
    while unsafe { (*ptr).dump_requested.replace(false) } {
        // SAFETY: as above.
        let task = unsafe { &*ptr };
        // Unwinding takes a few KiB of this stack: with less room than that
        // left above the guard page, record nothing rather than overflow.
        let here = &task as *const _ as usize;
        if here.saturating_sub(task.guard.1) >= super::dump::STACK_ROOM_NEEDED {
            super::dump::record_stack(task);
        }
        // SAFETY: as above.
        unsafe { (*yielder).suspend(why) };
    }
}
