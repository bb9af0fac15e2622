//! corio::fs: the functions against std, File's buffering (reads, writes,
//! seeks, append, set_len, when data reaches the file), and that file I/O
//! does not stall the worker's other coroutines.

mod common;

use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::with_timeout;
use corio::fs;

/// A fresh directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("corio-fs-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `len` bytes of a pattern that does not repeat at any power-of-two period.
fn pattern(len: usize) -> Vec<u8> {
    let mut seed = 0x9e37_79b9u32;
    let unit: Vec<u8> = (0..1_048_583)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 24) as u8
        })
        .collect();
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let take = unit.len().min(len - out.len());
        out.extend_from_slice(&unit[..take]);
    }
    out
}

/// Runs `f` in a coroutine of a fresh runtime, failing after `secs` seconds.
fn in_coroutine(secs: u64, f: impl FnOnce() + Send + 'static) {
    with_timeout(secs, || corio::run(f));
}

fn functions_round_trip(dir: &Path) {
    let a = dir.join("a");
    fs::write(&a, b"hello").unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), b"hello");
    assert_eq!(fs::read(&a).unwrap(), b"hello");
    assert_eq!(fs::read_to_string(&a).unwrap(), "hello");
    assert_eq!(fs::metadata(&a).unwrap().len(), std::fs::metadata(&a).unwrap().len());
    assert!(fs::metadata(dir).unwrap().is_dir());

    let sub = dir.join("x/y/z");
    fs::create_dir_all(&sub).unwrap();
    assert!(std::fs::metadata(&sub).unwrap().is_dir());
    fs::create_dir(dir.join("d")).unwrap();
    assert_eq!(fs::create_dir(dir.join("d")).unwrap_err().kind(), ErrorKind::AlreadyExists);
    fs::remove_dir(dir.join("d")).unwrap();
    assert!(!dir.join("d").exists());

    assert_eq!(fs::copy(&a, dir.join("b")).unwrap(), 5);
    assert_eq!(std::fs::read(dir.join("b")).unwrap(), b"hello");
    fs::rename(dir.join("b"), dir.join("c")).unwrap();
    assert!(!dir.join("b").exists());
    fs::hard_link(dir.join("c"), dir.join("c2")).unwrap();
    assert_eq!(std::fs::read(dir.join("c2")).unwrap(), b"hello");
    fs::remove_file(dir.join("c2")).unwrap();
    assert!(!dir.join("c2").exists());

    std::os::unix::fs::symlink(&a, dir.join("link")).unwrap();
    assert!(fs::symlink_metadata(dir.join("link")).unwrap().file_type().is_symlink());
    assert!(fs::metadata(dir.join("link")).unwrap().is_file());
    assert_eq!(fs::canonicalize(dir.join("link")).unwrap(), std::fs::canonicalize(&a).unwrap());

    let mut perm = std::fs::metadata(&a).unwrap().permissions();
    perm.set_readonly(true);
    fs::set_permissions(&a, perm).unwrap();
    assert!(std::fs::metadata(&a).unwrap().permissions().readonly());

    let mut ours: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    let mut theirs: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 4); // a, c, x, link

    fs::remove_dir_all(dir.join("x")).unwrap();
    assert!(!dir.join("x").exists());

    let missing = dir.join("missing");
    assert_eq!(fs::read(&missing).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(fs::read_to_string(&missing).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(fs::metadata(&missing).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(fs::remove_file(&missing).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(fs::read_dir(&missing).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(fs::File::open(&missing).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn functions_in_a_coroutine() {
    let dir = TempDir::new("fn-co");
    let path = dir.0.clone();
    in_coroutine(10, move || functions_round_trip(&path));
}

#[test]
fn functions_on_a_plain_thread() {
    let dir = TempDir::new("fn-thread");
    let path = dir.0.clone();
    with_timeout(10, move || functions_round_trip(&path));
}

/// Writes `data` in `piece`-byte writes through corio::fs::File.
fn write_in_pieces(path: &Path, data: &[u8], piece: usize) {
    let mut f = fs::File::create(path).unwrap();
    for chunk in data.chunks(piece) {
        f.write_all(chunk).unwrap();
    }
    f.flush().unwrap();
}

/// Reads `path` back in `piece`-byte reads, comparing with `data` as it goes.
fn read_back_in_pieces(path: &Path, data: &[u8], piece: usize) {
    let mut f = fs::File::open(path).unwrap();
    let mut buf = vec![0; piece];
    let mut at = 0;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n] == data[at..at + n], "bytes differ in {at}..{}", at + n);
        at += n;
    }
    assert_eq!(at, data.len());
}

#[test]
fn big_file_in_small_and_large_pieces() {
    let dir = TempDir::new("big");
    let path = dir.path("f");
    let data = Arc::new(pattern(64 << 20));
    in_coroutine(30, move || {
        write_in_pieces(&path, &data, 4096);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), data.len() as u64);
        read_back_in_pieces(&path, &data, 1024);
        read_back_in_pieces(&path, &data, 100 * 1024);
    });
}

#[test]
fn seek_then_read_and_write() {
    let dir = TempDir::new("seek");
    let path = dir.path("f");
    in_coroutine(10, move || {
        let data = pattern(200_000);
        std::fs::write(&path, &data).unwrap();
        let mut f = fs::File::options().read(true).write(true).open(&path).unwrap();
        let mut b = [0; 10];
        f.read_exact(&mut b).unwrap(); // read ahead a chunk, consume 10
        assert_eq!(b, data[..10]);
        // Current is from the logical position (10), not the OS one.
        assert_eq!(f.seek(SeekFrom::Current(5)).unwrap(), 15);
        f.read_exact(&mut b).unwrap();
        assert_eq!(b, data[15..25]);
        assert_eq!(f.stream_position().unwrap(), 25);
        // A write after reading lands at the logical position.
        f.write_all(b"XYZ").unwrap();
        assert_eq!(f.stream_position().unwrap(), 28);
        assert_eq!(f.seek(SeekFrom::Start(100_000)).unwrap(), 100_000);
        f.read_exact(&mut b).unwrap();
        assert_eq!(b, data[100_000..100_010]);
        assert_eq!(f.seek(SeekFrom::End(-3)).unwrap(), 200_000 - 3);
        f.write_all(b"end!").unwrap();
        f.seek(SeekFrom::Start(20)).unwrap();
        f.read_exact(&mut b).unwrap(); // a read after a write sees it
        assert_eq!(&b[..], [&data[20..25], b"XYZ", &data[28..30]].concat());
        drop(f);
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(on_disk.len(), 200_001);
        assert_eq!(&on_disk[25..28], b"XYZ");
        assert_eq!(&on_disk[200_000 - 3..], b"end!");
    });
}

#[test]
fn append_set_len_metadata_flush_and_drop() {
    let dir = TempDir::new("misc");
    in_coroutine(10, move || {
        let path = dir.path("log");
        std::fs::write(&path, b"one\n").unwrap();
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"two\n").unwrap();
        // Buffered: not in the file yet; in it after flush.
        assert_eq!(std::fs::read(&path).unwrap(), b"one\n");
        f.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\n");
        f.write_all(b"three\n").unwrap();
        assert_eq!(f.metadata().unwrap().len(), 14); // metadata writes out first
        f.write_all(b"four\n").unwrap();
        drop(f); // drop writes out the rest
        assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\nthree\nfour\n");

        let path = dir.path("len");
        let mut f = fs::File::create(&path).unwrap();
        f.write_all(&[7; 1000]).unwrap();
        f.set_len(10).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 10);
        f.set_len(5000).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 5000);
        f.sync_all().unwrap();
        f.sync_data().unwrap();

        let mut f = fs::OpenOptions::new().write(true).create_new(true).open(dir.path("new")).unwrap();
        assert_eq!(
            fs::OpenOptions::new().write(true).create_new(true).open(dir.path("new")).unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        f.write_all(b"abc").unwrap();
        let mut g = f.try_clone().unwrap();
        g.write_all(b"def").unwrap(); // the clone shares the offset
        drop(g);
        let std_file = f.into_std();
        assert!(std::os::fd::AsRawFd::as_raw_fd(&std_file) >= 0);
        assert_eq!(std::fs::read(dir.path("new")).unwrap(), b"abcdef");
        let mut again = fs::File::from_std(std::fs::File::open(dir.path("new")).unwrap());
        let mut s = String::new();
        again.read_to_string(&mut s).unwrap();
        assert_eq!(s, "abcdef");
    });
}

