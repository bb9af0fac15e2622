//! Stack-overflow reporting: turns a fault on a coroutine's guard page into
//! `corio: coroutine <id> "<name>" overflowed its <size>-byte stack`, like Go's
//! "goroutine stack exceeds limit", instead of a bare SIGSEGV.
//!
//! How: a `SIGSEGV`/`SIGBUS` handler, installed once per process with
//! `SA_ONSTACK` (it must run on the signal stack: the faulting stack is full).
//! Before a worker resumes a coroutine it publishes that coroutine's guard range
//! and identity in thread-locals ([`enter`]); the handler compares the fault
//! address with that range. A hit prints the message and aborts; anything else is
//! passed to the handler that was installed before ours (Rust's std handler,
//! which reports overflows of the thread's own stack), or to the default action.
//!
//! Invariants:
//! - The thread-locals are `const`-initialised `Cell`s of plain data: reading
//!   them in a signal handler allocates nothing and runs no lazy initialiser.
//! - Every worker thread has an alternate signal stack ([`ensure_signal_stack`]).
//! - The handler only reads memory owned by the coroutine that is running on
//!   this thread, which cannot be freed while it runs.

use std::cell::Cell;
use std::sync::Once;

/// What the handler needs to know about the coroutine running on this thread.
#[derive(Clone, Copy)]
pub(crate) struct RunningCoroutine {
    pub(crate) guard_start: usize,
    pub(crate) guard_end: usize,
    pub(crate) stack_size: usize,
    pub(crate) id: u64,
    /// Pointer and length of the coroutine's name (empty when unnamed); the
    /// name's `String` outlives the run.
    pub(crate) name_ptr: *const u8,
    pub(crate) name_len: usize,
}

thread_local! {
    static RUNNING: Cell<Option<RunningCoroutine>> = const { Cell::new(None) };
}

/// Publishes the coroutine about to run on this thread.
pub(crate) fn enter(running: RunningCoroutine) {
    RUNNING.with(|r| r.set(Some(running)));
}

/// Clears it when the coroutine switches away.
pub(crate) fn leave() {
    RUNNING.with(|r| r.set(None));
}

static INSTALL: Once = Once::new();
/// The handlers that were installed before ours, one per signal, to chain to.
static mut PREVIOUS_SEGV: Option<libc::sigaction> = None;
static mut PREVIOUS_BUS: Option<libc::sigaction> = None;

/// Installs the process-wide handler (idempotent).
pub(crate) fn install_handler() {
    INSTALL.call_once(|| {
        // SAFETY: `Once` serialises this block, so nothing else writes the
        // statics; `install_for` writes each one before our handler (their
        // only reader) can run for that signal.
        unsafe {
            install_for(libc::SIGSEGV, &raw mut PREVIOUS_SEGV);
            install_for(libc::SIGBUS, &raw mut PREVIOUS_BUS);
        }
    });
}

/// Saves the current handler of `signal` into `*previous`, then installs
/// ours. In that order: our handler reads `*previous` (to chain), so it must
/// be written before the handler can run. (Installing first and saving the
/// old action from the same call left a window in which a fault ran our
/// handler while the static was being written.)
///
/// # Safety
/// Call once per signal, with `previous` the static our handler reads for
/// it, and nothing else accessing that static during the call.
unsafe fn install_for(signal: libc::c_int, previous: *mut Option<libc::sigaction>) {
    // SAFETY: plain-data structs for the libc calls; `previous` is valid for
    // writes and unaliased by the contract above.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut current) != 0 {
            return; // leave the signal alone rather than chain to garbage
        }
        *previous = Some(current);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handle_fault as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

extern "C" fn handle_fault(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let running = RUNNING.with(|r| r.get());
    if let Some(co) = running {
        if addr >= co.guard_start && addr < co.guard_end {
            report_overflow(&co);
        }
    }
    // Not ours: hand over to whoever was there before.
    // SAFETY: written once before our handler was installed, read-only since.
    let previous = unsafe {
        if signal == libc::SIGBUS {
            *std::ptr::addr_of!(PREVIOUS_BUS)
        } else {
            *std::ptr::addr_of!(PREVIOUS_SEGV)
        }
    };
    chain(signal, info, context, previous);
}

