//! [`Latch`]: a countdown latch / wait group in two words of a [`SharedBuffer`] (docs/semantics.md S1,
//! S3, S6).
//!
//! # Words (8 bytes, aligned to 4; all zero = count zero)
//!
//! | offset | word | who sleeps on it |
//! | --- | --- | --- |
//! | 0 | `count: u32`: the count | nobody |
//! | 4 | `epoch: u32`: how many times the count reached zero (wrapping) | waiters |
//!
//! # Protocol
//!
//! - **Count up / down**: one compare-exchange on `count`, refused (nothing changed) if it would
//!   leave `0..=u32::MAX`. The count-down that reaches zero then bumps `epoch` and wakes every
//!   sleeper on it.
//! - **Wait** (an eventcount): read `epoch`, then `count`; zero means done. Otherwise sleep on
//!   `epoch` while it holds the value read first, and return as soon as it differs: the count
//!   reached zero at some moment after the wait began, even if it has been counted up again
//!   since (so a waiter never misses a zero it was waiting for).
//!
//! # Invariants
//!
//! 1. `count` changes only by checked compare-exchanges: it never wraps, and a refused change
//!    changes nothing.
//! 2. No waiter passes before zero: `epoch` moves only after a count-down has made `count` zero,
//!    and a waiter returns only on reading `count == 0` or a moved `epoch`. The count-downs are
//!    acquire-release read-modify-writes and the epoch bump a release, so everything done before
//!    each count-down happens-before the waiter's return.
//! 3. None sleeps forever after: the zero-maker bumps `epoch` *before* it notifies, so a waiter
//!    either sees the bump when it checks the value under the waiter-table lock, or is woken
//!    (A11).

use std::fmt;
use std::time::{Duration, Instant};

use super::attach;
use super::deadline_after;
use crate::atomics::{SharedWords, WaitResult, Word};
use crate::buffer::SharedBuffer;
use crate::error::Error;
use crate::shim::Ordering::*;

/// Indices of the two words in `Latch::words`.
const COUNT: usize = 0;
const EPOCH: usize = 1;

/// A countdown latch, or wait group, whose state lives in 8 bytes of a [`SharedBuffer`].
///
/// It holds a count, zero in a fresh buffer (S1). [`count_up(n)`](Latch::count_up) adds `n` (a
/// task started), [`count_down()`](Latch::count_down) subtracts one (a task finished), and
/// [`wait()`](Latch::wait) blocks until the count is zero; [`wait_for`](Latch::wait_for) /
/// [`wait_until`](Latch::wait_until) give up at a deadline (S3). Everything a thread did before
/// its `count_down` happens-before the return of a `wait` that saw the zero it led to.
///
/// Like Go's `sync.WaitGroup`, the latch can be reused: counting up from zero starts a new
/// round. A wait that began before the count reached zero returns even if the count has been
/// raised again by the time it wakes. Counting down below zero, or up past `u32::MAX`, is
/// `Err(CountOutOfRange)` and changes nothing.
///
/// Inside a worker, a blocked wait returns `Err(Terminated)` when the worker is terminated (S6).
///
/// The latch cannot tell a task that is slow from one that panicked (or returned early) before
/// its `count_down`: the waiters then wait for a zero that never comes. Count down from a drop
/// guard in a task that may unwind, or wait with a deadline.
///
/// ```
/// use sharedbuf::sync::Latch;
/// use sharedbuf::{Error, SharedBuffer};
///
/// let buffer = SharedBuffer::new(64)?;
/// let done = Latch::at(&buffer, 0)?; // a fresh buffer: count zero
/// done.count_up(3)?;
/// let threads: Vec<_> = (0..3)
///     .map(|_| {
///         let done = done.clone();
///         std::thread::spawn(move || done.count_down())
///     })
///     .collect();
/// done.wait()?; // until all three counted down
/// assert_eq!(done.count(), 0);
/// for thread in threads {
///     thread.join().unwrap()?;
/// }
/// assert!(done.count_down().is_err()); // below zero
/// # Ok::<(), Error>(())
/// ```
pub struct Latch {
    /// `count` and `epoch` (see the module docs).
    words: SharedWords<u32>,
    byte_offset: usize,
}

impl Latch {
    /// Bytes a latch occupies.
    pub const BYTES: usize = 8;
    /// Alignment its byte offset must have.
    pub const ALIGN: usize = 4;

    /// A handle on the latch at `byte_offset` of `buffer`. All-zero bytes are a latch whose
    /// count is zero, so attaching writes nothing, and every handle at the same offset is the
    /// same latch (S1).
    ///
    /// `Err(Misaligned)` unless `byte_offset` is a multiple of [`ALIGN`](Latch::ALIGN);
    /// `Err(RangeOutOfBounds)` unless its [`BYTES`](Latch::BYTES) bytes lie in the buffer.
    pub fn at(buffer: &SharedBuffer, byte_offset: usize) -> Result<Latch, Error> {
        attach::check(buffer, byte_offset, Self::BYTES, Self::ALIGN)?;
        Ok(Latch {
            words: SharedWords::at(buffer, byte_offset, 2)?,
            byte_offset,
        })
    }

