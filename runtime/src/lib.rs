//! corio: Go-style coroutines for Rust.
//!
//! Write plain blocking code inside cheap stackful coroutines; corio runs them
//! on a few work-stealing worker threads and parks a coroutine (not its thread)
//! whenever it would block.
//!
//! ```
//! let total: u64 = corio::run(|| {
//!     let handles: Vec<_> = (1..=10u64)
//!         .map(|i| corio::spawn(move || {
//!             corio::time::sleep(std::time::Duration::from_millis(i));
//!             i
//!         }))
//!         .collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).sum()
//! });
//! assert_eq!(total, 55);
//! ```
//!
//! Soundness: [`spawn`] is safe. A coroutine that has started never changes OS
//! thread, so references into thread-local storage held across a blocking call
//! stay valid; only coroutines that have not started yet are stolen between
//! workers. See `docs/design.md`.
//!
//! Module map: [`coroutine`] (spawn, park/unpark, the handle), [`time`]
//! (sleep), [`net`] (std-shaped sockets that park instead of blocking),
//! [`chan`] and [`select!`] (Go's channels), [`sync`] (locks, condition
//! variables, wait groups that park instead of blocking), [`Runtime`]
//! (workers and shutdown). Internals: `task` (the
//! coroutine header), `parker` (the park state machine), `worker` (the
//! scheduling loop), `idle` (sleeping and waking workers), `timer` (per-worker
//! timer heap), `stack` (pooled stacks with guard pages), `overflow` (the
//! stack-overflow report), `join` (JoinHandle), `context` (thread-locals),
//! `chaos` (race-window widening in debug builds).

mod cancel;
pub mod chan;
mod chaos;
mod context;
pub mod coroutine;
mod idle;
mod join;
pub mod net;
mod overflow;
mod parker;
mod runtime;
mod stack;
pub mod sync;
mod task;
pub mod time;
mod timer;
mod worker;
mod worker_shared;

pub use cancel::is_cancelled_error;
pub use coroutine::{spawn, yield_now};
pub use join::{is_cancelled, JoinHandle, CANCELLED};
pub use runtime::{run, Builder as RuntimeBuilder, Runtime, DEFAULT_STACK_SIZE};
pub use task::WaitReason;

/// About how many coroutines can be alive at once before stack allocation
/// hits the kernel's limit on memory mappings (`vm.max_map_count`), on this
/// kernel: stacks are carved from large chunks, and with `MADV_GUARD_INSTALL`
/// (Linux >= 6.13) a chunk of ~1,000 stacks is one mapping, so the limit is
/// far above a million; older kernels guard each stack with `mprotect`, which
/// costs about two mappings per coroutine (~32,000 at the default limit of
/// 65,530; raise `vm.max_map_count` for more). Leaves 10 % of the limit to the
/// rest of the process. Memory is a separate limit.
///
/// ```
/// assert!(corio::max_coroutines_hint() > 10_000);
/// ```
pub fn max_coroutines_hint() -> usize {
    let maps = stack::max_map_count() / 10 * 9;
    if stack::guards_split_mappings() {
        maps / 2
    } else {
        maps.saturating_mul(900)
    }
}

/// Prints `corio: fatal: <why>` and aborts the process: for failures that
/// cannot be reported to anyone (a panic with nowhere to unwind to).
pub(crate) fn abort_with(why: &str) -> ! {
    eprintln!("corio: fatal: {why}");
    std::process::abort()
}
