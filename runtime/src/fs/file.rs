//! [`File`]: a std file whose system calls run on the blocking pool, with a
//! read-ahead / write-behind buffer so small reads and writes do not each
//! pay a thread hop. The states (Idle, Reading, Writing) and when data
//! reaches the file are in the module doc of `fs`.
//!
//! Invariants: `buf` is empty (no allocation) until first needed, then
//! exactly [`BUFFER_SIZE`] long. Idle: `pos == end == 0`. Reading:
//! `buf[pos..end]` are read-ahead bytes not yet consumed, `pos < end`, and
//! the OS offset is `end - pos` past the logical position. Writing:
//! `buf[..end]` are bytes not yet written, `0 < end`, `pos == 0`, and the OS
//! offset is `end` short of the logical position (in append mode the OS
//! puts them at the end anyway).

use super::OpenOptions;
use crate::blocking::run_blocking;
use std::fmt;
use std::fs::{Metadata, Permissions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;

/// Size of a [`File`]'s buffer: the least a read asks the pool for, and how
/// many written bytes are collected before they are handed to the pool.
pub const BUFFER_SIZE: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Reading,
    Writing,
}

/// An open file whose system calls run on the blocking pool, buffered: see
/// the [module doc](super) for the buffering and when written bytes reach
/// the file (after `flush`, `seek`, `sync_all`, ..., or drop) and the disk
/// (after `sync_all` or `sync_data`).
///
/// Dropping a `File` writes out its buffered bytes, best effort: an error
/// then is lost. Call [`flush`](Write::flush) or [`sync_all`](File::sync_all)
/// first to see it.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("corio-doc-file-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// use std::io::{Read, Write};
/// corio::run(|| -> std::io::Result<()> {
///     let path = dir.join("a");
///     let mut f = corio::fs::File::create(&path)?;
///     for _ in 0..1000 {
///         f.write_all(b"0123456789")?; // buffered: no thread hop per call
///     }
///     f.flush()?; // now in the file
///     let mut s = String::new();
///     corio::fs::File::open(&path)?.read_to_string(&mut s)?;
///     assert_eq!(s.len(), 10_000);
///     Ok(())
/// })
/// .unwrap();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct File {
    std: std::fs::File,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    state: State,
}

impl File {
    /// Opens `path` read-only (as [`std::fs::File::open`], on the pool).
    pub fn open<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Opens `path` write-only, creating or truncating it (as
    /// [`std::fs::File::create`], on the pool).
    pub fn create<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new().write(true).create(true).truncate(true).open(path)
    }

    /// New [`OpenOptions`] (as [`std::fs::File::options`]).
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps an open std file (no system call; nothing buffered yet).
    pub fn from_std(std: std::fs::File) -> File {
        File { std, buf: Vec::new(), pos: 0, end: 0, state: State::Idle }
    }

    /// The std file, after writing out buffered bytes and stepping the OS
    /// offset back over read-ahead (so it is at the logical position). An
    /// error in doing so is lost, as on drop: call [`flush`](Write::flush)
    /// first to see it.
    pub fn into_std(mut self) -> std::fs::File {
        let _ = self.settle();
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the file is moved
        // out exactly once; the buffer is moved out too and dropped here.
        unsafe {
            drop(std::ptr::read(&this.buf));
            std::ptr::read(&this.std)
        }
    }

    /// Writes out buffered bytes, then flushes file data and metadata to the
    /// disk (`fsync`, on the pool).
    pub fn sync_all(&mut self) -> io::Result<()> {
        self.write_out()?;
        let std = &self.std;
        run_blocking(|| std.sync_all())
    }

    /// Writes out buffered bytes, then flushes file data to the disk
    /// (`fdatasync`, on the pool).
    pub fn sync_data(&mut self) -> io::Result<()> {
        self.write_out()?;
        let std = &self.std;
        run_blocking(|| std.sync_data())
    }

    /// Truncates or extends the file to `size` bytes (the position does not
    /// move), after writing out and discarding read-ahead.
    pub fn set_len(&mut self, size: u64) -> io::Result<()> {
        self.settle()?;
        let std = &self.std;
        run_blocking(|| std.set_len(size))
    }

    /// The file's metadata, after writing out buffered bytes (so `len`
    /// counts them).
    pub fn metadata(&mut self) -> io::Result<Metadata> {
        self.write_out()?;
        let std = &self.std;
        run_blocking(|| std.metadata())
    }

