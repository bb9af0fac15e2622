//! Files and directories without blocking the worker: std::fs's functions,
//! [`File`] and [`OpenOptions`], each system call run on the blocking pool.
//!
//! # What runs where
//!
//! Every function here has std::fs's name and signature and runs the std
//! call through the blocking pool ([`crate::blocking`]): called from a
//! coroutine, the coroutine parks while a pool thread makes the call, and
//! its worker runs other coroutines meanwhile; called from a plain thread,
//! the std call runs right there (blocking that thread, as std does). Paths
//! are borrowed, not copied (`&Path` may cross threads; the caller waits).
//!
//! [`read_dir`] collects the whole directory on the pool and returns a
//! [`ReadDir`] over the collected `io::Result<std::fs::DirEntry>`s (std's own
//! entry type). `DirEntry::path`, `file_name` and usually `file_type` need no
//! system call; `DirEntry::metadata` makes one, on the calling thread.
//!
//! # Buffering in [`File`]
//!
//! A pool round trip costs a thread hop (a few microseconds), so a [`File`]
//! buffers, as `tokio::fs::File` does, and a loop of small reads or writes
//! pays one hop per [`BUFFER_SIZE`] bytes, not one per call. Its states:
//!
//! - **Idle**: nothing buffered; the OS file offset is the logical position.
//! - **Reading**: bytes read ahead and not yet consumed are buffered; the OS
//!   offset is ahead of the logical position by their count. A read is served
//!   from the buffer; an empty buffer is refilled with one pool read of
//!   [`BUFFER_SIZE`] bytes (a caller's buffer of at least that size is read
//!   into directly, unbuffered). Back to Idle when the buffer is used up.
//! - **Writing**: bytes written and not yet handed to the OS are buffered;
//!   the OS offset is behind the logical position by their count. A write is
//!   copied into the buffer; when the buffer has no room for it, the buffer
//!   is first written out in one pool call (so an error is reported before
//!   any of the new bytes are taken, as `BufWriter` does); one of at least
//!   [`BUFFER_SIZE`] bytes is then written directly. Back to Idle once
//!   written out.
//!
//! Moving between them: a write in Reading first discards the read-ahead
//! (one pool seek back by its length); a read in Writing first writes the
//! buffer out (reads after writes see the written bytes). `seek` writes out
//! or discards the buffer first (a `SeekFrom::Current` offset is taken from
//! the logical position, not the OS one). `set_len`, `metadata`, `sync_all`,
//! `sync_data` and `try_clone` write out (and `set_len`/`try_clone` discard
//! read-ahead) before their call.
//!
//! The seek back over read-ahead needs a seekable file: on a pipe or FIFO
//! opened as a [`File`], reads work but a write after a buffered read fails.
//!
//! # When data reaches the file, and the disk
//!
//! Bytes passed to `write` reach the file (visible to other handles and
//! processes, e.g. `std::fs::read`) when the write buffer is written out:
//! when it is full ([`BUFFER_SIZE`] bytes) and a further write comes, on
//! `flush`, `seek`, `set_len`, `metadata`, `sync_all`,
//! `sync_data`, `try_clone`, `into_std`, a read, or when the [`File`] is
//! dropped. A write of at least [`BUFFER_SIZE`] bytes into an empty buffer
//! reaches the file before `write` returns. They reach the disk (survive a
//! power cut) only after `sync_all` or `sync_data`, as with std.
//!
//! **Errors on drop are lost** (as with `std::io::BufWriter`): dropping a
//! [`File`] writes out what is left, best effort, and nobody hears of a
//! failure. Call `flush` (or `sync_all`) before dropping to see write errors.
//!
//! # Why a thread pool and not io_uring (yet)
//!
//! Regular files are always "ready" to epoll, so the readiness driver corio
//! uses for sockets cannot help. io_uring could submit file I/O without a
//! thread, but needs a completion-based driver beside epoll, registered
//! buffers that outlive a parked coroutine, and kernel support that varies
//! (many containers disable it through seccomp). The pool is simple and
//! portable; an io_uring backend can later sit behind this same API.

mod file;
mod open_options;

pub use self::file::{File, BUFFER_SIZE};
pub use self::open_options::OpenOptions;

use crate::blocking::run_blocking;
use std::fs::{DirEntry, Metadata, Permissions};
use std::io;
use std::path::{Path, PathBuf};

/// Reads the whole file at `path` ([`std::fs::read`], on the blocking pool).
pub fn read<P: AsRef<Path>>(path: P) -> io::Result<Vec<u8>> {
    let path = path.as_ref();
    run_blocking(|| std::fs::read(path))
}

