//! Sync primitives across a runtime's shutdown (issue #8): waiters unwound
//! while queued leave the queue and are never handed a lock, a permit or a
//! notification; waits in destructors during the shutdown unwind neither spin
//! for ever nor break mutual exclusion.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::{eventually, run_in_child, run_in_child_expecting_abort, with_timeout};
use corio::coroutine::Coroutine;
use corio::sync::{Barrier, Condvar, Mutex, RwLock, Semaphore, WaitGroup};
use corio::{Runtime, WaitReason};
use proptest::prelude::*;

fn runtime(workers: usize) -> Runtime {
    Runtime::builder().workers(workers).build().unwrap()
}

/// Spawns `f` on `rt` and returns the coroutine's handle once it has started.
fn spawn(rt: &Runtime, f: impl FnOnce() + Send + 'static) -> Coroutine {
    let (tx, rx) = mpsc::channel();
    rt.spawn(move || {
        tx.send(corio::coroutine::current()).unwrap();
        f();
    });
    rx.recv_timeout(Duration::from_secs(10)).expect("the coroutine started")
}

/// Waits until `co` is parked for `reason`.
fn parked(co: &Coroutine, reason: WaitReason) {
    eventually(|| co.wait_reason() == reason);
}

/// Parks the calling coroutine for good (it ends when the runtime drops it).
fn park_forever() -> ! {
    loop {
        corio::coroutine::park();
    }
}

/// Lets more than the mutex's 1 ms starvation threshold pass, so that an
/// unlock hands the mutex directly to the head waiter.
fn past_handoff_threshold() {
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3) {
        thread::yield_now();
    }
}

/// Runs `f` when dropped (a destructor that runs during the shutdown unwind).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

#[test]
fn mutex_handoff_at_shutdown_does_not_go_to_an_unwound_waiter() {
    with_timeout(30, || {
        let m = Arc::new(Mutex::new(0));
        let rt = runtime(1);
        let m2 = Arc::clone(&m);
        let a = spawn(&rt, move || {
            let _g = m2.lock();
            park_forever();
        });
        parked(&a, WaitReason::Park);
        let m2 = Arc::clone(&m);
        let b = spawn(&rt, move || *m2.lock() += 1);
        parked(&b, WaitReason::Sync);
        past_handoff_threshold();
        drop(rt);
        assert!(!m.is_locked(), "the mutex was handed to a coroutine that was unwound");
        *m.try_lock().expect("free after the shutdown") += 1;
        assert_eq!(*m.lock(), 1);
    });
}

#[test]
fn rwlock_grant_at_shutdown_does_not_go_to_unwound_waiters() {
    with_timeout(30, || {
        let l = Arc::new(RwLock::new(0));
        let rt = runtime(1);
        let l2 = Arc::clone(&l);
        let a = spawn(&rt, move || {
            let _g = l2.write();
            park_forever();
        });
        parked(&a, WaitReason::Park);
        let l2 = Arc::clone(&l);
        let b = spawn(&rt, move || drop(l2.read()));
        let l2 = Arc::clone(&l);
        let c = spawn(&rt, move || *l2.write() += 1);
        parked(&b, WaitReason::Sync);
        parked(&c, WaitReason::Sync);
        drop(rt);
        drop(l.try_read().expect("no reader left holding it"));
        *l.try_write().expect("no writer left holding it") += 1;
        assert_eq!(*l.read(), 1);
    });
}

#[test]
fn semaphore_permit_at_shutdown_does_not_go_to_an_unwound_waiter() {
    with_timeout(30, || {
        let s = Arc::new(Semaphore::new(1));
        let rt = runtime(1);
        let s2 = Arc::clone(&s);
        let a = spawn(&rt, move || {
            let _p = s2.acquire();
            park_forever();
        });
        parked(&a, WaitReason::Park);
        let s2 = Arc::clone(&s);
        let b = spawn(&rt, move || drop(s2.acquire()));
        parked(&b, WaitReason::Sync);
        drop(rt);
        assert_eq!(s.available_permits(), 1, "the permit was handed to an unwound coroutine");
        drop(s.try_acquire().expect("a permit is free"));
    });
}

