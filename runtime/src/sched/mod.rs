//! The scheduler: worker threads that run coroutines, their queues and
//! inboxes, the idle/wake-up protocol, placement, timers, the I/O driver, the
//! thread-local context, and the park/unpark entry points.
//!
//! # Design notes (the model, in brief; each protocol is told beside its code)
//!
//! - **M:N, no migration.** A runtime has N worker threads (`worker`); each
//!   runs many coroutines. A coroutine that has started never changes thread
//!   (its stack may hold references to thread-locals), so only *fresh*
//!   coroutines are stolen, and placement (`worker::less_loaded_worker`) is
//!   the only balancing a started one ever gets. This is what makes a safe
//!   `spawn` possible (docs/design.md, soundness).
//! - **Queues per worker.** `runnext` (the coroutine it woke last), `ready`
//!   (started coroutines: woken, yielded; private), `fresh` (not started;
//!   stealable), an inbox for wake-ups and placements from other threads
//!   (`handle::WorkerHandle`), and the runtime's injector for spawns from
//!   outside (`scheduler`). The order a worker takes them in is told atop
//!   `worker`.
//! - **Parking.** A blocking call parks its coroutine (`park`); the state
//!   machine that makes wake-ups from any thread safe is `task::state`. A
//!   wake-up queues the coroutine on its owner through `task::Schedule`.
//! - **Idle workers** search, then sleep in their I/O driver (`driver`, the
//!   netpoll poller) following Go's spinning protocol (`idle`): no lost
//!   wake-up for shared work, no thundering herd.
//! - **Time**: a timer heap per worker (`timer`); a worker sleeps until its
//!   next deadline.
//! - **Shutdown**: `Scheduler::begin_shutdown`, each worker's
//!   `WorkerLocal::shut_down` (unwinds its coroutines on its own thread), then
//!   `Scheduler::finish_shutdown`.
//!
//! Layer rule: `sched` imports `task` and `stack` only, never the public API.

pub(crate) mod budget;
mod chaos;
pub(crate) mod clock;
pub(crate) mod context;
mod driver;
pub(crate) mod dump;
mod handle;
mod idle;
pub(crate) mod metrics;
pub(crate) mod park;
mod scheduler;
mod shutdown;
mod spawn;
mod timer;
mod worker;

pub(crate) use self::handle::WorkerHandle;
pub(crate) use self::scheduler::Scheduler;
pub(crate) use self::spawn::spawn_borrowing;
pub(crate) use self::worker::run_worker;
