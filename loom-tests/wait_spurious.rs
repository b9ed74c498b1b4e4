//! Loom model (docs/semantics.md A7): spurious parker wakeups and plain stores never surface as `Ok`.
//! A thread stores a new value (no notify) and unparks the waiter's thread behind the waiter
//! table's back; the timer fires. The waiter may only see `NotEqual` or `TimedOut`.
//!
//! Proven by a planted bug (recorded when the model was added): any unpark treated as notified.
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use sharedbuf::{atomics, loom_hooks, WaitResult};

#[test]
fn stores_and_spurious_unparks_are_not_ok() {
    loom::model(|| {
        let view = support::view();
        let done = Arc::new(AtomicBool::new(false));

        let store_view = view.clone();
        let disturber = loom::thread::spawn(move || {
            atomics::store(&store_view, 0, 1).unwrap();
            loom_hooks::unpark_all_spuriously();
        });
        let timer_done = done.clone();
        let fired = Arc::new(AtomicBool::new(false));
        let timer_fired = fired.clone();
        let timer = loom::thread::spawn(move || {
            if support::until_timed_waiter(&timer_done) {
                loom_hooks::fire_timeouts();
            }
            timer_fired.store(true, SeqCst);
        });

        let result = atomics::wait(&view, 0, 0, Some(Duration::from_secs(1))).unwrap();
        done.store(true, SeqCst);
        // The timer unparks the waiter after its outcome is set. If a spurious unpark let the
        // waiter see the outcome first, that unpark comes after `wait` returned: harmless for
        // a real thread (a later park absorbs it), but loom's `join` takes any unpark of a
        // thread blocked in it for its own notification and fails. So no join while the
        // timer may still unpark this thread.
        while !fired.load(SeqCst) {
            loom::thread::yield_now();
        }
        disturber.join().unwrap();
        timer.join().unwrap();
        assert!(
            matches!(result, WaitResult::NotEqual | WaitResult::TimedOut),
            "got {result:?} without any notify"
        );
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
