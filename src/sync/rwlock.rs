//! [`RwLock`]: a readers-writer lock in 24 bytes of a [`SharedBuffer`] (docs/semantics.md S1–S3, S5,
//! S6).
//!
//! # Words (24 bytes, aligned to 8; all zero = unlocked, nobody waiting)
//!
//! | offset | word | who sleeps on it |
//! | --- | --- | --- |
//! | 0 | `state: u64`: readers holding it (22 bits), `WRITER`, `READ_PHASE`, readers waiting (20 bits), writers waiting (20 bits) | nobody |
//! | 8 | `owner: u64`: the writer's token ([`owner`]), 0 unless write-locked | nobody |
//! | 16 | `readers: u32`: a sequence number, bumped before each wake of waiting readers | waiting readers |
//! | 20 | `writers: u32`: a sequence number, bumped before each wake of a waiting writer | waiting writers |
//!
//! Every decision is a compare-exchange (or a fetch-add) on the one `state` word, so the
//! decisions of all threads are totally ordered. Threads sleep on the two sequence words, which
//! are 32-bit (futex-ready): a sleeper reads its sequence *before* it reads the state that made
//! it decide to sleep (an eventcount), and a waker changes the state before it bumps the
//! sequence, so a wake after that state read always finds the sleeper asleep or changes the
//! value it would sleep on.
//!
//! # Protocol
//!
//! - **Read**: a new reader enters (one compare-exchange adding a reader) unless a writer holds
//!   the lock or writers are waiting (writer preference). Otherwise it counts itself as a
//!   waiting reader and sleeps on `readers`. A reader that has slept once no longer defers to
//!   waiting writers, only to a writer holding the lock: it was waiting before them.
//! - **Write**: a writer enters (`WRITER`) only when there are no readers, no writer and no read
//!   phase; otherwise it counts itself as a waiting writer and sleeps on `writers`.
//! - **Write unlock**: with readers waiting, it opens a **read phase** (`READ_PHASE` set in the
//!   same compare-exchange that clears `WRITER`) and wakes every waiting reader: writers may not
//!   enter during the phase, so the readers that waited through the write get in ahead of the
//!   writers queued behind it — readers are never starved by a stream of writers (S5). With no
//!   reader waiting, it wakes one writer.
//! - **Read phase end**: the last reader out clears `READ_PHASE` and wakes one writer. If the
//!   phase's wake found no reader asleep (they were on their way to sleep, or timing out), the
//!   unlocker ends the phase itself when no reader is in; the readers on their way see the
//!   sequence moved and enter like any woken reader.
//! - **Read unlock**: the last reader out wakes one writer if any waits.
//! - **Leaving without the lock** (timeout, terminate) happens only from a sleep that returned
//!   `TimedOut` or `Err`, i.e. one no wake counted, so a leaver never owes a wake it consumed.
//!   The last waiting writer to leave wakes the waiting readers (they deferred to it).
//!
//! # Invariants
//!
//! 1. `WRITER` ⇒ no readers and no `READ_PHASE`; `READ_PHASE` ⇒ no `WRITER`.
//! 2. A read phase always ends: its wake counted a reader (which enters: nothing else can enter
//!    or block it, and its exit or a later reader's clears the phase), or counted none and the
//!    unlocker ends it.
//! 3. A waiting reader sleeps only while a writer holds the lock (whose unlock wakes it) or while
//!    writers wait (one of them will hold the lock, or the last to give up wakes the readers).
//!    A waiting writer sleeps only while readers, a writer or a read phase are in (the last
//!    reader out, the writer's unlock, or the phase's end wakes a writer); a woken writer that
//!    cannot enter sleeps again, and the holder it found will wake one.
//! 4. The owner word, as for the mutex: only the writer writes its own token and clears it
//!    before releasing, so a thread that reads its own token holds the write lock.
//!
//! In a process-shared buffer, writers claim the owner word *before* they set `WRITER` and give
//! it back after clearing it, waiters look at a writer's liveness, and a dead writer's lock is
//! taken over (`shared_rwlock.rs`, X3); the readers' side is the same.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::attach;
use super::deadline_after;
use super::lock_result::{
    from_attempt, Attempt, LockError, LockResult, TryLockError, TryLockResult,
};
use super::mutex::Acquired;
use super::owner;
use super::spin::{Backoff, Poll};
use crate::atomics::{SharedWord, SharedWords, WaitResult, Word};
use crate::buffer::SharedBuffer;
use crate::error::Error;
use crate::shim::{self, Ordering::*};

