//! What the scheduler sees of a task: the [`Job`] trait its queues hold ([`JobRef`]), the
//! [`Header`] every task has (state word, placement, options, progress), where it waits
//! ([`Placement`]) and who runs it ([`Runner`]). The closure, the result, the task's pool and
//! running a claimed task are in `task.rs`.
//!
//! Nothing here knows the pool's `Core`: the scheduler's queues hold jobs, so a job that
//! pointed back at the scheduler would make the two files one knot. The pool a task belongs
//! to is held by its cell (`task.rs`), which sits above both.

use std::fmt;
use std::sync::Arc as StdArc;
use std::time::{Duration, Instant};

use super::options::Priority;
use super::task_state::TaskState;
use crate::shim::{AtomicBool, AtomicU64, Ordering};

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
///
/// Kept small, so that a plain task's whole cell (task.rs) is one 128-byte block: less memory
/// to write per task, and within glibc's fast bins, which free without coalescing. So what
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
}

/// The options of a task that has a timeout or a worker to ring.
struct Rare {
    timeout: Option<Duration>,
    wake_slot: Option<usize>,
}

impl Header {
    pub(super) fn new(
        placement: Placement,
        timeout: Option<Duration>,
    ) -> Result<Header, crate::error::Error> {
        Ok(Header {
            state: TaskState::new()?,
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
        })
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

/// What the queues and workers do with a task.
pub(super) trait Job: Send + Sync {
    fn header(&self) -> &Header;

    /// Runs the task on the calling thread. The caller won [`TaskState::claim`].
    fn run(&self, this: &JobRef, runner: Runner);

    /// Drops the closure. The caller won a transition out of `QUEUED` other than `claim` (and
    /// already resolved the handle).
    fn discard(&self);
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("state", &self.state.load())
            .field("placement", &self.placement)
            .finish_non_exhaustive()
    }
}
