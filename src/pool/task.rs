//! One submitted task: its [`Header`] (state word, options, progress), its pool, its closure
//! and its result, in one allocation ([`TaskCell`]), and how a claimed task is run
//! ([`JobRef::run`]).
//!
//! The queue holds a task as a [`JobRef`] (what every task can do, whatever its closure and
//! result types, through the cell's [`JobVTable`]); its handle holds the same cell as a
//! [`TaskRef<R>`], which can also hand out the value. Who may touch the closure and the result
//! cell is decided by the state word (see [`super::task_state`]).
//!
//! The cells are reference-counted by their [`CellHead`] (job.rs). That count is no part of any
//! protocol (it only frees the memory); the state word, which loom does see, decides everything
//! else. A cell that fits lives in a block carved out of its submitting thread's chunk
//! (cells.rs), so a task costs no `malloc` or `free` of its own, and borrows the chunk's
//! references to its pool and to its state word (cells.rs C4) instead of counting its own. A
//! cell is born counted twice, for its handle and for its queue.
//!
//! # Running a claimed task
//!
//! [`JobRef::run`] records the wait time, arms the timeout if the task has one, runs the closure
//! with its panic caught, and publishes the value with `RUNNING → COMPLETED`. The timeout is a
//! [`wait_async`](crate::atomics::wait_async) on a word nobody notifies, so the crate's own
//! timer fires it; its waker moves the task `RUNNING → TIMED_OUT` — whichever of the two
//! transitions comes first wins (P8), and the loser's value is dropped. Resolving the handle is
//! in a drop guard: even a run that unwinds (under loom, where panics are not caught) resolves.

use std::alloc::Layout;
use std::future::Future;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc as StdArc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::cells;
use super::context::TaskContext;
use super::job::{CellHead, Header, JobRef, JobVTable, Placement, Runner};
use super::panic::{catch_panic, drop_quietly};
use super::scheduler::Core;
use super::task_state::{COMPLETED, TIMED_OUT};
use crate::atomics::{self, WaitAsync, WaitFuture};
use crate::shim::{Arc, UnsafeCell};

/// The handle's reference to its task: a [`JobRef`] that knows the result type.
pub(super) struct TaskRef<R> {
    job: JobRef,
    result: PhantomData<fn() -> R>,
}

impl<R> TaskRef<R> {
    pub(super) fn job(&self) -> &JobRef {
        &self.job
    }

    pub(super) fn header(&self) -> &Header {
        self.job.header()
    }

    /// The pool the task was submitted to.
    pub(super) fn core(&self) -> &Arc<Core> {
        // SAFETY: every cell is a `TaskCell`, which starts with a `Base` (`repr(C)`), and the
        // counted `JobRef` keeps it alive.
        unsafe { &self.job.as_head().cast::<Base>().as_ref().core }
    }

    /// Takes the value (or panic message) the runner stored.
    ///
    /// # Safety
    /// Only the task's one handle may call this, and only after it saw `COMPLETED`.
    pub(super) unsafe fn take_result(&self) -> Option<Result<R, String>> {
        let mut out: Option<Result<R, String>> = None;
        // SAFETY: the cell's `R` is this `R` (a `TaskRef<R>` is only made by the cell's own
        // `TaskCell::make`); the caller's contract is `take_result`'s.
        unsafe {
            (self.job.vtable().take_result)(&self.job, &mut out as *mut Option<_> as *mut ())
        };
        out
    }
}

/// The part of every [`TaskCell`] that does not depend on its types, at its start.
#[repr(C)]
struct Base {
    head: CellHead,
    /// The task's pool. A cell allocated on its own holds a counted reference, dropped with
    /// the cell (`release_alone`); a carved cell borrows its chunk's, never dropped (cells.rs C4).
    core: ManuallyDrop<Arc<Core>>,
}

/// A cell just made, before it is submitted: its typed references.
pub(super) struct Fresh<F, R> {
    task: TaskRef<R>,
    /// The queue's reference, counted when the cell was made (until taken).
    queue: Option<JobRef>,
    closure: PhantomData<fn() -> F>,
}

