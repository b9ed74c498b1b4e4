//! [`Mutex`]: a lock word at an offset of a [`SharedBuffer`] (docs/semantics.md S1, S2, S3, S5, S6).
//!
//! This file is the protocol of a private buffer. In a process-shared buffer the same 16 bytes
//! run the protocol of `shared_mutex.rs`, where the owner word is the lock, so that a holder
//! that dies is always named (X3); the public API, here, dispatches on the buffer's kind once
//! per call.
//!
//! # Words (16 bytes, aligned to 8; all zero = unlocked, nobody waiting)
//!
//! | offset | word | who sleeps on it |
//! | --- | --- | --- |
//! | 0 | `state: u32`: hold count (bits 0–1, 0–2 holds of `LOCKED`), `HEIR`, `WOKEN`, `ASYNC` flags, waiter count from bit 5 | queued waiters |
//! | 4 | `side: u32`: a sequence number, bumped before each wake of its sleepers | the heir, `lock_async` futures |
//! | 8 | `owner: u64`: the holder's token ([`owner`]), 0 when unlocked | nobody |
//!
//! # Protocol
//!
//! Every decision is a read-modify-write of `state` (compare-exchanges, and the unlock's
//! subtraction), so the decisions of all threads are totally ordered; the other two words only
//! carry sleep and identity. The lock is held while the hold count (`state & HOLDS`) is not 0.
//! It is 1 while held, and 2 while held with the heir's hold reserved (below), so that every
//! unlock is the same subtraction of `LOCKED`.
//!
//! - **Lock**: one compare-exchange `0 → LOCKED` on the fast path; otherwise a bounded spin
//!   (whether or not anyone is queued; its first re-read waits a while, see
//!   `Backoff::settled`), then the waiter loop. A thread that finds the lock free takes
//!   it with a compare-exchange that keeps the other bits (barging: the running thread wins,
//!   which is what makes a contended lock fast). A thread that finds it held registers (adds one
//!   to the count, once) and sleeps on `state` while it holds the value it saw.
//! - **Unlock**: clear the owner word, then subtract `LOCKED` (a `fetch_sub`: on x86 a `lock
//!   xadd`, cheaper than a compare-exchange, and it cannot fail). Found `LOCKED` alone, that was
//!   all: the word is 0. Found two holds (an heir pending), the subtraction has handed the lock
//!   over (one hold left, now the heir's): wake the side word. Otherwise it has released the
//!   lock with waiters counted or `ASYNC` set: then, in a compare-exchange loop, clear `ASYNC`
//!   and, if the lock is still free, waiters are counted and no `WOKEN` baton is out, set
//!   `WOKEN`; then wake one queued waiter ([`Mutex::pass_baton`]) and, last, the side word (its
//!   futures' wakers are user code and may panic: the baton is passed before they run). If a barger
//!   took the lock in between, its unlock wakes instead.
//! - **The `WOKEN` baton** (Go's `mutexWoken`): at most one woken-but-not-yet-running waiter at a
//!   time, so a burst of unlocks does not wake the whole queue. Whoever holds it must look at
//!   the state again: it takes the lock if free, or — after a bounded spin, still holding the
//!   baton, so that the unlocks meanwhile wake nobody — clears `WOKEN` in the compare-exchange
//!   with which it sleeps again (the lock is then held, and its holder's unlock wakes the next). It
//!   never leaves holding the baton: a waiter notices its deadline (or a terminate) only as the
//!   result of a sleep, so it has cleared `WOKEN` on the way to that sleep. An unlocker whose
//!   wake found nobody asleep (the counted waiters are still on their way to sleep) clears
//!   `WOKEN` itself, which changes the word, so those waiters' sleeps see a different value and
//!   return at once.
//! - **The heir** (bounded unfairness, S5; Go's starvation mode, one waiter at a time): barging
//!   lets a running thread beat a woken one indefinitely, and the waiter table is FIFO, so a
//!   woken waiter that lost the race re-queues at the back; and a spinner that yields on a
//!   crowded core can stay off the CPU for milliseconds while a thread on that core wins the
//!   lock in a tight loop. So a waiter that has waited past [`STARVATION`] (1 ms, counted from
//!   its spin's start, whether it has slept or only spun), or a spinner about to yield again
//!   after [`SPIN_STARVATION`] (under loom, where nobody spins: a waiter that has slept
//!   [`loom_starving_after`] times), is *starving*: it stops spinning, and in the waiter loop
//!   sets `HEIR` (if no heir is pending) and waits on the side word instead, adding a second
//!   hold, reserved for itself, in the same compare-exchange. The
//!   next unlock's subtraction then hands the lock over without releasing it: `HEIR` with one
//!   hold is *granted*, still held, so no barger can take it; the unlocker then bumps and wakes
//!   the side word, and yields its core (natively): the heir most often starved because that
//!   thread kept winning the lock there, and would win it back as soon as the heir lets go. The
//!   heir looks at the state a few times before it sleeps (the grant usually comes within
//!   nanoseconds), and claims it by clearing `HEIR` (the hold left is its own). The handoff
//!   is a value in the word, not a wake count: an heir that times out or is terminated withdraws
//!   by clearing `HEIR` and giving back its reserved hold with a compare-exchange, and if it
//!   finds the lock granted instead it is already its own, and it takes it (a handoff is never
//!   lost to a racing timeout, and never given to nobody). Spurious or stray wakes of the
//!   side word are harmless: the heir re-reads the state. (A handoff by wake count alone — keep
//!   the lock, wake the oldest waiter, take the lock back if the wake counted nobody — would hand
//!   the lock to the oldest sleeper rather than the starving one, which re-queued at the back,
//!   and a woken waiter could not tell a handoff from an ordinary wake once both happen.)
//! - **Async waiters** (`lock_async`) set `ASYNC` and sleep on the side word (sequence read
//!   before the flag is set, an eventcount); an unlock that clears `ASYNC` bumps the side word
//!   and wakes all its sleepers, which then race for the lock like barging threads. A dropped
//!   future therefore never strands anyone: it held no baton.
//!
//! # Invariants
//!
//! 1. Two holds ⇔ `HEIR` pending; `HEIR` with one hold: granted; `HEIR` never without a hold. An
//!    heir is made only on a lock held once without `HEIR` (adding its hold), only the heir's
//!    withdrawal takes its reserved hold back, so a held lock with `HEIR` is never released, only
//!    granted.
//! 2. The count is the number of threads between their first sleep and their return from `lock`
//!    (heir included). The fast unlock therefore finds more than `LOCKED` whenever anyone is
//!    counted, so every waiter is seen by the slow unlock.
//! 3. A waiter only sleeps on a `state` value with a hold; at that moment either the lock's
//!    holder will unlock later (and wake one, or hand over to the heir), or a `WOKEN` holder is
//!    running and will look at the state again. So a sleeping waiter is never stranded. (Between
//!    a releasing subtraction and the unlocker's `WOKEN`, the word says free with waiters counted
//!    and no baton: nobody sleeps on that value, a waiter that sees it takes the lock, and a
//!    barger that takes it first unlocks into the same slow path.)
//! 4. `WOKEN` set ⇒ one thread holds the baton: the waiter a normal unlock woke (the waiter table
//!    counts a waiter exactly when its wait returns `Ok`, which is how it knows), or the unlocker
//!    between a wake that found nobody and its clearing `WOKEN`.
//! 5. Only the lock's holder grants (by its unlock's subtraction); only the heir clears `HEIR`.
//! 6. The owner word: only the holder writes its own token, and clears it before it releases or
//!    hands over (so a thread that reads its own token holds the lock: `Err(WouldDeadlock)`).

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::attach;
use super::deadline_after;
use super::lock_result::{from_attempt, Attempt, LockError, LockResult, TryLockResult};
use super::owner;
use super::spin::{Backoff, Poll};
use crate::atomics::{RequeueTarget, SharedWord, SharedWords, WaitResult, Word};
use crate::buffer::SharedBuffer;
use crate::error::Error;
use crate::shim::{self, thread, Ordering::*, LOOM};

