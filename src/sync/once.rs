//! [`Once`]: one-time initialization in 16 bytes of a [`SharedBuffer`] (docs/semantics.md S1, S2, S3,
//! S6).
//!
//! # Words (16 bytes, aligned to 8; all zero = not yet run)
//!
//! | offset | word | who sleeps on it |
//! | --- | --- | --- |
//! | 0 | `state: u32`: `INCOMPLETE`, `RUNNING`, `POISONED` or `COMPLETE`, plus the `QUEUED` flag | waiters |
//! | 4 | (reserved, zero) | |
//! | 8 | `owner: u64`: the token of the thread running the closure ([`owner`]), 0 otherwise | nobody |
//!
//! # Protocol
//!
//! - **Run**: a caller that finds `INCOMPLETE` (or `POISONED`, when forced) takes the run with a
//!   compare-exchange to `RUNNING` (keeping `QUEUED`), records its owner token, and runs the
//!   closure inside a drop guard. The guard, on return *or unwind*, clears the owner word and
//!   swaps the state to `COMPLETE` (returned) or `POISONED` (panicked); if the old state had
//!   `QUEUED`, it wakes every sleeper.
//! - **Wait**: a caller that must wait (the closure is running; or, for [`Once::wait`], nobody
//!   has run it yet) sets `QUEUED` and sleeps on `state` while it holds that value.
//! - **Relock**: a caller that finds `RUNNING` with its own token in the owner word is inside
//!   the closure: `Err(WouldDeadlock)` instead of waiting for itself.
//!
//! # Invariants
//!
//! 1. At most one closure runs at a time, and after `COMPLETE` none ever runs again: a run
//!    starts only by a compare-exchange out of `INCOMPLETE` / `POISONED`, and `COMPLETE` is
//!    final.
//! 2. The state leaves `RUNNING` on every exit from the closure (the drop guard), so a panic
//!    never strands a waiter.
//! 3. A thread sleeps only on a value with `QUEUED` set; `QUEUED` is kept by the transition to
//!    `RUNNING` and cleared only by the guard's swap, which then wakes everyone (A11).
//! 4. The owner word holds a thread's token only while that thread runs the closure; it is
//!    cleared before the state leaves `RUNNING` (the rule of `owner.rs`).
//!
//! # In a process-shared buffer: a runner that dies poisons the `Once` (X3)
//!
//! A process killed while running the closure must not leave the others waiting for ever. So
//! there the owner word is claimed *first* — one compare-exchange from `NONE` to the caller's
//! identity (`owner.rs`) — and only its claimant moves the state out of `INCOMPLETE` /
//! `POISONED` into `RUNNING`; the run's end swaps the state to its outcome and then gives the
//! claim back (before waking the sleepers). So while `RUNNING`, the owner word names the
//! runner (a claim seen without `RUNNING` is a caller taking or leaving the run, for a few
//! instructions: a caller that meets one polls it, asleep after a few yields, and a timed
//! call gives up at its deadline — a claim that stays, garbage naming a live thread, costs no
//! spinning core: S7). Waiters sleep at most a slice at a time and, when the state is `RUNNING`
//! (or a claim has been passing), ask whether the owner is dead (`liveness.rs`). The one that
//! takes a dead runner's claim over by compare-exchange poisons the `Once` (as a panic would:
//! `call_once` then returns `Err(Poisoned)`, `call_once_force` runs again), gives the claim
//! back and wakes the sleepers.

use std::fmt;
use std::time::{Duration, Instant};

use super::liveness::{self, Slices};
use super::owner::{self, NONE};
use super::spin::Poll;
use super::{attach, deadline_after};
use crate::atomics::{SharedWord, SharedWords, WaitResult, Word};
use crate::buffer::SharedBuffer;
use crate::error::Error;
use crate::shim::{self, Ordering::*};

/// `state` values (the low two bits).
const INCOMPLETE: u32 = 0;
const RUNNING: u32 = 1;
const POISONED: u32 = 2;
const COMPLETE: u32 = 3;
const PHASE: u32 = 3;
/// `state`: threads sleep on the word; the end of the run wakes them.
const QUEUED: u32 = 4;

