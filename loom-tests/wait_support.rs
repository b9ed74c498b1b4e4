//! Helpers shared by the wait/notify loom models (included with `#[path]`).
#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};

use sharedbuf::atomics::{WaitAsync, WaitFuture};
use sharedbuf::{loom_hooks, Int32Array, SharedBuffer, WaitResult};

/// A two-element `Int32Array` over a fresh buffer, all zero.
pub fn view() -> Int32Array {
    Int32Array::new(&SharedBuffer::new(8).unwrap()).unwrap()
}

struct NoopWaker;

impl Wake for NoopWaker {
    fn wake(self: StdArc<Self>) {}
}

/// Spawns a thread that stores 1 at element 0 and then notifies it; joins to the notify count.
pub fn spawn_store_then_notify(view: &Int32Array) -> loom::thread::JoinHandle<usize> {
    let view = view.clone();
    loom::thread::spawn(move || {
        sharedbuf::atomics::store(&view, 0, 1).unwrap();
        sharedbuf::atomics::notify(&view, 0, None).unwrap()
    })
}

/// Polls a wait future once: `Some(result)` if it resolved.
pub fn poll(future: &mut WaitFuture) -> Option<WaitResult> {
    let waker = Waker::from(StdArc::new(NoopWaker));
    match Pin::new(future).poll(&mut Context::from_waker(&waker)) {
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}

/// The future of a `wait_async` that must have enqueued.
pub fn pending(answer: WaitAsync) -> WaitFuture {
    match answer {
        WaitAsync::Pending(future) => future,
        WaitAsync::Ready(result) => panic!("expected a pending wait, got {result:?}"),
    }
}

/// Yields until a timed waiter is in the table (its timeout can fire), or `done` says the
/// waiter already returned. Returns whether a timed waiter was seen.
pub fn until_timed_waiter(done: &loom::sync::atomic::AtomicBool) -> bool {
    use std::sync::atomic::Ordering::SeqCst;
    loop {
        if loom_hooks::pending_timeouts() > 0 {
            return true;
        }
        if done.load(SeqCst) {
            return false;
        }
        loom::thread::yield_now();
    }
}
