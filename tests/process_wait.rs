//! `wait` / `notify` / `wait_async` on process-shared buffers (docs/semantics.md X2, A6–A12):
//! between threads of one process on a memfd buffer, and between real processes (this test
//! binary re-executed as a child, see `process_support`).
#![cfg(target_os = "linux")]

mod process_support;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use process_support::*;
use sharedbuf::atomics::{self, Interrupter, WaitAsync};
use sharedbuf::{BigInt64Array, Error, Int32Array, SharedBuffer, WaitResult};

fn memfd(label: &str) -> (SharedBuffer, Int32Array) {
    let buffer = SharedBuffer::memfd(label, 64).unwrap();
    let view = Int32Array::new(&buffer).unwrap();
    (buffer, view)
}

/// Spawns a thread waiting on element `index` (expected 0; the watchdog as its timeout, so a
/// lost wakeup fails the test as `TimedOut` instead of hanging it).
fn waiter_thread(view: &Int32Array, index: usize) -> thread::JoinHandle<Result<WaitResult, Error>> {
    let view = view.clone();
    thread::spawn(move || atomics::wait(&view, index, 0, Some(WATCHDOG)))
}

// ---- within one process: the shared path keeps the contract of A6–A12 -------------------

// docs/semantics.md A6, A8 on a process-shared buffer
#[test]
#[cfg_attr(miri, ignore)]
fn a_notified_waiter_returns_ok_and_is_counted() {
    let (buffer, view) = memfd("x2-one");
    let waiter = waiter_thread(&view, 0);
    wait_until("the waiter queued", || queued(&buffer) == 1);
    assert_eq!(atomics::notify(&view, 0, None).unwrap(), 1);
    assert_eq!(waiter.join().unwrap(), Ok(WaitResult::Ok));
    assert_eq!(taken(&buffer), 0, "the slot is freed");
    assert_eq!(atomics::notify(&view, 0, None).unwrap(), 0);
}

// docs/semantics.md A6
#[test]
#[cfg_attr(miri, ignore)]
fn not_equal_and_timeouts_hold() {
    let (buffer, view) = memfd("x2-timeouts");
    assert_eq!(atomics::wait(&view, 0, 1, None), Ok(WaitResult::NotEqual));
    assert_eq!(
        atomics::wait(&view, 0, 0, Some(Duration::ZERO)),
        Ok(WaitResult::TimedOut)
    );
    assert_eq!(
        atomics::wait(&view, 0, 0, Some(Duration::from_millis(20))),
        Ok(WaitResult::TimedOut)
    );
    let wide = BigInt64Array::new(&buffer).unwrap();
    assert_eq!(
        atomics::wait(&wide, 1, 0, Some(Duration::from_millis(5))),
        Ok(WaitResult::TimedOut)
    );
    assert_eq!(
        atomics::wait(&wide, 1, 1 << 40, None),
        Ok(WaitResult::NotEqual)
    );
    assert_eq!(taken(&buffer), 0);
    assert!(
        atomics::wait(&view, 16, 0, None).is_err(),
        "index checked (A4)"
    );
    assert!(atomics::notify(&view, 16, None).is_err());
}

// docs/semantics.md A8, A9 across the waiter slots: exact counts, oldest first.
#[test]
#[cfg_attr(miri, ignore)]
fn notify_wakes_the_oldest_waiters_and_counts_exactly() {
    let (buffer, view) = memfd("x2-fifo");
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for id in 0..5 {
        let (view, order) = (view.clone(), Arc::clone(&order));
        waiters.push(thread::spawn(move || {
            let result = atomics::wait(&view, 3, 0, Some(WATCHDOG));
            order.lock().unwrap().push(id);
            result
        }));
        // Each one queued before the next starts: a known arrival order.
        wait_until("the waiter queued", || queued(&buffer) == id + 1);
    }
    let other = waiter_thread(&view, 4); // another address: never woken by notify(3)
    wait_until("the other waiter queued", || queued(&buffer) == 6);
    assert_eq!(atomics::notify(&view, 3, Some(2)).unwrap(), 2);
    wait_until("two woke", || order.lock().unwrap().len() == 2);
    let mut first_two = order.lock().unwrap().clone();
    first_two.sort();
    assert_eq!(first_two, [0, 1], "the two oldest");
    assert_eq!(atomics::notify(&view, 3, Some(1)).unwrap(), 1);
    wait_until("three woke", || order.lock().unwrap().len() == 3);
    assert_eq!(order.lock().unwrap()[2], 2);
    assert_eq!(atomics::notify(&view, 3, None).unwrap(), 2);
    for waiter in waiters {
        assert_eq!(waiter.join().unwrap(), Ok(WaitResult::Ok));
    }
    assert_eq!(
        queued(&buffer),
        1,
        "the other address's waiter is still queued"
    );
    assert_eq!(atomics::notify(&view, 4, None).unwrap(), 1);
    assert_eq!(other.join().unwrap(), Ok(WaitResult::Ok));
}

