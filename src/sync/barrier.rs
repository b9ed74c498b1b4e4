//! [`Barrier`]: a reusable barrier in 16 bytes of a [`SharedBuffer`] (docs/semantics.md S1, S3, S6).
//!
//! # Words (16 bytes, aligned to 8; all zero = no arrivals, parties not yet set)
//!
//! | offset | word | who sleeps on it |
//! | --- | --- | --- |
//! | 0 | `state: u64`: generation (24 bits, wrapping) · dropped parties (20) · arrivals (20) | nobody |
//! | 8 | `parties: u32`: set once by the first attach ([`attach::set_once`]) | nobody |
//! | 12 | `sequence: u32`: bumped after each completed generation | waiting parties |
//!
//! # Protocol
//!
//! Every decision is one compare-exchange on `state`; the 64-bit word holds everything a
//! decision needs, and threads sleep on the 32-bit `sequence` word (an eventcount), so the same
//! protocol runs on futexes.
//!
//! - **Arrive** (`wait`): add one arrival. The arrival that makes the arrivals equal to the
//!   expected count (`parties − dropped`) is the generation's leader: in the same
//!   compare-exchange it sets the arrivals to zero and advances the generation, then bumps
//!   `sequence` and wakes every sleeper.
//! - **Wait**: having arrived in generation `g`, read `sequence`, then `state`; a generation
//!   other than `g` means done. Otherwise spin a little, then sleep on `sequence` while it holds
//!   the value read.
//! - **Time out / terminate**: withdraw the arrival with a compare-exchange that requires the
//!   generation to still be `g`. If it has moved, the generation completed with this party in
//!   it, and the party passes (`Ok`) instead.
//! - **Arrive and drop**: one arrival in this generation, and one party fewer in every later
//!   one: add one to `dropped`, completing the generation if the arrivals now equal
//!   `parties − dropped`.
//!
//! # Invariants
//!
//! 1. `arrivals < parties − dropped` between compare-exchanges: reaching it completes the
//!    generation in the same step. So each generation completes exactly once, and exactly one
//!    call (a `wait`, or an `arrive_and_drop`) is its leader.
//! 2. Nobody passes early: a party passes only on seeing the generation it arrived in
//!    completed, and the completing compare-exchange is acquire-release after every arrival of
//!    that generation (all arrivals and withdrawals are read-modify-writes), so everything each
//!    party did before arriving happens-before every party's return.
//! 3. None sleeps forever: the leader bumps `sequence` after completing and before notifying,
//!    so a sleeper sees the bump when its wait checks the value, or is woken (A11).
//! 4. A withdrawn arrival is gone: a generation counts only parties that are still waiting (or
//!    passed), so a timed-out party never lets the others through short of a party.

use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use super::attach;
use super::deadline_after;
use super::spin::Backoff;
use crate::atomics::{SharedWord, SharedWords, WaitResult, Word};
use crate::buffer::SharedBuffer;
use crate::error::Error;
use crate::shim::Ordering::*;

/// Bits of each count (arrivals, dropped parties) in `state`.
const COUNT_BITS: u32 = 20;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const DROPPED_SHIFT: u32 = COUNT_BITS;
const GENERATION_SHIFT: u32 = 2 * COUNT_BITS;
/// One arrival, one dropped party, one generation, as increments of `state`.
const ARRIVAL: u64 = 1;
const DROPPED: u64 = 1 << DROPPED_SHIFT;
const GENERATION: u64 = 1 << GENERATION_SHIFT;

/// Indices of the two 32-bit words in `Barrier::words`.
const PARTIES: usize = 0;
const SEQUENCE: usize = 1;

fn arrivals(state: u64) -> u32 {
    (state & COUNT_MASK) as u32
}

fn dropped(state: u64) -> u32 {
    ((state >> DROPPED_SHIFT) & COUNT_MASK) as u32
}

fn generation(state: u64) -> u64 {
    state >> GENERATION_SHIFT
}

/// `state` with the generation advanced and the arrivals zeroed (dropped parties kept).
fn completed(state: u64) -> u64 {
    // The generation is the top field: the add wraps it without touching the others.
    (state & !COUNT_MASK).wrapping_add(GENERATION)
}

