//! `ReadyFlag` with real threads (the ordinary build; the loom models are in
//! `loom_ready_flag.rs`).
#![cfg(not(loom))]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ready_flag::ReadyFlag;
use sharedbuf::{Int32Array, SharedBuffer};

/// How long a thread that should finish in microseconds may take before the test calls it hung.
const WATCHDOG: Duration = Duration::from_secs(20);

/// Element 0 holds the flag, element 1 the data it publishes.
fn flag_and_view() -> (ReadyFlag, Int32Array) {
    let view = Int32Array::new(&SharedBuffer::new(8).unwrap()).unwrap();
    (ReadyFlag::new(&view, 0).unwrap(), view)
}

#[test]
fn every_waiter_wakes_and_sees_the_data() {
    let (flag, view) = flag_and_view();
    let (done, finished) = mpsc::channel();
    for _ in 0..4 {
        let (flag, view, done) = (flag.clone(), view.clone(), done.clone());
        thread::spawn(move || {
            flag.wait().unwrap();
            done.send(view.get(1)).unwrap();
        });
    }
    view.set(1, 42).unwrap();
    flag.set().unwrap();
    for _ in 0..4 {
        let seen = finished
            .recv_timeout(WATCHDOG)
            .expect("a waiter did not wake after set()");
        assert_eq!(seen, Some(42));
    }
}

#[test]
fn wait_timeout_reports_whether_the_flag_was_set() {
    let (flag, _view) = flag_and_view();
    assert!(!flag.wait_timeout(Duration::from_millis(10)).unwrap());
    assert!(!flag.wait_timeout(Duration::ZERO).unwrap());
    flag.set().unwrap();
    assert!(flag.wait_timeout(Duration::ZERO).unwrap());
}

#[test]
fn new_rejects_an_index_out_of_range() {
    let (_flag, view) = flag_and_view();
    assert!(ReadyFlag::new(&view, 2).is_err());
}
