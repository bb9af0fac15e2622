//! `loadgen`: corio's load generator for echo servers.
//!
//! ```text
//! loadgen --addr 127.0.0.1:7000 --conns N --size S --duration 10s --warmup 2s
//!         [--server-pid PID] [--idle] [--json] [--threads T] [--burst B]
//!         [--label NAME] [--round R] [--settle 500ms] [--hold 1s] [--count-window 2s]
//!         [--no-perf] [--no-counters]
//! ```
//!
//! **Ping-pong mode** (default): N connections, each in a closed loop: write an S-byte message,
//! read the S-byte echo, check every byte, record the round trip's latency, send the next one.
//! Each message of each connection is a different window of a pseudo-random pattern, so a stale,
//! misrouted, reordered or truncated echo is caught; any mismatch, early EOF or socket error
//! prints what happened and exits with status 1. After `--warmup`, round trips completed during
//! `--duration` are counted and their latencies go into an `hdrhistogram` (ns, 3 significant
//! digits): round trips/s, p50/p99/p99.9/max, and the fewest and most round trips any single
//! connection made (a server that starves some connections shows a low minimum).
//! With `--server-pid`, the server's CPU time (utime+stime from `/proc/PID/stat`, all threads,
//! read at the start and end of the window; one clock tick = 10 ms resolution) is divided by the
//! round trips to give server CPU microseconds per round trip, and its `VmRSS` at the end is
//! reported. The client's own CPU per round trip is reported too, because on loopback the client
//! shares the cores with the server.
//!
//! **Where the server's CPU goes** (with `--server-pid`; see `corio_benches::counters`): context
//! switches per round trip over the measured window (all threads' voluntary + involuntary
//! switches from `/proc/PID/task/*/status`, and the voluntary ones alone), and, if `perf` works,
//! system calls per round trip: all of them, `epoll_wait` (+ `epoll_pwait`, `epoll_pwait2`), the
//! read family (`read`/`recvfrom`/`readv`/`recvmsg`), the write family
//! (`write`/`sendto`/`writev`/`sendmsg`) and `futex`, counted by `perf stat -p PID` on the
//! system-call tracepoints. Those come from a **counting window** of `--count-window` (default
//! 2 s) right after the measured window, the load going on: system-call tracepoints slow every
//! system call on the machine while perf is attached (15-20 % more server CPU per round trip in a
//! smoke run), so perf is never attached during the measured window. Per round trip there means
//! per round trip completed in the counting window; the server's CPU per round trip in it is
//! reported too (`perf_window_cpu_us_per_rt`: the cost of counting). Without perf (missing, no
//! permission, tracefs not mounted) the system-call figures are null and a note says why; the run
//! goes on. `--no-perf` (or `--count-window 0`) skips the counting window, `--no-counters` the
//! context switches too.
//!
//! **Idle mode** (`--idle`, needs `--server-pid`): read the server's `VmRSS`, open N connections
//! and echo one byte on each, wait `--settle`, read `VmRSS` again and print the difference per
//! connection in KiB; hold the connections for `--hold`, then close them.
//!
//! **Connection set-up** (both modes): the soft `RLIMIT_NOFILE` is raised to the hard limit, and
//! connections are opened in bursts of `--burst` (default 500, below the 1,024 backlog the servers
//! use): each connection of a burst is connected and sends one byte, then every echo of the burst
//! is awaited (10 s timeout, failing loudly) before the next burst. So the server's accept queue
//! never holds more than one burst and no SYN is dropped (a drop costs a 1 s retransmit).
//!
//! **Client cost**: the measured loop runs on `--threads` threads (default 1), each owning a
//! share of the connections on its own `mio` poller (one `epoll_wait` per batch of events, edge
//! triggered, no re-arming), with one clock read per round trip and a `memcmp` to verify. One
//! thread keeps the client to one of the 2 cores; it still costs roughly as much CPU per round
//! trip as the server (the sender pays for the receiver's loopback TCP processing), which is why
//! server CPU per round trip is the figure that compares servers.
//!
//! Output: a human-readable line on stdout, and with `--json` one JSON object on a line of its
//! own (starting with `{`) for the harness (`run-echo.sh`, `summarize`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corio_benches::counters::{count_syscalls, CtxSnapshot, SyscallCounts};
use corio_benches::{parse_duration, proc_cpu_time, proc_rss_kib, raise_nofile_limit, resolve};
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

