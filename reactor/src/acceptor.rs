//! The acceptor (Netty's boss event loop): its own thread, waiting in its own [`Poller`] on the
//! listening socket, handing each accepted connection to the event loops round-robin.
//!
//! # Why a thread of its own (and not a registration on loop 0)
//!
//! - Accept bursts (thousands of connects at once) do not delay the connections already bound
//!   to loop 0, and loop 0 does not get more work than its peers.
//! - The EMFILE back-off is a plain timed wait in this thread. On an event loop it would need a
//!   timer facility in the loop and care not to stall the loop's connections meanwhile.
//! - The cost is one mostly-sleeping thread and one cross-thread hand-over per connection (a
//!   mutex push plus a coalesced [`Poller::notify`]), which is small next to `accept4` itself.
//!
//! # Invariants
//!
//! - The listener is non-blocking and registered edge-triggered: after an edge the acceptor
//!   accepts until `EAGAIN`, then waits. Sockets are accepted with
//!   `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`, so they are ready for the loops without further
//!   syscalls (plus `TCP_NODELAY` if configured).
//! - Out of file descriptors (EMFILE/ENFILE) or memory: back off 5 ms, doubling up to 1 s (Go's
//!   net/http policy), retrying `accept4` at the deadline whatever events came in meanwhile
//!   (the pending connection stays in the backlog and raises no new edge). The back-off is
//!   reset by a successful accept. The stop flag is checked after every wait, and
//!   [`Server::shutdown`](crate::Server::shutdown) notifies the acceptor's poller, so stopping
//!   never waits out a back-off.
//! - `ECONNABORTED` (the peer gave up while in the backlog) and `EINTR` are retried at once.

use crate::event_loop::LoopShared;
use corio_netpoll::{Events, Poller, Registration};
use socket2::Socket;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MIN_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

pub(crate) struct Acceptor {
    pub(crate) poller: Poller,
    listener: Registration<Socket>,
    loops: Vec<Arc<LoopShared>>,
    stop: Arc<AtomicBool>,
    nodelay: bool,
}

impl Acceptor {
    /// `listener` must be listening and non-blocking.
    pub(crate) fn new(
        listener: Socket,
        loops: Vec<Arc<LoopShared>>,
        stop: Arc<AtomicBool>,
        nodelay: bool,
    ) -> io::Result<Acceptor> {
        let poller = Poller::new()?;
        let listener = Registration::new(&poller, listener)?;
        Ok(Acceptor { poller, listener, loops, stop, nodelay })
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Waits for readiness, a notify, or `timeout`.
    fn wait(&self, events: &mut Events, timeout: Option<Duration>) {
        if let Err(err) = self.poller.wait(events, timeout) {
            if err.kind() != io::ErrorKind::Interrupted {
                eprintln!("corio-reactor: acceptor: poll failed: {err}");
                std::thread::sleep(MIN_BACKOFF); // never spin on a broken poller
            }
        }
    }

    /// Accepts until stopped; the listener is closed when this returns.
    pub(crate) fn run(self) {
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        let mut events = Events::new();
        let mut next = 0;
        let mut backoff = Duration::ZERO;
        while !self.stopped() {
            let err = match self.listener.get_ref().accept4(flags) {
                Ok((socket, peer)) => {
                    backoff = Duration::ZERO;
                    if self.nodelay {
                        let _ = socket.set_tcp_nodelay(true);
                    }
                    let Some(peer) = peer.as_socket() else { continue };
                    self.loops[next].hand_over(socket.into(), peer);
                    next = (next + 1) % self.loops.len();
                    continue;
                }
                Err(err) => err,
            };
            match err.kind() {
                io::ErrorKind::WouldBlock => {
                    self.wait(&mut events, None);
                    continue;
                }
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => continue,
                _ => {}
            }
            backoff = (backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
            eprintln!("corio-reactor: accept: {err}; retrying in {backoff:?}");
            let deadline = Instant::now() + backoff;
            while !self.stopped() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.wait(&mut events, Some(left));
            }
        }
    }
}
