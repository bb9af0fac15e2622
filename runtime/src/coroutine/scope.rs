//! `corio::scope`: coroutines that may borrow from the caller, as
//! `std::thread::scope`. Every coroutine spawned in the scope has finished
//! (or been dropped) before `scope` returns or unwinds, so borrowing its
//! locals is sound.
//!
//! Why it is sound against `mem::forget`: the guarantee does not rest on a
//! handle's destructor (which `mem::forget` could skip; corosensei#27 and
//! #59 show what goes wrong then) but on `scope` itself: it owns the wait
//! (a count of unfinished coroutines), and the wait runs before `scope`
//! returns and, in a drop guard, before it unwinds. The borrowed lifetime
//! `'env` is bounded by the `scope` call, which cannot end before the wait.
//!
//! The count: each spawned coroutine's entry holds a `Done` token, dropped
//! after its closure (and everything it captured) is gone: when it returns,
//! panics, is cancelled, or is dropped without running at shutdown. The last
//! token wakes the scope's owner. A returned value may borrow for `'scope`
//! too, so on return the token travels with the value ([`Scoped`]) and is
//! dropped after it: at `join`, or when the value is dropped because the
//! handle was (the slot drops a detached coroutine's value at delivery). As
//! with `std::thread::scope`, a handle leaked with `mem::forget` keeps its
//! value, and so its token: `scope` then waits for ever (a hang, never a
//! use after free).

use super::{spawn_borrowing_on, JoinHandle};
use crate::sched::Scheduler;
use crate::task::Unparker;
use parking_lot::Mutex;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

/// Coroutines still running in a scope, and who waits for them.
struct Pending {
    state: Mutex<(usize, Option<Unparker>)>,
    /// Coroutines that panicked (not cancelled) and were not joined.
    unjoined_panics: AtomicUsize,
}

/// Held by a scoped coroutine's entry; dropped when it is done.
struct Done(Arc<Pending>);

impl Drop for Done {
    fn drop(&mut self) {
        let waiter = {
            let mut state = self.0.state.lock();
            state.0 -= 1;
            if state.0 == 0 {
                state.1.take()
            } else {
                None
            }
        };
        if let Some(waiter) = waiter {
            waiter.unpark();
        }
    }
}

/// A scope to spawn borrowing coroutines in (see [`scope`]).
pub struct Scope<'scope, 'env: 'scope> {
    pending: Arc<Pending>,
    scheduler: Arc<Scheduler>,
    /// Invariance over 'scope, as std's `Scope`.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// A scoped coroutine's value with its `Done` token: fields drop in this
/// order, so the scope is not told "done" before the value is gone.
struct Scoped<T> {
    value: T,
    done: Done,
}

/// An owned permission to join a scoped coroutine.
pub struct ScopedJoinHandle<'scope, T> {
    inner: JoinHandle<Scoped<T>>,
    pending: Arc<Pending>,
    _scope: PhantomData<&'scope ()>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the coroutine and returns its value, or its panic payload.
    pub fn join(self) -> thread::Result<T> {
        match self.inner.join() {
            Ok(Scoped { value, done }) => {
                drop(done); // the value is the caller's now
                Ok(value)
            }
            Err(payload) => {
                if !crate::is_cancelled(&*payload) {
                    // Joined: the caller has the panic, the scope need not raise it.
                    self.pending.unjoined_panics.fetch_sub(1, Ordering::SeqCst);
                }
                Err(payload)
            }
        }
    }

    /// Cancels the coroutine (see `JoinHandle::cancel`).
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Has it finished?
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawns a coroutine that may borrow anything that outlives the scope.
    ///
    /// # Panics
    /// If no stack can be allocated.
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.pending.state.lock().0 += 1;
        let done = Done(self.pending.clone());
        let pending = self.pending.clone();
        let job = ScopedJob { f, done };
        let entry = move || {
            let ScopedJob { f, done } = job;
            match panic::catch_unwind(AssertUnwindSafe(f)) {
                // `done` goes with the value, to be dropped after it.
                Ok(value) => Scoped { value, done },
                Err(payload) => {
                    if !crate::is_cancelled(&*payload) {
                        pending.unjoined_panics.fetch_add(1, Ordering::SeqCst);
                    }
                    drop(done); // after `f` and its captures; the payload is 'static
                    panic::resume_unwind(payload)
                }
            }
        };
        // SAFETY: `scope` does not return or unwind before every coroutine
        // spawned here has dropped its `Done` (the wait in `scope` and its
        // guard), which happens after the entry is consumed or dropped; so
        // nothing borrowed for 'scope is used after 'scope ends.
        let inner =
            unsafe { spawn_borrowing_on(&self.scheduler, None, None, Some(Location::caller()), entry) }
                .unwrap_or_else(|err| panic!("{err}"));
        ScopedJoinHandle { inner, pending: self.pending.clone(), _scope: PhantomData }
    }
}

/// A scoped coroutine's closure and token; fields drop in this order when
/// the entry is dropped without running (the closure first).
struct ScopedJob<F> {
    f: F,
    done: Done,
}

/// Creates a scope for coroutines that may borrow the caller's locals, runs
/// `f` in it, waits for every coroutine spawned in it, and returns `f`'s
/// value. As `std::thread::scope`: if `f` panics, the panic is resumed
/// after the wait; if a coroutine panicked and was not joined, `scope`
/// panics after the wait (a cancelled coroutine does not count).
///
/// ```
/// corio::run(|| {
///     let mut chunks = vec![vec![1u64; 100]; 4];
///     corio::scope(|s| {
///         for chunk in chunks.iter_mut() {
///             s.spawn(move || chunk.iter_mut().for_each(|x| *x *= 2));
///         }
///     });
///     assert!(chunks.iter().flatten().all(|&x| x == 2));
/// });
/// ```
///
/// # Panics
/// Called outside a corio runtime (there is nowhere to run the coroutines).
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scheduler = Scheduler::current_or_latest().expect("corio::scope called outside a corio runtime");
    let scope = Scope {
        pending: Arc::new(Pending { state: Mutex::new((0, None)), unjoined_panics: AtomicUsize::new(0) }),
        scheduler,
        scope: PhantomData,
        env: PhantomData,
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // Every scoped coroutine is done after this, whatever happens meanwhile.
    super::until_done::wait_until_done("a scoped coroutine", |waiter| {
        let mut state = scope.pending.state.lock();
        if state.0 == 0 {
            return true;
        }
        if waiter.is_some() {
            state.1 = waiter;
        }
        false
    });
    match result {
        Err(payload) => panic::resume_unwind(payload),
        Ok(_) if scope.pending.unjoined_panics.load(Ordering::SeqCst) > 0 => {
            panic!("a scoped coroutine panicked")
        }
        Ok(value) => value,
    }
}
