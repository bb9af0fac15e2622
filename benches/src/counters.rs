//! Server-side counters, so a benchmark reports where the CPU goes: context switches from
//! `/proc` and system calls counted by `perf stat`.
//!
//! **Context switches** ([`CtxSnapshot`]): the sum of `voluntary_ctxt_switches` +
//! `nonvoluntary_ctxt_switches` over `/proc/PID/task/*/status`, read at both ends of a window and
//! subtracted thread by thread. A thread that appears during the window counts whole (it started
//! at 0); a thread that exits during it is lost (the kernel folds a dead thread's switches into
//! the process only for `getrusage(RUSAGE_SELF)`, which another process cannot call) — the
//! servers measured here start their threads before the window and keep them. Why not
//! `/proc/PID/status` alone: it shows the main thread only. Why not `/proc/PID/task/*/schedstat`:
//! its third field counts time slices run, not switches, and it has no voluntary/involuntary
//! split, which tells a server that sleeps in `epoll_wait` (voluntary) from one preempted by the
//! client it shares the cores with (involuntary). These are the kernel's `nvcsw`/`nivcsw`, the
//! switches `perf stat`'s `context-switches` event counts (the two agreed to the switch in a
//! smoke run); reading them costs the server nothing, so they are taken over the measured window
//! itself.
//!
//! **System calls** ([`count_syscalls`], [`PerfStat`]): `perf stat` counting the
//! `raw_syscalls:sys_enter` tracepoint (every system call) and the `syscalls:sys_enter_*`
//! tracepoints of `epoll_wait` (+ `epoll_pwait`, `epoll_pwait2`), the read family (`read`,
//! `recvfrom`, `readv`, `recvmsg`), the write family (`write`, `sendto`, `writev`, `sendmsg`) and
//! `futex`, attached to the server with `-p PID` (all its threads, and threads they create).
//! **Not during the measured window**: while any system-call tracepoint is registered, the kernel
//! sends every system call of every thread on the machine (the load generator's too) down its
//! slow path, and with perf attached the server's context switches also switch perf contexts.
//! In a smoke run that added 1.3-2 us of server CPU per round trip (15-20 %) at 100 connections x
//! 64 B, events enabled or not. So the counts come from a separate counting window right after
//! the measured one, under the same load: perf is started (events off, `-D -1`), waited for
//! (`ping` on its control FIFO), switched on and off (`enable`/`disable`, acknowledged) around
//! the window, and the caller divides by the operations done in that window. perf's workload is
//! `cat` reading a pipe from this process: when this process ends, however it ends, `cat` sees
//! EOF and perf exits with it. If perf is missing, lacks permission or the tracepoints (tracefs
//! not mounted: `mount -t tracefs nodev /sys/kernel/tracing`), the error comes back as a
//! sentence for a note and the counts are recorded as unknown; a run never fails for want of
//! counters.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Voluntary and involuntary context switches of a process's threads, by thread id.
#[derive(Debug, Clone, Default)]
pub struct CtxSnapshot {
    threads: HashMap<u32, (u64, u64)>,
}

/// Context switches of a process over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CtxSwitches {
    /// The thread gave up the CPU (blocked: `epoll_wait`, a futex, a read).
    pub voluntary: u64,
    /// The thread was preempted.
    pub involuntary: u64,
}

impl CtxSwitches {
    /// Voluntary plus involuntary.
    pub fn total(&self) -> u64 {
        self.voluntary + self.involuntary
    }
}

impl CtxSnapshot {
    /// Reads every thread's switch counts from `/proc/PID/task/*/status`. Threads that exit while
    /// the directory is read are skipped.
    pub fn read(pid: u32) -> io::Result<CtxSnapshot> {
        let mut threads = HashMap::new();
        for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let entry = entry?;
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else { continue };
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.trim_start_matches(':').trim().parse::<u64>().ok())
            };
            if let (Some(v), Some(n)) =
                (field("voluntary_ctxt_switches"), field("nonvoluntary_ctxt_switches"))
            {
                threads.insert(tid, (v, n));
            }
        }
        Ok(CtxSnapshot { threads })
    }

    /// The switches between `self` (the start of a window) and `end`: per thread, the difference;
    /// a thread new in `end` counts whole; a thread gone from `end` is lost (see the module doc).
    pub fn delta(&self, end: &CtxSnapshot) -> CtxSwitches {
        let mut d = CtxSwitches::default();
        for (tid, &(v1, n1)) in &end.threads {
            let (v0, n0) = self.threads.get(tid).copied().unwrap_or((0, 0));
            d.voluntary += v1.saturating_sub(v0);
            d.involuntary += n1.saturating_sub(n0);
        }
        d
    }
}

