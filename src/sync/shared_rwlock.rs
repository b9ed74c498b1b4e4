//! The [`RwLock`] protocol on a process-shared buffer: a write lock that survives its holder's
//! death (docs/semantics.md X3).
//!
//! The readers' side and every decision on `state` are those of `rwlock.rs`. What changes is
//! how a writer takes and gives back the lock. In a private buffer it sets `WRITER` and then
//! records its token in `owner`; between processes a writer killed between those two steps
//! would leave a write lock held by nobody anyone can check. So here a writer **claims the
//! owner word first** — one compare-exchange from `NONE` to its identity (`owner.rs`) — and
//! only then sets `WRITER`; it clears `WRITER` before it gives the claim back. A claim that
//! cannot set `WRITER` (readers are in) is given back at once.
//!
//! - **A dead writer**: a reader or writer that finds `WRITER` set asks whether the owner
//!   word's identity is dead (`liveness.rs`: before sleeping, and whenever a sleep slice
//!   ends). If so it replaces that identity with its own by compare-exchange — exactly one
//!   contender wins — and now holds the write lock: `Err(LockError::OwnerDied(write_guard))`,
//!   for a reader too (it is the one that must repair the data). A dead identity found
//!   *without* `WRITER` only held a claim in passing (it died while taking or giving back the
//!   lock, outside the data): the winner gives the claim back and carries on.
//! - **Not recoverable**: an inconsistent write guard released writes `NOT_RECOVERABLE` into
//!   the owner word, leaves `WRITER` set for ever, and wakes every waiting reader and writer;
//!   each of them, and every later `read` or `write`, returns `Err(NotRecoverable)`.
//! - **Dead waiters and readers** cannot be named (the state only counts them): a process that
//!   dies holding a *read* lock leaves the lock read-held for ever (writers wait until their
//!   deadline); one that dies *waiting* leaves a count behind, which makes new readers defer
//!   to a writer that will never come for up to a slice each (a reader that has slept once no
//!   longer defers). A read phase whose woken readers died is ended by a waiting writer when a
//!   slice of its sleep ends with no reader in.
//!
//! # Invariants (beyond those of `rwlock.rs`)
//!
//! 5. `WRITER` set ⇒ the owner word names the writer: the owner word is claimed before
//!    `WRITER` is set and given back after it is cleared, and only the claimant sets or clears
//!    `WRITER`. So a takeover from a dead identity while `WRITER` is set takes over exactly
//!    the write lock that thread held.
//! 6. A claim without `WRITER` lasts a few instructions of a live thread (taking, or giving
//!    back): a writer that meets one looks again (`spin::Poll`: yields, then sleeps, never past
//!    its deadline), and takes it over if its holder is dead.
//! 7. No waiter sleeps longer than a slice without looking at the owner word again, so none
//!    sleeps for ever on a dead writer.

use std::time::Instant;

use super::liveness::{self, Slices};
use super::mutex::Acquired;
use super::owner::{NONE, NOT_RECOVERABLE};
use super::rwlock::{
    nobody_waiting, read_lockable, readers, waiting_readers, waiting_writers_full, write_lockable,
    Entry, RwLock, ONE_READER, ONE_WAITING_READER, ONE_WAITING_WRITER, READERS_MASK, READ_PHASE,
    WAITING_READERS_MASK, WRITER,
};
use super::spin::{Backoff, Poll};
use crate::atomics::WaitResult;
use crate::error::Error;
use crate::shim::Ordering::*;

/// What one claim-and-take attempt did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    /// The write lock is the caller's.
    Taken,
    /// Another thread holds the claim (invariant 6).
    Busy,
    /// The state did not allow a writer in; the claim was given back.
    NotLockable,
}

impl RwLock {
    /// The write fast path: takes the write lock for `me` if it is free now.
    #[inline]
    pub(super) fn shared_try_claim_write(&self, me: u64) -> bool {
        write_lockable(self.state().load(Relaxed)) && self.claim_and_take(me, false) == Claim::Taken
    }

