//! Coroutine stacks, carved out of large shared mappings and reused.
//!
//! A coroutine stack is a slot of a *chunk*: one `mmap(MAP_NORESERVE)` that holds
//! many slots side by side. Each slot is `guard page + usable stack`, the guard at
//! the low end because stacks grow down:
//!
//! ```text
//! chunk: | guard | stack 0 ....... | guard | stack 1 ....... | ...
//!          ^ limit()               ^ base() of stack 0 (highest address)
//! ```
//!
//! Why chunks: one mapping per stack plus an `mprotect`'d guard costs two kernel
//! mappings per coroutine, and the default `vm.max_map_count` (65530) then stops a
//! process at ~32,700 coroutines. Guards installed with
//! `madvise(MADV_GUARD_INSTALL)` (Linux >= 6.13) do not split the mapping, so a
//! chunk stays one mapping whatever its slot count. On older kernels the guard
//! falls back to `mprotect(PROT_NONE)`, which splits the mapping (the limit then
//! applies again and the error message says which sysctl to raise).
//!
//! Start-up cost of a new stack (a million coroutines start in ~2 s here): the
//! guards of a batch of new slots go in one `process_madvise` (`install_guards`),
//! and chunks are `VM_NOHUGEPAGE` so that they never merge with a malloc arena,
//! whose `mprotect`s would otherwise stall the page faults of new stacks (`map`).
//!
//! # A stack's states
//!
//! ```text
//!            carve (guard installed)
//!   (slot) ---------------------------> COLD (free, no resident page)
//!   COLD  --take--> IN USE --put (the coroutine ran)--> WARM (free, pages resident)
//!   WARM  --take--> IN USE
//!   WARM  --trim (free for a whole window, above the watermark)--> COLD
//! ```
//!
//! A free stack is in a worker's [`StackCache`] or in the [`StackPool`]'s free
//! lists of its size: `warm` (least recently freed first) and `cold`. `take`
//! hands out warm stacks before cold ones, so reuse normally costs no page
//! fault; a cold stack's pages fault in again on first touch, as zeroes, which
//! is all a new coroutine needs. `Stack::touched` carries the state while a
//! stack is in a cache, so a stack that never ran goes back to `cold`.
//!
//! # Returning memory: the trim (`trim.rs`)
//!
//! Pages a coroutine touched stay resident while its stack is free, so that
//! reuse is cheap (~16 ns against ~2.4 us per page fault). After a burst (a
//! server that once had 100,000 connections) that would keep every page of
//! every stack resident for ever, so the pool *trims*: time is cut into
//! windows of `trim_after` (`RuntimeBuilder::stack_trim_after`, default 5 s);
//! each size class notes the fewest warm stacks it held during the window
//! (`warm_low`). At the end of a window, that many stacks (less
//! [`POOL_WARM_KEEP`], the watermark) were not needed at all during it: the
//! oldest ones, at the front of `warm`, have their usable pages returned with
//! `madvise(MADV_DONTNEED)` and move to `cold`. So a stack is trimmed after
//! it has been free for between one and two windows, and a steady load never
//! trims the stacks it keeps using.
//!
//! - Who: the runtime's monitor thread (`debug::monitor`, Go's sysmon), which
//!   runs whenever the trim is on, even with the stall report off. Not the
//!   workers: trimming 100,000 stacks takes tens of milliseconds of
//!   `madvise`, which must not delay a worker's coroutines, and an idle
//!   worker sleeps without a deadline.
//! - What: only the shared pool. The per-worker caches (at most
//!   `CACHE_MAX + 1` stacks each) are the warm working set of spawn bursts and
//!   stay as they are: they are bounded, and only their owner may touch them.
//! - How: stacks are taken out of the pool in batches of `TRIM_BATCH`, so
//!   the lock is held only to move them, never during a system call;
//!   neighbouring slots are released with one `madvise` (fewer calls and
//!   fewer TLB shootdowns). `MADV_DONTNEED`, not `MADV_FREE`: the pages leave
//!   the RSS at once (with `MADV_FREE` they stay counted until the kernel
//!   needs memory, which is why Go went back to `MADV_DONTNEED` in 1.16).
//!   A `MADV_GUARD_INSTALL` guard is a page-table marker that `MADV_DONTNEED`
//!   keeps (checked by the tests), so a run's range may cover the guards
//!   between its slots; with `mprotect` guards each stack's usable part is
//!   released on its own, and the guards' mappings are never touched.
//!
//! Invariants:
//! - A slot's guard is installed before the slot is first handed out, and stays.
//! - A [`Stack`] is owned by exactly one coroutine, cache, free list or trim
//!   batch at a time.
//! - Chunks are unmapped only when the [`StackPool`] is dropped, which the runtime
//!   does after every coroutine (and so every [`Stack`]) is gone, and after its
//!   monitor (the trimmer) has stopped.