    /// The byte offset of the latch in its buffer.
    pub fn byte_offset(&self) -> usize {
        self.byte_offset
    }

    /// The buffer the latch lives in.
    pub fn buffer(&self) -> &SharedBuffer {
        self.words.buffer()
    }

    /// The count now. Only a snapshot.
    pub fn count(&self) -> u32 {
        self.count_word().load(Acquire)
    }

    /// Adds `n` to the count. `Err(CountOutOfRange)`, changing nothing, if it would exceed
    /// `u32::MAX`.
    pub fn count_up(&self, n: u32) -> Result<(), Error> {
        self.change(|count| count.checked_add(n), i64::from(n))
            .map(drop)
    }

    /// Subtracts one from the count; the count-down that reaches zero wakes every waiter.
    /// `Err(CountOutOfRange)`, changing nothing, if the count is already zero.
    pub fn count_down(&self) -> Result<(), Error> {
        self.count_down_by(1)
    }

    /// Subtracts `n` from the count in one step (C++'s `latch::count_down(n)`); the one that
    /// reaches zero wakes every waiter. `Err(CountOutOfRange)`, changing nothing, if the count
    /// is below `n`. `n == 0` changes nothing and wakes nobody.
    ///
    /// ```
    /// use sharedbuf::sync::Latch;
    /// use sharedbuf::SharedBuffer;
    ///
    /// let buffer = SharedBuffer::new(Latch::BYTES)?;
    /// let latch = Latch::at(&buffer, 0)?;
    /// latch.count_up(5)?;
    /// latch.count_down_by(3)?;
    /// assert!(latch.count_down_by(3).is_err()); // only 2 left: nothing changes
    /// latch.count_down_by(2)?;
    /// assert_eq!(latch.count(), 0);
    /// latch.wait()?; // zero: returns at once
    /// # Ok::<(), sharedbuf::Error>(())
    /// ```
    pub fn count_down_by(&self, n: u32) -> Result<(), Error> {
        if n == 0 {
            return Ok(());
        }
        if self.change(|count| count.checked_sub(n), -i64::from(n))? == 0 {
            self.epoch().fetch_add(1, Release);
            self.epoch().notify(None);
        }
        Ok(())
    }

    /// Blocks until the count is zero (at once if it is). `Err(Terminated)` if the thread's
    /// interrupter fires while it waits (S6).
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_until_option(None).map(drop)
    }

    /// [`wait`](Latch::wait), giving up after `timeout`: `Ok(true)` once the count was zero,
    /// `Ok(false)` if it was not in time (S3).
    pub fn wait_for(&self, timeout: Duration) -> Result<bool, Error> {
        self.wait_until_option(deadline_after(timeout))
    }

    /// [`wait`](Latch::wait), giving up at `deadline`: `Ok(true)` once the count was zero,
    /// `Ok(false)` if it was not by then (S3).
    pub fn wait_until(&self, deadline: Instant) -> Result<bool, Error> {
        self.wait_until_option(Some(deadline))
    }

    fn count_word(&self) -> Word<'_, u32> {
        self.words.get(COUNT)
    }

    fn epoch(&self) -> Word<'_, u32> {
        self.words.get(EPOCH)
    }

    /// Applies `step` to the count with a compare-exchange loop; returns the new count, or
    /// `Err(CountOutOfRange)` (nothing changed) if `step` finds it out of range.
    fn change(&self, step: impl Fn(u32) -> Option<u32>, delta: i64) -> Result<u32, Error> {
        let mut count = self.count_word().load(Relaxed);
        loop {
            let Some(next) = step(count) else {
                return Err(Error::CountOutOfRange {
                    count: "latch count",
                    value: i64::from(count) + delta,
                    min: 0,
                    max: i64::from(u32::MAX),
                });
            };
            match self.count_word().compare_exchange(count, next, AcqRel) {
                Ok(_) => return Ok(next),
                Err(actual) => count = actual,
            }
        }
    }

    fn wait_until_option(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        // The epoch first: a zero reached after this load moves it (invariant 2).
        let start = self.epoch().load(Acquire);
        if self.count_word().load(Acquire) == 0 {
            return Ok(true);
        }
        loop {
            let outcome = self.epoch().wait_until(start, deadline)?;
            if self.epoch().load(Acquire) != start {
                return Ok(true);
            }
            if outcome == WaitResult::TimedOut {
                // A last look: it may have reached zero without the epoch moving yet.
                return Ok(self.count_word().load(Acquire) == 0);
            }
            // Woken by a stray notify on these bytes: the epoch has not moved, wait again.
        }
    }
}

impl Clone for Latch {
    fn clone(&self) -> Latch {
        // Re-attaching cannot fail: the place was checked, and buffers never shrink.
        Latch::at(self.buffer(), self.byte_offset).expect("a checked place stays valid")
    }
}

impl fmt::Debug for Latch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latch")
            .field("byte_offset", &self.byte_offset)
            .field("count", &self.count())
            .finish()
    }
}
