//! The receiving half of a channel, and its iterators.

use std::fmt;
use std::iter::FusedIterator;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{RecvError, RecvTimeoutError, TryRecvError};
use super::shared::{Chan, TryRecv};

/// The receiving half of a channel. Cloneable: any number of receivers may
/// receive concurrently; each value goes to exactly one of them.
///
/// Dropping the last `Receiver` drops the buffered values and makes every
/// send fail.
pub struct Receiver<T> {
    pub(crate) chan: Arc<Chan<T>>,
}

impl<T> Receiver<T> {
    /// Receives a value, parking the calling coroutine while the channel is
    /// empty. Fails once the channel is closed (explicitly or because every
    /// sender is gone) and its buffer is drained.
    pub fn recv(&self) -> Result<T, RecvError> {
        match self.chan.recv(None) {
            Ok(Some(v)) => Ok(v),
            Ok(None) | Err(()) => Err(RecvError),
        }
    }

    /// Receives a value only if that needs no waiting: one is buffered, or
    /// (any capacity) a sender is already waiting.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut g = self.chan.lock();
        match g.try_recv() {
            TryRecv::Received(v, w) => {
                drop(g);
                if let Some(co) = w {
                    co.unpark();
                }
                Ok(v)
            }
            TryRecv::Empty => Err(TryRecvError::Empty),
            TryRecv::Disconnected => Err(TryRecvError::Disconnected),
        }
    }

    /// As [`Receiver::recv`], but gives up after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.recv_deadline(deadline),
            None => self.recv().map_err(RecvTimeoutError::from),
        }
    }

    /// As [`Receiver::recv`], but gives up at `deadline`.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        match self.chan.recv(Some(deadline)) {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(RecvTimeoutError::Timeout),
            Err(()) => Err(RecvTimeoutError::Disconnected),
        }
    }

    /// A blocking iterator: yields values until the channel is closed and
    /// drained. Same as `for v in &rx`.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator: yields the values available right now.
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    /// True once the channel is closed (explicitly or because every sender
    /// is gone). Buffered values may still be received.
    pub fn is_closed(&self) -> bool {
        self.chan.lock().is_closed()
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
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver { chan: Arc::clone(&self.chan) }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.disconnect_receivers();
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Receiver { .. }")
    }
}

/// Blocking iterator over a borrowed [`Receiver`]; see [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> FusedIterator for Iter<'_, T> {}

/// Non-blocking iterator over a borrowed [`Receiver`]; see
/// [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Blocking iterator owning its [`Receiver`]; from `rx.into_iter()`.
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> FusedIterator for IntoIter<T> {}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
