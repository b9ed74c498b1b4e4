//! Loom model (docs/semantics.md S2): `lock_async` racing the unlock of a blocking holder. The task is
//! driven by a `block_on` that parks until the future's waker is called: in every
//! interleaving the release wakes the pending future (a missed wake would be a deadlock loom
//! reports), the holders never overlap, and the words return to zero.
//!
//! Proven by a planted bug: the slow unlock clears `ASYNC` without waking the side word (loom deadlock: the pending `lock_async` is never woken).
#![cfg(loom)]

#[path = "sync_support.rs"]
mod support;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};

use sharedbuf::sync::Mutex;
use sharedbuf::{loom_hooks, SharedBuffer};
use support::Guarded;

/// Unparks the loom thread that polls the future.
struct Unparker(loom::thread::Thread);

impl Wake for Unparker {
    fn wake(self: StdArc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this loom thread, parking between polls until its waker is called (an
/// unpark before the park is kept, so a wake is never missed).
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(StdArc::new(Unparker(loom::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        loom::thread::park();
    }
}

#[test]
fn a_release_always_wakes_a_pending_lock_async() {
    loom::model(|| {
        let buffer = SharedBuffer::new(Mutex::BYTES).unwrap();
        let mutex = Mutex::at(&buffer, 0).unwrap();
        let guarded = Guarded::new();
        let held = mutex.lock().unwrap();

        let (task_mutex, task_guarded) = (mutex.clone(), guarded.clone());
        let task = loom::thread::spawn(move || {
            let _guard = block_on(task_mutex.lock_async()).unwrap();
            task_guarded.bump();
        });

        guarded.bump();
        drop(held);
        task.join().unwrap();
        assert_eq!(guarded.get(), 2);
        let words = support::words(&buffer, Mutex::BYTES);
        assert_eq!(
            [words[0], words[2], words[3]],
            [0, 0, 0],
            "state and owner words"
        );
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
