//! Errors returned by readiness operations, and their mapping to `std::io::Error`.
//!
//! - [`PollError::Closed`]: the registration was closed (explicitly or by drop) and its waiters
//!   were woken. Converted to an `io::Error` of kind [`io::ErrorKind::NotConnected`] carrying the
//!   `PollError` as its inner error, so [`is_closed`] can recognise it after conversion. (Go's
//!   equivalent is `ErrNetClosing`, "use of closed network connection".)
//! - [`PollError::Busy`]: a second, different waiter tried to wait on a direction that already has
//!   one (Go's fatal "double wait"). Converted to kind [`io::ErrorKind::Other`]. The integrator is
//!   expected to prevent it by serialising operations per direction (Go's `fdMutex`).

use std::{error::Error, fmt, io};

/// Why a readiness operation could not proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollError {
    /// The registration has been closed; no readiness will ever be reported again.
    Closed,
    /// Another waiter is already waiting on this direction of this registration.
    Busy,
}

impl fmt::Display for PollError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PollError::Closed => f.write_str("netpoll registration closed"),
            PollError::Busy => {
                f.write_str("netpoll double wait: another waiter already waits on this direction")
            }
        }
    }
}

impl Error for PollError {}

impl From<PollError> for io::Error {
    fn from(e: PollError) -> io::Error {
        let kind = match e {
            PollError::Closed => io::ErrorKind::NotConnected,
            PollError::Busy => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// True if `err` was produced from [`PollError::Closed`].
pub fn is_closed(err: &io::Error) -> bool {
    err.get_ref().and_then(|e| e.downcast_ref::<PollError>()).is_some_and(|e| *e == PollError::Closed)
}
