//! [`TaskHandle`]: the caller's side of one task — join it (blocking), poll it, await it,
//! cancel it, read its progress (docs/semantics.md P3, P4, P10).
//!
//! Joining waits on the task's state word through the crate's own `atomics::wait` (awaiting:
//! `atomics::wait_async`), so it blocks and wakes the way everything else in the crate does, and
//! a join on a pool thread that is being destroyed is interrupted instead of hanging. A join on
//! a thread of the task's own pool waits on its worker's bell instead, which the task's
//! resolution rings, so that it can run its worker's share of a broadcast meanwhile
//! ([`TaskHandle::wait_serving`], broadcast.rs).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::context::{current_thread_of, PoolThread};
use super::error::TaskError;
use super::job::{Placement, Runner};
use super::lanes;
use super::scheduler::Core;
use super::task::TaskRef;
use super::task_state::{is_terminal, phase, CANCELLED, COMPLETED, DESTROYED, QUEUED, TIMED_OUT};
use crate::atomics::{self, WaitAsync, WaitFuture};
use crate::shim::Ordering::SeqCst;

/// The handle of a submitted task: [`join`](TaskHandle::join) it, poll it with
/// [`try_join`](TaskHandle::try_join), or `.await` it (it is a `Future` that works on any
/// executor); [`cancel`](TaskHandle::cancel) it; read its [`progress`](TaskHandle::progress).
///
/// Dropping the handle detaches the task: it still runs, and its value is dropped.
///
/// A join from a task of the same pool never deadlocks (P10): if the joined task has not
/// started, the joining thread runs it on the spot, and it never runs unrelated work while it
/// waits — so a pool of one thread can run tasks that join their subtasks:
///
/// ```
/// use std::sync::Arc;
/// use sharedbuf::pool::WorkerPool;
///
/// let pool = Arc::new(WorkerPool::builder().max_threads(1).build()?);
/// let inner = Arc::clone(&pool);
/// let outer = pool.run(move |_ctx| {
///     let sub = inner.run(|_ctx| 20).expect("queued"); // waits behind us: one thread
///     sub.join().expect("ran inline") + 22            // so the join runs it right here
/// })?;
/// assert_eq!(outer.join()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping a TaskHandle detaches its task (its value is dropped)"]
pub struct TaskHandle<R> {
    task: TaskRef<R>,
    /// The async wait of the latest poll, if it is pending (boxed: most handles are never
    /// polled, and a vector of a million handles should stay small).
    waiting: Option<Box<WaitFuture>>,
    /// The future already returned its output.
    done: bool,
}

