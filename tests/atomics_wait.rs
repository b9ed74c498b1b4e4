//! Blocking `atomics::wait` and `atomics::notify` (docs/semantics.md A6–A11, and the W3 interrupt seam).
//!
//! Deterministic by construction: a waiter counts as enqueued only once its thread is seen
//! asleep (`common::spawn_blocked_waiter`), so notify counts and wake order are exact. The only
//! clock readings are in the timeout tests, where the timeout itself is what is tested (and
//! only a lower bound is asserted).

#![cfg(not(loom))]
#![cfg(target_os = "linux")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    recv_within, report_result, report_woken, spawn_blocked, spawn_blocked_after,
    spawn_blocked_waiter, SMALL_STACK,
};
use sharedbuf::atomics::{self, Interrupter};
use sharedbuf::{
    BigInt64Array, BigUint64Array, Error, Int32Array, SharedBuffer, TypedArray, Uint32Array,
    WaitResult, Waitable,
};

fn int32s(len: usize) -> Int32Array {
    Int32Array::new(&SharedBuffer::new(4 * len).unwrap()).unwrap()
}

/// A6: a differing value answers `NotEqual` at once, even with no timeout, and enqueues
/// nothing (a notify right after counts no one). Checked for every waitable type.
#[test]
fn a6_not_equal_at_once() {
    let _serial = crate::common::serial();
    fn check<T: Waitable + From<u8>>() {
        let view = TypedArray::<T>::new(&SharedBuffer::new(16).unwrap()).unwrap();
        atomics::store(&view, 1, T::from(7)).unwrap();
        assert_eq!(
            atomics::wait(&view, 1, T::from(8), None),
            Ok(WaitResult::NotEqual)
        );
        assert_eq!(
            atomics::wait(&view, 0, T::from(1), Some(Duration::from_secs(3600))),
            Ok(WaitResult::NotEqual)
        );
        assert_eq!(atomics::notify(&view, 1, None), Ok(0));
        assert_eq!(atomics::notify(&view, 0, None), Ok(0));
    }
    check::<i32>();
    check::<u32>();
    check::<i64>();
    check::<u64>();
}

/// A4 for wait/notify: an out-of-range index is `Err` before anything is read or enqueued.
#[test]
fn a4_wait_and_notify_out_of_range() {
    let _serial = crate::common::serial();
    let view = int32s(2);
    for index in [2, usize::MAX] {
        let err = Error::IndexOutOfRange { index, len: 2 };
        assert_eq!(atomics::wait(&view, index, 0, None), Err(err.clone()));
        assert_eq!(atomics::notify(&view, index, None), Err(err));
    }
}

/// A6: with no timeout the waiter stays blocked (it is still asleep, and still counted) until
/// a notify wakes it with `Ok`.
#[test]
fn a6_no_timeout_waits_until_notified() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    let waiter = spawn_blocked_waiter(&view, 0, 0, None);
    // Still waiting after yielding the CPU a while: nothing but notify ends a `None` wait.
    // (Not "still asleep": a parked thread may wake spuriously and park again.)
    for _ in 0..100 {
        thread::yield_now();
    }
    assert!(!waiter.handle.is_finished());
    assert_eq!(atomics::notify(&view, 0, None), Ok(1));
    assert_eq!(waiter.join(), Ok(WaitResult::Ok));
}

/// A6: a timed wait that nobody notifies returns `TimedOut`, after at least the timeout, and
/// has left the list (a notify after it counts no one). Blocking i32 and i64 waiters.
#[test]
fn a6_timed_out_after_at_least_the_timeout() {
    let _serial = crate::common::serial();
    let timeout = Duration::from_millis(50);
    let view = int32s(1);
    let start = Instant::now();
    assert_eq!(
        atomics::wait(&view, 0, 0, Some(timeout)),
        Ok(WaitResult::TimedOut)
    );
    assert!(
        start.elapsed() >= timeout,
        "returned after {:?}",
        start.elapsed()
    );
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));

    let view = BigInt64Array::new(&SharedBuffer::new(8).unwrap()).unwrap();
    let start = Instant::now();
    assert_eq!(
        atomics::wait(&view, 0, 0, Some(timeout)),
        Ok(WaitResult::TimedOut)
    );
    assert!(
        start.elapsed() >= timeout,
        "returned after {:?}",
        start.elapsed()
    );
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
}

