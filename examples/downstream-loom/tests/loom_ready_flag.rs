//! Loom models of `ReadyFlag`. Under `--cfg loom` sharedbuf's atomics, waiter table and thread
//! parking are loom's too, so each model explores the interleavings of the flag's code *and* of
//! sharedbuf's `wait`/`notify` underneath it.
//!
//! The last two models fail on purpose (`#[should_panic]`): a planted bug, and a timed wait
//! nobody ends. They fail cleanly: the other models of this binary still run and report.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_ready_flag`
//! with its own target dir (see the README).
#![cfg(loom)]

use std::time::Duration;

use loom::thread;
use ready_flag::ReadyFlag;
use sharedbuf::{atomics, Int32Array, SharedBuffer};

/// The data's element. Under loom sharedbuf keeps memory in 8-byte loom atomics, and a write
/// to the flag's own cell (elements 0 and 1) would be ordered with the flag anyway; element 2
/// is another cell, so a missing happens-before edge shows as stale data.
const DATA: usize = 2;

/// Element 0 holds the flag, element `DATA` the data it publishes.
fn flag_and_view() -> (ReadyFlag, Int32Array) {
    let view = Int32Array::new(&SharedBuffer::new(16).unwrap()).unwrap();
    (ReadyFlag::new(&view, 0).unwrap(), view)
}

/// Spawns a thread that writes the data (a plain, relaxed write) and then sets the flag.
fn spawn_setter(flag: &ReadyFlag, view: &Int32Array) -> thread::JoinHandle<()> {
    let (flag, view) = (flag.clone(), view.clone());
    thread::spawn(move || {
        view.set(DATA, 42).unwrap();
        flag.set().unwrap();
    })
}

#[test]
fn wait_returns_once_set_and_sees_the_data() {
    loom::model(|| {
        let (flag, view) = flag_and_view();
        let setter = spawn_setter(&flag, &view);
        flag.wait().unwrap();
        assert_eq!(
            view.get(DATA),
            Some(42),
            "wait returned before the data was visible"
        );
        setter.join().unwrap();
    });
}

#[test]
fn every_waiter_wakes() {
    loom::model(|| {
        let (flag, _view) = flag_and_view();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let flag = flag.clone();
                thread::spawn(move || flag.wait().unwrap())
            })
            .collect();
        flag.set().unwrap();
        for waiter in waiters {
            waiter.join().unwrap();
        }
    });
}

/// The timeout path, modelled with a zero timeout: under loom a timed wait never times out on
/// its own, but a zero one times out at once unless a notify got there first.
#[test]
fn wait_timeout_true_means_set_and_data_visible() {
    loom::model(|| {
        let (flag, view) = flag_and_view();
        let setter = spawn_setter(&flag, &view);
        if flag.wait_timeout(Duration::ZERO).unwrap() {
            assert_eq!(view.get(DATA), Some(42));
        }
        setter.join().unwrap();
        assert!(flag.wait_timeout(Duration::ZERO).unwrap());
    });
}

#[test]
fn new_rejects_an_index_out_of_range() {
    loom::model(|| {
        let (_flag, view) = flag_and_view();
        assert!(ReadyFlag::new(&view, 4).is_err());
    });
}

/// The protocol with its one rule broken: the setter notifies before it stores. When the
/// notify runs while nobody waits yet, the waiter then sees 0 and sleeps, the store follows
/// with no notify after it, and the waiter sleeps forever: loom reports a deadlock.
#[test]
#[should_panic(expected = "deadlock")]
fn notify_before_store_loses_the_wakeup() {
    loom::model(|| {
        let (flag, view) = flag_and_view();
        let setter = thread::spawn(move || {
            atomics::notify(&view, 0, None).unwrap();
            atomics::store(&view, 0, 1).unwrap();
        });
        flag.wait().unwrap();
        setter.join().unwrap();
    });
}

/// Under loom there is no clock: a timed wait that nothing wakes is a deadlock, not a timeout.
#[test]
#[should_panic(expected = "deadlock")]
fn a_timed_wait_never_times_out_under_loom() {
    loom::model(|| {
        let (flag, _view) = flag_and_view();
        flag.wait_timeout(Duration::from_secs(3600)).unwrap();
    });
}
