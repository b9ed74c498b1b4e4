//! What can go wrong: a task ([`TaskError`]), a submission ([`PoolError`], which gives the task
//! back), building a pool ([`BuildError`]) and closing one ([`CloseError`]).

use std::fmt;

/// Why a task's handle resolved without the task's value (docs/semantics.md P3–P5, P7, P8).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TaskError {
    /// The task panicked; this is the panic's message. The pool and its other tasks are
    /// unharmed (P5).
    Panicked(String),
    /// The task was cancelled before it started; it never ran (P4).
    Cancelled,
    /// The task's timeout, counted from when it started, passed before it returned (P8). Its
    /// cancel flag was set; what it returns later is dropped.
    TimedOut,
    /// The pool was destroyed (or closed with a timeout that passed) before the task finished
    /// (P7). A task that was running had its cancel flag set; what it returns later is dropped.
    PoolDestroyed,
    /// The joining thread was interrupted (its own pool was destroyed, or its worker
    /// terminated) before the task finished; the task itself goes on.
    Interrupted,
    /// The task's pool was made before a `fork()` and this is the forked child: the pool's
    /// threads are the parent's, so the task will never finish here (docs/semantics.md X7).
    ForkedHandle,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskError::Panicked(message) => write!(f, "the task panicked: {message}"),
            TaskError::Cancelled => f.write_str("the task was cancelled before it started"),
            TaskError::TimedOut => f.write_str("the task's timeout passed while it ran"),
            TaskError::PoolDestroyed => {
                f.write_str("the pool was destroyed before the task finished")
            }
            TaskError::Interrupted => {
                f.write_str("the joining thread was interrupted before the task finished")
            }
            TaskError::ForkedHandle => f.write_str(FORKED),
        }
    }
}

impl std::error::Error for TaskError {}

/// What every fork refusal of the pool says (docs/semantics.md X7).
const FORKED: &str = "the pool was made before a fork: its threads belong to the parent process, so this forked child cannot use it (leave it alone or drop it; build a new pool in the child)";

/// What [`TaskContext::check`](super::TaskContext::check) returns once the task was cancelled
/// (or timed out, or its pool destroyed), so a task can stop with `?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the task was asked to stop")
    }
}

impl std::error::Error for Cancelled {}

impl From<Cancelled> for TaskError {
    fn from(_: Cancelled) -> TaskError {
        TaskError::Cancelled
    }
}

/// Why the pool refused a task. Every variant gives the task back ([`into_task`]): nothing is
/// ever dropped silently (P2).
///
/// [`into_task`]: PoolError::into_task
#[non_exhaustive]
pub enum PoolError<T> {
    /// The queue is at its bound ([`MaxQueue`](super::MaxQueue)) and no worker was free to
    /// take the task: all busy, or none started yet (with
    /// [`WhenFull::Block`](super::WhenFull::Block): for the whole timeout).
    QueueFull(T),
    /// The pool was closed or destroyed; it accepts no more tasks.
    Closed(T),
    /// The system refused what the task needed: a new thread, or the memory for the task's
    /// bookkeeping or its place in the queue (`reason` says which; P2, P12).
    SpawnFailed {
        /// The task.
        task: T,
        /// The system's reason.
        reason: String,
    },
    /// The pool was made before a `fork()` and this is the forked child: its threads are the
    /// parent's, so no task would ever run here (docs/semantics.md X7).
    ForkedHandle(T),
}

impl<T> PoolError<T> {
    /// The task that was refused.
    pub fn into_task(self) -> T {
        match self {
            PoolError::QueueFull(task)
            | PoolError::Closed(task)
            | PoolError::ForkedHandle(task)
            | PoolError::SpawnFailed { task, .. } => task,
        }
    }

    /// The same refusal, without the task (e.g. to return it as a `Box<dyn Error>`).
    pub fn without_task(self) -> PoolError<()> {
        self.map(|_| ())
    }

    /// The same refusal with the task turned into something else.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> PoolError<U> {
        match self {
            PoolError::QueueFull(task) => PoolError::QueueFull(f(task)),
            PoolError::Closed(task) => PoolError::Closed(f(task)),
            PoolError::ForkedHandle(task) => PoolError::ForkedHandle(f(task)),
            PoolError::SpawnFailed { task, reason } => PoolError::SpawnFailed {
                task: f(task),
                reason,
            },
        }
    }
}

