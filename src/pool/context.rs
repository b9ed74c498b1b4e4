//! [`TaskContext`]: what a running task sees of itself, and which pool thread (if any) the
//! calling thread is.

use std::cell::Cell;
use std::fmt;

use super::error::Cancelled;
use super::task::Header;
use super::task_state::{phase, CANCEL_REQUESTED, RUNNING};
use crate::shim;

/// What a task receives: whether it should stop, where it runs, and a way to report progress.
///
/// Cancellation is cooperative (Rust cannot stop a thread): [`cancel`], a timeout that passed,
/// and [`destroy`] only set a flag, which a long task checks with [`is_cancelled`] or
/// [`check`]. A task blocked in [`atomics::wait`](crate::atomics::wait) is also woken with
/// `Err(Terminated)` when the pool is destroyed (or closed with a timeout that passed).
///
/// ```
/// use sharedbuf::pool::{Cancelled, WorkerPool};
///
/// let pool = WorkerPool::builder().max_threads(1).build()?;
/// let handle = pool.run(|ctx| -> Result<u64, Cancelled> {
///     let mut sum = 0u64;
///     for i in 0..1_000u64 {
///         ctx.check()?; // stops here once cancelled
///         sum += i;
///         ctx.progress(i); // the caller reads the latest value with handle.progress()
///     }
///     Ok(sum)
/// })?;
/// assert_eq!(handle.join()?, Ok(499_500));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// [`cancel`]: super::TaskHandle::cancel
/// [`destroy`]: super::WorkerPool::destroy
/// [`is_cancelled`]: TaskContext::is_cancelled
/// [`check`]: TaskContext::check
pub struct TaskContext<'a> {
    pub(super) header: &'a Header,
    pub(super) worker: Option<usize>,
    pub(super) thread_id: u64,
}

impl TaskContext<'_> {
    /// Whether the task should stop: its handle was [`cancel`](super::TaskHandle::cancel)led,
    /// its timeout passed, or the pool was destroyed. One atomic load.
    pub fn is_cancelled(&self) -> bool {
        let word = self.header.state.load();
        phase(word) != RUNNING || word & CANCEL_REQUESTED != 0
    }

    /// `Err(Cancelled)` once [`is_cancelled`](TaskContext::is_cancelled) holds, for `?`.
    pub fn check(&self) -> Result<(), Cancelled> {
        if self.is_cancelled() {
            Err(Cancelled)
        } else {
            Ok(())
        }
    }

    /// The index of the pool worker running the task (`0..max_threads`; the same index as in
    /// the thread's name), or `None` when it runs on a thread outside the pool
    /// ([`WhenFull::CallerRuns`](super::WhenFull::CallerRuns), or the caller of
    /// [`map`](super::WorkerPool::map) helping).
    pub fn worker_index(&self) -> Option<usize> {
        self.worker
    }

    /// The id of the pool thread running the task, unique in the process and never 0; 0 on a
    /// thread outside the pool. A worker index is reused by the thread that replaces an exited
    /// one; a thread id never is.
    pub fn thread_id(&self) -> u64 {
        self.thread_id
    }

    /// Publishes `value` as the task's latest progress, which the caller reads with
    /// [`TaskHandle::progress`](super::TaskHandle::progress) while the task runs. Two relaxed
    /// stores; the meaning of the number is the task's to choose.
    pub fn progress(&self, value: u64) {
        self.header.set_progress(value);
    }
}

impl fmt::Debug for TaskContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskContext")
            .field("worker_index", &self.worker)
            .field("thread_id", &self.thread_id)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Which pool thread the calling thread is: (pool id, worker index, thread id); pool id 0 on
/// every thread that is not a pool thread.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct PoolThread {
    pub(super) pool: u64,
    pub(super) slot: usize,
    pub(super) thread_id: u64,
}

shim::thread_local_static! {
    static CURRENT: Cell<PoolThread> = Cell::new(PoolThread { pool: 0, slot: 0, thread_id: 0 });
}

/// The pool thread the calling thread is, if it is one of pool `pool`'s.
pub(super) fn current_thread_of(pool: u64) -> Option<PoolThread> {
    let current = CURRENT.try_with(Cell::get).ok()?;
    (current.pool == pool && pool != 0).then_some(current)
}

/// Marks the calling thread as a pool thread for as long as the guard lives.
pub(super) fn enter(thread: PoolThread) -> Entered {
    let _ = CURRENT.try_with(|current| current.set(thread));
    Entered
}

/// Unmarks the thread when dropped.
pub(super) struct Entered;

impl Drop for Entered {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|current| {
            current.set(PoolThread {
                pool: 0,
                slot: 0,
                thread_id: 0,
            })
        });
    }
}
