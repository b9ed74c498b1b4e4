//! docs/semantics.md P9: `broadcast` on every live worker, `run_keyed` on one worker in
//! order, `map` in input order.

mod pool_common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use pool_common::{join, Gate};
use sharedbuf::pool::{MaxQueue, PoolError, TaskError, WorkerPool};

fn pool(min: usize, max: usize) -> Arc<WorkerPool> {
    Arc::new(
        WorkerPool::builder()
            .min_threads(min)
            .max_threads(max)
            .max_queue(MaxQueue::Unbounded)
            .idle_timeout(None)
            .build()
            .unwrap(),
    )
}

#[test]
fn broadcast_runs_once_on_every_live_worker_in_index_order() {
    let pool = pool(4, 4);
    let results = pool
        .broadcast(|ctx| (ctx.worker_index(), ctx.thread_id()))
        .unwrap();
    assert_eq!(results.len(), 4);
    let mut threads = HashSet::new();
    for (index, result) in results.into_iter().enumerate() {
        let (worker, thread) = result.unwrap();
        assert_eq!(worker, Some(index));
        assert!(threads.insert(thread));
    }
}

#[test]
fn broadcast_reaches_only_live_workers() {
    let pool = pool(1, 3);
    assert_eq!(
        pool.broadcast(|ctx| ctx.worker_index()).unwrap(),
        [Ok(Some(0))]
    );
}

#[test]
fn broadcast_goes_before_queued_work() {
    let pool = pool(1, 1);
    let gate = Gate::new();
    let g = gate.clone();
    let busy = pool.run(move |_| g.wait()).unwrap();
    gate.until_entered(1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = Arc::clone(&order);
    let queued = pool
        .run(move |_| o.lock().unwrap().push("queued task"))
        .unwrap();
    let (remote, o) = (Arc::clone(&pool), Arc::clone(&order));
    let broadcaster =
        std::thread::spawn(move || remote.broadcast(move |_| o.lock().unwrap().push("broadcast")));
    pool_common::eventually("the broadcast is queued", || pool.stats().submitted == 3);
    gate.open();
    assert_eq!(broadcaster.join().unwrap().unwrap(), [Ok(())]);
    join(busy).unwrap();
    join(queued).unwrap();
    assert_eq!(*order.lock().unwrap(), ["broadcast", "queued task"]);
}

#[test]
fn broadcast_from_inside_the_pool_runs_its_own_share_and_two_at_once_do_not_deadlock() {
    let pool = pool(2, 2);
    let runs = Arc::new(AtomicUsize::new(0));
    let both = Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (inner, runs, both) = (Arc::clone(&pool), Arc::clone(&runs), Arc::clone(&both));
            pool.run(move |_| {
                both.wait(); // each worker runs one of these: both broadcast at once
                let runs = Arc::clone(&runs);
                inner
                    .broadcast(move |ctx| {
                        runs.fetch_add(1, SeqCst);
                        ctx.worker_index().unwrap()
                    })
                    .unwrap()
                    .into_iter()
                    .map(Result::unwrap)
                    .collect::<Vec<_>>()
            })
            .unwrap()
        })
        .collect();
    for handle in handles {
        assert_eq!(join(handle), Ok(vec![0, 1]));
    }
    assert_eq!(runs.load(SeqCst), 4);
}

#[test]
fn broadcast_on_a_closed_pool_gives_the_closure_back() {
    let pool = pool(1, 1);
    pool.close(None).unwrap();
    assert!(matches!(pool.broadcast(|_| ()), Err(PoolError::Closed(_))));
}

/// For each key, the tasks that ran: (submission number, worker index).
type RunsByKey = HashMap<u32, Vec<(u32, usize)>>;

#[test]
fn keyed_tasks_run_on_one_worker_in_submission_order() {
    let pool = pool(4, 4);
    let log: Arc<Mutex<RunsByKey>> = Arc::default();
    let mut handles = Vec::new();
    for i in 0..2_000u32 {
        let key = i % 13;
        let log = Arc::clone(&log);
        handles.push(
            pool.run_keyed(&key, move |ctx| {
                log.lock()
                    .unwrap()
                    .entry(key)
                    .or_default()
                    .push((i, ctx.worker_index().unwrap()));
            })
            .unwrap(),
        );
    }
    for handle in handles {
        join(handle).unwrap();
    }
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 13);
    for (key, runs) in log.iter() {
        let order: Vec<u32> = runs.iter().map(|&(i, _)| i).collect();
        let expected: Vec<u32> = (0..2_000).filter(|i| i % 13 == *key).collect();
        assert_eq!(order, expected, "key {key} in submission order");
        let workers: HashSet<usize> = runs.iter().map(|&(_, w)| w).collect();
        assert_eq!(workers.len(), 1, "key {key} on one worker");
    }
}

