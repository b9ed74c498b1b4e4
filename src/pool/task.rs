//! One submitted task: its [`Header`] (state word, options, progress), its closure and its
//! result, in one allocation ([`TaskCell`]), and how a claimed task is run ([`Job::run`]).
//!
//! The queue holds a task as a [`JobRef`] (what every task can do, whatever its closure and
//! result types); its handle holds the same allocation as an `Arc<dyn Outcome<R>>`, which can
//! also hand out the value. Who may touch the closure and the result cell is decided by the
//! state word (see [`super::task_state`]).
//!
//! The cells are reference-counted with std's `Arc`: loom's `Arc` cannot hold a trait object.
//! That count is no part of any protocol (it only frees the memory); the state word, which loom
//! does see, decides everything else.
//!
//! # Running a claimed task
//!
//! [`Job::run`] records the wait time, arms the timeout if the task has one, runs the closure
//! with its panic caught, and publishes the value with `RUNNING → COMPLETED`. The timeout is a
//! [`wait_async`](crate::atomics::wait_async) on a word nobody notifies, so the crate's own
//! timer fires it; its waker moves the task `RUNNING → TIMED_OUT` — whichever of the two
//! transitions comes first wins (P8), and the loser's value is dropped. Resolving the handle is
//! in a drop guard: even a run that unwinds (under loom, where panics are not caught) resolves.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::context::TaskContext;
use super::options::Priority;
use super::panic::{catch_panic, drop_quietly};
use super::scheduler::Core;
use super::task_state::{Resolved, TaskState, COMPLETED, TIMED_OUT};
use crate::atomics::{self, WaitAsync, WaitFuture};
use crate::shim::{Arc, AtomicBool, AtomicU64, Ordering, UnsafeCell};

/// A task as the queues and workers see it.
pub(super) type JobRef = StdArc<dyn Job>;

/// Where a task waits before it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Placement {
    /// The shared queue of its priority.
    Global(Priority),
    /// The lane of its key (all tasks of one key, in order, on one worker).
    Keyed(u64),
    /// One worker's broadcast queue.
    Broadcast(usize),
}

/// Who runs a claimed task.
#[derive(Clone, Copy, Debug)]
pub(super) struct Runner {
    /// The pool worker's index, or `None` for a thread outside the pool.
    pub(super) slot: Option<usize>,
    /// The pool thread's id (0 outside the pool).
    pub(super) thread_id: u64,
}

/// What every task has, whatever its types.
pub(super) struct Header {
    pub(super) state: TaskState,
    pub(super) core: Arc<Core>,
    pub(super) placement: Placement,
    pub(super) timeout: Option<Duration>,
    /// When it was submitted, for the tasks whose times the statistics sample
    /// ([`SAMPLE_EVERY`]); `None` for the others.
    pub(super) submitted_at: Option<Instant>,
    /// A worker to ring when the task resolves: a pool thread blocked in `broadcast` waits on
    /// its bell, which also tells it of broadcast tasks addressed to it (broadcast.rs).
    pub(super) wake_slot: Option<usize>,
    progress: AtomicU64,
    has_progress: AtomicBool,
}

impl Header {
    pub(super) fn new(
        core: Arc<Core>,
        placement: Placement,
        timeout: Option<Duration>,
    ) -> Result<Header, crate::error::Error> {
        Ok(Header {
            state: TaskState::new()?,
            core,
            placement,
            timeout,
            submitted_at: sample_this_one().then(Instant::now),
            wake_slot: None,
            progress: AtomicU64::new(0),
            has_progress: AtomicBool::new(false),
        })
    }

    pub(super) fn set_progress(&self, value: u64) {
        self.progress.store(value, Ordering::Relaxed);
        self.has_progress.store(true, Ordering::Release);
    }

    pub(super) fn progress(&self) -> Option<u64> {
        self.has_progress
            .load(Ordering::Acquire)
            .then(|| self.progress.load(Ordering::Relaxed))
    }

    /// Wakes everyone waiting on the state word. A panicking waker (user code: an async
    /// runtime's) is swallowed, so the thread resolving the task — a worker, the timer, a
    /// `destroy` in the middle of its loop — goes on.
    pub(super) fn notify_resolved(&self, resolved: Resolved) {
        if resolved.has_waiters() {
            let _ = catch_panic(|| self.state.notify(resolved));
        }
        if let Some(slot) = self.wake_slot {
            self.core.lock().ring(slot);
        }
    }
}

/// One task in this many (counted per submitting thread) has its wait and run times recorded
/// in the statistics' histograms. Reading the clock costs about as much as the rest of a tiny
/// task's bookkeeping; a uniform sample keeps the percentiles honest for a steady stream of
/// tasks at an eighth of that cost. Counts are exact; only durations are sampled.
pub(super) const SAMPLE_EVERY: u32 = 8;

