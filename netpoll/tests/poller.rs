//! Poller-level behaviour: notify, single waiter, concurrent add/delete while waiting.

mod common;

use common::*;
use corio_netpoll::{Direction, Events, Poller, Registration};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn notify_wakes_a_blocked_wait() {
    bounded(LIMIT, || {
        let poller = Poller::new().unwrap();
        let p2 = poller.clone();
        let waiter = thread::spawn(move || {
            let mut events = Events::new();
            p2.wait(&mut events, None).unwrap()
        });
        while !poller.is_sleeping() {
            thread::yield_now();
        }
        // The owner is (about to be) blocked: this notify must issue the syscall.
        assert!(poller.notify().unwrap());
        assert_eq!(waiter.join().unwrap(), 0);
        assert!(!poller.is_sleeping());
    });
}

#[test]
fn notify_while_awake_is_coalesced_and_not_lost() {
    bounded(LIMIT, || {
        let poller = Poller::new().unwrap();
        // Nobody sleeping: no syscall, only the flag.
        assert!(!poller.notify().unwrap());
        assert!(!poller.notify().unwrap());
        // The next blocking wait must not block.
        let mut events = Events::new();
        let t = Instant::now();
        poller.wait(&mut events, None).unwrap();
        assert!(t.elapsed() < LIMIT);
        // Consumed, not sticky: a further wait blocks until its timeout (allowing for one
        // spurious early return, which `polling` permits).
        let blocked = (0..3).any(|_| {
            let t = Instant::now();
            poller.wait(&mut events, Some(Duration::from_millis(30))).unwrap();
            t.elapsed() >= Duration::from_millis(25)
        });
        assert!(blocked, "NOTIFIED was not consumed");
    });
}

/// Many notifier/waiter rounds: each round the waiter must return. A lost notification hangs.
#[test]
fn notify_rounds_never_lose_a_wakeup() {
    bounded(LIMIT, || {
        let poller = Poller::new().unwrap();
        let inbox = Arc::new(parking_lot::Mutex::new(Vec::<u32>::new()));
        let (p2, in2) = (poller.clone(), inbox.clone());
        const N: u32 = 20_000;
        let owner = thread::spawn(move || {
            let mut events = Events::new();
            let mut got = 0u32;
            while got < N {
                got += in2.lock().drain(..).count() as u32;
                if got < N {
                    p2.wait(&mut events, None).unwrap();
                }
            }
            got
        });
        for i in 0..N {
            inbox.lock().push(i);
            poller.notify().unwrap();
        }
        assert_eq!(owner.join().unwrap(), N);
    });
}

#[test]
fn second_concurrent_wait_is_an_error() {
    bounded(LIMIT, || {
        let poller = Poller::new().unwrap();
        let p2 = poller.clone();
        let waiter = thread::spawn(move || {
            let mut events = Events::new();
            p2.wait(&mut events, None).unwrap()
        });
        while !poller.is_sleeping() {
            thread::yield_now();
        }
        let mut events = Events::new();
        assert!(poller.wait(&mut events, Some(Duration::ZERO)).is_err());
        poller.notify().unwrap();
        waiter.join().unwrap();
        // Once the first wait returned, waiting works again.
        poller.wait(&mut events, Some(Duration::ZERO)).unwrap();
    });
}

/// Threads register, use and close sockets while the owner is blocked in wait.
#[test]
fn concurrent_add_delete_while_waiting() {
    bounded(LIMIT, || {
        let poller = Poller::new().unwrap();
        let pt = PollThread::start(&poller);
        let workers: Vec<_> = (0..3)
            .map(|t| {
                let poller = poller.clone();
                thread::spawn(move || {
                    let w = thread_waker();
                    let dl = Instant::now() + LIMIT;
                    for i in 0..300u32 {
                        let (a, mut b) = UnixStream::pair().unwrap();
                        a.set_nonblocking(true).unwrap();
                        let reg = Registration::new(&poller, a).unwrap();
                        if i % 3 == 0 {
                            // Close with nobody waiting, events possibly in flight.
                            b.write_all(b"x").unwrap();
                            drop(reg);
                            continue;
                        }
                        let msg = [t as u8, i as u8, (i >> 8) as u8];
                        let writer = thread::spawn(move || {
                            b.write_all(&msg).unwrap();
                            b
                        });
                        let mut got = Vec::new();
                        while got.len() < 3 {
                            let mut buf = [0u8; 3];
                            let n = read_blocking(&reg, &mut buf, &w, dl).unwrap();
                            got.extend_from_slice(&buf[..n]);
                        }
                        assert_eq!(got, msg);
                        writer.join().unwrap();
                        if i % 3 == 1 {
                            reg.close().unwrap();
                            assert!(reg.poll_ready(Direction::Read, &w).is_err());
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(poller.registrations(), 0);
        pt.stop();
    });
}

#[test]
fn plain_read_after_close_still_sound() {
    // close() deregisters but the fd stays open until the Registration is dropped.
    let poller = Poller::new().unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let reg = Registration::new(&poller, a).unwrap();
    reg.close().unwrap();
    b.write_all(b"k").unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(reg.get_ref().read(&mut buf).unwrap(), 1);
}
