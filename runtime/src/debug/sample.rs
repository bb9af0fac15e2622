//! Capturing stacks: the instruction pointers of another thread's stack (by
//! signalling it, for the stall detector) and of the calling thread's.
//!
//! [`sample_thread`] sends [`SAMPLE_SIGNAL`] to the target thread with
//! `pthread_kill`; the handler, running on that thread, walks the interrupted
//! stack with `backtrace::trace_unsynchronized` into a process-wide buffer of
//! atomics and publishes completion through [`STATE`]; the caller polls it with
//! short sleeps for at most `max_wait`.
//!
//! # Invariants
//!
//! - One sample at a time: callers are serialised by [`SAMPLER`], and only the
//!   caller holding it moves [`STATE`] out of `IDLE`.
//! - The buffer ([`IPS`], [`LEN`], [`RIP`]) is written only by the handler that
//!   won the `REQUESTED -> RUNNING` exchange of [`STATE`], and read only by the
//!   caller after it saw `DONE` (acquire, pairing with the handler's release).
//!   [`STATE`] carries a sequence number, so a late signal of an abandoned
//!   request can never win a later one (it compares the whole word).
//! - A handler that outlives its caller's `max_wait` (the caller marks the
//!   request `ABANDONED`) returns [`STATE`] to `IDLE` itself when it ends; until
//!   then every new sample returns `None` at once, so the buffer is never
//!   shared.
//!
//! # Async-signal-safety
//!
//! The handler allocates nothing, takes no lock of ours and touches only
//! atomics, `errno` (saved and restored) and the unwinder. Unwinding from a
//! signal handler is not async-signal-safe by POSIX's letter; with libgcc's
//! unwinder (what `backtrace` uses on Linux) it holds in practice because:
//! the one-time initialisation of libgcc (its DWARF register table, under
//! `pthread_once`) is done at install by a warm-up `backtrace::trace` on a
//! normal thread; looking up the unwind tables goes through glibc's
//! `_dl_find_object` (glibc >= 2.35, libgcc >= 12: lock-free, made for this)
//! or else `dl_iterate_phdr`, whose loader lock is recursive (a thread
//! interrupted inside it re-enters it); and `trace_unsynchronized` skips
//! `backtrace`'s own global lock, which the interrupted thread may hold. The
//! residual risk is an old libgcc whose registered-frames mutex the
//! interrupted thread holds (it was itself unwinding a panic): the handler
//! then blocks, the caller times out, and that thread — already stuck, which
//! is why it is being sampled — stays stuck. Walking frame pointers instead
//! would be simpler but is not sound here: Rust code omits frame pointers by
//! default, so the chain would be garbage to validate against stack bounds
//! the handler does not know.
//!
//! # Signal and flags
//!
//! [`SAMPLE_SIGNAL`] is `SIGURG`, as Go uses for preemption: its default
//! action is to ignore it, so a stray or late one is harmless; nothing in a
//! normal process uses it (only out-of-band TCP data, and only after
//! `F_SETOWN`); debuggers pass it through without stopping; and libc keeps no
//! claim on it (unlike `SIGRTMIN`'s first slots). A signal that is not a
//! request of ours goes to the handler that was there before (saved at
//! install). The flags are `SA_SIGINFO | SA_RESTART`: `SA_RESTART` so that the
//! interrupted thread's restartable blocking calls (`read`, `write`, `accept`,
//! `futex` waits...) resume instead of failing with `EINTR` (`nanosleep` and
//! `epoll_wait` report `EINTR` whatever the flags; std's sleep and corio's
//! poller retry). No `SA_ONSTACK`: the unwinder walks the interrupted stack
//! from the signal frame on either stack, and the interrupted stack (a 64 KiB
//! coroutine stack by default, 16 KiB at least, or a thread's stack) has more
//! room than std's 8 KiB alternate stack for the kernel's signal frame (1-3
//! KiB), the handler and libgcc's frame state (measured: about 1.1 KiB from
//! the handler's entry to the trace callback in a debug build).

use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

/// The signal that asks a thread for its stack (see the module doc).
const SAMPLE_SIGNAL: libc::c_int = libc::SIGURG;
/// Frames returned at most.
const MAX_FRAMES: usize = 64;
/// Frames the handler records: `MAX_FRAMES` plus room for its own frames and
/// the signal trampoline, cut by the caller.
const RAW_FRAMES: usize = MAX_FRAMES + 32;

