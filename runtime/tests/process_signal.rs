//! corio::io::Async, corio::process and corio::signal: a child, a pipe or a
//! signal waited for parks the coroutine, and a 1-worker runtime keeps
//! running its other coroutines meanwhile. Signal tests run in a child
//! process (process-wide handlers must not disturb the other tests).

mod common;

use common::{run_in_child, with_timeout};
use corio::io::Async;
use corio::process::{Command, Stdio};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `body` in a coroutine of a 1-worker runtime next to a ticker that
/// sleeps 5 ms in a loop; returns the largest gap between its ticks (ms).
fn largest_gap_while(body: impl FnOnce() + Send + 'static) -> u64 {
    let runtime = corio::Runtime::builder().workers(1).build().unwrap();
    runtime.block_on(move || {
        let done = Arc::new(AtomicBool::new(false));
        let gap = Arc::new(AtomicU64::new(0));
        let ticker = {
            let (done, gap) = (done.clone(), gap.clone());
            corio::spawn(move || {
                let mut last = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    corio::time::sleep(Duration::from_millis(5));
                    let now = Instant::now();
                    gap.fetch_max((now - last).as_millis() as u64, Ordering::Relaxed);
                    last = now;
                }
            })
        };
        corio::spawn(body).join().unwrap();
        done.store(true, Ordering::Relaxed);
        ticker.join().unwrap();
        gap.load(Ordering::Relaxed)
    })
}

#[test]
fn child_stdout_and_wait_park_the_coroutine_not_the_worker() {
    with_timeout(30, || {
        let gap = largest_gap_while(|| {
            let mut child =
                Command::new("sh").args(["-c", "sleep 0.3; echo hi"]).stdout(Stdio::piped()).spawn().unwrap();
            let mut out = String::new();
            child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            assert_eq!(out, "hi\n");
            assert!(child.wait().unwrap().success());
        });
        assert!(gap < 50, "the ticker stalled for {gap} ms");
    });
}

#[test]
fn wait_alone_parks_until_exit() {
    with_timeout(30, || {
        let gap = largest_gap_while(|| {
            let start = Instant::now();
            let status = Command::new("sh").args(["-c", "sleep 0.2; exit 7"]).status().unwrap();
            assert_eq!(status.code(), Some(7));
            assert!(start.elapsed() >= Duration::from_millis(150));
        });
        assert!(gap < 50, "the ticker stalled for {gap} ms");
    });
}

#[test]
fn output_collects_both_streams_and_the_code() {
    with_timeout(30, || {
        corio::run(|| {
            let output = Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]).output().unwrap();
            assert_eq!(output.stdout, b"out\n");
            assert_eq!(output.stderr, b"err\n");
            assert_eq!(output.status.code(), Some(3));
        });
        // And on a plain thread.
        let output = Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]).output().unwrap();
        assert_eq!((output.stdout, output.stderr), (b"out\n".to_vec(), b"err\n".to_vec()));
    });
}

#[test]
fn output_does_not_deadlock_on_a_full_stderr() {
    with_timeout(30, || {
        corio::run(|| {
            // 1 MiB to stderr (more than a pipe holds) before any stdout.
            let script = "head -c 1048576 /dev/zero >&2; echo done";
            let output = Command::new("sh").args(["-c", script]).output().unwrap();
            assert_eq!(output.stderr.len(), 1 << 20);
            assert_eq!(output.stdout, b"done\n");
        });
    });
}

#[test]
fn missing_program_is_not_found() {
    corio::run(|| {
        let err = Command::new("/nonexistent/corio-no-such-program").spawn().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        let err = Command::new("corio-no-such-program-in-path").output().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    });
}

#[test]
fn kill_then_wait_reports_the_signal() {
    with_timeout(30, || {
        corio::run(|| {
            let mut child = Command::new("sleep").arg("30").spawn().unwrap();
            assert!(child.try_wait().unwrap().is_none());
            child.kill().unwrap();
            let status = child.wait().unwrap();
            assert_eq!(status.signal(), Some(libc::SIGKILL));
            assert!(!status.success());
            // Cached after the reap.
            assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        });
    });
}

