//! Loom model (docs/semantics.md A12, X2): a `wait_async` future on a process-shared buffer
//! that is enqueued while the buffer's doorbell thread is ending (its last future was just
//! notified, its list is empty) is served by a doorbell thread: never left on the list of a
//! thread that has ended, where a notify counts it and nothing ever wakes its task.
//!
//! Threads stand in for processes as in `wait_process.rs`; the doorbell thread
//! (`src/atomics/process_bridge.rs`) is a model thread. The main thread plays the task: its
//! waker unparks it, and it parks while its future is pending, so a future nobody will wake is
//! a loom deadlock.
//!
//! Found failing before the fix (enqueue looked at the bridge's `closed` flag, then pushed
//! the waiter under a second lock of its list): loom deadlock, `threads = [(Id(0), Blocked),
//! (Id(1), Terminated)]` — the second future never woken, its doorbell thread gone. The model
//! waits for the doorbell threads to end (their slots freed) before it returns: a loom thread
//! still running after the model's closure returned crashed loom (SIGSEGV) here.
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};

use sharedbuf::atomics::{self, WaitFuture};
use sharedbuf::{loom_hooks, Int32Array, SharedBuffer, WaitResult};

/// Wakes the model thread that polls: its task.
struct Unpark(loom::thread::Thread);

impl Wake for Unpark {
    fn wake(self: StdArc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` until it resolves, parking while it is pending (a wake unparks).
fn resolve(future: &mut WaitFuture) -> WaitResult {
    let waker = Waker::from(StdArc::new(Unpark(loom::thread::current())));
    loop {
        match Pin::new(&mut *future).poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(result) => return result,
            Poll::Pending => loom::thread::park(),
        }
    }
}

#[test]
fn a_future_enqueued_while_the_doorbell_thread_ends_is_woken() {
    loom::model(|| {
        let buffer = SharedBuffer::memfd("model", 8).unwrap();
        let view = Int32Array::new(&buffer).unwrap();
        let mut first = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());
        // Takes the first future: the doorbell thread finishes it and, its list empty, ends —
        // at any point of the next enqueue.
        assert_eq!(atomics::notify(&view, 0, Some(1)).unwrap(), 1);
        let mut second = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());
        assert_eq!(resolve(&mut first), WaitResult::Ok);
        assert_eq!(atomics::notify(&view, 0, None).unwrap(), 1);
        assert_eq!(resolve(&mut second), WaitResult::Ok);
        drop((first, second));
        // Every doorbell thread ends once its futures are gone, and frees its slot (the model
        // ends only with its threads).
        while loom_hooks::process_slots_taken(&buffer) != 0 {
            loom::thread::yield_now();
        }
    });
}
