//! `Atomics.wait` and `Atomics.notify` (docs/semantics.md A6–A11).
//!
//! A waiter checks the value and enqueues itself in one critical section of the waiter table
//! ([`super::waiter_table`]), then waits for its own outcome word to change: first by spinning on it
//! briefly ([`super::spin`]), then by parking. `notify` removes waiters oldest first, sets
//! their outcome, and unparks only those that actually parked.
//!
//! The public [`wait`] first watches the value itself for a moment, and returns `NotEqual`
//! without enqueueing if it changes meanwhile: a quick ping-pong then never reaches the table.

use std::time::Duration;

use super::deadline::Deadline;
use super::interrupt;
use super::outcome::{Outcome, WaitResult};
use super::process_wait;
use super::process_waiters;
use super::requeue::RequeueTarget;
use super::spin::{spin_for_outcome, spin_until_changed};
use super::timer;
use super::waiter::Waiter;
use super::waiter_table;
use crate::buffer::SharedBuffer;
use crate::element::Waitable;
use crate::error::Error;
use crate::shim::{self, Arc, Ordering::SeqCst, Parked};
use crate::view::{ElementRef, TypedArray};

/// `Atomics.wait`: if element `index` equals `expected`, sleeps until [`notify`] wakes this
/// waiter (`Ok`) or `timeout` passes (`TimedOut`); otherwise returns `NotEqual` at once (A6).
///
/// `None` waits forever, and so does a timeout too large to represent (`Duration::MAX`). A zero
/// timeout with a matching value still enqueues and returns `TimedOut`. Stores and
/// read-modify-writes never wake a waiter (A7); only `notify`, the timeout, or any
/// [`Interrupter`](super::Interrupter) installed on the thread do — the last makes `wait`
/// return `Err(Error::Terminated)`, as it does at once on an already interrupted thread (W3).
///
/// Before it joins the waiter list, `wait` may watch the value for a few microseconds (when
/// that has recently paid off on this thread): a change seen then returns `NotEqual`, as a wait
/// that started a moment later would, and a `notify` then finds nobody to count. Once in the
/// list, only the three events above end the wait.
///
/// On a process-shared buffer ([`SharedBuffer::is_process_shared`]) a `notify` from any
/// process wakes the wait (X2). If the process that should change the value and notify dies,
/// nothing does: as in JavaScript, only a timeout ends such a wait. More waiters at once than
/// the buffer has waiter slots (384, across all processes) is `Err(Error::TooManyWaiters)`;
/// a wait whose slot another process overwrote ends with `Err(Error::BadHeader)` (X5).
///
/// ```
/// use std::time::Duration;
/// use sharedbuf::{atomics, Int32Array, SharedBuffer, WaitResult};
///
/// let view = Int32Array::new(&SharedBuffer::new(8)?)?;
/// assert_eq!(atomics::wait(&view, 0, 1, None)?, WaitResult::NotEqual);
/// assert_eq!(atomics::wait(&view, 0, 0, Some(Duration::ZERO))?, WaitResult::TimedOut);
///
/// let remote = view.clone();
/// let waiter = std::thread::spawn(move || atomics::wait(&remote, 0, 0, None));
/// // Notify until the waiter was there to be woken: it may not have started waiting yet.
/// while atomics::notify(&view, 0, Some(1))? == 0 {
///     std::thread::yield_now();
/// }
/// assert_eq!(waiter.join().unwrap()?, WaitResult::Ok);
/// # Ok::<(), sharedbuf::Error>(())
/// ```
///
/// Only `i32`/`i64` views (and `u32`/`u64`) compile:
///
/// ```compile_fail
/// use sharedbuf::{atomics, Int8Array, SharedBuffer};
/// let view = Int8Array::new(&SharedBuffer::new(8).unwrap()).unwrap();
/// atomics::wait(&view, 0, 0, None).unwrap(); // i8 is not Waitable
/// ```
///
/// ```compile_fail
/// use sharedbuf::{atomics, Float64Array, SharedBuffer};
/// let view = Float64Array::new(&SharedBuffer::new(8).unwrap()).unwrap();
/// atomics::wait(&view, 0, 0.0, None).unwrap(); // f64 is not Waitable
/// ```
pub fn wait<T: Waitable>(
    view: &TypedArray<T>,
    index: usize,
    expected: T,
    timeout: Option<Duration>,
) -> Result<WaitResult, Error> {
    let element = view.element(index)?;
    let deadline = Deadline::after(timeout);
    // W3: on an interrupted thread, `Terminated` at once, whatever the value.
    if interrupt::installed().any_interrupted() {
        return Err(Error::Terminated);
    }
    // Before joining the list, watch the value for a moment: if the thread that will store and
    // notify is running, the wait ends here without the waiter table (see `spin.rs`).
    let changed = || (element.load(SeqCst) != expected).then_some(());
    if spin_until_changed(changed, deadline).is_some() {
        return Ok(WaitResult::NotEqual);
    }
    wait_in(view.buffer(), element, expected, deadline)
}

/// [`wait`] on a checked element of `buffer` until `deadline`: the one implementation behind
/// `wait` and the crate's own blocking loops (ports, worker lifecycle; see `word.rs`). A
/// process-shared buffer's waiters live in its header (`process_wait.rs`).
#[inline]
pub(crate) fn wait_in<T: Waitable>(
    buffer: &SharedBuffer,
    element: ElementRef<'_, T>,
    expected: T,
    deadline: Deadline,
) -> Result<WaitResult, Error> {
    match buffer.process_shared() {
        Some(header) => process_wait::wait(buffer, header, element, expected, deadline),
        None => wait_at(element, expected, deadline),
    }
}

