//! The presentation of a coroutine dump: the Go-style text (`Display` for
//! [`Dump`] and [`CoroutineInfo`]), the words for what a coroutine waits on
//! ([`describe_wait`], shared with the stall report), humanised durations,
//! and (in `json`) the JSON form for tools. See docs/observability.md for the
//! format explained line by line.

mod clock;
mod json;
#[cfg(test)]
mod tests;

use super::info::{CoroutineInfo, CoroutineState, Dump, Frame, WorkerInfo};
use crate::task::{IoDirection, SyncKind, WaitObject, WaitReason};
use std::fmt;
use std::time::{Duration, Instant};

/// What a coroutine waits for, in words, as the dump and the stall report
/// print it: `"chan receive 0x7f12a4c0"`, `"net read fd 17 (peer
/// 10.0.0.7:5531)"`, `"sleep, 1.5 s left"`, `"join coroutine 9"`, `"park"`.
///
/// The recorded `object` says the most, so it is described when there is one;
/// otherwise the `reason` alone is named. `now` is the instant a sleep's time
/// left is counted from. `WaitReason::None` with no object is `"not waiting"`
/// (the dump prints the state, "running" or "runnable", instead).
pub(crate) fn describe_wait(reason: WaitReason, object: &WaitObject, now: Instant) -> String {
    match *object {
        WaitObject::Socket { fd, direction, peer } => match peer {
            Some(peer) => format!("net {direction} fd {fd} (peer {peer})"),
            None => format!("net {direction} fd {fd}"),
        },
        WaitObject::Sync { kind, addr: 0 } => kind.to_string(),
        WaitObject::Sync { kind, addr } => format!("{kind} {addr:#x}"),
        WaitObject::Sleep { until } => {
            // `park_timeout` records its deadline too: it is still a park.
            let what = if reason == WaitReason::Park { "park" } else { "sleep" };
            match until.checked_duration_since(now) {
                Some(left) if !left.is_zero() => format!("{what}, {} left", human_duration(left)),
                _ => format!("{what}, due"),
            }
        }
        WaitObject::Join { id } => format!("join coroutine {id}"),
        WaitObject::None => match reason {
            WaitReason::None => "not waiting".to_string(),
            WaitReason::Park => "park".to_string(),
            WaitReason::Sleep => "sleep".to_string(),
            WaitReason::Join => "join".to_string(),
            WaitReason::Sync => "sync wait".to_string(),
            WaitReason::Io => "net wait".to_string(),
        },
    }
}

/// A duration as a person reads it: `"350 ms"`, `"2.1 s"`, `"42 s"`,
/// `"3 minutes"`, `"2 hours"` (rounded down past a minute, as Go's dump).
pub(crate) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if d < Duration::from_millis(1) {
        if d.is_zero() {
            "0 ms".to_string()
        } else {
            "<1 ms".to_string()
        }
    } else if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if secs < 9.95 {
        format!("{secs:.1} s")
    } else if d < Duration::from_secs(60) {
        format!("{secs:.0} s")
    } else if d < Duration::from_secs(2 * 3600) {
        plural(d.as_secs() / 60, "minute")
    } else if d < Duration::from_secs(2 * 86400) {
        plural(d.as_secs() / 3600, "hour")
    } else {
        plural(d.as_secs() / 86400, "day")
    }
}

/// How long a worker has run one coroutine: to the hundredth of a second
/// below a minute (`"1.20 s"`, the scale of a stall), then as
/// [`human_duration`].
pub(crate) fn running_duration(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        human_duration(d)
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

impl fmt::Display for SyncKind {
    /// The operation, as the dump names it: `"chan receive"`, `"Mutex lock"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncKind::ChanReceive => "chan receive",
            SyncKind::ChanSend => "chan send",
            SyncKind::Select => "select",
            SyncKind::Mutex => "Mutex lock",
            SyncKind::RwLockRead => "RwLock read",
            SyncKind::RwLockWrite => "RwLock write",
            SyncKind::Condvar => "Condvar wait",
            SyncKind::Semaphore => "Semaphore acquire",
            SyncKind::WaitGroup => "WaitGroup wait",
            SyncKind::Barrier => "Barrier wait",
            SyncKind::OnceLock => "OnceLock init",
        })
    }
}

impl fmt::Display for IoDirection {
    /// `"read"` or `"write"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoDirection::Read => "read",
            IoDirection::Write => "write",
        })
    }
}

impl fmt::Display for WaitObject {
    /// The object as the dump names it (see `describe_wait`); a sleep's time
    /// left is counted from now. `WaitObject::None` is `"none"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitObject::None => f.write_str("none"),
            other => f.write_str(&describe_wait(WaitReason::None, other, Instant::now())),
        }
    }
}

impl fmt::Display for CoroutineState {
    /// `"running"`, `"runnable"`, `"parked"` or `"not started"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CoroutineState::Running => "running",
            CoroutineState::Runnable => "runnable",
            CoroutineState::Parked => "parked",
            CoroutineState::NotStarted => "not started",
        })
    }
}

