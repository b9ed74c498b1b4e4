//! Loom model (scheduler I1, I3; injector.rs F1–F2): a task pushed to the injector without the
//! pool's lock — while every worker is busy — is never stranded: not when the last worker goes
//! idle as the push lands (the worker is rung, or the pusher sees the gate shut and rings it),
//! and not when `destroy` races the push (the task is either swept and resolved
//! `PoolDestroyed`, or refused and given back).
//!
//! Proven by two planted bugs: a pusher that does not read the gate again after its push
//! (`Core::submit` returns `Ok` at once; loom deadlock in the first model: the task sits in the
//! ring while the only worker sleeps), and `destroy` that sweeps the queues without shutting
//! the gate first (loom deadlock in the second: the task lands in the queue after the sweep, and
//! its join waits forever). A third model pushes three tasks through the two-slot ring, so the
//! third reuses a slot after reading the drained count again (F4); proven by a planted refresh
//! of the pusher's copy that loads the count `Relaxed` instead of `Acquire` (loom: "Causality
//! violation: Concurrent write accesses to `UnsafeCell`", the push writing the slot the drain
//! emptied without happening after it). A fourth pushes three tasks while the queue can hold
//! only one (as if memory ran out: scheduler I6, injector.rs F5), cancels the first (its stale
//! entry then fills the queue) and closes the pool: each task runs or is refused with
//! `SpawnFailed` and given back, and none is left in the ring's backlog; proven by a planted
//! worker that leaves a closing pool without taking the backlog (`next_job` without its
//! `take_backlog`: "task 1 was accepted and never ran"). A fifth does the same but destroys
//! the pool instead of closing it: every accepted task is resolved when `destroy` returns,
//! including those the queue had no room for (destroy takes them out of the ring with the
//! queues' storage, scheduler I6); proven by a planted `destroy` that forgets the ring
//! (no `take_ring`: "task 1 was accepted and not resolved by destroy").
#![cfg(loom)]

use std::sync::Arc;

#[path = "pool_support.rs"]
mod pool_support;
use pool_support::one_worker_pool;
use sharedbuf::loom_hooks;
use sharedbuf::pool::{PoolError, TaskError, WorkerPool};

/// One thread, started at once: the gate is open from `build` until the worker goes idle.
fn one_busy_worker() -> WorkerPool {
    one_worker_pool(1)
}

#[test]
fn a_task_pushed_while_the_only_worker_goes_idle_runs() {
    loom::model(|| {
        let pool = one_busy_worker();
        let handle = pool.run(|_| 7).unwrap();
        assert_eq!(handle.join(), Ok(7));
        let stats = pool.stats();
        assert_eq!((stats.submitted, stats.completed), (1, 1), "{stats:?}");
        drop(pool);
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

#[test]
fn pushes_that_wrap_the_ring_write_only_slots_the_drain_emptied() {
    // The ring holds two tasks under loom: the third push reuses slot 0, after its copy of the
    // drained count says the ring may be full and it reads the drain's own count (F4).
    loom::model(|| {
        let pool = one_busy_worker();
        let handles: Vec<_> = (0..3).map(|i| pool.run(move |_| i).unwrap()).collect();
        for (i, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join(), Ok(i));
        }
        drop(pool);
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

#[test]
fn tasks_that_do_not_fit_the_queue_wait_in_the_ring_or_are_given_back() {
    loom::model(|| {
        loom_hooks::pool_queue_limit(1);
        let pool = one_busy_worker();
        let submitted: Vec<_> = (0..3).map(|i| pool.run(move |_| i)).collect();
        // Cancelled while queued, the first task's entry stays in the queue (stale) and keeps
        // the second out until a worker pops it.
        if let Ok(first) = &submitted[0] {
            first.cancel();
        }
        drop(pool); // close: every accepted task runs first (P7)
        for (i, submission) in submitted.into_iter().enumerate() {
            match submission {
                Ok(handle) => match handle.try_join() {
                    Ok(result) if i == 0 => {
                        assert!(matches!(result, Ok(0) | Err(TaskError::Cancelled)))
                    }
                    Ok(result) => assert_eq!(result, Ok(i)),
                    Err(_) => panic!("task {i} was accepted and never ran"),
                },
                Err(PoolError::SpawnFailed { reason, .. }) => {
                    assert!(reason.contains("memory"), "{reason}")
                }
                Err(other) => panic!("task {i}: unexpected {other:?}"),
            }
        }
        loom_hooks::pool_queue_limit(usize::MAX);
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

#[test]
fn tasks_left_in_the_ring_for_lack_of_memory_are_destroyed_with_the_queue() {
    loom::model(|| {
        loom_hooks::pool_queue_limit(1);
        let pool = one_busy_worker();
        let submitted: Vec<_> = (0..3).map(|i| pool.run(move |_| i)).collect();
        if let Ok(first) = &submitted[0] {
            first.cancel(); // its stale entry keeps the queue full (a backlog in the ring)
        }
        pool.destroy();
        // Every accepted task is resolved when `destroy` returns: it ran, was cancelled, or
        // was destroyed (in the queue, the ring's backlog, or running).
        let mut resolved = Vec::new();
        for (i, submission) in submitted.into_iter().enumerate() {
            match submission {
                Ok(handle) => match handle.try_join() {
                    Ok(result) => resolved.push(result),
                    Err(_) => panic!("task {i} was accepted and not resolved by destroy"),
                },
                Err(PoolError::SpawnFailed { reason, .. }) => {
                    assert!(reason.contains("memory"), "{reason}")
                }
                Err(other) => panic!("task {i}: unexpected {other:?}"),
            }
        }
        assert_eq!(pool.close(None), Ok(())); // the worker exits
        let stats = pool.stats();
        assert_eq!(stats.queued, 0, "{stats:?}");
        assert_eq!(
            stats.submitted,
            stats.completed + stats.cancelled + stats.destroyed,
            "{stats:?}"
        );
        assert_eq!(resolved.len() as u64, stats.submitted, "{resolved:?}");
        drop(pool);
        loom_hooks::pool_queue_limit(usize::MAX);
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

#[test]
fn a_task_pushed_racing_destroy_is_resolved_or_given_back() {
    loom::model(|| {
        let pool = Arc::new(one_busy_worker());
        let remote = Arc::clone(&pool);
        let submitter = loom::thread::spawn(move || match remote.run(|_| 7) {
            Ok(handle) => Some(handle.join()),
            Err(PoolError::Closed(_given_back)) => None,
            Err(other) => panic!("unexpected {other:?}"),
        });
        pool.destroy();
        if let Some(result) = submitter.join().unwrap() {
            assert!(
                matches!(result, Ok(7) | Err(TaskError::PoolDestroyed)),
                "{result:?}"
            );
        }
        let pool = Arc::try_unwrap(pool).ok().unwrap();
        let stats = pool.stats();
        assert_eq!(
            stats.submitted,
            stats.completed + stats.destroyed,
            "{stats:?}"
        );
        drop(pool);
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
