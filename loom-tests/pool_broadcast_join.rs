//! Loom model (docs/semantics.md P9, P10): a task broadcasts while the worker that submitted it
//! joins it. Either the join runs it inline (then it broadcasts from the joining worker), or
//! the other worker took it and the joining worker, blocked in the join, must run its share
//! of the broadcast (it waits on its bell, which both the broadcast and the task's resolution
//! ring). Every interleaving ends with one result per worker.
//!
//! Proven by a planted bug: the join does not write its slot into the task's header
//! (`set_joiner`), so the task's resolution does not ring the joining worker's bell (loom:
//! deadlock, the join never wakes).
#![cfg(loom)]

use std::sync::Arc;

use sharedbuf::pool::MaxQueue;

#[path = "pool_support.rs"]
mod pool_support;
use pool_support::two_workers;

#[test]
fn a_broadcast_from_a_task_its_submitter_joins_reaches_both_workers() {
    loom::model(|| {
        let pool = Arc::new(
            two_workers()
                .max_queue(MaxQueue::Unbounded)
                .build()
                .unwrap(),
        );
        let inner = Arc::clone(&pool);
        let outer = pool
            .run(move |_| {
                let broadcaster = Arc::clone(&inner);
                let child = inner
                    .run(move |_| {
                        let results = broadcaster.broadcast(|ctx| ctx.worker_index()).ok()?;
                        Some(results.into_iter().filter(Result::is_ok).count())
                    })
                    .unwrap();
                child.join()
            })
            .unwrap();
        assert_eq!(outer.join(), Ok(Ok(Some(2))));
        drop(Arc::try_unwrap(pool).ok().unwrap());
    });
}
