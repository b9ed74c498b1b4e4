//! The pool's statistics (docs/semantics.md P6): counters kept where the work happens, and
//! [`PoolStats`], the snapshot [`WorkerPool::stats`](super::WorkerPool::stats) adds them up into.
//!
//! Each worker slot has a [`Recorder`] only its thread writes (tasks it started and finished,
//! busy time, run-time and wait-time histograms), so a task costs a few uncontended relaxed
//! stores, no read-modify-write on a shared line. What other threads decide — a cancel, a
//! timeout, a destroy, a submission, a task run on a thread outside the pool — goes to the
//! shared [`Counters`] with `fetch_add`. Nothing is locked or allocated on the task path.
//!
//! A snapshot taken while tasks run adds up counters read one after the other, so it may be
//! off by the tasks that changed state meanwhile; once the pool is quiet every identity holds:
//! `submitted == completed + failed + cancelled + timed_out + destroyed + queued + running -
//! overdue`.

use std::time::Duration;

use super::histogram::{Counter, Histogram, HistogramSummary};

/// One thread's (or the shared) record of the tasks it ran. On cache lines of its own (the
/// pool keeps one per worker side by side): each worker writes its counters on every task,
/// and a line shared with its neighbour's would bounce between their cores.
#[derive(Default)]
#[repr(align(128))]
pub(super) struct Recorder {
    pub(super) started: Counter,
    /// Tasks that returned (whether or not their handle still wanted the value).
    pub(super) ended: Counter,
    /// Tasks whose value resolved their handle.
    pub(super) completed: Counter,
    /// Tasks whose panic resolved their handle.
    pub(super) failed: Counter,
    pub(super) run_time: Histogram,
    pub(super) wait_time: Histogram,
}

/// What threads other than the runner decide, counted with `fetch_add`. On cache lines of
/// their own, away from the pool's lock.
#[derive(Default)]
#[repr(align(128))]
pub(super) struct Counters {
    /// Tasks submitted other than through `Core::submit` (run by the caller, `broadcast`,
    /// `map`'s own chunks); `State::submitted` counts the others.
    pub(super) submitted: Counter,
    pub(super) cancelled: Counter,
    pub(super) timed_out: Counter,
    pub(super) destroyed: Counter,
    /// Tasks whose handle was resolved (timed out, destroyed) while they still ran: added by
    /// the resolver, taken off by the runner when it returns (so it may dip below zero for a
    /// moment; snapshots clamp it).
    pub(super) overdue_added: Counter,
    pub(super) overdue_removed: Counter,
    pub(super) threads_started: Counter,
    /// Threads started while an overdue task held a thread.
    pub(super) replacements: Counter,
    /// Panics of `on_thread_start` / `on_thread_exit` hooks (each caught; the thread went on).
    pub(super) hook_panics: Counter,
}

impl Counters {
    pub(super) fn overdue(&self) -> u64 {
        self.overdue_added
            .get()
            .saturating_sub(self.overdue_removed.get())
    }
}

/// A snapshot of a pool's statistics (docs/semantics.md P6); see
/// [`WorkerPool::stats`](super::WorkerPool::stats).
///
/// Once the pool is quiet (nothing queued or running) the counts add up:
/// `submitted == completed + failed + cancelled + timed_out + destroyed`; in general
/// `submitted == completed + failed + cancelled + timed_out + destroyed + queued + running -
/// overdue`, up to the tasks that changed state while the snapshot was taken.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Tasks accepted (by `run`, `run_with`, `run_keyed`; `map` chunks and `broadcast` runs
    /// included).
    pub submitted: u64,
    /// Tasks whose handle received their value.
    pub completed: u64,
    /// Tasks that panicked ([`TaskError::Panicked`](super::TaskError::Panicked)).
    pub failed: u64,
    /// Tasks cancelled before they started.
    pub cancelled: u64,
    /// Tasks whose timeout passed while they ran.
    pub timed_out: u64,
    /// Tasks ended by [`destroy`](super::WorkerPool::destroy) (or a `close` that timed out).
    pub destroyed: u64,
    /// Tasks waiting to start ([`WorkerPool::queue_size`](super::WorkerPool::queue_size)).
    pub queued: usize,
    /// Tasks running now, overdue ones included. A task counts as running until it is
    /// counted as completed or failed, a moment after its handle resolved.
    pub running: usize,
    /// Running tasks whose handle already resolved (timed out or destroyed) but which have not
    /// returned: each holds a thread the pool does not count as free.
    pub overdue: usize,
    /// Threads alive now.
    pub threads: usize,
    /// Of those, threads waiting for work.
    pub idle_threads: usize,
    /// The most threads alive at once.
    pub peak_threads: usize,
    /// Threads started since the pool was built.
    pub threads_started: u64,
    /// Threads started while an overdue task held a thread: the replacements of P8.
    pub replacements: u64,
    /// Panics of the `on_thread_start` / `on_thread_exit` hooks (each caught).
    pub hook_panics: u64,
    /// Time the pool's threads spent running tasks, over the time they were alive (0..=1).
    pub utilization: f64,
    /// How long tasks ran, from start to return.
    pub run_time: HistogramSummary,
    /// How long tasks waited, from submission to start.
    pub wait_time: HistogramSummary,
}

/// The running time of a slot's threads, for utilization: accumulated over the threads that
/// exited, plus the current thread's age.
pub(super) fn utilization(busy_ns: u64, alive: Duration) -> f64 {
    let alive_ns = alive.as_nanos() as f64;
    if alive_ns <= 0.0 {
        0.0
    } else {
        (busy_ns as f64 / alive_ns).clamp(0.0, 1.0)
    }
}

/// Adds up recorders' histograms.
pub(super) fn summaries<'a>(
    recorders: impl Iterator<Item = &'a Recorder> + Clone,
) -> (HistogramSummary, HistogramSummary) {
    (
        super::histogram::summarize(recorders.clone().map(|r| &r.run_time)),
        super::histogram::summarize(recorders.map(|r| &r.wait_time)),
    )
}