// docs/semantics.md W3 on a process-shared buffer: an interrupter ends a wait asleep on its
// slot's futex, and the notify that may race it never counts it too.
#[test]
#[cfg_attr(miri, ignore)]
fn an_interrupter_ends_a_wait_asleep_on_a_futex() {
    let (buffer, view) = memfd("x2-interrupt");
    let interrupter = Interrupter::new();
    let waiter = {
        let (view, interrupter) = (view.clone(), interrupter.clone());
        thread::spawn(move || {
            let _installed = interrupter.install();
            atomics::wait(&view, 0, 0, Some(WATCHDOG))
        })
    };
    wait_until("the waiter asleep", || {
        slots(&buffer).iter().any(|s| s.status == PARKED)
    });
    interrupter.interrupt();
    assert_eq!(waiter.join().unwrap(), Err(Error::Terminated));
    assert_eq!(atomics::notify(&view, 0, None).unwrap(), 0, "not counted");
    assert_eq!(taken(&buffer), 0);
}

// docs/semantics.md A11 for 64-bit waits: the futex is the slot's 32-bit word, never the
// value, so a change of the value's high half alone is never lost.
#[test]
#[cfg_attr(miri, ignore)]
fn a_64_bit_wait_sees_a_change_of_the_high_half() {
    let buffer = SharedBuffer::memfd("x2-wide", 16).unwrap();
    let wide = BigInt64Array::new(&buffer).unwrap();
    for round in 0..200i64 {
        let value = round << 32; // the low half stays 0 every round
        let waiter = {
            let wide = wide.clone();
            thread::spawn(move || atomics::wait(&wide, 0, value, Some(WATCHDOG)))
        };
        if round % 2 == 0 {
            wait_until("the waiter queued", || queued(&buffer) == 1);
        }
        atomics::store(&wide, 0, (round + 1) << 32).unwrap();
        atomics::notify(&wide, 0, None).unwrap();
        let result = waiter.join().unwrap().unwrap();
        assert!(matches!(result, WaitResult::Ok | WaitResult::NotEqual));
    }
}

// docs/semantics.md A12 on a process-shared buffer: futures are queued and counted like
// blocked threads, dropping one withdraws it, and timeouts fire.
#[test]
#[cfg_attr(miri, ignore)]
fn wait_async_on_a_process_shared_buffer() {
    let (buffer, view) = memfd("x2-async");
    let WaitAsync::Pending(first) = atomics::wait_async(&view, 0, 0, None).unwrap() else {
        panic!("expected a pending future");
    };
    let WaitAsync::Pending(dropped) = atomics::wait_async(&view, 0, 0, None).unwrap() else {
        panic!("expected a pending future");
    };
    assert_eq!(queued(&buffer), 2);
    drop(dropped);
    assert_eq!(queued(&buffer), 1);
    assert_eq!(atomics::notify(&view, 0, None).unwrap(), 1);
    assert_eq!(block_on(first), WaitResult::Ok);
    let timed = atomics::wait_async(&view, 1, 0, Some(Duration::from_millis(10))).unwrap();
    assert_eq!(block_on(timed.into_future()), WaitResult::TimedOut);
    assert!(matches!(
        atomics::wait_async(&view, 0, 7, None).unwrap(),
        WaitAsync::Ready(WaitResult::NotEqual)
    ));
    wait_until("the doorbell thread ends", || taken(&buffer) == 0);
}

