//! The [`Mutex`] protocol on a process-shared buffer: a lock that survives its holder's death
//! (docs/semantics.md X3).
//!
//! In a private buffer the lock is the `state` word's `LOCKED` bit and the owner word only
//! names the holder, written just after the bit is taken (`mutex.rs`). Between processes that
//! order has a hole: a process killed between taking the bit and writing its name leaves a
//! lock held by nobody anyone can check, and its waiters would wait for ever. So here **the
//! owner word is the lock**: taking it is one compare-exchange from `NONE` to the taker's
//! identity (`owner.rs`: thread id + start time), releasing it one compare-exchange back, and
//! at every instant the word names whoever is responsible for the lock.
//!
//! # Words (the same 16 bytes as in a private buffer, read differently)
//!
//! | offset | word | who sleeps on it |
//! | --- | --- | --- |
//! | 0 | `waiters: u32`: [`ASYNC`] flag, blocked lockers counted from bit 1 | nobody |
//! | 4 | `side: u32`: a sequence number, bumped before each wake of `lock_async` futures | `lock_async` futures |
//! | 8 | `owner: u64`: `NONE`, the holder's identity, or `NOT_RECOVERABLE` | blocked lockers |
//!
//! # Protocol
//!
//! - **Lock**: compare-exchange `owner` from `NONE` to my identity. Otherwise (after a short
//!   spin while nobody is counted) count myself in `waiters`, and sleep on `owner` while it
//!   holds the identity I read — at most a slice at a time (`liveness.rs`).
//! - **Unlock**: compare-exchange `owner` from my identity to `NONE`; then, if anyone is
//!   counted, wake one sleeper; if `ASYNC` is set, clear it, bump `side` and wake all the
//!   futures. (An unlock that finds someone else's identity does nothing: the lock was taken
//!   over from it, see below, and is not its to release.)
//! - **Owner died**: before sleeping, and whenever a slice ends, a waiter asks whether the
//!   identity it read is dead. If so it takes the lock over with one compare-exchange from the
//!   dead identity to its own: exactly one contender wins, and returns
//!   `Err(LockError::OwnerDied(guard))`; the others read the winner's identity and wait on.
//! - **Not recoverable**: the winner's guard is *inconsistent* until `mark_consistent()`.
//!   Released so, it writes `NOT_RECOVERABLE` (from its own identity, by compare-exchange)
//!   instead of `NONE`, and wakes every sleeper; every later lock returns
//!   `Err(NotRecoverable)`. If the winner dies too, its identity is dead in turn and the next
//!   contender gets `OwnerDied` again, as with pthread's robust mutexes.
//! - Waiters are woken one per unlock, oldest first (the waiter table is FIFO); a woken waiter
//!   races with running lockers. There is no heir handoff here (S5's bounded unfairness is a
//!   private-buffer promise): a handoff to a waiter of a process that dies before it claims
//!   the lock could not be told from a slow one.
//!
//! # Invariants
//!
//! 1. The lock is held exactly when `owner` is neither `NONE` nor `NOT_RECOVERABLE`, by the
//!    thread (or, for `lock_async`, the process) it names; every change of holder is one
//!    compare-exchange on `owner`, so two contenders never both win.
//! 2. Only the holder writes `NONE` or `NOT_RECOVERABLE`; a non-holder replaces an identity
//!    only after finding it dead (takeover), and a live holder is never found dead
//!    (`liveness.rs` declares death only on evidence).
//! 3. No lost wakeup: a waiter counts itself in `waiters` *before* it reads `owner`; an
//!    unlocker changes `owner` *before* it reads `waiters` — and reads it with a
//!    read-modify-write (adding 0), so that the two read-modify-writes of `waiters` are
//!    ordered: if the unlocker's comes first, the waiter's reads from it (acquire-release) and
//!    then sees the new owner; if the waiter's comes first, the unlocker sees the count and
//!    wakes one sleeper, and a waiter whose sleep starts after the change finds `owner`
//!    different and does not sleep (A11). A woken waiter that loses to a running locker sleeps
//!    again on the new holder, whose unlock wakes the next. (A plain sequentially consistent
//!    load would do natively, but loom does not model those; this costs the same.)
//! 4. No waiter sleeps for ever on a dead holder: each sleep lasts at most a slice, after
//!    which it checks the holder again. Dead *waiters* only leave the count too high, which
//!    costs unlocks a needless wake (the waiter table skips waiters of dead processes).

use std::time::Instant;

use super::liveness::{self, Slices};
use super::mutex::{Acquired, Mutex};
use super::owner::{NONE, NOT_RECOVERABLE};
use super::spin::Backoff;
use crate::atomics::{WaitResult, Word};
use crate::error::Error;
use crate::shim::{self, Ordering::*};

/// `waiters`: `lock_async` futures may sleep on the side word; the next unlock wakes them.
pub(super) const ASYNC: u32 = 1;
/// `waiters`: one counted blocked locker (the count occupies the bits from here up).
const WAITER: u32 = 2;

/// What one look at a held process-shared lock found.
pub(super) enum Held {
    /// Held by a live holder (or one not known dead): this identity.
    By(u64),
    /// Its holder was dead, and the caller has taken the lock over.
    TakenOver,
}

impl Mutex {
    /// Takes the process-shared lock for `me` if it is free now: one compare-exchange.
    #[inline]
    pub(super) fn shared_try_take(&self, me: u64) -> bool {
        self.owner().compare_exchange(NONE, me, Acquire).is_ok()
    }

