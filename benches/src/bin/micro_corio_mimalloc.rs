//! The same micro-benchmarks with mimalloc as the global allocator. Spawning allocates a
//! coroutine on one worker and, after a steal, frees it on another; glibc malloc handles that
//! cross-thread pattern poorly, and this run separates the runtime's own cost from it (a
//! corio user picks the allocator, as Go's runtime brings its own).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    corio_benches::micro::run("corio-mimalloc");
}
