//! Loom model (docs/semantics.md A12): a poll that stores a new waker while a `notify` resolves
//! the future never loses the wakeup: either that poll returns `Ready(Ok)`, or the waker it
//! stored is woken. Covers both paths of storing: the first waker, and a later poll's waker
//! replacing an earlier one (the old waker's clone and drop run with the slot unlocked, since
//! they are user code that may reenter `notify`).
//!
//! Proven by a planted bug (recorded when the model was added): `Waiter::set_waker` reading
//! the outcome before storing the waker instead of after.
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::atomic::AtomicBool;
use sharedbuf::{atomics, WaitResult};

/// A waker that records that it was woken.
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: StdArc<Self>) {
        self.0.store(true, SeqCst);
    }
}

fn flag() -> (StdArc<Flag>, Waker) {
    let flag = StdArc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(StdArc::clone(&flag));
    (flag, waker)
}

/// Polls `future` with `waker` while another thread notifies its element; checks the wakeup
/// reached either the poll's answer or `woken`.
fn poll_racing_notify(
    view: &sharedbuf::Int32Array,
    future: &mut sharedbuf::atomics::WaitFuture,
    woken: &Flag,
    waker: &Waker,
) {
    let notify_view = view.clone();
    let notifier = loom::thread::spawn(move || atomics::notify(&notify_view, 0, None).unwrap());
    let polled = Pin::new(&mut *future).poll(&mut Context::from_waker(waker));
    assert_eq!(notifier.join().unwrap(), 1, "the waiter was in the list");
    match polled {
        Poll::Ready(result) => assert_eq!(result, WaitResult::Ok),
        Poll::Pending => assert!(
            woken.0.load(SeqCst),
            "the poll said Pending, and the waker it stored was never woken"
        ),
    }
    assert_eq!(support::poll(future), Some(WaitResult::Ok));
}

#[test]
fn first_waker_stored_while_notified() {
    loom::model(|| {
        let view = support::view();
        let mut future = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());
        let (woken, waker) = flag();
        poll_racing_notify(&view, &mut future, &woken, &waker);
    });
}

#[test]
fn replacing_waker_stored_while_notified() {
    loom::model(|| {
        let view = support::view();
        let mut future = support::pending(atomics::wait_async(&view, 0, 0, None).unwrap());
        let (_, earlier) = flag();
        assert!(Pin::new(&mut future)
            .poll(&mut Context::from_waker(&earlier))
            .is_pending());
        let (woken, waker) = flag();
        poll_racing_notify(&view, &mut future, &woken, &waker);
    });
}
