//! The monitor thread of a runtime (Go's sysmon): the stall report, the
//! coroutine dump on a signal, and the stack trim.
//!
//! Stalls: each worker publishes the coroutine it runs and counts its
//! resumes (`WorkerHandle::running`, `metrics.resumes`: plain stores per
//! resume, no clock). The monitor looks every `period` (a quarter of the
//! threshold, 5 ms to 250 ms; backing off to 500 ms while every worker is
//! idle); when it sees a new resume (the count moved) it notes the time in
//! `running_since`, so a worker whose count has not moved since then has run
//! one coroutine for at least `now - running_since` (up to one period more).
//! Past the threshold it reports once on stderr: the coroutine, its stack
//! sampled from the stuck thread by a signal (`sample`), and how many
//! coroutines of that worker wait behind it. When that resume ends it says so
//! in one line, with the total time. Detection comes within two periods (or
//! 500 ms after an idle spell) of the threshold.
//!
//! Dump on a signal: the handler only bumps a counter (async-signal-safe);
//! the monitor sees the change at its next look and prints a dump of its
//! runtime on stderr; the process keeps running (every runtime's monitor
//! dumps its own).
//!
//! Stack trim: every `trim_after` (`RuntimeBuilder::stack_trim_after`) the
//! monitor ends a trim window of the stack pool (`StackPool::trim`: the pages
//! of stacks free for the whole window, beyond a watermark, go back to the
//! OS; policy in `stack`'s module doc). Its looks then come at least every
//! quarter window, so a window lasts `trim_after` to `1.25 * trim_after`.
//!
//! The thread runs if any of the three is on (the trim is by default, so
//! `stall_threshold(None)` alone does not stop it).
//!
//! The thread holds a `Weak` to the scheduler and ends when the runtime is
//! dropped (`stop`), or when the scheduler is gone.

use super::collect::{dump_scheduler, sample_worker_ips};
use super::format::running_duration;
use super::symbolize::{symbolize, trim};
use crate::sched::clock::coarse_now_ms;
use crate::sched::Scheduler;
use crate::stack::POOL_WARM_KEEP;
use parking_lot::{Condvar, Mutex};
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

/// Signals delivered to the dump handler so far (process-wide).
static DUMP_SIGNALS: AtomicU64 = AtomicU64::new(0);

/// A running monitor; dropping it stops and joins the thread.
pub(crate) struct Monitor {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a monitor watches and does; `None`s are off.
pub(crate) struct MonitorConfig<'a> {
    /// Report stalls longer than this.
    pub(crate) threshold: Option<Duration>,
    /// Print a dump on these signals.
    pub(crate) dump_signals: &'a [libc::c_int],
    /// Trim the stack pool after windows this long.
    pub(crate) trim_after: Option<Duration>,
}

/// Starts the monitor of `scheduler` if there is anything to do: stalls to
/// watch, dump signals to answer, or stacks to trim.
pub(crate) fn start(
    scheduler: &Arc<Scheduler>,
    config: MonitorConfig<'_>,
    name: &str,
) -> io::Result<Option<Monitor>> {
    let MonitorConfig { threshold, dump_signals, trim_after } = config;
    if threshold.is_none() && dump_signals.is_empty() && trim_after.is_none() {
        return Ok(None);
    }
    for &signal in dump_signals {
        install_dump_handler(signal)?;
    }
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let state = MonitorState {
        scheduler: Arc::downgrade(scheduler),
        threshold,
        stop: stop.clone(),
        reported: vec![None; scheduler.workers.len()],
        ticks: vec![0; scheduler.workers.len()],
        dumps_seen: DUMP_SIGNALS.load(Ordering::Relaxed),
        trim: trim_after.map(|after| TrimWindow { after, began: Instant::now() }),
    };
    let thread = thread::Builder::new().name(format!("{name}-monitor")).spawn(move || state.run())?;
    Ok(Some(Monitor { stop, thread: Some(thread) }))
}

struct MonitorState {
    scheduler: Weak<Scheduler>,
    threshold: Option<Duration>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    /// Per worker: the (coroutine id, resume start) of a stall reported.
    reported: Vec<Option<(u64, u64)>>,
    /// Per worker: the resume count at the last look.
    ticks: Vec<u64>,
    dumps_seen: u64,
    trim: Option<TrimWindow>,
}

