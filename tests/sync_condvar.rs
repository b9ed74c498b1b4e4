//! `sync::Condvar` (docs/semantics.md S1, S3, S4, S6): attaching, exact notify counts, no lost
//! notify, `wait_while` never returning on a wakeup that left its condition true, timed waits,
//! a ping-pong stress run, and terminate of a worker blocked in `wait`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::{current_tid, join_within, spawn_asleep, thread_state, until};
use sharedbuf::sync::{Condvar, Mutex, MutexGuard};
use sharedbuf::worker::{Worker, WorkerEvent};
use sharedbuf::{atomics, Error, Int32Array, SharedBuffer, Uint32Array};

/// A mutex at 0, a condition variable after it, and an `i32` flag after that.
struct Fixture {
    mutex: Mutex,
    condvar: Condvar,
    flag: Int32Array,
}

impl Fixture {
    fn new() -> Fixture {
        let buffer = SharedBuffer::new(64).unwrap();
        Fixture {
            mutex: Mutex::at(&buffer, 0).unwrap(),
            condvar: Condvar::at(&buffer, Mutex::BYTES).unwrap(),
            flag: Int32Array::with_range(&buffer, 32, Some(1)).unwrap(),
        }
    }

    fn clone(&self) -> Fixture {
        Fixture {
            mutex: self.mutex.clone(),
            condvar: self.condvar.clone(),
            flag: self.flag.clone(),
        }
    }

    fn flag(&self) -> i32 {
        atomics::load(&self.flag, 0).unwrap()
    }

    /// Sets the flag under the mutex.
    fn set_flag(&self, value: i32) {
        let _guard = self.mutex.lock().unwrap();
        atomics::store(&self.flag, 0, value).unwrap();
    }

    /// The condition variable's two words (sequence, waiters).
    fn condvar_words(&self) -> Vec<u32> {
        Uint32Array::with_range(self.condvar.buffer(), self.condvar.byte_offset(), Some(2))
            .unwrap()
            .to_vec()
    }
}

#[test]
fn s1_zero_bytes_are_a_condvar_nobody_waits_on_and_bad_places_are_refused() {
    let _serial = crate::common::serial();
    assert_eq!((Condvar::BYTES, Condvar::ALIGN), (8, 4));
    let fixture = Fixture::new();
    assert_eq!(fixture.condvar_words(), [0, 0]);
    assert_eq!(fixture.condvar.notify_all(), 0);
    assert_eq!(fixture.condvar.notify(3), 0);
    assert_eq!(fixture.condvar.notify_one(), 0);
    assert_eq!(
        fixture.condvar_words(),
        [0, 0],
        "a notify with nobody waiting writes nothing"
    );

    let buffer = SharedBuffer::new(16).unwrap();
    assert_eq!(
        Condvar::at(&buffer, 2).err(),
        Some(Error::Misaligned {
            byte_offset: 2,
            align: 4
        })
    );
    assert_eq!(
        Condvar::at(&buffer, 12).err(),
        Some(Error::RangeOutOfBounds {
            start: 12,
            end: 20,
            len: 16
        })
    );
    assert!(Condvar::at(&SharedBuffer::new(4).unwrap(), 0).is_err());
    assert!(Condvar::at(&buffer, 8).is_ok());
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s4_notify_counts_exactly_the_waiters_it_woke() {
    let _serial = crate::common::serial();
    let fixture = Fixture::new();
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let f = fixture.clone();
            spawn_asleep(move || {
                let guard = f.mutex.lock().unwrap();
                let _guard = f.condvar.wait(guard).unwrap();
            })
            .0
        })
        .collect();
    assert_eq!(fixture.condvar_words()[1], 3, "three registered waiters");
    assert_eq!(fixture.condvar.notify(2), 2);
    assert_eq!(fixture.condvar.notify_all(), 1);
    assert_eq!(fixture.condvar.notify_all(), 0);
    for waiter in waiters {
        join_within(waiter, "a notified waiter");
    }
    assert_eq!(fixture.condvar_words()[1], 0);
    assert!(!fixture.mutex.is_locked());
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s4_handles_on_the_same_bytes_notify_each_other() {
    let _serial = crate::common::serial();
    let fixture = Fixture::new();
    let other = Condvar::at(fixture.condvar.buffer(), fixture.condvar.byte_offset()).unwrap();
    let f = fixture.clone();
    let (waiter, _) = spawn_asleep(move || {
        let guard = f.mutex.lock().unwrap();
        let _guard = f.condvar.wait(guard).unwrap();
    });
    assert_eq!(other.notify_one(), 1);
    join_within(waiter, "the waiter");
}

