//! `sync::Once` (docs/semantics.md S1, S2, S3, S6): exactly one run under a race, waiters sleep
//! while the closure runs, poisoning (and the panic waking the waiters), `call_once_force`, the
//! self-call check, timed forms, several handles, and terminate of a worker blocked in it.
#![cfg(not(loom))]

mod common;
mod sync_support;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use sharedbuf::sync::Once;
use sharedbuf::{Error, Int32Array, SharedBuffer, Uint32Array};
use sync_support::{buffer, spawn, spawn_blocked, terminate_while_blocked};

/// A `Once` whose closure is running on another thread until `go` is sent (then it returns, or
/// panics if `panics`).
struct Running {
    go: mpsc::Sender<()>,
    runner: sync_support::Running<std::thread::Result<Result<(), Error>>>,
}

fn start_running(once: &Once, panics: bool) -> Running {
    let (go, go_rx) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let inside = once.clone();
    let runner = spawn(move || {
        panic::catch_unwind(AssertUnwindSafe(|| {
            inside.call_once(|| {
                started_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                if panics {
                    panic!("the initializer failed");
                }
            })
        }))
    });
    started.recv().unwrap();
    Running { go, runner }
}

impl Running {
    fn finish(self) -> std::thread::Result<Result<(), Error>> {
        self.go.send(()).unwrap();
        self.runner.join("the running closure")
    }
}

// docs/semantics.md S1
#[test]
fn s1_fresh_bytes_are_a_once_not_yet_run() {
    let buffer = buffer(32);
    let once = Once::at(&buffer, 16).unwrap();
    assert!(!once.is_completed() && !once.is_poisoned());
    assert_eq!(once.wait_for(Duration::ZERO), Ok(false));
    let mut runs = 0;
    once.call_once(|| runs += 1).unwrap();
    once.call_once(|| runs += 1).unwrap();
    once.call_once_force(|_| runs += 1).unwrap();
    assert_eq!(runs, 1);
    assert!(once.is_completed());
    assert_eq!(once.wait(), Ok(()));
    assert_eq!((Once::BYTES, Once::ALIGN), (16, 8));
    assert_eq!(once.byte_offset(), 16);
    assert_eq!(
        Uint32Array::with_range(&buffer, 16, Some(4))
            .unwrap()
            .to_vec()[2..],
        [0, 0],
        "the owner word is cleared"
    );
}

#[test]
fn s1_bad_places_are_refused() {
    let buffer = buffer(32);
    assert_eq!(
        Once::at(&buffer, 4).err(),
        Some(Error::Misaligned {
            byte_offset: 4,
            align: 8
        })
    );
    assert!(matches!(
        Once::at(&buffer, 24),
        Err(Error::RangeOutOfBounds {
            start: 24,
            end: 40,
            len: 32
        })
    ));
    assert!(matches!(
        Once::at(&buffer, usize::MAX - 7),
        Err(Error::RangeOutOfBounds { .. })
    ));
    assert!(matches!(
        Once::at(&SharedBuffer::new(8).unwrap(), 0),
        Err(Error::RangeOutOfBounds { .. })
    ));
    assert!(Once::at(&buffer, 16).is_ok());
}