pub(crate) mod overflow;
mod trim;

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// `MADV_GUARD_INSTALL` from Linux 6.13 (`include/uapi/asm-generic/mman-common.h`).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Chunks aim at this much address space (reserved, not committed).
const CHUNK_BYTES: usize = 64 << 20;
const MIN_SLOTS_PER_CHUNK: usize = 4;
const MAX_SLOTS_PER_CHUNK: usize = 1024;

/// Set once `MADV_GUARD_INSTALL` is found unsupported, so later guards go
/// straight to `mprotect`.
static GUARD_MADVISE_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// Set once a batched `process_madvise` of guards is refused, so later
/// batches go one `madvise` per guard.
static PROCESS_MADVISE_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// `PIDFD_SELF_PROCESS` (Linux 6.15, `include/uapi/linux/pidfd.h`): the
/// calling process, for `process_madvise` without opening a pidfd.
const PIDFD_SELF_PROCESS: libc::c_int = -10001;

/// The most ranges one `process_madvise` takes (`UIO_MAXIOV`).
const IOV_MAX: usize = 1024;

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size <= 0 {
        4096
    } else {
        size as usize
    }
}

/// Largest usable stack size accepted (1 GiB): chunk arithmetic stays far
/// from overflow, and no coroutine needs more.
pub(crate) const MAX_STACK_SIZE: usize = 1 << 30;

/// Rounds a requested usable stack size up to whole pages, at least 16 KiB
/// (a panic with its unwinding needs ~4 KB; below 16 KiB almost nothing runs).
pub(crate) fn round_stack_size(requested: usize) -> io::Result<usize> {
    if requested > MAX_STACK_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("corio: stack size {requested} exceeds the maximum of {MAX_STACK_SIZE} bytes"),
        ));
    }
    let page = page_size();
    let size = requested.max(16 << 10);
    Ok(size.div_ceil(page) * page)
}

/// One coroutine stack: a slot in a chunk, guard page included.
#[derive(Debug)]
pub(crate) struct Stack {
    /// Lowest address of the slot: the start of the guard page.
    guard_start: usize,
    /// Usable bytes above the guard.
    size: usize,
    guard_len: u32,
    /// May have resident pages: a coroutine ran on it since it was carved or
    /// last trimmed (the module's WARM state when free).
    touched: bool,
}

impl Stack {
    /// Usable size in bytes (the guard page excluded).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The guard page's address range `[start, end)`, for the overflow handler.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.guard_start, self.guard_start + self.guard_len as usize)
    }

    /// The usable part `[start, end)`: what a trim returns to the OS.
    fn usable_range(&self) -> (usize, usize) {
        let start = self.guard_start + self.guard_len as usize;
        (start, start + self.size)
    }
}

// SAFETY: `base()` is the top of a mapped, writable region of `size` bytes that
// this `Stack` owns exclusively (slots never overlap and a slot has one owner);
// `limit()` is the bottom of the guard page below it, and the guard is installed
// before any `Stack` is created (`Chunk::install_guard`). `size` is at least
// 16 KiB (`round_stack_size`), above corosensei's `MIN_STACK_SIZE`, and both
// addresses are page aligned, hence aligned to `STACK_ALIGNMENT`.
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> corosensei::stack::StackPointer {
        NonZeroUsize::new(self.usable_range().1).expect("stack base is non-null")
    }

    fn limit(&self) -> corosensei::stack::StackPointer {
        NonZeroUsize::new(self.guard_start).expect("stack limit is non-null")
    }
}

/// One `mmap`'d region holding `slots` stacks of one size.
struct Chunk {
    addr: usize,
    len: usize,
}