/// `state`: one reader holding the lock (the count occupies bits 0..22).
pub(super) const ONE_READER: u64 = 1;
pub(super) const READERS_MASK: u64 = (1 << 22) - 1;
/// `state`: a writer holds the lock.
pub(super) const WRITER: u64 = 1 << 22;
/// `state`: a read phase: the readers woken by a write unlock go first; writers wait.
pub(super) const READ_PHASE: u64 = 1 << 23;
/// `state`: one waiting reader (the count occupies bits 24..44).
pub(super) const ONE_WAITING_READER: u64 = 1 << 24;
pub(super) const WAITING_READERS_MASK: u64 = ((1 << 20) - 1) << 24;
/// `state`: one waiting writer (the count occupies bits 44..64).
pub(super) const ONE_WAITING_WRITER: u64 = 1 << 44;
pub(super) const WAITING_WRITERS_MASK: u64 = ((1 << 20) - 1) << 44;

/// Indices of the two sequence words in `RwLock::sequences`.
const READERS_SEQUENCE: usize = 0;
const WRITERS_SEQUENCE: usize = 1;

pub(super) fn readers(state: u64) -> u64 {
    state & READERS_MASK
}

pub(super) fn waiting_readers(state: u64) -> u64 {
    (state & WAITING_READERS_MASK) / ONE_WAITING_READER
}

pub(super) fn waiting_writers(state: u64) -> u64 {
    (state & WAITING_WRITERS_MASK) / ONE_WAITING_WRITER
}

/// Whether the waiting writers' count is full (or the bytes were overwritten).
pub(super) fn waiting_writers_full(state: u64) -> bool {
    state & WAITING_WRITERS_MASK == WAITING_WRITERS_MASK
}

/// Whether no reader and no writer is counted as waiting (only then do lockers spin).
pub(super) fn nobody_waiting(state: u64) -> bool {
    state & (WAITING_READERS_MASK | WAITING_WRITERS_MASK) == 0
}

/// Whether a reader may enter from `state`. A reader that has already waited (`waited`) does not
/// defer to waiting writers.
pub(super) fn read_lockable(state: u64, waited: bool) -> bool {
    state & WRITER == 0 && readers(state) < READERS_MASK && (waited || waiting_writers(state) == 0)
}

/// Whether a writer may enter from `state`.
pub(super) fn write_lockable(state: u64) -> bool {
    state & (READERS_MASK | WRITER | READ_PHASE) == 0
}

/// A readers-writer lock whose state lives in 24 bytes of a [`SharedBuffer`].
///
/// - Any number of readers ([`read`](RwLock::read)) or one writer ([`write`](RwLock::write))
///   hold it at a time; each has a non-blocking `try_` form and timed forms that give up at a
///   deadline (S3).
/// - Writer-preferring: while a writer waits, new readers wait behind it, so readers cannot
///   starve writers. And readers are not starved by writers either (S5): when a writer unlocks,
///   every reader that was waiting goes in before the next writer.
/// - A thread that holds the write lock and asks for it again, or for a read lock, gets
///   `Err(WouldDeadlock)`. Taking the write lock while holding a read lock, or a second read
///   lock while a writer waits, deadlocks as with any writer-preferring lock (readers are not
///   recorded).
/// - Inside a worker, a blocked call returns `Err(Terminated)` when the worker is terminated
///   (S6). Not poisoned by a panic: the guards' drop still unlocks.
/// - A guard leaked with [`mem::forget`](std::mem::forget) keeps its lock for ever (as with
///   any lock): a leaked read guard leaves a reader counted, so writers wait until their
///   deadline (and, while one waits, new readers too); a leaked write guard shuts everyone out,
///   and its thread's relock is still `Err(WouldDeadlock)`. Never undefined behaviour.
/// - In a process-shared buffer the write lock survives its holder's death (X3): the next
///   `write` — or `read`, which then takes the *write* lock over to repair the data — gets
///   `Err(LockError::OwnerDied(write_guard))`; see [`Mutex`](super::Mutex) for the contract
///   (`mark_consistent`, `NotRecoverable`). A process that dies holding a *read* lock leaves
///   it read-held: readers are counted, not named.
///
/// ```
/// use sharedbuf::sync::RwLock;
/// use sharedbuf::{Error, SharedBuffer};
///
/// let lock = RwLock::at(&SharedBuffer::new(64)?, 0)?;
/// {
///     let _first = lock.read()?;
///     let _second = lock.read()?; // readers share it
///     assert!(lock.try_write().is_err_and(|e| e == Error::WouldBlock));
/// }
/// let writer = lock.write()?;
/// assert!(lock.read().is_err_and(|e| e == Error::WouldDeadlock));
/// drop(writer);
/// # Ok::<(), Error>(())
/// ```
pub struct RwLock {
    state: SharedWord<u64>,
    owner: SharedWord<u64>,
    /// The readers' and the writers' sequence words.
    sequences: SharedWords<u32>,
    byte_offset: usize,
    /// The buffer is process-shared: writers also claim the owner word (`shared_rwlock.rs`).
    shared: bool,
}