#[test]
fn one_key_never_runs_two_tasks_at_once() {
    let pool = pool(4, 4);
    let inside = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..500)
        .map(|_| {
            let inside = Arc::clone(&inside);
            pool.run_keyed("one key", move |_| {
                assert_eq!(inside.fetch_add(1, SeqCst), 0, "overlap");
                std::hint::spin_loop();
                inside.fetch_sub(1, SeqCst);
            })
            .unwrap()
        })
        .collect();
    for handle in handles {
        join(handle).unwrap();
    }
}

#[test]
fn a_keyed_subtask_joined_before_it_started_runs_inline_after_its_predecessors() {
    // One thread: the key's worker is the joining task's own, so waiting would deadlock.
    let pool = pool(1, 1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let (inner, o) = (Arc::clone(&pool), Arc::clone(&order));
    let outer = pool
        .run(move |_| {
            let handles: Vec<_> = (0..3)
                .map(|i| {
                    let o = Arc::clone(&o);
                    inner
                        .run_keyed(&7, move |_| o.lock().unwrap().push(i))
                        .unwrap()
                })
                .collect();
            let last = handles.into_iter().last().unwrap();
            last.join().unwrap(); // runs 0, 1, then 2 here, in order
            o.lock().unwrap().len()
        })
        .unwrap();
    assert_eq!(join(outer), Ok(3));
    assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
}

#[test]
fn map_returns_results_in_input_order() {
    let pool = pool(1, 4);
    let squares = pool.map(0..100_000u64, |x| x * x).unwrap();
    assert_eq!(squares.len(), 100_000);
    assert!(squares
        .iter()
        .enumerate()
        .all(|(i, &s)| s == (i as u64).pow(2)));
    assert_eq!(pool.map(Vec::<u8>::new(), |x| x).unwrap(), Vec::<u8>::new());
    assert_eq!(pool.map([5u8], |x| x + 1).unwrap(), [6]);
    let words = pool
        .map(vec!["a".to_string(), "bb".into()], |s| s.len())
        .unwrap();
    assert_eq!(words, [1, 2]);
}

/// Counts live instances, to see that `map` drops every item and result exactly once.
struct Tracked(Arc<AtomicUsize>, u32);

impl Tracked {
    fn new(live: &Arc<AtomicUsize>, value: u32) -> Tracked {
        live.fetch_add(1, SeqCst);
        Tracked(Arc::clone(live), value)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[test]
fn a_panicking_map_drops_every_item_and_result_once_and_reports_the_panic() {
    pool_common::quiet_panics("map item");
    let pool = pool(2, 2);
    let live = Arc::new(AtomicUsize::new(0));
    let items: Vec<_> = (0..10_000).map(|i| Tracked::new(&live, i)).collect();
    let results = Arc::clone(&live);
    let outcome = pool.map(items, move |item| {
        if item.1 == 7_777 {
            panic!("map item {}", item.1);
        }
        Tracked::new(&results, item.1 * 2)
    });
    assert_eq!(
        outcome.err(),
        Some(TaskError::Panicked("map item 7777".into()))
    );
    assert_eq!(
        live.load(SeqCst),
        0,
        "every item and every result dropped once"
    );

    let items: Vec<_> = (0..10_000).map(|i| Tracked::new(&live, i)).collect();
    let results = Arc::clone(&live);
    let doubled = pool
        .map(items, move |item| Tracked::new(&results, item.1 * 2))
        .unwrap();
    assert_eq!(
        live.load(SeqCst),
        10_000,
        "the items are gone, the results are here"
    );
    assert!(doubled.iter().enumerate().all(|(i, t)| t.1 == 2 * i as u32));
    drop(doubled);
    assert_eq!(live.load(SeqCst), 0);
}

#[test]
fn map_inside_a_one_thread_pool_runs_its_chunks_inline() {
    let pool = pool(1, 1);
    let inner = Arc::clone(&pool);
    let sum = pool
        .run(move |_| {
            inner
                .map(0..10_000u64, |x| x)
                .unwrap()
                .into_iter()
                .sum::<u64>()
        })
        .unwrap();
    assert_eq!(join(sum), Ok((0..10_000u64).sum()));
}

#[test]
fn map_on_a_closed_pool_runs_on_the_caller() {
    let pool = pool(1, 2);
    pool.close(None).unwrap();
    assert_eq!(
        pool.map(0..1_000u32, |x| x + 1).unwrap(),
        (1..=1_000).collect::<Vec<_>>()
    );
}
