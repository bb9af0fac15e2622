//! A barrier: `n` coroutines wait until all `n` have arrived.
//!
//! # State machine
//!
//! Under one short lock: `arrived` counts the coroutines of the current
//! generation (round), `waiters` holds the parked ones.
//!
//! ```text
//!  wait(): arrived += 1
//!     arrived < n  → queue, park until RELEASED               → non-leader
//!     arrived == n → arrived = 0 (next generation), notify and
//!                    drain every waiter                        → leader
//!  wait() in a cancelling context, arrived + 1 < n: no arrival, no
//!                    wait                                      → non-leader
//!  a waiter's park unwinds (shutdown), still queued: arrived -= 1, leave
//!                    the queue (it never arrived, as far as the others see)
//! ```
//!
//! In a cancelling context (a destructor run by the shutdown unwind, which
//! cannot park) `wait` never waits: if its arrival would not complete the
//! generation it returns at once, not counted, as a non-leader. The other
//! parties may have been unwound and will never arrive, so waiting there
//! could only spin for ever.
//!
//! The barrier is reusable: the next `n` calls form the next generation.
//! A barrier has no atomic fast path: every arrival must be counted under the
//! lock anyway, and arrivals are rare compared with lock operations.

use std::fmt;
use std::sync::Arc;

use super::waiter::{unpark_all, Waiter, WAITING};
use crate::sched::context;

const RELEASED: u8 = 1;

struct State {
    arrived: usize,
    waiters: Vec<Arc<Waiter>>,
}

/// Lets `n` coroutines wait for each other. Reusable.
///
/// ```
/// use corio::sync::Barrier;
/// use std::sync::Arc;
/// let b = Arc::new(Barrier::new(3));
/// let hs: Vec<_> = (0..3)
///     .map(|_| {
///         let b = Arc::clone(&b);
///         std::thread::spawn(move || b.wait().is_leader())
///     })
///     .collect();
/// let leaders = hs.into_iter().map(|h| h.join().unwrap()).filter(|l| *l).count();
/// assert_eq!(leaders, 1);
/// ```
pub struct Barrier {
    n: usize,
    state: parking_lot::Mutex<State>,
}

/// Returned by [`Barrier::wait`]: exactly one waiter per generation is the
/// leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// True for exactly one of the `n` coroutines released together (the
    /// last to arrive).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl Barrier {
    /// A barrier for `n` coroutines (`n == 0` behaves as `n == 1`, as std's).
    pub fn new(n: usize) -> Barrier {
        Barrier { n: n.max(1), state: parking_lot::Mutex::new(State { arrived: 0, waiters: Vec::new() }) }
    }

    /// Parks until `n` coroutines (this one included) have called `wait`.
    ///
    /// In a destructor run while its runtime shuts down (the coroutine is
    /// being unwound, so it cannot park), it returns at once as a non-leader
    /// without arriving, unless its arrival completes the generation: see
    /// the module docs.
    pub fn wait(&self) -> BarrierWaitResult {
        let w = {
            let mut st = self.state.lock();
            if st.arrived + 1 < self.n && context::cancelling() {
                return BarrierWaitResult(false);
            }
            st.arrived += 1;
            if st.arrived == self.n {
                st.arrived = 0;
                let wake: Vec<_> = st.waiters.drain(..).map(|w| w.notify(RELEASED)).collect();
                drop(st);
                unpark_all(wake);
                return BarrierWaitResult(true);
            }
            let w = Waiter::new();
            st.waiters.push(Arc::clone(&w));
            w
        };
        crate::sched::park::set_wait_object(crate::task::WaitObject::Sync {
            kind: crate::task::SyncKind::Barrier,
            addr: (self as *const Self).cast::<()>() as usize,
        });
        w.wait_or(|| self.withdraw(&w));
        BarrierWaitResult(false)
    }

    /// The unwind withdraw: a waiter still queued leaves its generation.
    #[cold]
    fn withdraw(&self, w: &Arc<Waiter>) {
        let mut st = self.state.lock();
        if w.state() == WAITING {
            st.waiters.retain(|x| !x.is(w));
            st.arrived -= 1;
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").field("n", &self.n).finish()
    }
}
