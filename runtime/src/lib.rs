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
//! # Layers
//!
//! The crate is built in layers, and a module imports only from its own layer
//! or the ones below (no two modules import each other, directly or in a
//! circle; `scripts/check-layers.py` checks it in CI):
//!
//! 1. `stack` — pooled coroutine stacks with guard pages, and the
//!    stack-overflow report. Imports nothing of corio.
//! 2. `task` — the coroutine header, its park state machine, its root frame
//!    and join slot, ids and [`WaitReason`]s. Reaches the scheduler only
//!    through its `Schedule` trait.
//! 3. `sched` — workers, queues, inboxes, the idle/wake-up protocol,
//!    placement, timers, the I/O driver, the thread-local context, park and
//!    unpark.
//! 4. The public API, on `sched`'s park/unpark and the [`coroutine::Coroutine`]
//!    handle: [`coroutine`] (spawn, park, the handle, [`JoinHandle`]),
//!    [`time`], [`Runtime`] and [`run`], [`net`], [`chan`] and [`select!`],
//!    [`sync`], [`blocking`], [`fs`], [`future`], [`debug`], [`io`], [`process`], [`signal`],
//!    and [`is_cancelled_error`].
//!
//! docs/design.md has the map of files and how the protocols fit together.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

// Layer 1.
mod stack;
// Layer 2.
mod task;
// Layer 3.
mod sched;
// Layer 4: the public API.
pub mod blocking;
mod cancel;
pub mod chan;
pub mod coroutine;
pub mod debug;
pub mod fs;
pub mod future;
pub mod io;
pub mod net;
pub mod process;
mod runtime;
pub mod signal;
pub mod sync;
pub mod time;

pub use cancel::is_cancelled_error;
pub use coroutine::{scope, spawn, yield_now, JoinHandle};
pub use runtime::{
    run, Runtime, RuntimeBuilder, DEFAULT_STACK_SIZE, DEFAULT_STACK_TRIM_AFTER, DEFAULT_STALL_THRESHOLD,
};
pub use task::{is_cancelled, WaitReason, CANCELLED};

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