#[test]
fn condvar_notify_after_shutdown_wakes_a_live_waiter() {
    with_timeout(30, || {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let rt = runtime(2);
        let p2 = Arc::clone(&pair);
        let w = spawn(&rt, move || {
            let mut g = p2.0.lock();
            p2.1.wait(&mut g);
        });
        parked(&w, WaitReason::Sync);
        drop(rt);
        assert!(!pair.0.is_locked());
        assert!(!pair.1.notify_one(), "notify_one woke a coroutine that was unwound");

        // A plain thread waiting now is woken by one notify_one.
        let p2 = Arc::clone(&pair);
        let t = thread::spawn(move || {
            let mut g = p2.0.lock();
            *g = true; // "queued": set before the wait releases the mutex
            let r = p2.1.wait_timeout(&mut g, Duration::from_secs(5));
            !r.timed_out()
        });
        eventually(|| *pair.0.lock());
        // We got the mutex after the thread set the flag, so it is queued.
        assert!(pair.1.notify_one(), "the live waiter was woken");
        assert!(t.join().unwrap(), "the plain thread was not woken");
    });
}

#[test]
fn condvar_notify_skips_the_waiters_of_a_runtime_shutting_down() {
    // Unit-level check of the doomed skip: a coroutine of another runtime that
    // is being dropped while it is queued is never chosen by notify_one.
    with_timeout(30, || {
        let pair = Arc::new((Mutex::new(()), Condvar::new()));
        let rt = runtime(1);
        // N is unwound first (start order), while W is still queued: N's
        // destructor notifies, W is doomed by then, so nobody is woken.
        let p2 = Arc::clone(&pair);
        let woke = Arc::new(AtomicBool::new(true));
        let woke2 = Arc::clone(&woke);
        let n = spawn(&rt, move || {
            let _d = OnDrop(move || woke2.store(p2.1.notify_one(), Ordering::SeqCst));
            park_forever();
        });
        parked(&n, WaitReason::Park);
        let p2 = Arc::clone(&pair);
        let w = spawn(&rt, move || {
            let mut g = p2.0.lock();
            p2.1.wait(&mut g);
        });
        parked(&w, WaitReason::Sync);
        drop(rt);
        assert!(!woke.load(Ordering::SeqCst), "notify_one woke a doomed waiter");
        assert!(!pair.1.notify_one());
    });
}

#[test]
fn destructor_locks_a_mutex_released_by_an_earlier_unwind() {
    run_in_child("child_destructor_locks_a_mutex_released_by_an_earlier_unwind", Duration::from_secs(30));
}

#[test]
#[ignore = "run by destructor_locks_a_mutex_released_by_an_earlier_unwind in a child process"]
fn child_destructor_locks_a_mutex_released_by_an_earlier_unwind() {
    // Run by its parent test in a child process (its failure is a hang).
    // One worker, unwound newest first: X, B (queued on the mutex for over
    // 1 ms), A (holds it), C (whose destructor locks it).
    let m = Arc::new(Mutex::new(0));
    let locked_in_drop = Arc::new(AtomicBool::new(false));
    let rt = runtime(1);
    let (tx, rx) = corio::chan::bounded::<()>(0);
    let (m2, flag) = (Arc::clone(&m), Arc::clone(&locked_in_drop));
    let c = spawn(&rt, move || {
        let _d = OnDrop(move || {
            *m2.lock() += 10;
            flag.store(true, Ordering::SeqCst);
        });
        park_forever();
    });
    parked(&c, WaitReason::Park);
    let m2 = Arc::clone(&m);
    let a = spawn(&rt, move || {
        let _g = m2.lock();
        park_forever();
    });
    parked(&a, WaitReason::Park);
    let m2 = Arc::clone(&m);
    let b = spawn(&rt, move || *m2.lock() += 1);
    parked(&b, WaitReason::Sync);
    let x = spawn(&rt, move || {
        let _ = rx.recv();
    });
    parked(&x, WaitReason::Sync);
    past_handoff_threshold();
    drop(rt);
    drop(tx);
    assert!(locked_in_drop.load(Ordering::SeqCst));
    assert_eq!(*m.try_lock().expect("unlocked after the shutdown"), 10);
}

#[test]
fn destructor_waiting_for_a_lock_held_by_a_later_unwound_coroutine_aborts() {
    // The holder is parked and unwound after the waiter on the same worker:
    // it never releases. The process must abort with a clear message after
    // a few seconds, not spin for ever.
    let stderr = run_in_child_expecting_abort(
        "child_destructor_waiting_for_a_lock_held_by_a_later_unwound_coroutine_aborts",
        Duration::from_secs(30),
    );
    assert!(
        stderr.contains("corio: fatal: coroutine")
            && stderr.contains("(destructor-locks)")
            && stderr.contains("a destructor run at shutdown waited")
            && stderr.contains("for a Mutex held by a coroutine that was parked when the runtime shut down"),
        "unexpected message:\n{stderr}"
    );
}

