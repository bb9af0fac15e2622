//! The example echo server (examples/echo.rs, run as a child process) under
//! the limits a real server meets: ten thousand connections at once, and
//! running out of file descriptors in `accept` (EMFILE).

mod common;

use common::{pattern, raise_fd_limit, within};
use corio::net::TcpStream;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `cargo test` builds the examples next to the test binaries' `deps/`.
fn echo_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples").join("echo");
    assert!(path.exists(), "{} not built (cargo test builds examples)", path.display());
    path
}

struct Server {
    child: Child,
    addr: std::net::SocketAddr,
    stderr: Arc<parking_lot::Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the echo example on a free port, with at most `fd_limit` fds.
fn start_server(fd_limit: Option<u64>) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut command = Command::new(echo_binary());
    command.arg(addr.to_string()).args(["--workers", "2"]).stdout(Stdio::piped()).stderr(Stdio::piped());
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
    assert!(line.contains("listening"), "unexpected first line from echo: {line}");
    let stderr = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let lines = stderr.clone();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            lines.lock().push(line);
        }
    });
    Server { child, addr, stderr }
}

fn proc_cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn ten_thousand_connections_at_once_all_echo() {
    const CONNS: usize = 10_000;
    let limit = raise_fd_limit();
    assert!(limit as usize > CONNS + 100, "fd limit {limit} too low for this test");
    let server = start_server(None);
    let addr = server.addr;
    within(2, Duration::from_secs(240), "10,000 connections", move || {
        let connected = Arc::new(AtomicUsize::new(0));
        let clients: Vec<_> = (0..CONNS)
            .map(|conn| {
                let connected = connected.clone();
                corio::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    connected.fetch_add(1, Ordering::SeqCst);
                    // Hold every connection open until all are connected.
                    while connected.load(Ordering::SeqCst) < CONNS {
                        corio::time::sleep(Duration::from_millis(10));
                    }
                    let msg = pattern(conn, 0, 100);
                    stream.write_all(&msg).unwrap();
                    let mut back = [0u8; 100];
                    stream.read_exact(&mut back).unwrap();
                    assert!(back[..] == msg[..], "conn {conn}: wrong echo");
                })
            })
            .collect();
        for client in clients {
            client.join().unwrap();
        }
    });
}

#[test]
fn accept_survives_emfile_backs_off_without_spinning_and_recovers() {
    // Room for the runtime's own fds plus 20 connections.
    let server = start_server(Some(40));
    let addr = server.addr;
    let pid = server.child.id();
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
    let ticks_before = proc_cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let ticks = proc_cpu_ticks(pid) - ticks_before;
    assert!(ticks < 30, "the server burned {ticks} CPU ticks in 1 s while out of fds (spinning?)");
    let emfile_logs = server.stderr.lock().iter().filter(|l| l.contains("accept")).count();
    assert!(emfile_logs >= 1, "EMFILE was not reported: {:?}", server.stderr.lock());
    assert!(emfile_logs < 50, "{emfile_logs} accept errors logged in ~1.3 s: no back-off");
    // Free fds: the stalled connection (still in the backlog) gets served.
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