const IDLE: u64 = 0;
const REQUESTED: u64 = 1;
const RUNNING: u64 = 2;
const DONE: u64 = 3;
const ABANDONED: u64 = 4;

/// `seq << 8 | phase`: the phase of the current request and its number.
static STATE: AtomicU64 = AtomicU64::new(IDLE);
/// The `pthread_t` the current request is for.
static TARGET: AtomicUsize = AtomicUsize::new(0);
/// The instruction pointers the handler found, innermost first.
static IPS: [AtomicUsize; RAW_FRAMES] = [const { AtomicUsize::new(0) }; RAW_FRAMES];
/// How many of `IPS` are set.
static LEN: AtomicUsize = AtomicUsize::new(0);
/// The interrupted instruction's address (from the signal's context).
static RIP: AtomicUsize = AtomicUsize::new(0);
/// Serialises samplers.
static SAMPLER: Mutex<()> = Mutex::new(());
/// The handler of `SAMPLE_SIGNAL` before ours, to chain to.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

fn word(seq: u64, phase: u64) -> u64 {
    (seq << 8) | phase
}

/// The instruction pointers of `thread`'s stack at the moment it takes the
/// signal, innermost first, at most 64; `None` if the handler could not be
/// installed, the thread did not answer within `max_wait` (signals blocked,
/// gone, or the previous sample's handler still running there).
///
/// The first address is one past the interrupted instruction and the others
/// are return addresses, so resolving `ip - 1` (what `backtrace::resolve`
/// does) lands inside the right instruction for every frame.
///
/// # Safety
///
/// `thread` must not have been joined or detached-and-exited: `pthread_kill`
/// on a thread id whose lifetime ended is undefined behaviour (a thread that
/// exited but is not joined yet is fine, and gives `None`).
pub(crate) unsafe fn sample_thread(thread: libc::pthread_t, max_wait: Duration) -> Option<Vec<usize>> {
    // SAFETY: pthread_self has no precondition.
    if thread == unsafe { libc::pthread_self() } {
        return Some(capture_current(0, MAX_FRAMES));
    }
    if !install() {
        return None;
    }
    let _serial = SAMPLER.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let state = STATE.load(Ordering::Acquire);
    if state & 0xff != IDLE {
        // A handler from an abandoned sample still runs (see the invariants).
        return None;
    }
    let seq = (state >> 8).wrapping_add(1) & (u64::MAX >> 8);
    TARGET.store(thread as usize, Ordering::Relaxed);
    STATE.store(word(seq, REQUESTED), Ordering::Release);
    // SAFETY: the caller guarantees `thread` is a live (or exited, unjoined)
    // thread id; the handler for the signal is installed.
    let rc = unsafe { libc::pthread_kill(thread, SAMPLE_SIGNAL) };
    let deadline = Instant::now() + if rc == 0 { max_wait } else { Duration::ZERO };
    let mut pause = Duration::from_micros(20);
    loop {
        if STATE.load(Ordering::Acquire) == word(seq, DONE) {
            return Some(take(seq));
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(1));
    }
    match STATE.compare_exchange(word(seq, REQUESTED), word(seq, IDLE), Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => None,
        Err(now) if now == word(seq, DONE) => Some(take(seq)),
        Err(_) => {
            // RUNNING: give the buffer to the handler, which frees it when done.
            match STATE.compare_exchange(
                word(seq, RUNNING),
                word(seq, ABANDONED),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => None,
                Err(_) => Some(take(seq)), // it finished in between: DONE
            }
        }
    }
}

/// Reads the buffer of request `seq` (seen `DONE`) and frees it.
fn take(seq: u64) -> Vec<usize> {
    let len = LEN.load(Ordering::Relaxed).min(RAW_FRAMES);
    let rip = RIP.load(Ordering::Relaxed);
    let raw: Vec<usize> = IPS[..len].iter().map(|ip| ip.load(Ordering::Relaxed)).collect();
    STATE.store(word(seq, IDLE), Ordering::Release);
    // Drop the handler's frames and the trampoline: the interrupted frame is
    // the one whose address is exactly the interrupted instruction's. If it is
    // not found, keep everything (`symbolize::trim` still drops them by name).
    match raw.iter().position(|&ip| ip == rip) {
        Some(i) => {
            let mut ips: Vec<usize> = raw[i..].iter().copied().take(MAX_FRAMES).collect();
            ips[0] += 1;
            ips
        }
        None => raw.into_iter().take(MAX_FRAMES).collect(),
    }
}

