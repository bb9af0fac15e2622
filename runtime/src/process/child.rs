//! `Child` and its pipes: waiting on a pidfd, pipes on `Async`.
//!
//! Invariants: `pidfd` is opened at most once, on the first `wait` that
//! finds the child running, and refers to this child (not reaped before
//! `wait`/`try_wait` reaps it, and only through `inner`); once the child is
//! reaped std's `Child` caches its status, so later waits return it again
//! without touching the pidfd.

use crate::io::{set_nonblocking, Async};
use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::process::{ExitStatus, Output};

/// A running or exited child process, as [`std::process::Child`] (which it
/// wraps), whose [`wait`](Child::wait) and pipes park the calling coroutine.
pub struct Child {
    inner: std::process::Child,
    /// The pidfd, once a wait needed it (`None` also when `pidfd_open` failed).
    pidfd: Option<Async<OwnedFd>>,
    /// The child's stdin, if it was piped.
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if it was piped.
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if it was piped.
    pub stderr: Option<ChildStderr>,
}

impl Child {
    pub(super) fn new(mut inner: std::process::Child) -> io::Result<Child> {
        let stdin = inner.stdin.take().map(|p| Async::new(p).map(ChildStdin)).transpose();
        let stdout = inner.stdout.take().map(|p| Async::new(p).map(ChildStdout)).transpose();
        let stderr = inner.stderr.take().map(|p| Async::new(p).map(ChildStderr)).transpose();
        let (stdin, stdout, stderr) = match (stdin, stdout, stderr) {
            (Ok(stdin), Ok(stdout), Ok(stderr)) => (stdin, stdout, stderr),
            (Err(err), ..) | (_, Err(err), _) | (.., Err(err)) => {
                // Do not leave a zombie behind (the pipes close on return).
                let _ = inner.kill();
                let _ = crate::blocking::run_blocking(|| inner.wait());
                return Err(err);
            }
        };
        Ok(Child { inner, pidfd: None, stdin, stdout, stderr })
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Sends `SIGKILL` to the child (nothing if it was already reaped).
    ///
    /// # Errors
    /// std's (`kill` failed).
    pub fn kill(&mut self) -> io::Result<()> {
        self.inner.kill()
    }

    /// The exit status if the child has exited (reaping it), else `None`;
    /// never waits.
    ///
    /// # Errors
    /// std's (`waitpid` failed).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.inner.try_wait()
    }

    /// Closes the child's stdin (as std does, so a child reading it sees
    /// EOF), waits until the child exits (parking a coroutine on a pidfd;
    /// blocking a plain thread in `poll(2)`), reaps it and returns its
    /// status. Later calls return the same status.
    ///
    /// # Errors
    /// std's, or the wait failed (the coroutine is being cancelled).
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        loop {
            if let Some(status) = self.inner.try_wait()? {
                return Ok(status);
            }
            if self.pidfd.is_none() {
                match pidfd_open(self.inner.id()) {
                    Ok(fd) => self.pidfd = Some(Async::new(fd)?),
                    Err(_) => {
                        // No pidfd (ENOSYS, EPERM under seccomp...): a
                        // blocking waitpid, off the worker.
                        let inner = &mut self.inner;
                        return crate::blocking::run_blocking(move || inner.wait());
                    }
                }
            }
            if let Some(pidfd) = &self.pidfd {
                pidfd.readable()?;
            }
        }
    }

    /// Waits for the child to exit while reading all of its stdout and
    /// stderr (those that were piped; concurrently, so neither can fill up
    /// and stall the child) and returns them with its status.
    ///
    /// # Errors
    /// Reading a pipe or waiting failed.
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = read_both(self.stdout.take(), self.stderr.take())?;
        let status = self.wait()?;
        Ok(Output { status, stdout, stderr })
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.inner.id())
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish_non_exhaustive()
    }
}

/// `pidfd_open(pid, 0)`: an fd that turns readable when `pid` exits.
fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1;
    // it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd (O_CLOEXEC by default for
    // pidfds), and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Reads both pipes to their ends concurrently: stderr in a second coroutine
/// (or a scoped thread outside a coroutine), stdout here.
fn read_both(stdout: Option<ChildStdout>, stderr: Option<ChildStderr>) -> io::Result<(Vec<u8>, Vec<u8>)> {
    fn drain(pipe: Option<impl Read>) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            pipe.read_to_end(&mut buf)?;
        }
        Ok(buf)
    }
    let (stdout, stderr) = match (stdout, stderr) {
        (Some(stdout), Some(stderr)) => (stdout, stderr),
        (stdout, stderr) => return Ok((drain(stdout)?, drain(stderr)?)),
    };
    if crate::sched::context::in_coroutine() {
        let other = crate::coroutine::spawn(move || drain(Some(stderr)));
        let out = drain(Some(stdout));
        let err = other.join().unwrap_or_else(|payload| std::panic::resume_unwind(payload));
        Ok((out?, err?))
    } else {
        std::thread::scope(|scope| {
            let other = scope.spawn(move || drain(Some(stderr)));
            let out = drain(Some(stdout));
            let err = other.join().unwrap_or_else(|payload| std::panic::resume_unwind(payload));
            Ok((out?, err?))
        })
    }
}

/// Declares a pipe type wrapping `Async<std::process::$std>`.
macro_rules! pipe {
    ($(#[$doc:meta])* $name:ident, $std:ident) => {
        $(#[$doc])*
        pub struct $name(Async<std::process::$std>);

        impl $name {
            /// Unwraps std's pipe, switched back to blocking mode (ready to
            /// be handed to another process with `Stdio::from`).
            ///
            /// # Errors
            /// If `fcntl` fails.
            pub fn into_inner(self) -> io::Result<std::process::$std> {
                let pipe = self.0.into_inner();
                set_nonblocking(pipe.as_fd(), false)?;
                Ok(pipe)
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.0.as_raw_fd()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0.as_raw_fd()).finish()
            }
        }
    };
}

pipe!(
    /// The child's stdin (a non-blocking pipe): writes park the coroutine
    /// while the pipe is full. Drop it to close the pipe (EOF for the child).
    ChildStdin,
    ChildStdin
);
pipe!(
    /// The child's stdout (a non-blocking pipe): reads park the coroutine
    /// until the child writes or closes it.
    ChildStdout,
    ChildStdout
);
pipe!(
    /// The child's stderr (a non-blocking pipe): reads park the coroutine
    /// until the child writes or closes it.
    ChildStderr,
    ChildStderr
);

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Read for ChildStdout {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.0.read_vectored(bufs)
    }
}

impl Read for ChildStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }

    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        self.0.read_vectored(bufs)
    }
}
