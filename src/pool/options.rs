//! [`TaskOptions`]: how one task is run — its timeout, its priority, its affinity key.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// Which queue a task waits in: a worker always takes the oldest task of the highest priority
/// first (FIFO within a level; docs/semantics.md P11). A steady stream of high-priority tasks
/// can starve low ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// Taken only when no `Normal` or `High` task waits.
    Low = 0,
    /// The default.
    #[default]
    Normal = 1,
    /// Taken before any `Normal` or `Low` task.
    High = 2,
}

impl Priority {
    /// Every level, highest first (the order workers look in).
    pub(super) const HIGHEST_FIRST: [Priority; 3] =
        [Priority::High, Priority::Normal, Priority::Low];
}

/// How to run one task: [`WorkerPool::run_with`](super::WorkerPool::run_with).
///
/// ```
/// use std::time::Duration;
/// use sharedbuf::pool::{Priority, TaskOptions, WorkerPool};
///
/// let pool = WorkerPool::builder().max_threads(2).build()?;
/// let options = TaskOptions::new()
///     .timeout(Duration::from_secs(30)) // counted from when the task starts (P8)
///     .priority(Priority::High);
/// let handle = pool.run_with(options, |_ctx| 6 * 7)?;
/// assert_eq!(handle.join()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[must_use = "options do nothing until given to `WorkerPool::run_with`"]
pub struct TaskOptions {
    pub(super) timeout: Option<Duration>,
    pub(super) priority: Priority,
    pub(super) key: Option<u64>,
}

impl TaskOptions {
    /// No timeout, `Normal` priority, no key.
    pub fn new() -> TaskOptions {
        TaskOptions::default()
    }

    /// Time the task may run, counted from when it starts (not from when it was submitted):
    /// once it passes, the task's cancel flag is set and its handle resolves
    /// [`TaskError::TimedOut`](super::TaskError::TimedOut). Rust cannot stop a thread, so a task
    /// that ignores the flag keeps its thread until it returns; the pool does not count that
    /// thread as free and may start another, up to `max_threads` ([`PoolStats::overdue`]).
    ///
    /// [`PoolStats::overdue`]: super::PoolStats::overdue
    pub fn timeout(mut self, timeout: Duration) -> TaskOptions {
        self.timeout = Some(timeout);
        self
    }

    /// The queue the task waits in (ignored for keyed tasks, which run in submission order).
    pub fn priority(mut self, priority: Priority) -> TaskOptions {
        self.priority = priority;
        self
    }

    /// Runs the task on the worker that runs every task with this key, after those submitted
    /// before it (see [`WorkerPool::run_keyed`](super::WorkerPool::run_keyed)).
    pub fn key<K: Hash + ?Sized>(mut self, key: &K) -> TaskOptions {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        self.key = Some(hasher.finish());
        self
    }
}
