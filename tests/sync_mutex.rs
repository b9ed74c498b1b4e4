//! `sync::Mutex` (docs/semantics.md S1, S2, S3, S5, S6): attaching, the lock contract, relock
//! refusal, timed locks, a stress run checked through views, fairness under barging, terminate
//! of a worker blocked in `lock`, and `lock_async`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    block_on, current_tid, join_within, poll_once, spawn_asleep, until, wait_until_asleep,
};
use sharedbuf::sync::{Mutex, RwLock};
use sharedbuf::worker::{Worker, WorkerEvent};
use sharedbuf::{Error, Int32Array, SharedBuffer, Uint32Array};

/// The mutex's four 32-bit words (state, side, owner low, owner high).
fn words(mutex: &Mutex) -> Vec<u32> {
    Uint32Array::with_range(mutex.buffer(), mutex.byte_offset(), Some(4))
        .unwrap()
        .to_vec()
}

/// The state and owner words, which are zero whenever nobody holds or waits for the lock (the
/// side word is a sequence number and may have moved).
fn state_and_owner(mutex: &Mutex) -> [u32; 3] {
    let words = words(mutex);
    [words[0], words[2], words[3]]
}

#[test]
fn s1_zero_bytes_are_an_unlocked_mutex_and_attaching_writes_nothing() {
    let buffer = SharedBuffer::new(64).unwrap();
    let mutex = Mutex::at(&buffer, 16).unwrap();
    assert_eq!((Mutex::BYTES, Mutex::ALIGN), (16, 8));
    assert_eq!(words(&mutex), [0, 0, 0, 0]);
    assert!(!mutex.is_locked());
    let guard = mutex.lock().unwrap();
    assert!(mutex.is_locked());
    assert_ne!(
        state_and_owner(&mutex),
        [0, 0, 0],
        "the lock and its owner are recorded"
    );
    drop(guard);
    assert!(!mutex.is_locked());
    assert_eq!(
        words(&mutex),
        [0, 0, 0, 0],
        "an uncontended unlock leaves zeros"
    );
    // The bytes around it were never touched.
    let all = Uint32Array::new(&buffer).unwrap().to_vec();
    assert!(all.iter().all(|&w| w == 0));
}

#[test]
fn s1_bytes_zeroed_under_a_held_lock_leave_an_unlocked_mutex_after_the_unlock() {
    // The lock's words are user memory: a thread may overwrite them while the lock is held.
    // The unlock must not turn that into a lock held for ever (the unlock subtracts its hold;
    // from a zeroed word that would borrow through every bit).
    let buffer = SharedBuffer::new(64).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let guard = mutex.lock().unwrap();
    Uint32Array::with_range(&buffer, 0, Some(4))
        .unwrap()
        .fill(0);
    drop(guard);
    assert_eq!(state_and_owner(&mutex), [0, 0, 0]);
    assert!(!mutex.is_locked());
    assert!(
        mutex.try_lock().is_ok(),
        "the zeroed mutex can be locked again"
    );
}

#[test]
fn s1_bad_places_are_refused() {
    let buffer = SharedBuffer::new(32).unwrap();
    assert_eq!(
        Mutex::at(&buffer, 4).err(),
        Some(Error::Misaligned {
            byte_offset: 4,
            align: 8
        })
    );
    assert_eq!(
        Mutex::at(&buffer, 24).err(),
        Some(Error::RangeOutOfBounds {
            start: 24,
            end: 40,
            len: 32
        })
    );
    let small = SharedBuffer::new(8).unwrap();
    assert!(matches!(
        Mutex::at(&small, 0),
        Err(Error::RangeOutOfBounds { len: 8, .. })
    ));
    let huge = usize::MAX - 7;
    assert_eq!(
        Mutex::at(&buffer, huge).err(),
        Some(Error::RangeOutOfBounds {
            start: huge,
            end: usize::MAX,
            len: 32
        })
    );
    assert!(Mutex::at(&buffer, 16).is_ok(), "the last place that fits");
}

#[test]
fn s1_handles_on_the_same_bytes_agree_and_other_offsets_are_independent() {
    let buffer = SharedBuffer::new(64).unwrap();
    let a = Mutex::at(&buffer, 0).unwrap();
    let b = Mutex::at(&buffer.clone(), 0).unwrap(); // made separately, same bytes
    let c = a.clone();
    let other = Mutex::at(&buffer, 16).unwrap();

    let guard = a.lock().unwrap();
    assert!(b.is_locked() && c.is_locked());
    // Same thread: every handle knows this thread holds it.
    assert_eq!(b.try_lock().unwrap_err(), Error::WouldDeadlock);
    // Another thread: held by someone else.
    let remote = c.clone();
    assert!(
        thread::spawn(move || remote.try_lock().is_err_and(|e| e == Error::WouldBlock))
            .join()
            .unwrap()
    );
    // A mutex at another offset is another mutex.
    drop(other.try_lock().expect("independent of the first"));
    drop(guard);
    drop(b.try_lock().expect("released through any handle"));
}

