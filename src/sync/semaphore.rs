//! [`Semaphore`]: a counting semaphore in one word of a [`SharedBuffer`] (docs/semantics.md S1, S3, S5,
//! S6).
//!
//! # Word (4 bytes, aligned to 4; all zero = no permits, nobody waiting)
//!
//! `state: u32` = `permits << 2 | HEIR | WAITING`; threads sleep on it.
//!
//! # Protocol
//!
//! Every decision is one compare-exchange on `state`, so all threads' decisions are totally
//! ordered and the permit count is changed only by whole, checked steps.
//!
//! - **Acquire `n`**: subtract `n` from the permits if there are at least `n` and no other
//!   thread is the heir (fast path: one compare-exchange). Otherwise spin a little (only while
//!   nobody waits), then set `WAITING` and sleep on `state` while it holds that value.
//! - **Release `n`**: add `n` to the permits, clearing `WAITING` in the same compare-exchange;
//!   if `WAITING` was set, wake every sleeper (`notify(None)`). Waiters want different numbers of
//!   permits, and the word cannot say which of them the new permits satisfy, so all of them look
//!   and the ones that cannot proceed set `WAITING` again and sleep.
//! - **The heir** (bounded unfairness, S5): barging lets small acquires take permits as fast as
//!   they are released, so a large acquire could wait forever. A waiter that has slept and
//!   waited past [`STARVATION`] (1 ms) sets `HEIR` if no heir is pending. While `HEIR` is set,
//!   nobody but the heir takes permits (fast path, waiters and `try_acquire` alike), so released
//!   permits accumulate until the heir has its `n`. The heir clears `HEIR` when it takes its
//!   permits, or when it gives up (timeout, terminate); if permits are left over and `WAITING`
//!   is set, it clears `WAITING` too and wakes every sleeper, which `HEIR` may have held back.
//!
//! # Invariants
//!
//! 1. Conservation: the permits change only by an acquire's compare-exchange subtracting the
//!    `n` it saw available, or a release's adding its `n` (refused, with nothing changed, if the
//!    sum would pass [`Semaphore::MAX_PERMITS`]).
//! 2. No lost wakeup: a thread sleeps only on a value with `WAITING` set. `WAITING` is cleared
//!    only in a compare-exchange that is followed by `notify(None)`, and every change that can
//!    let a sleeper proceed (more permits; `HEIR` cleared while permits remain) either clears
//!    `WAITING` so, or leaves it set for the next release. A sleeper's check-and-sleep is atomic
//!    with respect to `notify` (A11): it sees the changed word, or it is woken.
//! 3. `HEIR` set ⇒ exactly one thread is the heir, inside an acquire call, and only it clears
//!    `HEIR`.
//! 4. `WAITING` may be stale: a waiter that gives up (timeout, terminate) cannot know whether
//!    others sleep, so it leaves the flag; the next release then clears it with a `notify`
//!    that finds nobody (no lock taken, A8). Spinning is skipped while it is set.

use std::fmt;
use std::time::{Duration, Instant};

use super::attach;
use super::deadline_after;
use super::spin::Backoff;
use crate::atomics::{SharedWords, WaitResult, Word};
use crate::buffer::SharedBuffer;
use crate::error::Error;
use crate::shim::{Ordering::*, LOOM};

/// `state`: some thread sleeps on the word (or is about to); the next release wakes them all.
const WAITING: u32 = 1;
/// `state`: a starving waiter is pending; nobody else takes permits until it has its own.
const HEIR: u32 = 2;
/// The permits occupy the bits from here up.
const SHIFT: u32 = 2;

/// How long a waiter waits before it becomes the heir (the mutex's starvation threshold, after
/// Go's). Under loom, where time does not pass, a waiter that has slept once qualifies, so the
/// models explore the heir too.
const STARVATION: Duration = Duration::from_millis(1);

fn permits(state: u32) -> u32 {
    state >> SHIFT
}