#[derive(Debug, Clone)]
struct Args {
    addr: SocketAddr,
    conns: usize,
    size: usize,
    duration: Duration,
    warmup: Duration,
    server_pid: Option<u32>,
    idle: bool,
    json: bool,
    threads: usize,
    burst: usize,
    label: String,
    round: Option<u32>,
    settle: Duration,
    hold: Duration,
    /// Count the server's system calls with perf, in a window of this length after the measured
    /// one (zero: not at all).
    count_window: Duration,
    /// `--no-perf`: no counting window, whatever `--count-window` says.
    no_perf: bool,
    /// Count the server's context switches (and, with `perf`, system calls).
    counters: bool,
}

const USAGE: &str = "usage: loadgen --addr HOST:PORT --conns N --size BYTES --duration 10s \
--warmup 2s [--server-pid PID] [--idle] [--json] [--threads T] [--burst B] [--label NAME] \
[--round R] [--settle 500ms] [--hold 1s] [--count-window 2s] [--no-perf] [--no-counters]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: resolve("127.0.0.1:7000")?,
        conns: 100,
        size: 64,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(2),
        server_pid: None,
        idle: false,
        json: false,
        threads: 1,
        burst: 500,
        label: String::new(),
        round: None,
        settle: Duration::from_millis(500),
        hold: Duration::from_secs(1),
        count_window: Duration::from_secs(2),
        no_perf: false,
        counters: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        fn num<T: std::str::FromStr>(flag: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("bad value {v:?} for {flag}"))
        }
        match flag.as_str() {
            "--addr" => a.addr = resolve(&val()?)?,
            "--conns" => a.conns = num(&flag, val()?)?,
            "--size" => a.size = num(&flag, val()?)?,
            "--duration" => a.duration = parse_duration(&val()?)?,
            "--warmup" => a.warmup = parse_duration(&val()?)?,
            "--server-pid" => a.server_pid = Some(num(&flag, val()?)?),
            "--threads" => a.threads = num(&flag, val()?)?,
            "--burst" => a.burst = num(&flag, val()?)?,
            "--label" => a.label = val()?,
            "--round" => a.round = Some(num(&flag, val()?)?),
            "--settle" => a.settle = parse_duration(&val()?)?,
            "--hold" => a.hold = parse_duration(&val()?)?,
            "--idle" => a.idle = true,
            "--json" => a.json = true,
            "--count-window" => a.count_window = parse_duration(&val()?)?,
            "--no-perf" => a.no_perf = true,
            "--no-counters" => a.counters = false,
            "-h" | "--help" => return Err(String::new()),
            f => return Err(format!("unknown flag {f:?}")),
        }
    }
    if a.conns == 0 || a.threads == 0 || a.burst == 0 {
        return Err("--conns, --threads and --burst must be at least 1".into());
    }
    if a.size == 0 && !a.idle {
        return Err("--size must be at least 1".into());
    }
    if a.duration.is_zero() && !a.idle {
        return Err("--duration must be positive".into());
    }
    if a.idle && a.server_pid.is_none() {
        return Err("--idle needs --server-pid to read the server's VmRSS".into());
    }
    a.threads = a.threads.min(a.conns);
    Ok(a)
}

/// Prints a fatal error and exits with status 1: the load generator fails loudly.
fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("loadgen: FAILED: {msg}");
    std::process::exit(1);
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("loadgen: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    match raise_nofile_limit() {
        Ok(n) if (n as usize) < args.conns + 64 => {
            eprintln!("loadgen: warning: RLIMIT_NOFILE is {n}, too low for {} connections", args.conns)
        }
        Ok(_) => {}
        Err(e) => eprintln!("loadgen: warning: could not raise RLIMIT_NOFILE: {e}"),
    }
    if args.idle {
        run_idle(&args);
    } else {
        run_pingpong(&args);
    }
}

