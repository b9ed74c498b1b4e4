//! Loom model (docs/semantics.md S2): two, then three threads take an in-buffer `Mutex` in every
//! interleaving. Mutual exclusion (loom checks that the guarded cell's accesses are ordered),
//! no lost wakeup on unlock (a waiter left asleep would be a deadlock loom reports), and the
//! words return to all zero: no waiter left counted, no flag left set, no owner recorded.
//!
//! With three threads, a barger can beat a woken waiter, which then sleeps again: once with
//! the starvation handoff off (the `WOKEN` baton and the queue alone) and once with every
//! re-sleeping waiter asking for the handoff. At most one preemption there: three lockers at
//! two cost minutes, not seconds.
//!
//! Proven by planted bugs: the unlock fast path's subtraction Release → Relaxed (loom causality violation: concurrent writes to the guarded cell); the releasing slow unlock never setting `WOKEN` to wake a counted waiter (loom deadlock).
#![cfg(loom)]

#[path = "sync_support.rs"]
mod support;

use sharedbuf::sync::Mutex;
use sharedbuf::{loom_hooks, SharedBuffer};
use support::Guarded;

/// `lockers` threads (the main thread among them) each take the lock once.
fn take_turns(lockers: usize) {
    let buffer = SharedBuffer::new(Mutex::BYTES).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let guarded = Guarded::new();
    let threads: Vec<_> = (1..lockers)
        .map(|_| {
            let (mutex, guarded) = (mutex.clone(), guarded.clone());
            loom::thread::spawn(move || {
                let _guard = mutex.lock().unwrap();
                guarded.bump();
            })
        })
        .collect();
    {
        let _guard = mutex.lock().unwrap();
        guarded.bump();
    }
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(guarded.get(), lockers);
    let words = support::words(&buffer, Mutex::BYTES);
    // The side word (index 1) is a sequence number: it may have moved.
    assert_eq!(
        [words[0], words[2], words[3]],
        [0, 0, 0],
        "state and owner words"
    );
    assert_eq!(loom_hooks::queued_waiters(), 0);
}

fn at_most_one_preemption() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(1, |bound| bound.min(1)));
    builder
}

#[test]
fn two_threads_take_turns() {
    loom::model(|| take_turns(2));
}

#[test]
fn three_threads_take_turns_through_the_queue() {
    at_most_one_preemption().check(|| {
        loom_hooks::mutex_starving_after(u32::MAX);
        take_turns(3);
    });
}

#[test]
fn three_threads_take_turns_with_handoffs() {
    at_most_one_preemption().check(|| {
        loom_hooks::mutex_starving_after(1);
        take_turns(3);
    });
}
