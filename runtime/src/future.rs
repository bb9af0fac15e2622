//! Running async code in blocking style: [`block_on`] drives a future to
//! completion on the calling coroutine (parking it between polls, so its
//! worker runs other coroutines) or on the calling thread (blocking it).
//!
//! Works with runtime-agnostic async code: `futures` and `futures-lite`
//! combinators and channels, `async-channel`, `event-listener`, and anything
//! that only needs a `Waker`. Crates that need a tokio reactor (tokio's own
//! sockets and timers, hyper on tokio, reqwest) panic without one: run those
//! on a tokio runtime on a side thread and talk to it over a channel (see
//! docs/guide.md). A corio `JoinHandle` is itself a `Future`, so async code
//! can await a coroutine.
//!
//! Waking: the waker is made once per `block_on` call (one allocation) and
//! each wake is an unpark: no allocation per wake, callable from any thread.

use crate::coroutine::{self, Coroutine};
use crate::sched::context;
use crate::task::WaitReason;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Wakes the coroutine (or thread) blocked in `block_on`.
struct Unpark(Coroutine);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` until it is ready and returns its output. Inside a
/// coroutine this parks the coroutine between polls (its worker runs other
/// coroutines); on a plain thread it blocks the thread.
///
/// ```
/// let v = corio::run(|| {
///     let (tx, rx) = std::sync::mpsc::channel::<u32>();
///     tx.send(7).unwrap();
///     corio::future::block_on(async move { rx.recv().unwrap() * 6 })
/// });
/// assert_eq!(v, 42);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    // In a destructor run by the shutdown unwind the coroutine cannot park:
    // block the thread instead (the future is polled to the end either way).
    let in_coroutine = context::in_coroutine() && !context::cancelling();
    let me = if in_coroutine { coroutine::current() } else { coroutine::current_thread() };
    let waker = Waker::from(Arc::new(Unpark(me)));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            crate::sched::budget::spend();
            return output;
        }
        if in_coroutine {
            coroutine::park_for(WaitReason::Park);
        } else {
            std::thread::park();
        }
    }
}
