//! The bounded spin a lock tries before it queues (parking_lot's `SpinWait`).
//!
//! A lock that is held for a few nanoseconds is usually free again sooner than a thread can
//! go to sleep and be woken (a futex round trip, 30–80 µs on a virtual machine), so a thread
//! that finds it taken first retries a few times: three rounds of 2, 4 and 8 spin hints, then up
//! to seven yields. Callers spin only while nobody is queued (a queue means the lock is held
//! long, and a spinner would only delay the queued threads), never on a single CPU (the holder
//! cannot run meanwhile), and never under loom (where a retry loop is state explosion, not
//! speed).
//!
//! Unlike the waiter table's spin (`atomics/spin.rs`, which never yields), this one does: a
//! thread spinning for a *lock* often waits for a holder it displaced from its own core (a
//! woken thread lands beside its waker when no core is idle — a condition variable's waiter
//! woken under the mutex is the common case), and only a yield lets that holder run and
//! release. Measured under load, dropping the yields made a condvar ping-pong about 1.5x
//! slower.

use crate::shim::{self, LOOM};

/// Rounds of spin hints before the spin starts yielding.
const SPIN_ROUNDS: u32 = 3;
/// Rounds in all.
const ROUNDS: u32 = 10;

/// One bounded spin: call [`Backoff::spin`] between attempts until it returns `false`.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    round: u32,
}

impl Backoff {
    /// A fresh spin.
    pub(crate) fn new() -> Backoff {
        Backoff { round: 0 }
    }

    /// Waits a little (more each round); `false` once the budget is spent or spinning is
    /// pointless (single CPU, loom): then the caller queues.
    #[inline]
    pub(crate) fn spin(&mut self) -> bool {
        if LOOM || self.round >= ROUNDS || shim::cpus() < 2 {
            return false;
        }
        self.round += 1;
        if self.round <= SPIN_ROUNDS {
            for _ in 0..(1u32 << self.round) {
                std::hint::spin_loop();
            }
        } else {
            shim::thread::yield_now();
        }
        true
    }
}
