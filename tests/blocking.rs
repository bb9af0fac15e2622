//! Blocking work off the workers: `corio::blocking::spawn_blocking` and name
//! resolution keep a 1-worker runtime responsive. A ticker coroutine records
//! the largest gap between its 5 ms ticks; work that blocked the worker
//! would show as a gap as long as the work.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs `work` in a coroutine of a 1-worker runtime beside a ticker; returns
/// what `work` returned and the largest gap between ticks meanwhile.
fn with_ticker<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> (T, Duration) {
    let runtime = corio::Runtime::builder().workers(1).build().unwrap();
    runtime.block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let ticker = corio::spawn(move || {
            let mut last = Instant::now();
            let mut worst = Duration::ZERO;
            while !stop2.load(Ordering::SeqCst) {
                corio::time::sleep(Duration::from_millis(5));
                let now = Instant::now();
                worst = worst.max(now - last);
                last = now;
            }
            worst
        });
        corio::yield_now(); // let the ticker start
        let value = work();
        stop.store(true, Ordering::SeqCst);
        (value, ticker.join().unwrap())
    })
}

#[test]
fn twenty_blocking_sleeps_do_not_stall_the_worker() {
    common::within(1, Duration::from_secs(60), "20 blocking sleeps", || {
        let ((), worst) = with_ticker(|| {
            let start = Instant::now();
            let handles: Vec<_> = (0..20)
                .map(|i| {
                    corio::blocking::spawn_blocking(move || {
                        std::thread::sleep(Duration::from_millis(200));
                        i
                    })
                })
                .collect();
            let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
            assert_eq!(sum, (0..20).sum::<i32>());
            // In parallel on the pool, not one after another.
            assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
        });
        assert!(worst < Duration::from_millis(50), "the ticker stalled for {worst:?}");
    });
}

#[test]
fn a_slow_name_resolution_does_not_stall_the_worker() {
    // The resolver test hook makes every host-name lookup sleep 300 ms first
    // (on the thread that resolves); literals are not affected.
    corio::net::set_resolver_delay(Duration::from_millis(300));
    let ((), worst) = with_ticker(|| {
        let listener = corio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let start = Instant::now();
        let stream = corio::net::TcpStream::connect(("localhost", port)).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(300), "the lookup went through the hook");
        assert!(stream.peer_addr().unwrap().ip().is_loopback());
        let addrs: Vec<_> = corio::net::lookup_host(&format!("localhost:{port}")).unwrap().collect();
        assert!(addrs.iter().any(|a| a.ip().is_loopback() && a.port() == port));
    });
    corio::net::set_resolver_delay(Duration::ZERO);
    assert!(worst < Duration::from_millis(50), "the ticker stalled for {worst:?}");
}

#[test]
fn a_panic_in_a_blocking_task_comes_back_as_err_and_plain_threads_can_join() {
    common::within(2, Duration::from_secs(30), "blocking panic", || {
        let h = corio::blocking::spawn_blocking(|| -> u8 { panic!("boom in the pool") });
        let err = h.join().unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in the pool"));
        // A plain thread joins a blocking task by blocking.
        let h = corio::blocking::spawn_blocking(|| 41 + 1);
        let t = std::thread::spawn(move || h.join().unwrap());
        assert_eq!(t.join().unwrap(), 42);
    });
    // Outside any runtime: the process-wide pool.
    assert_eq!(corio::blocking::spawn_blocking(|| "outside").join().unwrap(), "outside");
}

#[test]
fn the_pool_never_runs_more_threads_than_its_limit_and_queues_the_rest() {
    let runtime = corio::Runtime::builder().workers(1).max_blocking_threads(2).build().unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (r, m) = (running.clone(), most.clone());
    runtime.block_on(move || {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (r, m) = (r.clone(), m.clone());
                corio::blocking::spawn_blocking(move || {
                    let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    r.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    assert_eq!(most.load(Ordering::SeqCst), 2, "FIFO queue at the limit of 2 threads");
    // A job's result is delivered (and joined) just before its thread counts
    // it as completed: poll for the count.
    let start = Instant::now();
    while runtime.metrics().blocking.completed < 6 {
        assert!(start.elapsed() < Duration::from_secs(10), "{}", runtime.metrics());
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(runtime.metrics().blocking.threads <= 2, "{}", runtime.metrics());
}

/// A plain thread's blocking job runs on the process-wide pool: it is not
/// queued on the latest runtime's pool, whose shutdown would cancel it (a
/// flaky failure of the test above, when another test's runtime was the
/// latest one and shut down meanwhile).
#[test]
fn a_plain_threads_job_survives_the_shutdown_of_the_latest_runtime() {
    let runtime = corio::Runtime::builder().workers(1).max_blocking_threads(1).build().unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    // Occupy the runtime's only blocking thread, so a job queued there waits.
    runtime.block_on(move || {
        drop(corio::blocking::spawn_blocking(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv();
        }));
    });
    started_rx.recv_timeout(Duration::from_secs(10)).expect("the busy job started");
    let job = corio::blocking::spawn_blocking(|| 7);
    drop(runtime); // cancels whatever is still queued on its pool
    let (joined_tx, joined_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || joined_tx.send(job.join().is_ok_and(|v| v == 7)));
    let joined = joined_rx.recv_timeout(Duration::from_secs(10)).expect("the join hung");
    let _ = release_tx.send(());
    assert!(joined, "the job was cancelled by an unrelated runtime's shutdown");
}
