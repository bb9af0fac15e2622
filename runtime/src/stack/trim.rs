//! The trim: returning the resident pages of free stacks to the OS (the
//! policy, the states and who calls it are in the parent module's doc).
//!
//! `StackPool::trim` ends a trim window: per size class it moves the stacks
//! that stayed free for the whole window (the front of `warm`, beyond the
//! watermark) out of the pool in batches, releases their usable pages with
//! `madvise(MADV_DONTNEED)` outside the lock, and puts them back as cold.

use super::{page_size, Stack, StackPool, GUARD_MADVISE_UNSUPPORTED};
use std::sync::atomic::Ordering;

/// Stacks moved out of the pool per lock round trip while trimming: enough
/// for neighbouring slots to meet in one `madvise`, few enough that a burst
/// starting meanwhile finds the rest of the pool.
const TRIM_BATCH: usize = 1024;

/// What one trim did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trimmed {
    /// Stacks whose pages were released.
    pub(crate) stacks: usize,
    /// Of their pages, the bytes that were resident (and now are not).
    pub(crate) bytes: usize,
}

impl StackPool {
    /// Ends the current trim window (module doc): releases the pages of the
    /// warm stacks of each size that were free throughout it, beyond `keep`
    /// per size, and begins the next window. Called by one thread at a time
    /// (the runtime's monitor); spawns and returns go on meanwhile.
    pub(crate) fn trim(&self, keep: usize) -> Trimmed {
        let sizes: Vec<usize> = self.classes.lock().keys().copied().collect();
        let mut total = Trimmed::default();
        let mut batch = Vec::with_capacity(TRIM_BATCH);
        for size in sizes {
            loop {
                {
                    let mut classes = self.classes.lock();
                    let Some(class) = classes.get_mut(&size) else { break };
                    // `warm_low <= warm.len()` always: the low-water mark
                    // of a list only ever pushed to since.
                    let n = class.warm_low.saturating_sub(keep).min(TRIM_BATCH);
                    if n == 0 {
                        class.warm_low = class.warm.len(); // the next window
                        break;
                    }
                    batch.extend(class.warm.drain(..n));
                    class.warm_low -= n;
                }
                let done = release(&mut batch, self.guard_len);
                total.stacks += done.stacks;
                total.bytes += done.bytes;
                self.trimmed_stacks.fetch_add(done.stacks as u64, Ordering::Relaxed);
                self.trimmed_bytes.fetch_add(done.bytes as u64, Ordering::Relaxed);
                let mut classes = self.classes.lock();
                let class = classes.get_mut(&size).expect("size classes are never removed");
                for stack in batch.drain(..) {
                    class.put(stack);
                }
            }
        }
        total
    }
}

/// Releases the usable pages of `stacks` (free, owned by the caller) and
/// marks the released ones untouched; neighbouring slots go in one call when
/// guards are page-table markers, which `MADV_DONTNEED` keeps.
fn release(stacks: &mut [Stack], guard_len: usize) -> Trimmed {
    stacks.sort_unstable_by_key(|stack| stack.guard_start);
    let merge = !GUARD_MADVISE_UNSUPPORTED.load(Ordering::Relaxed);
    let mut done = Trimmed::default();
    let mut first = 0;
    while first < stacks.len() {
        let mut end = first + 1;
        while merge && end < stacks.len() && stacks[end].guard_start == stacks[end - 1].usable_range().1 {
            end += 1;
        }
        let run = &mut stacks[first..end];
        let start = run[0].usable_range().0;
        let stop = run[run.len() - 1].usable_range().1;
        // The guards inside the run (each slot's but the first's).
        let guards = run[1..].iter().map(|stack| stack.guard_start);
        let resident = resident_bytes(start, stop, guards, guard_len);
        // SAFETY: `[start, stop)` lies in a chunk mapping, which stays mapped
        // while the pool lives (`&self` of the caller), and holds only these
        // free stacks, which the caller owns: no coroutine runs on them, no
        // list hands them out. Their contents are dead; the guard markers
        // between them survive `MADV_DONTNEED` (module doc and tests).
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, stop - start, libc::MADV_DONTNEED) };
        if rc == 0 {
            for stack in run.iter_mut() {
                stack.touched = false;
            }
            done.stacks += run.len();
            done.bytes += resident;
        }
        // On failure (never seen) the stacks stay warm and a later window
        // tries again; they remain as usable as before.
        first = end;
    }
    done
}

