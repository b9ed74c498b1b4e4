//! One submitted task: its [`Header`] (state word, options, progress), its pool, its closure
//! and its result, in one allocation ([`TaskCell`]), and how a claimed task is run
//! ([`Job::run`]).
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

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::context::TaskContext;
use super::job::{Header, Job, JobRef, Runner};
use super::panic::{catch_panic, drop_quietly};
use super::scheduler::Core;
use super::task_state::{COMPLETED, TIMED_OUT};
use crate::atomics::{self, WaitAsync, WaitFuture};
use crate::shim::{Arc, UnsafeCell};

/// What a handle does with its task.
pub(super) trait Outcome<R>: Send + Sync {
    fn header(&self) -> &Header;

    /// The pool the task was submitted to.
    fn core(&self) -> &Arc<Core>;

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
    core: Arc<Core>,
    /// Taken by whoever moves the task out of `QUEUED` (task_state.rs, "Who owns the cells").
    closure: UnsafeCell<Option<F>>,
    /// Written by the runner while `RUNNING`; read by the handle after `COMPLETED`. A panic's
    /// message is boxed: rare, and a thin pointer instead of a `String` keeps every task's
    /// allocation 8 bytes smaller (job.rs says why that matters).
    #[allow(clippy::box_collection)]
    result: UnsafeCell<Option<Result<R, Box<String>>>>,
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
    pub(super) fn new(core: Arc<Core>, header: Header, closure: F) -> StdArc<TaskCell<F, R>> {
        StdArc::new(TaskCell {
            header,
            core,
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
            .with_mut(|result| unsafe { *result = Some(outcome.map_err(Box::new)) });
        if let Some(resolved) = header.state.leave_running(COMPLETED) {
            let (recorder, owned) = self.core.recorder(runner.slot);
            if failed {
                recorder.failed.add(1, owned);
            } else {
                recorder.completed.add(1, owned);
            }
            self.core.notify_resolved(header, resolved);
        } else {
            self.core.counters.overdue_removed.add(1, false);
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
        let (recorder, owned) = self.core.recorder(runner.slot);
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
        let timer = header
            .timeout()
            .map(|timeout| arm_timeout(this, &self.core, timeout));
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

    fn core(&self) -> &Arc<Core> {
        &self.core
    }

    unsafe fn take_result(&self) -> Option<Result<R, String>> {
        // SAFETY: the caller is the handle and saw `COMPLETED` (this function's contract):
        // the runner wrote the cell before publishing `COMPLETED` and never touches it again.
        self.result
            .with_mut(|result| unsafe { (*result).take() })
            .map(|outcome| outcome.map_err(|message| *message))
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
            let (recorder, owned) = self.cell.core.recorder(self.runner.slot);
            recorder.ended.add(1, owned);
        }
    }
}

/// Arms the timeout of `job` (of pool `core`): the crate's timer fires it `timeout` from now.
/// The returned future disarms it when dropped; `None` if it fired at once (a zero timeout) or
/// there is no timer.
fn arm_timeout(job: &JobRef, core: &Arc<Core>, timeout: Duration) -> Option<WaitFuture> {
    match atomics::wait_async(core.timer_word(), 0, 0, Some(timeout)) {
        Ok(WaitAsync::Pending(mut future)) => {
            let waker = Waker::from(StdArc::new(TimeoutWaker {
                job: StdArc::clone(job),
                core: Arc::clone(core),
            }));
            match Pin::new(&mut future).poll(&mut Context::from_waker(&waker)) {
                Poll::Pending => Some(future),
                Poll::Ready(_) => {
                    time_out(job, core);
                    None
                }
            }
        }
        Ok(WaitAsync::Ready(_)) => {
            time_out(job, core);
            None
        }
        // The timer thread could not start: the system refuses threads. The task then runs
        // without its timeout rather than not at all.
        Err(_) => None,
    }
}

/// The timer's waker for one running task (of pool `core`): firing it times the task out.
struct TimeoutWaker {
    job: JobRef,
    core: Arc<Core>,
}

impl Wake for TimeoutWaker {
    fn wake(self: StdArc<Self>) {
        time_out(&self.job, &self.core);
    }

    fn wake_by_ref(self: &StdArc<Self>) {
        time_out(&self.job, &self.core);
    }
}

/// `RUNNING → TIMED_OUT` (if the task of pool `core` has not returned yet): counts it,
/// resolves the handle.
fn time_out(job: &JobRef, core: &Core) {
    let header = job.header();
    if let Some(resolved) = header.state.leave_running(TIMED_OUT) {
        core.counters.timed_out.add(1, false);
        core.counters.overdue_added.add(1, false);
        core.notify_resolved(header, resolved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_tasks_cell_stays_within_one_128_byte_block() {
        // The cell plus `Arc`'s two counts, plus malloc's 8-byte header, in 128 bytes (job.rs,
        // `Header`): an empty closure and `()` result, on a 64-bit target without loom.
        type Plain = TaskCell<fn(&TaskContext<'_>), ()>;
        if usize::BITS == 64 && !crate::shim::LOOM {
            let block = std::mem::size_of::<Plain>() + 2 * 8 + 8;
            assert!(block <= 128, "a plain task's cell takes {block} bytes");
        }
    }
}