/// System calls of a process over a window, as counted by perf (`None`: that event could not be
/// counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyscallCounts {
    /// Every system call (`raw_syscalls:sys_enter`).
    pub total: Option<u64>,
    /// `epoll_wait` + `epoll_pwait` + `epoll_pwait2`.
    pub epoll_waits: Option<u64>,
    /// `read` + `recvfrom` + `readv` + `recvmsg` (eventfd reads included).
    pub reads: Option<u64>,
    /// `write` + `sendto` + `writev` + `sendmsg` (eventfd writes included).
    pub writes: Option<u64>,
    /// `futex` (thread parking and waking).
    pub futex: Option<u64>,
    /// perf's `context-switches` event: the same switches as [`CtxSwitches::total`], counted by
    /// the kernel while perf was enabled (a cross-check of the `/proc` figure).
    pub ctx_switches: Option<u64>,
}

/// The perf events counted, and which [`SyscallCounts`] field each adds to.
const EVENTS: [(&str, Field); 14] = [
    ("raw_syscalls:sys_enter", Field::Total),
    ("syscalls:sys_enter_epoll_wait", Field::Epoll),
    ("syscalls:sys_enter_epoll_pwait", Field::Epoll),
    ("syscalls:sys_enter_epoll_pwait2", Field::Epoll),
    ("syscalls:sys_enter_read", Field::Reads),
    ("syscalls:sys_enter_recvfrom", Field::Reads),
    ("syscalls:sys_enter_readv", Field::Reads),
    ("syscalls:sys_enter_recvmsg", Field::Reads),
    ("syscalls:sys_enter_write", Field::Writes),
    ("syscalls:sys_enter_sendto", Field::Writes),
    ("syscalls:sys_enter_writev", Field::Writes),
    ("syscalls:sys_enter_sendmsg", Field::Writes),
    ("syscalls:sys_enter_futex", Field::Futex),
    // The kernel's own count of switches, to cross-check /proc.
    ("context-switches", Field::Switches),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Total,
    Epoll,
    Reads,
    Writes,
    Futex,
    Switches,
}

/// Where tracefs may be mounted.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Whether a tracepoint (`group:name`) exists in tracefs. `None` if tracefs is not found at all
/// (then perf is asked anyway and reports for itself).
fn tracepoint_exists(event: &str) -> Option<bool> {
    let (group, name) = event.split_once(':')?;
    let root = TRACEFS.iter().map(PathBuf::from).find(|p| p.join("events").is_dir())?;
    Some(root.join("events").join(group).join(name).is_dir())
}