/// A6: a zero timeout with a matching value returns `TimedOut` (not `NotEqual`) and leaves
/// nothing behind in the list.
#[test]
fn a6_zero_timeout_times_out() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    atomics::store(&view, 0, -3).unwrap();
    assert_eq!(
        atomics::wait(&view, 0, -3, Some(Duration::ZERO)),
        Ok(WaitResult::TimedOut)
    );
    assert_eq!(
        atomics::wait(&view, 0, 4, Some(Duration::ZERO)),
        Ok(WaitResult::NotEqual)
    );
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
}

/// A6: absurd timeouts (`Duration::MAX` and friends, which overflow `Instant + timeout`) mean
/// "forever": no panic, and the waiter is woken by notify.
#[test]
fn a6_duration_max_waits_forever_without_panic() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    for timeout in [
        Duration::MAX,
        Duration::from_secs(u64::MAX),
        Duration::MAX - Duration::from_nanos(1),
        Duration::from_secs(u64::MAX / 2),
    ] {
        let waiter = spawn_blocked_waiter(&view, 0, 0, Some(timeout));
        assert_eq!(atomics::notify(&view, 0, None), Ok(1), "{timeout:?}");
        assert_eq!(waiter.join(), Ok(WaitResult::Ok), "{timeout:?}");
    }
}

/// A7: stores and read-modify-writes that leave the value as it was never wake a waiter: a
/// timed wait runs to `TimedOut` while another thread hammers the cell from the start.
#[test]
fn a7_value_preserving_writes_never_wake() {
    let _serial = crate::common::serial();
    let view = int32s(2);
    let done = AtomicBool::new(false);
    let writes = AtomicUsize::new(0);
    let result = thread::scope(|s| {
        s.spawn(|| {
            while !done.load(SeqCst) {
                atomics::store(&view, 0, 0).unwrap();
                atomics::add(&view, 0, 0).unwrap();
                atomics::sub(&view, 0, 0).unwrap();
                atomics::or(&view, 0, 0).unwrap();
                atomics::and(&view, 0, -1).unwrap();
                atomics::xor(&view, 0, 0).unwrap();
                atomics::exchange(&view, 0, 0).unwrap();
                atomics::compare_exchange(&view, 0, 0, 0).unwrap();
                atomics::compare_exchange(&view, 0, 5, 6).unwrap(); // fails, writes nothing
                                                                    // And a notify on the neighbouring element (A10).
                atomics::notify(&view, 1, None).unwrap();
                writes.fetch_add(1, SeqCst);
            }
        });
        // Stops the hammer on every way out of this closure: the scope joins it, so a panic
        // here that left it running would hang the test instead of failing it.
        struct StopAtExit<'a>(&'a AtomicBool);
        impl Drop for StopAtExit<'_> {
            fn drop(&mut self) {
                self.0.store(true, SeqCst);
            }
        }
        let _stop = StopAtExit(&done);
        // Wait only once the hammer is going, however slowly the machine schedules it (a
        // hammer that panicked before its first round fails here instead of spinning for ever).
        common::until(|| writes.load(SeqCst) > 0, "the hammer started");
        atomics::wait(&view, 0, 0, Some(Duration::from_millis(100)))
    });
    assert_eq!(result, Ok(WaitResult::TimedOut));
    assert!(writes.load(SeqCst) > 0, "the hammer never ran");
}