    /// Looks at a lock found held by `holder` on behalf of `me`: `Err(NotRecoverable)` if it is
    /// retired, `Err(WouldDeadlock)` if `me` holds it (and `relock` says that is a deadlock),
    /// else whether its holder is alive, taking it over if not.
    pub(super) fn shared_inspect(&self, holder: u64, me: u64, relock: bool) -> Result<Held, Error> {
        if holder == NOT_RECOVERABLE {
            return Err(Error::NotRecoverable);
        }
        if holder == me && relock {
            return Err(Error::WouldDeadlock);
        }
        if holder != NONE && holder != me && liveness::is_dead(holder) {
            // Invariant 1: one compare-exchange decides who takes over.
            if self.owner().compare_exchange(holder, me, Acquire).is_ok() {
                return Ok(Held::TakenOver);
            }
        }
        Ok(Held::By(holder))
    }

    /// Takes the process-shared lock for `me` now if it is free or its holder is dead;
    /// `Ok(None)` if a live holder has it. Never sleeps.
    pub(super) fn shared_try_lock(&self, me: u64, relock: bool) -> Result<Option<Acquired>, Error> {
        loop {
            if self.shared_try_take(me) {
                return Ok(Some(Acquired::Clean));
            }
            let holder = self.owner().load(Acquire);
            if holder == NONE {
                continue; // released meanwhile
            }
            return match self.shared_inspect(holder, me, relock)? {
                Held::TakenOver => Ok(Some(Acquired::OwnerDied)),
                Held::By(_) => Ok(None),
            };
        }
    }

    /// The slow path of every blocking lock on a process-shared buffer: `Some` once `me`
    /// holds the lock, `None` if `deadline` passed first.
    #[cold]
    pub(super) fn shared_lock_contended(
        &self,
        me: u64,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired>, Error> {
        let mut backoff = Backoff::new();
        let mut slices = Slices::new();
        let mut counted: Option<Counted<'_>> = None;
        loop {
            if self.shared_try_take(me) {
                return Ok(Some(Acquired::Clean));
            }
            let holder = self.owner().load(Acquire);
            if holder == NONE {
                continue;
            }
            let holder = match self.shared_inspect(holder, me, true)? {
                Held::TakenOver => return Ok(Some(Acquired::OwnerDied)),
                Held::By(holder) => holder,
            };
            if counted.is_none() {
                if self.waiters().load(Relaxed) < WAITER && backoff.spin() {
                    continue;
                }
                counted = Some(Counted::new(self.waiters()));
                continue; // read the owner again, now that an unlock will see the count
            }
            match self.owner().wait_until(holder, slices.until(deadline))? {
                WaitResult::TimedOut if Slices::deadline_passed(deadline) => {
                    // The last look: a holder that died meanwhile still hands the lock over.
                    let holder = self.owner().load(Acquire);
                    return match self.shared_inspect(holder, me, true)? {
                        Held::TakenOver => Ok(Some(Acquired::OwnerDied)),
                        Held::By(NONE) if self.shared_try_take(me) => Ok(Some(Acquired::Clean)),
                        Held::By(_) => Ok(None),
                    };
                }
                // Woken, the owner changed, or a slice ended: look again.
                _ => {}
            }
        }
    }

    /// Announces a `lock_async` sleeper: sets `ASYNC`. Returns the owner read after it (the
    /// caller retries taking the lock if that is `NONE`).
    pub(super) fn shared_announce_async(&self) -> u64 {
        // The waiter's half of invariant 3, for a future.
        self.waiters().fetch_or(ASYNC, AcqRel);
        self.owner().load(Acquire)
    }

    /// Releases the lock `me` holds (a guard's drop): `NONE`, or `NOT_RECOVERABLE` if the
    /// guard is still inconsistent; then the wakes (invariant 3).
    pub(super) fn shared_unlock(&self, me: u64, retire: bool) {
        let released = if retire { NOT_RECOVERABLE } else { NONE };
        if self
            .owner()
            .compare_exchange(me, released, Release)
            .is_err()
        {
            // Not ours any more (taken over by a process that found us dead, or overwritten):
            // whoever holds it now releases it.
            return;
        }
        // The unlocker's half of invariant 3: a read-modify-write, ordered with the waiters'.
        let waiters = self.waiters().fetch_add(0, AcqRel);
        if waiters >= WAITER {
            // A retired lock wakes everyone: each of them must learn it is gone.
            self.owner().notify(if retire { None } else { Some(1) });
        }
        if waiters & ASYNC != 0 {
            self.waiters().fetch_and(!ASYNC, Relaxed);
            self.side().fetch_add(1, Release);
            self.side().notify(None);
        }
    }

    #[inline]
    fn waiters(&self) -> Word<'_, u32> {
        self.state()
    }
}

/// A blocked locker's place in the `waiters` count, given back however its wait ends.
struct Counted<'a>(Word<'a, u32>);

impl<'a> Counted<'a> {
    fn new(waiters: Word<'a, u32>) -> Counted<'a> {
        // The waiter's half of invariant 3.
        waiters.fetch_add(WAITER, AcqRel);
        Counted(waiters)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // a failed loom model: see `shim::model_is_unwinding`
        }
        self.0.fetch_sub(WAITER, Relaxed);
    }
}
