//! The error a blocking I/O call returns when its coroutine can no longer
//! wait: a destructor run by the runtime's shutdown unwind (or while the
//! runtime drops coroutines that never started) that reads or writes a socket
//! whose operation would block.
//!
//! Its kind is `ErrorKind::Other`, never `Interrupted`: std's `write_all`,
//! `read_exact`, `io::copy` and `BufWriter`'s flush retry `Interrupted` for
//! ever, which turned such a destructor into a 100 % CPU spin that kept the
//! runtime from ever shutting down. Recognise it with [`is_cancelled_error`].

use std::fmt;
use std::io;

/// The payload of the error (private: recognised through `is_cancelled_error`).
#[derive(Debug)]
struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("corio: the coroutine was cancelled (its runtime is shutting down); it cannot wait")
    }
}

impl std::error::Error for Cancelled {}

/// A new cancellation error (kind `Other`).
pub(crate) fn cancelled_error() -> io::Error {
    io::Error::other(Cancelled)
}

/// Is `err` the error of an I/O call that gave up because its coroutine was
/// cancelled (the runtime is shutting down and unwinding it)? Its kind is
/// `ErrorKind::Other`, so std's helpers (`write_all`, `read_exact`, a
/// `BufWriter`'s flush) return it instead of retrying.
///
/// ```
/// let err = std::io::Error::other("unrelated");
/// assert!(!corio::is_cancelled_error(&err));
/// ```
pub fn is_cancelled_error(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|inner| inner.is::<Cancelled>())
}