#[test]
fn file_io_does_not_stall_the_worker() {
    let dir = TempDir::new("stall");
    let path = dir.path("f");
    let data = Arc::new(pattern(64 << 20));
    with_timeout(30, move || {
        let rt = corio::Runtime::builder().workers(1).build().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let ticker = {
            let done = Arc::clone(&done);
            rt.spawn(move || {
                let (mut last, mut worst, mut ticks) = (Instant::now(), Duration::ZERO, 0u32);
                while !done.load(Ordering::Acquire) {
                    corio::time::sleep(Duration::from_millis(5));
                    let now = Instant::now();
                    worst = worst.max(now - last);
                    last = now;
                    ticks += 1;
                }
                (worst, ticks)
            })
        };
        let io = rt.spawn(move || {
            write_in_pieces(&path, &data, 4096);
            read_back_in_pieces(&path, &data, 100 * 1024);
            done.store(true, Ordering::Release);
        });
        io.join().unwrap();
        let (worst, ticks) = ticker.join().unwrap();
        assert!(ticks > 1, "the ticker never ticked during the I/O");
        assert!(worst < Duration::from_millis(50), "a tick waited {worst:?}: file I/O ran on the worker?");
    });
}

#[test]
fn a_full_buffer_is_written_out_by_the_next_write() {
    let dir = TempDir::new("full");
    in_coroutine(10, move || {
        let path = dir.path("f");
        let mut f = fs::File::create(&path).unwrap();
        for _ in 0..fs::BUFFER_SIZE / 4096 {
            f.write_all(&[1; 4096]).unwrap();
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0); // all buffered
        f.write_all(b"x").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), fs::BUFFER_SIZE as u64);
        // A write of a buffer's size or more goes straight to the file.
        f.flush().unwrap();
        f.write_all(&vec![2; fs::BUFFER_SIZE]).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * fs::BUFFER_SIZE as u64 + 1);
    });
}
