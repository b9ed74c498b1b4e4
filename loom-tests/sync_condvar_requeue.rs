//! Loom models of the condvar requeue (docs/semantics.md S4): a notify that finds its waiter's
//! mutex held moves the waiter onto the mutex's waiters instead of waking it, and the mutex's
//! unlock wakes it.
//!
//! - `a_requeue_racing_the_holders_unlock_strands_nobody`: the notify (sent after the notifier
//!   unlocked) races a third thread's lock and unlock, so the requeue's "is the mutex held?"
//!   decision races that unlock. The waiter always returns, mutual exclusion holds, and every
//!   word is back to zero.
//! - `a_requeued_waiter_never_times_out`: the notify is sent with the mutex held (so a sleeping
//!   waiter is requeued), then every timed waiter is timed out with the mutex still held. A
//!   waiter the notify counted never reports a timeout, and the mutex is free at the end.
//!
//! Proven by a planted bug: the mutex accepting requeued waiters without checking it is locked (loom deadlock in the first model); and another: the move not marking the waiter requeued (assertion: "counted by the notify, yet reported timed out").
#![cfg(loom)]

#[path = "sync_support.rs"]
mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use loom::sync::atomic::AtomicUsize;
use loom::sync::Arc;
use sharedbuf::sync::{Condvar, Mutex, TryLockError};
use sharedbuf::{loom_hooks, SharedBuffer};

const BYTES: usize = Mutex::BYTES + Condvar::BYTES;

/// The end state every model checks: mutex free, nobody counted, nobody queued.
fn assert_all_clear(buffer: &SharedBuffer) {
    let words = support::words(buffer, BYTES);
    assert_eq!(
        [words[0], words[2], words[3]],
        [0, 0, 0],
        "the mutex is free, nobody counted"
    );
    assert_eq!(words[5], 0, "the condvar's waiter count is back to zero");
    assert_eq!(loom_hooks::queued_waiters(), 0);
}

#[test]
fn a_requeue_racing_the_holders_unlock_strands_nobody() {
    loom::model(|| {
        let buffer = SharedBuffer::new(BYTES).unwrap();
        let mutex = Mutex::at(&buffer, 0).unwrap();
        let condvar = Condvar::at(&buffer, Mutex::BYTES).unwrap();
        let flag = Arc::new(AtomicUsize::new(0));

        // The waiter holds the mutex before the others start, so it registers before either
        // can take it.
        let mut guard = mutex.lock().unwrap();
        let (n_mutex, n_condvar, n_flag) = (mutex.clone(), condvar.clone(), flag.clone());
        let notifier = loom::thread::spawn(move || {
            {
                let _guard = n_mutex.lock().unwrap();
                n_flag.store(1, SeqCst);
            }
            n_condvar.notify_one() // unlocked: it moves the waiter only if the holder holds it
        });
        let h_mutex = mutex.clone();
        // Only ever tries: a holder that never queues keeps the model small, and still holds
        // the mutex (or not) at any point of the notify, and unlocks at any point of it.
        let holder = loom::thread::spawn(move || match h_mutex.try_lock() {
            Ok(guard) => drop(guard),
            Err(TryLockError::WouldBlock) => {}
            Err(error) => panic!("{error:?}"),
        });

        while flag.load(SeqCst) == 0 {
            guard = condvar.wait(guard).unwrap();
        }
        drop(guard);
        assert!(notifier.join().unwrap() <= 1);
        holder.join().unwrap();
        assert_all_clear(&buffer);
    });
}

#[test]
fn a_requeued_waiter_never_times_out() {
    loom::model(|| {
        let buffer = SharedBuffer::new(BYTES).unwrap();
        let mutex = Mutex::at(&buffer, 0).unwrap();
        let condvar = Condvar::at(&buffer, Mutex::BYTES).unwrap();

        // The notifier also plays the clock: with the mutex still held after its notify, it
        // times out every timed waiter, which a requeued one must ignore.
        // The waiter holds the mutex before the notifier starts, so it registers first.
        let guard = mutex.lock().unwrap();
        let (n_mutex, n_condvar) = (mutex.clone(), condvar.clone());
        let notifier = loom::thread::spawn(move || {
            let _guard = n_mutex.lock().unwrap();
            let woken = n_condvar.notify_one();
            loom_hooks::fire_timeouts();
            woken
        });

        let (guard, result) = condvar.wait_for(guard, Duration::from_secs(60)).unwrap();
        drop(guard);
        let woken = notifier.join().unwrap();
        if woken == 1 {
            assert!(
                !result.timed_out(),
                "counted by the notify, yet reported timed out"
            );
        }
        assert_all_clear(&buffer);
    });
}
