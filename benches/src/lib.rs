//! Shared helpers for corio's benchmark tooling (`corio-benches`).
//!
//! The binaries in `src/bin/` are the project's load generator (`loadgen`), the anchor echo
//! servers it is compared against (`echo_mio`, `echo_tokio`, `echo_may`, `echo_threads`; the Go
//! anchor lives in `go/echo`), the anchor HTTP servers, a counter wrapper for `wrk` runs
//! (`srvcount`) and the results summariser (`summarize`). This library holds what several of
//! them need: the common server flags, a listening socket with an explicit backlog, raising the
//! file-descriptor limit, `/proc` readers for a process's CPU time and resident memory, and a
//! duration parser for flags such as `10s` or `500ms`. [`counters`] measures a server's context
//! switches and system calls over a window (for `loadgen` and `srvcount`).

pub mod counters;
pub mod http;
pub mod micro;
pub mod svg;

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::time::Duration;

/// Read buffer size of every echo server (anchors and corio's examples alike).
pub const ECHO_BUF: usize = 16 * 1024;

/// Listen backlog of the anchor servers. std's default (128) overflowed under a 1,000-connection
/// burst on this machine; the kernel caps the value at `net.core.somaxconn` (4096 here).
pub const BACKLOG: i32 = 1024;

/// Flags shared by every anchor echo server: `[ADDR] [--addr ADDR] [--workers N]`.
#[derive(Debug, Clone)]
pub struct ServerArgs {
    /// Address to listen on (default `127.0.0.1:7000`).
    pub addr: SocketAddr,
    /// Worker threads (default: available parallelism). Ignored by the thread-per-connection
    /// server, which has one thread per connection by design.
    pub workers: usize,
}

impl ServerArgs {
    /// Parses the process arguments; prints usage and exits on an error or `--help`.
    pub fn from_env(prog: &str) -> ServerArgs {
        match Self::parse(std::env::args().skip(1)) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{prog}: {e}\nusage: {prog} [ADDR] [--addr ADDR] [--workers N]");
                std::process::exit(2);
            }
        }
    }

    /// Parses server arguments (without the program name).
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<ServerArgs, String> {
        let mut addr = "127.0.0.1:7000".to_string();
        let mut workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--addr" => addr = it.next().ok_or("--addr needs a value")?,
                "--workers" => {
                    let v = it.next().ok_or("--workers needs a value")?;
                    workers = v.parse().map_err(|_| format!("bad --workers {v:?}"))?;
                    if workers == 0 {
                        return Err("--workers must be at least 1".into());
                    }
                }
                "-h" | "--help" => return Err("help".into()),
                s if !s.starts_with('-') => addr = s.to_string(),
                s => return Err(format!("unknown flag {s:?}")),
            }
        }
        let addr = resolve(&addr)?;
        Ok(ServerArgs { addr, workers })
    }
}

/// Resolves `host:port` to its first socket address.
pub fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("bad address {addr:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("address {addr:?} resolved to nothing"))
}

/// A listening TCP socket with `SO_REUSEADDR` and an explicit backlog of [`BACKLOG`], left in
/// blocking mode (callers switch it to nonblocking if their runtime needs that).
pub fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(BACKLOG)?;
    Ok(sock.into())
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (20,000 on this machine) and returns the
/// new soft limit. 10,000 idle connections need more than the default soft limit of 1,024.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid, writable `rlimit` for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid, initialised `rlimit`; setrlimit only reads it.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(lim.rlim_cur)
}

/// Raises the file-descriptor limit, warning (not failing) if that is not possible.
pub fn raise_nofile_limit_or_warn(prog: &str) {
    if let Err(e) = raise_nofile_limit() {
        eprintln!("{prog}: warning: could not raise RLIMIT_NOFILE: {e}");
    }
}

/// Clock ticks per second for the `utime`/`stime` fields of `/proc/PID/stat` (100 on Linux).
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// CPU time (user + system, all threads including exited ones) of process `pid` so far, from
/// `/proc/PID/stat`. `pid` of `None` means this process. Resolution is one clock tick (10 ms).
pub fn proc_cpu_time(pid: Option<u32>) -> io::Result<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(&path)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("cannot parse {path}"));
    // The command name (field 2) is in parentheses and may contain spaces or ')': split after
    // the last ')'. The fields after it start at field 3 (state); utime is 14 and stime 15.
    let rest = &stat[stat.rfind(')').ok_or_else(bad)? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let stime: u64 = fields.get(12).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let ticks = utime + stime;
    let hz = clock_ticks_per_sec();
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / hz))
}

/// Resident set size (`VmRSS`) of process `pid` in KiB, from `/proc/PID/status`.
pub fn proc_rss_kib(pid: Option<u32>) -> io::Result<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(&path)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no VmRSS in {path}")))
}

/// Parses a duration flag: `10s`, `1.5s`, `500ms`, `250us`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("bad duration {s:?} (try 10s or 500ms)"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn server_args_parse() {
        let a = ServerArgs::parse(["127.0.0.1:7100", "--workers", "3"].map(String::from)).unwrap();
        assert_eq!(a.addr.port(), 7100);
        assert_eq!(a.workers, 3);
        let a = ServerArgs::parse(["--addr", "127.0.0.1:7200"].map(String::from)).unwrap();
        assert_eq!(a.addr.port(), 7200);
        assert!(ServerArgs::parse(["--bogus"].map(String::from)).is_err());
    }

    #[test]
    fn proc_readers_work_on_self() {
        assert!(proc_rss_kib(None).unwrap() > 0);
        proc_cpu_time(None).unwrap();
        proc_cpu_time(Some(std::process::id())).unwrap();
    }
}
