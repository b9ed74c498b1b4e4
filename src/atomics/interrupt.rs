//! Interrupting a thread's blocking [`wait`](super::wait) from outside: the seam a worker's
//! `terminate()` uses (SEMANTICS W3).
//!
//! Rust cannot kill a thread, so termination is cooperative: the thread installs an
//! [`Interrupter`] on itself, and whoever holds a clone can [`interrupt`](Interrupter::interrupt)
//! it. From then on every `atomics::wait` on that thread returns `Err(Error::Terminated)`: at
//! once if it was not blocked, and by leaving the waiter queue and waking if it was. A waiter
//! taken out this way is not counted by `notify`: exactly one of "notified and counted" or
//! "terminated and not counted" happens, decided under the waiter table's lock.
//!
//! ```
//! use std::time::Duration;
//! use sharedbuf::atomics::{self, Interrupter};
//! use sharedbuf::{Error, Int32Array, SharedBuffer};
//!
//! let view = Int32Array::new(&SharedBuffer::new(4)?)?;
//! let interrupter = Interrupter::new();
//! let remote = interrupter.clone();
//! let blocked = std::thread::spawn(move || {
//!     let _installed = remote.install();
//!     atomics::wait(&view, 0, 0, None) // would wait forever
//! });
//! interrupter.interrupt();
//! assert_eq!(blocked.join().unwrap(), Err(Error::Terminated));
//! # Ok::<(), sharedbuf::Error>(())
//! ```

use std::fmt;
use std::marker::PhantomData;

use super::waiter::{Outcome, Waiter};
use super::waiter_table;
use crate::shim::{self, lock, Arc, AtomicBool, Mutex, Ordering};

/// A handle that interrupts the blocking `atomics::wait` calls of the thread it is installed
/// on. Clones share one sticky flag.
#[derive(Clone, Default)]
pub struct Interrupter {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    interrupted: AtomicBool,
    /// The waiter the thread is blocked on, if any. The flag is set and this slot is read under
    /// the same lock, and a waiter registers under it too, so an interrupt is never missed.
    blocked: Mutex<Option<Arc<Waiter>>>,
}

impl Interrupter {
    /// A fresh, not yet interrupted handle.
    pub fn new() -> Interrupter {
        Interrupter::default()
    }

    /// Sets the flag and wakes the thread if it is blocked in `atomics::wait`. Idempotent.
    pub fn interrupt(&self) {
        let blocked = {
            let mut slot = lock(&self.shared.blocked);
            self.shared.interrupted.store(true, Ordering::SeqCst);
            slot.take()
        };
        if let Some(waiter) = blocked {
            waiter_table::cancel(&waiter, Outcome::Interrupted, true);
        }
    }

    /// Whether [`interrupt`](Interrupter::interrupt) was called on this handle or a clone.
    pub fn is_interrupted(&self) -> bool {
        self.shared.interrupted.load(Ordering::SeqCst)
    }

    /// Installs this interrupter on the calling thread until the guard is dropped; dropping
    /// restores whatever was installed before (guards nest).
    pub fn install(&self) -> InterruptGuard {
        let previous = CURRENT.with(|current| current.replace(Some(self.clone())));
        InterruptGuard {
            previous: Some(previous),
            _not_send: PhantomData,
        }
    }

    /// Registers `waiter` as the thread's blocked waiter, or cancels it at once if the flag is
    /// already set. The returned registration unregisters on drop.
    pub(crate) fn register(&self, waiter: &Arc<Waiter>) -> Registration<'_> {
        let mut slot = lock(&self.shared.blocked);
        if self.shared.interrupted.load(Ordering::SeqCst) {
            drop(slot);
            waiter_table::cancel(waiter, Outcome::Interrupted, false);
        } else {
            *slot = Some(Arc::clone(waiter));
        }
        Registration { interrupter: self }
    }
}

impl fmt::Debug for Interrupter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interrupter")
            .field("interrupted", &self.is_interrupted())
            .finish()
    }
}

/// Keeps an [`Interrupter`] installed on the current thread; dropping it uninstalls it.
#[must_use = "the interrupter is uninstalled when the guard is dropped"]
pub struct InterruptGuard {
    previous: Option<Option<Interrupter>>,
    /// The guard belongs to the thread it was made on.
    _not_send: PhantomData<*const ()>,
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return;
        }
        if let Some(previous) = self.previous.take() {
            // `try_with`: during thread teardown the slot may already be gone.
            let _ = CURRENT.try_with(|current| current.replace(previous));
        }
    }
}

impl fmt::Debug for InterruptGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InterruptGuard").finish_non_exhaustive()
    }
}

/// Unregisters the blocked waiter when the wait ends, however it ends.
pub(crate) struct Registration<'a> {
    interrupter: &'a Interrupter,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return;
        }
        lock(&self.interrupter.shared.blocked).take();
    }
}

shim::thread_local_static! {
    static CURRENT: std::cell::RefCell<Option<Interrupter>> = std::cell::RefCell::new(None);
}

/// The interrupter installed on the calling thread, if any.
pub(crate) fn current() -> Option<Interrupter> {
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

/// Whether the calling thread has an installed [`Interrupter`] that was interrupted — how a
/// long computation that never waits can still notice a `terminate()`.
pub fn is_interrupted() -> bool {
    current().is_some_and(|interrupter| interrupter.is_interrupted())
}
