//! The bounded spin a lock tries before it queues (parking_lot's `SpinWait`).
//!
//! A lock that is held for a few nanoseconds is usually free again sooner than a thread can
//! go to sleep and be woken (a futex round trip, 30–80 µs on a virtual machine), so a thread
//! that finds it taken first retries a few times: three rounds of 2, 4 and 8 spin hints, then up
//! to seven yields (a lock just found held waits longer before its first re-read:
//! [`Backoff::settled`]). Most callers spin only while nobody is queued (a queue means the
//! lock is held long, and a spinner would only delay the queued threads); the private
//! `Mutex` spins whatever its queue, whose waiters stay counted until they hold the lock (see
//! `Mutex::spin_then_take`). None spins on a single CPU (the holder cannot run meanwhile), nor
//! under loom (where a retry loop is state explosion, not speed).
//!
//! Unlike the waiter table's spin (`atomics/spin.rs`, which never yields), this one does: a
//! thread spinning for a *lock* often waits for a holder it displaced from its own core (a
//! woken thread lands beside its waker when no core is idle — a condition variable's waiter
//! woken under the mutex is the common case), and only a yield lets that holder run and
//! release. Measured under load, dropping the yields made a condvar ping-pong about 1.5x
//! slower.

use std::fmt;
use std::time::{Duration, Instant};

use super::expired;
use crate::atomics::{is_interrupted, SharedWord};
use crate::error::Error;
use crate::shim::{self, LOOM};

/// Rounds of spin hints before the spin starts yielding.
const SPIN_ROUNDS: u32 = 3;
/// Spin hints a [`Backoff::settled`] spin waits before it first reads the word again.
const SETTLE: u32 = 64;
/// Rounds in all.
const ROUNDS: u32 = 10;

/// One bounded spin: call [`Backoff::spin`] between attempts until it returns `false`.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    round: u32,
    /// The first round waits [`SETTLE`] spin hints.
    settle: bool,
}

impl Backoff {
    /// A fresh spin.
    pub(crate) fn new() -> Backoff {
        Backoff {
            round: 0,
            settle: false,
        }
    }

    /// A fresh spin for a lock just found held, whose first round waits longer: a locker that
    /// re-reads the word at once pulls its cache line away just as the holder's release needs
    /// it, and so often wins the lock by that very release: the lock then changes cores on a
    /// large share of acquires, and every acquire pays the line's trip. Waiting first lets a
    /// holder that is in a tight loop release and take the lock again on its own core
    /// (measured, 2 threads on 2 cores: the lock changed hands on 12-15 % of acquires without
    /// this, about 1 % with it, as parking_lot's does; throughput doubled).
    pub(crate) fn settled() -> Backoff {
        Backoff {
            round: 0,
            settle: true,
        }
    }

    /// Whether the next [`spin`](Backoff::spin) would yield (the spin hints are spent and the
    /// budget is not): a caller that bounds its wait by time reads the clock there, beside a
    /// system call, never between spin hints.
    #[inline]
    pub(crate) fn yields_next(&self) -> bool {
        (SPIN_ROUNDS..ROUNDS).contains(&self.round)
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
            let hints = if self.settle && self.round == 1 {
                SETTLE
            } else {
                1u32 << self.round
            };
            for _ in 0..hints {
                std::hint::spin_loop();
            }
        } else {
            shim::thread::yield_now();
        }
        true
    }
}

/// Yields before [`Poll`] starts sleeping.
const POLL_YIELDS: u32 = 16;
/// [`Poll`]'s first sleep, doubled each time up to [`POLL_MAX_SLEEP`].
const POLL_FIRST_SLEEP: Duration = Duration::from_millis(1);
const POLL_MAX_SLEEP: Duration = Duration::from_millis(32);

/// Waits between looks at a word a caller cannot sleep on: its waiter count is full (millions
/// of waiters), or holds garbage a peer wrote (docs/semantics.md S7). Yields a few times, then
/// sleeps 1 ms, doubling to 32 ms, never past the caller's deadline: a poll that lasts (garbage
/// that looks held for ever) costs a sleeping thread, never a spinning core.
///
/// The sleeps are waits on a private word of the poll's own that nobody notifies, so the
/// calling thread's interrupter (a worker's `terminate()`) ends them as it ends any other wait
/// (S6). It is not the primitive's own word: a waiter asleep on that word uncounted could take
/// the wake an unlock meant for a counted one.
#[derive(Default)]
pub(crate) struct Poll {
    yields: u32,
    sleep: Option<Duration>,
    /// The word the sleeps wait on, made at the first sleep; `None` until then, and for good
    /// if it could not be made (out of memory or descriptors: the poll then sleeps plainly and
    /// looks at the interrupter between sleeps).
    word: Option<SharedWord<u32>>,
}

impl Poll {
    /// A fresh poll.
    pub(crate) fn new() -> Poll {
        Poll::default()
    }

    /// Waits a little (more each time), then `Ok` to look again; `Err`, at once, if
    /// `deadline` has passed or the thread's interrupter fired (before or during the wait).
    pub(crate) fn pause(&mut self, deadline: Option<Instant>) -> Result<(), Stop> {
        if expired(deadline) {
            return Err(Stop::TimedOut);
        }
        if is_interrupted() {
            return Err(Stop::Failed(Error::Terminated));
        }
        if LOOM || self.yields < POLL_YIELDS {
            self.yields = self.yields.saturating_add(1);
            shim::thread::yield_now();
            return Ok(());
        }
        let sleep = self
            .sleep
            .map_or(POLL_FIRST_SLEEP, |last| (last * 2).min(POLL_MAX_SLEEP));
        self.sleep = Some(sleep);
        let wake_at = Instant::now() + sleep;
        let wake_at = deadline.map_or(wake_at, |at| at.min(wake_at));
        if self.word.is_none() {
            self.word = SharedWord::new().ok();
        }
        match &self.word {
            // Nobody notifies or changes this word: the wait ends by its time or an interrupt.
            Some(word) => {
                word.get()
                    .wait_until(0, Some(wake_at))
                    .map_err(Stop::Failed)?;
            }
            None => std::thread::sleep(wake_at.saturating_duration_since(Instant::now())),
        }
        Ok(())
    }
}

/// Why a [`Poll::pause`] stopped the caller's wait.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The caller's deadline passed.
    TimedOut,
    /// The wait failed: `Terminated`, the thread's interrupter fired (S6).
    Failed(Error),
}

impl Stop {
    /// What the caller returns: `Ok(timed_out)` for a deadline, `Err` for a failure.
    pub(crate) fn into_result<T>(self, timed_out: T) -> Result<T, Error> {
        match self {
            Stop::TimedOut => Ok(timed_out),
            Stop::Failed(error) => Err(error),
        }
    }
}

impl fmt::Debug for Poll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poll")
            .field("yields", &self.yields)
            .field("sleep", &self.sleep)
            .finish_non_exhaustive()
    }
}