/// [`notify`] on a checked element of `buffer`: wakes up to `count` waiters, oldest first.
#[inline]
pub(crate) fn notify_in<T: Waitable>(
    buffer: &SharedBuffer,
    element: ElementRef<'_, T>,
    count: usize,
) -> usize {
    match buffer.process_shared() {
        Some(header) => {
            let offset = process_waiters::offset_in(buffer, &element);
            process_waiters::notify(header, offset, count)
        }
        None => waiter_table::notify(element.address(), count),
    }
}

/// [`wait_in`] for a condition variable's waiter: a `notify` that finds the waiter asleep may
/// move it onto `target`'s waiters (its mutex) instead of waking it, if the target accepts it
/// (`waiter_table::notify`). The second value says whether it was moved: then the notify
/// counted it, and its wait ended (`Ok`) when it was woken as the target's waiter — or with
/// `Err(Terminated)` while it waited there; a moved waiter never times out. On a
/// process-shared buffer, whose waits live in its header, nothing is ever moved.
pub(crate) fn wait_requeueable(
    buffer: &SharedBuffer,
    element: ElementRef<'_, u32>,
    expected: u32,
    deadline: Deadline,
    target: RequeueTarget,
) -> (Result<WaitResult, Error>, bool) {
    if buffer.process_shared().is_some() {
        return (wait_in(buffer, element, expected, deadline), false);
    }
    let waiter = Arc::new(Waiter::for_current_thread(element.address()).requeueing_to(target));
    let result = wait_as(&waiter, element, expected, deadline);
    (result, waiter.was_requeued())
}

/// [`wait`] on a checked element of a private buffer, in the in-process waiter table.
fn wait_at<T: Waitable>(
    element: ElementRef<'_, T>,
    expected: T,
    deadline: Deadline,
) -> Result<WaitResult, Error> {
    let waiter = Arc::new(Waiter::for_current_thread(element.address()));
    wait_as(&waiter, element, expected, deadline)
}

/// [`wait_at`] as `waiter`, made for the calling thread on `element`'s address.
fn wait_as<T: Waitable>(
    waiter: &Arc<Waiter>,
    element: ElementRef<'_, T>,
    expected: T,
    deadline: Deadline,
) -> Result<WaitResult, Error> {
    let interrupters = interrupt::installed();
    if interrupters.any_interrupted() {
        return Err(Error::Terminated);
    }
    if waiter_table::enqueue_if(waiter, || element.load(SeqCst) == expected).is_none() {
        return Ok(WaitResult::NotEqual);
    }
    let _registration = interrupters.register(waiter);
    // Natively a blocked thread times itself out; under loom a model thread plays the clock.
    let timer_entry = match deadline {
        Deadline::At(at) => timer::schedule_blocking(at, waiter),
        _ => None,
    };
    let outcome = block(waiter, deadline);
    if let Some(entry) = timer_entry {
        timer::unschedule(entry);
    }
    match outcome {
        Outcome::Notified => Ok(WaitResult::Ok),
        Outcome::Interrupted => Err(Error::Terminated),
        Outcome::TimedOut | Outcome::Cancelled => Ok(WaitResult::TimedOut),
    }
}

/// Waits until the waiter's outcome is set, timing it out at `deadline`; returns the outcome.
fn block(waiter: &Arc<Waiter>, mut deadline: Deadline) -> Outcome {
    if let Some(outcome) = spin_for_outcome(waiter, deadline) {
        return outcome;
    }
    loop {
        if let Some(outcome) = waiter.outcome() {
            return outcome;
        }
        let timed_out = deadline == Deadline::Expired
            || (waiter.announce_park()
                && shim::park_until(deadline.instant()) == Parked::DeadlinePassed);
        if timed_out {
            match waiter_table::cancel(waiter, Outcome::TimedOut, false) {
                Some(outcome) => return outcome,
                // Requeued: a notify counted it; it waits for its mutex's unlock, untimed.
                None => deadline = Deadline::Never,
            }
        }
        // Wakeups without an outcome (spurious, or a stray unpark) loop back: never `Ok`.
    }
}

/// `Atomics.notify`: wakes up to `count` waiters on element `index` (`None` = all), oldest
/// first, and returns how many it woke (A8, A9). With nobody waiting it takes no lock.
///
/// On a process-shared buffer the waiters of every process that maps it are woken and
/// counted, oldest first across processes (X2).
///
/// Waiters are identified by the element's absolute byte address (A10): views at different
/// offsets over the same bytes, and `i32` and `i64` waiters at the same address, share one list.
///
/// ```
/// use sharedbuf::{atomics, BigInt64Array, SharedBuffer};
/// let view = BigInt64Array::new(&SharedBuffer::new(8)?)?;
/// assert_eq!(atomics::notify(&view, 0, None)?, 0);   // nobody waiting
/// assert!(atomics::notify(&view, 1, None).is_err()); // out of range (A4)
/// # Ok::<(), sharedbuf::Error>(())
/// ```
pub fn notify<T: Waitable>(
    view: &TypedArray<T>,
    index: usize,
    count: Option<usize>,
) -> Result<usize, Error> {
    let element = view.element(index)?;
    Ok(notify_in(
        view.buffer(),
        element,
        count.unwrap_or(usize::MAX),
    ))
}
