//! The smallest corio program: spawn coroutines that sleep, join them.
use std::time::{Duration, Instant};

fn main() {
    let start = Instant::now();
    let total: u64 = corio::run(|| {
        let handles: Vec<_> = (0..10_000u64)
            .map(|i| {
                corio::spawn(move || {
                    corio::time::sleep(Duration::from_millis(10 + i % 10));
                    i
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    println!("10,000 coroutines slept 10-19 ms each; sum {total} in {:?}", start.elapsed());
}