/// What [`RwLock::read`] returns: a read guard, or — in a process-shared buffer whose writer
/// died holding the lock — `Err(LockError::OwnerDied(write_guard))`: the reader that noticed
/// took the *write* lock over, to repair the data (X3).
pub type ReadResult<'a> = Result<RwLockReadGuard<'a>, LockError<RwLockWriteGuard<'a>>>;

/// What the `try_read` forms return: [`ReadResult`], with `Err(TryLockError::WouldBlock)` when
/// no read lock could be taken (in time).
pub type TryReadResult<'a> = Result<RwLockReadGuard<'a>, TryLockError<RwLockWriteGuard<'a>>>;

/// A read attempt inside the lock: `Ok(None)` when nothing was taken.
type ReadAttempt<'a> = Attempt<RwLockReadGuard<'a>, RwLockWriteGuard<'a>>;

/// How a blocking read ended.
pub(super) enum Entry {
    /// A read lock is held.
    Read,
    /// The writer was dead: the write lock was taken over.
    OwnerDied,
    /// The deadline passed.
    TimedOut,
}

impl RwLock {
    /// Bytes a readers-writer lock occupies.
    pub const BYTES: usize = 24;
    /// Alignment its byte offset must have.
    pub const ALIGN: usize = 8;

    /// A handle on the lock at `byte_offset` of `buffer`. All-zero bytes are an unlocked lock,
    /// so attaching writes nothing (S1).
    ///
    /// `Err(Misaligned)` unless `byte_offset` is a multiple of [`ALIGN`](RwLock::ALIGN);
    /// `Err(RangeOutOfBounds)` unless its [`BYTES`](RwLock::BYTES) bytes lie in the buffer.
    pub fn at(buffer: &SharedBuffer, byte_offset: usize) -> Result<RwLock, Error> {
        attach::check(buffer, byte_offset, Self::BYTES, Self::ALIGN)?;
        Ok(RwLock {
            state: SharedWord::at(buffer, byte_offset)?,
            owner: SharedWord::at(buffer, byte_offset + 8)?,
            sequences: SharedWords::at(buffer, byte_offset + 16, 2)?,
            byte_offset,
            shared: buffer.is_process_shared(),
        })
    }

    /// The byte offset of the lock in its buffer.
    pub fn byte_offset(&self) -> usize {
        self.byte_offset
    }

    /// The buffer the lock lives in.
    pub fn buffer(&self) -> &SharedBuffer {
        self.sequences.buffer()
    }

    /// Whether a writer holds the lock now. Only a snapshot. A lock retired as not
    /// recoverable (X3) counts as write-locked.
    pub fn is_write_locked(&self) -> bool {
        self.state().load(Relaxed) & WRITER != 0
    }

    /// How many readers hold the lock now. Only a snapshot.
    pub fn reader_count(&self) -> usize {
        readers(self.state().load(Relaxed)) as usize
    }