/// A counting semaphore whose state lives in 4 bytes of a [`SharedBuffer`].
///
/// The semaphore holds a number of permits, zero in a fresh buffer (S1).
/// [`release(n)`](Semaphore::release) adds `n`; [`acquire(n)`](Semaphore::acquire) waits until
/// it can take `n` at once; [`try_acquire`](Semaphore::try_acquire) never waits and
/// [`acquire_for`](Semaphore::acquire_for) / [`acquire_until`](Semaphore::acquire_until) give up
/// at a deadline (S3). Permits are plain counts, not guards: any thread (later, any process) may
/// release permits another one acquired. A release happens-before the acquire that takes its
/// permits.
///
/// **Fairness (S5).** Acquires barge: a running thread may take permits ahead of a sleeping
/// one, which is what keeps an uncontended semaphore at one compare-exchange. But an acquire
/// that has waited about 1 ms becomes the semaphore's *heir* (one at a time): from then on no
/// other acquire, however small, takes permits until the heir has taken its `n` or given up. So
/// a large acquire is never starved by a stream of small ones, as long as the permits it asks
/// for are eventually released: while it waits as heir, the semaphore queues everyone behind it
/// (the head-of-line blocking every fair semaphore has, e.g. tokio's). Several starving waiters
/// become heir one after another, in no guaranteed order.
///
/// Inside a worker, a blocked acquire returns `Err(Terminated)` when the worker is terminated
/// (S6), having taken nothing.
///
/// ```
/// use sharedbuf::sync::Semaphore;
/// use sharedbuf::{Error, SharedBuffer};
///
/// let buffer = SharedBuffer::new(64)?;
/// let slots = Semaphore::at(&buffer, 0)?; // a fresh buffer: zero permits
/// slots.release(2)?;
///
/// let worker = {
///     let slots = slots.clone();
///     std::thread::spawn(move || -> Result<(), Error> {
///         slots.acquire(3)?; // waits for the third permit
///         slots.release(3)
///     })
/// };
/// assert!(!slots.try_acquire(3)?);
/// slots.release(1)?;
/// worker.join().unwrap()?;
/// assert_eq!(slots.available(), 3);
/// # Ok::<(), Error>(())
/// ```
pub struct Semaphore {
    /// One word (`SharedWords`, which knows its buffer).
    state: SharedWords<u32>,
    byte_offset: usize,
}

impl Semaphore {
    /// Bytes a semaphore occupies.
    pub const BYTES: usize = 4;
    /// Alignment its byte offset must have.
    pub const ALIGN: usize = 4;
    /// The most permits a semaphore can hold (2³⁰ − 1).
    pub const MAX_PERMITS: u32 = u32::MAX >> SHIFT;

    /// A handle on the semaphore at `byte_offset` of `buffer`. All-zero bytes are a semaphore
    /// with no permits, so attaching writes nothing, and every handle at the same offset is the
    /// same semaphore (S1).
    ///
    /// `Err(Misaligned)` unless `byte_offset` is a multiple of [`ALIGN`](Semaphore::ALIGN);
    /// `Err(RangeOutOfBounds)` unless its [`BYTES`](Semaphore::BYTES) bytes lie in the buffer.
    pub fn at(buffer: &SharedBuffer, byte_offset: usize) -> Result<Semaphore, Error> {
        attach::check(buffer, byte_offset, Self::BYTES, Self::ALIGN)?;
        Ok(Semaphore {
            state: SharedWords::at(buffer, byte_offset, 1)?,
            byte_offset,
        })
    }

    /// The byte offset of the semaphore in its buffer.
    pub fn byte_offset(&self) -> usize {
        self.byte_offset
    }

    /// The buffer the semaphore lives in.
    pub fn buffer(&self) -> &SharedBuffer {
        self.state.buffer()
    }

    /// The permits available now. Only a snapshot; while an heir is pending, permits may be
    /// available yet reserved for it.
    pub fn available(&self) -> u32 {
        permits(self.state().load(Relaxed))
    }

    /// Blocks until `n` permits can be taken at once, then takes them. `acquire(0)` returns at
    /// once.
    ///
    /// `Err(CountOutOfRange)` if `n` exceeds [`MAX_PERMITS`](Semaphore::MAX_PERMITS) (it could
    /// never be satisfied); `Err(Terminated)` if the thread's interrupter fires while it waits
    /// (a worker's `terminate()`, S6).
    pub fn acquire(&self, n: u32) -> Result<(), Error> {
        self.acquire_until_option(n, None).map(drop)
    }