/// The current trim window of the stack pool.
struct TrimWindow {
    after: Duration,
    began: Instant,
}

impl MonitorState {
    fn run(mut self) {
        let busy_period = match self.threshold {
            Some(t) => (t / 4).clamp(Duration::from_millis(5), Duration::from_millis(250)),
            None => Duration::from_millis(250),
        };
        // With the trim on, look at least every quarter window.
        let longest = match &self.trim {
            Some(trim) => (trim.after / 4).clamp(Duration::from_millis(5), Duration::from_millis(500)),
            None => Duration::from_millis(500),
        };
        let busy_period = busy_period.min(longest);
        let mut period = busy_period;
        loop {
            {
                let mut stopped = self.stop.0.lock();
                if !*stopped {
                    self.stop.1.wait_for(&mut stopped, period);
                }
                if *stopped {
                    drop(stopped);
                    // The runtime is being dropped: close the reports of
                    // stalls that ended since the last look.
                    if let Some(scheduler) = self.scheduler.upgrade() {
                        self.check_stalls(&scheduler);
                    }
                    return;
                }
            }
            let Some(scheduler) = self.scheduler.upgrade() else { return };
            if scheduler.is_shutting_down() {
                // Close the reports of stalls that ended since the last look.
                self.check_stalls(&scheduler);
                return;
            }
            let signals = DUMP_SIGNALS.load(Ordering::Relaxed);
            if signals != self.dumps_seen {
                self.dumps_seen = signals;
                let dump = dump_scheduler(&scheduler);
                let _ = writeln!(io::stderr().lock(), "{dump}");
            }
            let busy = self.check_stalls(&scheduler);
            self.trim_stacks(&scheduler);
            period = if busy { busy_period } else { (period * 2).min(longest) };
        }
    }

    /// Ends the trim window if it has lasted long enough.
    fn trim_stacks(&mut self, scheduler: &Scheduler) {
        let Some(trim) = &mut self.trim else { return };
        if trim.began.elapsed() < trim.after {
            return;
        }
        scheduler.stack_pool.trim(POOL_WARM_KEEP);
        trim.began = Instant::now();
    }

    /// Notes when resumes began, reports new stalls and ended ones; returns
    /// whether any worker runs.
    fn check_stalls(&mut self, scheduler: &Scheduler) -> bool {
        let now = coarse_now_ms();
        let mut busy = false;
        for (index, worker) in scheduler.workers.iter().enumerate() {
            // Note when each resume began (as first seen). Count, id, count
            // again: a resume in between would pair one coroutine's id with
            // another's count; skip this worker until the next look then.
            let tick = worker.metrics.resumes.load(Ordering::Relaxed);
            let id = worker.running.load(Ordering::Relaxed);
            if worker.metrics.resumes.load(Ordering::Relaxed) != tick {
                busy = true;
                continue;
            }
            if id == 0 {
                worker.running_since.store(0, Ordering::Relaxed);
            } else if tick != self.ticks[index] || worker.running_since.load(Ordering::Relaxed) == 0 {
                worker.running_tick.store(tick, Ordering::Relaxed);
                worker.running_since.store(now, Ordering::Relaxed);
            }
            self.ticks[index] = tick;
            let since = worker.running_since.load(Ordering::Relaxed);
            let Some(threshold) = self.threshold else {
                busy |= since != 0;
                continue;
            };
            busy |= since != 0;
            if let Some((stuck_id, stuck_since)) = self.reported[index] {
                if (id, since) != (stuck_id, stuck_since) {
                    let took = Duration::from_millis(now.saturating_sub(stuck_since));
                    let _ = writeln!(
                        io::stderr().lock(),
                        "corio: worker {index}: coroutine {stuck_id} yielded after {}",
                        running_duration(took)
                    );
                    self.reported[index] = None;
                } else {
                    let ms = now.saturating_sub(since);
                    let longest = &worker.metrics.longest_stall_ms;
                    longest.store(longest.load(Ordering::Relaxed).max(ms), Ordering::Relaxed);
                }
            }
            if since == 0 || self.reported[index].is_some() {
                continue;
            }
            let running_for = Duration::from_millis(now.saturating_sub(since));
            if running_for < threshold {
                continue;
            }
            self.reported[index] = Some((id, since));
            bump(&worker.metrics.stalls);
            let longest = &worker.metrics.longest_stall_ms;
            longest.store(
                longest.load(Ordering::Relaxed).max(running_for.as_millis() as u64),
                Ordering::Relaxed,
            );
            report(scheduler, index, id, running_for);
        }
        busy
    }
}

