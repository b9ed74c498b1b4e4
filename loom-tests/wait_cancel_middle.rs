//! Loom model (docs/semantics.md A8, A9, A12): the middle waiter of an address's list leaves (its
//! future is dropped) while a notify takes two waiters of that address, with a waiter for
//! another address in the same bucket (under loom every address shares one). Whichever comes
//! first, FIFO and counts stay exact: the notify takes the oldest two still there, the other
//! address's waiter is untouched, and the table ends empty.
//!
//! Proven by a planted bug (recorded when the model was added): a stale link after unlinking a middle entry; a count decremented for an already-notified waiter; notify taking the newest instead of the oldest.
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use sharedbuf::{atomics, loom_hooks, WaitResult};

#[test]
fn cancel_in_the_middle_keeps_fifo_and_counts() {
    loom::model(|| {
        let view = support::view();
        let mut first = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());
        let middle = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());
        let mut other = support::pending(atomics::wait_async(&view, 1, 0, None).unwrap());
        let mut last = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());

        let notify_view = view.clone();
        let notifier =
            loom::thread::spawn(move || atomics::notify(&notify_view, 0, Some(2)).unwrap());
        drop(middle);
        let woken = notifier.join().unwrap();

        assert_eq!(woken, 2, "three waiters on element 0, at most one dropped");
        assert_eq!(
            support::poll(&mut first),
            Some(WaitResult::Ok),
            "oldest first"
        );
        // `last` was taken only if `middle` had left before the notify.
        let last_taken = support::poll(&mut last) == Some(WaitResult::Ok);
        assert_eq!(support::poll(&mut other), None, "another address's waiter");
        assert_eq!(
            atomics::notify(&view, 0, None).unwrap(),
            usize::from(!last_taken),
            "exactly `last` is left on element 0 unless it was taken"
        );
        assert_eq!(support::poll(&mut last), Some(WaitResult::Ok));
        assert_eq!(atomics::notify(&view, 1, None).unwrap(), 1);
        assert_eq!(support::poll(&mut other), Some(WaitResult::Ok));
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
