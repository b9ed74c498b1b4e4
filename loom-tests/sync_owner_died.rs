//! Loom models (docs/semantics.md X3): the takeover of a process-shared lock whose holder died
//! (`src/sync/shared_mutex.rs`, `src/sync/shared_rwlock.rs`). Threads stand in for processes:
//! under loom a memfd buffer is model memory with a header, and a thread "dies" through
//! `loom_hooks::owner_dies` after leaking its guard.
//!
//! - Two lockers race to take over a `Mutex` whose holder is dead: exactly one gets
//!   `OwnerDied` (the takeover is one compare-exchange), the other waits for it and then takes
//!   the lock normally once it is marked consistent; mutual exclusion holds throughout (the
//!   guarded cell), no waiter is left asleep (loom reports a deadlock), and the words come back
//!   to "unlocked, nobody counted".
//! - The same race, but the winner drops its guard without `mark_consistent`: the other gets
//!   `NotRecoverable`, whether it was asleep by then (the retirement wakes it) or not, and so
//!   does every later lock.
//! - A reader and a writer race to take over an `RwLock` whose writer is dead: exactly one gets
//!   `OwnerDied` with the write lock (the reader too), the other gets in once it is released.
//! - The holder dies while a locker is asleep on it: nothing wakes that locker but the end of
//!   its sleep's slice (the model plays the timer with
//!   `loom_hooks::fire_timeouts` until the locker is through), after which it looks at the
//!   holder again and takes the lock over. A sleep without a slice, or a slice's end that does
//!   not look at the holder again, is a deadlock here. The same for an `RwLock` reader, and a
//!   writer, asleep behind a writer that dies.
//!
//! Proven by a planted bug: the unlocker reading the waiter count with a Relaxed load instead of a read-modify-write (loom deadlock); and others: the takeover as a plain store (loom causality violation on the guarded cell, and two `OwnerDied`); a retirement that wakes nobody (loom deadlock); a waiter looking at the holder only before its first sleep (never finishes).
#![cfg(loom)]

#[path = "sync_support.rs"]
mod support;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use sharedbuf::sync::{LockError, Mutex, RwLock};
use sharedbuf::{loom_hooks, Error, SharedBuffer};
use support::Guarded;

/// A process-shared buffer (model memory with a header) holding a `Mutex` whose holder, the
/// model's main thread, has died.
fn dead_holders_mutex() -> (SharedBuffer, Mutex) {
    let buffer = SharedBuffer::memfd("model", Mutex::BYTES).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    std::mem::forget(mutex.lock().unwrap());
    loom_hooks::owner_dies();
    (buffer, mutex)
}

/// What one racer saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Saw {
    Clean,
    OwnerDied,
    NotRecoverable,
}

#[test]
fn exactly_one_locker_takes_over_a_dead_holder() {
    loom::model(|| {
        let (buffer, mutex) = dead_holders_mutex();
        let guarded = Guarded::new();
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (mutex, guarded) = (mutex.clone(), guarded.clone());
                loom::thread::spawn(move || match mutex.lock() {
                    Ok(guard) => {
                        guarded.bump();
                        drop(guard);
                        Saw::Clean
                    }
                    Err(LockError::OwnerDied(mut guard)) => {
                        guarded.bump();
                        guard.mark_consistent();
                        drop(guard);
                        Saw::OwnerDied
                    }
                    Err(LockError::Failed(error)) => panic!("{error}"),
                })
            })
            .collect();
        let mut saw: Vec<Saw> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        saw.sort_by_key(|s| *s as u8);
        assert_eq!(saw, [Saw::Clean, Saw::OwnerDied]);
        assert_eq!(guarded.get(), 2);
        assert!(!mutex.is_locked());
        let words = support::words(&buffer, Mutex::BYTES);
        assert_eq!(words[0], 0, "nobody counted, no async flag");
        assert_eq!(loom_hooks::queued_waiters(), 0);
        assert_eq!(loom_hooks::process_slots_taken(&buffer), 0);
    });
}

#[test]
fn an_unrepaired_takeover_retires_the_lock_for_the_other() {
    loom::model(|| {
        let (buffer, mutex) = dead_holders_mutex();
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let mutex = mutex.clone();
                loom::thread::spawn(move || match mutex.lock() {
                    Ok(_) => Saw::Clean,
                    // Dropped unrepaired: the lock is retired.
                    Err(LockError::OwnerDied(_)) => Saw::OwnerDied,
                    Err(LockError::Failed(Error::NotRecoverable)) => Saw::NotRecoverable,
                    Err(LockError::Failed(error)) => panic!("{error}"),
                })
            })
            .collect();
        let mut saw: Vec<Saw> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        saw.sort_by_key(|s| *s as u8);
        assert_eq!(saw, [Saw::OwnerDied, Saw::NotRecoverable]);
        assert!(mutex.try_lock().is_err_and(|e| e == Error::NotRecoverable));
        assert_eq!(loom_hooks::queued_waiters(), 0);
        assert_eq!(loom_hooks::process_slots_taken(&buffer), 0);
    });
}

