//! Loom model (docs/semantics.md A6, A8): a timeout racing a notify. A model thread plays the timer.
//! Exactly one of (Ok, counted by notify) and (TimedOut, not counted) happens.
//!
//! Proven by a planted bug (recorded when the model was added): `cancel` without the still-queued check (assertion: TimedOut reported although the notify counted the waiter).
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use sharedbuf::{atomics, loom_hooks, WaitResult};

#[test]
fn timeout_and_notify_never_both_win() {
    loom::model(|| {
        let view = support::view();
        let done = Arc::new(AtomicBool::new(false));

        let timer_done = done.clone();
        let timer = loom::thread::spawn(move || {
            if support::until_timed_waiter(&timer_done) {
                loom_hooks::fire_timeouts();
            }
        });
        let notify_view = view.clone();
        let notifier = loom::thread::spawn(move || atomics::notify(&notify_view, 0, None).unwrap());

        let result = atomics::wait(&view, 0, 0, Some(Duration::from_secs(1))).unwrap();
        done.store(true, SeqCst);
        let woken = notifier.join().unwrap();
        timer.join().unwrap();
        match result {
            WaitResult::Ok => assert_eq!(woken, 1, "Ok must be counted by the notify"),
            WaitResult::TimedOut => assert_eq!(woken, 0, "a timed-out waiter is not counted"),
            WaitResult::NotEqual => panic!("the value never changed"),
        }
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
