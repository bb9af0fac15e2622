//! Coroutine ids: one process-wide counter, shared with plain threads (which
//! get an id the first time they ask for `coroutine::current()`). Workers
//! reserve blocks of ids so a spawn does not touch the shared counter.

use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Reserves `count` consecutive ids; returns the first (never 0).
pub(crate) fn reserve_ids(count: u64) -> u64 {
    NEXT_ID.fetch_add(count, Ordering::Relaxed)
}
