//! Loom model (docs/semantics.md A6, A7, A8, A11): `atomics::wait` looks at the value before it
//! joins the waiter list, without the bucket lock (natively it spins there a while; under loom
//! it looks once). A change seen there ends the wait with `NotEqual`, uncounted and leaving no
//! trace in the table; an unchanged value must still be waited on, so that a notify which
//! leaves the value alone wakes it with `Ok`.
//!
//! Proven by planted bugs (recorded when the model was added): the early look returning `Ok`
//! for a changed value (`changed_early_is_not_equal_and_uncounted` fails), and the early look
//! returning `NotEqual` for the expected value (`unchanged_value_is_waited_on` fails).
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use sharedbuf::{atomics, loom_hooks, WaitResult};

#[test]
fn changed_early_is_not_equal_and_uncounted() {
    loom::model(|| {
        let view = support::view();
        let remote = view.clone();
        let waiter = loom::thread::spawn(move || atomics::wait(&remote, 0, 0, None).unwrap());
        atomics::store(&view, 0, 1).unwrap();
        let woken = atomics::notify(&view, 0, None).unwrap();
        let result = waiter.join().unwrap();
        match result {
            WaitResult::Ok => assert_eq!(woken, 1, "Ok, but no notify counted it"),
            WaitResult::NotEqual => assert_eq!(woken, 0, "NotEqual, but a notify counted it"),
            WaitResult::TimedOut => panic!("no timeout was given"),
        }
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

#[test]
fn unchanged_value_is_waited_on() {
    loom::model(|| {
        let view = support::view();
        let remote = view.clone();
        // Notifies without touching the value, until it wakes someone.
        let notifier = loom::thread::spawn(move || loop {
            match atomics::notify(&remote, 0, Some(1)).unwrap() {
                0 => loom::thread::yield_now(),
                woken => return woken,
            }
        });
        let result = atomics::wait(&view, 0, 0, None).unwrap();
        assert_eq!(result, WaitResult::Ok, "the value never changed");
        assert_eq!(notifier.join().unwrap(), 1);
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
