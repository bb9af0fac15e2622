//! The dump as JSON, for tools (`Dump::to_json`), and the dump's small
//! look-ups (`coroutines`, `find`). The schema is documented in
//! docs/observability.md; the values are built by hand, so the data types
//! need no serde derive.

use super::super::info::{CoroutineInfo, CoroutineState, Dump, Frame, WorkerInfo};
use super::clock;
use super::describe_wait;
use crate::task::{IoDirection, SyncKind, WaitObject, WaitReason};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime};

impl Dump {
    /// The dump as one line of JSON, for tools (schema in
    /// docs/observability.md). Durations are in milliseconds, addresses are
    /// hex strings (a 64-bit address does not fit a JSON number exactly), and
    /// a sleep's time left is counted from the moment of the call.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// Every coroutine listed in the dump: the started ones, the running ones
    /// included (not the unlisted not-started ones, only counted).
    pub fn coroutines(&self) -> &[CoroutineInfo] {
        &self.coroutines
    }

    /// The first listed coroutine named `name`, if any.
    pub fn find(&self, name: &str) -> Option<&CoroutineInfo> {
        self.coroutines.iter().find(|c| c.name.as_deref() == Some(name))
    }

    fn to_value(&self) -> Value {
        let now = Instant::now();
        let wall_now = SystemTime::now();
        json!({
            "taken_at": clock::rfc3339(self.taken_at, true),
            "taken_at_unix_ms": clock::unix_millis(self.taken_at),
            "workers": self.workers.iter().map(worker).collect::<Vec<_>>(),
            "coroutines": self.coroutines.iter().map(|c| coroutine(c, now, wall_now)).collect::<Vec<_>>(),
            "not_started_global": self.not_started_global,
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn worker(w: &WorkerInfo) -> Value {
    json!({
        "index": w.index,
        "running": w.running,
        "running_for_ms": w.running_for.map(millis),
        "answered": w.answered,
        "not_started": w.not_started,
    })
}

fn coroutine(c: &CoroutineInfo, now: Instant, wall_now: SystemTime) -> Value {
    let description = match c.state {
        CoroutineState::Parked => describe_wait(c.reason, &c.object, now),
        state => state.to_string(),
    };
    json!({
        "id": c.id,
        "name": c.name,
        "state": state_name(c.state),
        "reason": reason_name(c.reason),
        "description": description,
        "wait": wait(&c.object, now, wall_now),
        "waited_ms": c.waited.map(millis),
        "worker": c.worker,
        "parent": c.parent,
        "spawned_at": c.spawned_at.map(|at| json!({"file": at.file, "line": at.line, "column": at.column})),
        "frames": c.frames.iter().map(frame).collect::<Vec<_>>(),
        "frames_note": c.frames_note,
    })
}

fn frame(f: &Frame) -> Value {
    json!({"function": f.function, "file": f.file, "line": f.line})
}

fn wait(object: &WaitObject, now: Instant, wall_now: SystemTime) -> Value {
    match *object {
        WaitObject::None => Value::Null,
        WaitObject::Socket { fd, direction, peer } => json!({
            "kind": "socket",
            "fd": fd,
            "direction": match direction { IoDirection::Read => "read", IoDirection::Write => "write" },
            "peer": peer.map(|p| p.to_string()),
        }),
        WaitObject::Sync { kind, addr } => json!({
            "kind": "sync",
            "sync": sync_name(kind),
            "addr": format!("{addr:#x}"),
        }),
        WaitObject::Sleep { until } => {
            let left = until.saturating_duration_since(now);
            json!({
                "kind": "sleep",
                "remaining_ms": millis(left),
                "until_ms": clock::unix_millis(wall_now + left),
            })
        }
        WaitObject::Join { id } => json!({"kind": "join", "joined": id}),
    }
}

fn state_name(state: CoroutineState) -> &'static str {
    match state {
        CoroutineState::Running => "running",
        CoroutineState::Runnable => "runnable",
        CoroutineState::Parked => "parked",
        CoroutineState::NotStarted => "not_started",
    }
}

fn reason_name(reason: WaitReason) -> &'static str {
    match reason {
        WaitReason::None => "none",
        WaitReason::Park => "park",
        WaitReason::Sleep => "sleep",
        WaitReason::Join => "join",
        WaitReason::Sync => "sync",
        WaitReason::Io => "io",
    }
}

fn sync_name(kind: SyncKind) -> &'static str {
    match kind {
        SyncKind::ChanReceive => "chan_receive",
        SyncKind::ChanSend => "chan_send",
        SyncKind::Select => "select",
        SyncKind::Mutex => "mutex",
        SyncKind::RwLockRead => "rwlock_read",
        SyncKind::RwLockWrite => "rwlock_write",
        SyncKind::Condvar => "condvar",
        SyncKind::Semaphore => "semaphore",
        SyncKind::WaitGroup => "waitgroup",
        SyncKind::Barrier => "barrier",
        SyncKind::OnceLock => "oncelock",
    }
}