/// A notify that leaves the condition true wakes `wait_while`'s thread, which goes back to
/// sleep instead of returning; only the notify after the condition changed lets it return.
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s4_wait_while_never_returns_while_its_condition_holds() {
    let _serial = crate::common::serial();
    let fixture = Fixture::new();
    let evaluations = Arc::new(AtomicUsize::new(0));
    let (returned_tx, returned_rx) = mpsc::channel();
    let (f, evaluated) = (fixture.clone(), evaluations.clone());
    let (waiter, tid) = spawn_asleep(move || {
        let guard = f.mutex.lock().unwrap();
        let condition = |_: &mut MutexGuard<'_>| {
            evaluated.fetch_add(1, SeqCst);
            f.flag() == 0
        };
        let _guard = f.condvar.wait_while(guard, condition).unwrap();
        returned_tx.send(f.flag()).unwrap();
    });
    for round in 1..=3 {
        assert_eq!(fixture.condvar.notify_all(), 1, "the waiter was asleep");
        // It wakes, evaluates its condition again (still true) and goes back to sleep. A
        // waiter that returned instead (its thread gone) is caught by the assertion below; one
        // that never sleeps again fails the watchdog instead of spinning here for ever.
        until(
            || {
                (evaluations.load(SeqCst) > round
                    && fixture.condvar_words()[1] != 0
                    && thread_state(tid) == Some(b'S'))
                    || thread_state(tid).is_none()
            },
            "the waiter back asleep after the notify",
        );
        assert!(
            returned_rx.try_recv().is_err(),
            "returned with the condition true"
        );
    }
    fixture.set_flag(1);
    assert_eq!(fixture.condvar.notify_all(), 1);
    join_within(waiter, "the waiter");
    assert_eq!(returned_rx.recv().unwrap(), 1);
    assert_eq!(evaluations.load(SeqCst), 5);
}

