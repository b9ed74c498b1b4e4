//! Loom model (docs/semantics.md P1; scheduler invariant I2): a task submitted while the last
//! idle worker is timing out is never stranded — either the worker was rung before it decided
//! to leave (and runs the task), or it left first (and the submission starts a new thread).
//!
//! Proven by a planted bug: a timed-out idle worker reaps itself even though it was rung meanwhile (loom deadlock: the task is stranded).
#![cfg(loom)]

use std::time::Duration;

use sharedbuf::loom_hooks;
use sharedbuf::pool::{MaxQueue, WorkerPool};

#[test]
fn a_task_submitted_while_the_last_idle_worker_times_out_runs() {
    loom::model(|| {
        let pool = WorkerPool::builder()
            .min_threads(0)
            .max_threads(1)
            .idle_timeout(Duration::from_millis(1))
            .max_queue(MaxQueue::Unbounded)
            .build()
            .unwrap();
        // The first task starts the pool's only thread; then it idles with a deadline.
        pool.run(|_| ()).unwrap().join().unwrap();
        let clock = loom::thread::spawn(loom_hooks::fire_timeouts);
        let handle = pool.run(|_| 7).unwrap();
        assert_eq!(handle.join().unwrap(), 7);
        clock.join().unwrap();
        drop(pool);
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
