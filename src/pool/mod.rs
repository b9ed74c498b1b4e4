//! A worker pool (docs/semantics.md P1–P10): Node's Piscina on this crate's own substrate, with
//! what Piscina's and rayon's users still ask for.
//!
//! # Why another pool
//!
//! Spawning a thread per task costs tens of microseconds; a pool keeps threads and hands them
//! tasks. The two pools this one is measured against each leave something out:
//!
//! - **Piscina** (Node) runs each task in a worker thread and pays for it: a round trip of
//!   about 150 µs, 59 µs per task in bulk, every argument serialized. Its users ask for a
//!   timeout counted from when a task *starts* (piscina#869), cancellation that does not kill
//!   the thread (#156), running something on every worker (#104, #615), progress reports (#91),
//!   priorities and key affinity; and half of its recent bugs are scheduler races (#805, #816,
//!   #934, #1056).
//! - **rayon** is fast (a spawn round trip of 15–19 µs from idle, about 230 ns per task in
//!   bulk) but has no queue bound, no cancellation, no timeouts, no statistics, and a thread
//!   that blocks on another task steals unrelated work meanwhile, which deadlocks (rayon#446,
//!   #835, #1174).
//!
//! Here a task is a Rust closure (moving a `Vec<u8>` into it is Piscina's `transferList`: zero
//! copy; a [`SharedBuffer`](crate::SharedBuffer) in it is shared), and the pool has both the
//! speed and the features:
//!
//! | | |
//! |---|---|
//! | threads | `min_threads` started at once, more as work needs them up to `max_threads`, idle ones above the minimum reaped after `idle_timeout` (P1) |
//! | queue | bounded ([`MaxQueue`]), FIFO per [`Priority`]; when full: [`WhenFull::Reject`] (the task comes back in [`PoolError::QueueFull`]), `Block(timeout)` or `CallerRuns`; nothing is dropped silently (P2) |
//! | handles | [`TaskHandle`]: `join`, `try_join`, `join_timeout`, `.await` on any executor, `cancel`, `progress` (P3, P4) |
//! | failures | a panic becomes [`TaskError::Panicked`] and harms nothing else (P5) |
//! | cancellation | cooperative: [`TaskContext::is_cancelled`] / [`check`](TaskContext::check); a queued task that is cancelled never runs (P4) |
//! | timeouts | counted from the start (P8); the handle resolves `TimedOut` at once, the thread stays busy until the task returns and the pool may start a replacement (`PoolStats::overdue`, `replacements`) |
//! | affinity | [`broadcast`](WorkerPool::broadcast), [`run_keyed`](WorkerPool::run_keyed), [`map`](WorkerPool::map) (P9) |
//! | nested joins | a task that joins a subtask of the same pool runs it inline if it has not started and never runs unrelated work while it waits: no deadlock even with one thread (P10) |
//! | backpressure, stats | [`queue_size`](WorkerPool::queue_size), [`needs_drain`](WorkerPool::needs_drain), [`wait_drained`](WorkerPool::wait_drained), [`stats`](WorkerPool::stats): exact counts, and run-time and wait-time histograms sampled from one task in 8 (a clock read costs as much as the rest of a tiny task) (P6) |
//! | ending | [`close`](WorkerPool::close) (finish, then join; destroy after a timeout), [`destroy`](WorkerPool::destroy) (cancel now, interrupt blocked waits), drop (close and join) (P7) |
//!
//! ```
//! use std::time::Duration;
//! use sharedbuf::pool::{MaxQueue, Priority, TaskError, TaskOptions, WorkerPool};
//!
//! let pool = WorkerPool::builder()
//!     .min_threads(1)
//!     .max_threads(4)
//!     .idle_timeout(Duration::from_millis(500))
//!     .max_queue(MaxQueue::Auto)
//!     .name("resize")
//!     .build()?;
//! let h = pool.run(|_ctx| (0..1_000u64).sum::<u64>())?;
//! assert_eq!(h.join()?, 499_500);
//!
//! let slow = pool.run_with(
//!     TaskOptions::new().timeout(Duration::from_millis(10)).priority(Priority::High),
//!     |ctx| {
//!         while !ctx.is_cancelled() {
//!             std::hint::spin_loop(); // a task that only stops when told
//!         }
//!     },
//! )?;
//! assert_eq!(slow.join(), Err(TaskError::TimedOut));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # A batch, end to end
//!
//! CPU tasks on one thread, one of them cancelled while queued, one timed out, one panicking,
//! and the statistics at the end. The first task holds the thread by waiting on a word of a
//! [`SharedBuffer`](crate::SharedBuffer) until the others are queued.
//!
//! ```
//! use std::time::Duration;
//! use sharedbuf::pool::{MaxQueue, TaskError, TaskOptions, WorkerPool};
//! use sharedbuf::{atomics, Int32Array, SharedBuffer};
//!
//! let pool = WorkerPool::builder().max_threads(1).max_queue(MaxQueue::Bounded(64)).build()?;
//! let go = Int32Array::new(&SharedBuffer::new(4)?)?;
//! let gate = go.clone();
//! let first = pool.run(move |_| atomics::wait(&gate, 0, 0, None))?;
//!
//! let sums = (1..=4u64)
//!     .map(|n| pool.run(move |_| (1..=n * 1_000).sum::<u64>()))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let doomed = pool.run(|_| 0u64)?;
//! assert!(doomed.cancel()); // still queued: it never runs
//! let slow = pool.run_with(TaskOptions::new().timeout(Duration::from_millis(5)), |ctx| {
//!     while !ctx.is_cancelled() {} // stops when its time is up
//!     0u64
//! })?;
//! let broken = pool.run(|_| -> u64 { panic!("bad input") })?;
//!
//! atomics::store(&go, 0, 1)?; // let the first task go
//! atomics::notify(&go, 0, None)?;
//! first.join()??;
//! let totals: Vec<u64> = sums.into_iter().map(|h| h.join()).collect::<Result<_, _>>()?;
//! assert_eq!(totals, [500_500, 2_001_000, 4_501_500, 8_002_000]);
//! assert_eq!(doomed.join(), Err(TaskError::Cancelled));
//! assert_eq!(slow.join(), Err(TaskError::TimedOut));
//! assert_eq!(broken.join(), Err(TaskError::Panicked("bad input".into())));
//!
//! pool.close(Some(Duration::from_secs(10)))?;
//! let stats = pool.stats();
//! println!("{stats:#?}");
//! assert_eq!((stats.completed, stats.cancelled, stats.timed_out, stats.failed), (5, 1, 1, 1));
//! assert_eq!(stats.submitted, 8);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it is built
//!
//! The workers block and wake through the crate's own [`atomics::wait`](crate::atomics::wait)
//! / [`notify`](crate::atomics::notify) — each worker on a word of its own, each task's handle
//! on the task's state word — and a task's timeout is a
//! [`wait_async`](crate::atomics::wait_async) that the crate's timer fires. So the loom models
//! in `loom-tests/pool_*.rs` check the scheduler users run. Files: `scheduler.rs` (the queues,
//! slots and their invariants), `task_state.rs` (a task's life in one word), `task.rs` (a
//! task's cell) and `cells.rs` (where cells live: blocks carved from a per-thread chunk),
//! `handle.rs`, `worker.rs`, `lanes.rs` (keyed tasks), `broadcast.rs`, `map.rs`,
//! `shutdown.rs`, `stats.rs` / `histogram.rs`.
//!
//! # Per-thread state
//!
//! State a task needs on every thread (a loaded model, a scratch buffer, a connection) lives in
//! a `thread_local!`, made by [`on_thread_start`](PoolBuilder::on_thread_start): see
//! [`PoolBuilder`].

mod broadcast;
mod builder;
mod cells;
mod config;
mod context;
mod error;
mod handle;
mod histogram;
mod injector;
mod job;
mod lanes;
mod map;
mod options;
mod own_broadcasts;
mod panic;
mod scheduler;
mod shutdown;
mod slabs;
mod stats;
mod task;
mod task_state;
mod worker;
mod worker_pool;

/// What the loom models drive through `crate::loom_hooks` (used in loom builds only).
#[allow(unused_imports)]
pub(crate) mod hooks {
    pub(crate) use super::scheduler::set_loom_queue_limit;
}

pub use builder::{MaxQueue, PoolBuilder};
pub use config::WhenFull;
pub use context::TaskContext;
pub use error::{BuildError, Cancelled, CloseError, PoolError, TaskError};
pub use handle::TaskHandle;
pub use histogram::HistogramSummary;
pub use options::{Priority, TaskOptions};
pub use stats::PoolStats;
pub use worker_pool::WorkerPool;
