//! Loom model (docs/semantics.md P10): a task joins a subtask it submitted to its own pool
//! while an idle worker is rung to take it — the joining thread runs it inline only if no
//! worker started it, so it runs exactly once.
//!
//! Proven by a planted bug: `claim` (`QUEUED → RUNNING`) as load + store instead of compare-exchange (loom deadlock).
#![cfg(loom)]

use std::sync::Arc;

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use sharedbuf::pool::MaxQueue;

#[path = "pool_support.rs"]
mod pool_support;
use pool_support::two_workers;

#[test]
fn an_inline_join_racing_a_worker_runs_the_subtask_once() {
    loom::model(|| {
        let pool = Arc::new(
            two_workers()
                .max_queue(MaxQueue::Unbounded)
                .build()
                .unwrap(),
        );
        let runs = loom::sync::Arc::new(AtomicUsize::new(0));
        let (inner, counted) = (Arc::clone(&pool), loom::sync::Arc::clone(&runs));
        let outer = pool
            .run(move |_| {
                let sub = inner
                    .run(move |_| counted.fetch_add(1, SeqCst) + 10)
                    .unwrap();
                sub.join().unwrap()
            })
            .unwrap();
        assert_eq!(outer.join(), Ok(10));
        drop(Arc::try_unwrap(pool).ok().unwrap());
        assert_eq!(runs.load(SeqCst), 1);
    });
}
