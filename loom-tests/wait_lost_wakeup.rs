//! Loom model (docs/semantics.md A11): a store + notify racing a waiter's check + sleep is never lost.
//!
//! If the notify could slip between the waiter's check and its enqueue, the waiter would sleep
//! forever and loom would report a deadlock.
//!
//! Proven by a planted bug (recorded when the model was added): the value checked before taking the bucket lock and raising the count.
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use sharedbuf::{atomics, loom_hooks, WaitResult};

#[test]
fn store_then_notify_is_never_lost() {
    loom::model(|| {
        let view = support::view();
        let notifier = support::spawn_store_then_notify(&view);
        let result = atomics::wait(&view, 0, 0, None).unwrap();
        let woken = notifier.join().unwrap();
        assert!(matches!(result, WaitResult::Ok | WaitResult::NotEqual));
        // Exact count (A8): the notify counted the waiter if and only if it woke it.
        assert_eq!(
            result == WaitResult::Ok,
            woken == 1,
            "{result:?} vs woken {woken}"
        );
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
