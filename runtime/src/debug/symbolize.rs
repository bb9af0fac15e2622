//! Turning instruction pointers into [`Frame`]s, and trimming corio's own
//! machinery off a coroutine's stack so that a user sees their code.
//!
//! [`symbolize`] gives one frame per function, inlined ones included
//! (innermost first), named without the `::h0123abcd` hash.
//!
//! [`trim`] works on a stack innermost first and applies three rules:
//!
//! 1. **Outer cut.** The innermost frame of the coroutine's root
//!    (`corio::task::root::run_and_complete`) and everything outside it (the
//!    context switch, the worker loop, the thread start) go; on a plain thread,
//!    std's `__rust_begin_short_backtrace` marker and everything outside it go
//!    (as std's short backtraces do). Then the run of glue just inside that cut
//!    goes: `std::panicking::`, `std::panic::`, `core::panic::`,
//!    `core::ops::function::`, `__rust_try` and `corio::coroutine::` frames
//!    (spawn's closures), up to the first other frame (the user's closure).
//! 2. **Inner cut.** The leading run of machinery goes: the sampler and the
//!    unwinder (`corio::debug::`, `backtrace::`, `_Unwind_`, `__restore_rt`
//!    the signal trampoline), the park path (`corio::sched::`,
//!    `corio::task::`, `corio::stack::`, `corio::coroutine::park`,
//!    `corosensei::`) and corio's public API, **except the outermost public-API
//!    frame of that run**, which says what the user called.
//! 3. If the inner cut would leave nothing and the run held no public-API frame
//!    (the stack stops inside corio's machinery: a corio bug), the run stays.
//!
//! Examples (innermost first, after the outer cut):
//!
//! - `corosensei::..`, `corio::sched::park::park_until`, `corio::time::sleep_until`,
//!   `corio::time::sleep`, `app::tick`, `app::main::{{closure}}` becomes
//!   `corio::time::sleep`, `app::tick`, `app::main::{{closure}}`.
//! - `..`, `corio::chan::Receiver<T>::recv_inner`, `corio::chan::Receiver<T>::recv`,
//!   `app::consume` becomes `corio::chan::Receiver<T>::recv`, `app::consume`.
//! - `<corio::net::tcp::TcpStream as std::io::Read>::read` counts as public
//!   API (a leading `<` or `<&` is ignored when matching).
//! - `clock_nanosleep`, `std::thread::sleep`, `app::stuck` stays as it is: the
//!   rules never remove std or user frames inside the outer cut, nor corio frames
//!   after the first non-corio one (`corio::sync::OnceLock::get_or_init` calling
//!   a user closure that blocks keeps every frame).
//!
//! Invariant: matching is by demangled name prefix only (no addresses), so the
//! rules hold for any build that keeps symbol names.

use crate::debug::Frame;

/// One frame per function at each address, inlined functions included,
/// innermost first; `"??"` when an address has no symbol.
pub(crate) fn symbolize(ips: &[usize]) -> Vec<Frame> {
    let mut frames = Vec::with_capacity(ips.len());
    for &ip in ips {
        let before = frames.len();
        backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
            frames.push(Frame {
                function: symbol.name().map_or_else(|| "??".to_string(), |name| format!("{name:#}")),
                file: symbol.filename().map(|path| path.display().to_string()),
                line: symbol.lineno(),
            });
        });
        if frames.len() == before {
            frames.push(Frame { function: "??".to_string(), file: None, line: None });
        }
    }
    frames
}

/// Removes corio's machinery from a stack, innermost first (see the module
/// doc for the rules).
pub(crate) fn trim(mut frames: Vec<Frame>) -> Vec<Frame> {
    // 1. Outer cut: the root frame or std's thread-start marker.
    if let Some(root) = frames.iter().position(|f| is_outer_boundary(&f.function)) {
        frames.truncate(root);
        while frames.last().is_some_and(|f| is_glue(&f.function)) {
            frames.pop();
        }
    }
    // 2. Inner cut: the leading run of machinery and public API.
    let run = frames.iter().take_while(|f| is_machinery(&f.function) || is_public_api(&f.function)).count();
    let keep_from = match frames[..run].iter().rposition(|f| is_public_api(&f.function)) {
        Some(api) => api,
        None if run == frames.len() => 0, // 3. nothing but machinery: keep it
        None => run,
    };
    frames.drain(..keep_from);
    frames
}

/// The name without a leading `<` or `<&` / `<&mut ` (trait impls).
fn path(name: &str) -> &str {
    let name = name.strip_prefix('<').unwrap_or(name);
    let name = name.strip_prefix('&').unwrap_or(name);
    name.strip_prefix("mut ").unwrap_or(name)
}

fn is_outer_boundary(name: &str) -> bool {
    let name = path(name);
    name.starts_with("corio::task::root::run_and_complete") || name.ends_with("__rust_begin_short_backtrace")
}