/// A reusable barrier whose state lives in 16 bytes of a [`SharedBuffer`] (like
/// [`std::sync::Barrier`], and C++20's `std::barrier` for [`arrive_and_drop`](Barrier::arrive_and_drop)).
///
/// `parties` threads call [`wait`](Barrier::wait); each blocks until all of them have arrived,
/// then all continue, and exactly one of them is told it is the *leader*. The barrier is then
/// ready for the next generation. Everything a party did before arriving happens-before every
/// party's return.
///
/// - The number of parties is fixed by the first attach and is written exactly once, even when
///   several threads attach at the same moment; attaching with another number is
///   `Err(ParameterMismatch)` (S1).
/// - [`wait_for`](Barrier::wait_for) / [`wait_until`](Barrier::wait_until) give up at a deadline
///   (S3). A party that gives up **withdraws its arrival**: the generation still needs all its
///   parties, and the others keep waiting (nothing is "broken", unlike Java's
///   `CyclicBarrier`). If the generation completed before the withdrawal, the party passed: it
///   gets `Ok(Some(_))`, never a timeout for a generation that counted it.
/// - [`arrive_and_drop`](Barrier::arrive_and_drop) arrives without waiting and leaves: every
///   later generation expects one party fewer. Drops are recorded in the bytes, so they are
///   permanent for every handle.
/// - Inside a worker, a blocked wait returns `Err(Terminated)` when the worker is terminated
///   (S6), having withdrawn its arrival (or `Ok` if its generation had already completed).
/// - A party that panics (or returns) before it arrives is only missing: the others wait for
///   it as for a slow one. Give the waits a deadline, or leave with
///   [`arrive_and_drop`](Barrier::arrive_and_drop) from a drop guard.
///
/// ```
/// use sharedbuf::sync::Barrier;
/// use sharedbuf::{Error, Int32Array, SharedBuffer};
///
/// let buffer = SharedBuffer::new(64)?;
/// let barrier = Barrier::at(&buffer, 0, 3)?; // 3 parties, set once in the bytes
/// let cells = Int32Array::with_range(&buffer, Barrier::BYTES, Some(3))?;
///
/// let threads: Vec<_> = (0..3)
///     .map(|me| {
///         let (barrier, cells) = (barrier.clone(), cells.clone());
///         std::thread::spawn(move || -> Result<bool, Error> {
///             cells.set(me, 1)?; // phase 1
///             let leader = barrier.wait()?.is_leader();
///             assert_eq!(cells.to_vec(), [1, 1, 1]); // every phase-1 write is visible
///             Ok(leader)
///         })
///     })
///     .collect();
/// let mut leaders = 0;
/// for thread in threads {
///     leaders += usize::from(thread.join().unwrap()?);
/// }
/// assert_eq!(leaders, 1);
/// assert!(matches!(Barrier::at(&buffer, 0, 4), Err(Error::ParameterMismatch { .. })));
/// # Ok::<(), Error>(())
/// ```
pub struct Barrier {
    state: SharedWord<u64>,
    /// `parties` and `sequence` (see the module docs).
    words: SharedWords<u32>,
    parties: u32,
    byte_offset: usize,
}

/// What a [`Barrier`] wait returns: whether this party was its generation's leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BarrierWaitResult {
    leader: bool,
}

impl BarrierWaitResult {
    /// Whether this call completed its generation. Exactly one call per generation is.
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

impl Barrier {
    /// Bytes a barrier occupies.
    pub const BYTES: usize = 16;
    /// Alignment its byte offset must have.
    pub const ALIGN: usize = 8;
    /// The most parties a barrier can have (2²⁰ − 1).
    pub const MAX_PARTIES: u32 = COUNT_MASK as u32;

