//! Loom model (docs/semantics.md A8, A10, A11): `notify`'s lock-free no-waiter path. One notifier
//! stores and notifies the waited address, another notifies a neighbouring address (under loom
//! every address shares the table's one bucket): the first may take the fast path only when
//! the waiter will see the new value, and the second never wakes the waiter.
//!
//! Proven by a planted bug (recorded when the model was added): the notify's `fence(SeqCst)` before its no-waiter fast path removed.
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use sharedbuf::{atomics, loom_hooks, WaitResult};

#[test]
fn no_waiter_fast_path_loses_nothing() {
    loom::model(|| {
        let view = support::view();
        let notifier = support::spawn_store_then_notify(&view);
        let neighbour_view = view.clone();
        let neighbour =
            loom::thread::spawn(move || atomics::notify(&neighbour_view, 1, None).unwrap());

        let result = atomics::wait(&view, 0, 0, None).unwrap();
        let woken = notifier.join().unwrap();
        assert_eq!(
            neighbour.join().unwrap(),
            0,
            "another address never wakes this waiter"
        );
        assert_eq!(
            result == WaitResult::Ok,
            woken == 1,
            "{result:?} vs woken {woken}"
        );
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
