//! What taking a lock returns: [`LockResult`], std's shape with a robust lock's news instead
//! of poisoning (docs/semantics.md S2, X3).
//!
//! `std::sync::Mutex::lock` returns `LockResult<Guard>`: `Err(PoisonError)` still carries the
//! guard, because the lock *was* taken and only the data is suspect. A lock in a
//! process-shared buffer has the same situation when its holder dies (a process killed while
//! holding it): the next locker gets the lock together with the news. So the locks return
//! `LockResult<G> = Result<G, LockError<G>>`:
//!
//! - `Ok(guard)`: taken, nothing to report;
//! - `Err(LockError::OwnerDied(guard))`: taken, but the previous holder died holding it. The
//!   data it guards may be half updated: check or repair it, then call `mark_consistent()` on
//!   the guard. A guard released without that makes the lock
//!   [`NotRecoverable`](Error::NotRecoverable) for every thread and process (pthread's
//!   robust-mutex contract);
//! - `Err(LockError::Failed(error))`: not taken (`WouldDeadlock`, `Terminated`,
//!   `NotRecoverable`, …).
//!
//! `?` converts a `LockError` into an [`Error`] (`OwnerDied(guard)` becomes
//! [`Error::OwnerDied`], dropping the guard, which retires the lock), so code that does not
//! handle a dead owner stays as short as before and never uses data a dead process left half
//! written. Only locks in a process-shared buffer ever report `OwnerDied`.

use std::fmt;

use crate::error::Error;

/// What an `OwnerDied` error says.
const OWNER_DIED: &str =
    "the lock's previous holder died holding it; the data it guards may be inconsistent";

/// The result of taking a lock: the guard, or a [`LockError`] (std's `LockResult` shape).
///
/// `?` converts a [`LockError`] into [`Error`]. A `LockError` holds a guard that borrows the
/// lock, so it cannot become a `Box<dyn Error>` itself; in such a function convert first:
///
/// ```
/// use sharedbuf::{sync::Mutex, Error, SharedBuffer};
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let buf = SharedBuffer::new(Mutex::BYTES)?;
///     let mutex = Mutex::at(&buf, 0)?;
///     let _guard = mutex.lock().map_err(Error::from)?; // not `mutex.lock()?`
///     Ok(())
/// }
/// ```
pub type LockResult<G> = Result<G, LockError<G>>;

/// The result of a lock's `try_` forms, std's `TryLockResult` shape: `Ok(guard)` only when
/// the lock was taken, [`TryLockError::WouldBlock`] when it was not free (or not in time).
///
/// So std's idiom means what it says: the block below runs only while the lock is held.
///
/// ```
/// use sharedbuf::{sync::{Mutex, TryLockError}, SharedBuffer};
///
/// let buf = SharedBuffer::new(Mutex::BYTES).unwrap();
/// let mutex = Mutex::at(&buf, 0).unwrap();
/// let held = mutex.lock().unwrap();
/// let other = mutex.clone();
/// std::thread::spawn(move || assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock))))
///     .join()
///     .unwrap();
/// drop(held);
/// if let Ok(_guard) = mutex.try_lock() {
///     // the lock is held here
/// }
/// assert!(!mutex.is_locked());
/// ```
pub type TryLockResult<G> = Result<G, TryLockError<G>>;

/// What the locks' internal attempts return: `Ok(None)` when nothing was taken. The public
/// `try_` forms turn it into std's shape with [`from_attempt`].
/// (`E`: the guard an `OwnerDied` error carries; a read attempt's is the write guard.)
pub(super) type Attempt<G, E = G> = Result<Option<G>, LockError<E>>;

/// The public [`TryLockResult`] of an internal [`Attempt`]: `Ok(None)` becomes
/// [`TryLockError::WouldBlock`].
pub(super) fn from_attempt<G, E>(attempt: Attempt<G, E>) -> Result<G, TryLockError<E>> {
    match attempt {
        Ok(Some(guard)) => Ok(guard),
        Ok(None) => Err(TryLockError::WouldBlock),
        Err(error) => Err(error.into()),
    }
}

/// Why a lock's `try_` form did not simply take it: std's `TryLockError`, plus a robust
/// lock's news (docs/semantics.md S3, X3).
pub enum TryLockError<G> {
    /// Not taken: another thread (or process) held the lock when tried, and for the timed
    /// forms still held it at the deadline.
    WouldBlock,
    /// Taken, but its previous holder died holding it: as [`LockError::OwnerDied`].
    OwnerDied(G),
    /// Not taken, for this reason (`WouldDeadlock`, `Terminated`, `NotRecoverable`, …).
    Failed(Error),
}

impl<G> TryLockError<G> {
    /// The guard of an [`OwnerDied`](TryLockError::OwnerDied) error; `None` otherwise.
    pub fn into_guard(self) -> Option<G> {
        match self {
            TryLockError::OwnerDied(guard) => Some(guard),
            TryLockError::WouldBlock | TryLockError::Failed(_) => None,
        }
    }

