//! Loom model (docs/semantics.md P7): `destroy()` racing a task that is starting or running
//! and blocked in `atomics::wait` that nobody will notify — the handle resolves once, with
//! `PoolDestroyed`; the wait is interrupted, so the thread exits and dropping the pool joins it.
//!
//! Proven by a planted bug: `destroy` skips firing the running task's interrupter (loom deadlock: the task stays in `atomics::wait`).
//!
//! A second model: a task joins a subtask it pushed (through the injector: its one worker is
//! busy running it), so the join claims the subtask and runs it inline (P10), while `destroy`
//! runs. The subtask's queue entry is then stale and its task running (or about to): `destroy`
//! resolves it as running and must not take its closure, although it finds it `DESTROYED`
//! behind a queue entry (shutdown.rs tells the queued tasks it won by their phase, less the
//! running ones); and the inline join's claim, counted out of the queue after `destroy` zeroed
//! the counts, leaves them at 0. Proven by two planted bugs: a `destroy` that discards every
//! queued task found `DESTROYED` (no check against the running ones: loom's concurrent
//! `UnsafeCell` access, the closure taken by the runner and by `destroy`), and `left_queue`
//! without its `Destroyed` check (`queued` 2^64 - 1 in the stats).
#![cfg(loom)]

use std::sync::Arc;

#[path = "pool_support.rs"]
mod pool_support;
use pool_support::one_worker_pool;
use sharedbuf::pool::{PoolError, TaskError};
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

#[test]
fn destroy_racing_an_inline_join_never_takes_the_running_closure() {
    loom::model(|| {
        let pool = Arc::new(one_worker_pool(1));
        let inner = Arc::clone(&pool);
        let outer = pool
            .run(move |_| match inner.run(|_| 7) {
                Ok(sub) => Some(sub.join()),
                Err(PoolError::Closed(_given_back)) => None,
                Err(other) => panic!("unexpected {other:?}"),
            })
            .unwrap();
        let remote = Arc::clone(&pool);
        let destroyer = loom::thread::spawn(move || remote.destroy());
        destroyer.join().unwrap();
        match outer.join() {
            Ok(Some(sub)) => assert!(
                matches!(sub, Ok(7) | Err(TaskError::PoolDestroyed)),
                "{sub:?}"
            ),
            Ok(None) | Err(TaskError::PoolDestroyed) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
        // After `destroy`, `close` only waits for the thread, which ends with the outer task
        // (and drops its reference to the pool).
        assert_eq!(pool.close(None), Ok(()));
        let stats = pool.stats();
        assert_eq!(stats.queued, 0, "{stats:?}");
        assert_eq!(
            stats.submitted,
            stats.completed + stats.destroyed,
            "{stats:?}"
        );
        drop(Arc::try_unwrap(pool).ok().unwrap());
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