/// `state`: one hold of the lock (the hold count occupies bits 0 and 1). 1: held (or granted
/// to the heir); 2: held, with the heir's hold reserved, so that the holder's unlock, a plain
/// subtraction of `LOCKED`, leaves the lock held on the heir's behalf.
const LOCKED: u32 = 1;
/// `state`: the hold count's bits.
const HOLDS: u32 = 3;
/// `state`: a starving waiter sleeps on the side word; the next unlock hands the lock to it
/// (pending while two holds are counted, granted once one is).
const HEIR: u32 = 4;
/// `state`: a waiter woken by a normal unlock has not looked at the state yet (the baton).
const WOKEN: u32 = 8;
/// `state`: `lock_async` futures may sleep on the side word; the next release wakes them.
const ASYNC: u32 = 16;
/// `state`: one counted waiter (the count occupies the bits from here up).
const WAITER: u32 = 32;
/// The largest state from which one more waiter can still be counted.
const MAX_COUNTABLE: u32 = u32::MAX - WAITER;

/// How long a waiter waits, from its spin's start, before it asks for the next unlock to be
/// handed to it (Go's starvation threshold), whether it has slept or only spun. Under loom,
/// where time does not pass and nobody spins, a waiter qualifies once it has slept
/// [`loom_starving_after`] times instead.
const STARVATION: Duration = Duration::from_millis(1);

/// How long a spinner may have waited before, instead of yielding once more, it asks for the
/// next unlock (it is starving at once, see [`Mutex::spin_then_take`]). Shorter than
/// [`STARVATION`]: its next yield may keep it off the CPU for a whole time slice of a thread
/// that wins the lock in a tight loop on its core, and off the CPU it cannot ask.
const SPIN_STARVATION: Duration = Duration::from_micros(150);

std::thread_local! {
    /// Under loom: the sleeps after which a waiter counts as starving (1 unless a model sets it
    /// through `loom_hooks::mutex_starving_after`). A std thread-local, not a loom one: loom runs
    /// all of a model's threads on the test's own thread, and the setting belongs to the test.
    static LOOM_STARVING_AFTER: std::cell::Cell<u32> = const { std::cell::Cell::new(1) };
}

/// Under loom: the number of sleeps after which a waiter counts as starving.
fn loom_starving_after() -> u32 {
    LOOM_STARVING_AFTER.with(std::cell::Cell::get)
}

/// Sets [`loom_starving_after`] for the calling test (`u32::MAX`: never).
#[allow(dead_code)] // used by the loom hooks only
pub(crate) fn set_loom_starving_after(sleeps: u32) {
    LOOM_STARVING_AFTER.with(|after| after.set(sleeps));
}

/// How [`Mutex::spin_then_take`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spun {
    /// It took the lock.
    Taken,
    /// Its budget is spent: the waiter loop, as any waiter.
    GaveUp,
    /// It has waited [`SPIN_STARVATION`]: the waiter loop, starving at once.
    Starving,
}

/// Indices of the two 32-bit words in `Mutex::words`.
const STATE: usize = 0;
const SIDE: usize = 1;

fn waiters(state: u32) -> u32 {
    state / WAITER
}

/// Whether the lock is held (or granted to the heir) in `state`.
fn held(state: u32) -> bool {
    state & HOLDS != 0
}

/// Whether `state` says the lock was handed to the heir, which has not claimed it yet.
fn granted(state: u32) -> bool {
    state & HEIR != 0 && state & HOLDS == LOCKED
}

