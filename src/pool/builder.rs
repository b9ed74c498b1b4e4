//! [`PoolBuilder`]: a pool's settings (threads, idle timeout, queue bound and what happens when
//! it is reached, name, thread hooks), checked once by [`build`](PoolBuilder::build).

use std::fmt;
use std::sync::Arc as StdArc;
use std::time::Duration;

use super::config::{Config, Hook, ThreadHook, WhenFull};
use super::error::BuildError;
use super::worker_pool::WorkerPool;

/// How many tasks may wait for a worker (docs/semantics.md P2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MaxQueue {
    /// `max_threads²` (Piscina's default).
    #[default]
    Auto,
    /// At most this many (0: a task is accepted only if a worker can start it at once).
    Bounded(usize),
    /// No bound: memory is the limit. A task the pool has no memory left to queue is refused
    /// with [`PoolError::SpawnFailed`](super::PoolError::SpawnFailed) (its reason says
    /// memory), which gives it back; every task accepted before still runs, and the pool
    /// accepts tasks again once memory is back (docs/semantics.md P2). Bound the queue where
    /// submitters can outrun the workers: near the limit, everything else in the process is
    /// short of memory too.
    Unbounded,
}

/// Configures a [`WorkerPool`]: `WorkerPool::builder().max_threads(4)…build()`.
///
/// ```
/// use std::time::Duration;
/// use sharedbuf::pool::{MaxQueue, WhenFull, WorkerPool};
///
/// let pool = WorkerPool::builder()
///     .min_threads(1)                            // started now, never reaped
///     .max_threads(4)                            // started as the queue fills
///     .idle_timeout(Duration::from_millis(500)) // idle threads above the minimum exit
///     .max_queue(MaxQueue::Bounded(64))
///     .when_full(WhenFull::Block(Duration::from_secs(1)))
///     .name("resize")                            // threads resize-0 … resize-3
///     .build()?;
/// assert_eq!(pool.run(|ctx| ctx.worker_index())?.join()?, Some(0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Per-thread state (a loaded model, a scratch buffer, a connection) lives in a
/// `thread_local!`, set up by `on_thread_start` and torn down by `on_thread_exit`; every task
/// on that thread then finds it there:
///
/// ```
/// use std::cell::RefCell;
/// use sharedbuf::pool::WorkerPool;
///
/// thread_local! {
///     static MODEL: RefCell<Option<Vec<f32>>> = const { RefCell::new(None) };
/// }
///
/// let pool = WorkerPool::builder()
///     .max_threads(2)
///     .on_thread_start(|_worker| MODEL.with(|m| *m.borrow_mut() = Some(vec![0.5; 1024])))
///     .on_thread_exit(|_worker| MODEL.with(|m| *m.borrow_mut() = None))
///     .build()?;
/// let score = pool.run(|_ctx| {
///     MODEL.with(|m| m.borrow().as_ref().map(|weights| weights.iter().sum::<f32>()))
/// })?;
/// assert_eq!(score.join()?, Some(512.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder {
    min_threads: Option<usize>,
    max_threads: Option<usize>,
    idle_timeout: Option<Duration>,
    max_queue: MaxQueue,
    when_full: WhenFull,
    name: String,
    stack_size: Option<usize>,
    on_thread_start: Option<Hook>,
    on_thread_exit: Option<Hook>,
}

impl Default for PoolBuilder {
    fn default() -> PoolBuilder {
        PoolBuilder {
            min_threads: None,
            max_threads: None,
            idle_timeout: Some(Duration::from_secs(1)),
            max_queue: MaxQueue::Auto,
            when_full: WhenFull::Reject,
            name: "sharedbuf-pool".to_owned(),
            stack_size: None,
            on_thread_start: None,
            on_thread_exit: None,
        }
    }
}

impl PoolBuilder {
    /// The most threads a pool may have (`max_threads`; docs/semantics.md P1). A pool keeps a
    /// slot, a bell and counters for each thread it may start, all made by `build`; above
    /// this, that bookkeeping alone would take gigabytes (and an allocation that fails aborts
    /// the process), for more threads than a system runs.
    pub const MAX_THREADS: usize = 1 << 16;

    /// Threads started by `build` and never reaped (default 1, or `max_threads` if that is
    /// smaller). 0 is allowed: the pool then has no thread until the first task.
    pub fn min_threads(mut self, threads: usize) -> PoolBuilder {
        self.min_threads = Some(threads);
        self
    }