/// A7: writes that change the value do not wake a waiter either. The hammer starts once the
/// waiter is asleep (before that, a changed value would rightly give `NotEqual`).
#[test]
fn a7_value_changing_writes_never_wake() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    // Long enough that even a slow machine sees the waiter asleep before it times out.
    let waiter = spawn_blocked_waiter(&view, 0, 0, Some(Duration::from_millis(500)));
    let mut writes = 0u64;
    let started = Instant::now();
    while !waiter.handle.is_finished() {
        // A hang detector (a wait that never times out), not a speed measurement.
        assert!(
            started.elapsed() < common::WATCHDOG,
            "the 500 ms wait has not returned after {:?}",
            common::WATCHDOG
        );
        atomics::store(&view, 0, 1).unwrap();
        atomics::add(&view, 0, 1).unwrap();
        atomics::compare_exchange(&view, 0, 2, 3).unwrap();
        atomics::exchange(&view, 0, 0).unwrap();
        writes += 1;
        thread::yield_now();
    }
    assert_eq!(waiter.join(), Ok(WaitResult::TimedOut));
    assert!(writes > 0, "the waiter timed out before the writes began");
}

/// A8: notify returns exactly how many it woke: `Some(0)` and nobody waiting give 0, `Some(n)`
/// wakes `min(n, waiting)`, `None` wakes all, and a second notify right after returns 0.
#[test]
fn a8_notify_counts_exactly() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
    assert_eq!(atomics::notify(&view, 0, Some(3)), Ok(0));
    let waiters: Vec<_> = (0..5)
        .map(|_| spawn_blocked_waiter(&view, 0, 0, None))
        .collect();
    assert_eq!(atomics::notify(&view, 0, Some(0)), Ok(0));
    assert_eq!(atomics::notify(&view, 0, Some(2)), Ok(2));
    assert_eq!(atomics::notify(&view, 0, None), Ok(3));
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
    assert_eq!(atomics::notify(&view, 0, Some(1)), Ok(0));
    for waiter in waiters {
        assert_eq!(waiter.join(), Ok(WaitResult::Ok));
    }
}

/// A8: a storm of 1,000 blocked waiters on one address: partial and full notifies return
/// exact counts and every waiter wakes with `Ok`.
#[test]
fn a8_notify_storm_of_1000_waiters() {
    let _serial = crate::common::serial();
    const WAITERS: usize = 1000;
    let view = int32s(1);
    let waiters: Vec<_> = (0..WAITERS)
        .map(|_| spawn_blocked_waiter(&view, 0, 0, None))
        .collect();
    assert_eq!(atomics::notify(&view, 0, Some(0)), Ok(0));
    assert_eq!(atomics::notify(&view, 0, Some(400)), Ok(400));
    assert_eq!(atomics::notify(&view, 0, None), Ok(WAITERS - 400));
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
    let woken = waiters
        .into_iter()
        .map(common::Waiter::join)
        .filter(|result| *result == Ok(WaitResult::Ok))
        .count();
    assert_eq!(woken, WAITERS);
}

/// A9: `notify(Some(1))` wakes waiters one at a time in the order they started waiting.
#[test]
fn a9_fifo_wake_order() {
    let _serial = crate::common::serial();
    const WAITERS: usize = 8;
    let view = int32s(1);
    let (woken_tx, woken_rx) = mpsc::channel();
    let waiters: Vec<_> = (0..WAITERS)
        .map(|k| spawn_blocked(&view, 0, 0, None, report_woken(&woken_tx, k)))
        .collect();
    for k in 0..WAITERS {
        assert_eq!(atomics::notify(&view, 0, Some(1)), Ok(1));
        // Only the woken waiter reports; take its report before waking the next.
        assert_eq!(
            woken_rx.recv().unwrap(),
            k,
            "wake {k} went to the wrong waiter"
        );
    }
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
    for waiter in waiters {
        assert_eq!(waiter.join(), Ok(WaitResult::Ok));
    }
}

