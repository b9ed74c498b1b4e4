//! Loom model (SEMANTICS W3, A8): interrupting a blocked waiter (a worker's `terminate()`)
//! racing a notify. Exactly one of (Ok, counted) and (Err(Terminated), not counted) happens,
//! and the waiter always returns.
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use sharedbuf::atomics::{self, Interrupter};
use sharedbuf::{loom_hooks, Error, WaitResult};

#[test]
fn interrupt_and_notify_never_both_win() {
    loom::model(|| {
        let view = support::view();
        let interrupter = Interrupter::new();

        let remote = interrupter.clone();
        let wait_view = view.clone();
        let waiter = loom::thread::spawn(move || {
            let _installed = remote.install();
            atomics::wait(&wait_view, 0, 0, None)
        });
        let notify_view = view.clone();
        let notifier = loom::thread::spawn(move || atomics::notify(&notify_view, 0, None).unwrap());

        interrupter.interrupt();
        let result = waiter.join().unwrap();
        let woken = notifier.join().unwrap();
        match result {
            Ok(WaitResult::Ok) => assert_eq!(woken, 1),
            Err(Error::Terminated) => assert_eq!(woken, 0, "an interrupted waiter is not counted"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