/// Resident bytes in `[start, stop)` (page aligned), the pages at `guards`
/// (of `guard_len` bytes each) excluded; 0 if the kernel will not say.
fn resident_bytes(start: usize, stop: usize, guards: impl Iterator<Item = usize>, guard_len: usize) -> usize {
    let page = page_size();
    let mut pages = vec![0u8; (stop - start) / page];
    // SAFETY: `[start, stop)` is mapped (see `release`) and page aligned;
    // `pages` has one byte per page of it, as mincore writes.
    let rc = unsafe { libc::mincore(start as *mut libc::c_void, stop - start, pages.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    for guard in guards {
        let first = (guard - start) / page;
        for flag in &mut pages[first..first + guard_len / page] {
            *flag = 0;
        }
    }
    pages.iter().filter(|&&flag| flag & 1 != 0).count() * page
}

#[cfg(test)]
mod tests {
    use super::super::tests::pagemap_guard as is_guard;
    use super::super::{round_stack_size, StackCache};
    use super::*;

    /// Resident pages of `stack`'s usable part.
    fn resident_pages(stack: &Stack) -> usize {
        let (start, stop) = stack.usable_range();
        resident_bytes(start, stop, std::iter::empty(), 0) / page_size()
    }

    /// Writes `byte` over the whole usable part of `stack`.
    fn fill(stack: &Stack, byte: u8) {
        let (start, _) = stack.usable_range();
        // SAFETY: the usable part is mapped read-write and the test owns the
        // stack (no coroutine runs on it).
        unsafe { std::ptr::write_bytes(start as *mut u8, byte, stack.size()) }
    }

    /// Takes `n` stacks, touches every page of each, returns them as a
    /// finished coroutine's would be returned (warm); returns their slots.
    fn use_and_return(pool: &StackPool, size: usize, n: usize) -> Vec<usize> {
        let mut stacks = Vec::new();
        pool.take(size, n, &mut stacks).unwrap();
        let mut cache = StackCache::new(size);
        let slots = stacks.iter().map(|s| s.guard_start).collect();
        for stack in stacks {
            fill(&stack, 0xA5);
            cache.put(pool, stack);
        }
        cache.drain_into(pool);
        slots
    }

    #[test]
    fn trim_releases_stacks_free_for_a_whole_window_and_keeps_guards() {
        let pool = StackPool::new();
        let size = round_stack_size(64 << 10).unwrap();
        let pages = size / page_size();
        use_and_return(&pool, size, 64);
        let stats = pool.stats();
        assert_eq!((stats.free, stats.warm), (64, 64));
        // The first window began with the pool empty: nothing to trim yet.
        assert_eq!(pool.trim(8), Trimmed::default());
        let guard = {
            let classes = pool.classes.lock();
            classes[&size].warm[0].guard_start
        };
        let guard_before = is_guard(guard);
        // A whole window with 64 warm stacks free: all but 8 go.
        let trimmed = pool.trim(8);
        assert_eq!(trimmed.stacks, 56);
        assert_eq!(trimmed.bytes, 56 * size, "every touched page was resident and is counted");
        let stats = pool.stats();
        assert_eq!((stats.free, stats.warm, stats.trimmed_stacks), (64, 8, 56));
        if let Some(before) = guard_before {
            assert!(before, "the guard was installed");
            assert_eq!(is_guard(guard), Some(true), "MADV_DONTNEED kept the guard marker");
        }
        {
            let classes = pool.classes.lock();
            let class = &classes[&size];
            assert!(class.cold.iter().all(|s| !s.touched && resident_pages(s) == 0));
            assert!(class.warm.iter().all(|s| s.touched && resident_pages(s) == pages));
        }
        // Reuse: warm stacks first, then trimmed ones, which read as zeroes
        // and work as before.
        let mut again = Vec::new();
        pool.take(size, 64, &mut again).unwrap();
        assert!(again[..8].iter().all(|s| s.touched), "warm stacks are handed out first");
        for stack in &again[8..] {
            assert!(!stack.touched);
            let (start, _) = stack.usable_range();
            // SAFETY: mapped, owned by the test; reading the first byte.
            assert_eq!(unsafe { *(start as *const u8) }, 0, "a trimmed page faults in as zeroes");
            fill(stack, 0x5A);
            // SAFETY: as above.
            assert_eq!(unsafe { *((start + size - 1) as *const u8) }, 0x5A);
        }
        assert_eq!(pool.stats().carved, 64, "no new slot was carved");
    }

    #[test]
    fn stacks_taken_during_a_window_are_not_trimmed() {
        let pool = StackPool::new();
        let size = round_stack_size(16 << 10).unwrap();
        use_and_return(&pool, size, 40);
        pool.trim(0); // begins a window with 40 warm
                      // During the window, 30 are taken and come back: only 10 stayed free.
        use_and_return(&pool, size, 30);
        assert_eq!(pool.trim(0).stacks, 10);
        // Next window: nothing taken, the 30 go too.
        assert_eq!(pool.trim(0).stacks, 30);
        assert_eq!(pool.trim(0).stacks, 0, "cold stacks are not trimmed again");
    }

    #[test]
    fn stacks_that_never_ran_go_back_cold() {
        let pool = StackPool::new();
        let size = round_stack_size(16 << 10).unwrap();
        let mut cache = StackCache::new(size);
        let stack = cache.get(&pool, size).unwrap();
        cache.put(&pool, stack);
        cache.drain_into(&pool);
        let stats = pool.stats();
        assert_eq!((stats.free, stats.warm), (32, 1), "31 carved and never run, 1 ran");
    }
}