impl CoroutineInfo {
    /// The words between the brackets of its dump line, without the time
    /// waited: its wait if parked, else its state.
    fn status(&self, now: Instant) -> String {
        match self.state {
            CoroutineState::Parked => describe_wait(self.reason, &self.object, now),
            state => state.to_string(),
        }
    }

    /// Writes its block: the header line, then its frames (or why there are
    /// none). `now` is the instant sleeps' time left is counted from.
    fn write_block(&self, f: &mut fmt::Formatter<'_>, now: Instant) -> fmt::Result {
        write!(f, "coroutine {}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, " {name:?}")?;
        }
        write!(f, " [{}", self.status(now))?;
        if let (CoroutineState::Parked, Some(waited)) = (self.state, self.waited) {
            write!(f, ", {}", human_duration(waited))?;
        }
        f.write_str("]")?;
        if let Some(worker) = self.worker {
            write!(f, ", worker {worker}")?;
        }
        match self.parent {
            Some(parent) => write!(f, ", spawned by {parent}")?,
            None => f.write_str(", spawned from a thread")?,
        }
        if let Some(at) = self.spawned_at {
            write!(f, " at {}:{}", at.file, at.line)?;
        }
        f.write_str(":\n")?;
        for frame in &self.frames {
            write_frame(f, frame)?;
        }
        match (&self.frames_note, self.frames.is_empty()) {
            (Some(note), _) => writeln!(f, "  ({note})"),
            (None, true) => writeln!(f, "  (no stack)"),
            (None, false) => Ok(()),
        }
    }
}

fn write_frame(f: &mut fmt::Formatter<'_>, frame: &Frame) -> fmt::Result {
    writeln!(f, "  {}", frame.function)?;
    match (&frame.file, frame.line) {
        (Some(file), Some(line)) => writeln!(f, "      at {file}:{line}"),
        (Some(file), None) => writeln!(f, "      at {file}"),
        (None, _) => Ok(()),
    }
}

impl fmt::Display for CoroutineInfo {
    /// Its block as in the dump: `coroutine 42 "conn" [chan receive 0x.., 2.1
    /// s], worker 1, spawned by 7 at src/main.rs:31:` then one frame per two
    /// lines (function, then `at file:line`), ending with a newline. A
    /// sleep's time left is counted from now.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_block(f, Instant::now())
    }
}

impl fmt::Display for WorkerInfo {
    /// Its line in the dump: `worker 1 is running coroutine 42 for 1.20 s`,
    /// or `worker 0 is idle`, then how many coroutines wait to start on it
    /// and whether it answered the dump.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker {} is ", self.index)?;
        match (self.running, self.running_for) {
            (Some(id), Some(d)) => write!(f, "running coroutine {id} for {}", running_duration(d))?,
            (Some(id), None) => write!(f, "running coroutine {id}")?,
            (None, _) => f.write_str("idle")?,
        }
        if self.not_started > 0 {
            write!(f, ", {} not started", self.not_started)?;
        }
        if !self.answered {
            f.write_str(" (did not answer: its other coroutines are not listed)")?;
        }
        Ok(())
    }
}

/// The counts of the dump's first line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    running: usize,
    runnable: usize,
    parked: usize,
    /// Listed not-started coroutines plus the unlisted ones.
    not_started: usize,
}

impl Dump {
    fn counts(&self) -> Counts {
        let mut counts = Counts {
            not_started: self.not_started_global + self.workers.iter().map(|w| w.not_started).sum::<usize>(),
            ..Counts::default()
        };
        for c in &self.coroutines {
            match c.state {
                CoroutineState::Running => counts.running += 1,
                CoroutineState::Runnable => counts.runnable += 1,
                CoroutineState::Parked => counts.parked += 1,
                CoroutineState::NotStarted => counts.not_started += 1,
            }
        }
        counts
    }
}

impl fmt::Display for Dump {
    /// The dump as Go prints its goroutines: a header line with the counts,
    /// one line per worker, then one block per coroutine, blocks separated by
    /// blank lines (see docs/observability.md). Sleeps' time left is counted
    /// from the moment of formatting.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = Instant::now();
        let c = self.counts();
        let started = c.running + c.runnable + c.parked;
        writeln!(
            f,
            "corio dump at {}: {}, {} ({} running, {} runnable, {} parked), {} not started",
            clock::rfc3339(self.taken_at, false),
            plural_usize(self.workers.len(), "worker"),
            plural_usize(started, "coroutine"),
            c.running,
            c.runnable,
            c.parked,
            c.not_started,
        )?;
        if !self.workers.is_empty() {
            f.write_str("\n")?;
        }
        for worker in &self.workers {
            writeln!(f, "{worker}")?;
        }
        for coroutine in &self.coroutines {
            f.write_str("\n")?;
            coroutine.write_block(f, now)?;
        }
        Ok(())
    }
}

fn plural_usize(n: usize, unit: &str) -> String {
    plural(n as u64, unit)
}