/// Opens `n` connections in bursts of `burst`, echoing one byte on each before the next burst.
fn connect_all(addr: SocketAddr, n: usize, burst: usize) -> Vec<TcpStream> {
    let timeout = Duration::from_secs(10);
    let mut conns = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let end = (start + burst).min(n);
        for i in start..end {
            let mut s = TcpStream::connect_timeout(&addr, timeout)
                .unwrap_or_else(|e| die(format_args!("connect #{i} to {addr}: {e}")));
            s.set_nodelay(true).unwrap_or_else(|e| die(format_args!("set_nodelay #{i}: {e}")));
            s.write_all(&[hello_byte(i)])
                .unwrap_or_else(|e| die(format_args!("conn #{i}: first write: {e}")));
            conns.push(s);
        }
        for (i, s) in conns.iter_mut().enumerate().skip(start) {
            s.set_read_timeout(Some(timeout))
                .unwrap_or_else(|e| die(format_args!("set_read_timeout #{i}: {e}")));
            let mut b = [0u8; 1];
            if let Err(e) = s.read_exact(&mut b) {
                die(format_args!("conn #{i}: no echo of the first byte: {e}"));
            }
            if b[0] != hello_byte(i) {
                die(format_args!(
                    "conn #{i}: first byte echoed as {:#04x}, sent {:#04x}",
                    b[0],
                    hello_byte(i)
                ));
            }
        }
        start = end;
    }
    conns
}

fn hello_byte(i: usize) -> u8 {
    (i % 251) as u8 + 1
}

fn run_idle(a: &Args) {
    let pid = a.server_pid.expect("checked in parse_args");
    let rss = |when: &str| {
        proc_rss_kib(Some(pid)).unwrap_or_else(|e| die(format_args!("server VmRSS {when} (pid {pid}): {e}")))
    };
    let before = rss("before");
    let t = Instant::now();
    let conns = connect_all(a.addr, a.conns, a.burst);
    let connect_s = t.elapsed().as_secs_f64();
    std::thread::sleep(a.settle);
    let after = rss("after");
    let per_conn = (after as f64 - before as f64) / a.conns as f64;
    std::thread::sleep(a.hold);
    drop(conns);
    println!(
        "loadgen idle{}: {} conns open in {:.2} s; server VmRSS {} -> {} KiB = {:.2} KiB per connection",
        label_suffix(a),
        a.conns,
        connect_s,
        before,
        after,
        per_conn
    );
    if a.json {
        println!(
            "{{\"mode\":\"idle\",\"label\":{},\"round\":{},\"addr\":\"{}\",\"conns\":{},\
\"rss_before_kib\":{},\"rss_after_kib\":{},\"kib_per_conn\":{:.3},\"connect_s\":{:.3}}}",
            json_str(&a.label),
            json_opt(a.round),
            a.addr,
            a.conns,
            before,
            after,
            per_conn,
            connect_s
        );
    }
}

/// One connection of the measured loop.
struct Conn {
    stream: mio::net::TcpStream,
    id: usize,
    /// Messages started on this connection so far (selects the pattern window).
    seq: u64,
    /// Bytes of the current message written / echoed back and verified.
    sent: usize,
    rcvd: usize,
    started: Instant,
    /// Round trips completed inside the measured window.
    in_window: u64,
}

/// What one client thread measured.
struct ThreadResult {
    hist: Histogram<u64>,
    round_trips: u64,
    bytes: u64,
    per_conn: Vec<u64>,
}

/// The pseudo-random pattern messages are cut from: `size + 256` bytes (xorshift64).
fn make_pattern(size: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..size + 256)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The message number `seq` of connection `id`: a window of the pattern that differs between
/// consecutive messages and between neighbouring connections.
fn message(pattern: &[u8], size: usize, id: usize, seq: u64) -> &[u8] {
    let off = ((id as u64).wrapping_mul(31).wrapping_add(seq.wrapping_mul(7)) % 256) as usize;
    &pattern[off..off + size]
}