/// A mutual-exclusion lock whose state lives in 16 bytes of a [`SharedBuffer`] (docs/semantics.md S2).
///
/// A `Mutex` guards no Rust value: it guards whatever the threads agree it guards, typically
/// other bytes of the same buffer, read and written through views while the lock is held. The
/// lock's acquire and release order those accesses like any lock does.
///
/// - [`lock`](Mutex::lock) blocks until the lock is free; [`try_lock`](Mutex::try_lock) never
///   blocks; [`try_lock_for`](Mutex::try_lock_for) / [`try_lock_until`](Mutex::try_lock_until)
///   give up at a deadline (S3); [`lock_async`](Mutex::lock_async) is a future for async code.
/// - The lock is released only by dropping the [`MutexGuard`]. A thread that locks a mutex it
///   already holds gets `Err(WouldDeadlock)` instead of hanging (S2).
/// - Throughput first, with bounded unfairness (S5): a running thread may take a just-released
///   lock ahead of a sleeping one, but a waiter that has waited past about 1 ms is handed the
///   lock at the next unlock (in a private buffer; see below).
/// - Inside a worker, a blocked `lock` returns `Err(Terminated)` when the worker is terminated
///   (S6).
/// - Not poisoned by a panic (as parking_lot's): the guard's drop still unlocks.
/// - A guard leaked with [`mem::forget`](std::mem::forget) in a private buffer leaves the lock
///   held for ever (as with any lock): other lockers wait until their deadline, and the leaking
///   thread's relock is still `Err(WouldDeadlock)`. A leaked [`LockFuture`](super::LockFuture)
///   only leaks its wait. (In a process-shared buffer, a guard leaked by a thread that then
///   ends counts as a dead holder, below.)
/// - **In a process-shared buffer the lock survives its holder's death** (X3): when the thread
///   holding it dies — its process killed — the next locker takes it over and gets
///   `Err(LockError::OwnerDied(guard))`, within a fraction of a second even if it was already
///   asleep. Repair the data, then [`mark_consistent`](MutexGuard::mark_consistent); a guard
///   released without that retires the lock: every later lock, in every process, returns
///   `Err(NotRecoverable)`. The results are [`LockResult`]s, std's shape: `?` turns a
///   `LockError` into an [`Error`] (dropping an `OwnerDied` guard unrepaired). There the
///   lock's protocol is the one in `shared_mutex.rs`: waiters are woken oldest first but not
///   handed the lock.
///
/// ```
/// use sharedbuf::sync::Mutex;
/// use sharedbuf::{Int32Array, SharedBuffer, Error};
///
/// let buffer = SharedBuffer::new(64)?;
/// let mutex = Mutex::at(&buffer, 0)?; // bytes 0..16; a fresh buffer is an unlocked mutex
/// let pair = Int32Array::with_range(&buffer, Mutex::BYTES, Some(2))?;
///
/// let threads: Vec<_> = (0..4)
///     .map(|_| {
///         let (mutex, pair) = (mutex.clone(), pair.clone());
///         std::thread::spawn(move || -> Result<(), Error> {
///             for _ in 0..1000 {
///                 let _guard = mutex.lock()?;
///                 // Two plain stores that no other thread ever sees half done.
///                 pair.set(0, pair.get(0).unwrap() + 1)?;
///                 pair.set(1, pair.get(1).unwrap() + 1)?;
///             }
///             Ok(())
///         })
///     })
///     .collect();
/// for thread in threads {
///     thread.join().unwrap()?;
/// }
/// assert_eq!(pair.to_vec(), [4000, 4000]);
///
/// let guard = mutex.lock()?;
/// assert!(mutex.lock().is_err_and(|e| e == Error::WouldDeadlock));
/// drop(guard);
/// # Ok::<(), Error>(())
/// ```
///
/// A holder that dies, and the repair (only a process-shared buffer reports one). Here the
/// holder is a thread that ends with its guard leaked, which counts as dead just like a
/// process killed while holding the lock:
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use sharedbuf::sync::{LockError, Mutex};
/// use sharedbuf::{Error, Int32Array, SharedBuffer};
///
/// let buffer = SharedBuffer::memfd("accounts", 64)?; // process-shared
/// let mutex = Mutex::at(&buffer, 0)?;
/// let pair = Int32Array::with_range(&buffer, Mutex::BYTES, Some(2))?; // equal when unlocked
///
/// let (m, p) = (mutex.clone(), pair.clone());
/// std::thread::spawn(move || {
///     let guard = m.lock().unwrap();
///     p.set(0, 10).unwrap(); // half an update...
///     std::mem::forget(guard); // ...and the holder is gone
/// })
/// .join()
/// .unwrap();
///
/// let guard = match mutex.lock() {
///     Ok(guard) => guard,
///     Err(LockError::OwnerDied(mut guard)) => {
///         pair.set(1, pair.get(0).unwrap())?; // repair what the dead holder left
///         guard.mark_consistent(); // without this, the drop below would retire the lock
///         guard
///     }
///     Err(LockError::Failed(error)) => return Err(error),
/// };
/// assert_eq!(pair.to_vec(), [10, 10]);
/// drop(guard);
/// assert!(mutex.lock().is_ok()); // a normal lock again
/// # }
/// # Ok::<(), sharedbuf::Error>(())
/// ```
pub struct Mutex {
    /// `state` and `side` (see the module docs).
    words: SharedWords<u32>,
    owner: SharedWord<u64>,
    byte_offset: usize,
    /// The buffer is process-shared: the protocol of `shared_mutex.rs`.
    shared: bool,
    /// In a process-shared buffer, while a guard taken through this handle is alive: the
    /// identity the lock was taken as (and is released from), and whether it was taken over
    /// from a dead holder and not yet marked consistent (X3). Only that guard's thread touches
    /// them, ordered by the lock itself, so relaxed accesses suffice. They live here, not in the
    /// guard, to keep [`MutexGuard`] one pointer wide: a wider guard is written field by field
    /// by `lock` and read back whole by the caller, and on x86 that load cannot be forwarded
    /// from the stores (measured: lock + unlock in a plain loop took 17 ns instead of 5).
    guard_holder: std::sync::atomic::AtomicU64,
    guard_inconsistent: std::sync::atomic::AtomicBool,
}

/// How a lock was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Acquired {
    /// From a holder that released it.
    Clean,
    /// Taken over from a holder that died holding it (X3).
    OwnerDied,
}

impl Mutex {
    /// Bytes a mutex occupies.
    pub const BYTES: usize = 16;
    /// Alignment its byte offset must have.
    pub const ALIGN: usize = 8;