/// The instruction pointers (return addresses) of the calling thread's stack,
/// innermost first: the first is in the caller of `capture_current`, after
/// skipping `skip` more frames; at most `max`.
#[inline(never)]
pub(crate) fn capture_current(skip: usize, max: usize) -> Vec<usize> {
    let this = capture_current as *const () as usize;
    let mut raw = Vec::new();
    let mut own = None;
    backtrace::trace(|frame| {
        if own.is_none() && frame.symbol_address() as usize == this {
            own = Some(raw.len());
        }
        raw.push(frame.ip() as usize);
        raw.len() < max.saturating_add(skip).saturating_add(RAW_FRAMES)
    });
    let first = own.map_or(0, |i| i + 1) + skip;
    raw.into_iter().skip(first).take(max).collect()
}

/// Installs the handler once (after warming the unwinder up); false if
/// `sigaction` failed.
fn install() -> bool {
    static ONCE: Once = Once::new();
    static OK: AtomicUsize = AtomicUsize::new(0);
    ONCE.call_once(|| {
        // Warm-up: any lazy initialisation of the unwinder runs here, not in
        // the handler.
        backtrace::trace(|_| true);
        // SAFETY: sigaction with a null new action only reads the old one
        // into a zeroed, properly sized struct.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::sigaction(SAMPLE_SIGNAL, std::ptr::null(), &mut old) } != 0 {
            return;
        }
        let _ = PREVIOUS.set(old);
        // SAFETY: a zeroed sigaction is a valid start; we set every field used.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = handler as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        // SAFETY: `sa_mask` is ours to initialise; `handler` is an
        // async-signal-safe `extern "C"` handler of the SA_SIGINFO shape.
        let ok = unsafe {
            libc::sigemptyset(&mut new.sa_mask);
            libc::sigaction(SAMPLE_SIGNAL, &new, std::ptr::null_mut()) == 0
        };
        OK.store(ok as usize, Ordering::Release);
    });
    OK.load(Ordering::Acquire) == 1
}

