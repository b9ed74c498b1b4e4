//! Loom model (docs/semantics.md S3, S5): a write unlock opens a read phase for the waiting reader
//! while that reader's timeout races it (a model thread plays the clock). In every
//! interleaving the reader either gets in or times out, and the read phase always ends: the
//! writer's next `write` gets the lock (a phase left open with no reader in it would block it
//! forever, a deadlock loom reports), and the words return to zero.
//!
//! Proven by a planted bug: the last reader out leaves `READ_PHASE` set (assertion: the state word is not back to zero).
#![cfg(loom)]

#[path = "sync_support.rs"]
mod support;
#[path = "wait_support.rs"]
mod wait_support;

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use sharedbuf::sync::{RwLock, TryLockError};
use sharedbuf::{loom_hooks, SharedBuffer};
use support::Guarded;

#[test]
fn a_read_phase_always_ends() {
    loom::model(|| {
        let buffer = SharedBuffer::new(RwLock::BYTES).unwrap();
        let lock = RwLock::at(&buffer, 0).unwrap();
        let guarded = Guarded::new();
        let done = Arc::new(AtomicBool::new(false));
        let first = lock.write().unwrap();

        let (reader_lock, reader_guarded, reader_done) =
            (lock.clone(), guarded.clone(), done.clone());
        let reader = loom::thread::spawn(move || {
            let seen = reader_lock
                .try_read_for(Duration::from_secs(60))
                .map(|_guard| reader_guarded.get())
                .map_err(|error| assert!(matches!(error, TryLockError::WouldBlock), "{error:?}"))
                .ok();
            reader_done.store(true, SeqCst);
            seen
        });
        let timer_done = done.clone();
        let timer = loom::thread::spawn(move || {
            if wait_support::until_timed_waiter(&timer_done) {
                loom_hooks::fire_timeouts();
            }
        });

        guarded.bump();
        drop(first); // opens a read phase if the reader is counted as waiting
        {
            let _again = lock.write().unwrap();
            guarded.bump();
        }
        let seen = reader.join().unwrap();
        timer.join().unwrap();
        if let Some(seen) = seen {
            assert!((1..=2).contains(&seen), "the reader saw a whole write");
        }
        assert_eq!(guarded.get(), 2);
        let words = support::words(&buffer, 16);
        assert_eq!(words, [0, 0, 0, 0], "state and owner words");
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