    /// A handle on the mutex at `byte_offset` of `buffer`. All-zero bytes are an unlocked mutex,
    /// so attaching writes nothing, and every handle at the same offset is the same mutex (S1).
    ///
    /// `Err(Misaligned)` unless `byte_offset` is a multiple of [`ALIGN`](Mutex::ALIGN);
    /// `Err(RangeOutOfBounds)` unless its [`BYTES`](Mutex::BYTES) bytes lie in the buffer.
    pub fn at(buffer: &SharedBuffer, byte_offset: usize) -> Result<Mutex, Error> {
        attach::check(buffer, byte_offset, Self::BYTES, Self::ALIGN)?;
        Ok(Mutex {
            words: SharedWords::at(buffer, byte_offset, 2)?,
            owner: SharedWord::at(buffer, byte_offset + 8)?,
            byte_offset,
            shared: buffer.is_process_shared(),
            guard_holder: std::sync::atomic::AtomicU64::new(owner::NONE),
            guard_inconsistent: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The byte offset of the mutex in its buffer.
    pub fn byte_offset(&self) -> usize {
        self.byte_offset
    }

    /// The buffer the mutex lives in.
    pub fn buffer(&self) -> &SharedBuffer {
        self.words.buffer()
    }

    /// Whether some thread (or task) holds the lock now. Only a snapshot. A lock retired as
    /// not recoverable (X3) counts as locked.
    pub fn is_locked(&self) -> bool {
        if self.shared {
            return self.owner().load(Relaxed) != owner::NONE;
        }
        held(self.state().load(Relaxed))
    }

    /// Blocks until the lock is free, then takes it.
    ///
    /// `Err(Failed(WouldDeadlock))` if the calling thread already holds it;
    /// `Err(Failed(Terminated))` if the thread's interrupter fires while it waits (a worker's
    /// `terminate()`, S6). In a process-shared buffer also `Err(OwnerDied(guard))` (taken from a
    /// holder that died) and `Err(Failed(NotRecoverable))` (X3), and the errors of a
    /// process-shared wait (`TooManyWaiters`, `BadHeader`).
    #[inline]
    pub fn lock(&self) -> LockResult<MutexGuard<'_>> {
        if !self.shared && self.state().compare_exchange(0, LOCKED, Acquire).is_ok() {
            self.owner().store(owner::thread_token(), Relaxed);
            return Ok(MutexGuard::private(self));
        }
        self.lock_slow()
    }

    /// [`lock`](Mutex::lock) past the private fast path.
    #[inline(never)]
    fn lock_slow(&self) -> LockResult<MutexGuard<'_>> {
        if self.shared {
            let me = owner::shared_thread_identity();
            if self.shared_try_take(me) {
                return Ok(MutexGuard::shared(self, me));
            }
            let acquired = self.shared_lock_contended(me, None);
            return self
                .shared_guard(me, acquired)?
                .ok_or(LockError::Failed(Error::Timeout)); // no deadline: never
        }
        // A second try after the fast path's, on purpose: going straight to the contended path
        // with the fast path's value was slower in A/B runs (2 threads 1.19-1.40x against
        // 0.97-1.09x parking_lot's time, 8 threads 1.36-1.44x against 1.12-1.25x): by now the
        // holder has often let go, and `spin_then_take` would first back off.
        match self.state().compare_exchange(0, LOCKED, Acquire) {
            Ok(_) => self.owner().store(owner::thread_token(), Relaxed),
            Err(seen) => {
                self.lock_contended(seen, None)?;
            }
        }
        Ok(MutexGuard::private(self))
    }

    /// Takes the lock if it is free now (TC39's `lockIfAvailable`): `Err(WouldBlock)` if another
    /// thread holds it, `Err(Failed(WouldDeadlock))` if the calling thread does. Never blocks.
    /// In a process-shared buffer, a holder found dead is taken over (`Err(OwnerDied(guard))`).
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_>> {
        from_attempt(self.attempt_now())
    }

    /// [`try_lock`](Mutex::try_lock), with `Ok(None)` for a lock held elsewhere.
    fn attempt_now(&self) -> Attempt<MutexGuard<'_>> {
        if self.shared {
            let me = owner::shared_thread_identity();
            let acquired = self.shared_try_lock(me, true);
            return self.shared_guard(me, acquired);
        }
        let me = owner::thread_token();
        if self.try_take_for(me) {
            return Ok(Some(MutexGuard::private(self)));
        }
        if self.owner().load(Relaxed) == me {
            return Err(LockError::Failed(Error::WouldDeadlock));
        }
        Ok(None)
    }