// docs/semantics.md X2: more waiters than slots is an error, not a hang or a crash; the
// slots come back when the waiters leave.
#[test]
#[cfg_attr(miri, ignore)]
fn running_out_of_waiter_slots_is_an_error() {
    let (buffer, view) = memfd("x2-slots");
    let mut futures = Vec::new();
    let error = loop {
        match atomics::wait_async(&view, 0, 0, None) {
            Ok(WaitAsync::Pending(future)) => futures.push(future),
            Ok(ready) => panic!("{ready:?}"),
            Err(error) => break error,
        }
        assert!(futures.len() <= SLOT_COUNT as usize, "no limit");
    };
    assert_eq!(
        error,
        Error::TooManyWaiters {
            slots: SLOT_COUNT as usize
        }
    );
    assert_eq!(
        futures.len(),
        SLOT_COUNT as usize - 1,
        "one slot is the doorbell"
    );
    assert_eq!(
        atomics::wait(&view, 1, 0, Some(Duration::from_millis(1))),
        Err(error)
    );
    assert_eq!(atomics::notify(&view, 0, Some(10)).unwrap(), 10);
    drop(futures);
    wait_until("every slot free", || taken(&buffer) == 0);
    assert_eq!(
        atomics::wait(&view, 1, 0, Some(Duration::ZERO)),
        Ok(WaitResult::TimedOut)
    );
}

// ---- across processes ---------------------------------------------------------------------

const ROLES: &str = "child_process_roles";