    /// Claims the owner word for `me`, then sets `WRITER` (uncounting a waiting writer if
    /// `registered`) while the state allows a writer in; gives the claim back if not.
    fn claim_and_take(&self, me: u64, registered: bool) -> Claim {
        if self.owner().compare_exchange(NONE, me, Acquire).is_err() {
            return Claim::Busy;
        }
        let mut state = self.state().load(Relaxed);
        loop {
            if !write_lockable(state) {
                self.unclaim(me);
                return Claim::NotLockable;
            }
            let mut next = state | WRITER;
            if registered {
                next = next.wrapping_sub(ONE_WAITING_WRITER);
            }
            match self.state().compare_exchange(state, next, Acquire) {
                Ok(_) => return Claim::Taken,
                Err(actual) => state = actual,
            }
        }
    }

    /// Gives back `me`'s claim on the owner word.
    fn unclaim(&self, me: u64) {
        let _ = self.owner().compare_exchange(me, NONE, Release);
    }

    /// Looks at the owner word on behalf of `me`: `Err(NotRecoverable)` for a retired lock;
    /// `Some(OwnerDied)` if it named a dead thread holding the write lock, which is now `me`'s;
    /// `None` otherwise (a dead thread's passing claim is taken and given back).
    pub(super) fn shared_inspect_writer(&self, me: u64) -> Result<Option<Acquired>, Error> {
        let holder = self.owner().load(Acquire);
        if holder == NOT_RECOVERABLE {
            return Err(Error::NotRecoverable);
        }
        if holder == NONE || holder == me || !liveness::is_dead(holder) {
            return Ok(None);
        }
        if self.owner().compare_exchange(holder, me, Acquire).is_err() {
            return Ok(None); // another contender took it over first
        }
        // Invariant 5: nobody but the claimant (now `me`) changes `WRITER`.
        if self.state().load(Acquire) & WRITER != 0 {
            return Ok(Some(Acquired::OwnerDied));
        }
        self.unclaim(me);
        Ok(None)
    }

    /// The slow path of a blocking read in a process-shared buffer (`rwlock.rs`'s, plus the
    /// look at a writer's liveness and sleeps of at most a slice).
    #[cold]
    pub(super) fn shared_read_contended(
        &self,
        me: u64,
        deadline: Option<Instant>,
    ) -> Result<Entry, Error> {
        self.check_relock(me)?;
        if self.spin_then_read() {
            return Ok(Entry::Read);
        }
        let mut registered = false;
        let mut waited = false;
        let mut slices = Slices::new();
        let mut poll = Poll::new();
        let uncount = |registered: bool| {
            if registered {
                self.state().fetch_sub(ONE_WAITING_READER, Relaxed);
            }
        };
        loop {
            // Eventcount: the sequence before the state (see `rwlock.rs`).
            let sequence = self.readers_sequence().load(Acquire);
            let state = self.state().load(Relaxed);
            if read_lockable(state, waited) {
                let mut next = state + ONE_READER;
                if registered {
                    next = next.wrapping_sub(ONE_WAITING_READER);
                }
                if self.state().compare_exchange(state, next, Acquire).is_ok() {
                    return Ok(Entry::Read);
                }
                continue;
            }
            if state & WRITER != 0 {
                match self.shared_inspect_writer(me) {
                    Ok(None) => {}
                    Ok(Some(_)) => {
                        uncount(registered);
                        return Ok(Entry::OwnerDied);
                    }
                    Err(error) => {
                        uncount(registered);
                        return Err(error);
                    }
                }
            }
            if readers(state) == READERS_MASK
                || (!registered
                    && waiting_readers(state) == WAITING_READERS_MASK / ONE_WAITING_READER)
            {
                // No room to count one more (or the bytes were overwritten): poll, asleep
                // between looks (S7).
                if let Err(stop) = poll.pause(deadline) {
                    uncount(registered);
                    return stop.into_result(Entry::TimedOut);
                }
                continue;
            }
            if !registered {
                let next = state + ONE_WAITING_READER;
                if self.state().compare_exchange(state, next, Relaxed).is_err() {
                    continue;
                }
                registered = true;
            }
            match self
                .readers_sequence()
                .wait_until(sequence, slices.until(deadline))
            {
                Ok(WaitResult::TimedOut) if Slices::deadline_passed(deadline) => {
                    uncount(true);
                    return Ok(Entry::TimedOut);
                }
                // Woken, moved on, or a slice ended: a reader that has slept no longer defers
                // to waiting writers (they may be dead, invariant 7 and the module docs).
                Ok(_) => waited = true,
                Err(error) => {
                    uncount(true);
                    return Err(error);
                }
            }
        }
    }

