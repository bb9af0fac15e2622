//! Unix signals as channel messages, as Go's `signal.Notify`: [`notify`]
//! returns a [`Receiver`] of the signal numbers it subscribed to, and
//! [`ctrl_c`] parks until `SIGINT`.
//!
//! ```no_run
//! corio::run(|| {
//!     let signals = corio::signal::notify(&[libc::SIGTERM, libc::SIGHUP]).unwrap();
//!     while let Ok(signal) = signals.recv() {
//!         if signal == libc::SIGTERM {
//!             break; // shut down cleanly
//!         }
//!         // SIGHUP: reload the configuration...
//!     }
//! });
//! ```
//!
//! # How
//!
//! A self-pipe. The first subscription to a signal installs (`sigaction`,
//! `SA_RESTART | SA_ONSTACK`) a handler that `write`s the signal number as
//! one byte to a non-blocking pipe (async-signal-safe; `errno` saved and
//! restored); a byte that does not fit in a full pipe is dropped. A plain
//! thread, `corio-signal`, started with the first subscription and living
//! as long as the process, blocks in `read` on the other end and sends each
//! number to every subscriber of it with `try_send`. A plain thread rather
//! than a coroutine: it serves every runtime of the process and works with
//! none running.
//!
//! Why not `signalfd`: it sees a signal only if the signal is blocked in
//! *every* thread, and corio cannot block it in threads it did not create.
//!
//! # Semantics
//!
//! - Signals nobody subscribed to keep their action (default or otherwise).
//! - The dispatcher never blocks: each receiver buffers [`BUFFER`] signals,
//!   and a subscriber that has not consumed them misses further ones (as in
//!   Go, where a full channel drops the signal).
//! - A subscription ends when its receiver is dropped. When a signal has no
//!   subscriber left, its previous action is put back, the next time a
//!   signal arrives or [`notify`] is called (so one occurrence may still be
//!   swallowed in between).
//! - Refused with `InvalidInput`: numbers that are not signals, `SIGKILL`
//!   and `SIGSTOP` (which cannot be caught), the synchronous fault signals
//!   `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE` (returning from their handler
//!   re-runs the faulting instruction; corio reports stack overflows on
//!   `SIGSEGV`/`SIGBUS`), `SIGURG` (corio's stall sampler) and the signals
//!   the C library reserves (between 31 and `SIGRTMIN`). Subscribing to the
//!   signal chosen for `RuntimeBuilder::dump_signal` replaces the dump.
//!
//! Invariants: `WRITE_FD` is set once, before any handler is installed, and
//! never closed; `STATE.previous` holds exactly the signals whose action is
//! our handler, with the action it replaced.

use crate::chan::{self, Receiver, Sender, TrySendError};
use parking_lot::Mutex;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{FromRawFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// How many signals a receiver from [`notify`] holds before further ones
/// are dropped for it.
pub const BUFFER: usize = 16;

/// The pipe's write end, for the handler (-1 before the first subscription).
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

static STATE: Mutex<State> =
    Mutex::new(State { started: false, previous: Vec::new(), subscribers: Vec::new() });

struct State {
    /// The pipe and the dispatcher thread exist.
    started: bool,
    /// Signals whose action is our handler, with the action it replaced.
    previous: Vec<(libc::c_int, libc::sigaction)>,
    subscribers: Vec<Subscriber>,
}

struct Subscriber {
    signals: Vec<libc::c_int>,
    tx: Sender<libc::c_int>,
}

/// Subscribes to `signals`: each time one of them reaches the process, its
/// number is sent on the returned channel (see the module docs for what is
/// refused and when signals are dropped). The subscription lasts until the
/// receiver is dropped.
///
/// ```no_run
/// let usr1 = corio::signal::notify(&[libc::SIGUSR1]).unwrap();
/// assert_eq!(usr1.recv().unwrap(), libc::SIGUSR1); // parks (or blocks a plain thread)
/// ```
///
/// # Errors
/// `InvalidInput` for a signal that cannot be subscribed to; the error of
/// `pipe2`, `sigaction` or starting the dispatcher thread.
pub fn notify(signals: &[libc::c_int]) -> io::Result<Receiver<libc::c_int>> {
    for &signal in signals {
        check(signal)?;
    }
    let mut state = STATE.lock();
    if !state.started {
        start_dispatcher()?;
        state.started = true;
    }
    let (tx, rx) = chan::bounded(BUFFER);
    let mut signals = signals.to_vec();
    signals.sort_unstable();
    signals.dedup();
    // Subscribed before the handler exists: no signal is lost in between.
    state.subscribers.push(Subscriber { signals: signals.clone(), tx });
    for signal in signals {
        if state.previous.iter().any(|&(s, _)| s == signal) {
            continue;
        }
        match install(signal) {
            Ok(previous) => state.previous.push((signal, previous)),
            Err(err) => {
                state.subscribers.pop();
                prune(&mut state);
                return Err(err);
            }
        }
    }
    prune(&mut state);
    Ok(rx)
}

/// Waits for `SIGINT` (Ctrl-C): parks a coroutine, blocks a plain thread.
/// While it waits, Ctrl-C does not end the process.
///
/// # Errors
/// As [`notify`].
pub fn ctrl_c() -> io::Result<()> {
    let rx = notify(&[libc::SIGINT])?;
    rx.recv().map_err(|_| io::Error::other("the signal dispatcher stopped"))?;
    Ok(())
}

/// `InvalidInput` unless `signal` may be subscribed to (module docs).
fn check(signal: libc::c_int) -> io::Result<()> {
    let refused =
        |why: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, format!("signal {signal}: {why}")));
    match signal {
        libc::SIGKILL | libc::SIGSTOP => refused("cannot be caught"),
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE => {
            refused("a synchronous fault signal cannot be subscribed to")
        }
        libc::SIGURG => refused("used by corio's stall sampler"),
        s if s < 1 || s > libc::SIGRTMAX() => refused("not a signal number"),
        s if s > 31 && s < libc::SIGRTMIN() => refused("reserved by the C library"),
        _ => Ok(()),
    }
}