    /// Takes `n` permits if they are available now and no starving acquire has reserved them:
    /// `Ok(true)` if taken, `Ok(false)` if not. Never blocks. `Err(CountOutOfRange)` if `n`
    /// exceeds [`MAX_PERMITS`](Semaphore::MAX_PERMITS).
    pub fn try_acquire(&self, n: u32) -> Result<bool, Error> {
        check_request(n)?;
        if n == 0 {
            return Ok(true);
        }
        let mut state = self.state().load(Relaxed);
        while permits(state) >= n && state & HEIR == 0 {
            match self
                .state()
                .compare_exchange(state, state - (n << SHIFT), Acquire)
            {
                Ok(_) => return Ok(true),
                Err(actual) => state = actual,
            }
        }
        Ok(false)
    }

    /// [`acquire`](Semaphore::acquire), giving up after `timeout`: `Ok(false)` if the permits
    /// could not be taken in time, and then none were taken (S3). A zero timeout does not sleep.
    pub fn acquire_for(&self, n: u32, timeout: Duration) -> Result<bool, Error> {
        self.acquire_until_option(n, deadline_after(timeout))
    }

    /// [`acquire`](Semaphore::acquire), giving up at `deadline`: `Ok(false)` if the permits
    /// could not be taken by then, and then none were taken (S3).
    pub fn acquire_until(&self, n: u32, deadline: Instant) -> Result<bool, Error> {
        self.acquire_until_option(n, Some(deadline))
    }

    /// Adds `n` permits and wakes the waiters. A release happens-before the acquires that take
    /// its permits. `Err(CountOutOfRange)`, adding nothing, if the permits would exceed
    /// [`MAX_PERMITS`](Semaphore::MAX_PERMITS).
    pub fn release(&self, n: u32) -> Result<(), Error> {
        if n == 0 {
            return Ok(());
        }
        let mut state = self.state().load(Relaxed);
        loop {
            let total = u64::from(permits(state)) + u64::from(n);
            if total > u64::from(Self::MAX_PERMITS) {
                return Err(permits_error(total as i64));
            }
            // `total` fits in the permit bits, so this neither overflows nor touches the flags.
            let next = (state & !WAITING) + (n << SHIFT);
            match self.state().compare_exchange(state, next, Release) {
                Ok(_) => {
                    if state & WAITING != 0 {
                        self.state().notify(None);
                    }
                    return Ok(());
                }
                Err(actual) => state = actual,
            }
        }
    }

    fn state(&self) -> Word<'_, u32> {
        self.state.get(0)
    }

    fn acquire_until_option(&self, n: u32, deadline: Option<Instant>) -> Result<bool, Error> {
        check_request(n)?;
        if n == 0 {
            return Ok(true); // even past a reservation: it takes nothing
        }
        // Fast path: nobody reserved them and they are there.
        let state = self.state().load(Relaxed);
        if permits(state) >= n
            && state & HEIR == 0
            && self
                .state()
                .compare_exchange(state, state - (n << SHIFT), Acquire)
                .is_ok()
        {
            return Ok(true);
        }
        Acquirer::new(self, n).acquire(deadline)
    }
}

/// `Err(CountOutOfRange)` for a request no semaphore could ever satisfy.
fn check_request(n: u32) -> Result<(), Error> {
    if n > Semaphore::MAX_PERMITS {
        return Err(Error::CountOutOfRange {
            count: "semaphore permits asked for",
            value: i64::from(n),
            min: 0,
            max: i64::from(Semaphore::MAX_PERMITS),
        });
    }
    Ok(())
}

fn permits_error(total: i64) -> Error {
    Error::CountOutOfRange {
        count: "semaphore permits",
        value: total,
        min: 0,
        max: i64::from(Semaphore::MAX_PERMITS),
    }
}

/// One blocked acquire's part in the protocol (see the module docs).
struct Acquirer<'a> {
    semaphore: &'a Semaphore,
    n: u32,
    /// Has set `HEIR`: only this acquire may take permits, and it must clear `HEIR` on leaving.
    heir: bool,
    /// Has slept at least once (only such a waiter may become the heir).
    slept: bool,
    since: Instant,
}

