//! [`OpenOptions`]: std's options for opening a file, whose `open` runs on
//! the blocking pool and returns a buffered corio [`File`].
//!
//! Invariant: a thin wrapper; every option is std's own, so the flags and
//! their errors are exactly std's.

use super::File;
use crate::blocking::run_blocking;
use std::io;
use std::path::Path;

/// Options for opening a file, as [`std::fs::OpenOptions`]; [`open`](Self::open)
/// runs on the blocking pool.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("corio-doc-oo-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// use std::io::Write;
/// corio::run(|| {
///     let mut f = corio::fs::OpenOptions::new().create(true).append(true).open(dir.join("log"))?;
///     f.write_all(b"hello\n")?;
///     f.flush()
/// })
/// .unwrap();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions(std::fs::OpenOptions);

impl OpenOptions {
    /// Options with everything off (as [`std::fs::OpenOptions::new`]).
    #[allow(clippy::new_without_default)] // as std
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new())
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.0.read(read);
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.0.write(write);
        self
    }

    /// Open for appending: every write goes to the end of the file.
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.0.append(append);
        self
    }

    /// Truncate the file to length 0 on opening (needs write access).
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.0.truncate(truncate);
        self
    }

    /// Create the file if it does not exist (needs write or append access).
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.0.create(create);
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists.
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.0.create_new(create_new);
        self
    }

    /// Opens `path` with these options, on the blocking pool.
    pub fn open<P: AsRef<Path>>(&self, path: P) -> io::Result<File> {
        let (options, path) = (&self.0, path.as_ref());
        run_blocking(|| options.open(path)).map(File::from_std)
    }
}

impl From<std::fs::OpenOptions> for OpenOptions {
    /// Wraps std's options (set with `std::os::unix::fs::OpenOptionsExt`'s
    /// `mode` or `custom_flags`, for instance).
    fn from(options: std::fs::OpenOptions) -> OpenOptions {
        OpenOptions(options)
    }
}