impl<R: Send + 'static> TaskHandle<R> {
    pub(super) fn new(task: TaskRef<R>) -> TaskHandle<R> {
        TaskHandle {
            task,
            waiting: None,
            done: false,
        }
    }

    /// Waits for the task and returns its value, or why there is none: `Panicked(message)`,
    /// `Cancelled` (before it started), `TimedOut`, `PoolDestroyed`, `Interrupted` (this
    /// thread was interrupted first), or `ForkedHandle` (this is a fork child of the process
    /// that built the pool, and the task had not finished at the fork: docs/semantics.md X7).
    pub fn join(self) -> Result<R, TaskError> {
        let word = self.task.header().state.load();
        if is_terminal(word) {
            return self.resolve(word); // finished: nothing to help with or wait for
        }
        if self.task.core().made_in.forked() {
            return Err(TaskError::ForkedHandle);
        }
        self.help();
        match self.wait_terminal(None) {
            Ok(Some(word)) => self.resolve(word),
            Ok(None) => unreachable!("no deadline to pass"),
            Err(()) => Err(TaskError::Interrupted),
        }
    }

    /// Like [`join`](TaskHandle::join), but gives the handle back if the task has not
    /// finished within `timeout`.
    pub fn join_timeout(self, timeout: Duration) -> Result<Result<R, TaskError>, TaskHandle<R>> {
        let word = self.task.header().state.load();
        if !is_terminal(word) && self.task.core().made_in.forked() {
            return Ok(Err(TaskError::ForkedHandle));
        }
        self.help();
        let deadline = Instant::now().checked_add(timeout);
        match self.wait_terminal(deadline) {
            Ok(Some(word)) => Ok(self.resolve(word)),
            Ok(None) => Err(self),
            Err(()) => Ok(Err(TaskError::Interrupted)),
        }
    }

    /// The result if the task has finished; otherwise the handle back. Never blocks.
    pub fn try_join(self) -> Result<Result<R, TaskError>, TaskHandle<R>> {
        let word = self.task.header().state.load();
        if is_terminal(word) {
            Ok(self.resolve(word))
        } else {
            Err(self)
        }
    }

    /// Whether the task has finished (the handle would resolve without waiting).
    pub fn is_finished(&self) -> bool {
        is_terminal(self.task.header().state.load())
    }

    /// Cancels the task. If it has not started, it never will: its handle resolves
    /// `Err(Cancelled)`, its closure is dropped, and this returns `true`. If it is running,
    /// its cancel flag is set ([`TaskContext::is_cancelled`](super::TaskContext::is_cancelled))
    /// and its handle resolves with whatever it returns; this returns `false`, as it does for
    /// a task that already finished. Exactly one of "ran" and "cancelled" happens (P4).
    pub fn cancel(&self) -> bool {
        if self.cancel_if_queued() {
            return true;
        }
        self.task.header().state.request_cancel();
        false
    }

    /// Like [`cancel`](TaskHandle::cancel) for a task that has not started (`true`), but
    /// leaves a running task alone (no cancel flag) and returns `false`. A closing job-queue
    /// consumer gives back what has not started and lets what runs finish undisturbed.
    pub(crate) fn cancel_if_queued(&self) -> bool {
        let header = self.task.header();
        let Some(resolved) = header.state.leave_queue(CANCELLED) else {
            return false;
        };
        let core = self.task.core();
        core.counters.cancelled.add(1, false);
        core.notify_resolved(header, resolved);
        core.left_queue(header.placement);
        // Last: the closure's `Drop` is user code.
        self.task.job().discard();
        true
    }

    /// The latest value the task passed to
    /// [`TaskContext::progress`](super::TaskContext::progress), if it reported any.
    pub fn progress(&self) -> Option<u64> {
        self.task.header().progress()
    }

    /// On a thread of the task's own pool, runs the task here if it has not started (P10).
    fn help(&self) {
        let header = self.task.header();
        let core = self.task.core();
        let Some(thread) = current_thread_of(core.id) else {
            return;
        };
        let runner = Runner {
            slot: Some(thread.slot),
            thread_id: thread.thread_id,
        };
        match header.placement {
            Placement::Global(_) => {
                if header.state.claim() {
                    core.run_here(self.task.job(), runner, true);
                }
            }
            Placement::Keyed(key) => {
                if phase(header.state.load()) == QUEUED {
                    lanes::drive(core, key, self.task.job(), runner);
                }
            }
            Placement::Broadcast(_) => {}
        }
    }

    /// Waits until the state word is terminal (`Ok(Some(word))`) or `deadline` passes
    /// (`Ok(None)`); `Err` if the thread was interrupted.
    fn wait_terminal(&self, deadline: Option<Instant>) -> Result<Option<u32>, ()> {
        let state = &self.task.header().state;
        let core = self.task.core();
        if let Some(thread) = current_thread_of(core.id) {
            return self.wait_serving(core, thread, deadline);
        }
        loop {
            let word = state.load();
            if is_terminal(word) {
                return Ok(Some(word));
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                return Ok(None);
            }
            state.wait_change(word, deadline).map_err(|_| ())?;
        }
    }

    /// [`wait_terminal`](TaskHandle::wait_terminal) on a thread of the task's own pool: waits
    /// on the worker's bell, which the task's resolver rings (`Header::joiner`), and runs the
    /// broadcast tasks addressed to the worker as they arrive (broadcast.rs: the task waited
    /// for may itself be broadcasting, and wait for this worker). Nothing else runs here.
    ///
    /// No lost wakeup: the slot is written, then the word is flagged `WAITING` with a
    /// compare-exchange from the value seen (also if it is flagged already), after the bell
    /// was read under the lock. A resolver whose transition comes after that compare-exchange
    /// reads the flag and the slot and rings the bell under the lock, so after the bell was
    /// read; one whose transition comes before makes the compare-exchange fail, and the loop
    /// sees the task resolved.
    fn wait_serving(
        &self,
        core: &Core,
        thread: PoolThread,
        deadline: Option<Instant>,
    ) -> Result<Option<u32>, ()> {
        let header = self.task.header();
        let runner = Runner {
            slot: Some(thread.slot),
            thread_id: thread.thread_id,
        };
        let bell = core.bell(thread.slot);
        loop {
            let word = header.state.load();
            if is_terminal(word) {
                return Ok(Some(word));
            }
            let mut locked = core.lock();
            if let Some(job) = locked.claim_own_broadcast(thread.slot, thread.thread_id) {
                drop(locked);
                core.run_here(&job, runner, false);
                continue;
            }
            let word = header.state.load();
            if is_terminal(word) {
                return Ok(Some(word));
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                return Ok(None);
            }
            let seen = bell.load(SeqCst);
            drop(locked);
            header.set_joiner(thread.slot);
            if !header.state.flag_waiting_touch(word) {
                continue; // it changed meanwhile
            }
            bell.wait_until(seen, deadline).map_err(|_| ())?;
        }
    }

    /// The handle's answer for terminal `word`.
    fn resolve(&self, word: u32) -> Result<R, TaskError> {
        match phase(word) {
            COMPLETED => {
                // SAFETY: this is the task's one handle, and it saw `COMPLETED`.
                match unsafe { self.task.take_result() } {
                    Some(Ok(value)) => Ok(value),
                    Some(Err(message)) => Err(TaskError::Panicked(message)),
                    None => unreachable!("a completed task's value is taken once"),
                }
            }
            CANCELLED => Err(TaskError::Cancelled),
            TIMED_OUT => Err(TaskError::TimedOut),
            DESTROYED => Err(TaskError::PoolDestroyed),
            other => unreachable!("a handle never sees phase {other}"),
        }
    }
}

