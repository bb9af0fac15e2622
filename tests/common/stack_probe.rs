//! Measuring how much coroutine stack a library needs: the smallest stack
//! (in 4 KiB steps) with which a scenario completes. Each try runs in a child
//! process (an overflow aborts): the test binary re-runs its `#[ignore]`d
//! `stack_probe_child` test with `env_var` set to `"SIDE:BYTES"`. Included
//! with `#[path = "common/stack_probe.rs"] mod stack_probe;`.
#![allow(dead_code)]

use std::process::Command;

/// Does the scenario for `side` complete with a `bytes` stack?
fn fits(env_var: &str, side: &str, bytes: usize) -> bool {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "stack_probe_child", "--ignored", "--test-threads=1"])
        .env(env_var, format!("{side}:{bytes}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() || stderr.contains("overflowed"), "probe failed otherwise: {stderr}");
    out.status.success()
}

/// The smallest stack (4 KiB steps, at least corio's 16 KiB floor) with
/// which the scenario for `side` completes, found by bisection.
pub fn smallest_stack(env_var: &str, side: &str) -> usize {
    let (mut lo, mut hi) = (16 << 10, 1 << 20); // lo may not fit, hi fits
    assert!(fits(env_var, side, hi));
    if fits(env_var, side, lo) {
        return lo;
    }
    while hi - lo > 4096 {
        let mid = (lo + hi) / 2 / 4096 * 4096;
        if fits(env_var, side, mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}
