//! Loom model (docs/semantics.md P8): a task's timeout firing while the task returns — the
//! handle resolves exactly once, with the value or with `TimedOut`, and the statistics count
//! the task exactly once.
//!
//! Proven by a planted bug: `RUNNING → COMPLETED / TIMED_OUT` as load + store instead of compare-exchange (assertion: the task counted twice).
#![cfg(loom)]

use std::time::Duration;

use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::sync::Arc;
#[path = "pool_support.rs"]
mod pool_support;
use pool_support::one_worker_pool;
use sharedbuf::loom_hooks;
use sharedbuf::pool::{TaskError, TaskOptions};

#[test]
fn a_timeout_racing_completion_resolves_the_handle_once() {
    loom::model(|| {
        let pool = one_worker_pool(1);
        let done = Arc::new(AtomicBool::new(false));
        let clock_done = Arc::clone(&done);
        // Plays the timer: fires the task's timeout once it is armed (or gives up once the
        // task was joined without it).
        let clock = loom::thread::spawn(move || loop {
            if loom_hooks::pending_timeouts() > 0 {
                loom_hooks::fire_timeouts();
                return;
            }
            if clock_done.load(SeqCst) {
                return;
            }
            loom::thread::yield_now();
        });
        let handle = pool
            .run_with(TaskOptions::new().timeout(Duration::from_secs(1)), |_| 5)
            .unwrap();
        let result = handle.join();
        done.store(true, SeqCst);
        clock.join().unwrap();
        assert!(
            matches!(result, Ok(5) | Err(TaskError::TimedOut)),
            "{result:?}"
        );
        pool.close(None).unwrap(); // the task has returned, whoever won
        let stats = pool.stats();
        assert_eq!(stats.completed + stats.timed_out, 1, "{stats:?}");
        assert_eq!(stats.timed_out == 1, result.is_err(), "{stats:?}");
        assert_eq!(stats.overdue, 0, "{stats:?}");
    });
}
