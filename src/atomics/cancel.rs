//! Ending a wait from outside its own blocking loop — an interrupt, the timer, a dropped
//! future — wherever the waiter waits: in the in-process waiter table, or in its slot of a
//! process-shared buffer's header.
//!
//! Interrupters and the timer know waiters, not where they wait: this is where that is
//! decided. It sits above the table (`waiter_table.rs`) and the slots (`process_waiters.rs`),
//! and below the interrupters and the timer, which the waits themselves use.

use super::outcome::Outcome;
use super::process_waiters::{Resolution, SlotRef};
use super::waiter::Waiter;
use super::waiter_table;
use crate::shim::Arc;

/// Takes `waiter` out of its queue with `outcome` (timed out, interrupted, cancelled) unless
/// `notify` already did. Returns the waiter's final outcome: `outcome`, or `Notified` when the
/// notify won the race (then it was counted, and the caller must report `Ok`). With `wake`, the
/// waiter's thread or task is woken (used when someone other than the waiter cancels it); a
/// panicking waker unwinds out of here, with the waiter already out of its queue.
///
/// `None` (and nothing changes) for a timeout of a requeued waiter: a notify counted it when
/// it moved it, so it no longer times out (see [`waiter_table::cancel`]).
#[inline]
pub(crate) fn cancel(waiter: &Arc<Waiter>, outcome: Outcome, wake: bool) -> Option<Outcome> {
    match waiter.process_slot() {
        // A wait on a process-shared buffer: decided in its slot, not in the table. This is
        // how interrupters and the timer, which only know waiters, reach such a wait.
        Some(slot) => Some(cancel_in_slot(waiter, slot, outcome, wake)),
        None => waiter_table::cancel(waiter, outcome, wake),
    }
}

/// Takes `waiter` (whose slot is `slot`) out of the queue with `outcome`, unless a notify
/// already did (then `Notified`, and the caller must report `Ok`): how an interrupter, the
/// timer or a dropped future ends a process-shared wait. With `wake`, a future's task is woken.
fn cancel_in_slot(waiter: &Arc<Waiter>, slot: &SlotRef, outcome: Outcome, wake: bool) -> Outcome {
    let resolution = slot.resolve(outcome);
    let outcome = match resolution {
        Resolution::Resolved { .. } | Resolution::Lost => outcome,
        Resolution::Already(first) => first,
    };
    match waiter.doorbell() {
        Some(doorbell) => doorbell.finish(waiter, slot, outcome, wake),
        None => {
            if matches!(
                resolution,
                Resolution::Resolved { was_parked: true } | Resolution::Lost
            ) {
                slot.wake_owner();
            }
            outcome
        }
    }
}
