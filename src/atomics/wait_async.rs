//! `Atomics.waitAsync` (docs/semantics.md A12): the same waiter list as [`wait`](super::wait()), with a
//! `Future` instead of a blocked thread.
//!
//! The future works with any executor: it keeps the `Waker` of its latest poll and `notify`
//! (or the timer, [`super::timer`]) wakes it. It holds a clone of the buffer, so the memory
//! its waiter is keyed by stays alive as long as the future does. Dropping a pending future
//! takes its waiter out of the list, so a later `notify` does not count it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::cancel::cancel;
use super::deadline::Deadline;
use super::outcome::{Outcome, WaitResult};
use super::process_bridge;
use super::timer::{self, TimerEntry};
use super::waiter::Waiter;
use super::waiter_table;
use crate::buffer::SharedBuffer;
use crate::element::Waitable;
use crate::error::Error;
use crate::shim::{model_is_unwinding, Arc, Ordering::SeqCst};
use crate::view::TypedArray;

/// What [`wait_async`] returns: an answer now, or a future for one (JavaScript's
/// `{ async: false, value }` and `{ async: true, value: promise }`).
#[derive(Debug)]
#[must_use = "a dropped WaitAsync::Pending stops waiting"]
pub enum WaitAsync {
    /// Answered at once: `NotEqual`, or `TimedOut` for a zero timeout.
    Ready(WaitResult),
    /// Enqueued; the future resolves to `Ok` when notified or `TimedOut` after the timeout.
    Pending(WaitFuture),
}

impl WaitAsync {
    /// Turns either variant into a future, for code that just wants to `.await` the result.
    pub fn into_future(self) -> WaitFuture {
        match self {
            WaitAsync::Ready(result) => WaitFuture(State::Ready(result)),
            WaitAsync::Pending(future) => future,
        }
    }
}

/// A pending [`wait_async`]: resolves to `Ok` when notified, `TimedOut` after its timeout.
/// Dropping it before then removes its waiter (a later `notify` does not count it).
///
/// Nothing of it outlives it: dropped, it leaves no waiter, no timer entry and no clone of its
/// task's `Waker`, and on a process-shared buffer no slot (docs/semantics.md A12). By design
/// the timer thread (`sharedbuf-timer`, started by the first timeout) stays for the rest of
/// the process, and the waiter table keeps room for as many waiters as were ever queued at
/// once.
#[must_use = "a dropped WaitFuture stops waiting"]
pub struct WaitFuture(State);

enum State {
    Ready(WaitResult),
    Waiting {
        waiter: Arc<Waiter>,
        /// Where the waiter was enqueued in the waiter table (`None`: in a process-shared
        /// buffer's slot), for the drop's cancel to prefetch and start from.
        enqueued: Option<waiter_table::Enqueued>,
        timer: Option<TimerEntry>,
        /// Keeps the memory (and so the waiter's key) alive.
        _memory: SharedBuffer,
    },
}

