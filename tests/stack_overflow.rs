//! A coroutine that overflows its stack is reported by name, like Go's
//! "goroutine stack exceeds limit", instead of dying with a bare SIGSEGV.
//!
//! The overflow aborts the process, so it runs in a child: this same test
//! binary, re-run to run one `#[ignore]`d child test (see `run_in_child`).

mod common;

use common::{run_in_child_expecting_abort, run_in_child_expecting_abort_status};
use std::time::Duration;

#[test]
#[ignore = "run by stack_overflow_names_the_coroutine_and_aborts in a child process"]
fn overflow_child() {
    corio::run(|| {
        corio::coroutine::Builder::new()
            .name("deep-recursion".into())
            .stack_size(32 << 10)
            .spawn(|| common::recurse(0))
            .unwrap()
            .join()
            .ok();
    });
    unreachable!("the overflow must abort the process");
}

#[test]
fn stack_overflow_names_the_coroutine_and_aborts() {
    let (status, stderr) = run_in_child_expecting_abort_status("overflow_child", Duration::from_secs(60));
    assert!(
        stderr.contains("corio: coroutine ")
            && stderr.contains("\"deep-recursion\" overflowed its 32768-byte stack"),
        "stderr was: {stderr}"
    );
    assert!(stderr.contains("stack_size"), "the message says how to fix it: {stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGABRT), "aborted, not a bare SIGSEGV");
}

#[test]
fn faults_that_are_not_coroutine_overflows_still_reach_the_previous_handler() {
    // A plain thread overflowing its own stack is reported by Rust's std
    // handler, which corio chains to.
    let stderr = run_in_child_expecting_abort("thread_overflow_child", Duration::from_secs(60));
    assert!(stderr.contains("has overflowed its stack"), "std's message expected: {stderr}");
    assert!(!stderr.contains("corio: coroutine"), "{stderr}");
}

#[test]
#[ignore = "run by faults_that_are_not_coroutine_overflows_still_reach_the_previous_handler in a child process"]
fn thread_overflow_child() {
    let _runtime = corio::Runtime::builder().workers(1).build().unwrap(); // installs corio's handler
    std::thread::Builder::new().stack_size(64 << 10).spawn(|| common::recurse(0)).unwrap().join().ok();
    unreachable!();
}
