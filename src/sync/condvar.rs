//! [`Condvar`]: a condition variable in 8 bytes of a [`SharedBuffer`] (docs/semantics.md S1, S3, S4, S6).
//!
//! # Words (8 bytes, aligned to 4; all zero = nobody waiting)
//!
//! | offset | word | |
//! | --- | --- | --- |
//! | 0 | `sequence: u32` | bumped by every notify that finds waiters; waiters sleep on it |
//! | 4 | `waiters: u32` | threads between registering in `wait` and returning from its sleep |
//!
//! # Protocol
//!
//! - **wait** (mutex held): `waiters += 1`, read `sequence`, unlock the mutex, sleep on
//!   `sequence` while it holds the value read, `waiters -= 1`, lock the mutex again.
//! - **notify(n)**: if `waiters` is 0, return 0; else bump `sequence` and wake (or requeue, see
//!   below) up to `n` sleepers through the waiter table, returning how many it woke (TC39
//!   `Atomics.Condition.notify`).
//!
//! No notify is lost between the unlock and the sleep (S4): the sequence is read *before* the
//! unlock, so a notify in that window has changed it by the time the waiter goes to sleep, and
//! the sleep returns at once (a wakeup not counted by that notify, which is allowed: a condition
//! variable may wake spuriously). A notify after the sleep began finds the waiter in the table.
//!
//! The count a notify returns is the waiter table's: a waiter is counted exactly when its sleep
//! returns `Ok`, so a waiter whose timeout races the notify that picked it is either counted and
//! reports "not timed out", or times out and is not counted — never both (the bug V8 shipped in
//! `Atomics.Condition`; `loom-tests/sync_condvar_timeout.rs` checks it).
//!
//! # Requeue (one wakeup per handoff)
//!
//! A waiter notified while its mutex is held — usually by the notifying thread, which then
//! unlocks — would wake, find the mutex held, and sleep again until the unlock: two wakeups,
//! and on a loaded machine three context switches per handoff. So a waiter sleeps with its
//! mutex's state word as its *requeue target*, and a notify that finds it asleep moves it onto
//! the mutex's waiters instead of waking it, if the mutex is held at that moment (the waiter
//! table's FUTEX_CMP_REQUEUE, `atomics/waiter_table.rs`; the mutex counts it as one of its
//! own waiters in the same step, see `Mutex::lock_requeued`). The mutex's unlock then wakes
//! it, with the lock free, as the mutex's waiter holding the baton. A moved waiter was counted
//! by the notify, so from then on it no longer times out: it reports "not timed out", and
//! only its mutex's unlock or a terminate (`Err(Terminated)`, leaving the mutex's queue) ends
//! its wait. A notify with the mutex free wakes as before.
//!
//! In a process-shared buffer (condition variable or mutex) nothing is moved: the waits live
//! in the buffer's header and are woken as described above.
//!
//! Skipping the notify when `waiters` is 0 is sound for the usual discipline (the condition is
//! changed with the mutex held, before the notify): a waiter registers before it unlocks, so a
//! notifier that took the mutex after that sees the registration.

use std::fmt;
use std::time::{Duration, Instant};

use super::attach;
use super::deadline_after;
use super::lock_result::LockResult;
use super::mutex::MutexGuard;
use crate::atomics::{SharedWords, WaitResult, Word};
use crate::buffer::SharedBuffer;
use crate::error::Error;
use crate::shim::{
    self,
    Ordering::{Acquire, Relaxed, Release},
};

const SEQUENCE: usize = 0;
const WAITERS: usize = 1;