impl<F, R> Fresh<F, R>
where
    F: FnOnce(&TaskContext<'_>) -> R + Send + 'static,
    R: Send + 'static,
{
    /// Another reference for the queue (or a runner): the first one was counted when the cell
    /// was made, the others are clones.
    pub(super) fn job(&mut self) -> JobRef {
        match self.queue.take() {
            Some(job) => job,
            None => self.task.job.clone(),
        }
    }

    /// Takes the closure back from a task that was never published (the pool refused it).
    pub(super) fn take_closure(&self) -> Option<F> {
        // SAFETY: `Fresh<F, R>` is only made by `TaskCell::<F, R>::make`; the cell is alive.
        unsafe { self.task.job.as_head().cast::<TaskCell<F, R>>().as_ref() }.take_closure()
    }

    /// The handle's reference.
    pub(super) fn into_task(self) -> TaskRef<R> {
        self.task
    }
}

/// One task in one allocation: a block carved by cells.rs if it fits, else its own.
#[repr(C)]
pub(super) struct TaskCell<F, R> {
    /// First (`repr(C)`): a `JobRef` points at its head, a `TaskRef` reads its `core`.
    base: Base,
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
    /// The vtable of a cell in a carved block, and of one allocated on its own: they differ
    /// only in how the memory goes back.
    const CARVED: JobVTable = Self::vtable(Self::release_carved);
    const ALONE: JobVTable = Self::vtable(Self::release_alone);

    const fn vtable(release: unsafe fn(NonNull<CellHead>)) -> JobVTable {
        JobVTable {
            run: Self::run_job,
            discard: Self::discard_job,
            take_result: Self::take_result_erased,
            release,
        }
    }

    /// A cell for `closure`, submitted to `core` with `placement` and `timeout`: carved,
    /// borrowing its chunk's pool and state word (cells.rs C4), or allocated on its own with
    /// references of its own. `Err` gives the closure back if no state word could be made.
    pub(super) fn make_for(
        core: &Arc<Core>,
        placement: Placement,
        timeout: Option<Duration>,
        closure: F,
    ) -> Result<Fresh<F, R>, (F, crate::error::Error)> {
        if let Some(carved) = cells::carve(Layout::new::<TaskCell<F, R>>(), core) {
            // SAFETY: the cell made in this block takes both, once, and never drops the
            // borrowed pool (the `CARVED` vtable's release does not).
            let (lent_core, state) = unsafe { (carved.core(), carved.state()) };
            let header = Header::with_state(state, placement, timeout);
            // SAFETY: a carved block fits the cell, and its pool is borrowed.
            return Ok(unsafe {
                Self::build(
                    carved.block.cast(),
                    &Self::CARVED,
                    lent_core,
                    header,
                    closure,
                )
            });
        }
        let header = match Header::new(placement, timeout) {
            Ok(header) => header,
            Err(error) => return Err((closure, error)),
        };
        Self::try_alone(core, header, closure).map_err(|closure| {
            let error = crate::error::Error::AllocationFailed {
                bytes: Layout::new::<TaskCell<F, R>>().size(),
                reason: "out of memory for the task's cell".to_owned(),
            };
            (closure, error)
        })
    }

    /// A cell for `closure` with a header made beforehand (broadcast and map make theirs before
    /// anything changes hands); carved if it fits (its block's own word then goes unused).
    pub(super) fn make(core: &Arc<Core>, header: Header, closure: F) -> Fresh<F, R> {
        match cells::carve(Layout::new::<TaskCell<F, R>>(), core) {
            // SAFETY: the cell made in this block borrows the pool, once, and never drops it;
            // a carved block fits the cell.
            Some(carved) => unsafe {
                Self::build(
                    carved.block.cast(),
                    &Self::CARVED,
                    carved.core(),
                    header,
                    closure,
                )
            },
            // Broadcast and map make a cell per worker or chunk, a few: out of memory for one
            // aborts, as `Vec` does.
            None => Self::try_alone(core, header, closure).unwrap_or_else(|_| {
                std::alloc::handle_alloc_error(Layout::new::<TaskCell<F, R>>())
            }),
        }
    }

    /// A cell allocated on its own, with its own reference to `core`; `Err` gives the closure
    /// back if the allocator refused the memory.
    fn try_alone(core: &Arc<Core>, header: Header, closure: F) -> Result<Fresh<F, R>, F> {
        let layout = Layout::new::<TaskCell<F, R>>();
        // SAFETY: the layout's size is not zero (a cell has a head).
        let Some(memory) = NonNull::new(unsafe { std::alloc::alloc(layout) }) else {
            return Err(closure);
        };
        let memory = memory.cast();
        // SAFETY: fresh memory of the cell's own layout, freed by `release_alone`, which
        // drops the counted reference.
        Ok(unsafe {
            Self::build(
                memory,
                &Self::ALONE,
                ManuallyDrop::new(Arc::clone(core)),
                header,
                closure,
            )
        })
    }

    /// Writes the cell into `memory`, counted twice (its handle and its queue).
    ///
    /// # Safety
    /// `memory` is fresh, large enough and aligned for the cell, and goes back as `vtable`'s
    /// `release` says; `core` is counted for the cell if and only if that release drops it.
    unsafe fn build(
        memory: NonNull<TaskCell<F, R>>,
        vtable: &'static JobVTable,
        core: ManuallyDrop<Arc<Core>>,
        header: Header,
        closure: F,
    ) -> Fresh<F, R> {
        let cell = TaskCell {
            base: Base {
                head: CellHead::new(vtable, header, 2),
                core,
            },
            closure: UnsafeCell::new(Some(closure)),
            result: UnsafeCell::new(None),
        };
        // SAFETY: the caller's contract.
        unsafe { memory.as_ptr().write(cell) };
        // SAFETY: the cell's head starts it (`repr(C)`), and its two counts are these two.
        let (job, queue) = unsafe {
            (
                JobRef::from_head(memory.cast()),
                JobRef::from_head(memory.cast()),
            )
        };
        Fresh {
            task: TaskRef {
                job,
                result: PhantomData,
            },
            queue: Some(queue),
            closure: PhantomData,
        }
    }

    /// The cell of `job`.
    ///
    /// # Safety
    /// `job`'s cell is a `TaskCell<F, R>` (its vtable is this type's).
    unsafe fn of(job: &JobRef) -> &TaskCell<F, R> {
        // SAFETY: the caller's contract; the counted `job` keeps the cell alive.
        unsafe { job.as_head().cast::<TaskCell<F, R>>().as_ref() }
    }

    /// `JobVTable::run`.
    unsafe fn run_job(job: &JobRef, runner: Runner) {
        // SAFETY: this vtable's functions are only ever called on this type's cells.
        unsafe { Self::of(job) }.run(job, runner);
    }

    /// `JobVTable::discard`.
    unsafe fn discard_job(job: &JobRef) {
        // SAFETY: as in `run_job`.
        drop_quietly(unsafe { Self::of(job) }.take_closure());
    }

    /// `JobVTable::take_result`.
    unsafe fn take_result_erased(job: &JobRef, out: *mut ()) {
        // SAFETY: as in `run_job`; `out` is an `Option<Result<R, String>>` (TaskRef::take_result)
        // and the caller is the handle after it saw `COMPLETED`.
        unsafe { *out.cast::<Option<Result<R, String>>>() = Self::of(job).take_result() };
    }

    /// `JobVTable::release` of a cell in a carved block.
    unsafe fn release_carved(head: NonNull<CellHead>) {
        /// Frees the block even if a value's `Drop` panics.
        struct FreeBlock(NonNull<u8>);
        impl Drop for FreeBlock {
            fn drop(&mut self) {
                // SAFETY: the block's cell was dropped (or its drop unwound); nobody uses it.
                unsafe { cells::free(self.0) }
            }
        }
        let cell = head.cast::<TaskCell<F, R>>();
        let _free = FreeBlock(cell.cast());
        // SAFETY: the last reference is gone: the cell is dropped once, then its block freed
        // once (cells.rs C2).
        unsafe { cell.as_ptr().drop_in_place() };
    }

    /// `JobVTable::release` of a cell allocated on its own: drops it, then its pool reference.
    unsafe fn release_alone(head: NonNull<CellHead>) {
        // SAFETY: the cell was allocated with the global allocator and its own layout, as a
        // `Box` is, and the last reference is gone.
        let mut cell = unsafe { Box::from_raw(head.cast::<TaskCell<F, R>>().as_ptr()) };
        // SAFETY: a lone cell's pool reference is its own (`alone`), taken once, here.
        let core = unsafe { ManuallyDrop::take(&mut cell.base.core) };
        drop(cell);
        drop(core);
    }

    fn header(&self) -> &Header {
        self.base.head.header()
    }

    /// Takes the closure back from a task that was never published (the pool refused it) or
    /// that this caller moved out of `QUEUED`.
    fn take_closure(&self) -> Option<F> {
        // SAFETY: the caller owns the closure: the task was never published, or the caller won
        // the transition out of `QUEUED` (task_state.rs).
        self.closure
            .with_mut(|closure| unsafe { (*closure).take() })
    }

    /// Publishes the runner's `outcome`: `RUNNING → COMPLETED`, counted as completed or
    /// failed; if the task timed out or was destroyed meanwhile, drops the value instead.
    fn publish(&self, outcome: Result<R, String>, runner: Runner) {
        let header = self.header();
        let failed = outcome.is_err();
        // SAFETY: the runner owns the result cell while the phase is `RUNNING`, which it is
        // until the `leave_running` below (only the runner makes it `COMPLETED`; if another
        // thread made it `TIMED_OUT`/`DESTROYED`, no handle reads the cell).
        self.result
            .with_mut(|result| unsafe { *result = Some(outcome.map_err(Box::new)) });
        if let Some(resolved) = header.state.leave_running(COMPLETED) {
            let (recorder, owned) = self.base.core.recorder(runner.slot);
            if failed {
                recorder.failed.add(1, owned);
            } else {
                recorder.completed.add(1, owned);
            }
            self.base.core.notify_resolved(header, resolved);
        } else {
            self.base.core.counters.overdue_removed.add(1, false);
            // SAFETY: the handle never reads the cell of a task that did not complete, so the
            // runner still owns it.
            let unwanted = self.result.with_mut(|result| unsafe { (*result).take() });
            drop_quietly(unwanted);
        }
    }

    /// Runs the claimed task `this` (this cell) on the calling thread.
    fn run(&self, this: &JobRef, runner: Runner) {
        let header = self.header();
        let core = &self.base.core;
        let (recorder, owned) = core.recorder(runner.slot);
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
            .map(|timeout| arm_timeout(this, core, timeout));
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

    /// Takes the value (or panic message) the runner stored.
    ///
    /// # Safety
    /// Only the task's one handle may call this, and only after it saw `COMPLETED`.
    unsafe fn take_result(&self) -> Option<Result<R, String>> {
        // SAFETY: the caller is the handle and saw `COMPLETED` (this function's contract):
        // the runner wrote the cell before publishing `COMPLETED` and never touches it again.
        self.result
            .with_mut(|result| unsafe { (*result).take() })
            .map(|outcome| outcome.map_err(|message| *message))
    }
}

/// Resolves the task as panicked if [`JobRef::run`] is left without publishing (it unwound).
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
            let (recorder, owned) = self.cell.base.core.recorder(self.runner.slot);
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
                job: job.clone(),
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
    fn a_plain_tasks_cell_fits_one_carved_block() {
        // An empty closure and `()` result, on a 64-bit target without loom (cells.rs).
        type Plain = TaskCell<fn(&TaskContext<'_>), ()>;
        if usize::BITS == 64 && !crate::shim::LOOM {
            let size = std::mem::size_of::<Plain>();
            assert!(
                size <= cells::BLOCK,
                "a plain task's cell takes {size} bytes"
            );
        }
    }

    #[test]
    fn carved_cells_borrow_their_chunks_pool_and_words_until_the_last_of_them_is_freed() {
        // Cells made on a thread of their own borrow their chunk's references to the pool's
        // core and to the state words (cells.rs C4). The pool is dropped and the carving
        // thread exits before the cells are read and freed, half on another thread: only the
        // chunks keep the core and the words alive then. Under Miri a reference dropped too
        // early is a use after free; at the end the core must be gone (none leaked).
        use super::super::options::Priority;
        use super::super::task_state::QUEUED;
        use crate::pool::WorkerPool;
        let cells = 2 * (8192 / cells::BLOCK) + 3; // three chunks
        let (tasks, core_seen) = std::thread::spawn(move || {
            let pool = WorkerPool::builder().min_threads(0).build().unwrap();
            let core = pool.core();
            let tasks: Vec<TaskRef<()>> = (0..cells)
                .map(|_| {
                    let placement = Placement::Global(Priority::Normal);
                    let made = TaskCell::make_for(core, placement, None, |_: &TaskContext<'_>| ());
                    let mut fresh = made.ok().expect("a state word");
                    drop(fresh.job()); // the queue's reference: never queued
                    fresh.into_task()
                })
                .collect();
            // The pool's count and one per chunk: the cells count none of their own.
            assert!(
                StdArc::strong_count(core) <= 4,
                "{}",
                StdArc::strong_count(core)
            );
            (tasks, Arc::downgrade(core))
        })
        .join()
        .unwrap();
        assert!(core_seen.strong_count() > 0, "the chunks keep the core");
        let (mine, theirs): (Vec<_>, Vec<_>) =
            tasks.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let read_and_drop = |tasks: Vec<(usize, TaskRef<()>)>| {
            for (_, task) in tasks {
                assert!(task.core().id > 0);
                assert_eq!(task.header().state.load(), QUEUED);
            }
        };
        let other = std::thread::spawn(move || read_and_drop(theirs));
        read_and_drop(mine);
        other.join().unwrap();
        assert_eq!(
            core_seen.strong_count(),
            0,
            "the pool's core outlived its cells"
        );
    }

    #[test]
    fn a_pool_kept_only_by_a_threads_current_chunk_goes_when_the_thread_exits() {
        // The submitting thread's current chunk holds the pool's core past the pool (C4); the
        // thread's exit gives the chunk up, and with it the core (in a thread-local's drop).
        use crate::pool::WorkerPool;
        let core_seen = std::thread::spawn(move || {
            let pool = WorkerPool::builder().max_threads(1).build().unwrap();
            let core_seen = Arc::downgrade(pool.core());
            assert_eq!(pool.run(|_| 5).unwrap().join(), Ok(5));
            drop(pool); // joins its thread
            assert!(
                core_seen.strong_count() > 0,
                "this thread's chunk keeps the core"
            );
            core_seen
        })
        .join()
        .unwrap();
        assert_eq!(
            core_seen.strong_count(),
            0,
            "the exited thread's chunk kept the core"
        );
    }

    #[test]
    fn carved_and_lone_cells_give_their_values_and_free_on_any_thread() {
        // Small closures live in carved blocks, a large one on its own; some handles are
        // joined, some dropped before or after their task ran (the last reference then goes
        // on a worker or here). Under Miri this checks the counts and casts of both kinds.
        use crate::pool::{MaxQueue, WorkerPool};
        let pool = WorkerPool::builder()
            .max_threads(2)
            .max_queue(MaxQueue::Unbounded)
            .build()
            .unwrap();
        let big = [7u8; 256];
        let mut handles = Vec::new();
        for i in 0..100u64 {
            let small = pool.run(move |_| format!("task {i}")).unwrap();
            let large = pool.run(move |_| big.iter().map(|&b| u64::from(b)).sum::<u64>() + i);
            let large = large.unwrap();
            if i % 3 == 0 {
                drop(small); // detached: its value is dropped by whoever holds the cell last
            } else {
                handles.push((i, Some(small), large));
            }
        }
        for (i, small, large) in handles {
            if let Some(small) = small {
                assert_eq!(small.join().unwrap(), format!("task {i}"));
            }
            assert_eq!(large.join().unwrap(), 7 * 256 + i);
        }
    }
}
