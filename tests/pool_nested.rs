//! docs/semantics.md P10: a task that joins a subtask of its own pool never deadlocks — it
//! runs the subtask inline if it has not started — and never runs unrelated work while it
//! waits (rayon#446, #835, #1174).

mod pool_common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use pool_common::{join, Gate};
use sharedbuf::pool::{MaxQueue, WorkerPool};

fn pool(threads: usize) -> Arc<WorkerPool> {
    Arc::new(
        WorkerPool::builder()
            .min_threads(threads)
            .max_threads(threads)
            .max_queue(MaxQueue::Unbounded)
            .build()
            .unwrap(),
    )
}

fn fib(pool: &Arc<WorkerPool>, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (left, right) = (Arc::clone(pool), Arc::clone(pool));
    let a = pool.run(move |_| fib(&left, n - 1)).unwrap();
    let b = pool.run(move |_| fib(&right, n - 2)).unwrap();
    b.join().unwrap() + a.join().unwrap()
}

/// Fibonacci number `n` as the loop computes it, to check `fib`.
fn fib_plain(n: u64) -> u64 {
    (0..n).fold((0, 1), |(a, b), _| (b, a + b)).0
}

/// The `fib` argument of the tests: 2,000 to 8,000 tasks natively, a few dozen under Miri
/// (which interprets them about a thousand times slower).
const FIB_ONE: u64 = if cfg!(miri) { 8 } else { 16 };
const FIB_TWO: u64 = if cfg!(miri) { 10 } else { 18 };

#[test]
fn a_pool_of_one_thread_runs_nested_joins() {
    let pool = pool(1);
    let inner = Arc::clone(&pool);
    let result = pool.run(move |_| fib(&inner, FIB_ONE)).unwrap();
    assert_eq!(join(result), Ok(fib_plain(FIB_ONE)));
    let stats = pool_common::settled_stats(&pool);
    assert_eq!(stats.threads_started, 1);
    assert_eq!(stats.completed, stats.submitted);
}

#[test]
fn nested_joins_on_two_threads_agree_with_one() {
    let pool = pool(2);
    let inner = Arc::clone(&pool);
    assert_eq!(
        join(pool.run(move |_| fib(&inner, FIB_TWO)).unwrap()),
        Ok(fib_plain(FIB_TWO))
    );
}

#[test]
fn a_deep_chain_of_nested_joins_on_one_thread() {
    fn chain(pool: &Arc<WorkerPool>, depth: u32) -> u32 {
        if depth == 0 {
            return 0;
        }
        let inner = Arc::clone(pool);
        pool.run(move |_| chain(&inner, depth - 1) + 1)
            .unwrap()
            .join()
            .unwrap()
    }
    let pool = pool(1);
    let inner = Arc::clone(&pool);
    assert_eq!(
        join(pool.run(move |_| chain(&inner, 200)).unwrap()),
        Ok(200)
    );
}

#[test]
fn a_join_never_runs_unrelated_work_while_it_waits() {
    // rayon#1174: a thread that holds a lock and waits for a subtask picks up an unrelated task
    // that wants the same lock, and deadlocks. Here the join runs only the subtask it waits for.
    let pool = pool(1);
    let lock = Arc::new(Mutex::new(()));
    let holding = Gate::new();
    let (inner, l, h) = (Arc::clone(&pool), Arc::clone(&lock), holding.clone());
    let outer = pool
        .run(move |_| {
            let _held = l.lock().unwrap();
            h.open();
            h.until_entered(2); // the test queued the unrelated task before our subtask
            inner.run(|_| 42).unwrap().join().unwrap()
        })
        .unwrap();
    holding.wait();
    let l = Arc::clone(&lock);
    let unrelated = pool.run(move |_| drop(l.lock().unwrap())).unwrap();
    holding.wait(); // counts as entered: the outer task may submit its subtask now
    assert_eq!(join(outer), Ok(42));
    join(unrelated).unwrap();
}

#[test]
fn a_join_waiting_for_a_running_subtask_leaves_its_thread_idle() {
    let pool = pool(2);
    let (started, release) = (Gate::new(), Gate::new());
    let joined = Arc::new(AtomicBool::new(false));
    let outer_thread = Arc::new(AtomicU64::new(0));
    let (inner, s, r, j, ot) = (
        Arc::clone(&pool),
        started.clone(),
        release.clone(),
        Arc::clone(&joined),
        Arc::clone(&outer_thread),
    );
    let outer = pool
        .run(move |ctx| {
            ot.store(ctx.thread_id(), SeqCst);
            let s2 = s.clone();
            let sub = inner
                .run(move |_| {
                    s2.open();
                    r.wait();
                })
                .unwrap();
            s.wait(); // the subtask is running on the other thread: the join must wait
            sub.join().unwrap();
            j.store(true, SeqCst);
        })
        .unwrap();
    started.wait();
    let (j, ot) = (Arc::clone(&joined), Arc::clone(&outer_thread));
    let unrelated = pool
        .run(move |ctx| {
            // On the waiting task's thread only after that task's join returned.
            ctx.thread_id() != ot.load(SeqCst) || j.load(SeqCst)
        })
        .unwrap();
    release.open();
    join(outer).unwrap();
    assert_eq!(join(unrelated), Ok(true));
}