/// The signal handler (see the module doc for what it may do).
extern "C" fn handler(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    let errno = unsafe { *libc::__errno_location() };
    let state = STATE.load(Ordering::Acquire);
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t; pthread_self
    // and getpid only read this thread's / process's id.
    let ours = !info.is_null()
        && unsafe { (*info).si_code == libc::SI_TKILL && (*info).si_pid() == libc::getpid() }
        && state & 0xff == REQUESTED
        && TARGET.load(Ordering::Relaxed) == unsafe { libc::pthread_self() } as usize
        && STATE
            .compare_exchange(state, (state & !0xff) | RUNNING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
    if ours {
        // SAFETY: with SA_SIGINFO the third argument is the ucontext_t of the
        // interrupted code, valid for the duration of the handler.
        let rip =
            unsafe { (*(context as *const libc::ucontext_t)).uc_mcontext.gregs[libc::REG_RIP as usize] };
        RIP.store(rip as usize, Ordering::Relaxed);
        let mut len = 0;
        // SAFETY: trace_unsynchronized is unsafe only for lacking backtrace's
        // global lock, which matters for Windows' dbghelp; on Linux it calls
        // libgcc's thread-safe _Unwind_Backtrace. The closure allocates nothing.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                IPS[len].store(frame.ip() as usize, Ordering::Relaxed);
                len += 1;
                len < RAW_FRAMES
            });
        }
        LEN.store(len, Ordering::Relaxed);
        let running = (state & !0xff) | RUNNING;
        if STATE
            .compare_exchange(running, (state & !0xff) | DONE, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // ABANDONED: the caller gave up; free the buffer for the next one.
            STATE.store((state & !0xff) | IDLE, Ordering::Release);
        }
    } else {
        chain(signal, info, context);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Passes a signal that is not a request of ours to the previous handler.
fn chain(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    let Some(previous) = PREVIOUS.get() else { return };
    let action = previous.sa_sigaction;
    if action == libc::SIG_DFL || action == libc::SIG_IGN {
        return; // SIGURG's default action is to ignore it.
    }
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has
        // this signature and expects exactly these arguments.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
            unsafe { std::mem::transmute(action) };
        f(signal, info, context);
    } else {
        // SAFETY: installed without SA_SIGINFO: a plain `fn(int)` handler.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(action) };
        f(signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debug::symbolize::symbolize;
    use std::os::unix::thread::JoinHandleExt;
    use std::sync::atomic::AtomicBool;
    use std::sync::{mpsc, Arc};

    /// Runs `f` on a thread; panics if it takes longer than `secs`.
    fn with_timeout<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        let body = std::thread::spawn(move || tx.send(f()).unwrap());
        match rx.recv_timeout(Duration::from_secs(secs)) {
            Ok(value) => value,
            Err(mpsc::RecvTimeoutError::Disconnected) => std::panic::resume_unwind(body.join().unwrap_err()),
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("test timed out after {secs} s"),
        }
    }

    #[inline(never)]
    fn spin_here(stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            std::hint::black_box(0u64);
        }
    }

    #[inline(never)]
    fn sleep_here(stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `body` on a thread; returns its stop flag and handle.
    fn start(body: fn(&AtomicBool)) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            tx.send(()).unwrap();
            body(&flag);
        });
        rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        (stop, handle)
    }

    fn names(ips: &[usize]) -> Vec<String> {
        symbolize(ips).into_iter().map(|f| f.function).collect()
    }

    #[test]
    fn samples_a_spinning_thread_a_hundred_times() {
        with_timeout(120, || {
            let (stop, handle) = start(spin_here);
            for i in 0..100 {
                // SAFETY: the thread is joined only below.
                let ips = unsafe { sample_thread(handle.as_pthread_t(), Duration::from_secs(5)) };
                let ips = ips.unwrap_or_else(|| panic!("sample {i} timed out"));
                assert!(!ips.is_empty() && ips.len() <= MAX_FRAMES);
                if i % 25 == 0 {
                    let names = names(&ips);
                    assert!(names.iter().any(|n| n.ends_with("spin_here")), "{names:#?}");
                    assert!(!names.iter().any(|n| n.contains("sample::handler")), "{names:#?}");
                }
            }
            stop.store(true, Ordering::Relaxed);
            handle.join().unwrap();
        });
    }

    /// `std::thread::sleep`, which recent toolchains name by its defining
    /// module (`std::thread::functions::sleep`).
    fn is_std_sleep(name: &str) -> bool {
        name.starts_with("std::thread::") && name.ends_with("::sleep")
    }

    #[test]
    fn samples_a_sleeping_thread() {
        with_timeout(60, || {
            let (stop, handle) = start(sleep_here);
            let mut seen = Vec::new();
            for _ in 0..20 {
                // SAFETY: the thread is joined only below.
                let ips = unsafe { sample_thread(handle.as_pthread_t(), Duration::from_secs(5)) };
                seen = names(&ips.expect("no sample"));
                if seen.iter().any(|n| is_std_sleep(n)) {
                    break;
                }
            }
            stop.store(true, Ordering::Relaxed);
            handle.join().unwrap();
            assert!(seen.iter().any(|n| n.ends_with("sleep_here")), "{seen:#?}");
            assert!(seen.iter().any(|n| is_std_sleep(n)), "{seen:#?}");
            assert!(seen.iter().any(|n| n.contains("nanosleep")), "{seen:#?}");
        });
    }

    #[test]
    fn an_exited_thread_gives_none() {
        with_timeout(60, || {
            let handle = std::thread::spawn(|| {});
            while !handle.is_finished() {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(50));
            // SAFETY: exited but not joined yet.
            let ips = unsafe { sample_thread(handle.as_pthread_t(), Duration::from_millis(100)) };
            assert_eq!(ips, None);
            handle.join().unwrap();
        });
    }

    #[inline(never)]
    fn capture_here(skip: usize) -> Vec<usize> {
        let ips = capture_current(skip, 64);
        std::hint::black_box(ips)
    }

    #[test]
    fn captures_the_current_stack() {
        let names0 = names(&capture_here(0));
        assert!(names0[0].ends_with("capture_here"), "{names0:#?}");
        assert!(names0.iter().any(|n| n.ends_with("captures_the_current_stack")), "{names0:#?}");
        let names1 = names(&capture_here(1));
        assert!(!names1.iter().any(|n| n.ends_with("capture_here")), "{names1:#?}");
        assert!(names1[0].ends_with("captures_the_current_stack"), "{names1:#?}");
        assert_eq!(capture_current(0, 3).len(), 3);
    }
}
