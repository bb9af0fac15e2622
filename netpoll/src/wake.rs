//! The waker abstraction: how a readiness layer that knows nothing of coroutines tells its user
//! "the thing you were waiting for may have happened".
//!
//! A waiter hands an `Arc<dyn Wake>` to [`Registration::poll_ready`](crate::Registration::poll_ready);
//! the netpoller stores it in the direction's slot and calls [`Wake::wake`] exactly once when that
//! slot becomes ready or the registration is closed, then drops it. What "wake" means is up to the
//! user:
//!
//! - a coroutine runtime: "make coroutine C runnable" (push it on its owner worker's queue or inbox
//!   and `notify()` that worker's poller if it sleeps);
//! - a callback event loop: "mark channel X ready in my loop";
//! - a plain thread: [`std::thread::Thread`] implements `Wake` as `unpark`;
//! - async code: [`std::task::Waker`] implements `Wake` as `wake_by_ref`;
//! - any `Fn() + Send + Sync + 'static` closure implements `Wake`.
//!
//! Invariants the implementor must accept:
//! - `wake` may run on any thread: the thread inside [`Poller::wait`](crate::Poller::wait) or
//!   [`Poller::dispatch`](crate::Poller::dispatch), or the thread that closes the registration.
//! - `wake` may run *before* the waiter has actually parked (the waiter arms its slot, then
//!   suspends; readiness can arrive in between). The implementation must therefore behave like a
//!   permit (`Thread::unpark` semantics, or Go's "commit after the stack is saved"), never like a
//!   "resume now" that assumes the waiter is already suspended.
//! - `wake` is called with no netpoll lock held, so it may call back into this crate.
//! - `wake` must be short, must not block (it runs on the poller's thread) and must not panic:
//!   a panic propagates out of `wait`, and the wakers later in the same batch are not called.
//! - Identity: [`Registration::cancel`](crate::Registration::cancel) and the re-arm check compare
//!   wakers by the address of the `Arc`'s data, so one waiter should keep using the same `Arc`.

use std::sync::Arc;

/// Something that can be told "your readiness event fired (or the registration closed)".
pub trait Wake: Send + Sync + 'static {
    /// Signal the waiter. See the module docs for the threading rules.
    fn wake(&self);
}

/// A shared, type-erased waker, the form stored in a readiness slot.
pub type ArcWake = Arc<dyn Wake>;

impl Wake for std::thread::Thread {
    fn wake(&self) {
        self.unpark();
    }
}

impl Wake for std::task::Waker {
    fn wake(&self) {
        self.wake_by_ref();
    }
}

impl<F: Fn() + Send + Sync + 'static> Wake for F {
    fn wake(&self) {
        self()
    }
}

/// True when `a` and `b` are the same waker object (data-pointer identity; the vtable is ignored
/// because it is not guaranteed unique across codegen units).
pub(crate) fn same_waker(a: &ArcWake, b: &ArcWake) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}