#[test]
#[ignore = "run by destructor_waiting_for_a_lock_held_by_a_later_unwound_coroutine_aborts in a child process"]
fn child_destructor_waiting_for_a_lock_held_by_a_later_unwound_coroutine_aborts() {
    // Run by its parent test in a child process (it aborts, by design).
    // Unwound newest first: the destructor's coroutine before the holder.
    let m = Arc::new(Mutex::new(()));
    let rt = runtime(1);
    let m2 = Arc::clone(&m);
    let a = spawn(&rt, move || {
        let _g = m2.lock();
        park_forever();
    });
    parked(&a, WaitReason::Park);
    let (tx, rx) = mpsc::channel();
    let m2 = Arc::clone(&m);
    rt.spawn(move || {
        let c = corio::coroutine::Builder::new()
            .name("destructor-locks".into())
            .spawn(move || {
                tx.send(corio::coroutine::current()).unwrap();
                let _d = OnDrop(move || drop(m2.lock()));
                park_forever();
            })
            .unwrap();
        drop(c);
    });
    let c = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    parked(&c, WaitReason::Park);
    drop(rt); // aborts
    unreachable!("the shutdown returned although a destructor waited for a lock nobody releases");
}

#[test]
fn oncelock_in_a_destructor_waits_for_an_initialiser_unwound_first() {
    // The initialiser started (and is unwound) before the destructor's
    // coroutine on the one worker: its unwind resets the cell, and the
    // destructor then initialises it itself.
    run_in_child(
        "child_oncelock_in_a_destructor_waits_for_an_initialiser_unwound_first",
        Duration::from_secs(30),
    );
}

#[test]
#[ignore = "run by oncelock_in_a_destructor_waits_for_an_initialiser_unwound_first in a child process"]
fn child_oncelock_in_a_destructor_waits_for_an_initialiser_unwound_first() {
    let cell = Arc::new(corio::sync::OnceLock::new());
    let rt = runtime(1);
    // Unwound newest first: the initialiser (spawned last) before `d`.
    let c2 = Arc::clone(&cell);
    let d = spawn(&rt, move || {
        let _d = OnDrop(move || assert_eq!(*c2.get_or_init(|| 7), 7));
        park_forever();
    });
    parked(&d, WaitReason::Park);
    let c2 = Arc::clone(&cell);
    let init = spawn(&rt, move || {
        c2.get_or_init(|| -> u32 { park_forever() });
    });
    parked(&init, WaitReason::Park);
    drop(rt);
    assert_eq!(cell.get(), Some(&7));
}

#[test]
fn oncelock_in_a_destructor_aborts_rather_than_spin_when_the_initialiser_is_unwound_later() {
    let stderr = run_in_child_expecting_abort(
        "child_oncelock_in_a_destructor_before_its_initialiser",
        Duration::from_secs(30),
    );
    assert!(
        stderr.contains("for a OnceLock initialisation held by a coroutine"),
        "unexpected message:\n{stderr}"
    );
}

#[test]
#[ignore = "run by oncelock_in_a_destructor_aborts_rather_than_spin_when_the_initialiser_is_unwound_later in a child process"]
fn child_oncelock_in_a_destructor_before_its_initialiser() {
    // The destructor's coroutine starts last, so it is unwound (newest
    // first) before the initialiser on the one worker: the initialiser never
    // finishes. Before the fix this spun at 100 % CPU for ever.
    let cell = Arc::new(corio::sync::OnceLock::new());
    let rt = runtime(1);
    let c2 = Arc::clone(&cell);
    let init = spawn(&rt, move || {
        c2.get_or_init(|| -> u32 { park_forever() });
    });
    parked(&init, WaitReason::Park);
    let c2 = Arc::clone(&cell);
    let d = spawn(&rt, move || {
        let _d = OnDrop(move || assert_eq!(*c2.get_or_init(|| 7u32), 7));
        park_forever();
    });
    parked(&d, WaitReason::Park);
    drop(rt); // aborts
    unreachable!("the shutdown returned although the initialiser never finished");
}

#[test]
fn waitgroup_wait_in_a_destructor_gives_up_at_shutdown() {
    run_in_child("child_waitgroup_wait_in_a_destructor_gives_up_at_shutdown", Duration::from_secs(30));
}