#[test]
fn child_stdin_round_trip() {
    with_timeout(30, || {
        corio::run(|| {
            let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let writer = corio::spawn(move || {
                // More than a pipe buffer: the writer parks until cat drains it.
                stdin.write_all(&vec![b'x'; 256 * 1024]).unwrap();
            });
            let mut out = Vec::new();
            let mut stdout = child.stdout.take().unwrap();
            // EOF once the writer has dropped stdin and cat has exited.
            stdout.read_to_end(&mut out).unwrap();
            writer.join().unwrap();
            assert_eq!(out.len(), 256 * 1024);
            assert!(child.wait().unwrap().success());
        });
    });
}

#[test]
fn async_pipe_read_is_woken_by_a_plain_thread_write() {
    with_timeout(30, || {
        let (a, b) = UnixStream::pair().unwrap();
        let gap = largest_gap_while(move || {
            let mut b = Async::new(b).unwrap();
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                (&a).write_all(b"ping").unwrap();
                a
            });
            let mut buf = [0u8; 4];
            b.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ping");
            // readable() and read_with on the shared form too.
            let a = writer.join().unwrap();
            (&a).write_all(b"!").unwrap();
            b.readable().unwrap();
            let mut one = [0u8; 1];
            assert_eq!(b.read_with(|s| (&*s).read(&mut one)).unwrap(), 1);
            assert_eq!(&one, b"!");
        });
        assert!(gap < 50, "the ticker stalled for {gap} ms");
    });
}

#[test]
fn async_on_a_real_pipe() {
    with_timeout(30, || {
        let (reader, writer) = std::io::pipe().unwrap();
        corio::run(move || {
            let mut reader = Async::new(reader).unwrap();
            let t = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                let mut writer = writer;
                writer.write_all(b"pipe").unwrap();
            });
            let mut s = String::new();
            reader.read_to_string(&mut s).unwrap(); // EOF when the thread drops the writer
            assert_eq!(s, "pipe");
            t.join().unwrap();
        });
    });
}

#[test]
fn signal_reaches_a_parked_subscriber() {
    run_in_child("child_signal_reaches_a_parked_subscriber", Duration::from_secs(30));
}

#[test]
#[ignore = "run by signal_reaches_a_parked_subscriber in a child process"]
fn child_signal_reaches_a_parked_subscriber() {
    let gap = largest_gap_while(|| {
        let usr1 = corio::signal::notify(&[libc::SIGUSR1]).unwrap();
        let killer = std::thread::spawn(|| {
            // Long enough for the subscriber to have parked in recv.
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: kill(2) on our own pid with a signal we handle.
            assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) }, 0);
        });
        assert_eq!(usr1.recv().unwrap(), libc::SIGUSR1);
        killer.join().unwrap();
    });
    assert!(gap < 50, "the ticker stalled for {gap} ms");
    // A signal nobody subscribed to keeps its default action.
    assert_eq!(handler_of(libc::SIGUSR2), libc::SIG_DFL);
    // ctrl_c on a plain thread.
    let killer = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: kill(2) on our own pid with a signal we handle.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGINT) }, 0);
    });
    corio::signal::ctrl_c().unwrap();
    killer.join().unwrap();
}

#[test]
fn a_dropped_subscription_gives_the_signal_back() {
    run_in_child("child_a_dropped_subscription_gives_the_signal_back", Duration::from_secs(30));
}

#[test]
#[ignore = "run by a_dropped_subscription_gives_the_signal_back in a child process"]
fn child_a_dropped_subscription_gives_the_signal_back() {
    let rx = corio::signal::notify(&[libc::SIGUSR2]).unwrap();
    assert_ne!(handler_of(libc::SIGUSR2), libc::SIG_DFL);
    drop(rx);
    let other = corio::signal::notify(&[libc::SIGHUP]).unwrap(); // prunes
    assert_eq!(handler_of(libc::SIGUSR2), libc::SIG_DFL);
    drop(other);
}

/// The handler address installed for `signal`.
fn handler_of(signal: libc::c_int) -> libc::sighandler_t {
    // SAFETY: a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(signal, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

#[test]
fn refused_signals_are_invalid_input() {
    // Checked before any process-wide state changes: safe in-process.
    for signal in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, libc::SIGURG, 0, -1, 1000] {
        let err = corio::signal::notify(&[libc::SIGUSR1, signal]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "signal {signal}");
    }
}
