//! Loom model (docs/semantics.md P4): `cancel()` racing a worker starting the task — exactly
//! one of "the task ran" and "the handle says Cancelled" happens, and a cancelled task never
//! runs later.
//!
//! Proven by a planted bug: `cancel` leaves `QUEUED` by load + store instead of compare-exchange (assertion: the task ran, yet the handle said Cancelled).
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::sync::Arc;
#[path = "pool_support.rs"]
mod pool_support;
use pool_support::one_worker_pool;
use sharedbuf::pool::TaskError;

#[test]
fn cancel_racing_start_gives_exactly_one_of_ran_and_cancelled() {
    loom::model(|| {
        let pool = one_worker_pool(1);
        let ran = Arc::new(AtomicBool::new(false));
        let task_ran = Arc::clone(&ran);
        let handle = std::sync::Arc::new(
            pool.run(move |_| {
                task_ran.store(true, SeqCst);
                5
            })
            .unwrap(),
        );
        let remote = std::sync::Arc::clone(&handle);
        let canceller = loom::thread::spawn(move || remote.cancel());
        let cancelled_before_start = canceller.join().unwrap();
        let handle = std::sync::Arc::try_unwrap(handle).unwrap();
        let result = handle.join();
        drop(pool); // every thread joined: whether the task ran is now final
        let stats_ran = ran.load(SeqCst);
        match result {
            Ok(5) => assert!(stats_ran && !cancelled_before_start),
            Err(TaskError::Cancelled) => assert!(!stats_ran && cancelled_before_start),
            other => panic!("unexpected {other:?}"),
        }
    });
}