/// A condition variable whose state lives in 8 bytes of a [`SharedBuffer`] (docs/semantics.md S4),
/// used with a [`Mutex`](super::Mutex) of the same or another buffer.
///
/// - [`wait`](Condvar::wait) releases the mutex, sleeps until notified, and takes the mutex
///   again; it may also return without a notification (a spurious wakeup), so wait in a loop, or
///   use [`wait_while`](Condvar::wait_while), which returns only once its condition is false.
/// - [`wait_for`](Condvar::wait_for) / [`wait_until`](Condvar::wait_until) also give up at a
///   deadline and say whether they did (S3); the mutex is always taken again before they return.
/// - [`notify(n)`](Condvar::notify), [`notify_one`](Condvar::notify_one) and
///   [`notify_all`](Condvar::notify_all) return how many waiters they woke.
/// - Change the condition with the mutex held (as with any condition variable): a notify is
///   never lost then, including one sent between a waiter's unlock and its sleep.
/// - The results are [`LockResult`]s, as `std::sync::Condvar`'s: taking the mutex again may
///   find that its holder died meanwhile (process-shared buffers, X3), and then the guard
///   comes back in `Err(LockError::OwnerDied(guard))`. On `Err(Failed(_))` (`Terminated`: the
///   waiting thread's worker was terminated, S6) the guard is gone and the mutex is not held.
/// - Call [`mark_consistent`](MutexGuard::mark_consistent) before waiting with a guard that
///   came with `OwnerDied`: the wait releases the mutex, which retires a lock still
///   inconsistent.
///
/// ```
/// use sharedbuf::sync::{Condvar, Mutex};
/// use sharedbuf::{atomics, Int32Array, SharedBuffer};
///
/// let buffer = SharedBuffer::new(32)?;
/// let mutex = Mutex::at(&buffer, 0)?;
/// let ready = Condvar::at(&buffer, Mutex::BYTES)?;
/// let flag = Int32Array::with_range(&buffer, Mutex::BYTES + Condvar::BYTES, Some(1))?;
///
/// let (m, cv, f) = (mutex.clone(), ready.clone(), flag.clone());
/// let waiter = std::thread::spawn(move || -> Result<(), sharedbuf::Error> {
///     let guard = m.lock()?;
///     let _guard = cv.wait_while(guard, |_| atomics::load(&f, 0).unwrap() == 0)?;
///     Ok(())
/// });
///
/// {
///     let _guard = mutex.lock()?;
///     atomics::store(&flag, 0, 1)?;
/// }
/// ready.notify_all(); // 0 or 1: the waiter may not have gone to sleep yet
/// waiter.join().unwrap()?;
/// # Ok::<(), sharedbuf::Error>(())
/// ```
pub struct Condvar {
    words: SharedWords<u32>,
    byte_offset: usize,
}