crate::shim::thread_local_static! {
    /// Tasks this thread submitted, modulo `SAMPLE_EVERY`.
    static SUBMITTED: std::cell::Cell<u32> = std::cell::Cell::new(0);
}

/// Whether the task this thread submits now is one whose times are sampled.
fn sample_this_one() -> bool {
    SUBMITTED
        .try_with(|count| {
            let n = count.get();
            count.set(if n + 1 == SAMPLE_EVERY { 0 } else { n + 1 });
            n == 0
        })
        .unwrap_or(false)
}

/// What the queues and workers do with a task.
pub(super) trait Job: Send + Sync {
    fn header(&self) -> &Header;

    /// Runs the task on the calling thread. The caller won [`TaskState::claim`].
    fn run(&self, this: &JobRef, runner: Runner);

    /// Drops the closure. The caller won a transition out of `QUEUED` other than `claim` (and
    /// already resolved the handle).
    fn discard(&self);
}

/// What a handle does with its task.
pub(super) trait Outcome<R>: Send + Sync {
    fn header(&self) -> &Header;

    /// Takes the value (or panic message) the runner stored.
    ///
    /// # Safety
    /// Only the task's one handle may call this, and only after it saw `COMPLETED`.
    unsafe fn take_result(&self) -> Option<Result<R, String>>;

    /// The same task as a [`JobRef`] (to run it inline).
    fn into_job(self: StdArc<Self>) -> JobRef;
}

/// One task in one allocation.
pub(super) struct TaskCell<F, R> {
    header: Header,
    /// Taken by whoever moves the task out of `QUEUED` (task_state.rs, "Who owns the cells").
    closure: UnsafeCell<Option<F>>,
    /// Written by the runner while `RUNNING`; read by the handle after `COMPLETED`.
    result: UnsafeCell<Option<Result<R, String>>>,
}

// SAFETY: the cells are never accessed by two threads at once: the closure only by the one
// thread that moved the task out of `QUEUED`, the result by the runner while `RUNNING` and by
// the handle after `COMPLETED`, and those phases are ordered by the `SeqCst` read-modify-writes
// of the state word. Moving `F` and `R` between threads needs them to be `Send`; no `&F` or
// `&R` is ever shared, so they need not be `Sync`.
unsafe impl<F: Send, R: Send> Send for TaskCell<F, R> {}
// SAFETY: as above.
unsafe impl<F: Send, R: Send> Sync for TaskCell<F, R> {}