/// `Atomics.waitAsync`: like [`wait`](super::wait()), but returns instead of blocking.
///
/// A value mismatch answers `Ready(NotEqual)` and a zero timeout `Ready(TimedOut)`, without
/// enqueuing; otherwise the waiter joins the same FIFO list as blocking waiters (both count in
/// [`notify`](super::notify)'s result) and a [`WaitFuture`] is returned. `None` and absurdly
/// large timeouts wait forever.
///
/// In a child forked from this process (without `exec`) it works as here, timeouts included:
/// the timer and doorbell threads, which do not cross a fork, are started again there
/// (docs/semantics.md X7).
///
/// ```
/// use sharedbuf::atomics::{self, WaitAsync};
/// use sharedbuf::{Int32Array, SharedBuffer, WaitResult};
///
/// let view = Int32Array::new(&SharedBuffer::new(4)?)?;
/// assert!(matches!(atomics::wait_async(&view, 0, 1, None)?, WaitAsync::Ready(WaitResult::NotEqual)));
/// let pending = atomics::wait_async(&view, 0, 0, None)?; // enqueued right here
/// assert_eq!(atomics::notify(&view, 0, None)?, 1);        // counted like a blocking waiter
/// // `pending.into_future().await` now resolves to `WaitResult::Ok` on any executor.
/// # drop(pending);
/// # Ok::<(), sharedbuf::Error>(())
/// ```
pub fn wait_async<T: Waitable>(
    view: &TypedArray<T>,
    index: usize,
    expected: T,
    timeout: Option<Duration>,
) -> Result<WaitAsync, Error> {
    let element = view.element(index)?;
    let deadline = Deadline::after(timeout);
    if element.load(SeqCst) != expected {
        return Ok(WaitAsync::Ready(WaitResult::NotEqual));
    }
    if let Deadline::Expired = deadline {
        return Ok(WaitAsync::Ready(WaitResult::TimedOut));
    }
    let (waiter, enqueued) = match view.buffer().process_shared() {
        // A process-shared buffer: a slot in its header, served by a doorbell thread.
        Some(header) => match process_bridge::enqueue(view.buffer(), header, element, expected)? {
            Some(waiter) => (waiter, None),
            None => return Ok(WaitAsync::Ready(WaitResult::NotEqual)),
        },
        None => {
            let waiter = Arc::new(Waiter::for_task(element.address()));
            match waiter_table::enqueue_if(&waiter, || element.load(SeqCst) == expected) {
                Some(enqueued) => (waiter, Some(enqueued)),
                None => return Ok(WaitAsync::Ready(WaitResult::NotEqual)),
            }
        }
    };
    let timer = match deadline {
        Deadline::At(at) => match timer::schedule(at, &waiter) {
            Ok(entry) => Some(entry),
            Err(error) => {
                cancel(&waiter, Outcome::Cancelled, false);
                return Err(error);
            }
        },
        _ => None,
    };
    Ok(WaitAsync::Pending(WaitFuture(State::Waiting {
        waiter,
        enqueued,
        timer,
        _memory: view.buffer().clone(),
    })))
}

fn result_of(outcome: Outcome) -> WaitResult {
    if outcome == Outcome::Notified {
        WaitResult::Ok
    } else {
        WaitResult::TimedOut
    }
}

impl Future for WaitFuture {
    type Output = WaitResult;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<WaitResult> {
        let outcome = match &self.0 {
            State::Ready(result) => return Poll::Ready(*result),
            State::Waiting { waiter, timer, .. } => match waiter.set_waker(cx.waker()) {
                Some(outcome) => outcome,
                None => {
                    if timer.is_some() {
                        // Pending since before a fork: the child needs a timer thread (X7).
                        timer::restart_after_fork();
                    }
                    return Poll::Pending;
                }
            },
        };
        let result = result_of(outcome);
        // Keep answering `result` if polled again, rather than hanging.
        if let State::Waiting {
            timer: Some(entry), ..
        } = std::mem::replace(&mut self.0, State::Ready(result))
        {
            timer::unschedule(entry);
        }
        Poll::Ready(result)
    }
}

impl Drop for WaitFuture {
    fn drop(&mut self) {
        if model_is_unwinding() {
            return;
        }
        if let State::Waiting {
            waiter,
            enqueued,
            timer,
            ..
        } = &mut self.0
        {
            match *enqueued {
                Some(at) => waiter_table::cancel_enqueued(waiter, at),
                None => {
                    cancel(waiter, Outcome::Cancelled, false);
                }
            }
            if let Some(entry) = timer.take() {
                timer::unschedule(entry);
            }
        }
    }
}

impl fmt::Debug for WaitFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.0 {
            State::Ready(result) => format!("Ready({result:?})"),
            State::Waiting { waiter, .. } => match waiter.outcome() {
                Some(outcome) => format!("Ready({:?})", result_of(outcome)),
                None => "Pending".to_string(),
            },
        };
        f.debug_tuple("WaitFuture").field(&state).finish()
    }
}
