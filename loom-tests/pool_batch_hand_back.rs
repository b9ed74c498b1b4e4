//! Loom model (scheduler B6, B7): a High task queued while the pool's one worker runs a batch
//! ends the batch after the running task; in its next locked section the worker hands the
//! entries still `QUEUED` back to the front of the normal-priority queue, in order. Plain tasks
//! `a`, `b`, `c` and then High `h` are submitted back to back, and `a` waits until `h` is
//! queued. When the worker takes `a` with `b` queued, `b` goes into its batch (B1; under loom a
//! batch holds up to two tasks, `BATCH` is 2, so `c` joins it if already queued, or stays in
//! the queue behind it); `h` then comes
//! while the batch is held (unless the worker took `h` first), and the worker must stop before
//! it claims `b`.
//!
//! - Each task runs exactly once, `a` before `b` before `c` (a handed-back entry goes in
//!   front of the rest of the queue), and the pool ends with nothing queued. The submitting
//!   thread joins `b` first, possibly while `b` waits in the batch (the join flags its word).
//! - The same with `b` cancelled once `a` may return, racing the worker's look at its batch,
//!   the hand-back and the claim of `b`: `b` runs exactly when the cancel failed, and the
//!   counts still end at 0.
//!
//! (Without the wait, `h` races the worker's look at the `urgent` word, and a hand-back takes
//! three preemptions: the CI runs these models with two.)
//!
//! The first model found a bug: the hand-back compared the whole state word with `QUEUED`, so
//! a batch task whose handle a thread was joining (the join's `WAITING` flag set) was dropped
//! instead of handed back, still counted, and the join never returned (loom deadlock: the
//! submitting thread in `join`, the worker idle). Proven by planted bugs (see the report of
//! branch `pool-destroy-batch`; each still caught with batches of two): entries handed back to the back of the queue (both models:
//! `c` ran before `b`); entries dropped instead of handed back (loom deadlock in the first);
//! handed-back entries counted again (both: `queued` 1 at the end).
#![cfg(loom)]

use loom::sync::{Condvar, Mutex};
#[path = "pool_support.rs"]
mod pool_support;
use pool_support::one_worker_pool;
use sharedbuf::pool::{Priority, TaskError, TaskHandle, TaskOptions, WorkerPool};

type Log = loom::sync::Arc<Mutex<Vec<char>>>;

/// A task that logs `name` when it runs.
fn logged(pool: &WorkerPool, log: &Log, name: char, options: TaskOptions) -> TaskHandle<()> {
    let log = loom::sync::Arc::clone(log);
    pool.run_with(options, move |_| log.lock().unwrap().push(name))
        .unwrap()
}

/// Where `name` ran in `log`, checking it ran at most once.
fn position(log: &[char], name: char) -> Option<usize> {
    let runs = log.iter().filter(|&&n| n == name).count();
    assert!(runs <= 1, "{name} ran {runs} times: {log:?}");
    log.iter().position(|&n| n == name)
}

/// Submits `a`, `b`, `c` (normal priority) and `h` (High) to a one-worker pool, `a` waiting
/// until `h` is queued; `cancel_b` cancels `b` then. Checks each run against its handle, the
/// order, and the counts.
fn model(cancel_b: bool) {
    let pool = one_worker_pool(1);
    let log: Log = loom::sync::Arc::new(Mutex::new(Vec::new()));
    let normal = TaskOptions::new;
    // `a` returns once `h` is queued (`go`).
    let go = loom::sync::Arc::new((Mutex::new(false), Condvar::new()));
    let (seen, a_log) = (loom::sync::Arc::clone(&go), loom::sync::Arc::clone(&log));
    let a = pool
        .run(move |_| {
            a_log.lock().unwrap().push('a');
            let (flag, changed) = &*seen;
            let mut flag = flag.lock().unwrap();
            while !*flag {
                flag = changed.wait(flag).unwrap();
            }
        })
        .unwrap();
    let b = logged(&pool, &log, 'b', normal());
    let c = logged(&pool, &log, 'c', normal());
    let high = TaskOptions::new().priority(Priority::High);
    let h = logged(&pool, &log, 'h', high);
    *go.0.lock().unwrap() = true;
    go.1.notify_all();
    let cancelled = cancel_b && b.cancel();
    let b_result = b.join();
    assert_eq!(
        b_result,
        if cancelled {
            Err(TaskError::Cancelled)
        } else {
            Ok(())
        }
    );
    assert_eq!((a.join(), c.join(), h.join()), (Ok(()), Ok(()), Ok(())));
    let log = log.lock().unwrap().clone();
    let (pa, pb, pc) = (
        position(&log, 'a'),
        position(&log, 'b'),
        position(&log, 'c'),
    );
    assert!(position(&log, 'h').is_some(), "{log:?}");
    let (pa, pc) = (pa.expect("a ran"), pc.expect("c ran"));
    assert!(pa < pc, "{log:?}");
    match pb {
        Some(pb) => {
            assert!(!cancelled, "a cancelled task ran: {log:?}");
            assert!(pa < pb && pb < pc, "{log:?}");
        }
        None => assert!(cancelled, "b never ran: {log:?}"),
    }
    let stats = pool.stats();
    assert_eq!(stats.queued, 0, "{stats:?}");
    assert_eq!(pool.queue_size(), 0);
    assert_eq!(stats.completed, 4 - u64::from(cancelled), "{stats:?}");
    assert_eq!(stats.cancelled, u64::from(cancelled), "{stats:?}");
    drop(pool);
}

#[test]
fn a_high_task_ends_a_batch_and_the_rest_runs_once_in_order() {
    loom::model(|| model(false));
}

#[test]
fn a_batch_task_cancelled_while_its_batch_is_handed_back_runs_only_if_the_cancel_failed() {
    loom::model(|| model(true));
}