/// Reads the whole file at `path` as UTF-8 ([`std::fs::read_to_string`], on
/// the blocking pool).
pub fn read_to_string<P: AsRef<Path>>(path: P) -> io::Result<String> {
    let path = path.as_ref();
    run_blocking(|| std::fs::read_to_string(path))
}

/// Creates or truncates the file at `path` and writes `contents` to it
/// ([`std::fs::write`], on the blocking pool).
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    let (path, contents) = (path.as_ref(), contents.as_ref());
    run_blocking(|| std::fs::write(path, contents))
}

/// The metadata of `path`, following symlinks ([`std::fs::metadata`], on the
/// blocking pool).
pub fn metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    let path = path.as_ref();
    run_blocking(|| std::fs::metadata(path))
}

/// The metadata of `path` itself, not following a symlink
/// ([`std::fs::symlink_metadata`], on the blocking pool).
pub fn symlink_metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    let path = path.as_ref();
    run_blocking(|| std::fs::symlink_metadata(path))
}

/// Creates the directory `path` ([`std::fs::create_dir`], on the blocking
/// pool).
pub fn create_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref();
    run_blocking(|| std::fs::create_dir(path))
}

/// Creates the directory `path` and any missing parents
/// ([`std::fs::create_dir_all`], on the blocking pool).
pub fn create_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref();
    run_blocking(|| std::fs::create_dir_all(path))
}

/// Removes the file at `path` ([`std::fs::remove_file`], on the blocking
/// pool).
pub fn remove_file<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref();
    run_blocking(|| std::fs::remove_file(path))
}

/// Removes the empty directory `path` ([`std::fs::remove_dir`], on the
/// blocking pool).
pub fn remove_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref();
    run_blocking(|| std::fs::remove_dir(path))
}

/// Removes the directory `path` and everything in it
/// ([`std::fs::remove_dir_all`], one pool call for the whole tree).
pub fn remove_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    let path = path.as_ref();
    run_blocking(|| std::fs::remove_dir_all(path))
}

/// Renames `from` to `to`, replacing `to` if it exists ([`std::fs::rename`],
/// on the blocking pool).
pub fn rename<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<()> {
    let (from, to) = (from.as_ref(), to.as_ref());
    run_blocking(|| std::fs::rename(from, to))
}

/// Copies the contents and permissions of file `from` to `to`; returns the
/// bytes copied ([`std::fs::copy`], one pool call for the whole copy).
pub fn copy<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<u64> {
    let (from, to) = (from.as_ref(), to.as_ref());
    run_blocking(|| std::fs::copy(from, to))
}

/// The absolute path of `path` with every symlink resolved
/// ([`std::fs::canonicalize`], on the blocking pool).
pub fn canonicalize<P: AsRef<Path>>(path: P) -> io::Result<PathBuf> {
    let path = path.as_ref();
    run_blocking(|| std::fs::canonicalize(path))
}

/// Creates a hard link `link` to the file `original`
/// ([`std::fs::hard_link`], on the blocking pool).
pub fn hard_link<P: AsRef<Path>, Q: AsRef<Path>>(original: P, link: Q) -> io::Result<()> {
    let (original, link) = (original.as_ref(), link.as_ref());
    run_blocking(|| std::fs::hard_link(original, link))
}

/// Sets the permissions of `path` ([`std::fs::set_permissions`], on the
/// blocking pool).
pub fn set_permissions<P: AsRef<Path>>(path: P, perm: Permissions) -> io::Result<()> {
    let path = path.as_ref();
    run_blocking(|| std::fs::set_permissions(path, perm))
}

/// The entries of directory `path` ([`std::fs::read_dir`]), all read in one
/// pool call and returned as an iterator over the collected results (in the
/// order the OS gave them; `.` and `..` left out, as std does).
pub fn read_dir<P: AsRef<Path>>(path: P) -> io::Result<ReadDir> {
    let path = path.as_ref();
    run_blocking(|| {
        let entries = std::fs::read_dir(path)?.collect::<Vec<_>>();
        Ok(ReadDir { entries: entries.into_iter() })
    })
}

/// The entries of a directory, read ahead by [`read_dir`]: an iterator over
/// `io::Result<std::fs::DirEntry>` that makes no system call itself.
#[derive(Debug)]
pub struct ReadDir {
    entries: std::vec::IntoIter<io::Result<DirEntry>>,
}

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;

    fn next(&mut self) -> Option<io::Result<DirEntry>> {
        self.entries.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for ReadDir {}
