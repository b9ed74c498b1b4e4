//! What the scheduler sees of a task: the reference its queues hold ([`JobRef`], to a cell
//! that starts with a [`CellHead`]), the [`Header`] every task has (state word, placement, options, progress), where it waits
//! ([`Placement`]) and who runs it ([`Runner`]). The closure, the result, the task's pool and
//! running a claimed task are in `task.rs`.
//!
//! Nothing here knows the pool's `Core`: the scheduler's queues hold jobs, so a job that
//! pointed back at the scheduler would make the two files one knot. The pool a task belongs
//! to is held by its cell (`task.rs`), which sits above both.

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::{Duration, Instant};

use super::options::Priority;
use super::task_state::TaskState;
use crate::shim::{AtomicBool, AtomicU32, AtomicU64, Ordering};

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
///
/// Kept small, so that a plain task's whole cell (task.rs) fits one 128-byte block carved by
/// cells.rs (a larger cell costs a `malloc` and a `free` of its own). So what
/// few tasks have lives out of line ([`Rare`]).
pub(super) struct Header {
    pub(super) state: TaskState,
    pub(super) placement: Placement,
    /// When it was submitted, for the tasks whose times the statistics sample
    /// ([`SAMPLE_EVERY`]); `None` for the others.
    pub(super) submitted_at: Option<Instant>,
    rare: Option<Box<Rare>>,
    progress: AtomicU64,
    has_progress: AtomicBool,
    /// `slot + 1` of the pool thread (of the task's own pool) that last waited for the task on
    /// its bell instead of the task's word (handle.rs), 0 if none: whoever resolves the task
    /// while it is flagged `WAITING` rings that slot. Written before the flag, so a resolver
    /// that sees the flag sees the slot (broadcast.rs: a join serves broadcasts).
    joiner: AtomicU32,
}

/// The options of a task that has a timeout or a worker to ring.
struct Rare {
    timeout: Option<Duration>,
    wake_slot: Option<usize>,
}

impl Header {
    /// A header with a state word of its own (it counts a reference to the word's chunk).
    pub(super) fn new(
        placement: Placement,
        timeout: Option<Duration>,
    ) -> Result<Header, crate::error::Error> {
        Ok(Header::with_state(TaskState::new()?, placement, timeout))
    }

    /// A header with the fresh state word `state` (a carved cell's borrows its chunk's words,
    /// cells.rs C4).
    pub(super) fn with_state(
        state: TaskState,
        placement: Placement,
        timeout: Option<Duration>,
    ) -> Header {
        Header {
            state,
            placement,
            submitted_at: sample_this_one().then(Instant::now),
            rare: timeout.map(|timeout| {
                Box::new(Rare {
                    timeout: Some(timeout),
                    wake_slot: None,
                })
            }),
            progress: AtomicU64::new(0),
            has_progress: AtomicBool::new(false),
            joiner: AtomicU32::new(0),
        }
    }

    /// Notes that pool thread `slot` is about to wait for the task on its bell (see
    /// [`joiner`](Header::joiner)); before it flags the word `WAITING`.
    pub(super) fn set_joiner(&self, slot: usize) {
        let slot = u32::try_from(slot + 1).expect("MAX_THREADS fits in a u32");
        self.joiner.store(slot, Ordering::SeqCst);
    }

    /// The pool thread to ring when the task resolves while flagged `WAITING`, if one waited
    /// on its bell.
    pub(super) fn joiner(&self) -> Option<usize> {
        match self.joiner.load(Ordering::SeqCst) {
            0 => None,
            slot => Some(slot as usize - 1),
        }
    }

    /// How long the task may run (P8), if it has a limit.
    pub(super) fn timeout(&self) -> Option<Duration> {
        self.rare.as_ref().and_then(|rare| rare.timeout)
    }

    /// A worker to ring when the task resolves: a pool thread blocked in `broadcast` waits on
    /// its bell, which also tells it of broadcast tasks addressed to it (broadcast.rs;
    /// `Core::notify_resolved` rings it).
    pub(super) fn wake_slot(&self) -> Option<usize> {
        self.rare.as_ref().and_then(|rare| rare.wake_slot)
    }