/// A one-time initialization whose state lives in 16 bytes of a [`SharedBuffer`] (like
/// [`std::sync::Once`], for data in the buffer).
///
/// [`call_once(f)`](Once::call_once) runs `f` if no call has completed yet: of all the threads
/// (later, processes) calling it at the same moment, exactly one runs its closure and the others
/// sleep until it has finished; after that, every call returns at once. Everything `f` did
/// happens-before the return of every call that saw it complete.
///
/// - **Poisoning.** If `f` panics, the panic propagates to its caller, the `Once` is poisoned,
///   and the threads waiting for it are woken: [`call_once`](Once::call_once) then returns
///   `Err(Poisoned)`, while [`call_once_force`](Once::call_once_force) runs its closure (told
///   that the last run panicked) and completes the `Once` if it returns.
/// - Calling it from inside its own closure returns `Err(WouldDeadlock)` instead of hanging
///   (the bytes record which thread runs the closure, S2).
/// - [`wait`](Once::wait) blocks until some other caller completes it, without running anything.
/// - Timed forms give up at a deadline (S3); inside a worker, a blocked call returns
///   `Err(Terminated)` when the worker is terminated (S6). A call that gives up has run nothing
///   and dropped its closure.
/// - In a process-shared buffer, a runner whose process dies while it runs the closure
///   poisons the `Once`, as a panic would; the waiting callers notice within a fraction of a
///   second (X3).
///
/// ```
/// use sharedbuf::sync::Once;
/// use sharedbuf::{Error, Int32Array, SharedBuffer};
///
/// let buffer = SharedBuffer::new(64)?;
/// let init = Once::at(&buffer, 0)?; // a fresh buffer: not run yet
/// let table = Int32Array::with_range(&buffer, Once::BYTES, Some(4))?;
///
/// let threads: Vec<_> = (0..4)
///     .map(|_| {
///         let (init, table) = (init.clone(), table.clone());
///         std::thread::spawn(move || -> Result<i32, Error> {
///             init.call_once(|| {
///                 for i in 0..4 {
///                     table.set(i, 10 * i as i32).unwrap();
///                 }
///             })?;
///             Ok(table.get(3).unwrap()) // initialized, whoever ran it
///         })
///     })
///     .collect();
/// for thread in threads {
///     assert_eq!(thread.join().unwrap()?, 30);
/// }
/// assert!(init.is_completed());
/// # Ok::<(), Error>(())
/// ```
pub struct Once {
    /// One word (`SharedWords`, which knows its buffer).
    state: SharedWords<u32>,
    owner: SharedWord<u64>,
    byte_offset: usize,
    /// The buffer is process-shared: the owner word is claimed first (module docs).
    shared: bool,
}

/// What [`Once::call_once_force`] tells its closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OnceState {
    poisoned: bool,
}

impl OnceState {
    /// Whether an earlier closure panicked (the `Once` was poisoned when this one started).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }
}

impl Once {
    /// Bytes a `Once` occupies.
    pub const BYTES: usize = 16;
    /// Alignment its byte offset must have.
    pub const ALIGN: usize = 8;

    /// A handle on the `Once` at `byte_offset` of `buffer`. All-zero bytes are a `Once` not yet
    /// run, so attaching writes nothing, and every handle at the same offset is the same `Once`
    /// (S1).
    ///
    /// `Err(Misaligned)` unless `byte_offset` is a multiple of [`ALIGN`](Once::ALIGN);
    /// `Err(RangeOutOfBounds)` unless its [`BYTES`](Once::BYTES) bytes lie in the buffer.
    pub fn at(buffer: &SharedBuffer, byte_offset: usize) -> Result<Once, Error> {
        attach::check(buffer, byte_offset, Self::BYTES, Self::ALIGN)?;
        Ok(Once {
            state: SharedWords::at(buffer, byte_offset, 1)?,
            owner: SharedWord::at(buffer, byte_offset + 8)?,
            byte_offset,
            shared: buffer.is_process_shared(),
        })
    }

    /// The byte offset of the `Once` in its buffer.
    pub fn byte_offset(&self) -> usize {
        self.byte_offset
    }

    /// The buffer the `Once` lives in.
    pub fn buffer(&self) -> &SharedBuffer {
        self.state.buffer()
    }

