//! The cooperative budget (tokio's coop budget): a coroutine whose
//! operations never have to park (an always-ready socket, a channel that is
//! never empty, an uncontended lock) would never give its worker back, and
//! every other coroutine of that worker would starve. Every corio operation
//! that could have parked (socket I/O, channel send/receive/select, lock
//! acquisitions, joins) calls [`spend`] when it completes; after `BUDGET`
//! of them in a row the coroutine yields. A park refills the budget (the
//! coroutine gave the worker back anyway).

use super::context;
use crate::task::BUDGET;

/// Counts one operation against the running coroutine's budget, yielding
/// when it is spent. Does nothing on a plain thread or during the shutdown
/// unwind (where yielding is impossible).
pub(crate) fn spend() {
    let exhausted = context::with_current_task(|task| match task {
        Some(task) => {
            let left = task.budget.get();
            if left <= 1 {
                task.budget.set(BUDGET);
                true
            } else {
                task.budget.set(left - 1);
                false
            }
        }
        None => false,
    });
    if exhausted && !context::cancelling() {
        context::suspend_current(crate::task::Suspend::Yield);
    }
}
