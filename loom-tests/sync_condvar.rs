//! Loom model (docs/semantics.md S4): a notify racing the waiter's unlock-and-sleep is never lost.
//!
//! The waiter checks a flag under the mutex and waits while it is 0; the notifier sets it under
//! the mutex and notifies after unlocking. In every interleaving the waiter returns (a lost
//! notify would leave it asleep: a deadlock loom reports), and the notify's count is exact: it
//! counted the waiter only if the waiter slept and was woken by it.
//!
//! Proven by a planted bug: the waiter reads the sequence after the unlock instead of before (loom deadlock: the notify in between is lost).
#![cfg(loom)]

#[path = "sync_support.rs"]
mod support;

use std::sync::atomic::Ordering::SeqCst;

use loom::sync::atomic::AtomicUsize;
use loom::sync::Arc;
use sharedbuf::sync::{Condvar, Mutex};
use sharedbuf::{loom_hooks, SharedBuffer};

#[test]
fn a_notify_between_unlock_and_sleep_is_not_lost() {
    loom::model(|| {
        let buffer = SharedBuffer::new(Mutex::BYTES + Condvar::BYTES).unwrap();
        let mutex = Mutex::at(&buffer, 0).unwrap();
        let condvar = Condvar::at(&buffer, Mutex::BYTES).unwrap();
        // The flag: guarded by the mutex (a loom atomic only so both threads can own a handle).
        let flag = Arc::new(AtomicUsize::new(0));

        let (notifier_mutex, notifier_condvar, notifier_flag) =
            (mutex.clone(), condvar.clone(), flag.clone());
        let notifier = loom::thread::spawn(move || {
            {
                let _guard = notifier_mutex.lock().unwrap();
                notifier_flag.store(1, SeqCst);
            }
            notifier_condvar.notify_one()
        });

        let mut sleeps = 0;
        let mut guard = mutex.lock().unwrap();
        while flag.load(SeqCst) == 0 {
            guard = condvar.wait(guard).unwrap();
            sleeps += 1;
        }
        drop(guard);
        let woken = notifier.join().unwrap();
        assert!(woken <= 1);
        assert!(
            woken == 0 || sleeps >= 1,
            "counted a waiter that never waited"
        );
        let words = support::words(&buffer, Mutex::BYTES + Condvar::BYTES);
        assert_eq!(words[5], 0, "the condvar's waiter count is back to zero");
        assert_eq!(
            [words[0], words[2], words[3]],
            [0, 0, 0],
            "the mutex is free"
        );
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