/// A10: notifies on other addresses (the next element, the same index of another buffer, a
/// byte address inside the waited element) never wake a waiter.
#[test]
fn a10_no_wake_across_addresses() {
    let _serial = crate::common::serial();
    let buf = SharedBuffer::new(32).unwrap();
    let view = Int32Array::new(&buf).unwrap();
    let other = int32s(8);
    let waiter = spawn_blocked_waiter(&view, 2, 0, None);
    assert_eq!(atomics::notify(&view, 1, None), Ok(0));
    assert_eq!(atomics::notify(&view, 3, None), Ok(0));
    assert_eq!(atomics::notify(&other, 2, None), Ok(0));
    // An i64 view's element 1 starts at byte 8, the waiter's address: that one is shared (A10).
    // Its element 0 (bytes 0..8) and a u32 element at byte 12 are not the waiter's address.
    let wide = BigInt64Array::new(&buf).unwrap();
    assert_eq!(atomics::notify(&wide, 0, None), Ok(0));
    assert_eq!(
        atomics::notify(&Uint32Array::new(&buf).unwrap(), 3, None),
        Ok(0)
    );
    assert!(!waiter.handle.is_finished(), "woken by a notify elsewhere");
    assert_eq!(atomics::notify(&view, 2, None), Ok(1));
    assert_eq!(waiter.join(), Ok(WaitResult::Ok));
}

/// A10: two views at different byte offsets covering the same bytes share one FIFO list:
/// waiters enqueued through both are woken in order through either.
#[test]
fn a10_views_at_different_offsets_share_one_list() {
    let _serial = crate::common::serial();
    let buf = SharedBuffer::new(32).unwrap();
    let whole = Int32Array::new(&buf).unwrap();
    let tail = Int32Array::with_range(&buf, 8, None).unwrap(); // tail[k] is whole[k + 2]
    let (woken_tx, woken_rx) = mpsc::channel();
    let report = |k: usize| report_woken(&woken_tx, k);
    let first = spawn_blocked(&whole, 3, 0, None, report(0));
    let second = spawn_blocked(&tail, 1, 0, None, report(1));
    let third = spawn_blocked(&whole, 3, 0, None, report(2));
    assert_eq!(atomics::notify(&tail, 1, Some(1)), Ok(1));
    assert_eq!(woken_rx.recv().unwrap(), 0);
    assert_eq!(atomics::notify(&whole, 3, Some(1)), Ok(1));
    assert_eq!(woken_rx.recv().unwrap(), 1);
    assert_eq!(atomics::notify(&tail, 1, None), Ok(1));
    assert_eq!(woken_rx.recv().unwrap(), 2);
    for waiter in [first, second, third] {
        assert_eq!(waiter.join(), Ok(WaitResult::Ok));
    }
}

/// A10: an i64 waiter and an i32 waiter at the same byte address share one list (woken in
/// FIFO order through either width); an i32 waiter at the i64's upper half is elsewhere.
#[test]
fn a10_i32_and_i64_waiters_at_one_address() {
    let _serial = crate::common::serial();
    let buf = SharedBuffer::new(16).unwrap();
    let ints = Int32Array::new(&buf).unwrap();
    let longs = BigInt64Array::new(&buf).unwrap();
    let ulongs = BigUint64Array::new(&buf).unwrap();
    let (woken_tx, woken_rx) = mpsc::channel();
    let report = |k: usize| report_woken(&woken_tx, k);
    // Byte 8: longs[1] == ints[2]. Byte 12: ints[3], inside longs[1] but another address.
    let wide = spawn_blocked(&longs, 1, 0, None, report(0));
    let narrow = spawn_blocked(&ints, 2, 0, None, report(1));
    let upper_half = spawn_blocked(&ints, 3, 0, None, report(2));
    assert_eq!(atomics::notify(&ints, 2, Some(1)), Ok(1));
    assert_eq!(woken_rx.recv().unwrap(), 0, "the i64 waiter came first");
    assert_eq!(atomics::notify(&ulongs, 1, None), Ok(1));
    assert_eq!(woken_rx.recv().unwrap(), 1);
    assert_eq!(atomics::notify(&longs, 1, None), Ok(0));
    assert!(!upper_half.handle.is_finished());
    assert_eq!(atomics::notify(&ints, 3, None), Ok(1));
    assert_eq!(woken_rx.recv().unwrap(), 2);
    for waiter in [wide, narrow, upper_half] {
        assert_eq!(waiter.join(), Ok(WaitResult::Ok));
    }
}

