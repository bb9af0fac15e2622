//! Child processes with `std::process`'s names, for coroutines: waiting for
//! a child and reading or writing its pipes park the calling coroutine, not
//! its worker thread.
//!
//! ```
//! use std::io::Read;
//! use std::process::Stdio;
//!
//! corio::run(|| {
//!     let mut child = corio::process::Command::new("sh")
//!         .args(["-c", "echo hi"])
//!         .stdout(Stdio::piped())
//!         .spawn()
//!         .unwrap();
//!     let mut out = String::new();
//!     child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
//!     assert_eq!(out, "hi\n");
//!     assert!(child.wait().unwrap().success());
//! });
//! ```
//!
//! How:
//! - Spawning (std's `posix_spawn` or `clone(CLONE_VFORK)` + exec) stays on
//!   the calling worker: it returns as soon as the child has exec'd (or
//!   failed to), which is fast. A missing program is `ErrorKind::NotFound`.
//! - The pipes are std's, switched to non-blocking mode and wrapped in
//!   [`Async`](crate::io::Async).
//! - [`Child::wait`] opens a pidfd (`pidfd_open`, Linux >= 5.3), which turns
//!   readable when the child exits, parks on it through `Async`, then reaps
//!   the child with `waitpid` (std's `try_wait`). Where `pidfd_open` fails
//!   (`ENOSYS` under some sandboxes), the blocking `waitpid` runs on the
//!   blocking pool instead.
//! - [`Command::output`] reads stdout and stderr concurrently (stderr in a
//!   second coroutine, or a scoped thread on a plain thread), so a child that
//!   fills one pipe while the parent reads the other cannot deadlock.
//!
//! Invariants: a `Child`'s pidfd, once opened, refers to its child until the
//! `Child` is dropped (the pid cannot be reused before it is reaped, and only
//! this `Child` reaps it); `Command` records which stdio streams the caller
//! set, so `output` pipes only the unset ones (and restores std's defaults
//! afterwards), as std's does.

mod child;

pub use child::{Child, ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output, Stdio};

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::Path;

/// A process builder, as [`std::process::Command`] (which it wraps); the
/// [`Child`] it spawns parks coroutines instead of blocking threads.
pub struct Command {
    inner: std::process::Command,
    /// Which of stdin, stdout and stderr the caller set.
    set: [bool; 3],
}

impl Command {
    /// A command to run `program` (looked up in `PATH` if it has no slash),
    /// with no arguments, the parent's environment and directory, and
    /// inherited stdio (for `spawn` and `status`).
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command { inner: std::process::Command::new(program), set: [false; 3] }
    }

    /// Adds an argument.
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable of the child.
    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(&mut self, key: K, val: V) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Sets environment variables of the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Sets the child's stdin (default: inherited; `output` uses null).
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdin(cfg);
        self.set[0] = true;
        self
    }

    /// Sets the child's stdout (default: inherited; `output` pipes it).
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdout(cfg);
        self.set[1] = true;
        self
    }

    /// Sets the child's stderr (default: inherited; `output` pipes it).
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stderr(cfg);
        self.set[2] = true;
        self
    }

    /// Starts the child (on the calling thread: see the module docs).
    ///
    /// # Errors
    /// std's: `NotFound` for a program that does not exist,
    /// `PermissionDenied` for one that is not executable, and so on; or
    /// setting a pipe to non-blocking mode failed.
    pub fn spawn(&mut self) -> io::Result<Child> {
        Child::new(self.inner.spawn()?)
    }

    /// Runs the child to its end, with stdin null and stdout and stderr
    /// captured (unless set), and returns its status and output.
    ///
    /// # Errors
    /// As [`spawn`](Command::spawn), or reading a pipe or waiting failed.
    pub fn output(&mut self) -> io::Result<Output> {
        let [stdin, stdout, stderr] = self.set;
        if !stdin {
            self.inner.stdin(Stdio::null());
        }
        if !stdout {
            self.inner.stdout(Stdio::piped());
        }
        if !stderr {
            self.inner.stderr(Stdio::piped());
        }
        let spawned = self.inner.spawn();
        // Back to what spawn and status use by default.
        for (was_set, which) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
            if !was_set {
                match which {
                    0 => self.inner.stdin(Stdio::inherit()),
                    1 => self.inner.stdout(Stdio::inherit()),
                    _ => self.inner.stderr(Stdio::inherit()),
                };
            }
        }
        Child::new(spawned?)?.wait_with_output()
    }

    /// Runs the child to its end (stdio inherited unless set) and returns
    /// its exit status.
    ///
    /// # Errors
    /// As [`spawn`](Command::spawn), or waiting failed.
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    /// The wrapped std command (for what this type does not forward, such as
    /// `std::os::unix::process::CommandExt`). Stdio set through it counts as
    /// unset for [`output`](Command::output), which then overrides it: set
    /// stdio with this type's methods.
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }
}

impl From<std::process::Command> for Command {
    /// Wraps a std command; its stdio counts as unset for `output`.
    fn from(inner: std::process::Command) -> Command {
        Command { inner, set: [false; 3] }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
