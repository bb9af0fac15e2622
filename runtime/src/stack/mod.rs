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
//! Invariants:
//! - A slot's guard is installed before the slot is first handed out, and stays.
//! - A [`Stack`] is owned by exactly one coroutine (or a free list) at a time.
//! - Chunks are unmapped only when the [`StackPool`] is dropped, which the runtime
//!   does after every coroutine (and so every [`Stack`]) is gone.
//! - Pages a coroutine touched stay resident when its stack is reused: reuse costs
//!   ~16 ns against ~7 us for a fresh mapping plus ~2.4 us per first-touched page.

pub(crate) mod overflow;

use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};

/// `MADV_GUARD_INSTALL` from Linux 6.13 (`include/uapi/asm-generic/mman-common.h`).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Chunks aim at this much address space (reserved, not committed).
const CHUNK_BYTES: usize = 64 << 20;
const MIN_SLOTS_PER_CHUNK: usize = 4;
const MAX_SLOTS_PER_CHUNK: usize = 1024;

/// Set once `MADV_GUARD_INSTALL` is found unsupported, so later guards go
/// straight to `mprotect`.
static GUARD_MADVISE_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

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
    guard_len: usize,
    /// Usable bytes above the guard.
    size: usize,
}

impl Stack {
    /// Usable size in bytes (the guard page excluded).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The guard page's address range `[start, end)`, for the overflow handler.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.guard_start, self.guard_start + self.guard_len)
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
        NonZeroUsize::new(self.guard_start + self.guard_len + self.size).expect("stack base is non-null")
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
    fn map(len: usize) -> io::Result<Chunk> {
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing touches no existing memory.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(mapping_error("mmap of a stack chunk", io::Error::last_os_error()));
        }
        Ok(Chunk { addr: addr as usize, len })
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
    free: Vec<Stack>,
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

/// The process-wide (per-runtime) stack allocator.
///
/// Workers keep a small private cache in front of it ([`StackCache`]), so the
/// lock here is taken once per batch, not once per spawn.
pub(crate) struct StackPool {
    classes: Mutex<HashMap<usize, SizeClass>>,
    chunks: Mutex<Vec<Chunk>>,
    guard_len: usize,
    /// Stacks carved out of chunks so far (for metrics).
    carved: std::sync::atomic::AtomicUsize,
}

impl StackPool {
    pub(crate) fn new() -> StackPool {
        StackPool {
            classes: Mutex::new(HashMap::new()),
            chunks: Mutex::new(Vec::new()),
            guard_len: page_size(),
            carved: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Takes up to `want` stacks of `size` (already rounded) into `out`;
    /// returns an error only if not even one could be had.
    pub(crate) fn take(&self, size: usize, want: usize, out: &mut Vec<Stack>) -> io::Result<()> {
        let mut classes = self.classes.lock();
        let class = classes.entry(size).or_default();
        let mut got = 0;
        while got < want {
            if let Some(stack) = class.free.pop() {
                out.push(stack);
                got += 1;
                continue;
            }
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
            let guard_start = class.carve_at;
            match Chunk::install_guard(guard_start, self.guard_len) {
                Ok(()) => {}
                Err(err) if got == 0 => return Err(err),
                Err(_) => break,
            }
            class.carve_at += size + self.guard_len;
            class.carve_left -= 1;
            self.carved.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            out.push(Stack { guard_start, guard_len: self.guard_len, size });
            got += 1;
        }
        Ok(())
    }

    /// (stacks carved from mappings so far, stacks in the shared free lists).
    pub(crate) fn stats(&self) -> (usize, usize) {
        let free = self.classes.lock().values().map(|class| class.free.len()).sum();
        (self.carved.load(std::sync::atomic::Ordering::Relaxed), free)
    }

    /// Returns stacks to the shared free list.
    pub(crate) fn give_back(&self, stacks: impl Iterator<Item = Stack>) {
        let mut classes = self.classes.lock();
        let mut stacks = stacks.peekable();
        // Stacks come back in batches of one size: look the class up once
        // per run of equal sizes, not once per stack.
        while let Some(first) = stacks.next() {
            let size = first.size;
            let class = classes.entry(size).or_default();
            class.free.push(first);
            while let Some(stack) = stacks.next_if(|s| s.size == size) {
                class.free.push(stack);
            }
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

    pub(crate) fn put(&mut self, pool: &StackPool, stack: Stack) {
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

    #[test]
    fn sizes_round_up_to_pages_with_a_floor() {
        assert_eq!(round_stack_size(1).unwrap(), 16 << 10);
        assert_eq!(round_stack_size((64 << 10) + 1).unwrap(), (64 << 10) + page_size());
        assert_eq!(round_stack_size(usize::MAX).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }
}