/// A11: 100,000 ping-pong handoffs between two threads through wait/notify all complete: a
/// notify that follows the partner's value check is never lost (a lost one would hang).
#[test]
fn a11_ping_pong_100k_handoffs_finish() {
    let _serial = crate::common::serial();
    const HANDOFFS: usize = 100_000;
    let view = int32s(1); // element 0: whose turn it is, 0 or 1
    let barrier = Barrier::new(2);
    let play = |me: i32| {
        let other = 1 - me;
        barrier.wait();
        for _ in 0..HANDOFFS / 2 {
            while atomics::load(&view, 0).unwrap() != me {
                atomics::wait(&view, 0, other, None).unwrap();
            }
            atomics::store(&view, 0, other).unwrap();
            atomics::notify(&view, 0, Some(1)).unwrap();
        }
    };
    thread::scope(|s| {
        s.spawn(|| play(1));
        play(0);
    });
    assert_eq!(atomics::load(&view, 0), Ok(0));
}

/// A11 with exact counts: a waiter that the notifier knows is enqueued (it is blocked) is
/// counted, every round, across many rounds of store + notify vs check + wait.
#[test]
fn a11_notify_after_check_is_counted() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    let mut total = 0;
    for round in 0..50 {
        atomics::store(&view, 0, round).unwrap();
        let waiter = spawn_blocked_waiter(&view, 0, round, None);
        atomics::store(&view, 0, round + 1).unwrap(); // a store does not wake it (A7)
        let woken = atomics::notify(&view, 0, None).unwrap();
        assert_eq!(woken, 1, "round {round}");
        total += woken;
        assert_eq!(waiter.join(), Ok(WaitResult::Ok));
    }
    assert_eq!(total, 50);
}

/// W3 seam: interrupting a blocked waiter makes its `wait` return `Err(Terminated)`; it has
/// left the list (notify does not count it), and every later wait on that thread returns the
/// error at once, until the interrupter is uninstalled.
#[test]
fn interrupt_ends_a_blocked_wait_with_terminated() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    let interrupter = Interrupter::new();
    let remote = interrupter.clone();
    let (tid_tx, tid_rx) = mpsc::channel();
    let thread_view = view.clone();
    let handle = thread::spawn(move || {
        let view = thread_view;
        let guard = remote.install();
        tid_tx.send(common::current_tid()).unwrap();
        let blocked = atomics::wait(&view, 0, 0, None);
        let flag_seen = atomics::is_interrupted();
        // Later waits fail at once, whatever the value or the timeout.
        let later_match = atomics::wait(&view, 0, 0, None);
        let later_mismatch = atomics::wait(&view, 0, 9, None);
        drop(guard);
        // Uninstalled: waits behave normally again.
        let after = atomics::wait(&view, 0, 0, Some(Duration::ZERO));
        (
            blocked,
            flag_seen,
            later_match,
            later_mismatch,
            after,
            atomics::is_interrupted(),
        )
    });
    common::wait_until_asleep(tid_rx.recv().unwrap());
    assert!(!interrupter.is_interrupted());
    interrupter.interrupt();
    interrupter.interrupt(); // idempotent
    assert!(interrupter.is_interrupted());
    let (blocked, flag_seen, later_match, later_mismatch, after, flag_after) =
        handle.join().unwrap();
    assert_eq!(blocked, Err(Error::Terminated));
    assert!(flag_seen);
    assert_eq!(later_match, Err(Error::Terminated));
    assert_eq!(later_mismatch, Err(Error::Terminated));
    assert_eq!(after, Ok(WaitResult::TimedOut));
    assert!(!flag_after);
    assert_eq!(
        atomics::notify(&view, 0, None),
        Ok(0),
        "interrupted waiter still queued"
    );
}