    /// A handle on the barrier of `parties` parties at `byte_offset` of `buffer`.
    ///
    /// All-zero bytes are a barrier nobody has arrived at; the first attach writes `parties`
    /// (exactly once, however many threads attach at the same moment), and every later attach
    /// checks it (S1). Errors: `Err(Misaligned)` unless `byte_offset` is a multiple of
    /// [`ALIGN`](Barrier::ALIGN); `Err(RangeOutOfBounds)` unless its [`BYTES`](Barrier::BYTES)
    /// bytes lie in the buffer; `Err(CountOutOfRange)` unless `parties` is in
    /// `1..=`[`MAX_PARTIES`](Barrier::MAX_PARTIES); `Err(ParameterMismatch)` if the bytes
    /// already hold another number of parties.
    pub fn at(buffer: &SharedBuffer, byte_offset: usize, parties: u32) -> Result<Barrier, Error> {
        attach::check(buffer, byte_offset, Self::BYTES, Self::ALIGN)?;
        let valid = NonZeroU32::new(parties).filter(|p| p.get() <= Self::MAX_PARTIES);
        let Some(valid) = valid else {
            return Err(Error::CountOutOfRange {
                count: "barrier parties",
                value: i64::from(parties),
                min: 1,
                max: i64::from(Self::MAX_PARTIES),
            });
        };
        let barrier = Barrier::attached(buffer, byte_offset, parties)?;
        attach::set_once(barrier.words.get(PARTIES), "parties", valid)?;
        Ok(barrier)
    }

    /// The handle on a checked place, without writing or checking the parties word (the
    /// attach that made the first handle did).
    fn attached(buffer: &SharedBuffer, byte_offset: usize, parties: u32) -> Result<Barrier, Error> {
        Ok(Barrier {
            state: SharedWord::at(buffer, byte_offset)?,
            words: SharedWords::at(buffer, byte_offset + 8, 2)?,
            parties,
            byte_offset,
        })
    }

    /// The byte offset of the barrier in its buffer.
    pub fn byte_offset(&self) -> usize {
        self.byte_offset
    }

    /// The buffer the barrier lives in.
    pub fn buffer(&self) -> &SharedBuffer {
        self.words.buffer()
    }

    /// The number of parties it was created with.
    pub fn parties(&self) -> u32 {
        self.parties
    }

    /// The parties each generation now expects: [`parties`](Barrier::parties) minus those that
    /// left with [`arrive_and_drop`](Barrier::arrive_and_drop).
    pub fn expected(&self) -> u32 {
        self.parties
            .saturating_sub(dropped(self.state().load(Relaxed)))
    }

    /// Arrives, and blocks until every party of this generation has arrived.
    ///
    /// `Err(Terminated)` if the thread's interrupter fires while it waits (S6); its arrival is
    /// then withdrawn. `Err(CountOutOfRange)` if every party has left with
    /// [`arrive_and_drop`](Barrier::arrive_and_drop).
    pub fn wait(&self) -> Result<BarrierWaitResult, Error> {
        match self.wait_until_option(None)? {
            Some(result) => Ok(result),
            None => unreachable!("a wait without a deadline never times out"),
        }
    }

    /// [`wait`](Barrier::wait), giving up after `timeout`: `Ok(None)` if the generation did not
    /// complete in time, and then this party's arrival has been withdrawn (S3).
    pub fn wait_for(&self, timeout: Duration) -> Result<Option<BarrierWaitResult>, Error> {
        self.wait_until_option(deadline_after(timeout))
    }

    /// [`wait`](Barrier::wait), giving up at `deadline`: `Ok(None)` if the generation did not
    /// complete by then, and then this party's arrival has been withdrawn (S3).
    pub fn wait_until(&self, deadline: Instant) -> Result<Option<BarrierWaitResult>, Error> {
        self.wait_until_option(Some(deadline))
    }

    /// Arrives in this generation without waiting, and leaves the barrier: every later
    /// generation expects one party fewer (C++20's `arrive_and_drop`). Returns whether this
    /// arrival completed the generation (it is then its leader).
    /// `Err(CountOutOfRange)` if every party has already left.
    pub fn arrive_and_drop(&self) -> Result<BarrierWaitResult, Error> {
        let mut state = self.state().load(Relaxed);
        loop {
            let expected = self.expected_in(state)?;
            let leader = arrivals(state) + 1 >= expected;
            let next = if leader {
                completed(state) + DROPPED
            } else {
                state + DROPPED
            };
            match self.state().compare_exchange(state, next, AcqRel) {
                Ok(_) => {
                    if leader {
                        self.wake_all();
                    }
                    return Ok(BarrierWaitResult { leader });
                }
                Err(actual) => state = actual,
            }
        }
    }

