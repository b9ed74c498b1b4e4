//! Loom model (docs/semantics.md A8, A12): a dropped future cancels its waiter through the slot it
//! remembers being enqueued in (`waiter_table::cancel_enqueued`), and that memory goes stale
//! when a notify takes the waiter first: the slot is vacated, and a waiter enqueued next takes
//! it over. The drop must then leave the newcomer alone (it stays queued, and the next notify
//! counts and wakes it), whichever of notify, enqueue and drop comes first.
//!
//! Proven by a planted bug (recorded when the model was added): `AddressLists::remove_from`
//! unlinking whatever waiter occupies the remembered slot, without checking it is the one
//! being cancelled.
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use sharedbuf::{atomics, loom_hooks, WaitResult};

#[test]
fn drop_after_slot_reuse_leaves_the_newcomer() {
    loom::model(|| {
        let view = support::view();
        let first = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());

        let notify_view = view.clone();
        let notifier =
            loom::thread::spawn(move || atomics::notify(&notify_view, 0, Some(1)).unwrap());
        // If the notify took `first` already, `newcomer` moves into the slot it vacated.
        let mut newcomer = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());
        drop(first);
        let woken = notifier.join().unwrap();

        assert_eq!(woken, 1, "a waiter was always there to wake");
        let newcomer_woken = support::poll(&mut newcomer);
        assert_ne!(
            newcomer_woken,
            Some(WaitResult::TimedOut),
            "the newcomer was cancelled by another future's drop"
        );
        let rest = atomics::notify(&view, 0, None).unwrap();
        assert_eq!(
            rest,
            usize::from(newcomer_woken.is_none()),
            "the newcomer is still queued unless the first notify took it"
        );
        assert_eq!(support::poll(&mut newcomer), Some(WaitResult::Ok));
        assert_eq!(loom_hooks::queued_waiters(), 0, "the table ends empty");
    });
}
