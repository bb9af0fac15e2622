//! The park state machine: one coroutine's wake-up token, and the protocol
//! that lets it be suspended and resumed from any thread with no lost wake-up
//! and no double resume. (The entry points that switch stacks and queue the
//! coroutine are `sched::park`; this file tells the protocol.)
//!
//! Semantics are `std::thread::park`'s: each coroutine has one wake-up token.
//! `unpark` makes the token available; `park` consumes it, returning at once if
//! it was there and suspending until it arrives otherwise. A park may also
//! return spuriously (a stale timer, an `unpark` meant for an earlier wait), so
//! every caller re-checks its condition in a loop.
//!
//! # States (one `AtomicU8` per task)
//!
//! ```text
//!            unpark                      park: CAS RUNNING->PARKING,
//!   RUNNING --------> NOTIFIED           then switch to the worker
//!     ^  ^              |  park: CAS NOTIFIED->RUNNING, return at once
//!     |  +--------------+
//!     |
//!     |  PARKING --unpark--> NOTIFIED   (worker's commit CAS then fails:
//!     |     |                            it sets RUNNING and requeues)
//!     |     | worker, after the switch: CAS PARKING->PARKED ("commit")
//!     |     v
//!     +-- PARKED   unpark: CAS PARKED->RUNNING, then enqueue on the owner
//! ```
//!
//! - RUNNING: running, or queued to run; no token.
//! - NOTIFIED: running or queued, token available.
//! - PARKING: the coroutine has announced it will park and is switching off its
//!   stack; it is not yet safe to resume it.
//! - PARKED: off its stack; the worker has committed; only an unpark resumes it.
//!
//! # Why this closes the two classic races
//! - *Lost wake-up*: a wake between "decide to park" and "parked" lands in
//!   PARKING and turns it into NOTIFIED; the worker's commit CAS then fails and
//!   the worker requeues the coroutine instead of leaving it parked.
//! - *Double resume / resume before the switch finished*: "parked" is published
//!   (the commit) by the worker only after `resume` returned, i.e. after the
//!   coroutine's registers are saved (Go's gopark commit, Loom's PARKING ->
//!   PARKED after the yield). Exactly one thread wins the CAS out of PARKED, and
//!   only that thread enqueues; the worker enqueues only when its commit fails,
//!   which excludes the PARKED path. So a task is in at most one queue.
//!
//! The enqueue goes to the owner worker through the task's `Schedule`: its
//! local queue when the waker runs on that worker, its inbox otherwise (plus a
//! wake of the worker if it sleeps).
//!
//! Steps of a park (`sched::park::park_current`), numbered as the code:
//! 1. consume a pending token (NOTIFIED -> RUNNING) and return if there was one;
//! 2. arm the deadline's timer, if any;
//! 3. `begin_park` (RUNNING -> PARKING; fails only if a token just arrived);
//! 4. switch to the worker (`Suspend::Park`);
//! 5. the worker commits (`commit_park`, PARKING -> PARKED), or requeues the task
//!    if an unpark came first;
//! 6. an unpark that wins PARKED -> RUNNING enqueues the task on its owner;
//! 7. resumed, the coroutine disarms its timer (the entry stays until due, see
//!    `sched::timer`) and returns (maybe spuriously).

use std::sync::atomic::{AtomicU8, Ordering};

const RUNNING: u8 = 0;
const NOTIFIED: u8 = 1;
const PARKING: u8 = 2;
const PARKED: u8 = 3;

/// A task's park state; see the module doc for the machine.
pub(crate) struct ParkState(AtomicU8);

impl ParkState {
    pub(crate) fn new() -> ParkState {
        ParkState(AtomicU8::new(RUNNING))
    }

    /// Consumes a pending token, if any.
    pub(crate) fn try_consume_token(&self) -> bool {
        self.0.compare_exchange(NOTIFIED, RUNNING, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// RUNNING -> PARKING. Fails only if a token arrived (state NOTIFIED), in
    /// which case the token is consumed and the caller must not suspend.
    pub(crate) fn begin_park(&self) -> bool {
        match self.0.compare_exchange(RUNNING, PARKING, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(_) => {
                self.0.store(RUNNING, Ordering::Relaxed);
                false
            }
        }
    }

    /// The worker's commit after the coroutine switched off its stack.
    /// Returns false if an unpark arrived meanwhile: the state is then RUNNING
    /// again and the worker must requeue the task itself.
    pub(crate) fn commit_park(&self) -> bool {
        match self.0.compare_exchange(PARKING, PARKED, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(actual) => {
                debug_assert_eq!(actual, NOTIFIED, "commit found a state other than NOTIFIED");
                self.0.store(RUNNING, Ordering::Release);
                false
            }
        }
    }

    /// Makes the token available. Returns true if the caller won the task out
    /// of PARKED and so must enqueue it.
    pub(crate) fn unpark(&self) -> bool {
        let mut state = self.0.load(Ordering::Acquire);
        loop {
            let next = match state {
                NOTIFIED => return false,
                RUNNING | PARKING => NOTIFIED,
                PARKED => RUNNING,
                _ => unreachable!("invalid park state {state}"),
            };
            match self.0.compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return state == PARKED,
                Err(actual) => state = actual,
            }
        }
    }

    /// Checked by the worker before every resume: a queued task must be
    /// RUNNING or NOTIFIED. Finding it PARKING or PARKED means it was queued
    /// twice or woken without winning the CAS: a double resume in the making.
    pub(crate) fn assert_runnable(&self, id: u64) {
        let state = self.0.load(Ordering::Acquire);
        assert!(
            state == RUNNING || state == NOTIFIED,
            "corio bug: coroutine {id} queued to run while in park state {state} (double resume)"
        );
    }

    #[cfg(test)]
    pub(crate) fn is_parked(&self) -> bool {
        self.0.load(Ordering::Acquire) == PARKED
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn token_before_park_is_consumed() {
        let state = ParkState::new();
        assert!(!state.unpark(), "unpark of a running task enqueues nothing");
        assert!(state.try_consume_token());
        assert!(!state.try_consume_token(), "one token only");
    }

    #[test]
    fn unpark_while_parking_makes_commit_fail() {
        let state = ParkState::new();
        assert!(state.begin_park());
        assert!(!state.unpark(), "the parking coroutine is still on its stack");
        assert!(!state.commit_park(), "commit sees the wake and requeues");
        assert!(!state.is_parked());
    }

    #[test]
    fn exactly_one_unparker_wins_a_parked_task() {
        for _ in 0..1000 {
            let state = Arc::new(ParkState::new());
            assert!(state.begin_park());
            assert!(state.commit_park());
            let winners: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4).map(|_| s.spawn(|| state.unpark() as usize)).collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(winners, 1);
        }
    }

    #[test]
    fn begin_park_with_token_pending_consumes_it() {
        let state = ParkState::new();
        state.unpark();
        assert!(!state.begin_park());
        assert!(!state.try_consume_token());
    }
}
