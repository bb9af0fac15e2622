//! A coroutine that overflows its stack is reported by name, like Go's
//! "goroutine stack exceeds limit", instead of dying with a bare SIGSEGV.
//!
//! The overflow aborts the process, so it runs in a child: this same test
//! binary, re-run with an environment variable that makes
//! `overflow_child` overflow instead of returning.

use std::process::Command;

const CHILD_ENV: &str = "CORIO_TEST_OVERFLOW_CHILD";

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    frame[0] = depth as u8;
    let frame = std::hint::black_box(frame);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + frame[0] as u64
}

#[test]
fn overflow_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // only meaningful as the child of the test below
    }
    corio::run(|| {
        corio::coroutine::Builder::new()
            .name("deep-recursion".into())
            .stack_size(32 << 10)
            .spawn(|| recurse(0))
            .unwrap()
            .join()
            .ok();
    });
    unreachable!("the overflow must abort the process");
}

#[test]
fn stack_overflow_names_the_coroutine_and_aborts() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "overflow_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("corio: coroutine ")
            && stderr.contains("\"deep-recursion\" overflowed its 32768-byte stack"),
        "stderr was: {stderr}"
    );
    assert!(stderr.contains("stack_size"), "the message says how to fix it: {stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(output.status.signal(), Some(libc::SIGABRT), "aborted, not a bare SIGSEGV");
}

#[test]
fn faults_that_are_not_coroutine_overflows_still_reach_the_previous_handler() {
    // A plain thread overflowing its own stack is reported by Rust's std
    // handler, which corio chains to.
    if std::env::var_os("CORIO_TEST_THREAD_OVERFLOW_CHILD").is_some() {
        let _runtime = corio::Runtime::builder().workers(1).build().unwrap(); // installs corio's handler
        std::thread::Builder::new().stack_size(64 << 10).spawn(|| recurse(0)).unwrap().join().ok();
        unreachable!();
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "faults_that_are_not_coroutine_overflows_still_reach_the_previous_handler",
            "--nocapture",
        ])
        .env("CORIO_TEST_THREAD_OVERFLOW_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has overflowed its stack"), "std's message expected: {stderr}");
    assert!(!stderr.contains("corio: coroutine"), "{stderr}");
}