impl Chunk {
    /// Maps a chunk marked `VM_NOHUGEPAGE` (`MAP_STACK` on Linux >= 6.7,
    /// `MADV_NOHUGEPAGE` before). Besides keeping huge pages out of stacks,
    /// the flag keeps the kernel from merging a chunk with a neighbouring
    /// malloc arena (an anonymous read-write mapping too): glibc grows an
    /// arena with `mprotect`, which write-locks the merged area and made the
    /// page faults of every new stack in it wait (seen in `perf` as
    /// `rwsem_down_read_slowpath` under `exc_page_fault` while a million
    /// coroutines started).
    fn map(len: usize) -> io::Result<Chunk> {
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing touches no existing memory.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(mapping_error("mmap of a stack chunk", io::Error::last_os_error()));
        }
        // SAFETY: the mapping just made, which nothing uses yet; the advice
        // only changes the flag. It fails (harmlessly) without THP support.
        unsafe { libc::madvise(addr, len, libc::MADV_NOHUGEPAGE) };
        Ok(Chunk { addr: addr as usize, len })
    }

    /// Installs the guards of `count` neighbouring slots of `slot` bytes
    /// from `first` (each guard `len` bytes at its slot's start). With
    /// `MADV_GUARD_INSTALL`, all in one `process_madvise` (Linux >= 6.15 for
    /// `PIDFD_SELF`): one system call and one `mmap_lock` round for the batch
    /// instead of one each (~0.65 against ~1.35 us per guard measured here;
    /// the page faults of the starting workers also wait less for that
    /// lock). Otherwise, or if it is refused, one `install_guard` each. On
    /// failure, returns how many leading guards are in place, and the error.
    fn install_guards(first: usize, slot: usize, count: usize, len: usize) -> Result<(), (usize, io::Error)> {
        let mut done = 0;
        if count > 1
            && !GUARD_MADVISE_UNSUPPORTED.load(Ordering::Relaxed)
            && !PROCESS_MADVISE_UNSUPPORTED.load(Ordering::Relaxed)
        {
            let ranges: Vec<libc::iovec> = (0..count.min(IOV_MAX))
                .map(|i| libc::iovec { iov_base: (first + i * slot) as *mut libc::c_void, iov_len: len })
                .collect();
            // SAFETY: every range is a guard page of a slot of a chunk this
            // pool owns that no stack uses yet (as for `install_guard`);
            // `ranges` is a valid array of `ranges.len()` iovecs; the pidfd
            // names this process, whatever process this is (no fd to go
            // stale across a fork).
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_process_madvise,
                    PIDFD_SELF_PROCESS,
                    ranges.as_ptr(),
                    ranges.len(),
                    MADV_GUARD_INSTALL,
                    0,
                )
            };
            if rc >= 0 {
                done = rc as usize / len;
            } else {
                // Older kernels: no PIDFD_SELF (EBADF), or advice refused
                // for process_madvise (EINVAL); seccomp (EPERM, ENOSYS).
                let err = io::Error::last_os_error();
                if matches!(err.raw_os_error(), Some(libc::EBADF | libc::EINVAL | libc::ENOSYS | libc::EPERM))
                {
                    PROCESS_MADVISE_UNSUPPORTED.store(true, Ordering::Relaxed);
                }
            }
        }
        for i in done..count {
            Chunk::install_guard(first + i * slot, len).map_err(|err| (i, err))?;
        }
        Ok(())
    }

    /// Makes `[start, start + len)` (inside this chunk) fault on any access.
    fn install_guard(start: usize, len: usize) -> io::Result<()> {
        if !GUARD_MADVISE_UNSUPPORTED.load(Ordering::Relaxed) {
            // SAFETY: the range lies inside a mapping this pool owns and no
            // stack is using it yet; installing a guard only changes what an
            // access to those pages does.
            let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, MADV_GUARD_INSTALL) };
            if rc == 0 {
                return Ok(());
            }
            let err = io::Error::last_os_error();
            match err.raw_os_error() {
                // Kernels before 6.13 reject the unknown advice value.
                Some(libc::EINVAL) | Some(libc::ENOSYS) => {
                    GUARD_MADVISE_UNSUPPORTED.store(true, Ordering::Relaxed)
                }
                _ => return Err(mapping_error("madvise(MADV_GUARD_INSTALL)", err)),
            }
        }
        // SAFETY: as above; PROT_NONE on pages nobody uses.
        let rc = unsafe { libc::mprotect(start as *mut libc::c_void, len, libc::PROT_NONE) };
        if rc != 0 {
            return Err(mapping_error("mprotect of a stack guard page", io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: the pool drops chunks only after every stack carved from them
        // has been returned (see the module invariants), so nothing uses them.
        unsafe {
            libc::munmap(self.addr as *mut libc::c_void, self.len);
        }
    }
}

fn mapping_error(what: &str, err: io::Error) -> io::Error {
    io::Error::new(
        err.kind(),
        format!(
            "corio: could not allocate a coroutine stack ({what}: {err}); the process may have \
             run out of memory mappings (raise `sysctl vm.max_map_count`) or of address space \
             / memory (check `ulimit -v` and overcommit settings)"
        ),
    )
}

/// Free stacks of one size plus the chunk being carved.
#[derive(Default)]
struct SizeClass {
    /// Free stacks that may hold resident pages, least recently freed first
    /// (taken from the back, trimmed from the front).
    warm: VecDeque<Stack>,
    /// Free stacks with no resident page: never run, or trimmed.
    cold: Vec<Stack>,
    /// The fewest stacks `warm` held since the current trim window began.
    warm_low: usize,
    /// Next uncarved slot of the newest chunk: (address, slots left).
    carve_at: usize,
    carve_left: usize,
}

/// Does a stack guard cost a memory mapping of its own on this kernel?
/// False with `MADV_GUARD_INSTALL` (Linux >= 6.13: guards live inside one
/// chunk mapping), true with the `mprotect` fallback (each guard splits the
/// chunk: about two mappings per stack). Probed once on a scratch mapping.
pub(crate) fn guards_split_mappings() -> bool {
    static SPLITS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SPLITS.get_or_init(|| {
        if GUARD_MADVISE_UNSUPPORTED.load(Ordering::Relaxed) {
            return true;
        }
        let page = page_size();
        let Ok(chunk) = Chunk::map(2 * page) else { return true };
        // SAFETY: the first page of a scratch mapping that nothing uses.
        let rc = unsafe { libc::madvise(chunk.addr as *mut libc::c_void, page, MADV_GUARD_INSTALL) };
        rc != 0
    })
}

/// The kernel's limit on memory mappings per process.
pub(crate) fn max_map_count() -> usize {
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(65_530)
}

/// Free warm stacks of each size the pool keeps resident through a trim:
/// the watermark (one cache refill's worth; the caches keep their own).
pub(crate) const POOL_WARM_KEEP: usize = CACHE_BATCH;

/// The process-wide (per-runtime) stack allocator.
///
/// Workers keep a small private cache in front of it ([`StackCache`]), so the
/// lock here is taken once per batch, not once per spawn.
pub(crate) struct StackPool {
    classes: Mutex<HashMap<usize, SizeClass>>,
    chunks: Mutex<Vec<Chunk>>,
    guard_len: usize,
    /// Stacks carved out of chunks so far (for metrics).
    carved: AtomicUsize,
    /// Stacks trimmed so far, and the resident bytes that returned to the OS.
    trimmed_stacks: AtomicU64,
    trimmed_bytes: AtomicU64,
}

/// The pool's figures for `debug::Metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PoolStats {
    /// Stacks carved out of mappings so far.
    pub(crate) carved: usize,
    /// Free stacks in the pool, warm and cold.
    pub(crate) free: usize,
    /// Of those, the warm ones (their pages may be resident).
    pub(crate) warm: usize,
    /// Stacks trimmed so far.
    pub(crate) trimmed_stacks: u64,
    /// Resident bytes those trims returned to the OS.
    pub(crate) trimmed_bytes: u64,
}