/// A `perf stat` attached to a process, counting system calls while enabled.
pub struct PerfStat {
    child: Child,
    /// Keeps `cat`'s stdin open; dropping it ends perf.
    stdin: Option<std::process::ChildStdin>,
    ctl: std::fs::File,
    ack: std::fs::File,
    dir: PathBuf,
    events: Vec<(&'static str, Field)>,
}

/// How long to wait for perf to start (and exit).
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for perf to switch counting on or off: it answers in microseconds once
/// started, and a window's edges should not wait long for it.
const SWITCH_TIMEOUT: Duration = Duration::from_millis(500);

impl PerfStat {
    /// Starts `perf stat` on process `pid` with its events disabled. Errors (perf missing, no
    /// tracepoints, no permission) come back as a sentence for a note.
    pub fn start(pid: u32) -> Result<PerfStat, String> {
        let events: Vec<(&'static str, Field)> =
            EVENTS.iter().copied().filter(|(e, _)| tracepoint_exists(e) != Some(false)).collect();
        if !events.iter().any(|(_, f)| *f == Field::Total) {
            return Err("the raw_syscalls:sys_enter tracepoint is missing (is tracefs mounted? \
                        mount -t tracefs nodev /sys/kernel/tracing)"
                .into());
        }
        let dir = std::env::temp_dir().join(format!("corio-perfstat-{}-{pid}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let (ctl_path, ack_path) = (dir.join("ctl"), dir.join("ack"));
        for p in [&ctl_path, &ack_path] {
            mkfifo(p).map_err(|e| format!("mkfifo {}: {e}", p.display()))?;
        }
        // Read-write opens of a FIFO do not wait for the other end (Linux), and perf opens them
        // read-write too: nothing blocks if perf never starts.
        let open = |p: &PathBuf| std::fs::OpenOptions::new().read(true).write(true).open(p);
        let ctl = open(&ctl_path).map_err(|e| format!("open {}: {e}", ctl_path.display()))?;
        let ack = open(&ack_path).map_err(|e| format!("open {}: {e}", ack_path.display()))?;
        let list = events.iter().map(|(e, _)| *e).collect::<Vec<_>>().join(",");
        let mut cmd = Command::new("perf");
        cmd.args(["stat", "-x", ",", "--no-big-num", "-D", "-1", "-o"])
            .arg(dir.join("out"))
            .arg(format!("--control=fifo:{},{}", ctl_path.display(), ack_path.display()))
            .args(["-e", &list, "-p", &pid.to_string(), "--", "cat"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("err")).map_err(|e| format!("perf's stderr: {e}"))?);
        let mut child = cmd.spawn().map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            if e.kind() == io::ErrorKind::NotFound {
                "perf is not installed (apt-get install linux-perf)".to_string()
            } else {
                format!("cannot run perf: {e}")
            }
        })?;
        let stdin = child.stdin.take();
        let mut perf = PerfStat { child, stdin, ctl, ack, dir, events };
        // perf answers once it has attached to every thread: then `enable` is quick.
        perf.command("ping", START_TIMEOUT)?;
        Ok(perf)
    }

    /// Sends a control command (`ping`, `enable`, `disable`) and waits up to `timeout` for
    /// perf's acknowledgement (`ack\n` and a NUL: perf writes `sizeof` of the string).
    fn command(&mut self, what: &str, timeout: Duration) -> Result<(), String> {
        self.ctl.write_all(format!("{what}\n").as_bytes()).map_err(|e| format!("perf control: {e}"))?;
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while !got.contains(&b'\n') {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("perf exited ({status}): {}", self.stderr_tail()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("perf did not acknowledge {what:?} within {timeout:?}"));
            }
            if poll_readable(&self.ack, left.min(Duration::from_millis(100)))? {
                let mut b = [0u8; 16];
                let n = self.ack.read(&mut b).map_err(|e| format!("perf ack: {e}"))?;
                got.extend_from_slice(&b[..n]);
            }
        }
        Ok(())
    }

    /// Switches counting on (returns once perf has).
    pub fn enable(&mut self) -> Result<(), String> {
        self.command("enable", SWITCH_TIMEOUT)
    }

    /// Switches counting off (returns once perf has).
    pub fn disable(&mut self) -> Result<(), String> {
        self.command("disable", SWITCH_TIMEOUT)
    }

    /// Ends perf and returns what it counted while enabled.
    pub fn finish(mut self) -> Result<SyscallCounts, String> {
        drop(self.stdin.take());
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("perf did not exit after its workload ended".into());
                }
            }
        }
        let out = std::fs::read_to_string(self.dir.join("out")).map_err(|e| format!("perf's output: {e}"))?;
        parse_perf_csv(&out, &self.events)
            .ok_or_else(|| format!("perf counted nothing: {}", self.stderr_tail()))
    }

    fn stderr_tail(&self) -> String {
        let err = std::fs::read_to_string(self.dir.join("err")).unwrap_or_default();
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(3)..].join(" / ")
    }
}

