//! What a parked coroutine waits on, beyond its [`WaitReason`](super::WaitReason):
//! the object (a socket, a channel, a lock, a deadline, a joined coroutine),
//! recorded by the blocking call just before it parks, for the coroutine dump.
//! Written and read only on the coroutine's owner thread (a `Cell` in the
//! task), so recording it costs a plain store.

use std::net::SocketAddr;
use std::time::Instant;

/// The direction of a socket wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDirection {
    /// Waiting to read (or accept, or receive).
    Read,
    /// Waiting to write (or connect).
    Write,
}

/// The kind of synchronisation a coroutine waits on (`WaitReason::Sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// A channel receive.
    ChanReceive,
    /// A channel send.
    ChanSend,
    /// A `select!` over several channels.
    Select,
    /// `Mutex::lock`.
    Mutex,
    /// `RwLock::read`.
    RwLockRead,
    /// `RwLock::write`.
    RwLockWrite,
    /// `Condvar::wait`.
    Condvar,
    /// `Semaphore::acquire`.
    Semaphore,
    /// `WaitGroup::wait`.
    WaitGroup,
    /// `Barrier::wait`.
    Barrier,
    /// `OnceLock` initialisation by another coroutine.
    OnceLock,
}

/// The object a parked coroutine waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitObject {
    /// Nothing recorded (running, or a bare `park`).
    #[default]
    None,
    /// A socket: its fd, the direction, and its peer if connected.
    Socket {
        /// The socket's file descriptor.
        fd: i32,
        /// Read or write readiness.
        direction: IoDirection,
        /// The connected peer, if any.
        peer: Option<SocketAddr>,
    },
    /// A channel, lock or other primitive, by kind and address (the address
    /// tells two waits on the same object apart).
    Sync {
        /// What kind of primitive and operation.
        kind: SyncKind,
        /// The primitive's address.
        addr: usize,
    },
    /// A sleep until this deadline.
    Sleep {
        /// When the sleep ends.
        until: Instant,
    },
    /// A join of this coroutine.
    Join {
        /// The joined coroutine's id.
        id: u64,
    },
}
