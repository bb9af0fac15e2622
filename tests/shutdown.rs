//! What happens to coroutines still alive when the runtime goes away.

use corio::Runtime;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct CountsDrops(Arc<AtomicUsize>);
impl Drop for CountsDrops {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn coroutines_alive_when_main_returns_are_dropped_with_destructors() {
    let drops = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (d, s) = (drops.clone(), started.clone());
    corio::run(move || {
        for _ in 0..1000 {
            let guard = CountsDrops(d.clone());
            let started = s.clone();
            corio::spawn(move || {
                let _guard = guard;
                started.fetch_add(1, Ordering::SeqCst);
                corio::coroutine::park(); // never unparked
                corio::coroutine::park();
                unreachable!("nobody unparks this coroutine twice");
            });
        }
        // Let some of them start; the rest are dropped before starting.
        corio::time::sleep(Duration::from_millis(5));
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1000, "every coroutine's captured state was dropped");
    assert!(started.load(Ordering::SeqCst) > 0);
}

#[test]
fn join_of_a_coroutine_cancelled_at_shutdown_reports_cancelled() {
    let runtime = Runtime::builder().workers(2).build().unwrap();
    let handle = runtime.spawn(|| loop {
        corio::time::sleep(Duration::from_secs(3600));
    });
    drop(runtime);
    let err = handle.join().unwrap_err();
    assert!(corio::is_cancelled(&*err));
}

#[test]
fn destructors_that_block_during_shutdown_do_not_hang_it() {
    struct SleepsOnDrop;
    impl Drop for SleepsOnDrop {
        fn drop(&mut self) {
            // park returns at once during the shutdown unwind.
            corio::coroutine::park();
            corio::time::sleep(Duration::from_millis(1));
        }
    }
    corio::run(|| {
        for _ in 0..10 {
            corio::spawn(|| {
                let _d = SleepsOnDrop;
                corio::coroutine::park();
            });
        }
        corio::time::sleep(Duration::from_millis(5));
    });
}

#[test]
fn many_runtimes_start_and_stop_without_leaking_threads() {
    fn thread_count() -> usize {
        std::fs::read_dir("/proc/self/task").unwrap().count()
    }
    let before = thread_count();
    for i in 0..50 {
        let runtime = Runtime::builder().workers(4).build().unwrap();
        assert_eq!(runtime.block_on(move || corio::spawn(move || i).join().unwrap()), i);
    }
    // Other tests in this binary may run concurrently, so allow their threads.
    assert!(thread_count() <= before + 16, "worker threads leaked");
}

#[test]
fn destructors_that_yield_join_or_read_during_shutdown_neither_abort_nor_hang() {
    struct BlocksOnDrop {
        other: Option<corio::JoinHandle<()>>,
        socket: Option<corio::net::TcpStream>,
    }
    impl Drop for BlocksOnDrop {
        fn drop(&mut self) {
            corio::yield_now(); // would abort if it suspended during the unwind
            if let Some(other) = self.other.take() {
                let err = other.join().unwrap_err(); // would hang if it waited
                assert!(corio::is_cancelled(&*err));
            }
            if let Some(socket) = self.socket.take() {
                use std::io::Read;
                // Returns (EOF or an error) instead of waiting for data.
                let _ = (&socket).read(&mut [0u8; 1]);
            }
        }
    }
    // One worker, so the joined coroutine is unwound after its joiner.
    let runtime = Runtime::builder().workers(1).build().unwrap();
    runtime.block_on(|| {
        let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = corio::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let first = corio::spawn(corio::coroutine::park);
        corio::spawn(move || {
            let _guard = BlocksOnDrop { other: Some(first), socket: Some(server) };
            corio::coroutine::park();
        });
        corio::time::sleep(Duration::from_millis(5));
        corio::spawn(move || {
            let _client = client; // kept open until shutdown
            corio::coroutine::park();
        });
    });
    drop(runtime); // must return
}
