//! Loom model (docs/semantics.md A12): a dropped pending `wait_async` future leaves the list and is not
//! counted by a notify that comes after the drop; the next waiter in line is woken instead.
//!
//! Proven by a planted bug (recorded when the model was added): `WaitFuture::drop` not cancelling its waiter.
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use std::sync::atomic::Ordering::SeqCst;

use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use sharedbuf::{atomics, loom_hooks, WaitResult};

#[test]
fn dropped_future_is_not_counted() {
    loom::model(|| {
        let view = support::view();
        let dropped_first = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());
        let mut kept = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());
        let dropped = Arc::new(AtomicBool::new(false));

        let notify_view = view.clone();
        let saw = dropped.clone();
        let notifier = loom::thread::spawn(move || {
            let drop_was_done = saw.load(SeqCst);
            (
                drop_was_done,
                atomics::notify(&notify_view, 0, Some(1)).unwrap(),
            )
        });

        drop(dropped_first);
        dropped.store(true, SeqCst);

        let (drop_was_done, woken) = notifier.join().unwrap();
        assert_eq!(woken, 1, "a waiter was always there to wake");
        let kept_result = support::poll(&mut kept);
        if drop_was_done {
            // The drop happened before the notify: the notify must skip to `kept`.
            assert_eq!(kept_result, Some(WaitResult::Ok));
        }
        let rest = atomics::notify(&view, 0, None).unwrap();
        assert_eq!(rest, usize::from(kept_result.is_none()));
        assert_eq!(
            loom_hooks::queued_waiters(),
            0,
            "the dropped waiter left the table"
        );
    });
}
