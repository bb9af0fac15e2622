//! Cancelling a coroutine (`JoinHandle::cancel`, `Coroutine::cancel`): each
//! kind of blocking call stops waiting and `join` reports it; a socket a
//! cancelled coroutine waited on stays usable.

mod common;

use corio::coroutine::Coroutine;
use corio::net::TcpListener;
use corio::WaitReason;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spawns `f` and waits until it is parked for `reason`.
fn parked<T: Send + 'static>(
    reason: WaitReason,
    f: impl FnOnce() -> T + Send + 'static,
) -> (corio::JoinHandle<T>, Coroutine) {
    let (tx, rx) = corio::chan::bounded(1);
    let handle = corio::spawn(move || {
        tx.send(corio::coroutine::current()).unwrap();
        f()
    });
    let co = rx.recv().unwrap();
    common::poll_until("parked", || co.wait_reason() == reason);
    (handle, co)
}

fn assert_cancelled<T>(result: std::thread::Result<T>) {
    match result {
        Err(payload) => assert!(corio::is_cancelled(&*payload), "not the cancel payload"),
        Ok(_) => panic!("the coroutine returned normally"),
    }
}

#[test]
fn a_socket_read_fails_with_the_cancellation_error_and_the_socket_stays_usable() {
    common::within(2, Duration::from_secs(30), "cancel a read", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let stream = Arc::new(listener.accept().unwrap().0);
        let s = stream.clone();
        let (handle, _) = parked(WaitReason::Io, move || (&*s).read(&mut [0u8; 8]));
        handle.cancel();
        let err = handle.join().unwrap().unwrap_err();
        assert!(corio::is_cancelled_error(&err), "{err}");
        // Another coroutine reads from the same socket.
        let s = stream.clone();
        let reader = corio::spawn(move || {
            let mut buf = [0u8; 5];
            (&*s).read_exact(&mut buf).map(|()| buf)
        });
        peer.write_all(b"hello").unwrap();
        assert_eq!(&reader.join().unwrap().unwrap(), b"hello");
    });
}

#[test]
fn channel_mutex_sleep_and_join_waits_unwind_and_join_reports_it() {
    common::within(2, Duration::from_secs(30), "cancel other waits", || {
        let (_tx, rx) = corio::chan::unbounded::<u8>();
        let (h, _) = parked(WaitReason::Sync, move || rx.recv());
        h.cancel();
        assert_cancelled(h.join());

        let m = Arc::new(corio::sync::Mutex::new(0));
        let guard = m.lock();
        let m2 = m.clone();
        let (h, _) = parked(WaitReason::Sync, move || *m2.lock() += 1);
        h.cancel();
        assert_cancelled(h.join());
        drop(guard);
        *m.lock() += 1; // the cancelled waiter left the queue
        assert_eq!(*m.lock(), 1);

        let start = Instant::now();
        let (h, _) = parked(WaitReason::Sleep, || corio::time::sleep(Duration::from_secs(3600)));
        h.cancel();
        assert_cancelled(h.join());
        assert!(start.elapsed() < Duration::from_secs(10));

        let forever = corio::spawn(corio::coroutine::park);
        let (h, co) = parked(WaitReason::Join, move || forever.join());
        co.cancel(); // through the Coroutine handle this time
        assert_cancelled(h.join());
    });
}

#[test]
fn a_coroutine_cancelled_before_it_starts_never_runs() {
    common::within(1, Duration::from_secs(30), "cancel before start", || {
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        // One worker, and main does not yield in between: it cannot start.
        let h = corio::spawn(move || r.store(true, Ordering::SeqCst));
        h.cancel();
        assert_cancelled(h.join());
        assert!(!ran.load(Ordering::SeqCst));
    });
}

#[test]
fn every_later_wait_of_a_cancelled_coroutine_stops_too() {
    common::within(2, Duration::from_secs(30), "waits after a caught cancel", || {
        let (_tx, rx) = corio::chan::unbounded::<u8>();
        let (h, _) = parked(WaitReason::Sync, move || {
            // A catch-all swallowing the cancel: the next waits unwind again
            // at once instead of waiting (so the coroutine can only finish).
            let mut caught = 0;
            for _ in 0..3 {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rx.recv()));
                if let Err(payload) = r {
                    assert!(corio::is_cancelled(&*payload));
                    caught += 1;
                }
            }
            corio::time::sleep(Duration::from_secs(3600)); // unwinds too
            caught
        });
        h.cancel();
        assert_cancelled(h.join());
    });
}

#[test]
fn a_cancelled_coroutine_waiting_on_a_borrowing_blocking_job_waits_for_it() {
    // corio's own offloaded calls lend their frame to a pool thread: a cancel
    // must not unwind that frame before the job is done.
    common::within(2, Duration::from_secs(30), "cancel during fs", || {
        let path = std::env::temp_dir().join(format!("corio-cancel-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
        let p = path.clone();
        let h = corio::spawn(move || {
            let mut total = 0;
            for _ in 0..50 {
                total += corio::fs::read(&p)?.len();
            }
            Ok::<usize, std::io::Error>(total)
        });
        corio::yield_now();
        h.cancel();
        // Either it finished, or a later call saw the cancel; never a crash.
        match h.join() {
            Ok(result) => assert!(result.is_ok() || corio::is_cancelled_error(&result.unwrap_err())),
            Err(payload) => assert!(corio::is_cancelled(&*payload)),
        }
        std::fs::remove_file(&path).unwrap();
    });
}