/// Makes the pipe and starts the `corio-signal` thread reading it.
fn start_dispatcher() -> io::Result<()> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array of two we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd and nothing else owns it.
    let reader = unsafe { File::from_raw_fd(fds[0]) };
    // SAFETY: F_SETFL on the write end we just made (kept open for ever).
    if unsafe { libc::fcntl(fds[1], libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        let err = io::Error::last_os_error();
        // SAFETY: closing the write end we own (no handler knows it yet).
        unsafe { libc::close(fds[1]) };
        return Err(err);
    }
    WRITE_FD.store(fds[1], Ordering::Release);
    std::thread::Builder::new().name("corio-signal".into()).spawn(move || dispatch(reader))?;
    Ok(())
}

/// The dispatcher thread: one byte per signal, until the process ends.
fn dispatch(mut reader: File) {
    let mut buf = [0u8; 64];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return, // cannot happen: the write end is never closed
            Ok(n) => {
                let mut state = STATE.lock();
                for &signal in &buf[..n] {
                    deliver(&mut state, libc::c_int::from(signal));
                }
                prune(&mut state);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Sends `signal` to each of its subscribers, never waiting.
fn deliver(state: &mut State, signal: libc::c_int) {
    for subscriber in &state.subscribers {
        if subscriber.signals.contains(&signal) {
            // Full: this subscriber misses it; disconnected: pruned next.
            let _: Result<(), TrySendError<_>> = subscriber.tx.try_send(signal);
        }
    }
}

/// Drops the subscribers whose receiver is gone, and puts back the previous
/// action of signals nobody subscribes to any more.
fn prune(state: &mut State) {
    state.subscribers.retain(|s| !s.tx.is_disconnected());
    let subscribers = &state.subscribers;
    state.previous.retain(|(signal, previous)| {
        if subscribers.iter().any(|s| s.signals.contains(signal)) {
            return true;
        }
        // SAFETY: `previous` is the action sigaction gave us for this signal.
        unsafe { libc::sigaction(*signal, previous, std::ptr::null_mut()) != 0 }
    });
}

/// Installs the handler for `signal`; returns the action it replaces.
fn install(signal: libc::c_int) -> io::Result<libc::sigaction> {
    // SAFETY: zeroed sigactions are valid ("no flags, empty mask") values we
    // fill in; the handler is async-signal-safe (module docs).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        let mut previous: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(signal, &action, &mut previous) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(previous)
    }
}

/// The handler: one byte to the pipe (async-signal-safe).
extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    let errno = unsafe { *libc::__errno_location() };
    let byte = signal as u8;
    // SAFETY: write(2) is async-signal-safe; the fd is open for ever and the
    // buffer is one byte on our stack. A full pipe drops the byte.
    unsafe { libc::write(WRITE_FD.load(Ordering::Acquire), (&raw const byte).cast(), 1) };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}