fn sampled_ok(frames: &[super::Frame]) -> bool {
    !frames.is_empty()
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Prints the stall report of worker `index` (format in docs/observability.md).
fn report(scheduler: &Scheduler, index: usize, id: u64, running_for: Duration) {
    // What is known now, before the sample (which may take a while on a
    // loaded machine, during which the coroutine may finish).
    let name = scheduler.names.lock().get(&id).map(|name| format!(" \"{name}\"")).unwrap_or_default();
    let worker = &scheduler.workers[index];
    let behind = worker.live.load(Ordering::Relaxed).saturating_sub(1);
    let not_started = worker.stealer.len() + worker.placed.len();
    let tick = worker.metrics.resumes.load(Ordering::Relaxed);
    let sampled = sample_worker_ips(scheduler, index);
    let still = worker.running.load(Ordering::Relaxed) == id
        && worker.metrics.resumes.load(Ordering::Relaxed) == tick;
    let frames = match sampled {
        Some(ips) if still => trim(symbolize(&ips)),
        // The sample landed after the coroutine moved on: not its stack.
        Some(_) => Vec::new(),
        None => Vec::new(),
    };
    let why_no_stack = match (sampled_ok(&frames), still) {
        (true, _) => "",
        (false, false) => "  (it moved on before its stack could be sampled)\n",
        (false, true) => "  (its stack could not be sampled in time)\n",
    };
    let mut text = format!(
        "corio: worker {index} has been running coroutine {id}{name} for {} without yielding\n",
        running_duration(running_for)
    );
    if frames.is_empty() {
        text.push_str(why_no_stack);
    } else {
        text.push_str("  it is blocked in (or computing at):\n");
        for (i, frame) in frames.iter().take(24).enumerate() {
            text.push_str(&format!("     {i}: {}\n", frame.function));
            if let (Some(file), Some(line)) = (&frame.file, frame.line) {
                text.push_str(&format!("        at {file}:{line}\n"));
            }
        }
    }
    text.push_str(&format!(
        "  {behind} started coroutines and {not_started} not yet started on worker {index} cannot run until it yields\n"
    ));
    text.push_str(
        "  hint: move blocking work to corio::blocking::spawn_blocking or corio::fs (docs/blocking-hazards.md)\n",
    );
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// Installs (once per signal) the handler that asks for a dump.
fn install_dump_handler(signal: libc::c_int) -> io::Result<()> {
    static INSTALLED: Mutex<Vec<libc::c_int>> = Mutex::new(Vec::new());
    let mut installed = INSTALLED.lock();
    if installed.contains(&signal) {
        return Ok(());
    }
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value
    // that we fill in; the handler only performs an atomic add, which is
    // async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_dump_signal as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    installed.push(signal);
    Ok(())
}

extern "C" fn on_dump_signal(_signal: libc::c_int) {
    DUMP_SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// Parses `CORIO_DUMP_SIGNAL` (`SIGQUIT`, `SIGUSR1`, `SIGUSR2`, or a number).
pub(crate) fn dump_signal_from_env() -> Option<libc::c_int> {
    let value = std::env::var("CORIO_DUMP_SIGNAL").ok()?;
    match value.trim().trim_start_matches("SIG") {
        "QUIT" => Some(libc::SIGQUIT),
        "USR1" => Some(libc::SIGUSR1),
        "USR2" => Some(libc::SIGUSR2),
        other => other.parse().ok(),
    }
}

/// Parses `CORIO_STALL_MS`: `Some(None)` for 0 (off), `Some(Some(ms))`.
pub(crate) fn stall_threshold_from_env() -> Option<Option<Duration>> {
    let ms: u64 = std::env::var("CORIO_STALL_MS").ok()?.trim().parse().ok()?;
    Some((ms != 0).then(|| Duration::from_millis(ms)))
}
