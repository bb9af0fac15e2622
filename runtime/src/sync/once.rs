//! `OnceLock`: a cell written once, whose concurrent initialisers park.
//!
//! # State machine
//!
//! ```text
//!  INCOMPLETE ──CAS by the first initialiser──▶ RUNNING ──value written──▶ COMPLETE
//!      ▲                                           │       (store Release; wake all)
//!      └────── the initialiser panicked / failed ──┘       (wake all; one of them retries)
//! ```
//!
//! `get` is one acquire load. While the state is `RUNNING`, other callers of
//! `get_or_init`/`set` queue (re-checking `RUNNING` under the queue lock, so
//! the initialiser's wake-all, which takes that lock after changing the state,
//! cannot miss them) and park; when woken they loop: return the value, or
//! race to become the next initialiser. An initialiser calling back into the
//! same cell from inside its closure would wait for itself; that is detected
//! (by coroutine id) and panics.
//!
//! A caller in a destructor run by the shutdown unwind cannot park: while
//! another coroutine initialises, it waits as the locks do (the thread yields;
//! after `SHUTDOWN_LOCK_WAIT` the process aborts with a message, since an
//! initialiser parked at the shutdown and unwound later on the same worker
//! never finishes).
//!
//! A queued caller whose park unwinds (its coroutine dropped at shutdown)
//! removes itself from the queue; the wake-up is broadcast, so there is
//! nothing to pass on.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::waiter::{unpark_all, wait_while_cancelling, Waiter};
use crate::coroutine::{self, CoroutineId};

const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const COMPLETE: u8 = 2;

const RETRY: u8 = 1;

struct Waiters {
    /// Who is running the initialiser (to detect re-entrant initialisation).
    runner: Option<CoroutineId>,
    queue: Vec<Arc<Waiter>>,
}

/// A cell that is written at most once; initialisers that lose the race park
/// until the winner is done, then see its value.
///
/// ```
/// use corio::sync::OnceLock;
/// static CONFIG: OnceLock<String> = OnceLock::new();
/// assert_eq!(CONFIG.get_or_init(|| "on".to_string()), "on");
/// assert_eq!(CONFIG.set("off".to_string()), Err("off".to_string()));
/// ```
pub struct OnceLock<T> {
    state: AtomicU8,
    waiters: parking_lot::Mutex<Waiters>,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written once, by one initialiser, before `COMPLETE` is
// published (release/acquire); afterwards it is only shared (`&T` from any
// thread needs `Sync`), and it may be written from any thread (`Send`).
unsafe impl<T: Send + Sync> Sync for OnceLock<T> {}

impl<T> OnceLock<T> {
    /// An empty cell.
    pub const fn new() -> OnceLock<T> {
        OnceLock {
            state: AtomicU8::new(INCOMPLETE),
            waiters: parking_lot::const_mutex(Waiters { runner: None, queue: Vec::new() }),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// The value, if initialised. Never waits.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) == COMPLETE {
            // SAFETY: COMPLETE (acquire) means the value was written and is
            // never written again while `&self` lives.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// Mutable access to the value, if initialised.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        if *self.state.get_mut() == COMPLETE {
            // SAFETY: initialised (COMPLETE) and `&mut self` is exclusive.
            Some(unsafe { self.value.get_mut().assume_init_mut() })
        } else {
            None
        }
    }

    /// Stores `value` if the cell is empty; otherwise hands it back. If
    /// another coroutine is initialising, parks until it is done.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("called once"));
        match value {
            None => Ok(()),
            Some(v) => Err(v),
        }
    }