    /// Sets [`wake_slot`](Header::wake_slot), before the task is published.
    pub(super) fn set_wake_slot(&mut self, slot: usize) {
        match &mut self.rare {
            Some(rare) => rare.wake_slot = Some(slot),
            None => {
                self.rare = Some(Box::new(Rare {
                    timeout: None,
                    wake_slot: Some(slot),
                }))
            }
        }
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

/// The start of every task cell (task.rs): its reference count, what it can do, and its
/// header. A [`JobRef`] points here.
///
/// The count is a std atomic even under loom (as std's `Arc` was before): it only frees the
/// memory and is no part of any protocol; the state word, which loom does see, decides the rest.
#[repr(C)]
pub(super) struct CellHead {
    refs: std::sync::atomic::AtomicUsize,
    vtable: &'static JobVTable,
    header: Header,
}

impl CellHead {
    /// The head of a new cell, counted `refs` times (its first [`JobRef`]s: a cell made for
    /// submission starts with its handle's and its queue's, so that no clone follows its
    /// writes with a read-modify-write).
    pub(super) fn new(vtable: &'static JobVTable, header: Header, refs: usize) -> CellHead {
        CellHead {
            refs: std::sync::atomic::AtomicUsize::new(refs),
            vtable,
            header,
        }
    }

    pub(super) fn header(&self) -> &Header {
        &self.header
    }
}

/// What a task cell can do, whatever its closure and result types (task.rs fills it in for
/// each). Every function takes the cell's head; the caller holds a counted reference to it.
pub(super) struct JobVTable {
    /// Runs the task on the calling thread. The caller won [`TaskState::claim`].
    pub(super) run: unsafe fn(&JobRef, Runner),
    /// Drops the closure. The caller won a transition out of `QUEUED` other than `claim` (and
    /// already resolved the handle).
    pub(super) discard: unsafe fn(&JobRef),
    /// Moves the result out into `*out`, an `Option<Result<R, String>>` of the cell's `R`.
    /// Only the task's handle calls it, after it saw `COMPLETED`.
    pub(super) take_result: unsafe fn(&JobRef, *mut ()),
    /// Drops the cell in place and frees its memory: the last reference is gone.
    pub(super) release: unsafe fn(NonNull<CellHead>),
}

/// A counted reference to a task cell: what the queues hold and workers run (an
/// `Arc<dyn Job>` without the `Arc`, so that task.rs chooses where cells live).
pub(super) struct JobRef(NonNull<CellHead>);

// SAFETY: a cell is only made (task.rs) from a closure and a result type that are `Send`, and
// its fields are shared between threads only as the state word allows (task.rs); the count
// is atomic.
unsafe impl Send for JobRef {}
// SAFETY: as above: every method takes `&self` and is safe to call from any thread.
unsafe impl Sync for JobRef {}

impl JobRef {
    /// Takes over one count of a new cell.
    ///
    /// # Safety
    /// `head` is the head of a live cell made by task.rs, whose count includes this reference
    /// (and each count is taken over once).
    pub(super) unsafe fn from_head(head: NonNull<CellHead>) -> JobRef {
        JobRef(head)
    }

    fn head(&self) -> &CellHead {
        // SAFETY: this reference is counted, so the cell is alive.
        unsafe { self.0.as_ref() }
    }

    /// The cell's head, for task.rs to reach the rest of the cell.
    pub(super) fn as_head(&self) -> NonNull<CellHead> {
        self.0
    }

    pub(super) fn header(&self) -> &Header {
        &self.head().header
    }

    /// Runs the task on the calling thread. The caller won [`TaskState::claim`].
    pub(super) fn run(&self, runner: Runner) {
        // SAFETY: the cell is alive (counted) and its vtable is its own; the caller claimed it.
        unsafe { (self.head().vtable.run)(self, runner) }
    }

    /// Drops the closure. The caller won a transition out of `QUEUED` other than `claim`.
    pub(super) fn discard(&self) {
        // SAFETY: as in `run`; the caller owns the closure.
        unsafe { (self.head().vtable.discard)(self) }
    }

    /// The cell's vtable (for task.rs's typed handle side).
    pub(super) fn vtable(&self) -> &'static JobVTable {
        self.head().vtable
    }

    /// The cell's address: its identity while this reference lives.
    pub(super) fn as_ptr(&self) -> *const () {
        self.0.as_ptr() as *const ()
    }

    pub(super) fn ptr_eq(a: &JobRef, b: &JobRef) -> bool {
        a.0 == b.0
    }

    /// A second `JobRef` to the same cell that took no count: it must never be dropped.
    ///
    /// # Safety
    /// Another counted reference keeps the cell alive for as long as the loan is used.
    pub(super) unsafe fn lend(&self) -> std::mem::ManuallyDrop<JobRef> {
        std::mem::ManuallyDrop::new(JobRef(self.0))
    }
}

impl Clone for JobRef {
    fn clone(&self) -> JobRef {
        // Relaxed, as in std's `Arc`: a new reference is made from an existing one, which
        // keeps the cell alive meanwhile.
        let old = self.head().refs.fetch_add(1, Relaxed);
        if old > isize::MAX as usize {
            std::process::abort(); // as `Arc` does: a count that could wrap
        }
        JobRef(self.0)
    }
}

impl Drop for JobRef {
    fn drop(&mut self) {
        // Release, then an acquire before the release of the memory, as in std's `Arc`: every
        // use of the cell through any reference happens before it is freed. The acquire is a
        // load of the count (it reads this decrement, the last of the count's release
        // sequence), not a fence: the same order, one load on the freeing path only, and
        // ThreadSanitizer, which does not model fences, sees it (std's `Arc` does the same
        // under TSan).
        if self.head().refs.fetch_sub(1, Release) != 1 {
            return;
        }
        self.head().refs.load(Acquire);
        let vtable = self.head().vtable;
        // SAFETY: that was the last reference; nobody else can reach the cell.
        unsafe { (vtable.release)(self.0) }
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
