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

/// The result of a lock's `try_` forms: `Ok(None)` when the lock was not free (or not in
/// time), and the same [`LockError`]s as [`LockResult`].
pub type TryLockResult<G> = Result<Option<G>, LockError<G>>;

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
            LockError::OwnerDied(_) => f.write_str(
                "the lock's previous holder died holding it; the data it guards may be inconsistent",
            ),
            LockError::Failed(error) => fmt::Display::fmt(error, f),
        }
    }
}

impl<G> std::error::Error for LockError<G> {}