/// Whether a timed [`Condvar`] wait gave up at its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` if the wait ended because its deadline passed (and, for the `wait_while` forms,
    /// the condition still held), `false` if it was notified or woke otherwise.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    /// Bytes a condition variable occupies.
    pub const BYTES: usize = 8;
    /// Alignment its byte offset must have.
    pub const ALIGN: usize = 4;

    /// A handle on the condition variable at `byte_offset` of `buffer`. All-zero bytes are a
    /// condition variable nobody waits on, so attaching writes nothing (S1).
    ///
    /// `Err(Misaligned)` unless `byte_offset` is a multiple of [`ALIGN`](Condvar::ALIGN);
    /// `Err(RangeOutOfBounds)` unless its [`BYTES`](Condvar::BYTES) bytes lie in the buffer.
    pub fn at(buffer: &SharedBuffer, byte_offset: usize) -> Result<Condvar, Error> {
        attach::check(buffer, byte_offset, Self::BYTES, Self::ALIGN)?;
        Ok(Condvar {
            words: SharedWords::at(buffer, byte_offset, 2)?,
            byte_offset,
        })
    }

    /// The byte offset of the condition variable in its buffer.
    pub fn byte_offset(&self) -> usize {
        self.byte_offset
    }

    /// The buffer the condition variable lives in.
    pub fn buffer(&self) -> &SharedBuffer {
        self.words.buffer()
    }

    #[inline]
    fn sequence(&self) -> Word<'_, u32> {
        self.words.get(SEQUENCE)
    }

    #[inline]
    fn waiters(&self) -> Word<'_, u32> {
        self.words.get(WAITERS)
    }

    /// Releases `guard`'s mutex, sleeps until notified (or woken spuriously), and takes the
    /// mutex again.
    ///
    /// `Err(Failed(Terminated))` if the thread's interrupter fires while it sleeps or relocks
    /// (a worker's `terminate()`, S6); the mutex is then not held. `Err(OwnerDied(guard))` if
    /// the mutex's holder died meanwhile (X3): the mutex is held again, with the news.
    pub fn wait<'a>(&self, guard: MutexGuard<'a>) -> LockResult<MutexGuard<'a>> {
        self.sleep(guard, None)
            .map(|(guard, _)| guard)
            .map_err(|error| error.map(|(guard, _)| guard))
    }

    /// [`wait`](Condvar::wait) until `condition` returns `false`: returns at once if it already
    /// does, and never because of a spurious wakeup (S4). `condition` runs with the mutex held
    /// (never on data a dead holder left: `OwnerDied` returns at once).
    pub fn wait_while<'a, F>(
        &self,
        mut guard: MutexGuard<'a>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a>>
    where
        F: FnMut(&mut MutexGuard<'a>) -> bool,
    {
        while condition(&mut guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// [`wait`](Condvar::wait), giving up after `timeout`; the mutex is held again either way.
    pub fn wait_for<'a>(
        &self,
        guard: MutexGuard<'a>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a>, WaitTimeoutResult)> {
        self.sleep(guard, deadline_after(timeout))
    }

    /// [`wait`](Condvar::wait), giving up at `deadline`; the mutex is held again either way.
    /// A waiter notified just as its deadline passes reports `timed_out() == false` exactly when
    /// the notify counted it.
    pub fn wait_until<'a>(
        &self,
        guard: MutexGuard<'a>,
        deadline: Instant,
    ) -> LockResult<(MutexGuard<'a>, WaitTimeoutResult)> {
        self.sleep(guard, Some(deadline))
    }

    /// [`wait_while`](Condvar::wait_while), giving up after `timeout`: `timed_out()` is `true`
    /// when the deadline passed and `condition` still holds.
    pub fn wait_while_for<'a, F>(
        &self,
        guard: MutexGuard<'a>,
        timeout: Duration,
        condition: F,
    ) -> LockResult<(MutexGuard<'a>, WaitTimeoutResult)>
    where
        F: FnMut(&mut MutexGuard<'a>) -> bool,
    {
        self.sleep_while(guard, deadline_after(timeout), condition)
    }

    /// [`wait_while`](Condvar::wait_while), giving up at `deadline`: `timed_out()` is `true`
    /// when the deadline passed and `condition` still holds.
    pub fn wait_while_until<'a, F>(
        &self,
        guard: MutexGuard<'a>,
        deadline: Instant,
        condition: F,
    ) -> LockResult<(MutexGuard<'a>, WaitTimeoutResult)>
    where
        F: FnMut(&mut MutexGuard<'a>) -> bool,
    {
        self.sleep_while(guard, Some(deadline), condition)
    }

    /// Wakes up to `count` waiters, oldest first; returns how many it woke (TC39's
    /// `Atomics.Condition.notify`).
    pub fn notify(&self, count: usize) -> usize {
        if count == 0 || self.waiters().load(Relaxed) == 0 {
            return 0;
        }
        self.sequence().fetch_add(1, Release);
        self.sequence().notify(Some(count))
    }

    /// Wakes one waiter; returns how many it woke (0 or 1).
    pub fn notify_one(&self) -> usize {
        self.notify(1)
    }

    /// Wakes every waiter; returns how many it woke.
    pub fn notify_all(&self) -> usize {
        self.notify(usize::MAX)
    }

    fn sleep_while<'a, F>(
        &self,
        mut guard: MutexGuard<'a>,
        deadline: Option<Instant>,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a>, WaitTimeoutResult)>
    where
        F: FnMut(&mut MutexGuard<'a>) -> bool,
    {
        while condition(&mut guard) {
            let (relocked, result) = self.sleep(guard, deadline)?;
            guard = relocked;
            if result.timed_out() {
                let still = condition(&mut guard);
                return Ok((guard, WaitTimeoutResult(still)));
            }
        }
        Ok((guard, WaitTimeoutResult(false)))
    }

    /// The one wait: register, read the sequence, unlock, sleep, unregister, relock.
    fn sleep<'a>(
        &self,
        guard: MutexGuard<'a>,
        deadline: Option<Instant>,
    ) -> LockResult<(MutexGuard<'a>, WaitTimeoutResult)> {
        let registration = Registration::new(self.waiters());
        // Read before the unlock: a notify after the unlock changes it (see the module docs).
        let sequence = self.sequence().load(Acquire);
        let mutex = guard.release();
        let (slept, requeued) = match mutex.requeue_target() {
            Some(target) => self.sequence().wait_requeueable(sequence, deadline, target),
            None => (self.sequence().wait_until(sequence, deadline), false),
        };
        drop(registration);
        if requeued {
            // Counted by a notify, which moved it onto the mutex's waiters: it no longer timed
            // out, and the unlock that woke it passed it the baton (see the module docs). Only
            // private buffers requeue, so no holder can have died (no `OwnerDied` here).
            let guard = mutex.lock_requeued(slept.map(drop))?;
            return Ok((guard, WaitTimeoutResult(false)));
        }
        let timed_out = WaitTimeoutResult(slept? == WaitResult::TimedOut);
        match mutex.lock() {
            Ok(guard) => Ok((guard, timed_out)),
            Err(error) => Err(error.map(|guard| (guard, timed_out))),
        }
    }
}

/// A waiter's place in the `waiters` count, given back however the wait ends.
struct Registration<'a>(Word<'a, u32>);

impl<'a> Registration<'a> {
    fn new(waiters: Word<'a, u32>) -> Registration<'a> {
        waiters.fetch_add(1, Relaxed);
        Registration(waiters)
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // a failed loom model: see `shim::model_is_unwinding`
        }
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Clone for Condvar {
    fn clone(&self) -> Condvar {
        // Re-attaching cannot fail: the place was checked, and buffers never shrink.
        Condvar::at(self.buffer(), self.byte_offset).expect("a checked place stays valid")
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar")
            .field("byte_offset", &self.byte_offset)
            .field("waiters", &self.waiters().load(Relaxed))
            .finish()
    }
}
