//! Loom model (docs/semantics.md S3, S4): a timed-out waiter racing the notify that picked it is never
//! counted twice — the bug V8 shipped in `Atomics.Condition`. A model thread plays the clock.
//!
//! In every interleaving: if `notify_one` says it woke 1, the waiter reports "not timed out";
//! if the waiter reports "timed out", the notify woke nobody. Both cannot happen.
//!
//! Proven by a planted bug: the timeout's cancel checks "still queued?" before locking the bucket instead of under it, so it overwrites the notify's outcome (assertion: "counted by the notify, yet reported timed out").
#![cfg(loom)]

#[path = "sync_support.rs"]
mod support;
#[path = "wait_support.rs"]
mod wait_support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use sharedbuf::sync::{Condvar, Mutex};
use sharedbuf::{loom_hooks, SharedBuffer};

#[test]
fn a_timed_out_waiter_is_never_also_counted_as_woken() {
    loom::model(|| {
        let buffer = SharedBuffer::new(Mutex::BYTES + Condvar::BYTES).unwrap();
        let mutex = Mutex::at(&buffer, 0).unwrap();
        let condvar = Condvar::at(&buffer, Mutex::BYTES).unwrap();

        let done = Arc::new(AtomicBool::new(false));
        let timer_done = done.clone();
        let timer = loom::thread::spawn(move || {
            if wait_support::until_timed_waiter(&timer_done) {
                loom_hooks::fire_timeouts();
            }
        });
        let notifier_condvar = condvar.clone();
        let notifier = loom::thread::spawn(move || notifier_condvar.notify_one());

        let guard = mutex.lock().unwrap();
        let (guard, result) = condvar.wait_for(guard, Duration::from_secs(60)).unwrap();
        drop(guard);
        done.store(true, SeqCst);
        let woken = notifier.join().unwrap();
        timer.join().unwrap();
        if woken == 1 {
            assert!(
                !result.timed_out(),
                "counted by the notify, yet reported timed out"
            );
        }
        if result.timed_out() {
            assert_eq!(woken, 0, "timed out, yet counted by the notify");
        }
        let words = support::words(&buffer, Mutex::BYTES + Condvar::BYTES);
        assert_eq!(words[5], 0, "the condvar's waiter count is back to zero");
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
