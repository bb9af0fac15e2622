//! `srvcount`: runs a load generator (wrk, in `run-http.sh`) and counts what a server process
//! did meanwhile: CPU time, context switches and, with `--perf`, system calls, the counters
//! `loadgen` records for the echo benchmarks (`corio_benches::counters`).
//!
//! ```text
//! srvcount --pid PID [--out FILE] [--perf] -- COMMAND [ARGS...]
//! ```
//!
//! The window opens (`/proc` read; with `--perf`, perf started on PID, waited for and switched
//! on), COMMAND runs with this process's stdin, stdout and stderr, and the window closes when it
//! exits. One JSON object of totals over the window goes to FILE (default: stderr):
//! `{"wall_s":..,"cpu_us":..,"ctx_switches":..,"vol_ctx_switches":..,"syscalls":..,
//! "epoll_waits":..,"reads":..,"writes":..,"futex":..}` (see `corio_benches::counters` for what
//! each counts), `null` for what was not counted; the caller divides by its operations.
//! Counting system calls slows every system call on the machine while perf is attached, so
//! `run-http.sh` measures CPU time in one wrk run without `--perf` and counts system calls in a
//! shorter second run with it. If perf does not work the system-call counts are null and a note
//! says why. Exits with COMMAND's status (1 if it could not be run, 2 on bad arguments).

use std::process::{Command, ExitStatus};
use std::time::Instant;

use corio_benches::counters::{count_syscalls, CtxSnapshot, SyscallCounts};
use corio_benches::proc_cpu_time;

/// What one run of COMMAND gave: its exit status, wall seconds, the server's CPU microseconds,
/// and its (all, voluntary) context switches.
type Window = (std::io::Result<ExitStatus>, f64, Option<u128>, Option<(u64, u64)>);

const USAGE: &str = "usage: srvcount --pid PID [--out FILE] [--perf] -- COMMAND [ARGS...]";

fn main() {
    let mut pid: Option<u32> = None;
    let mut out: Option<String> = None;
    let mut perf = false;
    let mut args = std::env::args().skip(1);
    let mut command: Vec<String> = vec![];
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pid" => pid = args.next().and_then(|v| v.parse().ok()),
            "--out" => out = args.next(),
            "--perf" => perf = true,
            "--" => {
                command = args.by_ref().collect();
                break;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            a => {
                eprintln!("srvcount: unknown argument {a:?}\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let (Some(pid), Some((prog, rest))) = (pid, command.split_first()) else {
        eprintln!("srvcount: --pid and a command are needed\n{USAGE}");
        std::process::exit(2);
    };

    // The window: /proc before and after COMMAND.
    let run = || -> Window {
        let t0 = Instant::now();
        let ctx0 = CtxSnapshot::read(pid).ok();
        let cpu0 = proc_cpu_time(Some(pid)).ok();
        let status = Command::new(prog).args(rest).status();
        let cpu1 = proc_cpu_time(Some(pid)).ok();
        let ctx = ctx0.zip(CtxSnapshot::read(pid).ok()).map(|(c0, c1)| c0.delta(&c1));
        let cpu_us = cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a).as_micros());
        (status, t0.elapsed().as_secs_f64(), cpu_us, ctx.map(|c| (c.total(), c.voluntary)))
    };
    let mut sc = SyscallCounts::default();
    let (status, wall, cpu_us, ctx) = if perf {
        let mut ran = None;
        match count_syscalls(pid, || ran = Some(run())) {
            Ok((counts, ())) => sc = counts,
            Err(e) => eprintln!("srvcount: note: no system-call counts (recorded as null): {e}"),
        }
        // perf may have failed before the command ran: run it then, uncounted.
        ran.unwrap_or_else(run)
    } else {
        run()
    };

    let opt = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
    let json = format!(
        "{{\"wall_s\":{wall:.3},\"cpu_us\":{},\"ctx_switches\":{},\"vol_ctx_switches\":{},\
\"syscalls\":{},\"epoll_waits\":{},\"reads\":{},\"writes\":{},\"futex\":{}}}",
        cpu_us.map_or("null".to_string(), |v| v.to_string()),
        opt(ctx.map(|c| c.0)),
        opt(ctx.map(|c| c.1)),
        opt(sc.total),
        opt(sc.epoll_waits),
        opt(sc.reads),
        opt(sc.writes),
        opt(sc.futex),
    );
    match &out {
        Some(f) => {
            if let Err(e) = std::fs::write(f, format!("{json}\n")) {
                eprintln!("srvcount: write {f}: {e}");
            }
        }
        None => eprintln!("{json}"),
    }
    match status {
        Ok(s) => std::process::exit(s.code().unwrap_or(1)),
        Err(e) => {
            eprintln!("srvcount: cannot run {prog}: {e}");
            std::process::exit(1);
        }
    }
}
