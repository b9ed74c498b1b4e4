//! The process-wide `sharedbuf-timer` thread (which times out pending `wait_async` futures)
//! must survive a `Waker` that panics when the timer wakes it.
//!
//! A test binary of its own: on a faulty build the timer thread dies here, and every later
//! `wait_async` timeout in the process would never fire, failing unrelated tests.

#![cfg(not(loom))]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::Duration;

use common::{block_on, panicking_waker, poll_once, recv_within, within_watchdog};
use sharedbuf::atomics::{self, WaitAsync, WaitFuture};
use sharedbuf::{Int32Array, SharedBuffer, WaitResult};

fn pending_with_timeout(view: &Int32Array, timeout: Duration) -> WaitFuture {
    match atomics::wait_async(view, 0, 0, Some(timeout)) {
        Ok(WaitAsync::Pending(future)) => future,
        other => panic!("expected a pending wait, got {other:?}"),
    }
}

/// Fault: the timer thread called a panicking waker unguarded and died, after which no
/// `wait_async` timeout in the process ever fired. Decided: the timer survives. Checks A12 (a
/// pending future with a timeout resolves to `TimedOut`) for a future created after the timer
/// has woken a panicking waker; the panicking waker's own future still reads `TimedOut`.
// docs/semantics.md A12
#[test]
fn a12_the_timer_survives_a_panicking_waker() {
    let view = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
    let (woken_tx, woken_rx) = mpsc::channel();
    let waker = panicking_waker(woken_tx);
    // The panicking waker must be in place before the timer fires: on a machine slow enough
    // to let the timeout pass before the first poll, try again with a longer one.
    let mut timeout = Duration::from_millis(10);
    let mut first = loop {
        let mut first = pending_with_timeout(&view, timeout);
        if Pin::new(&mut first)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
        {
            break first;
        }
        timeout *= 4;
    };
    drop(waker);
    // The timer fires `first` and calls its waker, which panics on the timer thread.
    recv_within(&woken_rx, "the timer waking the first future");
    assert_eq!(poll_once(&mut first), Poll::Ready(WaitResult::TimedOut));

    let second = pending_with_timeout(&view, Duration::from_millis(10));
    let (result, _polls) =
        within_watchdog("a wait_async timeout after the panicking waker", || {
            block_on(second)
        });
    assert_eq!(result, WaitResult::TimedOut);
}
