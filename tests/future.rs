//! `corio::future::block_on` with runtime-agnostic async code, and
//! `JoinHandle` as a `Future`.

mod common;

use std::time::Duration;

#[test]
fn block_on_parks_the_coroutine_not_the_worker() {
    // One worker: the sender runs on the same worker as the receiver, which
    // would never happen if block_on blocked the thread.
    common::within(1, Duration::from_secs(30), "block_on on one worker", || {
        let (tx, rx) = async_channel::bounded::<u32>(1);
        let sender = corio::spawn(move || {
            for i in 0..100 {
                corio::yield_now();
                corio::future::block_on(tx.send(i)).unwrap();
            }
        });
        let mut sum = 0;
        for _ in 0..100 {
            sum += corio::future::block_on(rx.recv()).unwrap();
        }
        sender.join().unwrap();
        assert_eq!(sum, (0..100).sum::<u32>());
    });
}

#[test]
fn block_on_on_a_plain_thread_blocks_it_until_another_thread_wakes_it() {
    let (tx, rx) = async_channel::unbounded::<&str>();
    let (tid, t) = common::spawn_thread(move || corio::future::block_on(rx.recv()).unwrap());
    common::wait_until_blocked(tid);
    tx.send_blocking("woken").unwrap();
    assert_eq!(t.join().unwrap(), "woken");
}

#[test]
fn a_join_handle_is_a_future() {
    let runtime = corio::Runtime::builder().workers(2).build().unwrap();
    let handle = runtime.spawn(|| {
        corio::time::sleep(Duration::from_millis(20));
        6 * 7
    });
    // Awaited by another executor (futures-lite's), from a plain thread.
    let value = futures_lite::future::block_on(handle).unwrap();
    assert_eq!(value, 42);
    // And inside a coroutine, awaiting several with futures-lite combinators.
    let both = runtime.block_on(|| {
        let a = corio::spawn(|| 1);
        let b = corio::spawn(|| 2);
        corio::future::block_on(futures_lite::future::zip(a, b))
    });
    assert_eq!((both.0.unwrap(), both.1.unwrap()), (1, 2));
}
