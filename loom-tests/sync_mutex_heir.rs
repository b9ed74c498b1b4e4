//! Loom model (docs/semantics.md S3, S5): the starvation handoff racing the heir's timeout.
//!
//! A timed waiter sleeps while the lock is held; the holder unlocks and at once takes the lock
//! again (a barger beating the woken waiter), so the waiter — which has slept once, and so may
//! become the heir under loom — asks for the next unlock to be handed to it. A model thread
//! plays the clock and times the heir out at any moment, racing the grant. In every
//! interleaving: one holder at a time (the guarded cell), the waiter either gets the lock or
//! times out, a handoff is never lost (the lock is never left granted to nobody: the words
//! return to zero), and nobody is left queued.
//!
//! The main thread waits (yielding) for the waiter to be asleep and then to be the heir, so the
//! interesting race needs one preemption, not three; the clock thread does not spin (two
//! spinning threads would make loom's paths explode).
//!
//! Proven by planted bugs: the unlock that grants the heir (its subtraction leaves the heir its reserved hold) skips waking the side word (loom deadlock: the heir sleeps forever); the heir's withdrawal clears `HEIR` without giving back its reserved hold (the final state check: `[1, 0, 0]`, the lock left held by nobody).
#![cfg(loom)]

#[path = "sync_support.rs"]
mod support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use sharedbuf::sync::{Mutex, TryLockError};
use sharedbuf::{loom_hooks, SharedBuffer};
use support::Guarded;

/// The state word's `HEIR` flag (see `src/sync/mutex.rs`).
const HEIR: u32 = 4;

fn yield_until(mut condition: impl FnMut() -> bool) {
    while !condition() {
        loom::thread::yield_now();
    }
}

#[test]
fn a_handoff_is_never_lost_to_a_racing_timeout() {
    loom::model(|| {
        let buffer = SharedBuffer::new(Mutex::BYTES).unwrap();
        let mutex = Mutex::at(&buffer, 0).unwrap();
        let guarded = Guarded::new();
        let done = Arc::new(AtomicBool::new(false));
        let heir = {
            let buffer = buffer.clone();
            move || support::words(&buffer, Mutex::BYTES)[0] & HEIR != 0
        };
        let first = mutex.lock().unwrap();

        let (waiter_mutex, waiter_guarded, waiter_done) =
            (mutex.clone(), guarded.clone(), done.clone());
        let waiter = loom::thread::spawn(move || {
            let acquired = match waiter_mutex.try_lock_for(Duration::from_secs(60)) {
                Ok(_guard) => {
                    waiter_guarded.bump();
                    true
                }
                Err(TryLockError::WouldBlock) => false,
                Err(error) => panic!("{error:?}"),
            };
            waiter_done.store(true, SeqCst);
            acquired
        });
        // The clock: times out whoever is waiting with a timeout at the moment it runs, which
        // loom places everywhere (before the waiter sleeps, during its first sleep, while it is
        // the heir, between the grant and its wake-up, after).
        let timer = loom::thread::spawn(loom_hooks::fire_timeouts);

        yield_until(|| loom_hooks::queued_waiters() > 0 || done.load(SeqCst));
        drop(first); // wakes the waiter...
        let again = mutex.lock().unwrap(); // ...and barges past it (or waits behind it)
        guarded.bump();
        yield_until(|| heir() || done.load(SeqCst));
        drop(again); // hands over to the heir, racing its timeout

        let acquired = waiter.join().unwrap();
        timer.join().unwrap();
        assert_eq!(guarded.get(), 1 + usize::from(acquired));
        let words = support::words(&buffer, Mutex::BYTES);
        assert_eq!(
            [words[0], words[2], words[3]],
            [0, 0, 0],
            "state and owner words"
        );
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