impl<'a> Acquirer<'a> {
    fn new(semaphore: &'a Semaphore, n: u32) -> Acquirer<'a> {
        Acquirer {
            semaphore,
            n,
            heir: false,
            slept: false,
            since: Instant::now(),
        }
    }

    fn state(&self) -> Word<'a, u32> {
        self.semaphore.state()
    }

    /// Waits for the permits: `true` once taken, `false` if `deadline` passed first (nothing
    /// taken, `HEIR` withdrawn).
    fn acquire(&mut self, deadline: Option<Instant>) -> Result<bool, Error> {
        let mut backoff = Backoff::new();
        let mut timed_out = false;
        let mut state = self.state().load(Relaxed);
        loop {
            let reserved = state & HEIR != 0 && !self.heir;
            if permits(state) >= self.n && !reserved {
                match self.take(state) {
                    Ok(()) => return Ok(true),
                    Err(actual) => {
                        state = actual;
                        continue;
                    }
                }
            }
            // The deadline is noticed only by the sleep (natively and under loom alike).
            if timed_out {
                self.leave();
                return Ok(false);
            }
            if !self.slept && state & (WAITING | HEIR) == 0 && backoff.spin() {
                state = self.state().load(Relaxed);
                continue;
            }
            let becomes_heir = !self.heir
                && self.slept
                && state & HEIR == 0
                && (LOOM || self.since.elapsed() >= STARVATION);
            let mut next = state | WAITING;
            if becomes_heir {
                next |= HEIR;
            }
            if next != state {
                if let Err(actual) = self.state().compare_exchange(state, next, Relaxed) {
                    state = actual;
                    continue;
                }
                if becomes_heir {
                    // It could not take the permits before, so it sleeps now, as heir.
                    self.heir = true;
                }
            }
            self.slept = true;
            match self.state().wait_until(next, deadline) {
                // One more look at the state before giving up (the loop's top).
                Ok(WaitResult::TimedOut) => timed_out = true,
                Ok(_) => {}
                Err(error) => {
                    self.leave();
                    return Err(error);
                }
            }
            state = self.state().load(Relaxed);
        }
    }

    /// Takes the permits from `state` (which has enough); as heir, also clears `HEIR` and wakes
    /// the sleepers it held back if permits are left over. `Err(actual)` if the word changed.
    fn take(&mut self, state: u32) -> Result<(), u32> {
        let mut next = state - (self.n << SHIFT);
        let mut wake = false;
        if self.heir {
            next &= !HEIR;
            wake = next & WAITING != 0 && permits(next) > 0;
            if wake {
                next &= !WAITING;
            }
        }
        self.state().compare_exchange(state, next, Acquire)?;
        self.heir = false;
        if wake {
            self.state().notify(None);
        }
        Ok(())
    }

    /// Leaves without permits (deadline passed, or terminated): as heir, withdraws `HEIR` and
    /// wakes the sleepers it held back if permits are available.
    fn leave(&mut self) {
        if !self.heir {
            return;
        }
        self.heir = false;
        let mut state = self.state().load(Relaxed);
        loop {
            // Only the heir clears `HEIR`, but a peer may have written the word meanwhile (S7):
            // then there is nothing to withdraw, and the wake below still runs.
            let mut next = state & !HEIR;
            let wake = next & WAITING != 0 && permits(next) > 0;
            if wake {
                next &= !WAITING;
            }
            match self.state().compare_exchange(state, next, Relaxed) {
                Ok(_) => {
                    if wake {
                        self.state().notify(None);
                    }
                    return;
                }
                Err(actual) => state = actual,
            }
        }
    }
}

impl Clone for Semaphore {
    fn clone(&self) -> Semaphore {
        // Re-attaching cannot fail: the place was checked, and buffers never shrink.
        Semaphore::at(self.buffer(), self.byte_offset).expect("a checked place stays valid")
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("byte_offset", &self.byte_offset)
            .field("available", &self.available())
            .finish()
    }
}
