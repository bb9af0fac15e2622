//! Helpers for the tests that run example servers (echo, echo_callback, kv, kv_callback) as
//! child processes: start one on a free port, read its RSS and CPU time, the EMFILE scenario
//! both echo servers must survive, and a line client for the KV protocol. Included with
//! `#[path = "common/servers.rs"] mod servers;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// `cargo test` builds the examples next to the test binaries' `deps/`.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built (`cargo test` builds examples; with target filters add `cargo build --examples`)",
        path.display()
    );
    path
}

/// A running example server, killed on drop.
pub struct Server {
    pub name: &'static str,
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<parking_lot::Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The server's resident set size in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// CPU time (user + system) in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

/// Starts example `name` on 127.0.0.1:0 with 2 workers (event loops), at most `fd_limit` fds,
/// and waits for its "listening on ADDR" line, from which it takes the address.
pub fn start(name: &'static str, fd_limit: Option<u64>) -> Server {
    let mut command = Command::new(example_binary(name));
    command.args(["127.0.0.1:0", "--workers", "2"]).stdout(Stdio::piped()).stderr(Stdio::piped());
    if let Some(limit) = fd_limit {
        // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
        unsafe {
            command.pre_exec(move || {
                let rl = libc::rlimit { rlim_cur: limit, rlim_max: limit };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line
        .split_once("listening on ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from {name}: {line:?}"));
    let stderr = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let lines = stderr.clone();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            lines.lock().push(line);
        }
    });
    Server { name, child, addr, stderr }
}

/// A KV protocol client with a 10 s read timeout (a hang fails the test instead of blocking).
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
    pub server: &'static str,
}

impl Client {
    pub fn connect(server: &Server) -> Client {
        let stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.set_nodelay(true).unwrap();
        Client { reader: BufReader::new(stream.try_clone().unwrap()), stream, server: server.name }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next reply line, without its `\n`.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("{}: reading a reply: {e}", self.server));
        assert!(n > 0 && line.ends_with('\n'), "{}: connection closed, got {line:?}", self.server);
        line.pop();
        line
    }

    /// Sends one request line and returns its reply.
    pub fn call(&mut self, request: &str) -> String {
        self.send(format!("{request}\n").as_bytes());
        self.line()
    }

    /// Reads `n` replies and checks them against `want`.
    pub fn expect(&mut self, want: &[&str]) {
        let got: Vec<String> = want.iter().map(|_| self.line()).collect();
        assert_eq!(got, want, "{}: replies", self.server);
    }

    /// Asserts the server closed the connection (EOF, or a reset after everything was read).
    pub fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "{}: unexpected bytes before EOF: {rest:?}", self.server),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{}: {e}", self.server),
        }
    }
}

/// Opens connections to `server` (started with a low fd limit) until it stops serving new ones
/// (EMFILE in accept), checks that it backs off instead of spinning while stalled, then frees
/// fds and checks that the stalled connection and a new one are served.
pub fn accept_survives_emfile(server: &Server) {
    use std::time::Instant;
    let addr = server.addr;
    let mut conns = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Open connections until the server stops serving new ones (EMFILE).
    loop {
        assert!(Instant::now() < deadline, "the server never ran out of fds");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        stream.write_all(b"x").unwrap();
        let served = matches!(stream.read(&mut [0u8; 1]), Ok(1));
        conns.push(stream);
        if !served {
            break;
        }
    }
    // Stalled on EMFILE for a second: it must back off, not spin.
    let ticks_before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let ticks = server.cpu_ticks() - ticks_before;
    assert!(ticks < 30, "the server burned {ticks} CPU ticks in 1 s while out of fds (spinning?)");
    let logs = server.stderr.lock().iter().filter(|l| l.contains("accept")).count();
    assert!(logs >= 1, "EMFILE was not reported: {:?}", server.stderr.lock());
    assert!(logs < 50, "{logs} accept errors logged in ~1.3 s: no back-off");
    // Free fds: the stalled connection (still in the backlog) gets served, and new ones too.
    let stalled = conns.pop().unwrap();
    conns.truncate(conns.len() / 2);
    stalled.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut byte = [0u8; 1];
    (&stalled).read_exact(&mut byte).expect("served after fds were freed");
    assert_eq!(&byte, b"x");
    let mut fresh = std::net::TcpStream::connect(addr).unwrap();
    fresh.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    fresh.write_all(b"y").unwrap();
    fresh.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"y");
}
