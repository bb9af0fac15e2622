//! Seeing a stuck runtime: the coroutine dump, the stall report, metrics.
//! (Being built: see the modules.)

mod format;
mod info;

pub use self::info::{
    CoroutineInfo, CoroutineState, Dump, Frame, IoDirection, SpawnLocation, SyncKind, WaitObject, WorkerInfo,
};
