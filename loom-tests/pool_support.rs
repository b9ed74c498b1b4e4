//! Helpers shared by the pool loom models (included with `#[path]`).
#![allow(dead_code)]

use sharedbuf::pool::{MaxQueue, PoolBuilder, WorkerPool};

/// Two worker threads, both started at once and never reaped: the models where one worker
/// waits for what the other does. The caller sets the queue and builds.
pub fn two_workers() -> PoolBuilder {
    WorkerPool::builder()
        .min_threads(2)
        .max_threads(2)
        .idle_timeout(None)
}

/// A pool of one worker thread, started at once (`min_threads` 1) or by the first task (0),
/// never reaped, with an unbounded queue: the setting in which plain tasks may take the
/// injector and form batches (scheduler F1, B1), so the models reach those paths.
pub fn one_worker_pool(min_threads: usize) -> WorkerPool {
    WorkerPool::builder()
        .min_threads(min_threads)
        .max_threads(1)
        .idle_timeout(None)
        .max_queue(MaxQueue::Unbounded)
        .build()
        .unwrap()
}