    fn state(&self) -> Word<'_, u64> {
        self.state.get()
    }

    fn sequence(&self) -> Word<'_, u32> {
        self.words.get(SEQUENCE)
    }

    /// The parties `state`'s generation expects; `Err` if every party has left.
    fn expected_in(&self, state: u64) -> Result<u32, Error> {
        match self.parties.saturating_sub(dropped(state)) {
            0 => Err(Error::CountOutOfRange {
                count: "barrier parties remaining",
                value: 0,
                min: 1,
                max: i64::from(self.parties),
            }),
            expected => Ok(expected),
        }
    }

    fn wait_until_option(
        &self,
        deadline: Option<Instant>,
    ) -> Result<Option<BarrierWaitResult>, Error> {
        let mut state = self.state().load(Relaxed);
        let arrived_in = loop {
            let expected = self.expected_in(state)?;
            if arrivals(state) + 1 >= expected {
                // The last arrival: complete the generation (invariant 1).
                match self
                    .state()
                    .compare_exchange(state, completed(state), AcqRel)
                {
                    Ok(_) => {
                        self.wake_all();
                        return Ok(Some(BarrierWaitResult { leader: true }));
                    }
                    Err(actual) => state = actual,
                }
            } else {
                match self
                    .state()
                    .compare_exchange(state, state + ARRIVAL, AcqRel)
                {
                    Ok(_) => break generation(state),
                    Err(actual) => state = actual,
                }
            }
        };
        let passed = Some(BarrierWaitResult { leader: false });
        let mut backoff = Backoff::new();
        loop {
            // Eventcount: the sequence before the state, so a completion after this state load
            // moves the sequence before it wakes (invariant 3).
            let sequence = self.sequence().load(Acquire);
            if generation(self.state().load(Acquire)) != arrived_in {
                return Ok(passed);
            }
            if backoff.spin() {
                continue;
            }
            match self.sequence().wait_until(sequence, deadline) {
                Ok(WaitResult::TimedOut) => {
                    return Ok(if self.withdraw(arrived_in) {
                        passed
                    } else {
                        None
                    });
                }
                Ok(_) => {}
                Err(error) => {
                    return if self.withdraw(arrived_in) {
                        Ok(passed) // the generation completed first: this party passed
                    } else {
                        Err(error)
                    };
                }
            }
        }
    }

    /// Takes back an arrival in generation `arrived_in`, unless that generation has completed:
    /// `true` if it had (the party passed), `false` if the arrival was withdrawn.
    fn withdraw(&self, arrived_in: u64) -> bool {
        let mut state = self.state().load(Acquire);
        loop {
            if generation(state) != arrived_in {
                return true;
            }
            // Saturating only against bytes written from outside the protocol (invariant 1
            // keeps this party's arrival counted).
            let next = if arrivals(state) > 0 {
                state - ARRIVAL
            } else {
                state
            };
            match self.state().compare_exchange(state, next, AcqRel) {
                Ok(_) => return false,
                Err(actual) => state = actual,
            }
        }
    }

    /// The leader's wake: bump the sequence, then wake everyone sleeping on it.
    fn wake_all(&self) {
        self.sequence().fetch_add(1, Release);
        self.sequence().notify(None);
    }
}

impl Clone for Barrier {
    fn clone(&self) -> Barrier {
        // Re-attaching cannot fail: the place was checked, and buffers never shrink. Not
        // through `at`: the parties word is not checked again, so a clone never fails (nor
        // panics) on bytes overwritten since (the handle keeps the parties it was made with).
        Barrier::attached(self.buffer(), self.byte_offset, self.parties)
            .expect("a checked place stays valid")
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state().load(Relaxed);
        f.debug_struct("Barrier")
            .field("byte_offset", &self.byte_offset)
            .field("parties", &self.parties)
            .field("dropped", &dropped(state))
            .field("arrivals", &arrivals(state))
            .finish()
    }
}
