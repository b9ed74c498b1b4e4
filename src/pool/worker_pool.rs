//! [`WorkerPool`]: the public face of the pool — submitting, backpressure, statistics, ending.

use std::fmt;
use std::hash::Hash;
use std::time::{Duration, Instant};

use super::broadcast;
use super::config::Config;
use super::context::{current_thread_of, TaskContext};
use super::error::{BuildError, CloseError, PoolError, TaskError};
use super::handle::TaskHandle;
use super::job::{JobRef, Placement, Runner};
use super::map;
use super::options::TaskOptions;
use super::scheduler::{Core, Refusal, NO_MEMORY};
use super::stats::{self, PoolStats};
use super::task::TaskCell;
use super::worker;
use crate::shim::Arc;

/// A pool of threads that runs tasks: Piscina's pool on this crate's substrate (see the
/// [module docs](super)).
///
/// ```
/// use std::time::Duration;
/// use sharedbuf::pool::{TaskError, TaskOptions, WorkerPool};
///
/// let pool = WorkerPool::builder().max_threads(4).build()?;
/// let square = pool.run(|_ctx| 12 * 12)?;
/// let crash = pool.run(|_ctx| -> u32 { panic!("bad input") })?;
/// assert_eq!(square.join()?, 144);
/// assert_eq!(crash.join(), Err(TaskError::Panicked("bad input".into())));
///
/// let results = pool.map(1..=4u64, |x| x * x)?;   // input order
/// assert_eq!(results, [1, 4, 9, 16]);
///
/// pool.close(Some(Duration::from_secs(5)))?;       // finish everything, join the threads
/// let stats = pool.stats();
/// assert_eq!((stats.completed, stats.failed), (stats.submitted - 1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Dropping the pool closes it and joins every thread it started (a task that never returns
/// keeps the drop waiting, as a scoped thread would), then drops its thread hooks (dropped
/// from inside its own task, it cannot join: its last thread drops them on its way out).
/// Only memory outlives it (docs/semantics.md P7): its bookkeeping, while a thread that
/// submitted to it still carves task cells from a chunk of it, and up to 16 MiB of empty slabs
/// of task cells kept for the next pool. Mind early returns: a function that
/// leaves with `?` while a task waits for something the function was still to do (a gate it
/// would open, a value it would store) waits in the pool's drop for ever. Release such tasks
/// from a guard declared after the pool (it is dropped first), or [`destroy`](Self::destroy)
/// the pool on the error path. A pool is `Send + Sync`: share it with
/// `&` or an `Arc` (tasks that submit subtasks capture an `Arc<WorkerPool>`).
///
/// A pool does not cross a `fork` (docs/semantics.md X7): its threads are not in the forked
/// child, so there submitting ([`run`](Self::run) and its kin, [`broadcast`](Self::broadcast))
/// is refused with [`PoolError::ForkedHandle`], [`close`](Self::close) with
/// [`CloseError::ForkedHandle`], a [`TaskHandle`] of it resolves [`TaskError::ForkedHandle`]
/// unless its task had finished before the fork, [`wait_drained`](Self::wait_drained) answers
/// at once, and dropping it returns at once (leaking what is the parent's) instead of joining
/// threads that are not there. [`map`](Self::map) still works there (the calling thread runs
/// every chunk). A pool built in the child works.
pub struct WorkerPool {
    core: Arc<Core>,
}

impl WorkerPool {
    pub(super) fn start(config: Config) -> Result<WorkerPool, BuildError> {
        let min_threads = config.min_threads;
        let core = Arc::new(Core::new(config, worker::spawn).map_err(|error| {
            BuildError::SpawnFailed {
                reason: error.to_string(),
            }
        })?);
        let pool = WorkerPool { core };
        {
            let mut locked = pool.core.lock();
            for slot in 0..min_threads {
                if let Err(reason) = locked.start_thread(&pool.core, slot) {
                    drop(locked);
                    pool.core.destroy();
                    return Err(BuildError::SpawnFailed { reason });
                }
            }
        }
        Ok(pool)
    }

    /// Submits `task` with default [`TaskOptions`]: it runs on a pool thread, and its handle
    /// gives its value (or why there is none). `Err` gives the task back if the pool refuses it
    /// (closed, queue full, no thread could be started): nothing is dropped silently (P2).
    pub fn run<F, R>(&self, task: F) -> Result<TaskHandle<R>, PoolError<F>>
    where
        F: FnOnce(&TaskContext<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.run_with(TaskOptions::new(), task)
    }