#[test]
#[ignore = "run by waitgroup_wait_in_a_destructor_gives_up_at_shutdown in a child process"]
fn child_waitgroup_wait_in_a_destructor_gives_up_at_shutdown() {
    // Run by its parent test in a child process (its failure is a 100 % CPU spin).
    let wg = WaitGroup::new();
    let rt = runtime(1);
    wg.add(1);
    let member = spawn(&rt, move || park_forever()); // never calls done()
    parked(&member, WaitReason::Park);
    let (wg2, returned) = (wg.clone(), Arc::new(AtomicBool::new(false)));
    let r2 = Arc::clone(&returned);
    let d = spawn(&rt, move || {
        let _d = OnDrop(move || {
            wg2.wait();
            assert!(!wg2.wait_timeout(Duration::from_secs(60)));
            r2.store(true, Ordering::SeqCst);
        });
        park_forever();
    });
    parked(&d, WaitReason::Park);
    drop(rt);
    assert!(returned.load(Ordering::SeqCst));
    assert_eq!(wg.count(), 1);
}

#[test]
fn barrier_wait_in_a_destructor_gives_up_at_shutdown() {
    run_in_child("child_barrier_wait_in_a_destructor_gives_up_at_shutdown", Duration::from_secs(30));
}

#[test]
#[ignore = "run by barrier_wait_in_a_destructor_gives_up_at_shutdown in a child process"]
fn child_barrier_wait_in_a_destructor_gives_up_at_shutdown() {
    // Run by its parent test in a child process (its failure is a 100 % CPU spin).
    let b = Arc::new(Barrier::new(3));
    let rt = runtime(1);
    let b2 = Arc::clone(&b);
    let queued = spawn(&rt, move || {
        b2.wait();
    });
    parked(&queued, WaitReason::Sync);
    let (b2, leader) = (Arc::clone(&b), Arc::new(AtomicBool::new(true)));
    let l2 = Arc::clone(&leader);
    let d = spawn(&rt, move || {
        let _d = OnDrop(move || l2.store(b2.wait().is_leader(), Ordering::SeqCst));
        park_forever();
    });
    parked(&d, WaitReason::Park);
    drop(rt);
    assert!(!leader.load(Ordering::SeqCst));
    // Neither the unwound waiter nor the destructor counts: a full new
    // generation of three is needed.
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let b = Arc::clone(&b);
            thread::spawn(move || b.wait().is_leader())
        })
        .collect();
    let leaders =
        b.wait().is_leader() as usize + hs.into_iter().map(|h| h.join().unwrap() as usize).sum::<usize>();
    assert_eq!(leaders, 1);
}

#[test]
fn condvar_wait_unwound_never_unlocks_a_mutex_held_by_another() {
    with_timeout(30, || {
        let pair = Arc::new((Mutex::new(0), Condvar::new()));
        let unwound = Arc::new(AtomicBool::new(false));
        let rt = runtime(1);
        let (p2, u2) = (Arc::clone(&pair), Arc::clone(&unwound));
        let w = spawn(&rt, move || {
            // Dropped after the guard below (declared first).
            let _flag = OnDrop(move || u2.store(true, Ordering::SeqCst));
            let mut g = p2.0.lock();
            p2.1.wait(&mut g);
        });
        parked(&w, WaitReason::Sync);
        // This thread now holds the mutex across the runtime's shutdown.
        let mut held = pair.0.lock();
        *held += 1;
        let dropper = thread::spawn(move || drop(rt));
        // Give the unwind time to break in (it takes a few ms when it does).
        let start = Instant::now();
        while !unwound.load(Ordering::SeqCst) && start.elapsed() < Duration::from_millis(300) {
            thread::yield_now();
        }
        assert!(pair.0.is_locked(), "the unwound wait unlocked a mutex held by another thread");
        assert!(!unwound.load(Ordering::SeqCst), "the unwound wait went on without the mutex");
        *held += 1;
        drop(held);
        dropper.join().unwrap();
        assert!(unwound.load(Ordering::SeqCst));
        assert_eq!(*pair.0.try_lock().expect("released by the unwound wait"), 2);
    });
}

/// What the hammer's coroutines queue on.
#[derive(Debug, Clone, Copy)]
enum Prim {
    Mutex,
    RwLock,
    Semaphore,
    Condvar,
}

struct Shared {
    m: Mutex<u64>,
    rw: RwLock<u64>,
    sem: Semaphore,
    cm: Mutex<bool>,
    cv: Condvar,
}

