//! Loom model (docs/semantics.md A8, A9, A12): exact counts and FIFO order with three waiters (two
//! async, enqueued in a known order, and a blocking one enqueued after them) and two notifies.
//!
//! Proven by a planted bug (recorded when the model was added): `push_front` instead of `push_back`.
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use sharedbuf::{atomics, loom_hooks, WaitResult};

#[test]
fn notify_one_wakes_the_oldest_and_counts_exactly() {
    loom::model(|| {
        let view = support::view();
        let mut first = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());
        let mut second = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());

        let blocking_view = view.clone();
        let blocking = loom::thread::spawn(move || atomics::wait(&blocking_view, 0, 0, None));
        let notify_view = view.clone();
        let notifier =
            loom::thread::spawn(move || atomics::notify(&notify_view, 0, Some(1)).unwrap());

        assert_eq!(notifier.join().unwrap(), 1, "one waiter was there to wake");
        assert_eq!(
            support::poll(&mut first),
            Some(WaitResult::Ok),
            "FIFO: oldest first"
        );
        assert_eq!(support::poll(&mut second), None, "only one was asked for");

        atomics::store(&view, 0, 1).unwrap();
        let rest = atomics::notify(&view, 0, None).unwrap();
        let blocked = blocking.join().unwrap().unwrap();
        assert_eq!(support::poll(&mut second), Some(WaitResult::Ok));
        // `second`, plus the blocking waiter if it had enqueued (else it saw the new value).
        let expected = 1 + usize::from(blocked == WaitResult::Ok);
        assert_eq!(rest, expected, "blocking waiter returned {blocked:?}");
        assert_eq!(
            atomics::notify(&view, 0, None).unwrap(),
            0,
            "woken waiters left"
        );
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