    /// [`lock`](Mutex::lock), giving up after `timeout`: `Err(WouldBlock)` if the lock could
    /// not be taken in time (S3). A zero timeout tries once.
    pub fn try_lock_for(&self, timeout: Duration) -> TryLockResult<MutexGuard<'_>> {
        from_attempt(self.lock_until(deadline_after(timeout)))
    }

    /// [`lock`](Mutex::lock), giving up at `deadline`: `Err(WouldBlock)` if the lock could not
    /// be taken by then (S3).
    pub fn try_lock_until(&self, deadline: Instant) -> TryLockResult<MutexGuard<'_>> {
        from_attempt(self.lock_until(Some(deadline)))
    }

    /// `lock` with a deadline (`None`: never), with `Ok(None)` for one that passed.
    fn lock_until(&self, deadline: Option<Instant>) -> Attempt<MutexGuard<'_>> {
        if self.shared {
            let me = owner::shared_thread_identity();
            if self.shared_try_take(me) {
                return Ok(Some(MutexGuard::shared(self, me)));
            }
            let acquired = self.shared_lock_contended(me, deadline);
            return self.shared_guard(me, acquired);
        }
        match self.state().compare_exchange(0, LOCKED, Acquire) {
            Ok(_) => self.owner().store(owner::thread_token(), Relaxed),
            Err(seen) => {
                if !self.lock_contended(seen, deadline)? {
                    return Ok(None);
                }
            }
        }
        Ok(Some(MutexGuard::private(self)))
    }

    /// The guard (or error) for what a process-shared lock attempt by `me` found: `Ok(None)`
    /// if it took nothing.
    fn shared_guard(
        &self,
        me: u64,
        acquired: Result<Option<Acquired>, Error>,
    ) -> Attempt<MutexGuard<'_>> {
        match acquired? {
            None => Ok(None),
            Some(Acquired::Clean) => Ok(Some(MutexGuard::shared(self, me))),
            Some(Acquired::OwnerDied) => Err(LockError::OwnerDied(MutexGuard::died(self, me))),
        }
    }

    /// Whether the mutex lives in a process-shared buffer (the protocol of `shared_mutex.rs`).
    #[inline]
    pub(super) fn is_shared(&self) -> bool {
        self.shared
    }

    #[inline(always)]
    pub(super) fn state(&self) -> Word<'_, u32> {
        // SAFETY: `words` was made with 2 words (`at`), and `STATE < 2`.
        unsafe { self.words.get_unchecked(STATE) }
    }

    #[inline(always)]
    pub(super) fn side(&self) -> Word<'_, u32> {
        // SAFETY: `words` was made with 2 words (`at`), and `SIDE < 2`.
        unsafe { self.words.get_unchecked(SIDE) }
    }

    #[inline(always)]
    pub(super) fn owner(&self) -> Word<'_, u64> {
        self.owner.get()
    }

    /// Takes the lock for `owner` if it is free now, whatever else the state says (barging);
    /// records `owner` on success.
    pub(super) fn try_take_for(&self, owner: u64) -> bool {
        let mut state = self.state().load(Relaxed);
        while !held(state) {
            match self
                .state()
                .compare_exchange(state, state | LOCKED, Acquire)
            {
                Ok(_) => {
                    self.owner().store(owner, Relaxed);
                    return true;
                }
                Err(actual) => state = actual,
            }
        }
        false
    }

    /// The slow path of every blocking `lock`, whose fast compare-exchange found `seen`: relock
    /// check, spin, then the waiter loop. `true` once the calling thread holds the lock, `false`
    /// if `deadline` passed first.
    #[cold]
    fn lock_contended(&self, seen: u32, deadline: Option<Instant>) -> Result<bool, Error> {
        let me = owner::thread_token();
        if self.owner().load(Relaxed) == me {
            return Err(Error::WouldDeadlock);
        }
        let mut since = None;
        let acquired = match self.spin_then_take(seen, &mut since) {
            Spun::Taken => true,
            spun => {
                let mut waiter = Waiter {
                    starved: spun == Spun::Starving,
                    ..Waiter::new(self, since.unwrap_or_else(Instant::now))
                };
                waiter.wait(deadline)?
            }
        };
        if acquired {
            self.owner().store(me, Relaxed);
        }
        Ok(acquired)
    }

    /// Retries a lock a few times ([`Backoff`]), starting from `state`, the value last seen. A
    /// lock seen held is not re-read at once ([`Backoff::settled`]).
    ///
    /// It spins even when waiters are queued. A waiter stays counted until it has taken the
    /// lock, so a queue, once formed, would otherwise send every later contender to sleep too,
    /// each of them then needing a wake: with 8 threads on 2 cores that convoy rarely drained
    /// (about 5 voluntary context switches per 1,000 acquires; parking_lot's: 0.7). Spinning,
    /// contenders take the lock when a holder in a tight loop lets go of it, the queue drains,
    /// and the switches fall to about 0.02 per 1,000. A queued waiter still gets its turn
    /// through the heir handoff (S5), which no spinner can take.
    ///
    /// The starvation clock starts here (S5): `since` is set just before the spin's first yield
    /// (the spin hints before it last well under a microsecond), and the clock is read again
    /// only before each later yield, beside that system call, never on a path without one. A
    /// spinner that has waited [`SPIN_STARVATION`] yields no more and goes to the waiter loop
    /// starving ([`Spun::Starving`]), where it asks for the next unlock at once: a yield on a
    /// crowded core can leave it runnable but not running for milliseconds while a thread on
    /// that core wins the lock in a tight loop (traced: the longest waits at 8 threads on 2
    /// cores are such yields), and off the CPU it cannot ask; a spinner, which never sleeps,
    /// would otherwise not qualify at all.
    fn spin_then_take(&self, mut state: u32, since: &mut Option<Instant>) -> Spun {
        let mut backoff = Backoff::settled();
        loop {
            if !held(state) {
                match self
                    .state()
                    .compare_exchange(state, state | LOCKED, Acquire)
                {
                    Ok(_) => return Spun::Taken,
                    Err(actual) => {
                        state = actual;
                        continue;
                    }
                }
            }
            if backoff.yields_next() {
                match since {
                    None => *since = Some(Instant::now()),
                    Some(since) if since.elapsed() >= SPIN_STARVATION => return Spun::Starving,
                    Some(_) => {}
                }
            }
            if !backoff.spin() {
                return Spun::GaveUp;
            }
            state = self.state().load(Relaxed);
        }
    }

    /// Announces a `lock_async` sleeper: sets `ASYNC` on a held lock. `false` if the lock was
    /// found free (the caller retries taking it instead of sleeping).
    pub(super) fn announce_async(&self) -> bool {
        let mut state = self.state().load(Relaxed);
        loop {
            if !held(state) {
                return false;
            }
            if state & ASYNC != 0 {
                return true;
            }
            match self.state().compare_exchange(state, state | ASYNC, Relaxed) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
    }

    /// Releases the lock (the guards' drop) in a private buffer.
    #[inline(always)]
    pub(super) fn unlock(&self) {
        self.owner().store(owner::NONE, Relaxed);
        // One subtraction, not a compare-exchange (cheaper on x86, and it cannot fail): from
        // `LOCKED` alone it leaves 0, and whatever else it found is seen by the slow unlock.
        let was = self.state().fetch_sub(LOCKED, Release);
        if was != LOCKED {
            self.unlock_contended(was);
        }
    }

    /// The slow unlock, after the subtraction that found `was`: it has granted the lock to the
    /// heir (two holds counted), or released it; then wake (see the module docs).
    #[cold]
    fn unlock_contended(&self, was: u32) {
        if was & HOLDS == 0 {
            // No hold to give back: the bytes were overwritten while the lock was held (a
            // protocol word in user memory). Undo the subtraction, whose borrow would otherwise
            // have set every bit of the word (held, with 2^27 waiters, for ever): the word keeps
            // what was written, and a zero written stays an unlocked mutex.
            self.state().fetch_add(LOCKED, Relaxed);
            return;
        }
        if was & HOLDS != LOCKED {
            // Invariant 1: the lock stays held, now on the heir's behalf (or the bytes were
            // overwritten, and there is nobody to hand anything to).
            if was & HEIR != 0 {
                self.wake_side();
                if !LOOM {
                    // The heir has waited over 1 ms, most often because this thread won the
                    // lock in a tight loop on its core while the threads beside it, off the
                    // CPU after their spins' yields, could not even ask for it. Give that core
                    // to them now: otherwise this thread takes the lock again as soon as the
                    // heir lets go of it, and keeps them waiting to the end of its time slice.
                    thread::yield_now();
                }
            }
            return;
        }
        // Released. Wake one counted waiter (unless a baton is out, or a barger holds the lock
        // already: its unlock wakes), and the async sleepers.
        let mut state = was.wrapping_sub(LOCKED);
        loop {
            let wake = !held(state) && waiters(state) > 0 && state & WOKEN == 0;
            if !wake && state & ASYNC == 0 {
                return;
            }
            let next = (state & !ASYNC) | if wake { WOKEN } else { 0 };
            match self.state().compare_exchange(state, next, Relaxed) {
                Ok(_) => {
                    // The baton first: waking the side word runs the futures' wakers, user
                    // code that may panic, and a panic unwinding from there before the baton
                    // was passed would leave `WOKEN` set with nobody holding it (every later
                    // unlock would then wake nobody, stranding the queue for ever).
                    if wake {
                        self.pass_baton();
                    }
                    if state & ASYNC != 0 {
                        self.wake_side();
                    }
                    return;
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// Called by an unlocker that has just set `WOKEN`: wakes a queued waiter (who then holds
    /// the baton) if the lock is still free and anyone is counted, else clears `WOKEN`
    /// (invariants 3 and 4).
    fn pass_baton(&self) {
        let mut state = self.state().load(Relaxed);
        loop {
            if !held(state) && waiters(state) > 0 && self.state().notify(Some(1)) == 1 {
                return;
            }
            // Held (its holder's unlock will wake), nobody counted, or the counted waiters are
            // not asleep yet: clearing `WOKEN` changes the word, so their sleeps return at once.
            match self
                .state()
                .compare_exchange(state, state & !WOKEN, Relaxed)
            {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
    }

    /// Bumps the side word and wakes everyone sleeping on it (the heir, async waiters).
    ///
    /// The futures' wakers are user code: a panic of one propagates to the unlocking thread
    /// (after every sleeper has been woken, the waiter table's rule), unless that thread is
    /// already unwinding — a guard dropped by a panic in the critical section — where a second
    /// panic escaping the guard's drop would abort the process: then it is caught and dropped
    /// (the panic hook has already reported it).
    fn wake_side(&self) {
        self.side().fetch_add(1, Release);
        if !LOOM && std::thread::panicking() {
            // AssertUnwindSafe: nothing of ours is left half-done by a waker's panic; every
            // sleeper was taken off the side word and woken before it propagates.
            let _ =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.side().notify(None)));
            return;
        }
        self.side().notify(None);
    }
}

/// One blocked `lock` call's part in the protocol (see the module docs).
struct Waiter<'a> {
    mutex: &'a Mutex,
    /// Counted in the state's waiter count.
    registered: bool,
    /// Holds the `WOKEN` baton.
    woken: bool,
    /// Has set `HEIR` and sleeps on the side word.
    heir: bool,
    /// How many times it has slept (under loom, what makes a waiter starving).
    sleeps: u32,
    /// When its `lock` call started waiting (natively, what makes it starving).
    since: Instant,
    /// Left the spin for having waited [`SPIN_STARVATION`]: starving already.
    starved: bool,
}

impl<'a> Waiter<'a> {
    /// The waiter of a `lock` call that has waited since `since` (its spin's start).
    fn new(mutex: &'a Mutex, since: Instant) -> Waiter<'a> {
        Waiter {
            mutex,
            registered: false,
            woken: false,
            heir: false,
            sleeps: 0,
            since,
            starved: false,
        }
    }

    fn state(&self) -> Word<'a, u32> {
        self.mutex.state()
    }

    /// Whether this waiter has waited long enough to ask for a handoff: for [`STARVATION`]
    /// since its `lock` call began to spin, whether or not it has slept (a spinner off the CPU
    /// after a yield waits as long as a sleeper), or it left the spin for having waited
    /// [`SPIN_STARVATION`] (see [`Mutex::spin_then_take`]). Under loom,
    /// where time does not pass and nobody spins: once it has slept [`loom_starving_after`]
    /// times.
    fn starving(&self) -> bool {
        if LOOM {
            self.sleeps >= loom_starving_after()
        } else {
            self.starved || self.since.elapsed() >= STARVATION
        }
    }

    /// Waits for the lock: `true` once taken, `false` if `deadline` passed first.
    fn wait(&mut self, deadline: Option<Instant>) -> Result<bool, Error> {
        let mut spin = Backoff::settled();
        let mut poll = Poll::new();
        loop {
            if self.heir {
                return self.wait_as_heir(deadline);
            }
            let state = self.state().load(Relaxed);
            if !held(state) {
                if self.take(state) {
                    return Ok(true);
                }
                continue;
            }
            if self.woken && !(spin.yields_next() && self.starving()) && spin.spin() {
                // Woken, and a running thread took the lock first: keep the baton (so the
                // unlocks wake nobody else meanwhile) and look again a few times before
                // sleeping, as a fresh locker spins (but, as it, without yielding once
                // starving: it asks for the next unlock instead).
                continue;
            }
            if !self.registered && state > MAX_COUNTABLE {
                // Cannot be counted (2^27 waiters, or bytes overwritten): poll instead of
                // sleeping uncounted, asleep between looks (S7).
                if let Err(stop) = poll.pause(deadline) {
                    return stop.into_result(false);
                }
                continue;
            }
            // Only on a lock held once (not granted, not with an heir pending).
            let becomes_heir = state & HEIR == 0 && state & HOLDS == LOCKED && self.starving();
            let mut next = state;
            if !self.registered {
                next += WAITER;
            }
            if self.woken {
                next &= !WOKEN;
            }
            if becomes_heir {
                next = (next | HEIR) + LOCKED; // the heir's hold, reserved
            }
            if next != state {
                if self.state().compare_exchange(state, next, Relaxed).is_err() {
                    continue;
                }
                self.registered = true;
                self.woken = false;
                if becomes_heir {
                    self.heir = true;
                    continue;
                }
            }
            self.sleeps = self.sleeps.saturating_add(1);
            // The deadline is only ever noticed here, by the sleep, so a waiter never leaves
            // while it holds the baton: it has cleared `WOKEN` on the way to this sleep.
            match self.state().wait_until(next, deadline) {
                Ok(WaitResult::Ok) => {
                    self.woken = true; // counted by a normal unlock: the baton
                    spin = Backoff::settled();
                }
                Ok(WaitResult::NotEqual) => {}
                Ok(WaitResult::TimedOut) => {
                    self.leave();
                    return Ok(false);
                }
                Err(error) => {
                    self.leave();
                    return Err(error);
                }
            }
        }
    }

    /// Takes a free lock from `state`, uncounting itself and dropping the baton in the same
    /// compare-exchange.
    fn take(&mut self, state: u32) -> bool {
        let mut next = state | LOCKED;
        if self.registered {
            next = next.wrapping_sub(WAITER);
        }
        if self.woken {
            next &= !WOKEN;
        }
        if self.state().compare_exchange(state, next, Acquire).is_err() {
            return false;
        }
        self.registered = false;
        self.woken = false;
        true
    }

    /// The heir's wait for the grant: `true` once the lock is ours, `false` if `deadline` passed
    /// first (then it has withdrawn and left the queue).
    fn wait_as_heir(&mut self, deadline: Option<Instant>) -> Result<bool, Error> {
        let side = self.mutex.side();
        let mut spin = Backoff::new();
        loop {
            // Eventcount: the sequence before the state, so a grant after this state load
            // changes the sequence before it wakes (release/acquire on both words).
            let sequence = side.load(Acquire);
            let state = self.state().load(Acquire);
            if granted(state) {
                self.claim();
                return Ok(true);
            }
            if spin.spin() {
                // The grant comes with the holder's next unlock, often within nanoseconds (a
                // holder in a tight loop): look again a few times, running, before sleeping,
                // so that the heir takes it at once instead of waiting for a core after its
                // wake while the lock, granted, is held by nobody running.
                continue;
            }
            // Not granted yet: only the holder's unlock grants (unless the bytes were
            // overwritten; then the deadline, if any, still ends the wait).
            match side.wait_until(sequence, deadline) {
                Ok(WaitResult::Ok | WaitResult::NotEqual) => {} // look at the state again
                // The grant may have won the race: then the lock is ours after all.
                Ok(WaitResult::TimedOut) => return Ok(self.withdraw()),
                Err(error) => {
                    return if self.withdraw() {
                        Ok(true)
                    } else {
                        Err(error)
                    }
                }
            }
        }
    }

    /// Takes the granted lock (its one hold is now the heir's): clears `HEIR` and uncounts
    /// itself.
    fn claim(&mut self) {
        let mut state = self.state().load(Relaxed);
        loop {
            match self.state().compare_exchange(
                state,
                (state & !HEIR).wrapping_sub(WAITER),
                Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        self.registered = false;
        self.heir = false;
    }

    /// The heir gives up: clears `HEIR` and gives back its reserved hold, unless the lock was
    /// granted meanwhile, in which case it claims it (`true`). On `false` it has also left the
    /// queue.
    fn withdraw(&mut self) -> bool {
        let mut state = self.state().load(Acquire);
        loop {
            if granted(state) {
                self.claim();
                return true;
            }
            match self.state().compare_exchange(
                state,
                (state & !HEIR).wrapping_sub(LOCKED + WAITER),
                Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        self.registered = false;
        self.heir = false;
        false
    }

    /// Leaves the queue without the lock (deadline passed, or terminated). Only ever after a
    /// sleep, so never holding the baton.
    fn leave(&mut self) {
        debug_assert!(
            !self.woken,
            "a waiter leaves only from a sleep, without the baton"
        );
        if self.registered {
            self.state().fetch_sub(WAITER, Relaxed);
            self.registered = false;
        }
    }
}

/// Condition variable waiters moved onto the mutex's waiters by a notify (see `condvar.rs`): the
/// notify counts them in `state` while the lock is held, so they are ordinary counted waiters
/// (invariants 2 and 3), woken one at a time by the unlocks, and the one woken holds the baton.
impl Mutex {
    /// Where a condition variable's notify may move a waiter that will lock this mutex next;
    /// `None` in a process-shared buffer (its waiters are woken instead).
    pub(super) fn requeue_target(&self) -> Option<RequeueTarget> {
        if self.shared {
            return None;
        }
        let state = SharedWord::at(self.buffer(), self.byte_offset).ok()?;
        Some(RequeueTarget::new(state, count_requeued))
    }

    /// Takes the lock as a waiter a notify moved here, whose sleep ended with `woke`: `Ok` when
    /// an unlock woke it (it holds the baton), `Err` when it was interrupted meanwhile (it then
    /// leaves the queue and returns the error).
    pub(super) fn lock_requeued(&self, woke: Result<(), Error>) -> Result<MutexGuard<'_>, Error> {
        let mut waiter = Waiter {
            registered: true,
            sleeps: 1,
            ..Waiter::new(self, Instant::now())
        };
        if let Err(error) = woke {
            waiter.leave();
            return Err(error);
        }
        waiter.woken = true;
        let taken = waiter.wait(None)?;
        debug_assert!(
            taken,
            "without a deadline, a waiter returns only with the lock"
        );
        self.owner().store(owner::thread_token(), Relaxed);
        Ok(MutexGuard::private(self))
    }
}

/// The requeue target's consent, asked by the waiter table with both buckets locked: counts
/// `moving` more waiters if the lock is held (its holder's unlock, or the heir's, will wake one),
/// else refuses, and the notify wakes them instead.
fn count_requeued(state: Word<'_, u32>, moving: u32) -> bool {
    let Some(added) = moving.checked_mul(WAITER) else {
        return false;
    };
    let mut current = state.load(Relaxed);
    loop {
        if !held(current) {
            return false;
        }
        let Some(next) = current.checked_add(added) else {
            return false;
        };
        match state.compare_exchange(current, next, Relaxed) {
            Ok(_) => return true,
            Err(actual) => current = actual,
        }
    }
}

impl Clone for Mutex {
    fn clone(&self) -> Mutex {
        // Re-attaching cannot fail: the place was checked, and buffers never shrink.
        Mutex::at(self.buffer(), self.byte_offset).expect("a checked place stays valid")
    }
}

impl fmt::Debug for Mutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("byte_offset", &self.byte_offset)
            .field("locked", &self.is_locked())
            .finish()
    }
}

/// Proof that the calling thread holds a [`Mutex`]; dropping it unlocks.
///
/// Not `Send`: the lock records the thread that took it (that is how a relock is refused), so
/// the guard stays on that thread. Hold it across `.await` only in single-threaded executors;
/// [`Mutex::lock_async`] gives a guard that may move.
#[must_use = "the mutex is unlocked when the guard is dropped"]
pub struct MutexGuard<'a> {
    /// The handle the lock was taken through, which also keeps the guard's process-shared
    /// state (`Mutex::guard_holder`).
    mutex: &'a Mutex,
    /// `!Send`, `Sync` (nothing to share).
    _not_send: PhantomData<std::sync::MutexGuard<'static, ()>>,
}

impl<'a> MutexGuard<'a> {
    /// The guard of a lock taken in a private buffer (nothing to record in the handle).
    #[inline(always)]
    fn private(mutex: &'a Mutex) -> MutexGuard<'a> {
        debug_assert!(!mutex.shared);
        MutexGuard {
            mutex,
            _not_send: PhantomData,
        }
    }

    /// The guard of a lock taken in a process-shared buffer as `holder`.
    fn shared(mutex: &'a Mutex, holder: u64) -> MutexGuard<'a> {
        debug_assert!(mutex.shared);
        mutex.guard_holder.store(holder, Relaxed);
        mutex.guard_inconsistent.store(false, Relaxed);
        MutexGuard {
            mutex,
            _not_send: PhantomData,
        }
    }

    /// The guard of a lock taken over from a dead holder: inconsistent until marked.
    fn died(mutex: &'a Mutex, holder: u64) -> MutexGuard<'a> {
        let guard = MutexGuard::shared(mutex, holder);
        mutex.guard_inconsistent.store(true, Relaxed);
        guard
    }

    /// The mutex this guard holds.
    pub fn mutex(&self) -> &'a Mutex {
        self.mutex
    }

    /// Declares the data the lock guards consistent again after its previous holder died
    /// holding it (the guard came with [`LockError::OwnerDied`]), like
    /// `pthread_mutex_consistent`: the lock is then released normally. Released without this
    /// call, such a guard retires the lock: every later lock, in every process, returns
    /// `Err(NotRecoverable)` (X3). Does nothing on any other guard.
    pub fn mark_consistent(&mut self) {
        self.mutex.guard_inconsistent.store(false, Relaxed);
    }

    /// Whether the guard still waits for [`mark_consistent`](MutexGuard::mark_consistent):
    /// `true` only for a guard that came with [`LockError::OwnerDied`] and was not marked yet.
    pub fn is_inconsistent(&self) -> bool {
        self.mutex.guard_inconsistent.load(Relaxed)
    }

    /// Unlocks and hands back the mutex (a condition variable's wait). An inconsistent guard
    /// retires the lock, as its drop would.
    pub(super) fn release(self) -> &'a Mutex {
        let mutex = self.mutex;
        let this = std::mem::ManuallyDrop::new(self);
        this.unlock();
        mutex
    }

    /// One test of the buffer's kind, then the private unlock inline (the fast path of every
    /// guard's drop) or the process-shared one out of line.
    #[inline(always)]
    fn unlock(&self) {
        if self.mutex.is_shared() {
            Self::shared_unlock(self.mutex);
        } else {
            self.mutex.unlock();
        }
    }

    /// The process-shared unlock, with what the guard recorded in the handle. Takes the mutex,
    /// not the guard, so the inline caller need not put the guard in memory to pass it.
    #[cold]
    #[inline(never)]
    fn shared_unlock(mutex: &Mutex) {
        mutex.shared_unlock(
            mutex.guard_holder.load(Relaxed),
            mutex.guard_inconsistent.load(Relaxed),
        );
    }
}

impl Drop for MutexGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // a failed loom model: see `shim::model_is_unwinding`
        }
        self.unlock();
    }
}

impl fmt::Debug for MutexGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard")
            .field("byte_offset", &self.mutex.byte_offset)
            .field("inconsistent", &self.is_inconsistent())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spinner that has waited [`SPIN_STARVATION`] when it is about to yield (again) leaves
    /// the spin starving instead of yielding on, and a fresh one gives up as before. (Without
    /// the time bound both give up, after all their yields.)
    #[test]
    fn a_spinner_past_the_spin_threshold_leaves_the_spin_starving() {
        if LOOM || shim::cpus() < 2 {
            return; // no spin under loom or on one CPU: nothing to test
        }
        let buffer = SharedBuffer::new(Mutex::BYTES).unwrap();
        let mutex = Mutex::at(&buffer, 0).unwrap();
        let _guard = mutex.lock().unwrap();
        let state = mutex.state().load(Relaxed);
        let mut since = Some(
            Instant::now()
                .checked_sub(2 * SPIN_STARVATION)
                .expect("the monotonic clock is past the threshold"),
        );
        assert_eq!(mutex.spin_then_take(state, &mut since), Spun::Starving);
        let mut fresh = None;
        let spun = mutex.spin_then_take(state, &mut fresh);
        assert!(fresh.is_some(), "the clock starts before the first yield");
        // A fresh spinner may still reach the bound if this thread is kept off the CPU by its
        // yields; either way it did not take the held lock.
        assert_ne!(spun, Spun::Taken);
    }

    /// S5's clock starts before the spin: a waiter that has waited [`STARVATION`] without ever
    /// sleeping (a spinner kept off the CPU) becomes the heir on its first pass, while the lock
    /// is still held, instead of first sleeping in the queue. (Under the rule that only a
    /// waiter that has slept may become the heir, it sleeps on the state word until the unlock,
    /// and `HEIR` never appears while the lock is held.)
    #[test]
    fn a_waiter_that_only_spun_past_the_threshold_becomes_the_heir_without_sleeping() {
        if LOOM {
            return; // natively only: under loom the rule counts sleeps, and this is no model
        }
        let buffer = SharedBuffer::new(Mutex::BYTES).unwrap();
        let mutex = Mutex::at(&buffer, 0).unwrap();
        let guard = mutex.lock().unwrap();
        let since = Instant::now()
            .checked_sub(2 * STARVATION)
            .expect("the monotonic clock is past 2 ms");
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                let mut waiter = Waiter::new(&mutex, since);
                let taken = waiter.wait(None).unwrap();
                let sleeps = waiter.sleeps;
                if taken {
                    mutex.unlock();
                }
                (taken, sleeps)
            });
            // A watchdog, not a timing threshold: the heir appears at once or never.
            let watchdog = Instant::now();
            let mut heir_while_held = false;
            while watchdog.elapsed() < Duration::from_secs(10) {
                let state = mutex.state().load(Relaxed);
                if state & HEIR != 0 {
                    assert_eq!(state & HOLDS, 2, "the heir's hold is reserved beside ours");
                    heir_while_held = true;
                    break;
                }
                std::thread::yield_now();
            }
            drop(guard); // hands over to the heir (or, failing, wakes the sleeper)
            let (taken, sleeps) = waiter.join().unwrap();
            assert!(taken);
            assert!(
                heir_while_held,
                "the waiter did not become the heir while the lock was held"
            );
            assert_eq!(
                sleeps, 0,
                "it became the heir without sleeping in the queue"
            );
        });
        assert_eq!(mutex.state().load(Relaxed), 0);
        assert_eq!(
            mutex.side().load(Relaxed),
            1,
            "one grant, one bump of the side word"
        );
    }
}
