//! The `sync` primitives used as a hostile user would (docs/semantics.md S2, S3, S4, S6): wakers
//! that panic, futures polled after they finished, closures that panic or re-enter, timeouts at
//! the edges, and many threads hammering each primitive with random timeouts. Each test names
//! the fault it was written for; the ones marked "Fault:" failed before their fix.
//!
//! No test measures time: deadlines here only end waits, and hangs are caught by a watchdog
//! that fails the test with a message.

#![cfg(not(loom))]

mod common;
mod sync_support;

use std::panic::{self, AssertUnwindSafe};
use std::future::Future;
use std::sync::mpsc;
use std::task::Poll;

use common::{panicking_waker, poll_once};
use sharedbuf::sync::Mutex;
use sharedbuf::{SharedBuffer, Uint32Array};
use sync_support::spawn_blocked;

/// The mutex's state word (see `src/sync/mutex.rs`): hold count in bits 0–1, `HEIR` = 4,
/// `WOKEN` = 8, `ASYNC` = 16, waiters from bit 5.
fn mutex_state(mutex: &Mutex) -> u32 {
    Uint32Array::with_range(mutex.buffer(), mutex.byte_offset(), Some(1))
        .unwrap()
        .get(0)
        .unwrap()
}

const HEIR: u32 = 4;
const WOKEN: u32 = 8;
const ASYNC: u32 = 16;
const WAITER: u32 = 32;

/// Fault: an unlock that found both a queued blocking waiter and a pending `lock_async` future
/// set the `WOKEN` baton, then woke the future's side word first; a waker that panicked there
/// unwound out of the unlock before it woke the blocking waiter, leaving the baton set with
/// nobody holding it: every later unlock saw `WOKEN` and woke nobody, and the blocked `lock`
/// slept for ever. Decided: the panic still propagates to the unlocking thread (the waiter
/// table's rule: every waiter taken is woken, then the first panic continues), but the queued
/// waiter is woken first, and gets the lock (S2: released means the next locker gets in).
// docs/semantics.md S2
#[test]
fn s2_a_panicking_lock_async_waker_does_not_strand_a_blocked_locker() {
    let buffer = SharedBuffer::new(16).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    // The blocked locker must be an ordinary queued waiter, not the heir (S5), which the
    // handoff serves whatever the side word's wake does: start over in the rare run where it
    // waited long enough to ask for the handoff before it slept.
    let (guard, waiter) = loop {
        let guard = mutex.lock().unwrap();
        let remote = mutex.clone();
        let waiter = spawn_blocked(move || remote.lock().map(drop).map_err(|e| e.to_string()));
        let state = mutex_state(&mutex);
        if state & HEIR == 0 {
            assert_eq!(state & !ASYNC, 1 + WAITER, "held, one queued waiter");
            break (guard, waiter);
        }
        drop(guard);
        waiter.join("the heir").unwrap();
    };
    let (woken_tx, woken_rx) = mpsc::channel();
    let waker = panicking_waker(woken_tx);
    let mut future = Box::pin(mutex.lock_async());
    assert!(future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    drop(waker);
    assert_ne!(mutex_state(&mutex) & ASYNC, 0, "the future announced itself");

    // The unlock wakes the future, whose waker panics on this thread.
    let unlocked = panic::catch_unwind(AssertUnwindSafe(move || drop(guard)));
    assert!(unlocked.is_err(), "the waker's panic reaches the unlocker");
    woken_rx.try_recv().expect("the future's waker was called");

    // The blocked locker gets the lock, and the future still resolves once it is free.
    waiter.join("the blocked locker after a panicking waker").unwrap();
    let guard = match poll_once(&mut future) {
        Poll::Ready(guard) => guard.unwrap(),
        Poll::Pending => panic!("the free mutex was not taken by the woken future"),
    };
    drop(guard);
    assert_eq!(mutex_state(&mutex) & !WOKEN, 0);
    assert_eq!(mutex_state(&mutex), 0, "no baton left behind");
}

