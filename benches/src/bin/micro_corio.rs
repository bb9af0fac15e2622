//! corio's side of the scheduler micro-benchmarks (see `corio_benches::micro`), with the
//! system allocator (glibc malloc).

fn main() {
    corio_benches::micro::run("corio");
}