impl StackPool {
    pub(crate) fn new() -> StackPool {
        StackPool {
            classes: Mutex::new(HashMap::new()),
            chunks: Mutex::new(Vec::new()),
            guard_len: page_size(),
            carved: AtomicUsize::new(0),
            trimmed_stacks: AtomicU64::new(0),
            trimmed_bytes: AtomicU64::new(0),
        }
    }

    /// Takes up to `want` stacks of `size` (already rounded) into `out`, warm
    /// ones first; returns an error only if not even one could be had.
    pub(crate) fn take(&self, size: usize, want: usize, out: &mut Vec<Stack>) -> io::Result<()> {
        let mut classes = self.classes.lock();
        let class = classes.entry(size).or_default();
        let mut got = 0;
        while got < want {
            if let Some(stack) = class.warm.pop_back() {
                class.warm_low = class.warm_low.min(class.warm.len());
                out.push(stack);
                got += 1;
                continue;
            }
            if let Some(stack) = class.cold.pop() {
                out.push(stack);
                got += 1;
                continue;
            }
            // Carve the rest from the current chunk (or a new one), guards
            // installed together: one system call for the batch.
            if class.carve_left == 0 {
                let slot = size + self.guard_len;
                let slots = (CHUNK_BYTES / slot).clamp(MIN_SLOTS_PER_CHUNK, MAX_SLOTS_PER_CHUNK);
                match Chunk::map(slots * slot) {
                    Ok(chunk) => {
                        class.carve_at = chunk.addr;
                        class.carve_left = slots;
                        self.chunks.lock().push(chunk);
                    }
                    Err(err) if got == 0 => return Err(err),
                    Err(_) => break,
                }
            }
            let slot = size + self.guard_len;
            let count = (want - got).min(class.carve_left);
            let first = class.carve_at;
            let installed = Chunk::install_guards(first, slot, count, self.guard_len);
            let done = match installed {
                Ok(()) => count,
                Err((0, err)) if got == 0 => return Err(err),
                Err((done, _)) => done,
            };
            class.carve_at += done * slot;
            class.carve_left -= done;
            self.carved.fetch_add(done, Ordering::Relaxed);
            out.extend((0..done).map(|i| Stack {
                guard_start: first + i * slot,
                size,
                guard_len: self.guard_len as u32,
                touched: false,
            }));
            got += done;
            if done < count {
                break; // a guard failed: the slots from there stay uncarved
            }
        }
        Ok(())
    }

