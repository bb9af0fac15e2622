//! The stack trim (`RuntimeBuilder::stack_trim_after`): after a burst of
//! coroutines, the pages their stacks touched go back to the OS once the
//! stacks stay unused; a trimmed stack is reused correctly and keeps its guard.
//!
//! Each test runs in a child process (this binary, re-run for one `#[ignore]`d
//! test): RSS is a process-wide figure that other tests would disturb, and
//! the overflow check aborts the process.

mod common;

use common::{run_in_child, run_in_child_expecting_abort};
use corio::sync::Barrier;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes each coroutine of the burst writes on its stack (8 pages).
const TOUCHED: usize = 32 << 10;

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Writes every 64th byte of `TOUCHED` bytes of the calling coroutine's
/// stack (every page) with `seed` and checks them back; returns a sum so
/// nothing is optimised away.
#[inline(never)]
fn touch_stack(seed: u8) -> u64 {
    let mut frame = [0u8; TOUCHED];
    let frame = std::hint::black_box(&mut frame);
    for i in (0..TOUCHED).step_by(64) {
        frame[i] = seed.wrapping_add((i / 64) as u8) | 1;
    }
    let frame = std::hint::black_box(frame);
    let mut sum = 0u64;
    for i in (0..TOUCHED).step_by(64) {
        assert_eq!(frame[i], seed.wrapping_add((i / 64) as u8) | 1, "the stack holds what was written");
        sum += frame[i] as u64;
    }
    sum
}

/// Runs `n` coroutines at once (a barrier keeps them all alive, so each has
/// its own stack), each touching `TOUCHED` bytes of it; waits for them all.
fn burst(n: usize, stack_size: Option<usize>) {
    let barrier = Arc::new(Barrier::new(n + 1));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let mut builder = corio::coroutine::Builder::new();
            if let Some(size) = stack_size {
                builder = builder.stack_size(size);
            }
            builder
                .spawn(move || {
                    let sum = touch_stack(i as u8);
                    barrier.wait();
                    sum
                })
                .unwrap()
        })
        .collect();
    barrier.wait();
    for handle in handles {
        assert!(handle.join().unwrap() > 0);
    }
}

/// Polls `cond` every few milliseconds, failing with `what` after `limit`.
fn poll(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        corio::time::sleep(Duration::from_millis(5));
    }
}

#[test]
#[ignore = "run by idle_stack_memory_returns_to_the_os_and_trimmed_stacks_work in a child process"]
fn trim_child() {
    const N: usize = 2000;
    let runtime = corio::Runtime::builder()
        .workers(2)
        .stall_threshold(None)
        .stack_trim_after(Some(Duration::from_millis(50)))
        .build()
        .unwrap();
    let metrics = corio::debug::metrics;
    runtime.block_on(|| {
        burst(N, None);
        let after_burst = rss_kib();
        let touched_kib = N * TOUCHED / 1024;
        // The caches and the pool's watermark keep a few hundred stacks warm;
        // the pages of the rest (~1,700 of 2,000) must go.
        let expected_drop = touched_kib * 6 / 10;
        poll("the burst's stack pages return to the OS", Duration::from_secs(20), || {
            rss_kib() + expected_drop <= after_burst
        });
        poll("the trim's counters show it", Duration::from_secs(20), || {
            let m = metrics();
            m.stacks_trimmed as usize >= N / 2 && m.stack_bytes_trimmed as usize >= expected_drop * 1024
        });
        let m = metrics();
        println!(
            "VmRSS {after_burst} KiB after the burst, {} KiB now; {} stacks trimmed, {} KiB returned",
            rss_kib(),
            m.stacks_trimmed,
            m.stack_bytes_trimmed / 1024
        );
        // Trimmed stacks are reused, and hold what their coroutines write
        // (`touch_stack` checks every byte). New slots are carved only for
        // stacks the spawning worker cannot reach (another worker's cache).
        // First wait for the trim to be done with this pool: the pool keeps
        // its watermark of warm stacks (32, one cache refill) and no batch is
        // out being released (the trim takes up to 1,024 stacks out of the
        // pool while it calls `madvise`; a burst meanwhile carves new ones,
        // by design). Then no trim can start before the burst returns its
        // stacks: a trim takes only warm stacks beyond the watermark.
        poll("the trim is done with the pool", Duration::from_secs(20), || {
            let m = metrics();
            let holders = m.stacks_pooled + m.total.stacks_cached + m.total.alive + m.total.not_started;
            m.stacks_pooled_warm <= 32 && holders == m.stacks_mapped
        });
        let m = metrics();
        let (mapped, cached) = (m.stacks_mapped, m.total.stacks_cached);
        burst(N, None);
        let carved = metrics().stacks_mapped - mapped;
        assert!(carved <= cached, "the second burst carved {carved} new stacks; {cached} were in caches");
    });
}

#[test]
fn idle_stack_memory_returns_to_the_os_and_trimmed_stacks_work() {
    run_in_child("trim_child", Duration::from_secs(120));
}

#[test]
#[ignore = "run by a_trimmed_stack_keeps_its_guard_page in a child process"]
fn overflow_on_trimmed_stack_child() {
    // A size of its own: such stacks come from the pool one at a time, warm
    // ones first, with no per-worker cache in between.
    const SIZE: usize = 48 << 10;
    let runtime = corio::Runtime::builder()
        .workers(2)
        .stall_threshold(None)
        .stack_trim_after(Some(Duration::from_millis(20)))
        .build()
        .unwrap();
    runtime.block_on(|| {
        burst(200, Some(SIZE));
        poll("stacks are trimmed", Duration::from_secs(20), || {
            let m = corio::debug::metrics();
            m.stacks_trimmed >= 100 && m.stacks_pooled_warm < m.stacks_pooled
        });
        // Hold every warm stack of the pool with a parked coroutine, so the
        // next spawn gets a trimmed one.
        let warm = corio::debug::metrics().stacks_pooled_warm as usize;
        let release = Arc::new(Barrier::new(warm + 1));
        let holders: Vec<_> = (0..warm)
            .map(|_| {
                let release = release.clone();
                corio::coroutine::Builder::new().stack_size(SIZE).spawn(move || release.wait()).unwrap()
            })
            .collect();
        poll("the warm stacks are taken", Duration::from_secs(20), || {
            corio::debug::metrics().stacks_pooled_warm == 0
        });
        let handle = corio::coroutine::Builder::new()
            .name("trimmed-stack".into())
            .stack_size(SIZE)
            .spawn(|| common::recurse(0))
            .unwrap();
        let _ = handle.join();
        drop(holders);
    });
    unreachable!("the overflow must abort the process");
}

#[test]
fn a_trimmed_stack_keeps_its_guard_page() {
    let stderr = run_in_child_expecting_abort("overflow_on_trimmed_stack_child", Duration::from_secs(120));
    assert!(stderr.contains("\"trimmed-stack\" overflowed its 49152-byte stack"), "stderr was: {stderr}");
}