impl Drop for PerfStat {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Parses `perf stat -x,` output into counts; `None` if the total could not be counted.
fn parse_perf_csv(out: &str, events: &[(&'static str, Field)]) -> Option<SyscallCounts> {
    let mut counted: HashMap<&str, Option<u64>> = HashMap::new();
    for line in out.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').collect();
        if cols.len() < 3 {
            continue;
        }
        // value,unit,event,...; the value is "<not counted>" or "<not supported>" when it failed.
        if let Some((name, _)) = events.iter().find(|(e, _)| *e == cols[2]) {
            counted.insert(*name, cols[0].trim().parse::<u64>().ok());
        }
    }
    let sum = |field: Field| -> Option<u64> {
        let mut total = None;
        for (name, f) in events {
            if *f == field {
                // One event of a group that could not be counted makes the group unknown.
                total = Some(total.unwrap_or(0) + (*counted.get(name)?)?);
            }
        }
        total
    };
    let c = SyscallCounts {
        total: sum(Field::Total),
        epoll_waits: sum(Field::Epoll),
        reads: sum(Field::Reads),
        writes: sum(Field::Writes),
        futex: sum(Field::Futex),
        ctx_switches: sum(Field::Switches),
    };
    c.total.map(|_| c)
}

fn mkfifo(p: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: `c` is a valid NUL-terminated path that lives across the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits up to `timeout` for `f` to become readable.
fn poll_readable(f: &std::fs::File, timeout: Duration) -> Result<bool, String> {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: `pfd` is one valid, writable pollfd for the duration of the call, and the count
    // passed is 1.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis().min(i32::MAX as u128) as i32) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(format!("poll: {e}"));
    }
    Ok(r > 0 && pfd.revents & libc::POLLIN != 0)
}

/// Counts the system calls of process `pid` while `window` runs: starts perf (and waits until it
/// has attached), enables its events, runs `window`, disables them, ends perf. Returns the counts
/// and what `window` returned (the caller's operation count), or why perf could not count.
pub fn count_syscalls<R>(pid: u32, window: impl FnOnce() -> R) -> Result<(SyscallCounts, R), String> {
    let mut perf = PerfStat::start(pid)?;
    perf.enable()?;
    let r = window();
    perf.disable()?;
    Ok((perf.finish()?, r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_perf_csv() {
        let events: Vec<(&'static str, Field)> = EVENTS.to_vec();
        let out = "# started on Mon Nov 30 12:17:23 2026\n\n\
            1000,,raw_syscalls:sys_enter,197046885,100.00,,\n\
            10,,syscalls:sys_enter_epoll_wait,1,100.00,,\n\
            5,,syscalls:sys_enter_epoll_pwait,1,100.00,,\n\
            0,,syscalls:sys_enter_epoll_pwait2,1,100.00,,\n\
            300,,syscalls:sys_enter_recvfrom,1,100.00,,\n\
            7,,syscalls:sys_enter_read,1,100.00,,\n\
            0,,syscalls:sys_enter_readv,1,100.00,,\n\
            0,,syscalls:sys_enter_recvmsg,1,100.00,,\n\
            300,,syscalls:sys_enter_sendto,1,100.00,,\n\
            <not counted>,,syscalls:sys_enter_write,0,100.00,,\n\
            0,,syscalls:sys_enter_writev,1,100.00,,\n\
            0,,syscalls:sys_enter_sendmsg,1,100.00,,\n\
            2,,syscalls:sys_enter_futex,1,100.00,,\n\
            40,,context-switches,1,100.00,,\n";
        let c = parse_perf_csv(out, &events).unwrap();
        assert_eq!(c.total, Some(1000));
        assert_eq!(c.epoll_waits, Some(15));
        assert_eq!(c.reads, Some(307));
        assert_eq!(c.writes, None, "one uncounted event makes its group unknown");
        assert_eq!(c.futex, Some(2));
        assert!(parse_perf_csv("<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n", &events).is_none());
    }

    #[test]
    fn context_switches_of_this_process() {
        let pid = std::process::id();
        let a = CtxSnapshot::read(pid).unwrap();
        assert!(!a.threads.is_empty());
        std::thread::sleep(Duration::from_millis(5)); // one voluntary switch at least
        let b = CtxSnapshot::read(pid).unwrap();
        assert!(a.delta(&b).voluntary >= 1);
        assert_eq!(b.delta(&b).total(), 0);
    }
}