    /// The pool's figures (takes its lock once).
    pub(crate) fn stats(&self) -> PoolStats {
        let (free, warm) = self
            .classes
            .lock()
            .values()
            .fold((0, 0), |(free, warm), c| (free + c.warm.len() + c.cold.len(), warm + c.warm.len()));
        PoolStats {
            carved: self.carved.load(Ordering::Relaxed),
            free,
            warm,
            trimmed_stacks: self.trimmed_stacks.load(Ordering::Relaxed),
            trimmed_bytes: self.trimmed_bytes.load(Ordering::Relaxed),
        }
    }

    /// Returns stacks to the shared free lists (warm or cold by
    /// [`Stack::touched`]).
    pub(crate) fn give_back(&self, stacks: impl Iterator<Item = Stack>) {
        let mut classes = self.classes.lock();
        let mut stacks = stacks.peekable();
        // Stacks come back in batches of one size: look the class up once
        // per run of equal sizes, not once per stack.
        while let Some(first) = stacks.next() {
            let size = first.size;
            let class = classes.entry(size).or_default();
            class.put(first);
            while let Some(stack) = stacks.next_if(|s| s.size == size) {
                class.put(stack);
            }
        }
    }
}

impl SizeClass {
    fn put(&mut self, stack: Stack) {
        if stack.touched {
            self.warm.push_back(stack);
        } else {
            self.cold.push(stack);
        }
    }
}

/// A worker's private cache of default-size stacks in front of the pool.
pub(crate) struct StackCache {
    free: Vec<Stack>,
    size: usize,
}

/// Stacks moved between a cache and the pool at a time.
const CACHE_BATCH: usize = 32;
/// A cache holding more than this returns a batch to the pool.
const CACHE_MAX: usize = 4 * CACHE_BATCH;

impl StackCache {
    pub(crate) fn new(size: usize) -> StackCache {
        StackCache { free: Vec::with_capacity(CACHE_MAX + 1), size }
    }

    pub(crate) fn get(&mut self, pool: &StackPool, size: usize) -> io::Result<Stack> {
        if size != self.size {
            let mut one = Vec::with_capacity(1);
            pool.take(size, 1, &mut one)?;
            return Ok(one.pop().expect("take returned Ok with a stack"));
        }
        if let Some(stack) = self.free.pop() {
            return Ok(stack);
        }
        pool.take(size, CACHE_BATCH, &mut self.free)?;
        Ok(self.free.pop().expect("take returned Ok with a stack"))
    }

    /// Stacks in the cache right now.
    pub(crate) fn len(&self) -> usize {
        self.free.len()
    }

