//! [`Events`]: the buffer one `epoll_wait` fills.
//!
//! Why not `polling::Events`: `polling`'s `wait` costs five syscalls (it
//! re-arms a timerfd and its notifier eventfd around every `epoll_pwait`),
//! measured here as 1.6 us for a wait that finds nothing. A worker that sleeps
//! and wakes tens of thousands of times a second pays that on every cycle, so
//! the poller calls `epoll_wait` on `polling`'s epoll fd itself (one syscall)
//! and keeps `polling` for creating the epoll instance and deleting fds
//! (registration is a direct `epoll_ctl`, see `registration`). Keys are what
//! is stored in `epoll_event.u64`.

/// Space for the readiness events of one wait.
pub struct Events {
    pub(crate) list: Vec<libc::epoll_event>,
    pub(crate) len: usize,
}

impl Events {
    /// Room for 1024 events per wait.
    pub fn new() -> Events {
        Events::with_capacity(1024)
    }

    /// Room for `capacity` events per wait (at least 1).
    pub fn with_capacity(capacity: usize) -> Events {
        Events { list: vec![libc::epoll_event { events: 0, u64: 0 }; capacity.max(1)], len: 0 }
    }

    /// Forgets the events of the last wait.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Number of events the last wait returned.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the last wait returned nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw events of the last wait (stale keys included: dispatch is
    /// what filters those out).
    pub fn iter(&self) -> impl Iterator<Item = RawEvent> + '_ {
        self.list[..self.len].iter().map(|ev| {
            let flags = ev.events as libc::c_int;
            let key = ev.u64 as usize;
            let failed = flags & (libc::EPOLLHUP | libc::EPOLLERR) != 0;
            let urgent = flags & libc::EPOLLPRI != 0;
            let closed_or_urgent = failed || urgent || flags & libc::EPOLLRDHUP != 0;
            let readable = closed_or_urgent || flags & libc::EPOLLIN != 0;
            let writable = failed || flags & libc::EPOLLOUT != 0;
            RawEvent { key, readable, writable, closed_or_urgent }
        })
    }
}

/// One event as `epoll_wait` returned it, decoded. Hang-ups and errors count
/// as both readable and writable, so whoever waits retries its syscall and
/// sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawEvent {
    /// The registration key (slab index and generation).
    pub key: usize,
    /// Readable, or peer closed, hang-up or error.
    pub readable: bool,
    /// Writable, or hang-up or error.
    pub writable: bool,
    /// The peer closed its write half (EPOLLRDHUP), hung up or failed
    /// (EPOLLHUP, EPOLLERR), or sent urgent data (EPOLLPRI). After any of
    /// these a short read no longer proves the receive buffer drained: a
    /// pending EOF raises no further edge, and Linux stops a read at the
    /// urgent mark with data still queued.
    pub closed_or_urgent: bool,
}

impl Default for Events {
    fn default() -> Events {
        Events::new()
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("len", &self.len).field("capacity", &self.list.len()).finish()
    }
}