fn chain(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
    previous: Option<libc::sigaction>,
) {
    match previous {
        Some(prev) if prev.sa_sigaction != libc::SIG_DFL && prev.sa_sigaction != libc::SIG_IGN => {
            if prev.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler was installed with SA_SIGINFO, so
                // this is its three-argument signature.
                let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(prev.sa_sigaction) };
                handler(signal, info, context);
            } else {
                // SAFETY: without SA_SIGINFO the handler takes only the signal.
                let handler: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev.sa_sigaction) };
                handler(signal);
            }
        }
        _ => {
            // Restore the default action and return: the faulting instruction
            // runs again and the default action (core dump) happens.
            // SAFETY: resetting a signal's disposition to SIG_DFL is
            // async-signal-safe.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
    }
}

/// Writes the overflow message with raw `write(2)` (no allocation) and aborts.
fn report_overflow(co: &RunningCoroutine) -> ! {
    let mut msg = MessageBuf::new();
    msg.push(b"\ncorio: coroutine ");
    msg.push_u64(co.id);
    msg.push(b" \"");
    // SAFETY: the name bytes belong to the running coroutine's task, alive for
    // as long as the coroutine runs (see the module invariants).
    let name = unsafe { std::slice::from_raw_parts(co.name_ptr, co.name_len) };
    msg.push(if name.is_empty() { b"<unnamed>" } else { name });
    msg.push(b"\" overflowed its ");
    msg.push_u64(co.stack_size as u64);
    msg.push(
        b"-byte stack\ncorio: raise it with corio::coroutine::Builder::stack_size, or for every \
               coroutine with Runtime::builder().stack_size\n",
    );
    // SAFETY: write(2) and abort(3) are async-signal-safe.
    unsafe {
        libc::write(2, msg.buf.as_ptr() as *const libc::c_void, msg.len);
        libc::abort();
    }
}

struct MessageBuf {
    buf: [u8; 512],
    len: usize,
}

impl MessageBuf {
    fn new() -> Self {
        MessageBuf { buf: [0; 512], len: 0 }
    }

    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn push_u64(&mut self, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

/// Size of the alternate signal stack corio gives a worker that has none.
const SIGNAL_STACK_SIZE: usize = 64 << 10;

/// An alternate signal stack this thread installed; removed on drop.
pub(crate) struct SignalStack {
    mapping: Option<(usize, usize)>,
}

/// Makes sure this thread has an alternate signal stack (std gives its threads
/// one only when its own handler is installed, which a non-Rust `main` skips).
pub(crate) fn ensure_signal_stack() -> SignalStack {
    // SAFETY: querying the current alternate stack has no side effect.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: a null new-stack pointer only reads the current setting.
    let rc = unsafe { libc::sigaltstack(std::ptr::null(), &mut current) };
    if rc == 0 && current.ss_flags & libc::SS_DISABLE == 0 {
        return SignalStack { mapping: None };
    }
    // SAFETY: a fresh anonymous mapping, owned by the returned guard.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SIGNAL_STACK_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return SignalStack { mapping: None };
    }
    let stack = libc::stack_t { ss_sp: addr, ss_flags: 0, ss_size: SIGNAL_STACK_SIZE };
    // SAFETY: the stack memory stays mapped until the guard is dropped, which
    // first disables it.
    unsafe {
        libc::sigaltstack(&stack, std::ptr::null_mut());
    }
    SignalStack { mapping: Some((addr as usize, SIGNAL_STACK_SIZE)) }
}

impl Drop for SignalStack {
    fn drop(&mut self) {
        if let Some((addr, len)) = self.mapping.take() {
            let disable =
                libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
            // SAFETY: we disable the alternate stack before unmapping it; this
            // thread is not handling a signal (it is exiting normally).
            unsafe {
                libc::sigaltstack(&disable, std::ptr::null_mut());
                libc::munmap(addr as *mut libc::c_void, len);
            }
        }
    }
}
