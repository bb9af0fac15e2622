//! Shared helpers for the integration tests: plain threads, loopback sockets, bounded time.
#![allow(dead_code)]

use corio_netpoll::{ArcWake, Direction, Events, Poller, Readiness, Registration};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

pub const LIMIT: Duration = Duration::from_secs(20);

/// A non-blocking socket pair: (registered side, plain peer).
pub fn pair(poller: &Poller) -> (Registration<UnixStream>, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    (Registration::new(poller, a).unwrap(), b)
}

/// A waker that counts its calls.
pub fn counting_waker() -> (Arc<AtomicUsize>, ArcWake) {
    let c = Arc::new(AtomicUsize::new(0));
    let c2 = c.clone();
    let w: ArcWake = Arc::new(move || {
        c2.fetch_add(1, Ordering::SeqCst);
    });
    (c, w)
}

/// The current thread as a waker (`Thread::unpark`).
pub fn thread_waker() -> ArcWake {
    Arc::new(thread::current())
}

/// Run `f` on a thread and fail (instead of hanging) if it does not finish within `limit`.
pub fn bounded<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            h.join().unwrap();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => unreachable!(),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test body did not finish within {limit:?}"),
    }
}

/// A thread that owns `poller` and waits on it until stopped.
pub struct PollThread {
    stop: Arc<AtomicBool>,
    poller: Poller,
    handle: Option<thread::JoinHandle<usize>>,
}

impl PollThread {
    pub fn start(poller: &Poller) -> PollThread {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, p) = (stop.clone(), poller.clone());
        let handle = thread::spawn(move || {
            let mut events = Events::new();
            let mut delivered = 0;
            while !s.load(Ordering::SeqCst) {
                delivered += p.wait(&mut events, Some(Duration::from_secs(1))).unwrap();
            }
            delivered
        });
        PollThread { stop, poller: poller.clone(), handle: Some(handle) }
    }

    pub fn stop(mut self) -> usize {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        self.poller.notify().unwrap();
        self.handle.take().map_or(0, |h| h.join().unwrap())
    }
}

impl Drop for PollThread {
    fn drop(&mut self) {
        if self.handle.is_some() {
            self.stop_inner();
        }
    }
}

/// The runtime's protocol, on a plain thread: try the syscall; on EAGAIN arm (or find Ready and
/// retry); park; retry. Panics past `deadline`.
pub fn wait_io<T: std::os::fd::AsFd, R>(
    reg: &Registration<T>,
    dir: Direction,
    waker: &ArcWake,
    deadline: Instant,
    mut op: impl FnMut(&T) -> io::Result<R>,
) -> io::Result<R> {
    loop {
        match op(reg.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => return other,
        }
        loop {
            match reg.poll_ready(dir, waker)? {
                Readiness::Ready => break,
                Readiness::Armed => {
                    let now = Instant::now();
                    assert!(now < deadline, "waiter never woken (lost wake-up?)");
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }
}

pub fn read_blocking(
    reg: &Registration<UnixStream>,
    buf: &mut [u8],
    waker: &ArcWake,
    deadline: Instant,
) -> io::Result<usize> {
    wait_io(reg, Direction::Read, waker, deadline, |mut s| s.read(buf))
}

pub fn write_all_blocking(
    reg: &Registration<UnixStream>,
    mut data: &[u8],
    waker: &ArcWake,
    deadline: Instant,
) -> io::Result<()> {
    while !data.is_empty() {
        let n = wait_io(reg, Direction::Write, waker, deadline, |mut s| s.write(data))?;
        data = &data[n..];
    }
    Ok(())
}
