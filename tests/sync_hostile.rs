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


/// The environment variable that makes this binary run one scenario as a child process (for a
/// fault that aborts the process, which no in-process test can observe).
const CHILD: &str = "SHAREDBUF_SYNC_HOSTILE_CHILD";

/// Runs test `name` of this binary in a child process with [`CHILD`] set to `name`; returns
/// whether the child exited successfully, and its stderr.
fn run_as_child(name: &str) -> (bool, String) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .output()
        .expect("run this test binary as a child");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Fault: a thread that panicked while holding the mutex unlocked it from its guard's drop
/// during the unwind, and the unlock woke a pending `lock_async` future whose waker panicked:
/// a panic escaping a destructor during unwinding aborts the process. Decided: while the
/// unlocking thread is already unwinding, a waker's panic is caught and dropped (its message
/// has been printed by the panic hook); the future is woken all the same and gets the lock.
// docs/semantics.md S2
#[test]
fn s2_a_panicking_waker_does_not_abort_a_holder_that_is_unwinding() {
    const NAME: &str = "s2_a_panicking_waker_does_not_abort_a_holder_that_is_unwinding";
    if std::env::var(CHILD).as_deref() != Ok(NAME) {
        let (ok, stderr) = run_as_child(NAME);
        assert!(ok, "the child process failed (aborted?):\n{stderr}");
        return;
    }
    let buffer = SharedBuffer::new(16).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let (locked_tx, locked_rx) = mpsc::channel();
    let (pending_tx, pending_rx) = mpsc::channel::<()>();
    let holder = {
        let mutex = mutex.clone();
        std::thread::spawn(move || {
            panic::catch_unwind(AssertUnwindSafe(|| {
                let _guard = mutex.lock().unwrap();
                locked_tx.send(()).unwrap();
                pending_rx.recv().unwrap();
                panic!("the holder panics with the guard alive (as the test wants)");
            }))
            .is_err()
        })
    };
    locked_rx.recv().unwrap();
    let (woken_tx, woken_rx) = mpsc::channel();
    let waker = panicking_waker(woken_tx);
    let mut future = Box::pin(mutex.lock_async());
    assert!(future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    drop(waker);
    pending_tx.send(()).unwrap();
    assert!(holder.join().unwrap(), "the holder's own panic was caught");
    woken_rx.try_recv().expect("the future's waker was called");
    let guard = match poll_once(&mut future) {
        Poll::Ready(guard) => guard.unwrap(),
        Poll::Pending => panic!("the released mutex was not taken by the woken future"),
    };
    drop(guard);
    assert_eq!(mutex_state(&mutex), 0);
}