    /// Whether a closure has completed. `true` is final, and everything that closure did
    /// happens-before this call's return.
    pub fn is_completed(&self) -> bool {
        self.state().load(Acquire) & PHASE == COMPLETE
    }

    /// Whether the last closure panicked and no forced call has completed since. Only a
    /// snapshot.
    pub fn is_poisoned(&self) -> bool {
        self.state().load(Relaxed) & PHASE == POISONED
    }

    /// Runs `f` unless a call has already completed, waiting while another thread runs its
    /// closure. `Ok(())` once completed, by this call or another.
    ///
    /// `Err(Poisoned)` if a closure panicked (this one is not run); `Err(WouldDeadlock)` if
    /// called from inside this `Once`'s own closure; `Err(Terminated)` if the thread's
    /// interrupter fires while it waits (S6). If `f` panics, the panic propagates, after the
    /// `Once` is poisoned and its waiters are woken.
    pub fn call_once(&self, f: impl FnOnce()) -> Result<(), Error> {
        if self.is_completed() {
            return Ok(());
        }
        self.call(false, None, |_| f()).map(drop)
    }

    /// [`call_once`](Once::call_once), giving up after `timeout` if another thread's closure is
    /// still running then: `Ok(false)`, and `f` was not run (S3).
    pub fn call_once_for(&self, timeout: Duration, f: impl FnOnce()) -> Result<bool, Error> {
        if self.is_completed() {
            return Ok(true);
        }
        self.call(false, deadline_after(timeout), |_| f())
    }

    /// [`call_once`](Once::call_once), giving up at `deadline` if another thread's closure is
    /// still running then: `Ok(false)`, and `f` was not run (S3).
    pub fn call_once_until(&self, deadline: Instant, f: impl FnOnce()) -> Result<bool, Error> {
        if self.is_completed() {
            return Ok(true);
        }
        self.call(false, Some(deadline), |_| f())
    }

    /// Like [`call_once`](Once::call_once), but also runs on a poisoned `Once`, telling `f`
    /// through [`OnceState::is_poisoned`]. If `f` returns, the `Once` is complete (no longer
    /// poisoned); if it panics, it stays poisoned.
    pub fn call_once_force(&self, f: impl FnOnce(&OnceState)) -> Result<(), Error> {
        if self.is_completed() {
            return Ok(());
        }
        self.call(true, None, f).map(drop)
    }

    /// [`call_once_force`](Once::call_once_force), giving up after `timeout` if another thread's
    /// closure is still running then: `Ok(false)`, and `f` was not run (S3).
    pub fn call_once_force_for(
        &self,
        timeout: Duration,
        f: impl FnOnce(&OnceState),
    ) -> Result<bool, Error> {
        if self.is_completed() {
            return Ok(true);
        }
        self.call(true, deadline_after(timeout), f)
    }

    /// [`call_once_force`](Once::call_once_force), giving up at `deadline` if another thread's
    /// closure is still running then: `Ok(false)`, and `f` was not run (S3).
    pub fn call_once_force_until(
        &self,
        deadline: Instant,
        f: impl FnOnce(&OnceState),
    ) -> Result<bool, Error> {
        if self.is_completed() {
            return Ok(true);
        }
        self.call(true, Some(deadline), f)
    }