    /// Sets the file's permissions (on the pool).
    pub fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        let std = &self.std;
        run_blocking(|| std.set_permissions(perm))
    }

    /// A new handle to the same open file (sharing its OS offset), after
    /// writing out and discarding read-ahead. Each handle has its own buffer.
    pub fn try_clone(&mut self) -> io::Result<File> {
        self.settle()?;
        let std = &self.std;
        run_blocking(|| std.try_clone()).map(File::from_std)
    }

    /// Writes `buf[..end]` out in one pool call (retrying short writes); on
    /// an error keeps what was not written, in order. Idle after success.
    fn write_out(&mut self) -> io::Result<()> {
        if self.state != State::Writing {
            return Ok(());
        }
        let (std, pending) = (&self.std, &self.buf[..self.end]);
        let (written, result) = run_blocking(|| {
            let mut written = 0;
            while written < pending.len() {
                match (&*std).write(&pending[written..]) {
                    Ok(0) => return (written, Err(io::ErrorKind::WriteZero.into())),
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return (written, Err(e)),
                }
            }
            (written, Ok(()))
        });
        self.buf.copy_within(written..self.end, 0);
        self.end -= written;
        if self.end == 0 {
            self.state = State::Idle;
        }
        result
    }

    /// Drops read-ahead, seeking the OS offset back over it. Idle after.
    fn discard_read_ahead(&mut self) -> io::Result<()> {
        if self.state != State::Reading {
            return Ok(());
        }
        let back = (self.end - self.pos) as i64;
        let std = &self.std;
        run_blocking(|| (&*std).seek(SeekFrom::Current(-back)))?;
        self.pos = 0;
        self.end = 0;
        self.state = State::Idle;
        Ok(())
    }

    /// Writes out or discards the buffer: the OS offset is the logical one.
    fn settle(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.discard_read_ahead()
    }

    fn ensure_buffer(&mut self) {
        if self.buf.len() != BUFFER_SIZE {
            self.buf = vec![0; BUFFER_SIZE];
        }
    }
}

impl Read for File {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        self.write_out()?;
        if self.state == State::Idle && !dst.is_empty() {
            if dst.len() >= BUFFER_SIZE {
                let std = &self.std;
                return run_blocking(|| (&*std).read(dst));
            }
            self.ensure_buffer();
            let (std, chunk) = (&self.std, &mut self.buf[..]);
            let n = run_blocking(|| (&*std).read(chunk))?;
            if n == 0 {
                return Ok(0);
            }
            (self.pos, self.end, self.state) = (0, n, State::Reading);
        }
        if self.state != State::Reading {
            return Ok(0); // `dst` is empty
        }
        let n = dst.len().min(self.end - self.pos);
        dst[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.end {
            (self.pos, self.end, self.state) = (0, 0, State::Idle);
        }
        Ok(n)
    }
}

impl Write for File {
    fn write(&mut self, src: &[u8]) -> io::Result<usize> {
        self.discard_read_ahead()?;
        if self.end + src.len() > BUFFER_SIZE {
            // No room: write the buffer out before accepting `src`, so an
            // error is reported by a call none of whose bytes were taken.
            self.write_out()?;
        }
        if src.len() >= BUFFER_SIZE {
            let std = &self.std;
            return run_blocking(|| (&*std).write(src));
        }
        if src.is_empty() {
            return Ok(0);
        }
        self.ensure_buffer();
        self.buf[self.end..self.end + src.len()].copy_from_slice(src);
        self.end += src.len();
        self.state = State::Writing;
        Ok(src.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_out()
    }
}

impl Seek for File {
    /// Writes out or discards the buffer, then seeks (on the pool). A
    /// `SeekFrom::Current` offset is from the logical position: read-ahead
    /// not consumed is not counted as read.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.write_out()?;
        let pos = match pos {
            SeekFrom::Current(offset) if self.state == State::Reading => {
                let unread = (self.end - self.pos) as i64;
                let offset = offset
                    .checked_sub(unread)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek offset out of range"))?;
                (self.pos, self.end, self.state) = (0, 0, State::Idle);
                SeekFrom::Current(offset)
            }
            other => {
                (self.pos, self.end, self.state) = (0, 0, State::Idle);
                other
            }
        };
        let std = &self.std;
        run_blocking(|| (&*std).seek(pos))
    }
}

impl Drop for File {
    fn drop(&mut self) {
        // Best effort, as BufWriter: the error has nobody to go to.
        let _ = self.write_out();
    }
}

impl AsRawFd for File {
    /// The file descriptor. I/O on it bypasses the buffer: flush first.
    fn as_raw_fd(&self) -> RawFd {
        self.std.as_raw_fd()
    }
}

impl AsFd for File {
    /// The file descriptor. I/O on it bypasses the buffer: flush first.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.std.as_fd()
    }
}

impl From<std::fs::File> for File {
    fn from(std: std::fs::File) -> File {
        File::from_std(std)
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("std", &self.std)
            .field("state", &self.state)
            .field("buffered", &(self.end - self.pos))
            .finish()
    }
}