    /// Submits `task` with a timeout (counted from its start, P8), a priority, or a key.
    ///
    /// With [`WhenFull::CallerRuns`](super::WhenFull::CallerRuns) and a full queue the task
    /// runs on the calling thread before this returns; a keyed task is refused instead (running
    /// it here would break its key's order).
    pub fn run_with<F, R>(
        &self,
        options: TaskOptions,
        task: F,
    ) -> Result<TaskHandle<R>, PoolError<F>>
    where
        F: FnOnce(&TaskContext<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        if self.core.made_in.forked() {
            return Err(PoolError::ForkedHandle(task));
        }
        let placement = match options.key {
            Some(key) => Placement::Keyed(key),
            None => Placement::Global(options.priority),
        };
        let mut cell = match TaskCell::make_for(&self.core, placement, options.timeout, task) {
            Ok(cell) => cell,
            Err((task, error)) => {
                return Err(PoolError::SpawnFailed {
                    task,
                    reason: error.to_string(),
                })
            }
        };
        let refusal = match Core::submit(&self.core, cell.job(), true) {
            Ok(()) => return Ok(TaskHandle::new(cell.into_task())),
            Err(Refusal::RunHere) if options.key.is_none() => {
                let job: JobRef = cell.job();
                let claimed = job.header().state.claim();
                debug_assert!(claimed, "an unpublished task is ours");
                self.core.counters.submitted.add(1, false);
                let me = current_thread_of(self.core.id);
                let runner = Runner {
                    slot: me.map(|thread| thread.slot),
                    thread_id: me.map_or(0, |thread| thread.thread_id),
                };
                self.core.run_here(&job, runner, false);
                return Ok(TaskHandle::new(cell.into_task()));
            }
            Err(refusal) => refusal,
        };
        let task = cell
            .take_closure()
            .expect("a refused task was never published");
        Err(match refusal {
            Refusal::Closed => PoolError::Closed(task),
            Refusal::Full | Refusal::RunHere => PoolError::QueueFull(task),
            Refusal::SpawnFailed(reason) => PoolError::SpawnFailed { task, reason },
            Refusal::NoMemory => PoolError::SpawnFailed {
                task,
                reason: NO_MEMORY.to_owned(),
            },
        })
    }

    /// Submits `task` to the lane of `key`: all tasks with one key run on the same worker
    /// (`hash(key) % max_threads`), one at a time, in submission order (P9). For state kept per
    /// key in that worker's thread-locals, or for work on one resource that must not overlap.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use sharedbuf::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().max_threads(4).build()?;
    /// let log = Arc::new(Mutex::new(Vec::new()));
    /// let handles: Vec<_> = (0..5)
    ///     .map(|i| {
    ///         let log = Arc::clone(&log);
    ///         pool.run_keyed(&"account-7", move |ctx| {
    ///             log.lock().unwrap().push(i);
    ///             ctx.worker_index()
    ///         })
    ///     })
    ///     .collect::<Result<_, _>>()?;
    /// let workers: Vec<_> = handles.into_iter().map(|h| h.join()).collect::<Result<_, _>>()?;
    /// assert!(workers.windows(2).all(|w| w[0] == w[1])); // one worker
    /// assert_eq!(*log.lock().unwrap(), [0, 1, 2, 3, 4]);  // in order
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_keyed<K, F, R>(&self, key: &K, task: F) -> Result<TaskHandle<R>, PoolError<F>>
    where
        K: Hash + ?Sized,
        F: FnOnce(&TaskContext<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.run_with(TaskOptions::new().key(key), task)
    }

