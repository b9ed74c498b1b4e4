//! Loom models (docs/semantics.md X2 with A8, A11, W3): wait / notify on a process-shared buffer, whose
//! waiters queue in the slots of the buffer's header and sleep on their slot's futex
//! (`src/atomics/process_waiters.rs`). Threads stand in for processes: under loom a memfd
//! buffer is model memory with a header, and the futex is the model's (`loom_memory.rs`).
//!
//! - a store + notify racing a waiter's enqueue and value check is never lost (the
//!   store-buffering handshake through the header's `waiting` count), for `i32` and for an
//!   `i64` whose low half never changes;
//! - a timeout, or an interrupt, racing a notify: exactly one of (Ok, counted) and (TimedOut /
//!   Terminated, not counted) happens;
//! - every slot is free again once every wait has returned.
//!
//! Proven by a planted bug (recorded when the model was added): the waiter's fence after publishing its slot removed, and the notifier's fence before its no-waiter fast path removed (both: loom deadlock, a lost wakeup); a slot resolved with a plain store (assertion: Ok and Terminated both counted).
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use sharedbuf::atomics::{self, Interrupter};
use sharedbuf::{loom_hooks, BigInt64Array, Error, Int32Array, SharedBuffer, WaitResult};

fn shared() -> SharedBuffer {
    SharedBuffer::memfd("model", 8).unwrap()
}

#[test]
fn store_then_notify_is_never_lost() {
    loom::model(|| {
        let buffer = shared();
        let view = Int32Array::new(&buffer).unwrap();
        let notifier = support::spawn_store_then_notify(&view);
        let result = atomics::wait(&view, 0, 0, None).unwrap();
        let woken = notifier.join().unwrap();
        assert!(matches!(result, WaitResult::Ok | WaitResult::NotEqual));
        assert_eq!(
            result == WaitResult::Ok,
            woken == 1,
            "{result:?} vs woken {woken}"
        );
        assert_eq!(loom_hooks::process_slots_taken(&buffer), 0);
    });
}

/// The futex is the slot's 32-bit word, not the value: a store that changes only the high half
/// of an `i64` is seen by the value check, never lost.
#[test]
fn a_64_bit_store_of_the_high_half_is_never_lost() {
    loom::model(|| {
        let buffer = shared();
        let view = BigInt64Array::new(&buffer).unwrap();
        let notifier = {
            let view = view.clone();
            loom::thread::spawn(move || {
                atomics::store(&view, 0, 1 << 32).unwrap();
                atomics::notify(&view, 0, None).unwrap()
            })
        };
        let result = atomics::wait(&view, 0, 0, None).unwrap();
        let woken = notifier.join().unwrap();
        assert!(matches!(result, WaitResult::Ok | WaitResult::NotEqual));
        assert_eq!(
            result == WaitResult::Ok,
            woken == 1,
            "{result:?} vs woken {woken}"
        );
        assert_eq!(loom_hooks::process_slots_taken(&buffer), 0);
    });
}

#[test]
fn timeout_and_notify_never_both_win() {
    loom::model(|| {
        let buffer = shared();
        let view = Int32Array::new(&buffer).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let timer = {
            let done = done.clone();
            loom::thread::spawn(move || {
                if support::until_timed_waiter(&done) {
                    loom_hooks::fire_timeouts();
                }
            })
        };
        let notifier = {
            let view = view.clone();
            loom::thread::spawn(move || atomics::notify(&view, 0, None).unwrap())
        };
        let result = atomics::wait(&view, 0, 0, Some(Duration::from_secs(1))).unwrap();
        done.store(true, SeqCst);
        let woken = notifier.join().unwrap();
        timer.join().unwrap();
        match result {
            WaitResult::Ok => assert_eq!(woken, 1, "Ok must be counted by the notify"),
            WaitResult::TimedOut => assert_eq!(woken, 0, "a timed-out waiter is not counted"),
            WaitResult::NotEqual => panic!("the value never changed"),
        }
        assert_eq!(loom_hooks::process_slots_taken(&buffer), 0);
    });
}

#[test]
fn interrupt_and_notify_never_both_win() {
    loom::model(|| {
        let buffer = shared();
        let view = Int32Array::new(&buffer).unwrap();
        let interrupter = Interrupter::new();
        let waiter = {
            let (view, interrupter) = (view.clone(), interrupter.clone());
            loom::thread::spawn(move || {
                let _installed = interrupter.install();
                atomics::wait(&view, 0, 0, None)
            })
        };
        let notifier = {
            let view = view.clone();
            loom::thread::spawn(move || atomics::notify(&view, 0, None).unwrap())
        };
        interrupter.interrupt();
        let result = waiter.join().unwrap();
        let woken = notifier.join().unwrap();
        match result {
            Ok(WaitResult::Ok) => assert_eq!(woken, 1, "Ok must be counted by the notify"),
            Err(Error::Terminated) => assert_eq!(woken, 0, "an interrupted waiter is not counted"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(loom_hooks::process_slots_taken(&buffer), 0);
    });
}
