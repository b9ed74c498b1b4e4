//! Loom model (docs/semantics.md P2, P7; scheduler invariant I3): `close()` racing a
//! submission — the task is either refused (and given back) or accepted and run before the
//! pool's threads exit; never accepted and lost.
//!
//! Proven by a planted bug: a worker leaves a closing pool before looking at the queues (loom deadlock: the accepted task never runs).
#![cfg(loom)]

use std::sync::Arc;

#[path = "pool_support.rs"]
mod pool_support;
use pool_support::one_worker_pool;
use sharedbuf::pool::PoolError;

#[test]
fn a_task_racing_close_is_refused_or_run_never_lost() {
    loom::model(|| {
        let pool = Arc::new(one_worker_pool(0));
        let remote = Arc::clone(&pool);
        let submitter = loom::thread::spawn(move || match remote.run(|_| 7) {
            Ok(handle) => Some(handle.join()),
            Err(PoolError::Closed(_given_back)) => None,
            Err(other) => panic!("unexpected {other:?}"),
        });
        pool.close(None).unwrap();
        if let Some(result) = submitter.join().unwrap() {
            assert_eq!(result, Ok(7))
        }
        let stats = pool.stats();
        assert_eq!(stats.submitted, stats.completed, "{stats:?}");
        assert_eq!(stats.threads, 0);
    });
}