    /// Runs `task` once on every live worker and returns each run's result, in worker-index
    /// order (P9). Workers started later do not run it (use
    /// [`on_thread_start`](super::PoolBuilder::on_thread_start) for those). Broadcast tasks
    /// skip the queue bound and go before queued work. Callable from a task of the pool itself.
    ///
    /// ```
    /// use sharedbuf::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().min_threads(3).max_threads(3).build()?;
    /// let workers = pool.broadcast(|ctx| ctx.worker_index())?;
    /// assert_eq!(workers, [Ok(Some(0)), Ok(Some(1)), Ok(Some(2))]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn broadcast<F, R>(&self, task: F) -> Result<Vec<Result<R, TaskError>>, PoolError<F>>
    where
        F: Fn(&TaskContext<'_>) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        if self.core.made_in.forked() {
            return Err(PoolError::ForkedHandle(task));
        }
        broadcast::broadcast(&self.core, task)
    }

    /// Applies `f` to every item on the pool and returns the results in input order (P9).
    ///
    /// The items are cut into a few chunks (one task each), so tiny items cost about what
    /// rayon's `par_iter` costs; the calling thread runs chunks too. Items move into `f`, and
    /// results are written in place (no copies). Chunks skip the queue bound; if the pool is
    /// closed, the caller runs them all. If `f` panics, the first panic is returned once every
    /// chunk has stopped, and the results made so far are dropped.
    ///
    /// The items are collected first. An iterator that says it never ends (its `size_hint`'s
    /// lower bound does not fit in memory, as `0..` says) is refused at once with
    /// `Err(Panicked)`, as is one whose items or results memory cannot hold (the allocation
    /// fails); an endless iterator that does not say so takes memory until an allocation
    /// fails, as collecting it into a `Vec` would. A panic in the iterator's `next` reaches
    /// the caller before anything is submitted.
    pub fn map<I, F, R>(&self, items: I, f: F) -> Result<Vec<R>, TaskError>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> R + Send + Sync + 'static,
        R: Send + 'static,
    {
        map::map(&self.core, map::collect(items.into_iter())?, f)
    }

    /// Tasks waiting to start (keyed ones included; `broadcast` runs not).
    pub fn queue_size(&self) -> usize {
        self.core.lock().queued_now()
    }

    /// Whether tasks wait and the queue is at its bound (a producer should wait for
    /// [`wait_drained`](WorkerPool::wait_drained) before submitting more). Always `false`
    /// for an unbounded queue.
    pub fn needs_drain(&self) -> bool {
        match self.core.config.queue_bound {
            Some(bound) => {
                let queued = self.core.lock().queued_now();
                queued > 0 && queued >= bound
            }
            None => false,
        }
    }

    /// Waits until no task waits to start (running ones may still run), or `timeout` passes
    /// (`None`: no limit). `true` if the queue is empty.
    ///
    /// Called from a task of this pool, it waits for the *other* workers to take the queued
    /// tasks: it runs none of them itself, only its own worker's share of a
    /// [`broadcast`](WorkerPool::broadcast) that arrives meanwhile (P10). Tasks only the
    /// calling worker could start — keyed tasks of a lane bound to it, or every task in a pool
    /// of one thread — keep it waiting until something else takes them (a cancel, an inline
    /// join, [`destroy`](WorkerPool::destroy)); give it a timeout there (it then returns
    /// `false`).
    ///
    /// In a fork child of the process that built the pool, answers at once: nothing there
    /// takes queued tasks (docs/semantics.md X7).
    pub fn wait_drained(&self, timeout: Option<Duration>) -> bool {
        if self.core.made_in.forked() {
            return self.core.lock().queued_now() == 0;
        }
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        // Before the first look at the counts: a worker that claims a batch task after this
        // takes it off them at once and signals (scheduler B4).
        let _watch = self.core.watch_drain();
        let mut locked = self.core.lock();
        loop {
            if locked.queued_now() == 0 {
                return true;
            }
            let waited;
            (locked, waited) = locked.wait_for_queue_serving(&self.core, deadline);
            if !waited {
                return locked.queued_now() == 0;
            }
        }
    }

    /// A snapshot of the pool's statistics (P6). Reading them takes the pool's lock once and
    /// adds up per-thread counters; keeping them costs the tasks no lock and no shared write.
    pub fn stats(&self) -> PoolStats {
        let core = &self.core;
        let (queued, submitted, threads, idle_threads, peak_threads, lifetime) = {
            let locked = core.lock();
            let now = Instant::now();
            let live: Duration = locked
                .slots
                .iter()
                .filter_map(|slot| slot.started_at.map(|at| now.saturating_duration_since(at)))
                .sum();
            (
                locked.queued_now(),
                locked.submitted,
                locked.alive,
                locked.idle.len(),
                locked.peak,
                locked.exited_lifetime + live,
            )
        };
        let recorders = || core.recorders();
        let sum = |count: fn(&stats::Recorder) -> u64| recorders().map(count).sum::<u64>();
        let started = sum(|r| r.started.get());
        let ended = sum(|r| r.ended.get());
        // Run time is sampled: scale the sampled busy time up to every task that ended.
        let workers = || recorders().take(core.config.max_threads);
        let sampled_ns: u64 = workers().map(|r| r.run_time.sum_ns()).sum();
        let sampled: u64 = workers().map(|r| r.run_time.count()).sum();
        let worker_ended: u64 = workers().map(|r| r.ended.get()).sum();
        let busy_ns = if sampled == 0 {
            0
        } else {
            (sampled_ns as f64 * worker_ended as f64 / sampled as f64) as u64
        };
        let (run_time, wait_time) = stats::summaries(recorders());
        let counters = &core.counters;
        PoolStats {
            submitted: counters.submitted.get() + submitted,
            completed: sum(|r| r.completed.get()),
            failed: sum(|r| r.failed.get()),
            cancelled: counters.cancelled.get(),
            timed_out: counters.timed_out.get(),
            destroyed: counters.destroyed.get(),
            queued,
            running: started.saturating_sub(ended) as usize,
            overdue: counters.overdue() as usize,
            threads,
            idle_threads,
            peak_threads,
            threads_started: counters.threads_started.get(),
            replacements: counters.replacements.get(),
            hook_panics: counters.hook_panics.get(),
            utilization: stats::utilization(busy_ns, lifetime),
            run_time,
            wait_time,
        }
    }

    /// Stops accepting tasks, lets every queued and running task finish, then joins every
    /// thread (P7). If `timeout` (`None`: no limit) passes while a task is still queued or
    /// running, the pool is [`destroy`](WorkerPool::destroy)ed and this returns
    /// `Err(TimedOut)`; if it passes only while idle threads are exiting, this returns `Ok`
    /// (nothing was lost). Threads not joined in time are joined when the pool is dropped.
    /// Called from a task of this pool, it only stops accepting (`Err(FromInsidePool)`): a
    /// thread cannot wait for itself.
    ///
    /// In a fork child of the process that built the pool: `Err(ForkedHandle)` at once, and
    /// nothing changes (docs/semantics.md X7).
    pub fn close(&self, timeout: Option<Duration>) -> Result<(), CloseError> {
        if self.core.made_in.forked() {
            return Err(CloseError::ForkedHandle);
        }
        self.core.close(timeout)
    }

    /// Ends everything now (P7): queued tasks never run (their handles resolve
    /// `PoolDestroyed`), running tasks have their cancel flag set and their handles resolve
    /// `PoolDestroyed` at once, and a task blocked in `atomics::wait` returns
    /// `Err(Terminated)`. Does not wait for the threads: they exit as their tasks return, and
    /// dropping the pool joins them.
    pub fn destroy(&self) {
        self.core.destroy();
    }

    /// Whether the pool still accepts tasks.
    pub fn is_open(&self) -> bool {
        self.core.lock().phase == super::scheduler::Phase::Open
    }

    /// The most threads the pool runs at once.
    pub fn max_threads(&self) -> usize {
        self.core.config.max_threads
    }
}