    /// The error as an [`Error`] value, without giving up the guard:
    /// [`Error::WouldBlock`] for [`WouldBlock`](TryLockError::WouldBlock),
    /// [`Error::OwnerDied`] for [`OwnerDied`](TryLockError::OwnerDied).
    pub fn error(&self) -> Error {
        match self {
            TryLockError::WouldBlock => Error::WouldBlock,
            TryLockError::OwnerDied(_) => Error::OwnerDied,
            TryLockError::Failed(error) => error.clone(),
        }
    }

    /// The same error with its guard mapped by `f`.
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> TryLockError<H> {
        match self {
            TryLockError::WouldBlock => TryLockError::WouldBlock,
            TryLockError::OwnerDied(guard) => TryLockError::OwnerDied(f(guard)),
            TryLockError::Failed(error) => TryLockError::Failed(error),
        }
    }
}

impl<G> From<Error> for TryLockError<G> {
    fn from(error: Error) -> TryLockError<G> {
        TryLockError::Failed(error)
    }
}

impl<G> From<LockError<G>> for TryLockError<G> {
    fn from(error: LockError<G>) -> TryLockError<G> {
        match error {
            LockError::OwnerDied(guard) => TryLockError::OwnerDied(guard),
            LockError::Failed(error) => TryLockError::Failed(error),
        }
    }
}

/// `?` on a `try_` result: [`WouldBlock`](TryLockError::WouldBlock) becomes
/// [`Error::WouldBlock`]; [`OwnerDied`](TryLockError::OwnerDied) drops its guard unrepaired
/// (the lock becomes `NotRecoverable`) and becomes [`Error::OwnerDied`].
impl<G> From<TryLockError<G>> for Error {
    fn from(error: TryLockError<G>) -> Error {
        match error {
            TryLockError::WouldBlock => Error::WouldBlock,
            TryLockError::OwnerDied(guard) => {
                drop(guard);
                Error::OwnerDied
            }
            TryLockError::Failed(error) => error,
        }
    }
}

/// Compares with an [`Error`] as [`TryLockError::error`] would convert it.
impl<G> PartialEq<Error> for TryLockError<G> {
    fn eq(&self, other: &Error) -> bool {
        self.error() == *other
    }
}

impl<G> fmt::Debug for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::WouldBlock => f.write_str("WouldBlock"),
            TryLockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            TryLockError::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

impl<G> fmt::Display for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::WouldBlock => fmt::Display::fmt(&Error::WouldBlock, f),
            TryLockError::OwnerDied(_) => f.write_str(OWNER_DIED),
            TryLockError::Failed(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl<G> std::error::Error for TryLockError<G> {}

/// Why taking a lock did not simply succeed (docs/semantics.md X3).
pub enum LockError<G> {
    /// The lock is taken — `G` is its guard — but its previous holder died holding it: the
    /// data it guards may be inconsistent. Repair it, then call the guard's
    /// `mark_consistent()`; releasing the guard without that makes the lock
    /// [`NotRecoverable`](Error::NotRecoverable). Only locks in a process-shared buffer report
    /// this.
    OwnerDied(G),
    /// The lock was not taken, for this reason.
    Failed(Error),
}

impl<G> LockError<G> {
    /// The guard of an [`OwnerDied`](LockError::OwnerDied) error; `None` for
    /// [`Failed`](LockError::Failed).
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(guard) => Some(guard),
            LockError::Failed(_) => None,
        }
    }

    /// The error as an [`Error`] value, without giving up the guard: [`Error::OwnerDied`] for
    /// [`OwnerDied`](LockError::OwnerDied).
    pub fn error(&self) -> Error {
        match self {
            LockError::OwnerDied(_) => Error::OwnerDied,
            LockError::Failed(error) => error.clone(),
        }
    }

    /// The same error with its guard mapped by `f` (a condition variable's wait adds its
    /// timeout flag this way).
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> LockError<H> {
        match self {
            LockError::OwnerDied(guard) => LockError::OwnerDied(f(guard)),
            LockError::Failed(error) => LockError::Failed(error),
        }
    }
}

impl<G> From<Error> for LockError<G> {
    fn from(error: Error) -> LockError<G> {
        LockError::Failed(error)
    }
}

/// `?` on a lock result: [`OwnerDied`](LockError::OwnerDied) drops its guard — unrepaired, so
/// the lock becomes `NotRecoverable` — and becomes [`Error::OwnerDied`].
impl<G> From<LockError<G>> for Error {
    fn from(error: LockError<G>) -> Error {
        match error {
            LockError::OwnerDied(guard) => {
                drop(guard);
                Error::OwnerDied
            }
            LockError::Failed(error) => error,
        }
    }
}

/// Compares with an [`Error`] as [`LockError::error`] would convert it.
impl<G> PartialEq<Error> for LockError<G> {
    fn eq(&self, other: &Error) -> bool {
        match self {
            LockError::OwnerDied(_) => *other == Error::OwnerDied,
            LockError::Failed(error) => error == other,
        }
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::Failed(error) => f.debug_tuple("Failed").field(error).finish(),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str(OWNER_DIED),
            LockError::Failed(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl<G> std::error::Error for LockError<G> {}