impl<F, R> TaskCell<F, R>
where
    F: FnOnce(&TaskContext<'_>) -> R + Send + 'static,
    R: Send + 'static,
{
    pub(super) fn new(header: Header, closure: F) -> StdArc<TaskCell<F, R>> {
        StdArc::new(TaskCell {
            header,
            closure: UnsafeCell::new(Some(closure)),
            result: UnsafeCell::new(None),
        })
    }

    /// Takes the closure back from a task that was never published (the pool refused it) or
    /// that this caller moved out of `QUEUED`.
    pub(super) fn take_closure(&self) -> Option<F> {
        // SAFETY: the caller owns the closure: the task was never published, or the caller won
        // the transition out of `QUEUED` (task_state.rs).
        self.closure
            .with_mut(|closure| unsafe { (*closure).take() })
    }

    /// Publishes the runner's `outcome`: `RUNNING → COMPLETED`, counted as completed or
    /// failed; if the task timed out or was destroyed meanwhile, drops the value instead.
    fn publish(&self, outcome: Result<R, String>, runner: Runner) {
        let header = &self.header;
        let failed = outcome.is_err();
        // SAFETY: the runner owns the result cell while the phase is `RUNNING`, which it is
        // until the `leave_running` below (only the runner makes it `COMPLETED`; if another
        // thread made it `TIMED_OUT`/`DESTROYED`, no handle reads the cell).
        self.result
            .with_mut(|result| unsafe { *result = Some(outcome) });
        if let Some(resolved) = header.state.leave_running(COMPLETED) {
            let (recorder, owned) = header.core.recorder(runner.slot);
            if failed {
                recorder.failed.add(1, owned);
            } else {
                recorder.completed.add(1, owned);
            }
            header.notify_resolved(resolved);
        } else {
            header.core.counters.overdue_removed.add(1, false);
            // SAFETY: the handle never reads the cell of a task that did not complete, so the
            // runner still owns it.
            let unwanted = self.result.with_mut(|result| unsafe { (*result).take() });
            drop_quietly(unwanted);
        }
    }
}

impl<F, R> Job for TaskCell<F, R>
where
    F: FnOnce(&TaskContext<'_>) -> R + Send + 'static,
    R: Send + 'static,
{
    fn header(&self) -> &Header {
        &self.header
    }

    fn run(&self, this: &JobRef, runner: Runner) {
        let header = &self.header;
        let (recorder, owned) = header.core.recorder(runner.slot);
        let started = header.submitted_at.map(|submitted_at| {
            let now = Instant::now();
            recorder
                .wait_time
                .record(now.saturating_duration_since(submitted_at), owned);
            now
        });
        recorder.started.add(1, owned);
        // From here the handle resolves however this function is left.
        let mut unresolved = Unresolved {
            cell: self,
            runner,
            armed: true,
        };
        let timer = header.timeout.map(|timeout| arm_timeout(this, timeout));
        let closure = self
            .take_closure()
            .expect("a claimed task still has its closure");
        let context = TaskContext {
            header,
            worker: runner.slot,
            thread_id: runner.thread_id,
        };
        let outcome = catch_panic(|| closure(&context));
        drop(timer); // disarms (the timeout may still have fired: `publish` sees it)
        if let Some(started) = started {
            recorder.run_time.record(started.elapsed(), owned);
        }
        unresolved.armed = false;
        self.publish(outcome, runner);
        // After publishing, which counts the task (completed or failed): `running` covers it
        // until it is counted, so a pool whose stats show nothing running has every count in.
        recorder.ended.add(1, owned);
    }

    fn discard(&self) {
        drop_quietly(self.take_closure());
    }
}

impl<F, R> Outcome<R> for TaskCell<F, R>
where
    F: FnOnce(&TaskContext<'_>) -> R + Send + 'static,
    R: Send + 'static,
{
    fn header(&self) -> &Header {
        &self.header
    }

    unsafe fn take_result(&self) -> Option<Result<R, String>> {
        // SAFETY: the caller is the handle and saw `COMPLETED` (this function's contract):
        // the runner wrote the cell before publishing `COMPLETED` and never touches it again.
        self.result.with_mut(|result| unsafe { (*result).take() })
    }

    fn into_job(self: StdArc<Self>) -> JobRef {
        self
    }
}

/// Resolves the task as panicked if [`Job::run`] is left without publishing (it unwound).
struct Unresolved<'a, F, R>
where
    F: FnOnce(&TaskContext<'_>) -> R + Send + 'static,
    R: Send + 'static,
{
    cell: &'a TaskCell<F, R>,
    runner: Runner,
    armed: bool,
}

impl<F, R> Drop for Unresolved<'_, F, R>
where
    F: FnOnce(&TaskContext<'_>) -> R + Send + 'static,
    R: Send + 'static,
{
    fn drop(&mut self) {
        if self.armed && !crate::shim::model_is_unwinding() {
            self.cell.publish(
                Err("the task unwound out of the pool".to_owned()),
                self.runner,
            );
            let (recorder, owned) = self.cell.header.core.recorder(self.runner.slot);
            recorder.ended.add(1, owned);
        }
    }
}

/// Arms `job`'s timeout: the crate's timer fires it `timeout` from now. The returned future
/// disarms it when dropped; `None` if it fired at once (a zero timeout) or there is no timer.
fn arm_timeout(job: &JobRef, timeout: Duration) -> Option<WaitFuture> {
    let view = job.header().core.timer_word();
    match atomics::wait_async(view, 0, 0, Some(timeout)) {
        Ok(WaitAsync::Pending(mut future)) => {
            let waker = Waker::from(StdArc::new(TimeoutWaker(StdArc::clone(job))));
            match Pin::new(&mut future).poll(&mut Context::from_waker(&waker)) {
                Poll::Pending => Some(future),
                Poll::Ready(_) => {
                    time_out(job);
                    None
                }
            }
        }
        Ok(WaitAsync::Ready(_)) => {
            time_out(job);
            None
        }
        // The timer thread could not start: the system refuses threads. The task then runs
        // without its timeout rather than not at all.
        Err(_) => None,
    }
}

/// The timer's waker for one running task: firing it times the task out.
struct TimeoutWaker(JobRef);

impl Wake for TimeoutWaker {
    fn wake(self: StdArc<Self>) {
        time_out(&self.0);
    }

    fn wake_by_ref(self: &StdArc<Self>) {
        time_out(&self.0);
    }
}

/// `RUNNING → TIMED_OUT` (if the task has not returned yet): counts it, resolves the handle.
fn time_out(job: &JobRef) {
    let header = job.header();
    if let Some(resolved) = header.state.leave_running(TIMED_OUT) {
        header.core.counters.timed_out.add(1, false);
        header.core.counters.overdue_added.add(1, false);
        header.notify_resolved(resolved);
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("state", &self.state.load())
            .field("placement", &self.placement)
            .finish_non_exhaustive()
    }
}