    /// The value, initialising it with `f` if the cell is empty. Exactly one
    /// caller runs its `f`; concurrent callers park until it returns. If `f`
    /// panics, the cell stays empty and a waiting caller retries with its own
    /// closure.
    ///
    /// # Panics
    /// If `f` panics, or calls back into this cell to initialise it.
    pub fn get_or_init<F: FnOnce() -> T>(&self, f: F) -> &T {
        match self.get_or_try_init(|| Ok::<T, std::convert::Infallible>(f())) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    /// As [`OnceLock::get_or_init`], but `f` may fail: the error is returned
    /// and the cell stays empty (a waiting caller then retries).
    pub fn get_or_try_init<F, E>(&self, f: F) -> Result<&T, E>
    where
        F: FnOnce() -> Result<T, E>,
    {
        if let Some(v) = self.get() {
            return Ok(v);
        }
        self.init_slow(f)
    }

    /// Takes the value out, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        if *self.state.get_mut() == COMPLETE {
            *self.state.get_mut() = INCOMPLETE;
            // SAFETY: it was initialised, and the state now says it is not,
            // so it is read out exactly once.
            Some(unsafe { self.value.get_mut().assume_init_read() })
        } else {
            None
        }
    }

    /// Consumes the cell, returning the value if initialised.
    pub fn into_inner(mut self) -> Option<T> {
        self.take()
    }

    #[cold]
    fn init_slow<F, E>(&self, f: F) -> Result<&T, E>
    where
        F: FnOnce() -> Result<T, E>,
    {
        let me = coroutine::current();
        loop {
            match self.state.compare_exchange(INCOMPLETE, RUNNING, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => {
                    self.waiters.lock().runner = Some(me.id());
                    let mut guard = Reset { cell: self };
                    let value = f()?;
                    // SAFETY: RUNNING makes us the only writer, and nobody
                    // reads before COMPLETE is published below.
                    unsafe { (*self.value.get()).write(value) };
                    self.state.store(COMPLETE, Ordering::Release);
                    guard.finish();
                    // SAFETY: just initialised and published.
                    return Ok(unsafe { (*self.value.get()).assume_init_ref() });
                }
                Err(COMPLETE) => {
                    // SAFETY: COMPLETE was read with acquire ordering.
                    return Ok(unsafe { (*self.value.get()).assume_init_ref() });
                }
                Err(_running) if crate::sched::context::cancelling() => {
                    // A destructor run by the shutdown unwind cannot park: wait
                    // for the initialiser as the locks do (it finishes, or its
                    // unwind resets the cell; abort if it never can).
                    wait_while_cancelling("OnceLock initialisation", || {
                        self.state.load(Ordering::Acquire) != RUNNING
                    });
                }
                Err(_running) => {
                    let w = {
                        let mut ws = self.waiters.lock();
                        if self.state.load(Ordering::Acquire) != RUNNING {
                            continue;
                        }
                        assert!(ws.runner != Some(me.id()), "OnceLock: re-entrant initialisation");
                        let w = Waiter::new();
                        ws.queue.push(Arc::clone(&w));
                        w
                    };
                    // Unwound while queued: leave the queue (the wake-up is
                    // broadcast, so there is nothing to pass on).
                    crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
                        kind: crate::task::SyncKind::OnceLock,
                        addr: (self as *const Self).cast::<()>() as usize,
                    });
                    w.wait_or(|| self.waiters.lock().queue.retain(|x| !x.is(&w)));
                }
            }
        }
    }

    /// Wakes every queued waiter (after the state left RUNNING).
    fn wake_all(&self) {
        let wake: Vec<_> = {
            let mut ws = self.waiters.lock();
            ws.runner = None;
            ws.queue.drain(..).map(|w| w.notify(RETRY)).collect()
        };
        unpark_all(wake);
    }
}

/// Resets `RUNNING` to `INCOMPLETE` if the initialiser unwinds or fails.
struct Reset<'a, T> {
    cell: &'a OnceLock<T>,
}

impl<T> Reset<'_, T> {
    /// The value is in place and published: just wake the waiters.
    fn finish(&mut self) {
        self.cell.wake_all();
        // `Drop` sees COMPLETE and does nothing more.
    }
}

impl<T> Drop for Reset<'_, T> {
    fn drop(&mut self) {
        if self.cell.state.load(Ordering::Acquire) != COMPLETE {
            self.cell.state.store(INCOMPLETE, Ordering::Release);
            self.cell.wake_all();
        }
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        if *self.state.get_mut() == COMPLETE {
            // SAFETY: initialised, and dropped exactly once (we are in Drop).
            unsafe { self.value.get_mut().assume_init_drop() };
        }
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> Self {
        OnceLock::new()
    }
}

impl<T> From<T> for OnceLock<T> {
    fn from(value: T) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(value);
        cell
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    fn clone(&self) -> Self {
        match self.get() {
            Some(v) => OnceLock::from(v.clone()),
            None => OnceLock::new(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(v) => f.debug_tuple("OnceLock").field(v).finish(),
            None => f.write_str("OnceLock(<uninit>)"),
        }
    }
}
