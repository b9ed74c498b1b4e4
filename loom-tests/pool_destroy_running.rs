//! Loom model (docs/semantics.md P7): `destroy()` racing a task that is starting or running
//! and blocked in `atomics::wait` that nobody will notify — the handle resolves once, with
//! `PoolDestroyed`; the wait is interrupted, so the thread exits and dropping the pool joins it.
//!
//! Proven by a planted bug: `destroy` skips firing the running task's interrupter (loom deadlock: the task stays in `atomics::wait`).
#![cfg(loom)]

use std::sync::Arc;

#[path = "pool_support.rs"]
mod pool_support;
use pool_support::one_worker_pool;
use sharedbuf::pool::TaskError;
use sharedbuf::{atomics, loom_hooks, Error, Int32Array, SharedBuffer};

#[test]
fn destroy_racing_a_running_task_resolves_it_once_and_interrupts_its_wait() {
    loom::model(|| {
        let pool = Arc::new(one_worker_pool(1));
        let flag = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
        let handle = pool
            .run(move |_| atomics::wait(&flag, 0, 0, None) == Err(Error::Terminated))
            .unwrap();
        let remote = Arc::clone(&pool);
        let destroyer = loom::thread::spawn(move || remote.destroy());
        // The task cannot return before the interrupt, which comes after its handle resolved.
        assert_eq!(handle.join(), Err(TaskError::PoolDestroyed));
        destroyer.join().unwrap();
        let pool = Arc::try_unwrap(pool).ok().unwrap();
        let stats = pool.stats();
        drop(pool); // joins the worker: it must have been interrupted
        assert_eq!(stats.destroyed, 1, "{stats:?}");
        assert_eq!(stats.completed, 0, "{stats:?}");
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