    /// The slow path of a blocking write in a process-shared buffer: `Some` once `me` holds
    /// the write lock, `None` if `deadline` passed first. (The relock check is done.)
    #[cold]
    pub(super) fn shared_write_contended(
        &self,
        me: u64,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired>, Error> {
        let mut backoff = Backoff::new();
        loop {
            let state = self.state().load(Relaxed);
            if write_lockable(state) && self.claim_and_take(me, false) == Claim::Taken {
                return Ok(Some(Acquired::Clean));
            }
            if !nobody_waiting(state) || !backoff.spin() {
                break;
            }
        }
        let mut registered = false;
        let mut slice_ended = false;
        let mut slices = Slices::new();
        let mut poll = Poll::new();
        loop {
            let sequence = self.writers_sequence().load(Acquire);
            let state = self.state().load(Relaxed);
            if write_lockable(state) {
                match self.claim_and_take(me, registered) {
                    Claim::Taken => return Ok(Some(Acquired::Clean)),
                    Claim::NotLockable => continue,
                    Claim::Busy => {}
                }
            }
            if state & WRITER != 0 || write_lockable(state) {
                // A writer holds it, or a claim is passing (invariant 6): is its holder alive?
                match self.shared_inspect_writer(me) {
                    Ok(None) => {}
                    Ok(Some(acquired)) => {
                        if registered {
                            // We hold `WRITER`: leaving wakes nobody.
                            self.state().fetch_sub(ONE_WAITING_WRITER, Relaxed);
                        }
                        return Ok(Some(acquired));
                    }
                    Err(error) => {
                        if registered {
                            self.leave_as_writer();
                        }
                        return Err(error);
                    }
                }
                if state & WRITER == 0 {
                    // A claim in passing (invariant 6), or one that stays (its holder
                    // stopped, or garbage naming a live thread: S7): look again, asleep after a
                    // few yields, and no later than the deadline.
                    if let Err(stop) = poll.pause(deadline) {
                        if registered {
                            self.leave_as_writer();
                        }
                        return stop.into_result(None);
                    }
                    continue;
                }
            } else if slice_ended && state & READ_PHASE != 0 && readers(state) == 0 {
                // A read phase whose woken readers never came in (module docs): end it.
                let _ = self
                    .state()
                    .compare_exchange(state, state & !READ_PHASE, Relaxed);
                slice_ended = false;
                continue;
            }
            if !registered {
                if waiting_writers_full(state) {
                    // No room to count one more waiter (or the bytes were overwritten): poll,
                    // asleep between looks (S7).
                    if let Err(stop) = poll.pause(deadline) {
                        return stop.into_result(None);
                    }
                    continue;
                }
                let next = state + ONE_WAITING_WRITER;
                if self.state().compare_exchange(state, next, Relaxed).is_err() {
                    continue;
                }
                registered = true;
            }
            slice_ended = false;
            match self
                .writers_sequence()
                .wait_until(sequence, slices.until(deadline))
            {
                Ok(WaitResult::TimedOut) if Slices::deadline_passed(deadline) => {
                    self.leave_as_writer();
                    return Ok(None);
                }
                Ok(WaitResult::TimedOut) => slice_ended = true,
                Ok(_) => {}
                Err(error) => {
                    self.leave_as_writer();
                    return Err(error);
                }
            }
        }
    }

    /// Releases the write lock `me` holds (the write guard's drop): as in a private buffer,
    /// but the claim is given back after `WRITER` is cleared and before the wakes; an
    /// inconsistent guard (`retire`) writes `NOT_RECOVERABLE` instead and wakes everyone.
    pub(super) fn shared_write_unlock(&self, me: u64, retire: bool) {
        if retire {
            if self
                .owner()
                .compare_exchange(me, NOT_RECOVERABLE, AcqRel)
                .is_ok()
            {
                // `WRITER` stays set for ever; every waiter must learn that the lock is gone.
                self.readers_sequence().fetch_add(1, Release);
                self.readers_sequence().notify(None);
                self.writers_sequence().fetch_add(1, Release);
                self.writers_sequence().notify(None);
            }
            return;
        }
        if self.owner().load(Relaxed) != me {
            return; // taken over from us (found dead): not ours to release
        }
        if self.state().compare_exchange(WRITER, 0, Release).is_ok() {
            self.unclaim(me);
            return;
        }
        let (phase, released) = self.release_write_contended();
        self.unclaim(me);
        self.wake_after_write(phase, released);
    }
}