// Eight threads race to initialize a fresh `Once`, 100 times: the closure runs exactly once
// each time, and every caller returns after it and sees what it wrote.
#[test]
fn exactly_one_closure_runs_under_a_race() {
    // Fewer rounds under Miri, which interprets the threads about a thousand times slower.
    for round in 1..=if cfg!(miri) { 5 } else { 100 } {
        let buffer = buffer(24);
        let runs = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(std::sync::Barrier::new(8));
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let (buffer, runs, start) = (buffer.clone(), runs.clone(), start.clone());
                spawn(move || {
                    let once = Once::at(&buffer, 0).unwrap();
                    let data = Int32Array::with_range(&buffer, 16, Some(2)).unwrap();
                    start.wait();
                    once.call_once(|| {
                        runs.fetch_add(1, SeqCst);
                        data.set(0, round).unwrap();
                        data.set(1, -round).unwrap();
                    })
                    .unwrap();
                    data.to_vec()
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.join("call_once"), [round, -round]);
        }
        assert_eq!(runs.load(SeqCst), 1);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn callers_sleep_while_the_closure_runs_and_never_run_their_own() {
    let once = Once::at(&buffer(16), 0).unwrap();
    let running = start_running(&once, false);
    let waiters: Vec<_> = (0..2)
        .map(|k| {
            let once = once.clone();
            spawn_blocked(move || {
                if k == 0 {
                    once.call_once(|| panic!("a second closure ran"))
                } else {
                    once.wait()
                }
            })
        })
        .collect();
    assert!(!once.is_completed());
    assert_eq!(running.finish().unwrap(), Ok(()));
    for waiter in waiters {
        assert_eq!(waiter.join("waiting caller"), Ok(()));
    }
    assert!(once.is_completed());
}

// A panicking closure poisons the `Once`, and its drop guard wakes the waiters, who get
// Err(Poisoned); `call_once_force` then runs and completes it.
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn a_panic_poisons_and_wakes_the_waiters() {
    let once = Once::at(&buffer(16), 0).unwrap();
    let running = start_running(&once, true);
    let waiters: Vec<_> = (0..2)
        .map(|k| {
            let once = once.clone();
            spawn_blocked(move || {
                if k == 0 {
                    once.call_once(|| panic!("ran on a poisoned once"))
                } else {
                    once.wait()
                }
            })
        })
        .collect();
    assert!(
        running.finish().is_err(),
        "the panic propagates to the closure's caller"
    );
    for waiter in waiters {
        assert_eq!(waiter.join("waiting caller"), Err(Error::Poisoned));
    }
    assert!(once.is_poisoned() && !once.is_completed());
    assert_eq!(
        once.call_once(|| panic!("ran on a poisoned once")),
        Err(Error::Poisoned)
    );
    assert_eq!(
        once.wait_for(Duration::from_secs(3600)),
        Err(Error::Poisoned)
    );
    // A forced run that panics too keeps it poisoned.
    let again = panic::catch_unwind(AssertUnwindSafe(|| {
        once.call_once_force(|state| {
            assert!(state.is_poisoned());
            panic!("failed again");
        })
    }));
    assert!(again.is_err() && once.is_poisoned());
    let mut poisoned = None;
    once.call_once_force(|state| poisoned = Some(state.is_poisoned()))
        .unwrap();
    assert_eq!(poisoned, Some(true));
    assert!(once.is_completed() && !once.is_poisoned());
    assert_eq!(once.call_once(|| panic!("ran twice")), Ok(()));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn a_forced_caller_blocked_behind_a_panicking_closure_runs_its_own() {
    let once = Once::at(&buffer(16), 0).unwrap();
    let running = start_running(&once, true);
    let forced = {
        let once = once.clone();
        spawn_blocked(move || {
            let mut poisoned = false;
            once.call_once_force(|state| poisoned = state.is_poisoned())
                .map(|()| poisoned)
        })
    };
    assert!(running.finish().is_err());
    assert_eq!(forced.join("call_once_force"), Ok(true));
    assert!(once.is_completed());
}

// docs/semantics.md S2: calling a `Once` from inside its own closure is refused, not a hang.
#[test]
fn s2_calling_it_from_its_own_closure_would_deadlock() {
    let once = Once::at(&buffer(16), 0).unwrap();
    let mut inner = Vec::new();
    once.call_once(|| {
        inner.push(once.call_once(|| {}));
        inner.push(once.call_once_force(|_| {}));
        inner.push(once.wait());
        inner.push(once.wait_for(Duration::ZERO).map(drop));
    })
    .unwrap();
    assert_eq!(inner, vec![Err(Error::WouldDeadlock); 4]);
    assert!(once.is_completed());
}

// docs/semantics.md S3
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s3_timed_calls_give_up_without_running_their_closure() {
    let once = Once::at(&buffer(16), 0).unwrap();
    assert_eq!(once.wait_for(Duration::from_millis(2)), Ok(false));
    let running = start_running(&once, false);
    assert_eq!(
        once.call_once_for(Duration::from_millis(2), || panic!("ran beside another")),
        Ok(false)
    );
    assert_eq!(
        once.call_once_force_for(Duration::ZERO, |_| panic!("ran beside another")),
        Ok(false)
    );
    assert_eq!(once.wait_for(Duration::ZERO), Ok(false));
    let patient = {
        let once = once.clone();
        spawn_blocked(move || once.call_once_for(Duration::from_secs(3600), || panic!("ran twice")))
    };
    assert_eq!(running.finish().unwrap(), Ok(()));
    assert_eq!(patient.join("call_once_for"), Ok(true));
    assert_eq!(
        once.call_once_for(Duration::ZERO, || panic!("ran twice")),
        Ok(true)
    );
}

// docs/semantics.md S3: the deadline forms, as the other primitives' `_until` forms.
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s3_call_once_until_gives_up_at_its_deadline_without_running_its_closure() {
    let once = Once::at(&buffer(16), 0).unwrap();
    let running = start_running(&once, false);
    let now = Instant::now();
    assert_eq!(
        once.call_once_until(now, || panic!("ran beside another")),
        Ok(false)
    );
    assert_eq!(
        once.call_once_force_until(now, |_| panic!("ran beside another")),
        Ok(false)
    );
    let patient = {
        let once = once.clone();
        spawn_blocked(move || {
            let far = Instant::now() + Duration::from_secs(3600);
            once.call_once_until(far, || panic!("ran twice"))
        })
    };
    assert_eq!(running.finish().unwrap(), Ok(()));
    assert_eq!(patient.join("call_once_until"), Ok(true));
    // Completed: `Ok(true)` even with a deadline already past, and the closure never runs.
    assert_eq!(
        once.call_once_force_until(now, |_| panic!("ran twice")),
        Ok(true)
    );
    let fresh = Once::at(&buffer(16), 0).unwrap();
    let mut runs = 0;
    assert_eq!(fresh.call_once_until(now, || runs += 1), Ok(true)); // nobody else running
    assert_eq!(runs, 1);
}

// docs/semantics.md S1
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s1_several_handles_agree() {
    let buffer = buffer(32);
    let a = Once::at(&buffer, 8).unwrap();
    let b = Once::at(&buffer.clone(), 8).unwrap();
    let elsewhere = Once::at(&buffer, 16).unwrap();
    let waiter = {
        let b = b.clone();
        spawn_blocked(move || b.wait())
    };
    a.call_once(|| {}).unwrap();
    assert_eq!(waiter.join("wait"), Ok(()));
    assert!(b.is_completed() && a.clone().is_completed());
    assert!(!elsewhere.is_completed(), "another offset is another once");
    assert!(format!("{a:?}").contains("complete"));
}

// docs/semantics.md S6: a worker blocked waiting for another thread's closure, or for a first
// caller, returns Err(Terminated) and runs nothing.
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s6_terminate_interrupts_a_worker_blocked_in_call_once_and_wait() {
    let once = Once::at(&buffer(16), 0).unwrap();
    let inside = once.clone();
    assert_eq!(
        terminate_while_blocked(move || inside.wait()),
        Err(Error::Terminated)
    );
    let running = start_running(&once, false);
    for call in 0..3 {
        let inside = once.clone();
        let result = terminate_while_blocked(move || match call {
            0 => inside.call_once(|| panic!("ran beside another")),
            1 => inside
                .call_once_for(Duration::from_secs(3600), || panic!("ran beside another"))
                .map(drop),
            _ => inside.call_once_force(|_| panic!("ran beside another")),
        });
        assert_eq!(result, Err(Error::Terminated));
    }
    assert_eq!(running.finish().unwrap(), Ok(()));
    assert!(once.is_completed());
}