fn is_glue(name: &str) -> bool {
    let name = path(name);
    [
        "std::panicking::",
        "std::panic::",
        "core::panic::",
        "core::ops::function::",
        "__rust_try",
        "corio::coroutine::",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

/// Frames of corio's sampler, the unwinder, the signal trampoline and the
/// park path.
fn is_machinery(name: &str) -> bool {
    let name = path(name);
    [
        "corio::debug::",
        "backtrace::",
        "_Unwind_",
        "__restore_rt",
        "corio::sched::",
        "corio::task::",
        "corio::stack::",
        "corio::coroutine::park",
        "corosensei::",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

/// A corio frame that is not machinery: part of the public API.
fn is_public_api(name: &str) -> bool {
    path(name).starts_with("corio::") && !is_machinery(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(names: &[&str]) -> Vec<Frame> {
        names.iter().map(|n| Frame { function: n.to_string(), file: None, line: None }).collect()
    }

    fn trimmed(names: &[&str]) -> Vec<String> {
        trim(stack(names)).into_iter().map(|f| f.function).collect()
    }

    const OUTER: &[&str] = &[
        "app::main::{{closure}}",
        "core::ops::function::FnOnce::call_once",
        "std::panicking::try::do_call",
        "__rust_try",
        "std::panicking::try",
        "std::panic::catch_unwind",
        "corio::coroutine::Builder::spawn::{{closure}}",
        "corio::task::root::run_and_complete",
        "corosensei::coroutine::on_stack",
        "corio::sched::worker::run",
        "std::sys::backtrace::__rust_begin_short_backtrace",
        "std::sys::pal::unix::thread::Thread::new::thread_start",
        "clone3",
    ];

    fn with_outer(inner: &[&'static str]) -> Vec<&'static str> {
        let mut all = inner.to_vec();
        all.extend_from_slice(OUTER);
        all
    }

    #[test]
    fn keeps_the_outermost_public_call_of_the_park_path() {
        let names = with_outer(&[
            "corosensei::coroutine::Yielder<Input,Yield>::suspend",
            "corio::sched::park::park_until",
            "corio::time::sleep_until",
            "corio::time::sleep",
            "app::tick",
        ]);
        assert_eq!(trimmed(&names), ["corio::time::sleep", "app::tick", "app::main::{{closure}}"]);
    }

    #[test]
    fn trait_impls_and_generics_count_as_public_api() {
        let names = with_outer(&[
            "corio::sched::park::park_current",
            "corio::net::tcp::TcpStream::read_inner",
            "<corio::net::tcp::TcpStream as std::io::Read>::read",
            "app::serve",
        ]);
        assert_eq!(
            trimmed(&names),
            ["<corio::net::tcp::TcpStream as std::io::Read>::read", "app::serve", "app::main::{{closure}}"]
        );
        let names = with_outer(&["corio::coroutine::park", "corio::chan::Receiver<T>::recv", "app::consume"]);
        assert_eq!(
            trimmed(&names),
            ["corio::chan::Receiver<T>::recv", "app::consume", "app::main::{{closure}}"]
        );
    }

    #[test]
    fn drops_the_sampler_and_keeps_std_and_user_frames() {
        let names = with_outer(&[
            "backtrace::backtrace::libunwind::trace",
            "corio::debug::sample::handler",
            "__restore_rt",
            "clock_nanosleep",
            "std::thread::sleep",
            "corio::sync::OnceLock<T>::get_or_init::{{closure}}",
            "app::stuck",
        ]);
        let kept = trimmed(&names);
        assert_eq!(
            kept,
            [
                "clock_nanosleep",
                "std::thread::sleep",
                "corio::sync::OnceLock<T>::get_or_init::{{closure}}",
                "app::stuck",
                "app::main::{{closure}}",
            ]
        );
    }

    #[test]
    fn a_plain_thread_stops_at_the_short_backtrace_marker() {
        let names = [
            "app::spin",
            "app::worker::{{closure}}",
            "std::sys::backtrace::__rust_begin_short_backtrace",
            "std::thread::Builder::spawn_unchecked_::{{closure}}",
            "clone3",
        ];
        assert_eq!(trimmed(&names), ["app::spin", "app::worker::{{closure}}"]);
    }

    #[test]
    fn a_stack_of_only_machinery_is_kept() {
        let names = [
            "corosensei::switch",
            "corio::sched::park::park_current",
            "corio::task::root::run_and_complete",
            "corio::sched::worker::run",
        ];
        assert_eq!(trimmed(&names), ["corosensei::switch", "corio::sched::park::park_current"]);
        assert!(trim(Vec::new()).is_empty());
    }

    #[test]
    fn symbolizes_a_known_function() {
        let ips = crate::debug::sample::capture_current(0, 8);
        let frames = symbolize(&ips);
        let me =
            frames.iter().find(|f| f.function.ends_with("symbolizes_a_known_function")).expect("own frame");
        assert!(!me.function.contains("::h"), "{me:?}");
        assert!(me.file.as_deref().is_some_and(|f| f.ends_with("symbolize.rs")), "{me:?}");
        assert!(me.line.is_some());
        assert_eq!(symbolize(&[1]), [Frame { function: "??".into(), file: None, line: None }]);
    }
}