fn run_pingpong(a: &Args) {
    let streams = connect_all(a.addr, a.conns, a.burst);
    let mut shares: Vec<Vec<(usize, TcpStream)>> = (0..a.threads).map(|_| Vec::new()).collect();
    for (i, s) in streams.into_iter().enumerate() {
        shares[i % a.threads].push((i, s));
    }
    let start = Instant::now();
    let t0 = start + a.warmup;
    let t1 = t0 + a.duration;
    let size = a.size;
    let progress: Arc<Vec<AtomicU64>> = Arc::new((0..a.threads).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = shares
        .into_iter()
        .enumerate()
        .map(|(ti, share)| {
            let (progress, stop) = (progress.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("loadgen-{ti}"))
                .spawn(move || client_thread(share, size, t0, t1, &progress[ti], &stop))
                .unwrap_or_else(|e| die(format_args!("spawn client thread: {e}")))
        })
        .collect();
    let completed = || progress.iter().map(|p| p.load(Ordering::Relaxed)).sum::<u64>();

    sleep_until(t0);
    let ctx0 = a.server_pid.filter(|_| a.counters).and_then(|p| CtxSnapshot::read(p).ok());
    let srv0 = a.server_pid.map(|p| server_cpu(p, "start"));
    let cli0 = proc_cpu_time(None).ok();
    sleep_until(t1);
    let srv1 = a.server_pid.map(|p| server_cpu(p, "end"));
    let cli1 = proc_cpu_time(None).ok();
    let ctx = match (ctx0, a.server_pid) {
        (Some(c0), Some(p)) => CtxSnapshot::read(p).ok().map(|c1| c0.delta(&c1)),
        _ => None,
    };
    let rss = a
        .server_pid
        .map(|p| proc_rss_kib(Some(p)).unwrap_or_else(|e| die(format_args!("server VmRSS (pid {p}): {e}"))));
    // The counting window: the load goes on while perf attaches and counts.
    let counted = match a.server_pid {
        Some(pid) if a.counters && !a.no_perf && !a.count_window.is_zero() => {
            let window = || {
                let (r0, c0) = (completed(), proc_cpu_time(Some(pid)).ok());
                std::thread::sleep(a.count_window);
                let (r1, c1) = (completed(), proc_cpu_time(Some(pid)).ok());
                let cpu = c0.zip(c1).map(|(c0, c1)| c1.saturating_sub(c0));
                (r1 - r0, cpu)
            };
            match count_syscalls(pid, window) {
                Ok((counts, (ops, cpu))) if ops > 0 => Some((counts, ops, cpu)),
                Ok(_) => {
                    eprintln!("loadgen: note: no round trip in the counting window; no system-call counts");
                    None
                }
                Err(e) => {
                    eprintln!("loadgen: note: no system-call counts (recorded as null): {e}");
                    None
                }
            }
        }
        _ => None,
    };
    stop.store(true, Ordering::Relaxed);

    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("hist bounds");
    let (mut rts, mut bytes) = (0u64, 0u64);
    let (mut min_c, mut max_c) = (u64::MAX, 0u64);
    for h in handles {
        let r = h.join().unwrap_or_else(|_| die("client thread panicked"));
        hist.add(&r.hist).expect("histogram merge");
        rts += r.round_trips;
        bytes += r.bytes;
        for c in r.per_conn {
            min_c = min_c.min(c);
            max_c = max_c.max(c);
        }
    }
    if rts == 0 {
        die("no round trip completed in the measured window");
    }
    let secs = a.duration.as_secs_f64();
    let rate = rts as f64 / secs;
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let (p50, p99, p999, max) = (us(0.5), us(0.99), us(0.999), hist.max() as f64 / 1000.0);
    let srv_us = match (srv0, srv1) {
        (Some(s0), Some(s1)) => Some((s1 - s0).as_secs_f64() * 1e6 / rts as f64),
        _ => None,
    };
    let cli_us = match (cli0, cli1) {
        (Some(c0), Some(c1)) => Some((c1.saturating_sub(c0)).as_secs_f64() * 1e6 / rts as f64),
        _ => None,
    };
    let per_rt = |n: Option<u64>| n.map(|n| n as f64 / rts as f64);
    let (ctx, vol) = (per_rt(ctx.map(|c| c.total())), per_rt(ctx.map(|c| c.voluntary)));
    let (sc, counted_rts, counted_cpu) =
        counted.map_or((SyscallCounts::default(), 1, None), |(c, n, cpu)| (c, n, cpu));
    let per_counted = |n: Option<u64>| n.map(|n| n as f64 / counted_rts as f64);
    let (sys, epoll, reads, writes, futex) = (
        per_counted(sc.total),
        per_counted(sc.epoll_waits),
        per_counted(sc.reads),
        per_counted(sc.writes),
        per_counted(sc.futex),
    );
    let perf_cpu = counted_cpu.map(|c| c.as_secs_f64() * 1e6 / counted_rts as f64);

    let mut line = format!(
        "loadgen{}: {} conns x {} B, {} client thread(s), {:.1} s: {:.0} rt/s, \
latency p50 {} p99 {} p99.9 {} max {}, per-conn rt {}..{}",
        label_suffix(a),
        a.conns,
        a.size,
        a.threads,
        secs,
        rate,
        fmt_us(p50),
        fmt_us(p99),
        fmt_us(p999),
        fmt_us(max),
        min_c,
        max_c
    );
    if let Some(s) = srv_us {
        line += &format!(", server {s:.2} us CPU/rt");
    }
    if let Some(r) = rss {
        line += &format!(", server RSS {r} KiB");
    }
    if let Some(c) = cli_us {
        line += &format!(", client {c:.2} us CPU/rt");
    }
    if let (Some(c), Some(v)) = (ctx, vol) {
        line += &format!(", server ctx switches/rt {c:.3} ({v:.3} voluntary)");
    }
    if let Some(s) = sys {
        let f = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.2}"));
        line += &format!(
            ", counting window {:.1} s: server syscalls/rt {s:.2} (epoll_wait {}, read {}, write {}, futex {}), \
ctx switches/rt {}, CPU {} us/rt",
            a.count_window.as_secs_f64(),
            f(epoll),
            f(reads),
            f(writes),
            f(futex),
            per_counted(sc.ctx_switches).map_or("?".to_string(), |v| format!("{v:.3}")),
            perf_cpu.map_or("?".to_string(), |v| format!("{v:.2}"))
        );
    }
    line += &format!(", {bytes} bytes verified");
    println!("{line}");
    if a.json {
        println!(
            "{{\"mode\":\"pingpong\",\"label\":{},\"round\":{},\"addr\":\"{}\",\"conns\":{},\
\"size\":{},\"threads\":{},\"duration_s\":{:.3},\"warmup_s\":{:.3},\"round_trips\":{},\
\"rt_per_s\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\"p999_us\":{:.1},\"max_us\":{:.1},\
\"server_cpu_us_per_rt\":{},\"server_rss_kib\":{},\"client_cpu_us_per_rt\":{},\
\"per_conn_min\":{},\"per_conn_max\":{},\"bytes_verified\":{},\"ctx_switches_per_op\":{},\
\"vol_ctx_switches_per_op\":{},\"syscalls_per_op\":{},\"epoll_waits_per_op\":{},\"reads_per_op\":{},\
\"writes_per_op\":{},\"futex_per_op\":{},\"perf_window_cpu_us_per_rt\":{}}}",
            json_str(&a.label),
            json_opt(a.round),
            a.addr,
            a.conns,
            a.size,
            a.threads,
            secs,
            a.warmup.as_secs_f64(),
            rts,
            rate,
            p50,
            p99,
            p999,
            max,
            json_f(srv_us),
            json_opt(rss),
            json_f(cli_us),
            min_c,
            max_c,
            bytes,
            json_f4(ctx),
            json_f4(vol),
            json_f4(sys),
            json_f4(epoll),
            json_f4(reads),
            json_f4(writes),
            json_f4(futex),
            json_f(perf_cpu)
        );
    }
}

