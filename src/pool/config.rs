//! A pool's checked settings ([`Config`]) and the full-queue policy ([`WhenFull`]) the
//! scheduler applies. Its own file so that the scheduler reads the settings without depending
//! on the [`PoolBuilder`](super::PoolBuilder) that checks them.

use std::sync::{Arc as StdArc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

/// What a submission does when the queue is at its bound and every worker is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WhenFull {
    /// Refuse it at once with [`PoolError::QueueFull`](super::PoolError::QueueFull), which
    /// gives the task back (the default).
    #[default]
    Reject,
    /// Wait up to this long for room, then refuse it as `Reject` does. A task of the pool that
    /// submits to its own full pool waits like any other caller (and may wait the whole time
    /// if every worker does the same); meanwhile it runs its own worker's share of a
    /// [`broadcast`](super::WorkerPool::broadcast), and nothing else (P10).
    Block(Duration),
    /// Run it on the submitting thread, now, before `run` returns (its handle is then already
    /// resolved): the submitter slows down to the pool's pace.
    CallerRuns,
}

/// Called on a pool thread with its worker index: just after it starts, or just before it
/// exits.
pub(super) type Hook = StdArc<dyn Fn(usize) + Send + Sync>;

/// The checked settings.
pub(crate) struct Config {
    pub(super) min_threads: usize,
    pub(super) max_threads: usize,
    pub(super) idle_timeout: Option<Duration>,
    pub(super) queue_bound: Option<usize>,
    pub(super) when_full: WhenFull,
    pub(super) name: String,
    pub(super) stack_size: Option<usize>,
    pub(super) on_thread_start: ThreadHook,
    pub(super) on_thread_exit: ThreadHook,
}

/// A [`Hook`] the pool holds until its threads are all gone, then drops with everything it
/// captured ([`ThreadHook::release`]: by the pool's drop once it joined them, or by the last
/// thread to exit a pool that is no longer open, whichever comes first), even while the
/// pool's `Core` lives on: a thread that submitted tasks keeps its current chunk of task
/// cells, and the chunk keeps the `Core` (cells.rs C4), until that thread exits or moves to
/// another pool's chunk (faults: a dropped pool's hooks, and the descriptors they captured,
/// stayed open for as long as the thread that had submitted its tasks submitted to no other
/// pool; and, for a pool dropped from inside its own task, whose drop cannot join, after the
/// first fix too).
///
/// A std mutex, also under loom: it is held only to clone or take the hook, never while
/// anything else happens, so no model thread can block on it.
pub(super) struct ThreadHook(StdMutex<Option<Hook>>);

impl ThreadHook {
    pub(super) fn new(hook: Option<Hook>) -> ThreadHook {
        ThreadHook(StdMutex::new(hook))
    }

    /// The hook, unless released. A pool thread calls its clone, so a release meanwhile
    /// drops the hook only after that call returned.
    pub(super) fn get(&self) -> Option<Hook> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Drops the hook (when no pool thread is left to call it).
    pub(super) fn release(&self) {
        let hook = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        drop(hook); // user code (its captures' `Drop`), with the lock released
    }
}
