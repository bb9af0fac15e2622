//! The data of a coroutine dump: plain structs, formatted by `format`.

use crate::task::WaitReason;
pub use crate::task::{IoDirection, SyncKind, WaitObject};
use std::time::{Duration, SystemTime};

/// One symbolised frame of a coroutine's stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The demangled function name (without the hash), or `"??"`.
    pub function: String,
    /// The source file, if known.
    pub file: Option<String>,
    /// The line in `file`, if known.
    pub line: Option<u32>,
}

/// Where a coroutine was spawned (`#[track_caller]` on `spawn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnLocation {
    /// The source file.
    pub file: &'static str,
    /// The line.
    pub line: u32,
    /// The column.
    pub column: u32,
}

/// What a coroutine is doing at the moment of the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoroutineState {
    /// Running on its worker right now.
    Running,
    /// Started and ready to run, waiting for its worker.
    Runnable,
    /// Parked: waiting for something (see its wait).
    Parked,
    /// Spawned, not started yet.
    NotStarted,
}

/// One coroutine in a [`Dump`].
#[derive(Debug, Clone)]
pub struct CoroutineInfo {
    /// Its id (as `Coroutine::id`).
    pub id: u64,
    /// Its name, if it was given one.
    pub name: Option<String>,
    /// Running, runnable, parked or not started.
    pub state: CoroutineState,
    /// What it waits for (`WaitReason::None` unless parked).
    pub reason: WaitReason,
    /// The object it waits on, if recorded.
    pub object: WaitObject,
    /// How long it has been parked (at least; from the coarse clock).
    pub waited: Option<Duration>,
    /// The worker that owns it (runs it), if started.
    pub worker: Option<usize>,
    /// The coroutine that spawned it (None: spawned from a plain thread).
    pub parent: Option<u64>,
    /// Where it was spawned.
    pub spawned_at: Option<SpawnLocation>,
    /// Its stack, innermost frame first, corio's own frames removed; empty if
    /// it could not be taken (see `frames_note`).
    pub frames: Vec<Frame>,
    /// Why `frames` is empty or partial, if it is ("running", "worker stuck").
    pub frames_note: Option<String>,
}

/// One worker in a [`Dump`].
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    /// The worker's index.
    pub index: usize,
    /// The coroutine it is running, if any.
    pub running: Option<u64>,
    /// For how long it has been running that coroutine.
    pub running_for: Option<Duration>,
    /// Did it answer the dump? A worker stuck in one coroutine cannot list
    /// its other coroutines.
    pub answered: bool,
    /// Coroutines spawned on it and not started yet (not listed one by one).
    pub not_started: usize,
}

/// A snapshot of every coroutine of a runtime (`corio::debug::dump`).
#[derive(Debug, Clone)]
pub struct Dump {
    /// When it was taken.
    pub taken_at: SystemTime,
    /// The workers.
    pub workers: Vec<WorkerInfo>,
    /// Every started coroutine, and the running ones.
    pub coroutines: Vec<CoroutineInfo>,
    /// Coroutines spawned from outside the runtime and not started yet.
    pub not_started_global: usize,
}