/// W3 seam: an interrupt racing a notify gives exactly one of (Ok, counted by notify) or
/// (Terminated, not counted); never both, never neither.
#[test]
fn interrupt_racing_notify_is_exactly_one_outcome() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    let rounds = 200;
    let (mut oks, mut terminated) = (0, 0);
    for _ in 0..rounds {
        let interrupter = Interrupter::new();
        let remote = interrupter.clone();
        let (tid_tx, tid_rx) = mpsc::channel();
        let thread_view = view.clone();
        let waiter = thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || {
                let _guard = remote.install();
                tid_tx.send(common::current_tid()).unwrap();
                atomics::wait(&thread_view, 0, 0, None)
            })
            .unwrap();
        common::wait_until_asleep(tid_rx.recv().unwrap());
        let start = Barrier::new(2);
        let counted = thread::scope(|s| {
            s.spawn(|| {
                start.wait();
                interrupter.interrupt();
            });
            start.wait();
            atomics::notify(&view, 0, None).unwrap()
        });
        match waiter.join().unwrap() {
            Ok(WaitResult::Ok) => {
                assert_eq!(counted, 1);
                oks += 1;
            }
            Err(Error::Terminated) => {
                assert_eq!(counted, 0);
                terminated += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(oks + terminated, rounds);
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
}

/// Fault: an `Interrupter` installed on two threads interrupted only the one that blocked last
/// (it remembered one blocked waiter). Decided: an interrupter may be installed on several
/// threads, and `interrupt()` interrupts every one of them that is blocked. Both waits return
/// `Err(Terminated)` and have left the list (notify counts no one).
// docs/semantics.md W3
#[test]
fn w3_one_interrupter_on_two_threads_interrupts_both() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    let interrupter = Interrupter::new();
    let (results_tx, results_rx) = mpsc::channel();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let remote = interrupter.clone();
            spawn_blocked_after(
                &view,
                0,
                0,
                None,
                move || remote.install(),
                report_result(&results_tx),
            )
        })
        .collect();
    interrupter.interrupt();
    for k in 0..2 {
        assert_eq!(
            recv_within(&results_rx, &format!("interrupted blocked waiter {k} of 2")),
            Err(Error::Terminated)
        );
    }
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
    for waiter in waiters {
        assert_eq!(waiter.join(), Err(Error::Terminated));
    }
}

/// Fault: dropping `InterruptGuard`s out of order left a stale interrupter installed (each
/// guard restored what was installed before it). Decided: any drop order; each guard
/// uninstalls exactly its own installation. Installs A then B and drops A first: B alone
/// still interrupts waits, A no longer does; after B's guard is dropped too nothing is
/// installed, whatever was interrupted.
// docs/semantics.md W3
#[test]
fn w3_interrupt_guards_dropped_out_of_order_uninstall_exactly_their_own() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    let zero = Some(Duration::ZERO);
    let (a, b) = (Interrupter::new(), Interrupter::new());
    let guard_a = a.install();
    let guard_b = b.install();
    drop(guard_a);
    a.interrupt();
    assert!(!atomics::is_interrupted(), "A was uninstalled");
    assert_eq!(atomics::wait(&view, 0, 0, zero), Ok(WaitResult::TimedOut));
    b.interrupt();
    assert!(atomics::is_interrupted(), "B is still installed");
    assert_eq!(atomics::wait(&view, 0, 0, zero), Err(Error::Terminated));
    drop(guard_b);
    assert!(!atomics::is_interrupted(), "nothing is installed any more");
    assert_eq!(atomics::wait(&view, 0, 0, zero), Ok(WaitResult::TimedOut));
}

/// Fault: with interrupters A then B installed (nested), only B (the innermost) could
/// interrupt a wait. Decided: a thread may have several interrupters installed and any of them
/// interrupts its waits. Interrupting the outer A ends a wait while B is still installed.
// docs/semantics.md W3
#[test]
fn w3_an_outer_interrupter_interrupts_while_an_inner_one_is_installed() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    let (a, b) = (Interrupter::new(), Interrupter::new());
    let (results_tx, results_rx) = mpsc::channel();
    let (outer, inner) = (a.clone(), b.clone());
    let waiter = spawn_blocked_after(
        &view,
        0,
        0,
        None,
        move || (outer.install(), inner.install()),
        report_result(&results_tx),
    );
    a.interrupt();
    assert_eq!(
        recv_within(
            &results_rx,
            "a wait interrupted through the outer interrupter"
        ),
        Err(Error::Terminated)
    );
    assert!(!b.is_interrupted());
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
    assert_eq!(waiter.join(), Err(Error::Terminated));
}
