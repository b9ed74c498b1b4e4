//! `wait` on a process-shared buffer, for a blocked thread: it claims a slot in the buffer's
//! header, publishes it, checks the value, and sleeps on the slot's own futex until a notify
//! from any process, its timeout or an interrupt takes the slot out of the queue
//! (docs/semantics.md X2, X5). The slots' protocol, and the no-lost-wakeup handshake with
//! `notify` this follows, are in `process_waiters.rs`.

use super::deadline::Deadline;
use super::interrupt;
use super::outcome::{Outcome, WaitResult};
use super::process_waiters::{lost, offset_in, Claimed, Resolution, Seen, SlotRef, NO_LINK};
use super::spin::spin_until;
use super::timer;
use super::waiter::Waiter;
use crate::buffer::SharedBuffer;
use crate::element::Waitable;
use crate::error::Error;
use crate::region::Header;
use crate::shim::{Arc, Ordering, Parked, LOOM};
use crate::view::ElementRef;

/// [`super::wait()`] on a process-shared buffer whose header is `header`.
pub(crate) fn wait<T: Waitable>(
    buffer: &SharedBuffer,
    header: &Header,
    element: ElementRef<'_, T>,
    expected: T,
    deadline: Deadline,
) -> Result<WaitResult, Error> {
    let interrupters = interrupt::installed();
    if interrupters.any_interrupted() {
        return Err(Error::Terminated);
    }
    if element.load(Ordering::SeqCst) != expected {
        return Ok(WaitResult::NotEqual);
    }
    let offset = offset_in(buffer, &element);
    let queued = Claimed::new(buffer, header, offset, NO_LINK)?.publish();
    if element.load(Ordering::SeqCst) != expected {
        // Withdraw, unless a notify took the slot in the meantime (module docs).
        return match queued.slot_ref().resolve(Outcome::Cancelled) {
            Resolution::Already(Outcome::Notified) => Ok(WaitResult::Ok),
            Resolution::Lost => Err(lost()),
            _ => Ok(WaitResult::NotEqual),
        };
    }
    let waiter = Arc::new(
        Waiter::for_current_thread(element.address())
            .in_process_slot(queued.slot_ref().clone(), None),
    );
    let registration = interrupters.register(&waiter);
    // Natively the thread times itself out; under loom a model thread plays the clock.
    let timer_entry = match deadline {
        Deadline::At(at) => timer::schedule_blocking(at, &waiter),
        _ => None,
    };
    let outcome = block(queued.slot_ref(), deadline, &interrupters);
    if let Some(entry) = timer_entry {
        timer::unschedule(entry);
    }
    drop(registration);
    drop(queued);
    match outcome? {
        Outcome::Notified => Ok(WaitResult::Ok),
        Outcome::Interrupted => Err(Error::Terminated),
        Outcome::TimedOut | Outcome::Cancelled => Ok(WaitResult::TimedOut),
    }
}

/// Waits until the slot is out of the queue, timing it out at `deadline`: spins on the slot
/// briefly, then sleeps on its futex.
///
/// Any process may notify, but only this one interrupts or times out its own waits, so an
/// outcome other than `Notified` that this wait did not cause (none of its interrupters fired,
/// its deadline has not passed) was written by another process: `Err(BadHeader)`, not an
/// `Err(Terminated)` or a `TimedOut` made up by garbage (docs/semantics.md X5).
fn block(
    slot: &SlotRef,
    deadline: Deadline,
    interrupters: &interrupt::Installed,
) -> Result<Outcome, Error> {
    let check = |outcome: Outcome| {
        let caused = match outcome {
            Outcome::Notified => true,
            Outcome::Interrupted => interrupters.any_interrupted(),
            // Under loom the model's timer times waits out, whatever the clock says.
            Outcome::TimedOut => LOOM || deadline.has_passed(),
            Outcome::Cancelled => false,
        };
        if caused {
            Ok(outcome)
        } else {
            Err(lost())
        }
    };
    let probe = || match slot.seen() {
        Seen::Queued { .. } => None,
        Seen::Resolved(outcome) => Some(check(outcome)),
        Seen::Lost => Some(Err(lost())),
    };
    if let Some(ended) = spin_until(probe, deadline) {
        return ended;
    }
    loop {
        match slot.seen() {
            Seen::Resolved(outcome) => return check(outcome),
            Seen::Lost => return Err(lost()),
            Seen::Queued { parked } => {
                if deadline == Deadline::Expired {
                    return time_out(slot, check);
                }
                if !parked && !slot.announce_park() {
                    continue; // resolved meanwhile (or lost): look again
                }
                if slot.sleep(deadline) == Parked::DeadlinePassed {
                    return time_out(slot, check);
                }
                // Woken, or a spurious return: look again.
            }
        }
    }
}

/// Times the slot out, unless something else took it out first (then that outcome stands,
/// if `check` accepts it).
fn time_out(
    slot: &SlotRef,
    check: impl Fn(Outcome) -> Result<Outcome, Error>,
) -> Result<Outcome, Error> {
    match slot.resolve(Outcome::TimedOut) {
        Resolution::Resolved { .. } => Ok(Outcome::TimedOut),
        Resolution::Already(outcome) => check(outcome),
        Resolution::Lost => Err(lost()),
    }
}
