//! Loom model (docs/semantics.md P2, P9, P10): a task submits to its full pool
//! (`WhenFull::Block`) while the task it submitted before broadcasts on the other worker. The
//! queue (bound 0) has room only once a worker is free, so the submitter waits until the
//! broadcasting task returns, and the broadcast waits for the submitter's worker: the
//! submitter, blocked on the `Queue` signal, must run its share of the broadcast (a broadcast
//! raises `Queue` while anyone waits on it). Every interleaving ends with the broadcast run on
//! both workers and the blocked submission accepted. (Loom has no clock: the `Block` timeout
//! never ends a wait here, only a wakeup does.)
//!
//! Proven by a planted bug: `broadcast` does not raise `Queue` for the threads waiting on it,
//! so a submitter that looked for its broadcasts before they were queued sleeps on (loom:
//! deadlock).
#![cfg(loom)]

use std::sync::Arc;
use std::time::Duration;

use sharedbuf::pool::{MaxQueue, WhenFull};

#[path = "pool_support.rs"]
mod pool_support;
use pool_support::two_workers;

#[test]
fn a_task_blocked_submitting_to_a_full_queue_runs_its_share_of_a_broadcast() {
    loom::model(|| {
        let pool = Arc::new(
            two_workers()
                .max_queue(MaxQueue::Bounded(0))
                .when_full(WhenFull::Block(Duration::from_secs(3600)))
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
                    .ok()?;
                // The other worker runs `child` (or is about to): the queue is full.
                let next = inner.run(|_| 7).ok()?;
                Some((child.join(), next.join()))
            })
            .unwrap();
        assert_eq!(outer.join(), Ok(Some((Ok(Some(2)), Ok(7)))));
        drop(Arc::try_unwrap(pool).ok().unwrap());
    });
}
