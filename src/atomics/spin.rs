//! The bounded, adaptive spin a blocked waiter does before parking.
//!
//! Waking a parked thread costs a futex syscall on both sides, and on a virtual machine waking
//! an idle core costs 30–80 µs; a handoff to a thread that is still running costs well under a
//! microsecond. So a waiter, once enqueued, watches its *own* outcome word for a short while
//! before it parks (never the watched value: that would let a plain store end the wait, which A7
//! forbids). The notifier sees the waiter has not parked and skips the unpark entirely.
//!
//! The spin is bounded in time and yields the CPU after a few iterations, so it never starves
//! the thread it is waiting for; its budget adapts per thread: it doubles when spinning paid off
//! and halves when the waiter had to park anyway, so threads that wait long stop burning CPU.
//! A yield that gives the core away (the machine is oversubscribed) ends the spin at once:
//! then a futex wake, which the kernel favours, beats waiting for a timeslice.
//! Nothing is spun on a single-CPU machine, nor under loom (where parking is the model).

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::deadline::Deadline;
use super::waiter::{Outcome, Waiter};
use crate::shim::{self, LOOM};

const MIN_BUDGET: Duration = Duration::from_micros(1);
const INITIAL_BUDGET: Duration = Duration::from_micros(20);
const MAX_BUDGET: Duration = Duration::from_micros(50);
/// A `yield_now` that takes this long means another thread ran meanwhile.
const DESCHEDULED: Duration = Duration::from_micros(10);
/// Iterations of pure `spin_loop` before the spin starts yielding the CPU.
const BUSY_ITERATIONS: u32 = 64;

shim::thread_local_static! {
    static BUDGET: Cell<Duration> = Cell::new(INITIAL_BUDGET);
}

/// Returns the waiter's outcome if it arrives within the spin budget, else `None`.
pub(crate) fn spin_for_outcome(waiter: &Waiter, deadline: Deadline) -> Option<Outcome> {
    if let Some(outcome) = waiter.outcome() {
        return Some(outcome);
    }
    if LOOM || shim::cpus() < 2 {
        return None;
    }
    let budget = BUDGET.with(Cell::get);
    let start = Instant::now();
    let end = match deadline {
        Deadline::Expired => return None,
        Deadline::Never => start + budget,
        Deadline::At(at) => at.min(start + budget),
    };
    let mut iteration = 0u32;
    loop {
        if let Some(outcome) = waiter.outcome() {
            BUDGET.with(|b| b.set((budget * 2).min(MAX_BUDGET)));
            return Some(outcome);
        }
        if iteration < BUSY_ITERATIONS {
            std::hint::spin_loop();
        } else {
            let before = Instant::now();
            shim::thread::yield_now();
            if before.elapsed() >= DESCHEDULED {
                // The yield gave the core away: the machine is oversubscribed, and the thread
                // we wait for may not even be running. Parking is cheaper now (the kernel
                // favours a woken sleeper; a yielder waits for a timeslice).
                BUDGET.with(|b| b.set((budget / 2).max(MIN_BUDGET)));
                return None;
            }
        }
        iteration += 1;
        if iteration % 8 == 0 && Instant::now() >= end {
            BUDGET.with(|b| b.set((budget / 2).max(MIN_BUDGET)));
            return None;
        }
    }
}
