//! Seeing a stuck runtime: the coroutine dump, the stall report, metrics.
//! (Being built: see the modules.)

mod format;
mod info;
// Used by the stall detector and the coroutine dump (being built).
#[allow(dead_code)]
mod sample;
#[allow(dead_code)]
mod symbolize;

pub use self::info::{
    CoroutineInfo, CoroutineState, Dump, Frame, IoDirection, SpawnLocation, SyncKind, WaitObject, WorkerInfo,
};
