//! Loom models (docs/semantics.md S3): an in-buffer `Barrier` of two parties.
//!
//! - Reuse across two generations: each generation has exactly one leader, and nobody passes
//!   early: what each party wrote before arriving (a loom cell per party and generation) is
//!   read by the other after passing, so loom checks it happens-before (and that it was written
//!   at all: the arrival counters).
//! - A timed-out party racing the completion: the timeout either withdraws the arrival (the
//!   party retries) or loses to the completion (the party passed); both parties return, with
//!   one leader, and no arrival is left counted.
//!
//! Proven by a planted bug: the leader bumps the sequence but skips the `notify` (loom deadlock in the two-generations model).
#![cfg(loom)]

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::sync::Arc;
use sharedbuf::sync::Barrier;
use sharedbuf::{loom_hooks, SharedBuffer, Uint32Array};

const GENERATIONS: usize = 2;

struct Shared {
    /// `written[generation][party]`: what the party wrote before arriving.
    written: [[UnsafeCell<usize>; 2]; GENERATIONS],
    leaders: [AtomicUsize; GENERATIONS],
}

fn party(barrier: &Barrier, shared: &Shared, me: usize) {
    let other = 1 - me;
    for generation in 0..GENERATIONS {
        // SAFETY: only this party writes this cell, before it arrives; the other party reads it
        // only after passing the same generation (what the model checks).
        shared.written[generation][me].with_mut(|cell| unsafe { *cell = generation + 1 });
        if barrier.wait().unwrap().is_leader() {
            shared.leaders[generation].fetch_add(1, SeqCst);
        }
        // SAFETY: see above.
        let seen = shared.written[generation][other].with(|cell| unsafe { *cell });
        assert_eq!(seen, generation + 1, "passed generation {generation} early");
    }
}

#[test]
fn two_generations_one_leader_each_nobody_early() {
    loom::model(|| {
        let buffer = SharedBuffer::new(Barrier::BYTES).unwrap();
        let barrier = Barrier::at(&buffer, 0, 2).unwrap();
        let shared = Arc::new(Shared {
            written: std::array::from_fn(|_| std::array::from_fn(|_| UnsafeCell::new(0))),
            leaders: std::array::from_fn(|_| AtomicUsize::new(0)),
        });
        let other = {
            let (barrier, shared) = (barrier.clone(), shared.clone());
            loom::thread::spawn(move || party(&barrier, &shared, 1))
        };
        party(&barrier, &shared, 0);
        other.join().unwrap();
        for leaders in &shared.leaders {
            assert_eq!(leaders.load(SeqCst), 1, "one leader per generation");
        }
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

#[test]
fn a_timeout_racing_the_completion() {
    loom::model(|| {
        let buffer = SharedBuffer::new(Barrier::BYTES).unwrap();
        let barrier = Barrier::at(&buffer, 0, 2).unwrap();
        let done = Arc::new(AtomicBool::new(false));

        let timed = {
            let (barrier, done) = (barrier.clone(), done.clone());
            loom::thread::spawn(move || {
                let mut timeouts = 0;
                let leader = loop {
                    match barrier.wait_for(Duration::from_secs(1)).unwrap() {
                        Some(result) => break result.is_leader(),
                        None => timeouts += 1,
                    }
                };
                done.store(true, SeqCst);
                (leader, timeouts)
            })
        };
        let timer = {
            let done = done.clone();
            loom::thread::spawn(move || loop {
                if loom_hooks::pending_timeouts() > 0 {
                    loom_hooks::fire_timeouts();
                    return;
                }
                if done.load(SeqCst) {
                    return;
                }
                loom::thread::yield_now();
            })
        };
        let leader = barrier.wait().unwrap().is_leader();
        let (timed_leader, timeouts) = timed.join().unwrap();
        timer.join().unwrap();
        assert!(leader != timed_leader, "exactly one leader");
        assert!(timeouts <= 1);
        let words = Uint32Array::new(&buffer).unwrap().to_vec();
        assert_eq!(words[0] & 0xF_FFFF, 0, "no arrival left counted");
        assert_eq!(words[1] >> 8, 1, "exactly one generation completed");
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
