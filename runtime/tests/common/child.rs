//! Running one test in a child process with a deadline: for regressions whose
//! failure is a hang (a shutdown that never returns, a spin at 100 % CPU), which
//! an in-process timeout cannot stop.
//!
//! The child is the same test binary, asked to run exactly one `#[ignore]`d
//! test (`--exact NAME --ignored`); such a test only runs when its parent test
//! starts it, never on its own in the suite.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the `#[ignore]`d test `name` of this test binary in a child process;
/// fails if it fails, or kills it and fails if it has not exited within `limit`.
/// Returns the child's stderr (for tests that check a message).
pub fn run_in_child(name: &str, limit: Duration) -> String {
    let (status, stdout, stderr) = run_child(name, limit);
    assert!(status.success(), "{name}: the child failed ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("1 passed"), "{name}: the child ran no test (wrong name?)\nstdout:\n{stdout}");
    stderr
}

/// As [`run_in_child`], for a child expected to abort the process (a fatal
/// error by design): fails if it exits normally or hangs past `limit`.
/// Returns its stderr.
pub fn run_in_child_expecting_abort(name: &str, limit: Duration) -> String {
    run_in_child_expecting_abort_status(name, limit).1
}

/// As [`run_in_child_expecting_abort`], also returning the child's exit
/// status (to check which signal ended it).
pub fn run_in_child_expecting_abort_status(
    name: &str,
    limit: Duration,
) -> (std::process::ExitStatus, String) {
    let (status, stdout, stderr) = run_child(name, limit);
    assert!(
        !status.success(),
        "{name}: the child did not abort ({status})\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(!stdout.contains("test result"), "{name}: the child ended normally\nstdout:\n{stdout}");
    (status, stderr)
}

/// Runs the child; kills it and fails if it has not exited within `limit`.
fn run_child(name: &str, limit: Duration) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("CORIO_TEST_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child test process");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().expect("reap the child");
            panic!(
                "{name}: hung for {limit:?} (killed)\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // Polling a child's exit status: there is no condition to wait on
        // without a second thread, and the deadline is the test's point.
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = child.wait_with_output().expect("collect the child's output");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (status, stdout, stderr)
}