    /// Blocks until no writer holds or waits for the lock, then takes a read lock.
    ///
    /// `Err(Failed(WouldDeadlock))` if the calling thread holds the write lock;
    /// `Err(Failed(Terminated))` if its interrupter fires while it waits (S6). In a
    /// process-shared buffer, a writer found dead is taken over: `Err(OwnerDied(write_guard))`
    /// (X3); and `Err(Failed(NotRecoverable))` once the lock is retired.
    #[inline]
    pub fn read(&self) -> ReadResult<'_> {
        if self.try_enter_reader() {
            return Ok(RwLockReadGuard::new(self));
        }
        self.read_slow()
    }

    /// [`read`](RwLock::read) past its fast path: out of line, so that the fast path (one load,
    /// one compare-exchange) inlines into the caller without the slow path's frame.
    #[cold]
    #[inline(never)]
    fn read_slow(&self) -> ReadResult<'_> {
        let me = self.me();
        let entry = self.read_contended(me, None);
        self.read_result(me, entry)?
            .ok_or(LockError::Failed(Error::Timeout)) // no deadline: never
    }

    /// Takes a read lock if that needs no wait now: `Err(WouldBlock)` if a writer holds or
    /// waits for the lock, `Err(Failed(WouldDeadlock))` if the calling thread holds the write
    /// lock (and the process-shared outcomes of [`read`](RwLock::read)).
    pub fn try_read(&self) -> TryReadResult<'_> {
        from_attempt(self.attempt_read_now())
    }

    /// [`try_read`](RwLock::try_read), with `Ok(None)` for a lock it could not enter.
    fn attempt_read_now(&self) -> ReadAttempt<'_> {
        let mut state = self.state().load(Relaxed);
        while read_lockable(state, false) {
            match self
                .state()
                .compare_exchange(state, state + ONE_READER, Acquire)
            {
                Ok(_) => return Ok(Some(RwLockReadGuard::new(self))),
                Err(actual) => state = actual,
            }
        }
        let me = self.me();
        self.check_relock(me)?;
        if self.shared && state & WRITER != 0 {
            if let Some(Acquired::OwnerDied) = self.shared_inspect_writer(me)? {
                return Err(LockError::OwnerDied(RwLockWriteGuard::died(self, me)));
            }
        }
        Ok(None)
    }

    /// [`read`](RwLock::read), giving up after `timeout` (`Err(WouldBlock)`).
    pub fn try_read_for(&self, timeout: Duration) -> TryReadResult<'_> {
        from_attempt(self.read_until(deadline_after(timeout)))
    }

    /// [`read`](RwLock::read), giving up at `deadline` (`Err(WouldBlock)`).
    pub fn try_read_until(&self, deadline: Instant) -> TryReadResult<'_> {
        from_attempt(self.read_until(Some(deadline)))
    }

    /// Blocks until no reader or writer holds the lock, then takes the write lock.
    ///
    /// `Err(Failed(WouldDeadlock))` if the calling thread already holds it;
    /// `Err(Failed(Terminated))` if its interrupter fires while it waits (S6). In a
    /// process-shared buffer also `Err(OwnerDied(guard))` (taken over from a writer that died
    /// holding it) and `Err(Failed(NotRecoverable))` (X3).
    #[inline]
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_>> {
        let me = if self.shared {
            let me = owner::shared_thread_identity();
            if self.shared_try_claim_write(me) {
                return Ok(RwLockWriteGuard::new(self, me));
            }
            me
        } else if self.state().compare_exchange(0, WRITER, Acquire).is_ok() {
            self.owner().store(owner::thread_token(), Relaxed);
            return Ok(RwLockWriteGuard::new(self, owner::NONE));
        } else {
            owner::thread_token()
        };
        let acquired = self.write_contended(me, None);
        self.write_result(me, acquired)?
            .ok_or(LockError::Failed(Error::Timeout)) // no deadline: never
    }

    /// Takes the write lock if it is free now: `Err(WouldBlock)` if readers or a writer hold it
    /// (or a read phase lets waiting readers in first), `Err(Failed(WouldDeadlock))` if the
    /// calling thread holds it (and the process-shared outcomes of [`write`](RwLock::write)).
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_>> {
        from_attempt(self.attempt_write_now())
    }

    /// [`try_write`](RwLock::try_write), with `Ok(None)` for a lock it could not take.
    fn attempt_write_now(&self) -> Attempt<RwLockWriteGuard<'_>> {
        let me = self.me();
        if self.shared {
            if self.shared_try_claim_write(me) {
                return Ok(Some(RwLockWriteGuard::new(self, me)));
            }
        } else {
            let mut state = self.state().load(Relaxed);
            while write_lockable(state) {
                match self
                    .state()
                    .compare_exchange(state, state | WRITER, Acquire)
                {
                    Ok(_) => {
                        self.owner().store(me, Relaxed);
                        return Ok(Some(RwLockWriteGuard::new(self, owner::NONE)));
                    }
                    Err(actual) => state = actual,
                }
            }
        }
        self.check_relock(me)?;
        if self.shared && self.is_write_locked() {
            if let Some(acquired) = self.shared_inspect_writer(me)? {
                return self.write_result(me, Ok(Some(acquired)));
            }
        }
        Ok(None)
    }

    /// [`write`](RwLock::write), giving up after `timeout` (`Err(WouldBlock)`).
    pub fn try_write_for(&self, timeout: Duration) -> TryLockResult<RwLockWriteGuard<'_>> {
        from_attempt(self.write_until(deadline_after(timeout)))
    }

    /// [`write`](RwLock::write), giving up at `deadline` (`Err(WouldBlock)`).
    pub fn try_write_until(&self, deadline: Instant) -> TryLockResult<RwLockWriteGuard<'_>> {
        from_attempt(self.write_until(Some(deadline)))
    }

    /// `read` with a deadline (`None`: never), with `Ok(None)` for one that passed.
    fn read_until(&self, deadline: Option<Instant>) -> ReadAttempt<'_> {
        if self.try_enter_reader() {
            return Ok(Some(RwLockReadGuard::new(self)));
        }
        let me = self.me();
        let entry = self.read_contended(me, deadline);
        self.read_result(me, entry)
    }

    /// `write` with a deadline (`None`: never), with `Ok(None)` for one that passed.
    fn write_until(&self, deadline: Option<Instant>) -> Attempt<RwLockWriteGuard<'_>> {
        let me = if self.shared {
            let me = owner::shared_thread_identity();
            if self.shared_try_claim_write(me) {
                return Ok(Some(RwLockWriteGuard::new(self, me)));
            }
            me
        } else if self.state().compare_exchange(0, WRITER, Acquire).is_ok() {
            self.owner().store(owner::thread_token(), Relaxed);
            return Ok(Some(RwLockWriteGuard::new(self, owner::NONE)));
        } else {
            owner::thread_token()
        };
        let acquired = self.write_contended(me, deadline);
        self.write_result(me, acquired)
    }

    /// The read guard (or error) for how a blocking read ended.
    fn read_result(&self, me: u64, entry: Result<Entry, Error>) -> ReadAttempt<'_> {
        match entry? {
            Entry::Read => Ok(Some(RwLockReadGuard::new(self))),
            Entry::OwnerDied => Err(LockError::OwnerDied(RwLockWriteGuard::died(self, me))),
            Entry::TimedOut => Ok(None),
        }
    }

    /// The write guard (or error) for how a write attempt ended.
    fn write_result(
        &self,
        me: u64,
        acquired: Result<Option<Acquired>, Error>,
    ) -> Attempt<RwLockWriteGuard<'_>> {
        let holder = if self.shared { me } else { owner::NONE };
        match acquired? {
            None => Ok(None),
            Some(Acquired::Clean) => Ok(Some(RwLockWriteGuard::new(self, holder))),
            Some(Acquired::OwnerDied) => {
                Err(LockError::OwnerDied(RwLockWriteGuard::died(self, me)))
            }
        }
    }

    /// The caller's owner value: its identity in a process-shared buffer, its token otherwise.
    fn me(&self) -> u64 {
        if self.shared {
            owner::shared_thread_identity()
        } else {
            owner::thread_token()
        }
    }

    /// Whether the lock lives in a process-shared buffer.
    #[inline]
    pub(super) fn is_shared(&self) -> bool {
        self.shared
    }

    #[inline]
    pub(super) fn state(&self) -> Word<'_, u64> {
        self.state.get()
    }

    #[inline]
    pub(super) fn owner(&self) -> Word<'_, u64> {
        self.owner.get()
    }

    #[inline]
    pub(super) fn readers_sequence(&self) -> Word<'_, u32> {
        self.sequences.get(READERS_SEQUENCE)
    }

    #[inline]
    pub(super) fn writers_sequence(&self) -> Word<'_, u32> {
        self.sequences.get(WRITERS_SEQUENCE)
    }

    /// `Err(WouldDeadlock)` if the caller (`me`) holds the write lock.
    pub(super) fn check_relock(&self, me: u64) -> Result<(), Error> {
        if self.owner().load(Relaxed) == me {
            Err(Error::WouldDeadlock)
        } else {
            Ok(())
        }
    }

    /// The read fast path: one load and one compare-exchange.
    #[inline]
    pub(super) fn try_enter_reader(&self) -> bool {
        let state = self.state().load(Relaxed);
        read_lockable(state, false)
            && self
                .state()
                .compare_exchange(state, state + ONE_READER, Acquire)
                .is_ok()
    }

    /// The slow path of every blocking read: relock check, spin, then the waiting loop.
    #[cold]
    fn read_contended(&self, me: u64, deadline: Option<Instant>) -> Result<Entry, Error> {
        if self.shared {
            return self.shared_read_contended(me, deadline);
        }
        let entered = self.private_read_contended(me, deadline)?;
        Ok(if entered {
            Entry::Read
        } else {
            Entry::TimedOut
        })
    }

    /// [`RwLock::read_contended`] in a private buffer.
    fn private_read_contended(&self, me: u64, deadline: Option<Instant>) -> Result<bool, Error> {
        self.check_relock(me)?;
        if self.spin_then_read() {
            return Ok(true);
        }
        let mut registered = false;
        let mut waited = false;
        let mut poll = Poll::new();
        loop {
            // Eventcount: the sequence before the state (see the module docs).
            let sequence = self.readers_sequence().load(Acquire);
            let state = self.state().load(Relaxed);
            if read_lockable(state, waited) {
                let mut next = state + ONE_READER;
                if registered {
                    next = next.wrapping_sub(ONE_WAITING_READER);
                }
                if self.state().compare_exchange(state, next, Acquire).is_ok() {
                    return Ok(true);
                }
                continue;
            }
            if readers(state) == READERS_MASK
                || (!registered
                    && waiting_readers(state) == WAITING_READERS_MASK / ONE_WAITING_READER)
            {
                // 4M readers in (a leaving reader wakes nobody), or no room to count one more
                // waiter (or the bytes were overwritten): poll instead of sleeping on the
                // sequence, asleep between looks (S7).
                if let Err(stop) = poll.pause(deadline) {
                    if registered {
                        self.state().fetch_sub(ONE_WAITING_READER, Relaxed);
                    }
                    return stop.into_result(false);
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
            let slept = self.readers_sequence().wait_until(sequence, deadline);
            match slept {
                Ok(WaitResult::Ok | WaitResult::NotEqual) => waited = true,
                Ok(WaitResult::TimedOut) | Err(_) => {
                    self.state().fetch_sub(ONE_WAITING_READER, Relaxed);
                    return slept.map(|_| false);
                }
            }
        }
    }

    /// The slow path of every blocking write: `Some` once the caller (`me`) holds the write
    /// lock, `None` if `deadline` passed first.
    #[cold]
    fn write_contended(
        &self,
        me: u64,
        deadline: Option<Instant>,
    ) -> Result<Option<Acquired>, Error> {
        if self.owner().load(Relaxed) == me {
            return Err(Error::WouldDeadlock);
        }
        if self.shared {
            return self.shared_write_contended(me, deadline);
        }
        let acquired = self.spin_then_write() || self.wait_to_write(deadline)?;
        if acquired {
            self.owner().store(me, Relaxed);
        }
        Ok(acquired.then_some(Acquired::Clean))
    }

    /// Retries a read lock a few times while nobody is queued ([`Backoff::settled`]: a writer
    /// found in is not looked at again at once); `true` once it is taken. Both protocols
    /// (private and process-shared) start their read this way.
    pub(super) fn spin_then_read(&self) -> bool {
        self.spin_then(
            |state| read_lockable(state, false),
            |state| state + ONE_READER,
        )
    }

    /// Retries the write lock a few times while nobody is queued ([`Backoff::settled`]).
    fn spin_then_write(&self) -> bool {
        self.spin_then(write_lockable, |state| state | WRITER)
    }

    /// The spin both take: while the state is `lockable`, tries to move it to `locked(state)`;
    /// otherwise retries after a backoff step, as long as nobody is queued.
    #[inline(always)]
    fn spin_then(&self, lockable: impl Fn(u64) -> bool, locked: impl Fn(u64) -> u64) -> bool {
        let mut backoff = Backoff::settled();
        let mut state = self.state().load(Relaxed);
        loop {
            if lockable(state) {
                match self.state().compare_exchange(state, locked(state), Acquire) {
                    Ok(_) => return true,
                    Err(actual) => {
                        state = actual;
                        continue;
                    }
                }
            }
            if !nobody_waiting(state) || !backoff.spin() {
                return false;
            }
            state = self.state().load(Relaxed);
        }
    }

    fn wait_to_write(&self, deadline: Option<Instant>) -> Result<bool, Error> {
        let mut registered = false;
        let mut poll = Poll::new();
        loop {
            let sequence = self.writers_sequence().load(Acquire);
            let state = self.state().load(Relaxed);
            if write_lockable(state) {
                let mut next = state | WRITER;
                if registered {
                    next = next.wrapping_sub(ONE_WAITING_WRITER);
                }
                if self.state().compare_exchange(state, next, Acquire).is_ok() {
                    return Ok(true);
                }
                continue;
            }
            if !registered {
                if waiting_writers_full(state) {
                    // No room to count one more waiter (or the bytes were overwritten): poll,
                    // asleep between looks (S7).
                    if let Err(stop) = poll.pause(deadline) {
                        return stop.into_result(false);
                    }
                    continue;
                }
                let next = state + ONE_WAITING_WRITER;
                if self.state().compare_exchange(state, next, Relaxed).is_err() {
                    continue;
                }
                registered = true;
            }
            // A woken writer that finds the lock taken sleeps again: whoever took it wakes a
            // writer when it leaves (invariant 3). The deadline is only noticed by a sleep.
            let slept = self.writers_sequence().wait_until(sequence, deadline);
            if let Ok(WaitResult::TimedOut) | Err(_) = slept {
                self.leave_as_writer();
                return slept.map(|_| false);
            }
        }
    }

    /// A waiting writer gives up: uncount it; the last waiting writer to leave wakes the
    /// readers that deferred to it.
    pub(super) fn leave_as_writer(&self) {
        let before = self.state().fetch_sub(ONE_WAITING_WRITER, Relaxed);
        let left = before.wrapping_sub(ONE_WAITING_WRITER);
        if waiting_writers(left) == 0 && waiting_readers(left) > 0 && left & WRITER == 0 {
            self.wake_readers();
        }
    }

    /// Releases a read lock (the read guard's drop).
    #[inline]
    fn read_unlock(&self) {
        let before = self.state().fetch_sub(ONE_READER, Release);
        if readers(before) == 1 && (before & READ_PHASE != 0 || waiting_writers(before) > 0) {
            self.last_reader_out();
        }
    }

    /// The last reader out ends a read phase and wakes a writer, unless another reader or a
    /// writer got in meanwhile (then its own exit does that).
    #[cold]
    fn last_reader_out(&self) {
        let mut state = self.state().load(Relaxed);
        loop {
            if readers(state) > 0 || state & WRITER != 0 {
                return;
            }
            if state & READ_PHASE != 0 {
                let next = state & !READ_PHASE;
                if let Err(actual) = self.state().compare_exchange(state, next, Relaxed) {
                    state = actual;
                    continue;
                }
            }
            if waiting_writers(state) > 0 {
                self.wake_writer();
            }
            return;
        }
    }

    /// Releases the write lock (the write guard's drop) in a private buffer.
    #[inline]
    fn write_unlock(&self) {
        self.owner().store(owner::NONE, Relaxed);
        if self.state().compare_exchange(WRITER, 0, Release).is_err() {
            let (phase, released) = self.release_write_contended();
            self.wake_after_write(phase, released);
        }
    }

    /// The slow write unlock's state change: clears `WRITER`, opening a read phase if readers
    /// wait. Returns whether it opened one, and the state it left.
    #[cold]
    pub(super) fn release_write_contended(&self) -> (bool, u64) {
        let mut state = self.state().load(Relaxed);
        loop {
            let phase = waiting_readers(state) > 0;
            let released = (state & !WRITER) | if phase { READ_PHASE } else { 0 };
            match self.state().compare_exchange(state, released, Release) {
                Ok(_) => return (phase, released),
                Err(actual) => state = actual,
            }
        }
    }

    /// The slow write unlock's wakes: the waiting readers of a read phase, or a writer.
    pub(super) fn wake_after_write(&self, phase: bool, released: u64) {
        if phase {
            if self.wake_readers() == 0 {
                self.end_empty_read_phase();
            }
        } else if waiting_writers(released) > 0 {
            self.wake_writer();
        }
    }

    /// A read phase whose wake found no reader asleep: end it now unless a reader got in
    /// (whose exit ends it), and wake a writer.
    pub(super) fn end_empty_read_phase(&self) {
        let mut state = self.state().load(Relaxed);
        while state & READ_PHASE != 0 && readers(state) == 0 {
            match self
                .state()
                .compare_exchange(state, state & !READ_PHASE, Relaxed)
            {
                Ok(_) => {
                    if waiting_writers(state) > 0 {
                        self.wake_writer();
                    }
                    return;
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// Bumps the readers' sequence and wakes every waiting reader; returns how many it woke.
    pub(super) fn wake_readers(&self) -> usize {
        self.readers_sequence().fetch_add(1, Release);
        self.readers_sequence().notify(None)
    }

    /// Bumps the writers' sequence and wakes one waiting writer.
    pub(super) fn wake_writer(&self) {
        self.writers_sequence().fetch_add(1, Release);
        self.writers_sequence().notify(Some(1));
    }
}

impl Clone for RwLock {
    fn clone(&self) -> RwLock {
        // Re-attaching cannot fail: the place was checked, and buffers never shrink.
        RwLock::at(self.buffer(), self.byte_offset).expect("a checked place stays valid")
    }
}

impl fmt::Debug for RwLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLock")
            .field("byte_offset", &self.byte_offset)
            .field("readers", &self.reader_count())
            .field("write_locked", &self.is_write_locked())
            .finish()
    }
}

/// Proof that the calling thread holds a read lock on an [`RwLock`]; dropping it unlocks.
/// Not `Send`, like the mutex's guard.
#[must_use = "the read lock is released when the guard is dropped"]
pub struct RwLockReadGuard<'a> {
    lock: &'a RwLock,
    _not_send: PhantomData<std::sync::MutexGuard<'static, ()>>,
}

impl<'a> RwLockReadGuard<'a> {
    #[inline]
    fn new(lock: &'a RwLock) -> RwLockReadGuard<'a> {
        RwLockReadGuard {
            lock,
            _not_send: PhantomData,
        }
    }

    /// The lock this guard holds.
    pub fn lock(&self) -> &'a RwLock {
        self.lock
    }
}

impl Drop for RwLockReadGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // a failed loom model: see `shim::model_is_unwinding`
        }
        self.lock.read_unlock();
    }
}

