//! Interrupting a thread's blocking [`wait`](super::wait()) from outside: the seam a worker's
//! `terminate()` uses (docs/semantics.md W3).
//!
//! Rust cannot kill a thread, so termination is cooperative: a thread installs an
//! [`Interrupter`] on itself, and whoever holds a clone can [`interrupt`](Interrupter::interrupt)
//! it. From then on every `atomics::wait` on that thread returns `Err(Error::Terminated)`: at
//! once if it was not blocked, and by leaving the waiter queue and waking if it was.
//!
//! Installations are many-to-many, and each is undone by its own guard:
//! - one interrupter may be installed on several threads: it keeps the list of waiters blocked
//!   through it (one per blocked thread), and `interrupt()` cancels every one of them;
//! - one thread may have several interrupters installed (a worker's own, plus one user code
//!   installs inside it): a wait registers with all of them, and any one interrupts it;
//! - each [`InterruptGuard`] uninstalls exactly the installation that made it, in whatever
//!   order guards are dropped.
//!
//! Invariants:
//! - No interrupt is missed: an interrupter's flag is set, and its blocked list emptied, under
//!   the lock a waiter registers under, after checking the flag. So either the waiter sees the
//!   flag and cancels itself, or `interrupt()` finds it in the list.
//! - Exactly one of "notified and counted" and "interrupted and not counted" happens: both go
//!   through the waiter table, which decides under its bucket lock
//!   ([`cancel`] leaves a waiter `notify` already took alone). Several
//!   interrupters cancelling one waiter are harmless for the same reason.
//! - The blocked list never outlives a wait: the wait's [`Registration`] removes its waiter
//!   from every list on drop, however the wait ends.
//!
//! A thread's installed interrupters are an immutable, reference-counted list replaced whole on
//! install and uninstall (rare), so a wait takes its snapshot with one non-atomic increment and
//! no allocation; with nothing installed the snapshot is `None` and costs what a thread-local
//! read costs.
//!
//! ```
//! use sharedbuf::atomics::{self, Interrupter};
//! use sharedbuf::{Error, Int32Array, SharedBuffer};
//!
//! let view = Int32Array::new(&SharedBuffer::new(4)?)?;
//! let interrupter = Interrupter::new();
//! let blocked: Vec<_> = (0..2)
//!     .map(|_| {
//!         let (remote, view) = (interrupter.clone(), view.clone());
//!         std::thread::spawn(move || {
//!             let _installed = remote.install();
//!             atomics::wait(&view, 0, 0, None) // would wait forever
//!         })
//!     })
//!     .collect();
//! interrupter.interrupt(); // both threads, blocked yet or not
//! for thread in blocked {
//!     assert_eq!(thread.join().unwrap(), Err(Error::Terminated));
//! }
//! # Ok::<(), sharedbuf::Error>(())
//! ```

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;

use super::cancel::cancel;
use super::outcome::Outcome;
use super::waiter::Waiter;
use crate::shim::{self, lock, Arc, AtomicBool, IdCounter, Mutex, Ordering};

/// A handle that interrupts the blocking `atomics::wait` calls of every thread it is installed
/// on. Clones share one sticky flag.
///
/// An interrupter may be installed on several threads at once, and a thread may have several
/// installed (nested or not): a wait on the thread returns `Err(Error::Terminated)` as soon as
/// any of them is interrupted. A wait it ends this way is never counted by `notify`.
///
/// ```
/// use std::time::Duration;
/// use sharedbuf::atomics::{self, Interrupter};
/// use sharedbuf::{Error, Int32Array, SharedBuffer, WaitResult};
///
/// let view = Int32Array::new(&SharedBuffer::new(4)?)?;
/// let (outer, inner) = (Interrupter::new(), Interrupter::new());
/// let outer_guard = outer.install();
/// let inner_guard = inner.install();
/// outer.interrupt(); // the outer one still counts while the inner one is installed
/// assert_eq!(atomics::wait(&view, 0, 0, None), Err(Error::Terminated));
/// drop(outer_guard); // guards may be dropped in any order
/// assert!(!atomics::is_interrupted()); // only `inner` is left, and it was not interrupted
/// assert_eq!(atomics::wait(&view, 0, 0, Some(Duration::ZERO)), Ok(WaitResult::TimedOut));
/// drop(inner_guard);
/// # Ok::<(), sharedbuf::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Interrupter {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    interrupted: AtomicBool,
    /// The waiters of the threads blocked through this interrupter. The flag is set (and the
    /// list emptied) under this lock, and a waiter checks the flag and joins under it, so an
    /// interrupt is never missed.
    blocked: Mutex<Vec<Arc<Waiter>>>,
}

impl Interrupter {
    /// A fresh, not yet interrupted handle.
    pub fn new() -> Interrupter {
        Interrupter::default()
    }

    /// Sets the flag and wakes every thread blocked in `atomics::wait` with this interrupter
    /// installed; their waits, and all later ones on those threads while it stays installed,
    /// return `Err(Error::Terminated)`. Idempotent.
    pub fn interrupt(&self) {
        let blocked = {
            let mut blocked = lock(&self.shared.blocked);
            self.shared.interrupted.store(true, Ordering::SeqCst);
            std::mem::take(&mut *blocked)
        };
        for waiter in blocked {
            cancel(&waiter, Outcome::Interrupted, true);
        }
    }

    /// Whether [`interrupt`](Interrupter::interrupt) was called on this handle or a clone.
    pub fn is_interrupted(&self) -> bool {
        self.shared.interrupted.load(Ordering::SeqCst)
    }