#[test]
fn s2_relock_on_the_holding_thread_is_would_deadlock_never_a_hang() {
    let buffer = SharedBuffer::new(16).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let guard = mutex.lock().unwrap();
    assert_eq!(mutex.lock().unwrap_err(), Error::WouldDeadlock);
    assert_eq!(mutex.try_lock().unwrap_err(), Error::WouldDeadlock);
    assert_eq!(
        mutex.try_lock_for(Duration::from_secs(3600)).unwrap_err(),
        Error::WouldDeadlock
    );
    assert_eq!(guard.mutex().byte_offset(), 0);
    drop(guard);
    // Released: the same thread locks it again, and another thread's hold is not "mine".
    drop(mutex.lock().unwrap());
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let remote = mutex.clone();
    let holder = thread::spawn(move || {
        let _guard = remote.lock().unwrap();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    held_rx.recv().unwrap();
    assert!(mutex.try_lock().is_err_and(|e| e == Error::WouldBlock));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(state_and_owner(&mutex), [0, 0, 0]);
}

#[test]
fn s3_timed_locks_give_up_at_their_deadline_and_leave_no_trace() {
    let buffer = SharedBuffer::new(16).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let remote = mutex.clone();
    let holder = thread::spawn(move || {
        let _guard = remote.lock().unwrap();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    held_rx.recv().unwrap();
    assert!(mutex
        .try_lock_for(Duration::ZERO)
        .is_err_and(|e| e == Error::WouldBlock));
    assert!(mutex
        .try_lock_for(Duration::from_millis(20))
        .is_err_and(|e| e == Error::WouldBlock));
    assert!(mutex
        .try_lock_until(Instant::now() - Duration::from_secs(1))
        .is_err_and(|e| e == Error::WouldBlock));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    // The timed-out waiters left the count: the words are back to zero.
    assert_eq!(state_and_owner(&mutex), [0, 0, 0]);
    // And a timed lock on a free mutex succeeds at once, even with a zero timeout.
    drop(mutex.try_lock_for(Duration::ZERO).expect("free"));
}

/// S3: the `try_` forms have std's `TryLockResult` shape, so std's idiom
/// `if let Ok(guard) = lock.try_lock()` runs its block only while holding the lock. (They used
/// to return `Ok(None)` for a busy lock: the idiom compiled, and ran its block unlocked.)
#[test]
fn s3_the_std_try_lock_idiom_enters_only_with_the_lock() {
    let buffer = SharedBuffer::new(64).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let rwlock = RwLock::at(&buffer, 32).unwrap();
    let (remote_mutex, remote_rwlock) = (mutex.clone(), rwlock.clone());
    let entered_while_held = |mutex: &Mutex, rwlock: &RwLock| {
        let soon = Duration::from_millis(1);
        let mut entered = Vec::new();
        if let Ok(_guard) = mutex.try_lock() {
            entered.push("try_lock");
        }
        if let Ok(_guard) = mutex.try_lock_for(soon) {
            entered.push("try_lock_for");
        }
        if let Ok(_guard) = mutex.try_lock_until(Instant::now() + soon) {
            entered.push("try_lock_until");
        }
        if let Ok(_guard) = rwlock.try_read() {
            entered.push("try_read");
        }
        if let Ok(_guard) = rwlock.try_read_for(soon) {
            entered.push("try_read_for");
        }
        if let Ok(_guard) = rwlock.try_write() {
            entered.push("try_write");
        }
        if let Ok(_guard) = rwlock.try_write_until(Instant::now() + soon) {
            entered.push("try_write_until");
        }
        entered
    };
    let held = (mutex.lock().unwrap(), rwlock.write().unwrap());
    let entered = thread::spawn(move || entered_while_held(&remote_mutex, &remote_rwlock))
        .join()
        .unwrap();
    assert_eq!(entered, Vec::<&str>::new(), "entered without the lock");
    drop(held);
    // Free: every form takes it.
    assert_eq!(entered_while_held(&mutex, &rwlock).len(), 7);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s3_a_timed_waiter_gets_the_lock_when_it_is_released_in_time() {
    let buffer = SharedBuffer::new(16).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let guard = mutex.lock().unwrap();
    let remote = mutex.clone();
    let (waiter, _) = spawn_asleep(move || remote.try_lock_for(Duration::from_secs(3600)).is_ok());
    drop(guard);
    assert!(join_within(waiter, "the timed waiter"));
    assert_eq!(state_and_owner(&mutex), [0, 0, 0]);
}

/// 8 threads × 100,000 lock/unlock around two plain (non-atomic-looking) updates of a counter
/// pair in the same buffer: no thread ever sees the pair unequal, and no increment is lost.
#[test]
fn s2_eight_threads_keep_a_counter_pair_equal_through_views() {
    const THREADS: usize = 8;
    // Fewer under Miri (as every count marked `cfg!(miri)` in this file: it interprets the
    // threads about a thousand times slower).
    const ROUNDS: usize = if cfg!(miri) { 100 } else { 100_000 };
    let buffer = SharedBuffer::new(64).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let pair = Int32Array::with_range(&buffer, 32, Some(2)).unwrap();
    let longest_wait_ns = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (mutex, pair, longest, start) = (
                mutex.clone(),
                pair.clone(),
                longest_wait_ns.clone(),
                start.clone(),
            );
            thread::spawn(move || {
                start.wait();
                let mut longest_here = Duration::ZERO;
                for _ in 0..ROUNDS {
                    let asked = Instant::now();
                    let _guard = mutex.lock().unwrap();
                    longest_here = longest_here.max(asked.elapsed());
                    let (a, b) = (pair.get(0).unwrap(), pair.get(1).unwrap());
                    assert_eq!(a, b, "a holder saw the other holder's half-done update");
                    pair.set(0, a + 1).unwrap();
                    pair.set(1, b + 1).unwrap();
                }
                longest.fetch_max(longest_here.as_nanos() as u64, SeqCst);
            })
        })
        .collect();
    for thread in threads {
        join_within(thread, "a stress thread");
    }
    let total = (THREADS * ROUNDS) as i32;
    assert_eq!(pair.to_vec(), [total, total]);
    assert_eq!(state_and_owner(&mutex), [0, 0, 0]);
    println!(
        "{THREADS} x {ROUNDS} lock/unlock: longest single acquire wait {:?}",
        Duration::from_nanos(longest_wait_ns.load(SeqCst))
    );
}

/// S5: a thread that holds the lock nearly all the time and takes it again the instant it
/// releases it (barging, on its own core) cannot keep another thread out: the other thread
/// completes its acquisitions while the barging one keeps going. Without the handoff to a
/// starving waiter, the second thread only gets in when the first is descheduled in the
/// nanoseconds between its unlock and its relock. Asserted on progress only (the watchdog
/// catches starvation); the longest wait is printed, not checked.
#[test]
#[cfg_attr(
    miri,
    ignore = "the barging thread holds the lock for 200,000 writes a round: hours under Miri"
)]
fn s5_a_waiter_is_not_starved_by_a_barging_thread() {
    const VICTIM_ROUNDS: usize = 20;
    let buffer = SharedBuffer::new(64).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let cell = Int32Array::with_range(&buffer, 32, Some(1)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let barging = Arc::new(AtomicUsize::new(0));
    let hammer = {
        let (mutex, cell, stop, barging) =
            (mutex.clone(), cell.clone(), stop.clone(), barging.clone());
        thread::spawn(move || {
            while !stop.load(SeqCst) {
                let _guard = mutex.lock().unwrap();
                for _ in 0..200_000 {
                    // Work inside the lock: it is held nearly all the time.
                    cell.set(0, cell.get(0).unwrap().wrapping_add(1)).unwrap();
                }
                barging.fetch_add(1, SeqCst);
            }
        })
    };
    // The barging thread is under way (a watchdog: one that panicked before its first round
    // fails the test here instead of leaving it spinning for ever).
    until(
        || barging.load(SeqCst) > 0,
        "the barging thread's first round",
    );
    let victim = {
        let mutex = mutex.clone();
        thread::spawn(move || {
            let mut longest = Duration::ZERO;
            for _ in 0..VICTIM_ROUNDS {
                let asked = Instant::now();
                let guard = mutex.lock().unwrap();
                longest = longest.max(asked.elapsed());
                drop(guard);
            }
            longest
        })
    };
    let longest = join_within(victim, "the victim (starved by the barging thread?)");
    let during = barging.load(SeqCst);
    stop.store(true, SeqCst);
    join_within(hammer, "the barging thread");
    assert!(during > 1, "the barging thread kept going meanwhile");
    assert_eq!(state_and_owner(&mutex), [0, 0, 0]);
    println!(
        "victim: {VICTIM_ROUNDS} acquisitions while the barging thread made {during}; longest wait {longest:?}"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s6_terminate_interrupts_a_worker_blocked_in_lock() {
    let buffer = SharedBuffer::new(16).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let guard = mutex.lock().unwrap();
    let worker: Worker<(), libc::pid_t> = Worker::builder()
        .worker_data(mutex.clone())
        .spawn(|ctx| -> Result<(), Error> {
            ctx.post_message(current_tid())?;
            let _guard = ctx.worker_data().lock()?; // held by the parent: blocks
            Ok(())
        })
        .unwrap();
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
    let tid = match worker.recv_event() {
        Ok(WorkerEvent::Message(tid)) => tid,
        other => panic!("expected the worker's tid, got {other:?}"),
    };
    wait_until_asleep(tid);
    let status = worker.terminate().unwrap();
    assert_eq!((status.code(), status.terminated()), (1, true));
    worker.join().unwrap();
    drop(guard);
    // The interrupted waiter left the queue: nothing counted, nothing recorded.
    assert_eq!(state_and_owner(&mutex), [0, 0, 0]);
    drop(mutex.try_lock().expect("usable after the terminate"));
}

#[test]
fn lock_async_resolves_at_once_when_free_and_after_a_release_otherwise() {
    let buffer = SharedBuffer::new(16).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let (guard, polls) = block_on(mutex.lock_async());
    let guard = guard.unwrap();
    assert_eq!(polls, 1);
    assert!(mutex.is_locked());
    // A blocking relock from this thread is not mistaken for the task's own hold.
    assert!(mutex.try_lock().is_err_and(|e| e == Error::WouldBlock));
    drop(guard);

    let blocking = mutex.lock().unwrap();
    let mut pending = Box::pin(mutex.lock_async());
    assert!(poll_once(&mut pending).is_pending());
    let remote = mutex.clone();
    let task = thread::spawn(move || {
        let (guard, polls) = block_on(remote.lock_async());
        drop(guard.unwrap());
        polls
    });
    drop(pending); // a dropped pending future strands nobody
    drop(blocking);
    assert!(join_within(task, "the async locker") >= 1);
    assert!(!mutex.is_locked());
    assert_eq!(state_and_owner(&mutex), [0, 0, 0]);
}

#[test]
fn lock_async_guards_are_held_across_await_on_a_multi_threaded_runtime() {
    const TASKS: usize = 8;
    const ROUNDS: usize = if cfg!(miri) { 20 } else { 500 };
    let buffer = SharedBuffer::new(64).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let pair = Int32Array::with_range(&buffer, 32, Some(2)).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (mutex, pair) = (mutex.clone(), pair.clone());
                tokio::spawn(async move {
                    for _ in 0..ROUNDS {
                        let guard = mutex.lock_async().await.unwrap();
                        let a = pair.get(0).unwrap();
                        tokio::task::yield_now().await; // the guard moves across an await
                        assert_eq!(pair.get(1).unwrap(), a);
                        pair.set(0, a + 1).unwrap();
                        pair.set(1, a + 1).unwrap();
                        drop(guard);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    // Blocking threads and async tasks share the lock.
    let total = (TASKS * ROUNDS) as i32;
    assert_eq!(pair.to_vec(), [total, total]);
    assert_eq!(state_and_owner(&mutex), [0, 0, 0]);
}

#[test]
fn blocking_and_async_lockers_share_one_mutex() {
    const PER_THREAD: i32 = if cfg!(miri) { 50 } else { 5_000 };
    let buffer = SharedBuffer::new(64).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let pair = Int32Array::with_range(&buffer, 32, Some(2)).unwrap();
    let bump = |pair: &Int32Array| {
        let a = pair.get(0).unwrap();
        assert_eq!(pair.get(1).unwrap(), a);
        pair.set(0, a + 1).unwrap();
        pair.set(1, a + 1).unwrap();
    };
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let (mutex, pair) = (mutex.clone(), pair.clone());
            thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    if k % 2 == 0 {
                        let _guard = mutex.lock().unwrap();
                        bump(&pair);
                    } else {
                        let (guard, _) = block_on(mutex.lock_async());
                        let _guard = guard.unwrap();
                        bump(&pair);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        join_within(thread, "a locker");
    }
    assert_eq!(pair.to_vec(), [4 * PER_THREAD, 4 * PER_THREAD]);
    assert_eq!(state_and_owner(&mutex), [0, 0, 0]);
}