/// One hammer coroutine: uses `prim` in a loop, with contention (it yields
/// while holding locks, so others queue behind it).
fn hammer_loop(s: &Shared, prim: Prim, i: usize) -> ! {
    loop {
        match prim {
            Prim::Mutex => {
                let mut g = s.m.lock();
                *g += 1;
                corio::yield_now();
            }
            Prim::RwLock if i.is_multiple_of(3) => {
                let mut g = s.rw.write();
                *g += 1;
                corio::yield_now();
            }
            Prim::RwLock => {
                let _g = s.rw.read();
                corio::yield_now();
            }
            Prim::Semaphore => {
                let _p = s.sem.acquire();
                corio::yield_now();
            }
            Prim::Condvar if i.is_multiple_of(4) => {
                s.cv.notify_one();
                corio::yield_now();
            }
            Prim::Condvar => {
                let mut g = s.cm.lock();
                s.cv.wait(&mut g);
            }
        }
    }
}

/// After the runtime is gone, every primitive must be fully usable from here.
fn check_usable(s: &Arc<Shared>) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let prompt = |what: &str| assert!(Instant::now() < deadline, "{what} was not prompt");
    *s.m.lock() += 1;
    prompt("Mutex::lock");
    *s.rw.write() += 1;
    drop((s.rw.read(), s.rw.read()));
    prompt("RwLock");
    let permits: Vec<_> = (0..2).map(|_| s.sem.acquire()).collect();
    assert!(s.sem.try_acquire().is_none());
    drop(permits);
    assert_eq!(s.sem.available_permits(), 2, "a permit was lost");
    prompt("Semaphore::acquire");
    assert!(!s.cv.notify_one(), "notify_one woke a coroutine that was unwound");
    let s2 = Arc::clone(s);
    let t = thread::spawn(move || {
        let mut g = s2.cm.lock();
        *g = true;
        !s2.cv.wait_timeout(&mut g, Duration::from_secs(5)).timed_out()
    });
    eventually(|| *s.cm.lock());
    assert!(s.cv.notify_one(), "the plain-thread waiter was not woken");
    assert!(t.join().unwrap());
}

fn hammer(counts: [usize; 4], main_holds: bool, drop_after_us: u64) {
    let s = Arc::new(Shared {
        m: Mutex::new(0),
        rw: RwLock::new(0),
        sem: Semaphore::new(2),
        cm: Mutex::new(false),
        cv: Condvar::new(),
    });
    let rt = runtime(2);
    for (prim, n) in [Prim::Mutex, Prim::RwLock, Prim::Semaphore, Prim::Condvar].into_iter().zip(counts) {
        for i in 0..n {
            let s = Arc::clone(&s);
            rt.spawn(move || hammer_loop(&s, prim, i));
        }
    }
    thread::sleep(Duration::from_micros(drop_after_us)); // a random moment, not a synchronisation
    if main_holds {
        // Queues form behind main, and the shutdown unwinds them while main
        // still holds (never the condvar's mutex: unwound condvar waits
        // re-lock it, and this thread is the one dropping the runtime).
        let (g, w, p) = (s.m.lock(), s.rw.write(), (s.sem.acquire(), s.sem.acquire()));
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(2) {
            thread::yield_now();
        }
        let s2 = Arc::clone(&s);
        let dropper = thread::spawn(move || {
            drop(rt);
            drop(s2);
        });
        drop((g, w, p));
        dropper.join().unwrap();
    } else {
        drop(rt);
    }
    check_usable(&s);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    /// The bug class "a waiter unwound while queued": whatever is queued
    /// when the runtime goes away, the primitives stay fully usable.
    #[test]
    fn hammer_a_waiter_unwound_while_queued(
        counts in prop::array::uniform4(0usize..12),
        main_holds in any::<bool>(),
        drop_after_us in 0u64..5_000,
    ) {
        with_timeout(30, move || hammer(counts, main_holds, drop_after_us));
    }
}

#[test]
fn a_budget_yield_never_leaves_a_lock_held_at_shutdown() {
    // A coroutine locking an uncontended mutex in a loop spends its budget in
    // `lock` and yields there; if the runtime is dropped at that moment, the
    // unwind must not leave the mutex locked (the yield comes before taking it).
    with_timeout(60, || {
        for round in 0..20u64 {
            let m = Arc::new(Mutex::new(0u64));
            let rt = runtime(1);
            let m2 = Arc::clone(&m);
            let _h = rt.spawn(move || loop {
                *m2.lock() += 1;
            });
            let m3 = Arc::clone(&m);
            let _other = rt.spawn(move || loop {
                drop(m3.try_lock());
                corio::yield_now();
            });
            // Let the loops run a little, a different amount each round.
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_micros(200 + round * 150) {
                std::hint::spin_loop();
            }
            drop(rt);
            *m.try_lock().expect("the mutex is free after the shutdown") += 1;
        }
    });
}