    /// Installs this interrupter on the calling thread until the guard is dropped. It adds to
    /// whatever is installed already, and the guard uninstalls exactly this installation,
    /// whatever order guards are dropped in.
    pub fn install(&self) -> InterruptGuard {
        let id = NEXT_INSTALLATION.next();
        let installation = Installation {
            id,
            interrupter: self.clone(),
        };
        // `try_with`: during thread teardown the slot may already be gone; then nothing is
        // installed, and nothing will wait on this thread any more either.
        let _ = INSTALLED.try_with(|installed| {
            let mut installed = installed.borrow_mut();
            let list: Rc<[Installation]> = (installed.iter().flat_map(|list| list.iter()))
                .cloned()
                .chain([installation])
                .collect();
            let replaced = installed.replace(list);
            drop(installed);
            drop(replaced); // dropped with the cell released (it only drops handles)
        });
        InterruptGuard {
            id,
            _not_send: PhantomData,
        }
    }

    /// Joins this interrupter's blocked list with `waiter`. `false` if it was already
    /// interrupted: then it did not join, and the caller cancels the wait.
    fn join_blocked(&self, waiter: &Arc<Waiter>) -> bool {
        let mut blocked = lock(&self.shared.blocked);
        if self.shared.interrupted.load(Ordering::SeqCst) {
            return false;
        }
        blocked.push(Arc::clone(waiter));
        true
    }

    /// Takes `waiter` out of this interrupter's blocked list, if it is there.
    fn leave_blocked(&self, waiter: &Arc<Waiter>) {
        let mut blocked = lock(&self.shared.blocked);
        if let Some(position) = blocked.iter().position(|w| Arc::ptr_eq(w, waiter)) {
            blocked.swap_remove(position);
        }
    }
}

impl fmt::Debug for Interrupter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interrupter")
            .field("interrupted", &self.is_interrupted())
            .finish()
    }
}

/// Keeps an [`Interrupter`] installed on the current thread; dropping it uninstalls exactly
/// that installation (other interrupters installed on the thread stay).
#[must_use = "the interrupter is uninstalled when the guard is dropped"]
pub struct InterruptGuard {
    /// Which installation to remove.
    id: u64,
    /// The guard belongs to the thread it was made on.
    _not_send: PhantomData<*const ()>,
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // a failed loom model: see `shim::model_is_unwinding`
        }
        // `try_with`: during thread teardown the slot may already be gone.
        let _ = INSTALLED.try_with(|installed| {
            let mut installed = installed.borrow_mut();
            let rest: Option<Rc<[Installation]>> = installed.as_ref().and_then(|list| {
                let rest: Vec<_> = list.iter().filter(|i| i.id != self.id).cloned().collect();
                (!rest.is_empty()).then(|| rest.into())
            });
            let replaced = std::mem::replace(&mut *installed, rest);
            drop(installed);
            drop(replaced);
        });
    }
}

impl fmt::Debug for InterruptGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InterruptGuard").finish_non_exhaustive()
    }
}

/// One [`Interrupter::install`], named by the id its guard holds.
#[derive(Clone)]
struct Installation {
    id: u64,
    interrupter: Interrupter,
}

/// Ids of installations (unique per process, so per thread).
static NEXT_INSTALLATION: IdCounter = IdCounter::starting_at(0);

shim::thread_local_static! {
    /// The calling thread's installations, oldest first; `None` when there are none. Replaced
    /// whole, never changed in place, so a snapshot stays valid while it is used.
    static INSTALLED: RefCell<Option<Rc<[Installation]>>> = RefCell::new(None);
}

/// A snapshot of the interrupters installed on the calling thread, taken when a wait starts.
pub(crate) struct Installed(Option<Rc<[Installation]>>);

/// The interrupters installed on the calling thread.
pub(crate) fn installed() -> Installed {
    Installed(
        INSTALLED
            .try_with(|installed| installed.borrow().clone())
            .ok()
            .flatten(),
    )
}

impl Installed {
    fn interrupters(&self) -> impl Iterator<Item = &Interrupter> {
        self.0
            .iter()
            .flat_map(|list| list.iter())
            .map(|i| &i.interrupter)
    }

    /// Whether any of the interrupters was interrupted.
    pub(crate) fn any_interrupted(&self) -> bool {
        self.interrupters().any(Interrupter::is_interrupted)
    }

    /// Registers the enqueued `waiter` with every interrupter, so any of them can cancel it;
    /// if one was already interrupted, cancels it at once (the outcome is then `Interrupted`,
    /// or `Notified` if a notify took it first). The registration is withdrawn on drop.
    pub(crate) fn register<'a>(&'a self, waiter: &'a Arc<Waiter>) -> Registration<'a> {
        let registration = Registration {
            installed: self,
            waiter,
        };
        for interrupter in self.interrupters() {
            if !interrupter.join_blocked(waiter) {
                cancel(waiter, Outcome::Interrupted, false);
                break;
            }
        }
        registration
    }
}

/// A waiter's place in its interrupters' blocked lists, left when the wait ends, however it
/// ends.
pub(crate) struct Registration<'a> {
    installed: &'a Installed,
    waiter: &'a Arc<Waiter>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // a failed loom model: see `shim::model_is_unwinding`
        }
        for interrupter in self.installed.interrupters() {
            interrupter.leave_blocked(self.waiter);
        }
    }
}

/// Whether the calling thread has an installed [`Interrupter`] that was interrupted — how a
/// long computation that never waits can still notice a `terminate()`.
pub fn is_interrupted() -> bool {
    installed().any_interrupted()
}
