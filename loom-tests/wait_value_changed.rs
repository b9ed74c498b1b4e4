//! Loom model (docs/semantics.md A6, A11): the value changes (and is notified) after the waiter checked
//! it but before the waiter parks. The waiter must still wake, with `Ok`, or see the change
//! at its check and return `NotEqual`.
//!
//! Proven by a planted bug (recorded when the model was added): `announce_park` as a plain store, which overwrites a NOTIFIED outcome.
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use sharedbuf::{atomics, loom_hooks, WaitResult};

#[test]
fn change_between_check_and_park_still_wakes() {
    loom::model(|| {
        let view = support::view();
        let remote = view.clone();
        let changer = loom::thread::spawn(move || {
            let old = atomics::compare_exchange(&remote, 0, 0, 7).unwrap();
            assert_eq!(old, 0);
            atomics::notify(&remote, 0, Some(1)).unwrap()
        });
        let result = atomics::wait(&view, 0, 0, None).unwrap();
        let woken = changer.join().unwrap();
        match result {
            WaitResult::Ok => assert_eq!(woken, 1),
            WaitResult::NotEqual => assert_eq!(woken, 0),
            WaitResult::TimedOut => panic!("no timeout was given"),
        }
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