impl<R: Send + 'static> Future for TaskHandle<R> {
    type Output = Result<R, TaskError>;

    /// Resolves once the task finished. Polling it again after that panics, as with other
    /// futures.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        assert!(!this.done, "a TaskHandle polled after it resolved");
        loop {
            let word = this.task.header().state.load();
            if is_terminal(word) {
                this.waiting = None;
                this.done = true;
                return Poll::Ready(this.resolve(word));
            }
            if this.task.core().made_in.forked() {
                this.waiting = None;
                this.done = true;
                return Poll::Ready(Err(TaskError::ForkedHandle));
            }
            if let Some(waiting) = &mut this.waiting {
                match Pin::new(&mut **waiting).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(_) => {
                        this.waiting = None;
                        continue;
                    }
                }
            }
            let state = &this.task.header().state;
            let Some(flagged) = state.flag_waiting(word) else {
                continue; // it changed meanwhile
            };
            let view = state.view();
            match atomics::wait_async(&view, 0, flagged, None) {
                Ok(WaitAsync::Pending(future)) => this.waiting = Some(Box::new(future)),
                Ok(WaitAsync::Ready(_)) => {}
                Err(_) => unreachable!("the view covers the state word"),
            }
        }
    }
}

impl<R> fmt::Debug for TaskHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match phase(self.task.header().state.load()) {
            QUEUED => "queued",
            super::task_state::RUNNING => "running",
            COMPLETED => "completed",
            CANCELLED => "cancelled",
            TIMED_OUT => "timed out",
            DESTROYED => "destroyed",
            _ => "refused",
        };
        f.debug_struct("TaskHandle")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
