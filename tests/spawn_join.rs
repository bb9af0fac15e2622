//! End-to-end tests of spawning, joining, sleeping and panics.

mod common;

use common::{poll_until, run_in_child_expecting_abort, spawn_thread, wait_until_blocked, wait_until_parked};
use corio::coroutine::{self, Builder};
use corio::{Runtime, WaitReason};
use rand::Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn hundred_thousand_coroutines_sleep_a_random_few_ms_and_sum() {
    // Fewer where each stack guard costs a mapping (kernels before 6.13).
    let count = 100_000u64.min(corio::max_coroutines_hint() as u64);
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let total: u64 = runtime.block_on(|| {
        let handles: Vec<_> = (0..count)
            .map(|i| {
                let ms = rand::thread_rng().gen_range(1..=5);
                corio::spawn(move || {
                    corio::time::sleep(Duration::from_millis(ms));
                    i
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(total, (0..count).sum::<u64>());
}

#[test]
fn a_panic_kills_only_its_coroutine_and_reaches_join() {
    corio::run(|| {
        let bad = corio::spawn(|| -> u32 { panic!("boom in a handler") });
        let good = corio::spawn(|| 7u32);
        let err = bad.join().unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in a handler"));
        assert_eq!(good.join().unwrap(), 7);
        // The worker that ran the panicking coroutine still runs new ones.
        let after: Vec<_> = (0..100).map(|i| corio::spawn(move || i * 2)).collect();
        assert_eq!(after.into_iter().map(|h| h.join().unwrap()).sum::<i32>(), 9900);
    });
}

#[test]
fn block_on_resumes_the_main_coroutines_panic_on_the_caller() {
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.block_on(|| panic!("main failed"))));
    assert_eq!(result.unwrap_err().downcast_ref::<&str>(), Some(&"main failed"));
    // The runtime survives and keeps working.
    assert_eq!(runtime.block_on(|| 5), 5);
}

#[test]
fn join_from_a_plain_thread_blocks_that_thread() {
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let released = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let r = released.clone();
    let handle = runtime.spawn(move || {
        tx.send(coroutine::current()).unwrap();
        while r.load(Ordering::SeqCst) == 0 {
            coroutine::park();
        }
        "done"
    });
    let co = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let (tid, joiner) = spawn_thread(move || handle.join().unwrap());
    // The thread is blocked in join while the coroutine provably still waits.
    wait_until_blocked(tid);
    wait_until_parked(&co, WaitReason::Park);
    assert!(!joiner.is_finished(), "join returned before the coroutine did");
    assert!(common::is_blocked(tid));
    released.store(1, Ordering::SeqCst);
    co.unpark();
    poll_until("the join returns", || joiner.is_finished());
    assert_eq!(joiner.join().unwrap(), "done");
}

#[test]
fn builder_sets_name_and_stack_size() {
    corio::run(|| {
        let handle = Builder::new()
            .name("worker-7".into())
            .stack_size(256 << 10)
            .spawn(|| {
                // Use most of a 256 KiB stack: would overflow the 64 KiB default.
                let buf = [1u8; 200 << 10];
                let sum: u64 = std::hint::black_box(&buf).iter().map(|&b| b as u64).sum();
                (coroutine::current().name().map(String::from), sum)
            })
            .unwrap();
        let (name, sum) = handle.join().unwrap();
        assert_eq!(name.as_deref(), Some("worker-7"));
        assert_eq!(sum, 200 << 10);
    });
}

#[test]
fn spawn_outside_a_runtime_is_a_clear_error() {
    let err = Builder::new().spawn(|| ()).unwrap_err();
    assert!(err.to_string().contains("outside a corio runtime"), "{err}");
}

#[test]
fn sleep_outside_a_coroutine_blocks_the_thread_for_the_duration() {
    let start = Instant::now();
    corio::time::sleep(Duration::from_millis(15));
    assert!(start.elapsed() >= Duration::from_millis(15));
}

#[test]
fn a_sleep_never_ends_early_even_with_stray_unparks() {
    common::within(2, Duration::from_secs(30), "a sleep with stray unparks", || {
        let handle_slot = Arc::new(parking_lot::Mutex::new(None));
        let slot = handle_slot.clone();
        let sleeper = corio::spawn(move || {
            *slot.lock() = Some(coroutine::current());
            let start = Instant::now();
            corio::time::sleep(Duration::from_millis(30));
            start.elapsed()
        });
        let handle = loop {
            if let Some(handle) = handle_slot.lock().clone() {
                break handle;
            }
            corio::yield_now();
        };
        while !sleeper.is_finished() {
            handle.unpark(); // stray wake-ups: the sleep must absorb them
            corio::time::sleep(Duration::from_millis(1));
        }
        assert!(sleeper.join().unwrap() >= Duration::from_millis(30));
    });
}

#[test]
fn yield_now_lets_siblings_on_the_same_worker_run() {
    let runtime = Runtime::builder().workers(1).build().unwrap();
    let progress = Arc::new(AtomicUsize::new(0));
    let seen = runtime.block_on({
        let progress = progress.clone();
        move || {
            let sibling = corio::spawn({
                let progress = progress.clone();
                move || progress.store(1, Ordering::SeqCst)
            });
            // With one worker, the sibling can only run if we yield.
            let mut spins = 0;
            while progress.load(Ordering::SeqCst) == 0 {
                corio::yield_now();
                spins += 1;
                assert!(spins < 1_000, "the sibling never ran");
            }
            sibling.join().unwrap();
            spins
        }
    });
    assert!(seen >= 1);
}

#[test]
fn coroutine_ids_are_unique_and_current_matches_the_handle() {
    corio::run(|| {
        let handles: Vec<_> = (0..1000).map(|_| corio::spawn(|| coroutine::current().id())).collect();
        let mut ids: Vec<_> = handles.into_iter().map(|h| (h.id(), h.join().unwrap())).collect();
        for (handle_id, inner_id) in &ids {
            assert_eq!(handle_id, inner_id);
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 1000);
    });
}

#[test]
fn an_absurd_stack_size_is_an_invalid_input_error() {
    corio::run(|| {
        let err = Builder::new().stack_size(usize::MAX).spawn(|| ()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    });
    let err = Runtime::builder().stack_size(usize::MAX).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
#[ignore = "run by a_detached_result_that_panics_on_drop_aborts_with_a_message_not_a_dead_worker in a child process"]
fn child_a_detached_result_panics_on_drop() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("bomb");
        }
    }
    corio::run(|| {
        drop(corio::spawn(|| Bomb)); // detached: its result is dropped by the runtime
                                     // That drop aborts the process: wait for it (fail if it does not come).
        poll_until("the dropped result aborts the process", || false);
    });
}

#[test]
fn a_detached_result_that_panics_on_drop_aborts_with_a_message_not_a_dead_worker() {
    let stderr =
        run_in_child_expecting_abort("child_a_detached_result_panics_on_drop", Duration::from_secs(60));
    assert!(stderr.contains("corio: fatal: a coroutine's result"), "stderr: {stderr}");
}