#[test]
fn s3_timed_waits_report_a_timeout_and_hold_the_mutex_again() {
    let _serial = crate::common::serial();
    let fixture = Fixture::new();
    let guard = fixture.mutex.lock().unwrap();
    let (guard, result) = fixture
        .condvar
        .wait_for(guard, Duration::from_millis(10))
        .unwrap();
    assert!(result.timed_out());
    assert!(fixture.mutex.is_locked(), "the mutex is held again");
    let (guard, result) = fixture
        .condvar
        .wait_until(guard, Instant::now() - Duration::from_secs(1))
        .unwrap();
    assert!(result.timed_out());
    let (guard, result) = fixture
        .condvar
        .wait_while_for(guard, Duration::from_millis(10), |_| true)
        .unwrap();
    assert!(
        result.timed_out(),
        "the condition still held at the deadline"
    );
    let (guard, result) = fixture
        .condvar
        .wait_while_until(guard, Instant::now() + Duration::from_secs(3600), |_| false)
        .unwrap();
    assert!(!result.timed_out(), "the condition was already false");
    drop(guard);
    assert_eq!(
        fixture.condvar_words()[1],
        0,
        "timed-out waiters unregistered"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s3_a_timed_waiter_notified_in_time_does_not_report_a_timeout() {
    let _serial = crate::common::serial();
    let fixture = Fixture::new();
    let f = fixture.clone();
    let (waiter, _) = spawn_asleep(move || {
        let guard = f.mutex.lock().unwrap();
        let (_guard, result) = f
            .condvar
            .wait_while_for(guard, Duration::from_secs(3600), |_| f.flag() == 0)
            .unwrap();
        result.timed_out()
    });
    // Counted in the condvar's word as well as asleep: a sleep seen in `/proc` before the
    // waiter registered would make the notify below find nobody (seen once under heavy load).
    until(|| fixture.condvar_words()[1] == 1, "the waiter registered");
    fixture.set_flag(1);
    assert_eq!(fixture.condvar.notify_one(), 1);
    assert!(!join_within(waiter, "the waiter"));
}

/// Two threads hand a turn back and forth 10,000 times, each waiting for its turn under the
/// mutex: a single lost notify would hang the run (the watchdog reports it).
#[test]
fn s4_ping_pong_loses_no_notify() {
    let _serial = crate::common::serial();
    // Fewer under Miri, which interprets the threads about a thousand times slower.
    const ROUNDS: i32 = if cfg!(miri) { 200 } else { 10_000 };
    let fixture = Fixture::new();
    let f = fixture.clone();
    let partner = thread::spawn(move || {
        for round in 0..ROUNDS {
            let guard = f.mutex.lock().unwrap();
            let guard = f
                .condvar
                .wait_while(guard, |_| f.flag() != 2 * round + 1)
                .unwrap();
            atomics::store(&f.flag, 0, 2 * round + 2).unwrap();
            drop(guard);
            f.condvar.notify_one();
        }
    });
    for round in 0..ROUNDS {
        let guard = fixture.mutex.lock().unwrap();
        let guard = fixture
            .condvar
            .wait_while(guard, |_| fixture.flag() != 2 * round)
            .unwrap();
        atomics::store(&fixture.flag, 0, 2 * round + 1).unwrap();
        drop(guard);
        fixture.condvar.notify_one();
    }
    join_within(partner, "the partner");
    assert_eq!(fixture.flag(), 2 * ROUNDS);
    assert_eq!(fixture.condvar_words()[1], 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s6_terminate_interrupts_a_worker_blocked_in_wait() {
    let _serial = crate::common::serial();
    let fixture = Fixture::new();
    let worker: Worker<(), libc::pid_t> = Worker::builder()
        .worker_data(fixture.clone())
        .spawn(|ctx| -> Result<(), Error> {
            let f = ctx.worker_data();
            ctx.post_message(current_tid())?;
            let guard = f.mutex.lock()?;
            let _guard = f.condvar.wait_while(guard, |_| f.flag() == 0)?; // nobody notifies
            Ok(())
        })
        .unwrap();
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
    let tid = match worker.recv_event() {
        Ok(WorkerEvent::Message(tid)) => tid,
        other => panic!("expected the worker's tid, got {other:?}"),
    };
    while fixture.condvar_words()[1] == 0 || thread_state(tid) != Some(b'S') {
        thread::yield_now(); // until it sleeps in the wait (not just in the lock)
    }
    let status = worker.terminate().unwrap();
    assert_eq!((status.code(), status.terminated()), (1, true));
    worker.join().unwrap();
    assert_eq!(
        fixture.condvar_words()[1],
        0,
        "the interrupted waiter unregistered"
    );
    assert!(!fixture.mutex.is_locked(), "and it does not hold the mutex");
}

// ---- the requeue: a notify that finds the waiter's mutex held moves the waiter onto the
// mutex's waiters instead of waking it (one wakeup per handoff instead of two). Its effect is
// visible in the mutex's state word: the waiter count, from bit 5 (see `sync::Mutex`).

impl Fixture {
    /// How many waiters the mutex's state word counts.
    fn mutex_waiters(&self) -> u32 {
        let state = Uint32Array::with_range(self.mutex.buffer(), self.mutex.byte_offset(), Some(1))
            .unwrap()
            .get(0)
            .unwrap();
        state >> 5
    }
}

/// Spawns a thread that waits on the fixture's condition variable while the flag is 0, then
/// bumps the counter at element 1 (under the mutex) and returns; asleep when this returns.
fn spawn_flag_waiter(fixture: &Fixture, counter: &Int32Array) -> thread::JoinHandle<()> {
    let (f, counter) = (fixture.clone(), counter.clone());
    spawn_asleep(move || {
        let guard = f.mutex.lock().unwrap();
        let _guard = f.condvar.wait_while(guard, |_| f.flag() == 0).unwrap();
        counter.set(0, counter.get(0).unwrap() + 1).unwrap();
    })
    .0
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s4_a_waiter_notified_under_the_mutex_is_requeued_and_gets_it_when_the_guard_drops() {
    let _serial = crate::common::serial();
    let fixture = Fixture::new();
    let counter = Int32Array::with_range(fixture.mutex.buffer(), 40, Some(1)).unwrap();
    let waiter = spawn_flag_waiter(&fixture, &counter);
    let guard = fixture.mutex.lock().unwrap();
    atomics::store(&fixture.flag, 0, 1).unwrap();
    assert_eq!(fixture.condvar.notify_one(), 1, "the notify counts it");
    assert_eq!(fixture.mutex_waiters(), 1, "moved onto the held mutex");
    drop(guard);
    join_within(waiter, "the requeued waiter");
    assert_eq!(counter.get(0), Some(1), "it ran with the mutex held");
    assert_eq!(fixture.mutex_waiters(), 0);
    assert!(!fixture.mutex.is_locked());
    assert_eq!(fixture.condvar_words()[1], 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s4_notify_all_under_the_mutex_requeues_every_waiter_and_each_runs_once() {
    let _serial = crate::common::serial();
    const WAITERS: usize = 4;
    let fixture = Fixture::new();
    let counter = Int32Array::with_range(fixture.mutex.buffer(), 40, Some(1)).unwrap();
    let waiters: Vec<_> = (0..WAITERS)
        .map(|_| spawn_flag_waiter(&fixture, &counter))
        .collect();
    assert_eq!(fixture.condvar_words()[1], WAITERS as u32);
    let guard = fixture.mutex.lock().unwrap();
    atomics::store(&fixture.flag, 0, 1).unwrap();
    assert_eq!(fixture.condvar.notify_all(), WAITERS);
    assert_eq!(
        fixture.mutex_waiters(),
        WAITERS as u32,
        "all moved, none woken"
    );
    assert_eq!(fixture.condvar.notify_all(), 0, "nobody is left to notify");
    drop(guard);
    for waiter in waiters {
        join_within(waiter, "a requeued waiter");
    }
    assert_eq!(
        counter.get(0),
        Some(WAITERS as i32),
        "each ran exactly once"
    );
    assert_eq!(fixture.mutex_waiters(), 0);
    assert!(!fixture.mutex.is_locked());
    assert_eq!(fixture.condvar_words()[1], 0);
}

/// A requeued waiter was counted by the notify: its deadline passing while it waits for the
/// mutex does not make it a timeout, nor take it out of the mutex's queue.
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s3_a_requeued_waiter_whose_deadline_passes_reports_no_timeout() {
    let _serial = crate::common::serial();
    let fixture = Fixture::new();
    let f = fixture.clone();
    let (deadline_tx, deadline_rx) = mpsc::sync_channel(1);
    let (waiter, _) = spawn_asleep(move || {
        let guard = f.mutex.lock().unwrap();
        let deadline = Instant::now() + Duration::from_millis(20);
        deadline_tx.send(deadline).unwrap();
        let (guard, result) = f.condvar.wait_until(guard, deadline).unwrap();
        // Held again, by this thread.
        assert_eq!(guard.mutex().try_lock().unwrap_err(), Error::WouldDeadlock);
        result.timed_out()
    });
    let deadline = deadline_rx.recv().unwrap();
    let guard = fixture.mutex.lock().unwrap();
    let woken = fixture.condvar.notify_one();
    // Hold the mutex until the waiter's deadline has passed (a clock condition, not a sync).
    while Instant::now() <= deadline + Duration::from_millis(20) {
        thread::sleep(Duration::from_millis(5));
    }
    let queued = fixture.mutex_waiters();
    drop(guard);
    let timed_out = join_within(waiter, "the requeued waiter");
    if woken == 1 {
        assert_eq!(queued, 1, "still queued on the mutex past its deadline");
        assert!(!timed_out, "counted by the notify, yet reported a timeout");
    } else {
        assert!(timed_out, "neither notified nor timed out");
    }
    assert_eq!(fixture.mutex_waiters(), 0);
    assert!(!fixture.mutex.is_locked());
    assert_eq!(fixture.condvar_words()[1], 0);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s6_terminate_interrupts_a_worker_requeued_onto_a_held_mutex() {
    let _serial = crate::common::serial();
    let fixture = Fixture::new();
    let worker: Worker<(), libc::pid_t> = Worker::builder()
        .worker_data(fixture.clone())
        .spawn(|ctx| -> Result<(), Error> {
            let f = ctx.worker_data();
            ctx.post_message(current_tid())?;
            let guard = f.mutex.lock()?;
            let _guard = f.condvar.wait_while(guard, |_| f.flag() == 0)?;
            Ok(())
        })
        .unwrap();
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
    let tid = match worker.recv_event() {
        Ok(WorkerEvent::Message(tid)) => tid,
        other => panic!("expected the worker's tid, got {other:?}"),
    };
    while fixture.condvar_words()[1] == 0 || thread_state(tid) != Some(b'S') {
        thread::yield_now(); // until it sleeps in the wait
    }
    let guard = fixture.mutex.lock().unwrap();
    assert_eq!(fixture.condvar.notify_one(), 1);
    assert_eq!(fixture.mutex_waiters(), 1, "requeued onto the held mutex");
    let status = worker.terminate().unwrap();
    assert_eq!((status.code(), status.terminated()), (1, true));
    worker.join().unwrap();
    assert_eq!(
        fixture.mutex_waiters(),
        0,
        "the interrupted waiter left the queue"
    );
    assert_eq!(fixture.condvar_words()[1], 0);
    drop(guard);
    assert!(!fixture.mutex.is_locked());
}
