//! Loom model (scheduler B1-B5, docs/semantics.md P10): a worker takes a normal-priority task
//! together with a batch of the next ones, which stay `QUEUED` until it claims each right
//! before running it.
//!
//! - A task running on the pool's one worker joins a task in that worker's own batch: the
//!   joining thread runs it inline (it is still `QUEUED`), and the worker skips it.
//! - `wait_drained` waits while a batch task is claimed but not yet taken off the counts under
//!   the lock: it returns while that task still runs (B4), so a task that waits for the
//!   drain to be seen does not hang.
//!
//! Proven by planted bugs (see the report of branch `pool-batch`): batch tasks claimed in
//! advance, when the batch is taken (loom deadlock in the first model); a batch claim that does
//! not look for drain watchers (loom deadlock in the second).
#![cfg(loom)]

use std::sync::Arc;

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::{Condvar, Mutex};
#[path = "pool_support.rs"]
mod pool_support;
use pool_support::one_worker_pool;
use sharedbuf::pool::{TaskHandle, WorkerPool};

fn one_worker() -> Arc<WorkerPool> {
    Arc::new(one_worker_pool(1))
}

#[test]
fn a_task_joining_a_task_of_its_own_workers_batch_runs_it_inline_once() {
    loom::model(|| {
        let pool = one_worker();
        let runs = loom::sync::Arc::new(AtomicUsize::new(0));
        let slot: loom::sync::Arc<Mutex<Option<TaskHandle<usize>>>> =
            loom::sync::Arc::new(Mutex::new(None));
        let inbox = loom::sync::Arc::clone(&slot);
        let outer = pool
            .run(move |_| loop {
                if let Some(sub) = inbox.lock().unwrap().take() {
                    return sub.join().unwrap();
                }
                loom::thread::yield_now();
            })
            .unwrap();
        let counted = loom::sync::Arc::clone(&runs);
        let sub = pool
            .run(move |_| counted.fetch_add(1, SeqCst) + 10)
            .unwrap();
        *slot.lock().unwrap() = Some(sub);
        assert_eq!(outer.join(), Ok(10));
        drop(Arc::try_unwrap(pool).ok().unwrap());
        assert_eq!(runs.load(SeqCst), 1);
    });
}

#[test]
fn wait_drained_returns_while_a_claimed_batch_task_runs() {
    loom::model(|| {
        let pool = one_worker();
        let drained = loom::sync::Arc::new((Mutex::new(false), Condvar::new()));
        let first = pool.run(|_| 1).unwrap();
        let seen = loom::sync::Arc::clone(&drained);
        let second = pool
            .run(move |_| {
                let (flag, changed) = &*seen;
                let mut flag = flag.lock().unwrap();
                while !*flag {
                    flag = changed.wait(flag).unwrap();
                }
                2
            })
            .unwrap();
        assert!(pool.wait_drained(None));
        *drained.0.lock().unwrap() = true;
        drained.1.notify_all();
        assert_eq!(first.join(), Ok(1));
        assert_eq!(second.join(), Ok(2));
        assert_eq!(pool.queue_size(), 0);
        drop(Arc::try_unwrap(pool).ok().unwrap());
    });
}
