//! One million coroutines parked at once, with the default `vm.max_map_count`
//! (65530). With one mapping plus an mprotect'd guard per stack the process
//! would stop near 32,700 coroutines; corio carves stacks out of large
//! mappings with `MADV_GUARD_INSTALL` guards, so the mapping count stays low.
//!
//! Runs in the default test command in release mode (`scripts/test.sh` runs
//! `cargo test --release --test million_parked`); in a debug build it parks
//! 100,000 instead, to keep the debug suite fast. It prints memory per parked
//! coroutine, for information only (speed and memory are measured by the
//! benchmarks, not asserted here).

use corio::coroutine::{self, Coroutine};
use corio::Runtime;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn proc_status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn mapping_count() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

#[test]
fn a_million_coroutines_parked_at_once_within_the_default_map_count() {
    let wanted: usize = if cfg!(debug_assertions) { 100_000 } else { 1_000_000 };
    // Kernels before 6.13 guard each stack with mprotect (about two mappings
    // a coroutine): there the count is capped by what vm.max_map_count allows.
    let guards_share_mappings = corio::max_coroutines_hint() >= 1_000_000;
    let count = wanted.min(corio::max_coroutines_hint());
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let rss_before = proc_status_kib("VmRSS:");
    let start = Instant::now();
    let (maps_at_peak, rss_at_peak, parked_after) = runtime.block_on(move || {
        let handles: Arc<Vec<OnceLock<Coroutine>>> = Arc::new((0..count).map(|_| OnceLock::new()).collect());
        let parked = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(AtomicBool::new(false));
        let joins: Vec<_> = (0..count)
            .map(|i| {
                let (handles, parked, release) = (handles.clone(), parked.clone(), release.clone());
                corio::spawn(move || {
                    handles[i].set(coroutine::current()).ok();
                    parked.fetch_add(1, Ordering::SeqCst);
                    while !release.load(Ordering::SeqCst) {
                        coroutine::park();
                    }
                    i as u64
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(600);
        while parked.load(Ordering::SeqCst) < count {
            assert!(Instant::now() < deadline, "coroutines did not all start");
            corio::time::sleep(Duration::from_millis(5));
        }
        let parked_after = start.elapsed();
        let peak = (mapping_count(), proc_status_kib("VmRSS:"));
        release.store(true, Ordering::SeqCst);
        for handle in handles.iter() {
            handle.get().expect("every coroutine published its handle").unpark();
        }
        let sum: u64 = joins.into_iter().map(|j| j.join().unwrap()).sum();
        assert_eq!(sum, (0..count as u64).sum::<u64>());
        (peak.0, peak.1, parked_after)
    });
    let per_coroutine = (rss_at_peak - rss_before) as f64 / count as f64;
    println!(
        "{count} coroutines parked in {parked_after:?}; {maps_at_peak} mappings; {per_coroutine:.2} KiB RSS each (incl. handles)"
    );
    if guards_share_mappings {
        assert!(maps_at_peak < 65_530 / 2, "{maps_at_peak} memory mappings: stacks are not sharing mappings");
    } else {
        println!("(this kernel guards stacks with mprotect: {count} coroutines, not {wanted})");
    }
}