impl<T> fmt::Debug for PoolError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::QueueFull(_) => f.write_str("QueueFull(..)"),
            PoolError::Closed(_) => f.write_str("Closed(..)"),
            PoolError::ForkedHandle(_) => f.write_str("ForkedHandle(..)"),
            PoolError::SpawnFailed { reason, .. } => f
                .debug_struct("SpawnFailed")
                .field("reason", reason)
                .finish_non_exhaustive(),
        }
    }
}

impl<T> fmt::Display for PoolError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::QueueFull(_) => {
                f.write_str("the pool's queue is at its bound (MaxQueue) and no worker was free to take the task")
            }
            PoolError::Closed(_) => f.write_str("the pool is closed"),
            PoolError::ForkedHandle(_) => f.write_str(FORKED),
            PoolError::SpawnFailed { reason, .. } => {
                write!(f, "the system refused the pool a thread or memory for the task: {reason}")
            }
        }
    }
}

impl<T> std::error::Error for PoolError<T> {}

impl<T> PartialEq for PoolError<T> {
    /// Compares the kind of refusal (and the reason), not the tasks.
    fn eq(&self, other: &PoolError<T>) -> bool {
        match (self, other) {
            (PoolError::QueueFull(_), PoolError::QueueFull(_))
            | (PoolError::Closed(_), PoolError::Closed(_))
            | (PoolError::ForkedHandle(_), PoolError::ForkedHandle(_)) => true,
            (
                PoolError::SpawnFailed { reason: a, .. },
                PoolError::SpawnFailed { reason: b, .. },
            ) => a == b,
            _ => false,
        }
    }
}

/// Why [`PoolBuilder::build`](super::PoolBuilder::build) refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// `max_threads(0)`: a pool needs at least one thread.
    ZeroMaxThreads,
    /// `min_threads` above `max_threads`.
    MinAboveMax {
        /// The minimum asked for.
        min: usize,
        /// The maximum asked for.
        max: usize,
    },
    /// `max_threads` above [`PoolBuilder::MAX_THREADS`](super::PoolBuilder::MAX_THREADS): the
    /// pool keeps bookkeeping for every thread it may start, made when it is built.
    TooManyThreads {
        /// The maximum asked for.
        max: usize,
        /// The most a pool takes.
        limit: usize,
    },
    /// The name contains a NUL byte (thread names cannot).
    NameHasNul,
    /// The system refused to start one of the `min_threads` threads, or the memory for the
    /// pool's bookkeeping (`reason` says which).
    SpawnFailed {
        /// The system's reason.
        reason: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::ZeroMaxThreads => f.write_str("a pool needs max_threads of at least 1"),
            BuildError::MinAboveMax { min, max } => {
                write!(f, "min_threads ({min}) is above max_threads ({max})")
            }
            BuildError::TooManyThreads { max, limit } => {
                write!(f, "max_threads ({max}) is above the limit of {limit}")
            }
            BuildError::NameHasNul => f.write_str("the pool's name contains a NUL byte"),
            BuildError::SpawnFailed { reason } => {
                write!(
                    f,
                    "the system refused the pool its threads or memory: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Why [`WorkerPool::close`](super::WorkerPool::close) did not end cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseError {
    /// The timeout passed before every task finished: the pool was then destroyed (queued
    /// tasks resolved `PoolDestroyed`, running ones asked to stop and interrupted).
    TimedOut {
        /// Threads still running a task when the timeout passed.
        busy_threads: usize,
    },
    /// `close` was called from a task of this very pool, which cannot wait for its own thread:
    /// the pool stopped accepting tasks and will end once the running ones return.
    FromInsidePool,
    /// The pool was made before a `fork()` and this is the forked child: its threads are the
    /// parent's, so closing would wait for ever; nothing was changed (docs/semantics.md X7).
    ForkedHandle,
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseError::TimedOut { busy_threads } => write!(
                f,
                "the pool's tasks did not finish in time ({busy_threads} threads busy); the pool was destroyed"
            ),
            CloseError::FromInsidePool => {
                f.write_str("a pool cannot wait for itself to close from one of its own tasks")
            }
            CloseError::ForkedHandle => f.write_str(FORKED),
        }
    }
}

impl std::error::Error for CloseError {}