/// The body of every child process of this file (a no-op in a normal test run).
#[test]
fn child_process_roles() {
    let Some(role) = child_role(ROLES) else {
        return;
    };
    let buffer = child_buffer();
    let view = Int32Array::new(&buffer).unwrap();
    match role.split(':').nth(1).unwrap() {
        "add" => {
            for _ in 0..10_000 {
                atomics::add(&view, 0, 1).unwrap();
            }
        }
        "wait" => {
            let index: usize = child_arg().parse().unwrap();
            assert_eq!(atomics::wait(&view, index, 0, None), Ok(WaitResult::Ok));
        }
        "wait-wide" => {
            let wide = BigInt64Array::new(&buffer).unwrap();
            let result = atomics::wait(&wide, 1, 0, None).unwrap();
            assert!(matches!(result, WaitResult::Ok | WaitResult::NotEqual));
        }
        "wait-async" => {
            let pending = atomics::wait_async(&view, 2, 0, None).unwrap();
            assert_eq!(block_on(pending.into_future()), WaitResult::Ok);
        }
        "pong" => {
            let rounds: i32 = child_arg().parse().unwrap();
            for round in 0..rounds {
                let ping = 2 * round + 1;
                while atomics::load(&view, 0).unwrap() < ping {
                    atomics::wait(&view, 0, ping - 1, None).unwrap();
                }
                atomics::store(&view, 0, ping + 1).unwrap();
                atomics::notify(&view, 0, None).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
}

// docs/semantics.md X1 (B6 across processes): atomics from several processes on one memfd.
#[test]
#[cfg_attr(miri, ignore)]
fn atomics_from_several_processes_add_up() {
    let (buffer, view) = memfd("x2-add");
    let children: Vec<_> = (0..3)
        .map(|_| spawn_child(ROLES, "add", Some(&buffer), ""))
        .collect();
    for _ in 0..10_000 {
        atomics::add(&view, 0, 1).unwrap();
    }
    for child in children {
        expect_success(child, "add");
    }
    assert_eq!(atomics::load(&view, 0).unwrap(), 40_000);
}

// docs/semantics.md X2: notify wakes waiters in other processes and counts them, exactly.
#[test]
#[cfg_attr(miri, ignore)]
fn notify_counts_waiters_in_other_processes() {
    let (buffer, view) = memfd("x2-count");
    let children: Vec<_> = (0..4)
        .map(|_| spawn_child(ROLES, "wait", Some(&buffer), "1"))
        .collect();
    let local = waiter_thread(&view, 1);
    wait_until("five waiters queued", || queued(&buffer) == 5);
    assert_eq!(atomics::notify(&view, 1, Some(2)).unwrap(), 2);
    assert_eq!(queued(&buffer), 3);
    assert_eq!(atomics::notify(&view, 1, None).unwrap(), 3);
    assert_eq!(atomics::notify(&view, 1, None).unwrap(), 0);
    for child in children {
        expect_success(child, "wait");
    }
    assert_eq!(local.join().unwrap(), Ok(WaitResult::Ok));
}

// docs/semantics.md X2: waiters of other processes are woken oldest first, like local ones.
#[test]
#[cfg_attr(miri, ignore)]
fn notify_wakes_the_oldest_waiter_of_any_process() {
    let (buffer, view) = memfd("x2-order");
    let child = spawn_child(ROLES, "wait", Some(&buffer), "1");
    wait_until("the child queued", || queued(&buffer) == 1);
    let local = waiter_thread(&view, 1);
    wait_until("the local waiter queued", || queued(&buffer) == 2);
    assert_eq!(atomics::notify(&view, 1, Some(1)).unwrap(), 1);
    expect_success(child, "the oldest waiter, in the child");
    assert_eq!(queued(&buffer), 1, "the local waiter still waits");
    assert_eq!(atomics::notify(&view, 1, Some(1)).unwrap(), 1);
    assert_eq!(local.join().unwrap(), Ok(WaitResult::Ok));
}

// docs/semantics.md X2, A11: 64-bit waits across processes.
#[test]
#[cfg_attr(miri, ignore)]
fn a_64_bit_wait_in_another_process() {
    let buffer = SharedBuffer::memfd("x2-wide-proc", 16).unwrap();
    let wide = BigInt64Array::new(&buffer).unwrap();
    let child = spawn_child(ROLES, "wait-wide", Some(&buffer), "");
    wait_until("the child queued", || queued(&buffer) == 1);
    atomics::store(&wide, 1, 1 << 33).unwrap();
    assert_eq!(atomics::notify(&wide, 1, None).unwrap(), 1);
    expect_success(child, "wait-wide");
}

// docs/semantics.md X2, A12: a future in another process is woken by this one's notify.
#[test]
#[cfg_attr(miri, ignore)]
fn a_future_in_another_process_is_woken() {
    let (buffer, view) = memfd("x2-async-proc");
    let child = spawn_child(ROLES, "wait-async", Some(&buffer), "");
    wait_until("the child's future queued", || queued(&buffer) == 1);
    assert_eq!(atomics::notify(&view, 2, None).unwrap(), 1);
    expect_success(child, "wait-async");
}

// docs/semantics.md X2: a long ping-pong between two processes loses no wakeup.
#[test]
#[cfg_attr(miri, ignore)]
fn a_ping_pong_between_processes_loses_no_wakeup() {
    let (buffer, view) = memfd("x2-ping-pong");
    let rounds = 2_000;
    let child = spawn_child(ROLES, "pong", Some(&buffer), &rounds.to_string());
    for round in 0..rounds {
        let ping = 2 * round + 1;
        atomics::store(&view, 0, ping).unwrap();
        atomics::notify(&view, 0, None).unwrap();
        while atomics::load(&view, 0).unwrap() == ping {
            // A child that died (or a lost wakeup) fails the test instead of a wait for ever.
            assert_ne!(
                atomics::wait(&view, 0, ping, Some(WATCHDOG)).unwrap(),
                WaitResult::TimedOut,
                "no pong for round {round} within {WATCHDOG:?}"
            );
        }
    }
    expect_success(child, "pong");
    assert_eq!(atomics::load(&view, 0).unwrap(), 2 * rounds);
}

// docs/semantics.md X5: a waiter whose process died never absorbs a wakeup meant for a live
// one: notify(1) finds it woke nobody, sees the process is gone, frees the slot, and goes on.
#[test]
#[cfg_attr(miri, ignore)]
fn a_dead_waiter_does_not_absorb_a_notify() {
    let (buffer, view) = memfd("x5-dead");
    let mut child = spawn_child(ROLES, "wait", Some(&buffer), "1");
    let pid = child.id();
    wait_until("the child asleep on its slot", || {
        slots(&buffer)
            .iter()
            .any(|s| s.status == PARKED && s.owner == pid)
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let local = waiter_thread(&view, 1);
    wait_until("the local waiter queued", || queued(&buffer) == 2);
    // The dead child's slot is the oldest: a notify(1) that counted it would leave the live
    // waiter asleep.
    assert_eq!(atomics::notify(&view, 1, Some(1)).unwrap(), 1);
    assert_eq!(local.join().unwrap(), Ok(WaitResult::Ok));
    assert_eq!(taken(&buffer), 0, "the dead waiter's slot was freed");
}