fn server_cpu(pid: u32, when: &str) -> Duration {
    proc_cpu_time(Some(pid))
        .unwrap_or_else(|e| die(format_args!("server CPU time at {when} (pid {pid}): {e}")))
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// The closed loop over one share of the connections, measured from `t0` to `t1`, going on
/// until `stop` is set (after `t1`, or after the counting window). `progress` is kept at the
/// number of round trips completed so far (updated once per batch of events).
fn client_thread(
    share: Vec<(usize, TcpStream)>,
    size: usize,
    t0: Instant,
    t1: Instant,
    progress: &AtomicU64,
    stop: &AtomicBool,
) -> ThreadResult {
    let pattern = make_pattern(size);
    let mut poll = Poll::new().unwrap_or_else(|e| die(format_args!("mio Poll::new: {e}")));
    let mut events = Events::with_capacity(1024);
    let now = Instant::now();
    let mut conns: Vec<Conn> = share
        .into_iter()
        .enumerate()
        .map(|(tok, (id, s))| {
            s.set_nonblocking(true).unwrap_or_else(|e| die(format_args!("conn #{id}: set_nonblocking: {e}")));
            let mut stream = mio::net::TcpStream::from_std(s);
            poll.registry()
                .register(&mut stream, Token(tok), Interest::READABLE | Interest::WRITABLE)
                .unwrap_or_else(|e| die(format_args!("conn #{id}: register: {e}")));
            Conn { stream, id, seq: 0, sent: 0, rcvd: 0, started: now, in_window: 0 }
        })
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("hist bounds");
    let mut scratch = vec![0u8; size.clamp(1, 64 * 1024)];
    let mut round_trips = 0u64;
    let mut bytes = 0u64;
    let mut completed = 0u64;

    for c in conns.iter_mut() {
        write_some(c, &pattern, size);
    }
    loop {
        let now = Instant::now();
        if now >= t1 && stop.load(Ordering::Relaxed) {
            break;
        }
        let timeout = if now < t1 { t1 - now } else { Duration::from_millis(20) };
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            die(format_args!("mio poll: {e}"));
        }
        for ev in events.iter() {
            let c = &mut conns[ev.token().0];
            if ev.is_writable() && c.sent < size {
                write_some(c, &pattern, size);
            }
            if !(ev.is_readable() || ev.is_read_closed() || ev.is_error()) {
                continue;
            }
            // Edge triggered: read until WouldBlock.
            loop {
                let want = (size - c.rcvd).min(scratch.len());
                match c.stream.read(&mut scratch[..want]) {
                    Ok(0) => die(format_args!(
                        "conn #{}: server closed the connection (message {}, {} of {} bytes echoed)",
                        c.id, c.seq, c.rcvd, size
                    )),
                    Ok(n) => {
                        verify(c, &pattern, size, &scratch[..n]);
                        c.rcvd += n;
                        if c.rcvd < size {
                            continue;
                        }
                        let done = Instant::now();
                        if done >= t0 && done < t1 {
                            let ns = done.duration_since(c.started).as_nanos() as u64;
                            hist.saturating_record(ns.max(1));
                            round_trips += 1;
                            bytes += size as u64;
                            c.in_window += 1;
                        }
                        completed += 1;
                        c.seq += 1;
                        c.sent = 0;
                        c.rcvd = 0;
                        c.started = done;
                        write_some(c, &pattern, size);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => die(format_args!("conn #{}: read: {e}", c.id)),
                }
            }
        }
        progress.store(completed, Ordering::Relaxed);
    }
    ThreadResult { hist, round_trips, bytes, per_conn: conns.iter().map(|c| c.in_window).collect() }
}

/// Writes as much of the current message as the socket takes.
fn write_some(c: &mut Conn, pattern: &[u8], size: usize) {
    let msg = message(pattern, size, c.id, c.seq);
    while c.sent < size {
        match c.stream.write(&msg[c.sent..]) {
            Ok(0) => die(format_args!("conn #{}: write returned 0", c.id)),
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => die(format_args!("conn #{}: write: {e}", c.id)),
        }
    }
}

/// Checks `got`, just read, against the bytes expected at offset `c.rcvd` of the current message.
fn verify(c: &Conn, pattern: &[u8], size: usize, got: &[u8]) {
    if c.rcvd + got.len() > c.sent {
        die(format_args!(
            "conn #{}: message {}: server echoed {} bytes but only {} were sent",
            c.id,
            c.seq,
            c.rcvd + got.len(),
            c.sent
        ));
    }
    let want = &message(pattern, size, c.id, c.seq)[c.rcvd..c.rcvd + got.len()];
    if want != got {
        let i = want.iter().zip(got).position(|(w, g)| w != g).unwrap_or(0);
        die(format_args!(
            "conn #{}: message {}: byte {} of {} echoed as {:#04x}, sent {:#04x}",
            c.id,
            c.seq,
            c.rcvd + i,
            size,
            got[i],
            want[i]
        ));
    }
}

fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} us")
    }
}

fn label_suffix(a: &Args) -> String {
    match (a.label.is_empty(), a.round) {
        (true, None) => String::new(),
        (true, Some(r)) => format!(" [round {r}]"),
        (false, None) => format!(" [{}]", a.label),
        (false, Some(r)) => format!(" [{} round {r}]", a.label),
    }
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

fn json_f(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_string(), |v| format!("{v:.3}"))
}

fn json_f4(v: Option<f64>) -> String {
    v.map_or_else(|| "null".to_string(), |v| format!("{v:.4}"))
}