    /// Takes back the stack of a coroutine that ran (so it is warm).
    pub(crate) fn put(&mut self, pool: &StackPool, mut stack: Stack) {
        stack.touched = true;
        if stack.size != self.size {
            pool.give_back(std::iter::once(stack));
            return;
        }
        self.free.push(stack);
        if self.free.len() > CACHE_MAX {
            let keep = self.free.len() - CACHE_BATCH;
            pool.give_back(self.free.drain(keep..));
        }
    }

    /// Hands every cached stack back (the worker is exiting).
    pub(crate) fn drain_into(&mut self, pool: &StackPool) {
        pool.give_back(self.free.drain(..));
    }
}

/// A stack from a process-wide pool, for unit tests of queue structures.
#[cfg(test)]
pub(crate) fn test_stack() -> Stack {
    use std::sync::OnceLock;
    static POOL: OnceLock<StackPool> = OnceLock::new();
    let pool = POOL.get_or_init(StackPool::new);
    let mut one = Vec::new();
    pool.take(round_stack_size(64 << 10).unwrap(), 1, &mut one).unwrap();
    one.pop().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_are_distinct_writable_and_reused() {
        let pool = StackPool::new();
        let size = round_stack_size(64 << 10).unwrap();
        let mut cache = StackCache::new(size);
        let a = cache.get(&pool, size).unwrap();
        let b = cache.get(&pool, size).unwrap();
        assert_ne!(a.guard_start, b.guard_start);
        for stack in [&a, &b] {
            let (_, guard_end) = stack.guard_range();
            // SAFETY: the usable region [guard_end, guard_end + size) is mapped
            // read-write and owned by this test.
            unsafe {
                std::ptr::write_bytes(guard_end as *mut u8, 0xAB, stack.size());
            }
        }
        let a_addr = a.guard_start;
        cache.put(&pool, a);
        let again = cache.get(&pool, size).unwrap();
        assert_eq!(again.guard_start, a_addr, "a freed stack is reused first");
    }

    /// Is the page at `addr` a guard marker, by the PM_GUARD_REGION bit (58)
    /// of /proc/self/pagemap? `None` if this kernel's pagemap does not show
    /// guards (before Linux 6.15) or guards are `mprotect`ed.
    pub(super) fn pagemap_guard(addr: usize) -> Option<bool> {
        use std::io::{Read, Seek, SeekFrom};
        static SHOWN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let read = |addr: usize| -> Option<bool> {
            let mut pagemap = std::fs::File::open("/proc/self/pagemap").ok()?;
            pagemap.seek(SeekFrom::Start((addr / page_size() * 8) as u64)).ok()?;
            let mut entry = [0u8; 8];
            pagemap.read_exact(&mut entry).ok()?;
            Some(u64::from_le_bytes(entry) >> 58 & 1 == 1)
        };
        let shown = *SHOWN.get_or_init(|| {
            // Probe: a guard installed on a scratch page, seen or not.
            let Ok(chunk) = Chunk::map(page_size()) else { return false };
            !guards_split_mappings()
                && Chunk::install_guard(chunk.addr, page_size()).is_ok()
                && read(chunk.addr) == Some(true)
        });
        if shown {
            read(addr)
        } else {
            None
        }
    }

    #[test]
    fn guards_are_installed_in_batches_and_one_by_one() {
        let pool = StackPool::new();
        let size = round_stack_size(16 << 10).unwrap();
        let mut stacks = Vec::new();
        pool.take(size, 40, &mut stacks).unwrap(); // one batch (process_madvise)
        pool.take(size, 1, &mut stacks).unwrap(); // one guard (madvise)
        assert_eq!(pool.stats().carved, 41);
        for stack in &stacks {
            let (start, end) = stack.guard_range();
            if pagemap_guard(start).is_none() {
                return; // this kernel cannot show it
            }
            assert_eq!(pagemap_guard(start), Some(true), "guard page of {stack:?}");
            assert_eq!(pagemap_guard(end), Some(false), "first usable page of {stack:?}");
        }
    }

    #[test]
    fn sizes_round_up_to_pages_with_a_floor() {
        assert_eq!(round_stack_size(1).unwrap(), 16 << 10);
        assert_eq!(round_stack_size((64 << 10) + 1).unwrap(), (64 << 10) + page_size());
        assert_eq!(round_stack_size(usize::MAX).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
