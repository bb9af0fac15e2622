//! Race-window widening for debug builds.
//!
//! The windows the parker protects (between "decided to park" and "parked",
//! between "switched off the stack" and "commit") last a few nanoseconds, so a
//! broken protocol can pass millions of test iterations. In debug builds
//! (`cargo test`), [`pause`] stalls the thread for a random short time at
//! those points one time in eight, so cross-thread wake-ups land inside the
//! windows often. Release builds compile it to nothing.

#[cfg(debug_assertions)]
pub(crate) fn pause() {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0x2545_F491_4F6C_DD1D) };
    }
    let r = STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    });
    if r.is_multiple_of(8) {
        for _ in 0..(r >> 8) % 2048 {
            std::hint::spin_loop();
        }
        if r.is_multiple_of(64) {
            std::thread::yield_now();
        }
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn pause() {}