    /// Blocks until a closure has completed, without running one. `Err(Poisoned)` if the
    /// `Once` is, or becomes, poisoned; `Err(WouldDeadlock)` from inside its own closure;
    /// `Err(Terminated)` if the thread's interrupter fires (S6).
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_until_option(None).map(drop)
    }

    /// [`wait`](Once::wait), giving up after `timeout`: `Ok(false)` if not completed in time
    /// (S3).
    pub fn wait_for(&self, timeout: Duration) -> Result<bool, Error> {
        self.wait_until_option(deadline_after(timeout))
    }

    /// [`wait`](Once::wait), giving up at `deadline`: `Ok(false)` if not completed by then (S3).
    pub fn wait_until(&self, deadline: Instant) -> Result<bool, Error> {
        self.wait_until_option(Some(deadline))
    }

    fn state(&self) -> Word<'_, u32> {
        self.state.get(0)
    }

    fn owner(&self) -> Word<'_, u64> {
        self.owner.get()
    }

    /// Runs `f` if it may (`force`: also on a poisoned `Once`), or waits for the running
    /// closure: `Ok(true)` once completed, `Ok(false)` if `deadline` passed while waiting.
    fn call(
        &self,
        force: bool,
        deadline: Option<Instant>,
        f: impl FnOnce(&OnceState),
    ) -> Result<bool, Error> {
        let mut slices = Slices::new();
        let mut poll = Poll::new();
        let mut state = self.state().load(Acquire);
        loop {
            match state & PHASE {
                COMPLETE => return Ok(true),
                POISONED if !force => return Err(Error::Poisoned),
                INCOMPLETE | POISONED if self.shared => match self.shared_start(force) {
                    Start::Run { poisoned, me } => {
                        self.run(me, || f(&OnceState { poisoned }));
                        return Ok(true);
                    }
                    Start::Look(actual) => state = actual,
                    Start::Claimed => {
                        if let Err(stop) = poll.pause(deadline) {
                            return stop.into_result(false);
                        }
                        state = self.state().load(Acquire);
                    }
                },
                INCOMPLETE | POISONED => {
                    let running = RUNNING | (state & QUEUED);
                    match self.state().compare_exchange(state, running, Acquire) {
                        Ok(_) => {
                            let poisoned = state & PHASE == POISONED;
                            self.run(owner::thread_token(), || f(&OnceState { poisoned }));
                            return Ok(true);
                        }
                        Err(actual) => state = actual,
                    }
                }
                _ => match self.sleep(state, deadline, &mut slices)? {
                    Some(actual) => state = actual,
                    None => return Ok(false),
                },
            }
        }
    }

    fn wait_until_option(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        let mut slices = Slices::new();
        let mut state = self.state().load(Acquire);
        loop {
            match state & PHASE {
                COMPLETE => return Ok(true),
                POISONED => return Err(Error::Poisoned),
                _ => match self.sleep(state, deadline, &mut slices)? {
                    Some(actual) => state = actual,
                    None => return Ok(false),
                },
            }
        }
    }

    /// Sleeps once on `state` (`INCOMPLETE` or `RUNNING`), first setting `QUEUED`. Returns the
    /// state to look at next, or `None` if `deadline` passed with the phase unchanged;
    /// `Err(WouldDeadlock)` if the closure running is the calling thread's own.
    fn sleep(
        &self,
        state: u32,
        deadline: Option<Instant>,
        slices: &mut Slices,
    ) -> Result<Option<u32>, Error> {
        let me = if self.shared {
            owner::shared_thread_identity()
        } else {
            owner::thread_token()
        };
        if state & PHASE == RUNNING && self.owner().load(Relaxed) == me {
            return Err(Error::WouldDeadlock);
        }
        if self.shared && self.shared_poison_if_dead(me) {
            return Ok(Some(self.state().load(Acquire)));
        }
        if state & QUEUED == 0 {
            // Acquire on failure too: the value it returns may be `COMPLETE`, which the caller
            // takes as "everything the closure did is visible" (invariant 1).
            if let Err(actual) = self
                .state()
                .compare_exchange(state, state | QUEUED, Acquire)
            {
                return Ok(Some(actual));
            }
        }
        let until = if self.shared {
            slices.until(deadline)
        } else {
            deadline
        };
        let slept = self.state().wait_until(state | QUEUED, until)?;
        let now = self.state().load(Acquire);
        let gave_up =
            slept == WaitResult::TimedOut && (!self.shared || Slices::deadline_passed(deadline));
        if gave_up && now & PHASE == state & PHASE {
            return Ok(None); // still what it waited out
        }
        Ok(Some(now))
    }

    /// In a process-shared buffer: takes the run for the caller if nobody has it (and it is
    /// not poisoned, unless `force`), by claiming the owner word first (module docs).
    /// `Start::Look(state)` if the caller must look at the state again (completed, poisoned,
    /// running, or a dead claimant's claim taken over), `Start::Claimed` while another
    /// caller's claim is on the owner word.
    fn shared_start(&self, force: bool) -> Start {
        let me = owner::shared_thread_identity();
        if self.owner().compare_exchange(NONE, me, Acquire).is_err() {
            // Another caller's claim: a run, or one taking or leaving it. A dead one poisons.
            return if self.shared_poison_if_dead(me) {
                Start::Look(self.state().load(Acquire))
            } else {
                Start::Claimed
            };
        }
        // Only the claimant moves the state out of `INCOMPLETE` / `POISONED` (module docs).
        let mut state = self.state().load(Acquire);
        loop {
            let runnable = match state & PHASE {
                INCOMPLETE => true,
                POISONED => force,
                _ => false,
            };
            if !runnable {
                self.give_back(me);
                return Start::Look(state);
            }
            let running = RUNNING | (state & QUEUED);
            match self.state().compare_exchange(state, running, Acquire) {
                Ok(_) => {
                    return Start::Run {
                        poisoned: state & PHASE == POISONED,
                        me,
                    }
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// In a process-shared buffer: if the owner word names a dead thread, takes its claim
    /// over and, if it was running the closure, poisons the `Once` and wakes the sleepers.
    /// `true` if it changed anything (the caller looks at the state again).
    fn shared_poison_if_dead(&self, me: u64) -> bool {
        let holder = self.owner().load(Acquire);
        if holder == NONE || holder == me || !liveness::is_dead(holder) {
            return false;
        }
        if self.owner().compare_exchange(holder, me, Acquire).is_err() {
            return true; // someone else took it over first
        }
        let mut state = self.state().load(Acquire);
        while state & PHASE == RUNNING {
            match self.state().compare_exchange(state, POISONED, AcqRel) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        self.give_back(me);
        if state & PHASE == RUNNING && state & QUEUED != 0 {
            self.state().notify(None);
        }
        true
    }

    /// Gives back `me`'s claim on the owner word (process-shared buffers).
    fn give_back(&self, me: u64) {
        let _ = self.owner().compare_exchange(me, NONE, Release);
    }

    /// Runs the closure of the call that took the run (the state is `RUNNING`) as `me`.
    fn run(&self, me: u64, f: impl FnOnce()) {
        if !self.shared {
            self.owner().store(me, Relaxed);
        }
        let mut run = Run {
            once: self,
            me,
            outcome: POISONED,
        };
        f();
        run.outcome = COMPLETE;
        // `run` drops here; had `f` panicked, it would have dropped during the unwind with
        // `POISONED` (invariant 2).
    }
}

/// Ends a run whichever way the closure exits: the `Once`'s drop guard (invariant 2).
struct Run<'a> {
    once: &'a Once,
    /// The runner's owner value.
    me: u64,
    /// The state to leave: `POISONED` until the closure has returned.
    outcome: u32,
}

/// What [`Once::shared_start`] decided.
enum Start {
    /// The caller runs the closure (as `me`); `poisoned` if an earlier run panicked or died.
    Run { poisoned: bool, me: u64 },
    /// Look at this state again.
    Look(u32),
    /// Another caller's claim is on the owner word, its holder alive: wait a little
    /// ([`Poll`]), then look at the state again. A claim passes in moments; one that stays
    /// (its holder stopped, or garbage naming a live thread: S7) is polled asleep, and a
    /// timed call gives up at its deadline.
    Claimed,
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // loom gave up on a model: see `shim::model_is_unwinding`
        }
        let once = self.once;
        if !once.shared {
            once.owner().store(owner::NONE, Relaxed);
        }
        let old = once.state().swap(self.outcome, Release);
        if once.shared {
            // The claim is given back after the state left `RUNNING` (module docs).
            once.give_back(self.me);
        }
        if old & QUEUED != 0 {
            once.state().notify(None);
        }
    }
}

impl Clone for Once {
    fn clone(&self) -> Once {
        // Re-attaching cannot fail: the place was checked, and buffers never shrink.
        Once::at(self.buffer(), self.byte_offset).expect("a checked place stays valid")
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.state().load(Relaxed) & PHASE {
            INCOMPLETE => "incomplete",
            RUNNING => "running",
            POISONED => "poisoned",
            _ => "complete",
        };
        f.debug_struct("Once")
            .field("byte_offset", &self.byte_offset)
            .field("state", &phase)
            .finish()
    }
}