#[cfg(test)]
impl WorkerPool {
    /// The pool's shared state, for the pool's unit tests.
    pub(super) fn core(&self) -> &Arc<Core> {
        &self.core
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        if self.core.made_in.forked() {
            // A fork child: the threads are the parent's, nothing here could join them, and
            // the pool's state may name tasks they run. Leak it (docs/semantics.md X7), and
            // leave the slabs alone: their lock may have been held by one of those threads.
            return;
        }
        match self.close(None) {
            Ok(()) => {
                // Every thread is joined: nothing calls the hooks any more. Drop them now,
                // not with the `Core`, which a submitter's chunk of task cells may keep for
                // long after (config.rs `ThreadHook`).
                self.core.config.on_thread_start.release();
                self.core.config.on_thread_exit.release();
            }
            Err(CloseError::FromInsidePool | CloseError::ForkedHandle) => {}
            Err(CloseError::TimedOut { .. }) => {
                // The wait was interrupted (this thread is a terminated worker): the pool is
                // destroyed; its threads finish on their own.
            }
        }
        if !crate::shim::LOOM {
            // The empty slabs kept for the next burst of tasks go back (slabs.rs).
            super::slabs::trim();
        }
    }
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let locked = self.core.lock();
        f.debug_struct("WorkerPool")
            .field("name", &self.core.config.name)
            .field("phase", &locked.phase)
            .field("threads", &locked.alive)
            .field("queued", &locked.queued)
            .finish_non_exhaustive()
    }
}
