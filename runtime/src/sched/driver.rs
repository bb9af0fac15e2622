//! `IoDriver`: the worker's netpoll `Poller`, in which the worker sleeps when
//! idle (so socket readiness and timers wake it as well) and is woken through
//! `Poller::notify`, which has token semantics: a notify before the sleep makes
//! that sleep return at once, and a notify to a worker that is awake costs one
//! atomic swap, no syscall (states in `corio_netpoll::poller`). The sockets of
//! the coroutines that wait on this worker are registered here, so the same
//! wait collects their readiness and runs their wakers on this thread.

use corio_netpoll::{Events, Poller};
use std::io;
use std::time::{Duration, Instant};

/// One worker's I/O driver: its poller, where it sleeps and is woken.
pub(crate) struct IoDriver {
    poller: Poller,
}

impl IoDriver {
    pub(crate) fn new() -> io::Result<IoDriver> {
        Ok(IoDriver { poller: Poller::new()? })
    }

    /// The worker's poller, where the fds of its coroutines are registered.
    pub(crate) fn poller(&self) -> &Poller {
        &self.poller
    }

    /// Makes the worker's current or next `sleep` return.
    pub(crate) fn wake(&self) {
        if let Err(err) = self.poller.notify() {
            // Only an eventfd write can fail here, and only if the process is
            // out of resources; the worker then wakes at its next timer.
            eprintln!("corio: could not wake a worker: {err}");
        }
    }

    /// Sleeps until woken, until an fd of this poller is ready, or until
    /// `deadline`, dispatching readiness to the waiting coroutines (which run
    /// their wakers on this thread). Returns the number of events delivered.
    pub(crate) fn sleep(&self, events: &mut Events, deadline: Option<Instant>) -> usize {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        self.wait(events, timeout)
    }

    /// Collects readiness without blocking.
    pub(crate) fn poll_now(&self, events: &mut Events) -> usize {
        self.wait(events, Some(Duration::ZERO))
    }

    fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> usize {
        match self.poller.wait(events, timeout) {
            Ok(delivered) => delivered,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => 0,
            Err(err) => {
                eprintln!("corio: epoll wait failed: {err}");
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Arc};

    /// Runs `f` on a thread; fails if it has not returned within 10 s (these
    /// tests hang if a wake-up is lost).
    fn within_10s(f: impl FnOnce() + Send + 'static) {
        let (done_tx, done_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            f();
            done_tx.send(()).unwrap();
        });
        done_rx.recv_timeout(Duration::from_secs(10)).expect("hung: a wake-up was lost");
        thread.join().unwrap();
    }

    #[test]
    fn wake_before_sleep_is_not_lost() {
        within_10s(|| {
            let driver = IoDriver::new().unwrap();
            driver.wake();
            driver.sleep(&mut Events::new(), None); // returns at once
        });
    }

    #[test]
    fn wake_from_another_thread_ends_an_untimed_sleep() {
        within_10s(|| {
            let mut events = Events::new();
            for _ in 0..200 {
                let driver = Arc::new(IoDriver::new().unwrap());
                let waker = {
                    let driver = driver.clone();
                    std::thread::spawn(move || driver.wake())
                };
                driver.sleep(&mut events, None);
                waker.join().unwrap();
            }
        });
    }

    #[test]
    fn sleep_times_out() {
        within_10s(|| {
            let driver = IoDriver::new().unwrap();
            let start = Instant::now();
            driver.sleep(&mut Events::new(), Some(start + Duration::from_millis(2)));
            assert!(start.elapsed() >= Duration::from_millis(2), "not before the deadline");
        });
    }
}