    /// The most threads the pool runs at once (default: the CPUs this process may use; at most
    /// [`MAX_THREADS`](PoolBuilder::MAX_THREADS)). Threads above the minimum are started only
    /// when a task finds every thread busy (P1).
    pub fn max_threads(mut self, threads: usize) -> PoolBuilder {
        self.max_threads = Some(threads);
        self
    }

    /// How long a thread above `min_threads` waits for work before it exits (default 1 s);
    /// `None`: never.
    pub fn idle_timeout(mut self, timeout: impl Into<Option<Duration>>) -> PoolBuilder {
        self.idle_timeout = timeout.into();
        self
    }

    /// The queue's bound (default [`MaxQueue::Auto`]).
    pub fn max_queue(mut self, max_queue: MaxQueue) -> PoolBuilder {
        self.max_queue = max_queue;
        self
    }

    /// What a submission does when the queue is full (default [`WhenFull::Reject`]).
    pub fn when_full(mut self, policy: WhenFull) -> PoolBuilder {
        self.when_full = policy;
        self
    }

    /// The threads' name prefix: they are named `<name>-<worker index>` (default
    /// `sharedbuf-pool`).
    pub fn name(mut self, name: impl Into<String>) -> PoolBuilder {
        self.name = name.into();
        self
    }

    /// The threads' stack size in bytes (default: std's).
    pub fn stack_size(mut self, bytes: usize) -> PoolBuilder {
        self.stack_size = Some(bytes);
        self
    }

    /// Runs `hook` on every pool thread as it starts, before its first task, with its worker
    /// index. A panic in it is caught and counted ([`PoolStats::hook_panics`]); the thread
    /// goes on. The pool drops the hook (and what it captured) once its threads are joined
    /// (docs/semantics.md P7).
    ///
    /// [`PoolStats::hook_panics`]: super::PoolStats::hook_panics
    pub fn on_thread_start(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> PoolBuilder {
        self.on_thread_start = Some(StdArc::new(hook));
        self
    }

    /// Runs `hook` on every pool thread as it exits (reaped, closed, destroyed), after its last
    /// task, with its worker index. A panic in it is caught and counted. Dropped as
    /// [`on_thread_start`](Self::on_thread_start)'s hook is.
    pub fn on_thread_exit(mut self, hook: impl Fn(usize) + Send + Sync + 'static) -> PoolBuilder {
        self.on_thread_exit = Some(StdArc::new(hook));
        self
    }

    /// Checks the settings and starts `min_threads` threads: `Err(BuildError::ZeroMaxThreads)`,
    /// `MinAboveMax`, `TooManyThreads` or `NameHasNul` for settings no pool can have,
    /// `SpawnFailed` if the system refuses a thread or the memory for the pool's bookkeeping.
    pub fn build(self) -> Result<WorkerPool, BuildError> {
        let max_threads = self.max_threads.unwrap_or_else(crate::shim::cpus);
        if max_threads == 0 {
            return Err(BuildError::ZeroMaxThreads);
        }
        if max_threads > PoolBuilder::MAX_THREADS {
            return Err(BuildError::TooManyThreads {
                max: max_threads,
                limit: PoolBuilder::MAX_THREADS,
            });
        }
        let min_threads = self.min_threads.unwrap_or(1.min(max_threads));
        if min_threads > max_threads {
            return Err(BuildError::MinAboveMax {
                min: min_threads,
                max: max_threads,
            });
        }
        if self.name.contains('\0') {
            return Err(BuildError::NameHasNul);
        }
        let queue_bound = match self.max_queue {
            MaxQueue::Auto => Some(max_threads.saturating_mul(max_threads)),
            MaxQueue::Bounded(bound) => Some(bound),
            MaxQueue::Unbounded => None,
        };
        WorkerPool::start(Config {
            min_threads,
            max_threads,
            idle_timeout: self.idle_timeout,
            queue_bound,
            when_full: self.when_full,
            name: self.name,
            stack_size: self.stack_size,
            on_thread_start: ThreadHook::new(self.on_thread_start),
            on_thread_exit: ThreadHook::new(self.on_thread_exit),
        })
    }
}

impl fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("min_threads", &self.min_threads)
            .field("max_threads", &self.max_threads)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_queue", &self.max_queue)
            .field("when_full", &self.when_full)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl WorkerPool {
    /// A builder with the defaults: 1 to `available_parallelism` threads, idle timeout 1 s,
    /// queue bound `max_threads²`, `Reject` when full.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// A pool with the default settings: `Err(BuildError::SpawnFailed)` if the system refuses
    /// its first thread or the memory for its bookkeeping.
    pub fn new() -> Result<WorkerPool, BuildError> {
        WorkerPool::builder().build()
    }
}