impl fmt::Debug for RwLockReadGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLockReadGuard")
            .field("byte_offset", &self.lock.byte_offset)
            .finish()
    }
}

/// Proof that the calling thread holds the write lock on an [`RwLock`]; dropping it unlocks.
/// Not `Send`: the lock records the thread that took it.
#[must_use = "the write lock is released when the guard is dropped"]
pub struct RwLockWriteGuard<'a> {
    lock: &'a RwLock,
    /// In a process-shared buffer: the identity the lock was taken as.
    holder: u64,
    /// Taken over from a dead writer and not yet marked consistent (X3).
    inconsistent: bool,
    _not_send: PhantomData<std::sync::MutexGuard<'static, ()>>,
}

impl<'a> RwLockWriteGuard<'a> {
    #[inline]
    fn new(lock: &'a RwLock, holder: u64) -> RwLockWriteGuard<'a> {
        RwLockWriteGuard {
            lock,
            holder,
            inconsistent: false,
            _not_send: PhantomData,
        }
    }

    /// The guard of a write lock taken over from a dead writer: inconsistent until marked.
    fn died(lock: &'a RwLock, holder: u64) -> RwLockWriteGuard<'a> {
        // Not `..RwLockWriteGuard::new(..)`: that would drop a second guard, unlocking.
        RwLockWriteGuard {
            lock,
            holder,
            inconsistent: true,
            _not_send: PhantomData,
        }
    }

    /// The lock this guard holds.
    pub fn lock(&self) -> &'a RwLock {
        self.lock
    }

    /// As [`MutexGuard::mark_consistent`](super::MutexGuard::mark_consistent): the data is
    /// repaired after a writer died holding the lock; released without this call, the guard
    /// retires the lock (every later `read` and `write` returns `Err(NotRecoverable)`, X3).
    pub fn mark_consistent(&mut self) {
        self.inconsistent = false;
    }

    /// Whether the guard still waits for
    /// [`mark_consistent`](RwLockWriteGuard::mark_consistent).
    pub fn is_inconsistent(&self) -> bool {
        self.inconsistent
    }
}

impl Drop for RwLockWriteGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // a failed loom model: see `shim::model_is_unwinding`
        }
        if self.lock.is_shared() {
            self.lock
                .shared_write_unlock(self.holder, self.inconsistent);
        } else {
            self.lock.write_unlock();
        }
    }
}

impl fmt::Debug for RwLockWriteGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLockWriteGuard")
            .field("byte_offset", &self.lock.byte_offset)
            .field("inconsistent", &self.inconsistent)
            .finish()
    }
}
