//! The sending half of a channel.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{SendError, SendTimeoutError, TrySendError};
use super::shared::{Chan, SendFail, TrySend};

/// The sending half of a channel. Cloneable: any number of senders may send
/// concurrently (values from one sender arrive in the order it sent them).
///
/// Dropping the last `Sender` closes the channel, as [`Sender::close`] does.
pub struct Sender<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

impl<T> Sender<T> {
    /// Sends `value`, parking the calling coroutine while the channel is full
    /// (for a rendezvous channel: until a receiver takes the value).
    ///
    /// Fails, handing the value back, if the channel is closed or every
    /// receiver is gone, including when that happens while parked.
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        match self.chan.send(value, None) {
            Ok(()) => Ok(()),
            Err(SendFail::Disconnected(v)) | Err(SendFail::Timeout(v)) => Err(SendError(v)),
        }
    }

    /// Sends `value` only if that needs no waiting: there is room in the
    /// buffer, or (any capacity) a receiver is already waiting.
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let mut g = self.chan.lock();
        match g.try_send(self.chan.cap, value) {
            TrySend::Sent(w) => {
                drop(g);
                if let Some(co) = w {
                    co.unpark();
                }
                Ok(())
            }
            TrySend::Full(v) => Err(TrySendError::Full(v)),
            TrySend::Disconnected(v) => Err(TrySendError::Disconnected(v)),
        }
    }

    /// As [`Sender::send`], but gives up after `timeout`.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.send_deadline(value, deadline),
            None => self.send(value).map_err(SendTimeoutError::from),
        }
    }

    /// As [`Sender::send`], but gives up at `deadline`.
    pub fn send_deadline(&self, value: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        match self.chan.send(value, Some(deadline)) {
            Ok(()) => Ok(()),
            Err(SendFail::Timeout(v)) => Err(SendTimeoutError::Timeout(v)),
            Err(SendFail::Disconnected(v)) => Err(SendTimeoutError::Disconnected(v)),
        }
    }

    /// Closes the channel, like Go's `close(ch)`, for all senders at once:
    /// later (and currently parked) sends fail with the value handed back,
    /// receivers still get every buffered value and then see disconnection.
    ///
    /// Unlike Go, closing twice is not an error: returns `true` if this call
    /// closed the channel, `false` if it was already closed.
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// True once the channel is closed (by [`Sender::close`] or because
    /// every sender is gone) or every receiver is gone: sends will fail.
    pub fn is_disconnected(&self) -> bool {
        self.chan.lock().is_send_disconnected()
    }

    /// Number of values in the buffer (always 0 for a rendezvous channel).
    pub fn len(&self) -> usize {
        self.chan.lock().len()
    }

    /// True if the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if the buffer is full (always for a rendezvous channel, never
    /// for an unbounded one).
    pub fn is_full(&self) -> bool {
        self.chan.cap.is_some_and(|c| self.len() >= c)
    }

    /// The buffer capacity: `Some(n)` for `bounded(n)`, `None` for unbounded.
    pub fn capacity(&self) -> Option<usize> {
        self.chan.cap
    }

    /// True if both handles belong to the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender { chan: Arc::clone(&self.chan) }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sender { .. }")
    }
}
