//! Loom model (scheduler B5, docs/semantics.md P7): `destroy()` while the pool's one worker
//! holds a batch. Tasks are submitted back to back; when the worker takes `a` with `b` already
//! queued, `b` goes into its batch (B1; under loom a batch holds up to two tasks besides the one
//! the worker runs, `BATCH` is 2: `c` joins it if already queued), still `QUEUED` until the
//! worker claims it right before its run
//! (B3). `destroy` must resolve a batch task as queued (`QUEUED → DESTROYED`: it never runs),
//! or as running if the worker claimed it first (`RUNNING → DESTROYED`); the worker's later
//! claims fail, and the counts `destroy` zeroed stay at 0 when the worker settles its claims.
//!
//! - `destroy` from the submitting thread, racing the worker's run of `a`, its claims and runs
//!   of `b` and `c` (in the batch or the queue): every handle is resolved when `destroy` returns,
//!   each exactly once (joins return, the counts match the handles), no body runs twice, no
//!   task runs after `destroy` resolved one before it, and the pool ends quiet (nothing
//!   queued, nothing running, no thread left: the worker exits).
//! - `a` blocked in `atomics::wait` that only `destroy`'s interrupt ends: `b` is still
//!   `QUEUED` (in the batch or the queue) when `destroy` resolves it, so it must never run,
//!   although the worker goes on to its batch after `a` returns.
//! - A thread blocked joining `b` while `destroy` resolves it is woken.
//!
//! Proven by planted bugs (see the report of branch `pool-destroy-batch`; each still caught
//! with batches of two): `destroy` skipping
//! the batches (the first two: a handle unresolved after `destroy`; the third: `b` completed
//! after `a` was destroyed); no
//! `RUNNING → DESTROYED` fallback for a batch task claimed first (the first: a handle
//! unresolved after `destroy`); settling claims without saturating at 0 (the first and third:
//! `queued` 2^64 - 1 in the stats); a batch task destroyed as queued not notified (loom
//! deadlock in the third); a batch task run although its claim failed (all three: loom's
//! concurrent `UnsafeCell` write, the closure taken twice).
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
#[path = "pool_support.rs"]
mod pool_support;
use pool_support::one_worker_pool;
use sharedbuf::pool::{TaskError, TaskHandle, WorkerPool};
use sharedbuf::{atomics, loom_hooks, Error, Int32Array, SharedBuffer};

/// A task that counts its runs and returns `value`.
fn counted(
    pool: &WorkerPool,
    runs: &loom::sync::Arc<AtomicUsize>,
    value: usize,
) -> TaskHandle<usize> {
    let runs = loom::sync::Arc::clone(runs);
    pool.run(move |_| {
        runs.fetch_add(1, SeqCst);
        value
    })
    .unwrap()
}

/// Waits for the worker to exit, then checks the quiet pool's counts against the handles'
/// results.
fn close_and_check(pool: &WorkerPool, results: &[Result<usize, TaskError>]) {
    // After `destroy`, `close` only waits for the thread: it must exit (else loom deadlocks).
    assert_eq!(pool.close(None), Ok(()));
    let stats = pool.stats();
    let completed = results.iter().filter(|r| r.is_ok()).count() as u64;
    let destroyed = results
        .iter()
        .filter(|r| **r == Err(TaskError::PoolDestroyed))
        .count() as u64;
    assert_eq!(completed + destroyed, results.len() as u64, "{results:?}");
    assert_eq!(stats.completed, completed, "{stats:?}");
    assert_eq!(stats.destroyed, destroyed, "{stats:?}");
    assert_eq!(stats.submitted, results.len() as u64, "{stats:?}");
    assert_eq!(stats.queued, 0, "{stats:?}");
    assert_eq!(pool.queue_size(), 0);
    assert_eq!(stats.running, 0, "{stats:?}");
    assert_eq!(stats.overdue, 0, "{stats:?}");
    assert_eq!(stats.threads, 0, "{stats:?}");
}

/// Each task (in submission order) ran at most once, and exactly once if it completed; with one
/// worker taking them in order, a task completes only if the one before it did (a task that
/// `destroy` resolved is never followed by one that runs to completion).
fn check_runs(results: &[Result<usize, TaskError>], runs: &[loom::sync::Arc<AtomicUsize>]) {
    for (result, runs) in results.iter().zip(runs) {
        let runs = runs.load(SeqCst);
        assert!(runs <= 1, "ran {runs} times");
        if result.is_ok() {
            assert_eq!(runs, 1);
        }
    }
    for later in 1..results.len() {
        if results[later].is_ok() {
            assert!(results[later - 1].is_ok(), "{results:?}");
        }
    }
}

#[test]
fn destroy_racing_a_workers_batch_claims_resolves_every_task_once() {
    loom::model(|| {
        let pool = one_worker_pool(1);
        let runs = [(); 3].map(|_| loom::sync::Arc::new(AtomicUsize::new(0)));
        let a = counted(&pool, &runs[0], 1);
        let b = counted(&pool, &runs[1], 2);
        let c = counted(&pool, &runs[2], 3);
        pool.destroy();
        // B5: a batch task was resolved as queued, or as running if its claim came first.
        assert!(a.is_finished() && b.is_finished() && c.is_finished());
        let results = [a.join(), b.join(), c.join()];
        close_and_check(&pool, &results);
        check_runs(&results, &runs);
    });
}

#[test]
fn a_batch_task_still_queued_when_destroy_resolves_it_never_runs() {
    loom::model(|| {
        let pool = one_worker_pool(1);
        let flag = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
        // `a`'s runs, and of them those its wait ended with `Terminated`.
        let a_runs = loom::sync::Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let a_ran = loom::sync::Arc::clone(&a_runs);
        // Nobody notifies `flag`: `a` returns only when `destroy` interrupts it, which comes
        // after `destroy` resolved every queued and batched task.
        let a = pool
            .run(move |_| {
                a_ran.0.fetch_add(1, SeqCst);
                if atomics::wait(&flag, 0, 0, None) == Err(Error::Terminated) {
                    a_ran.1.fetch_add(1, SeqCst);
                }
                1
            })
            .unwrap();
        let b_runs = loom::sync::Arc::new(AtomicUsize::new(0));
        let b = counted(&pool, &b_runs, 2);
        pool.destroy();
        assert!(a.is_finished() && b.is_finished());
        let results = [a.join(), b.join()];
        assert_eq!(
            results,
            [Err(TaskError::PoolDestroyed), Err(TaskError::PoolDestroyed)]
        );
        close_and_check(&pool, &results);
        assert_eq!(
            b_runs.load(SeqCst),
            0,
            "a task destroyed before it started ran"
        );
        let (runs, interrupted) = (a_runs.0.load(SeqCst), a_runs.1.load(SeqCst));
        assert!(
            runs <= 1 && interrupted == runs,
            "{runs} runs, {interrupted} interrupted"
        );
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

#[test]
fn destroy_wakes_a_thread_blocked_joining_a_batch_task() {
    loom::model(|| {
        let pool = one_worker_pool(1);
        let runs = [(); 2].map(|_| loom::sync::Arc::new(AtomicUsize::new(0)));
        let a = counted(&pool, &runs[0], 1);
        let b = counted(&pool, &runs[1], 2);
        // Blocks (flagging the task's word) unless `b` already resolved: whoever resolves it
        // must notify, `destroy` included.
        let joiner = loom::thread::spawn(move || b.join());
        pool.destroy();
        assert!(a.is_finished());
        let results = [a.join(), joiner.join().unwrap()];
        close_and_check(&pool, &results);
        check_runs(&results, &runs);
    });
}