#[test]
fn a_reader_and_a_writer_race_to_take_over_a_dead_writer() {
    loom::model(|| {
        let buffer = SharedBuffer::memfd("model", RwLock::BYTES).unwrap();
        let lock = RwLock::at(&buffer, 0).unwrap();
        std::mem::forget(lock.write().unwrap());
        loom_hooks::owner_dies();
        let guarded = Guarded::new();
        let reader = {
            let (lock, guarded) = (lock.clone(), guarded.clone());
            loom::thread::spawn(move || match lock.read() {
                Ok(guard) => {
                    guarded.get();
                    drop(guard);
                    Saw::Clean
                }
                Err(LockError::OwnerDied(mut guard)) => {
                    guarded.bump(); // the repair, under the write lock
                    guard.mark_consistent();
                    Saw::OwnerDied
                }
                Err(LockError::Failed(error)) => panic!("{error}"),
            })
        };
        let writer = {
            let (lock, guarded) = (lock.clone(), guarded.clone());
            loom::thread::spawn(move || match lock.write() {
                Ok(guard) => {
                    guarded.bump();
                    drop(guard);
                    Saw::Clean
                }
                Err(LockError::OwnerDied(mut guard)) => {
                    guarded.bump();
                    guard.mark_consistent();
                    Saw::OwnerDied
                }
                Err(LockError::Failed(error)) => panic!("{error}"),
            })
        };
        let saw = [reader.join().unwrap(), writer.join().unwrap()];
        assert_eq!(
            saw.iter().filter(|s| **s == Saw::OwnerDied).count(),
            1,
            "{saw:?}"
        );
        assert!(!lock.is_write_locked());
        assert_eq!(lock.reader_count(), 0);
        let words = support::words(&buffer, RwLock::BYTES);
        assert_eq!(
            [words[0], words[1], words[2], words[3]],
            [0; 4],
            "state, owner"
        );
        assert_eq!(loom_hooks::queued_waiters(), 0);
        assert_eq!(loom_hooks::process_slots_taken(&buffer), 0);
    });
}

/// Waits until a locker sleeps (its sleep has a finite timeout: the slice). A locker that
/// looks at the holder before it dies takes it over without sleeping (the models above);
/// here it is asleep, and its sleep's value does not change when its holder dies.
fn until_asleep() {
    while loom_hooks::pending_timeouts() == 0 {
        loom::thread::yield_now();
    }
}

/// Plays the timer until `done` counts `threads`: ends every sleep's slice, again and again.
fn end_slices_until(done: &AtomicUsize, threads: usize) {
    while done.load(Ordering::Acquire) < threads {
        loom_hooks::fire_timeouts();
        loom::thread::yield_now();
    }
}

#[test]
fn a_sleeping_locker_takes_over_once_its_slice_ends() {
    loom::model(|| {
        let buffer = SharedBuffer::memfd("model", Mutex::BYTES).unwrap();
        let mutex = Mutex::at(&buffer, 0).unwrap();
        let guard = mutex.lock().unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let locker = {
            let (mutex, done) = (mutex.clone(), done.clone());
            loom::thread::spawn(move || {
                let saw = match mutex.lock() {
                    Ok(_) => Saw::Clean,
                    Err(LockError::OwnerDied(mut guard)) => {
                        guard.mark_consistent();
                        Saw::OwnerDied
                    }
                    Err(LockError::Failed(error)) => panic!("{error}"),
                };
                done.fetch_add(1, Ordering::Release);
                saw
            })
        };
        // The holder dies holding the lock, the locker asleep on it.
        until_asleep();
        std::mem::forget(guard);
        loom_hooks::owner_dies();
        end_slices_until(&done, 1);
        assert_eq!(locker.join().unwrap(), Saw::OwnerDied);
        assert!(!mutex.is_locked());
        assert_eq!(
            support::words(&buffer, Mutex::BYTES)[0],
            0,
            "nobody counted"
        );
        assert_eq!(loom_hooks::queued_waiters(), 0);
        assert_eq!(loom_hooks::process_slots_taken(&buffer), 0);
    });
}

/// A reader (or writer) that may be asleep behind a writer when that writer dies.
fn a_sleeper_takes_over_a_writer_that_died(write: bool) {
    loom::model(move || {
        let buffer = SharedBuffer::memfd("model", RwLock::BYTES).unwrap();
        let lock = RwLock::at(&buffer, 0).unwrap();
        let guard = lock.write().unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let sleeper = {
            let (lock, done) = (lock.clone(), done.clone());
            loom::thread::spawn(move || {
                let result = if write {
                    lock.write().map(drop)
                } else {
                    lock.read().map(drop)
                };
                let saw = match result {
                    Ok(()) => Saw::Clean,
                    Err(LockError::OwnerDied(mut guard)) => {
                        guard.mark_consistent();
                        Saw::OwnerDied
                    }
                    Err(LockError::Failed(error)) => panic!("{error}"),
                };
                done.fetch_add(1, Ordering::Release);
                saw
            })
        };
        until_asleep();
        std::mem::forget(guard);
        loom_hooks::owner_dies();
        end_slices_until(&done, 1);
        assert_eq!(sleeper.join().unwrap(), Saw::OwnerDied);
        assert!(!lock.is_write_locked());
        assert_eq!(lock.reader_count(), 0);
        let words = support::words(&buffer, RwLock::BYTES);
        assert_eq!(
            [words[0], words[1], words[2], words[3]],
            [0; 4],
            "state, owner"
        );
        assert_eq!(loom_hooks::queued_waiters(), 0);
        assert_eq!(loom_hooks::process_slots_taken(&buffer), 0);
    });
}

// One sleeper at a time: with two threads spinning (the timer and a writer yielding to a
// claim in passing) loom may starve the third for ever; the race of a reader and a writer for
// the takeover is the model above.
#[test]
fn a_sleeping_reader_takes_over_a_writer_that_died() {
    a_sleeper_takes_over_a_writer_that_died(false);
}

#[test]
fn a_sleeping_writer_takes_over_a_writer_that_died() {
    a_sleeper_takes_over_a_writer_that_died(true);
}
