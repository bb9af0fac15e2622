//! Building a [`Dump`] from the workers' answers (`sched::dump` tells the
//! protocol): symbolising the recorded stacks, and standing in for workers
//! stuck in one coroutine, whose running coroutine is sampled by a signal.

use super::info::{CoroutineInfo, CoroutineState, Dump, Frame, SpawnLocation, WorkerInfo};
use super::sample::sample_thread;
use super::symbolize::{symbolize, trim};
use crate::sched::clock::coarse_now_ms;
use crate::sched::dump::{SnapState, TaskSnapshot};
use crate::sched::{context, Scheduler};
use crate::task::{WaitObject, WaitReason};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

/// How long a dump waits for the workers' answers.
const ANSWER_WAIT: Duration = Duration::from_secs(1);
/// How long sampling a stuck worker's thread may take.
const SAMPLE_WAIT: Duration = Duration::from_secs(1);

/// Takes a dump of `scheduler`'s coroutines (see `corio::debug::dump`).
pub(crate) fn dump_scheduler(scheduler: &Scheduler) -> Dump {
    let taken_at = SystemTime::now();
    let me = context::with_current_task(|task| task.map(|task| task.id));
    let answers = scheduler.request_dump(Instant::now() + ANSWER_WAIT);
    let now_ms = coarse_now_ms();
    let mut workers = Vec::new();
    let mut coroutines = Vec::new();
    // Coroutines parked at the same place share their return addresses:
    // resolve each address once (a dump of 100,000 similar coroutines is
    // then bound by the workers' captures, not by symbolisation).
    let mut symbols = Symbols::default();
    for (index, handle) in scheduler.workers.iter().enumerate() {
        let running = handle.running.load(Ordering::Relaxed);
        let since = handle.running_since.load(Ordering::Relaxed);
        let running_for = (since != 0).then(|| Duration::from_millis(now_ms.saturating_sub(since)));
        match answers.iter().find(|answer| answer.index == index) {
            Some(answer) => {
                workers.push(WorkerInfo {
                    index,
                    running: None,
                    running_for: None,
                    answered: true,
                    not_started: answer.not_started,
                });
                for task in &answer.tasks {
                    coroutines.push(coroutine_info(task, index, now_ms, me, &mut symbols));
                }
            }
            None => {
                workers.push(WorkerInfo {
                    index,
                    running: (running != 0).then_some(running),
                    running_for,
                    answered: false,
                    not_started: handle.stealer.len() + handle.placed.len(),
                });
                if running != 0 {
                    coroutines.push(stuck_coroutine(scheduler, index, running));
                }
            }
        }
    }
    coroutines.sort_by_key(|c| c.id);
    Dump { taken_at, workers, coroutines, not_started_global: scheduler.injector.len() }
}

/// Symbolised frames by instruction pointer (one address may stand for
/// several inlined frames).
#[derive(Default)]
struct Symbols(HashMap<usize, Vec<Frame>>);

impl Symbols {
    fn frames(&mut self, ips: &[usize]) -> Vec<Frame> {
        let mut frames = Vec::new();
        for &ip in ips {
            frames.extend(self.0.entry(ip).or_insert_with(|| symbolize(&[ip])).iter().cloned());
        }
        trim(frames)
    }
}

fn coroutine_info(
    task: &TaskSnapshot,
    worker: usize,
    now_ms: u64,
    me: Option<u64>,
    symbols: &mut Symbols,
) -> CoroutineInfo {
    let frames = symbols.frames(&task.ips);
    let is_me = me == Some(task.id);
    let state = match task.state {
        _ if is_me => CoroutineState::Running,
        SnapState::Runnable => CoroutineState::Runnable,
        SnapState::Parked => CoroutineState::Parked,
    };
    let parked = state == CoroutineState::Parked;
    CoroutineInfo {
        id: task.id,
        name: task.name.clone(),
        state,
        reason: if parked { task.reason } else { WaitReason::None },
        object: if parked { task.object } else { WaitObject::None },
        waited: (parked && task.parked_since != 0)
            .then(|| Duration::from_millis(now_ms.saturating_sub(task.parked_since))),
        worker: Some(worker),
        parent: (task.parent != 0).then_some(task.parent),
        spawned_at: task.spawned_at.map(|l| SpawnLocation {
            file: l.file(),
            line: l.line(),
            column: l.column(),
        }),
        frames_note: if frames.is_empty() { Some("no stack recorded".into()) } else { None },
        frames,
    }
}

/// The coroutine a worker that did not answer is running, by its id.
fn stuck_coroutine(scheduler: &Scheduler, worker: usize, id: u64) -> CoroutineInfo {
    let handle = &scheduler.workers[worker];
    let tick = handle.metrics.resumes.load(Ordering::Relaxed);
    let sampled = sample_worker_ips(scheduler, worker);
    // A sample that landed after the coroutine moved on is not its stack.
    let still = handle.running.load(Ordering::Relaxed) == id
        && handle.metrics.resumes.load(Ordering::Relaxed) == tick;
    let sampled = sampled.filter(|_| still).map(|ips| trim(symbolize(&ips)));
    let (frames, note) = match sampled {
        Some(frames) if !frames.is_empty() => {
            (frames, Some("running; its worker did not answer (sampled)".into()))
        }
        _ => (Vec::new(), Some("running; its worker did not answer and could not be sampled".into())),
    };
    CoroutineInfo {
        id,
        name: scheduler.names.lock().get(&id).cloned(),
        state: CoroutineState::Running,
        reason: WaitReason::None,
        object: WaitObject::None,
        waited: None,
        worker: Some(worker),
        parent: None,
        spawned_at: None,
        frames,
        frames_note: note,
    }
}

/// Samples worker `index`'s thread (a signal; `sample`), unsymbolised
/// (symbolising first loads the debug information, which can take a second:
/// callers check what the sample means first). None if its thread is gone or
/// did not answer in time.
pub(crate) fn sample_worker_ips(scheduler: &Scheduler, index: usize) -> Option<Vec<usize>> {
    let alive = scheduler.threads_alive.read();
    if !*alive {
        return None;
    }
    let thread = scheduler.workers[index].thread.load(Ordering::Relaxed);
    if thread == 0 {
        return None;
    }
    // SAFETY: the worker threads are joined only after `threads_alive` is
    // cleared under the write lock, and we hold the read lock: the thread
    // has not been joined, so its pthread_t is valid.
    unsafe { sample_thread(thread as libc::pthread_t, SAMPLE_WAIT) }
}
