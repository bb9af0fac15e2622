//! One heap allocation per spawn (issue 14): the task header, the closure
//! and the join slot share one allocation, and spawning, running and joining
//! a coroutine allocates nothing else once the queues and stack caches are
//! warm. Counted with a counting global allocator over every thread of this
//! test process (so the test is alone in its binary).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Spawns and joins `batches` x `batch` coroutines (each capturing a value
/// and returning one) and returns the allocations counted meanwhile.
fn allocations_for(batches: usize, batch: usize) -> u64 {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for round in 0..batches {
        let mut handles = Vec::with_capacity(batch);
        for i in 0..batch {
            let captured = [round as u64, i as u64, 7];
            handles.push(corio::spawn(move || captured.iter().sum::<u64>()));
        }
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join().unwrap(), round as u64 + i as u64 + 7);
        }
    }
    // The two `Vec`s of each round (handles, and into_iter's buffer is the same).
    ALLOCATIONS.load(Ordering::Relaxed) - before - batches as u64
}

#[test]
fn a_spawn_and_join_allocates_once() {
    // No monitor: on a loaded machine it may report a stall (allocating),
    // which is not the spawn's doing.
    let runtime = corio::Runtime::builder().workers(2).stall_threshold(None).build().unwrap();
    runtime.block_on(|| {
        allocations_for(50, 100); // warm: queues, registries, stack caches
        let (batches, batch) = (100, 100);
        let spawns = (batches * batch) as u64;
        // The best of three: a queue or cache growing once is amortised
        // away, not counted against the spawns of one run.
        let counted = (0..3).map(|_| allocations_for(batches, batch)).min().unwrap();
        // A little slack for what is amortised (a queue's buffer growing once,
        // a stack cache refilled from the pool's free list).
        assert!(
            counted <= spawns + spawns / 20,
            "{counted} allocations for {spawns} spawns: more than one per spawn"
        );
    });
}
