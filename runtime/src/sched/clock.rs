//! A coarse monotonic clock for hot paths that need "about when": when a
//! worker began its current resume (stall detection, placement), when a
//! coroutine parked (the dump's "waited for"). `CLOCK_MONOTONIC_COARSE` is a
//! vDSO read of the kernel's last tick, a few nanoseconds, with the tick's
//! resolution (4 ms here); `Instant::now()` costs several times more.

/// Milliseconds on the coarse monotonic clock (never 0: 0 means "none" to
/// the atomics that store it).
pub(crate) fn coarse_now_ms() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to write; CLOCK_MONOTONIC_COARSE is
    // supported by every Linux since 2.6.32 (the call cannot fail then).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    (now.tv_sec as u64 * 1000 + now.tv_nsec as u64 / 1_000_000).max(1)
}
