//! A hostile user against the pool's surfaces other than batches (tests/pool_batch.rs):
//! `map`, `broadcast`, keyed tasks, nested use, hooks, `close` / `destroy` / drop, and the
//! builder. User code runs inside the pool's protocols (closures, iterators, `Drop`s, hooks):
//! its panics may reach the caller, but must never strand a thread, lose a task or leak the
//! rest of a batch of values; bad input gets an `Err`, never a panic of ours, an abort or a
//! hang. Each test names the entry of docs/semantics.md it checks.
#![cfg(not(loom))]

mod pool_common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};

use pool_common::{quiet_panics, settled_stats, WATCHDOG};
use sharedbuf::pool::{BuildError, MaxQueue, PoolBuilder, TaskError, WhenFull, WorkerPool};

/// A pool of `threads` threads that never idle out, with an unbounded queue.
fn pool(threads: usize) -> Arc<WorkerPool> {
    Arc::new(
        WorkerPool::builder()
            .min_threads(threads)
            .max_threads(threads)
            .idle_timeout(None)
            .max_queue(MaxQueue::Unbounded)
            .build()
            .unwrap(),
    )
}

/// A value that counts its drops, and whose `Drop` panics (after counting) if asked to.
struct Counted {
    id: usize,
    drops: Arc<AtomicUsize>,
    panics: bool,
}

impl Counted {
    fn new(id: usize, drops: &Arc<AtomicUsize>, panics: bool) -> Counted {
        Counted {
            id,
            drops: Arc::clone(drops),
            panics,
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
        if self.panics {
            panic!("hostile: drop of {}", self.id);
        }
    }
}

/// docs/semantics.md P9 (map): `f` panics on the first item of every chunk, and the first two
/// items left in each chunk panic when dropped. Every item is still dropped exactly once, and
/// `map` returns `f`'s panic. Before the fix a chunk dropped its unread items under one
/// `catch_unwind`, so the first panicking `Drop` leaked the rest of its chunk (16 of 64 items
/// were dropped).
#[test]
fn p9_map_drops_every_item_left_in_a_chunk_when_their_drops_panic() {
    quiet_panics("hostile");
    let pool = pool(1);
    let drops = Arc::new(AtomicUsize::new(0));
    // One thread: the caller and the worker, 4 chunks each, so 8 chunks of 8 items.
    let items: Vec<Counted> = (0..64)
        .map(|id| Counted::new(id, &drops, matches!(id % 8, 1 | 2)))
        .collect();
    let outcome = pool.map(items, |item| {
        if item.id % 8 == 0 {
            panic!("hostile: f on {}", item.id);
        }
        item.id
    });
    match outcome {
        Err(TaskError::Panicked(message)) => assert!(message.starts_with("hostile: f on")),
        other => panic!("expected f's panic, got {other:?}"),
    }
    assert_eq!(drops.load(SeqCst), 64, "items leaked");
    let stats = settled_stats(&pool);
    assert_eq!((stats.queued, stats.running), (0, 0), "{stats:?}");
}

/// docs/semantics.md P9 (map): `f` panics on the last item only, so every other chunk
/// completes, and `map` drops their results; every eighth result panics when dropped. Every
/// result is dropped exactly once and `map` returns `f`'s panic. Before the fix those results
/// were dropped outside any `catch_unwind`: the first panicking `Drop` escaped from `map`
/// instead of `f`'s error, and leaked every result after it (2 of 63 were dropped).
#[test]
fn p9_map_drops_every_result_of_a_failed_map_when_their_drops_panic() {
    quiet_panics("hostile");
    let pool = pool(1);
    let drops = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&drops);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool.map(0..64usize, move |i| {
            if i == 63 {
                panic!("hostile: f on 63");
            }
            Counted::new(i, &counter, i % 8 == 0)
        })
        .map(|results| results.len())
    }));
    assert_eq!(
        outcome.ok(),
        Some(Err(TaskError::Panicked("hostile: f on 63".into()))),
        "a result's panicking Drop escaped from map"
    );
    assert_eq!(drops.load(SeqCst), 63, "results leaked");
}

/// docs/semantics.md P9 (map): an iterator that says it never ends (`0..` has a `size_hint` of
/// `usize::MAX` items) is refused at once with an `Err`. Before the fix collecting it panicked
/// ("capacity overflow").
#[test]
fn p9_map_refuses_an_endless_iterator_with_an_err() {
    let pool = pool(1);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool.map(0u64.., |x| x).map(|v| v.len())
    }));
    match outcome {
        Ok(Err(TaskError::Panicked(message))) => assert!(message.contains("no room")),
        Ok(other) => panic!("expected an Err, got {other:?}"),
        Err(_) => panic!("map panicked on an endless iterator"),
    }
    assert_eq!(pool.stats().submitted, 0);
}

/// docs/semantics.md P9 (map): results that memory cannot hold (65 536 results of 256 TiB) are
/// refused with an `Err` before any item changes hands, and every item is dropped. Before the
/// fix the results' buffer was allocated after the items were taken over: the allocation
/// panicked ("capacity overflow") and every item leaked (0 of 65 536 dropped); a smaller
/// excess aborted the process.
#[test]
#[cfg_attr(
    miri,
    ignore = "65,536 items: minutes under Miri (the other map tests hand items over too)"
)]
fn p9_map_refuses_results_memory_cannot_hold_and_drops_the_items() {
    let pool = pool(1);
    let drops = Arc::new(AtomicUsize::new(0));
    let items: Vec<Counted> = (0..1 << 16)
        .map(|id| Counted::new(id, &drops, false))
        .collect();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        pool.map(items, |_| -> [u8; 1 << 48] { unreachable!("never called") })
            .map(|results| results.len())
    }));
    match outcome {
        Ok(Err(TaskError::Panicked(message))) => assert!(message.contains("no room")),
        Ok(other) => panic!("expected an Err, got {other:?}"),
        Err(_) => panic!("map panicked on results memory cannot hold"),
    }
    assert_eq!(drops.load(SeqCst), 1 << 16, "items leaked");
}

/// docs/semantics.md P9 (map): an empty input, and an iterator whose `next` panics midway (the
/// panic reaches the caller before anything is submitted; the items so far are dropped).
#[test]
fn p9_map_of_nothing_and_of_an_iterator_that_panics() {
    quiet_panics("hostile");
    let pool = pool(2);
    assert_eq!(pool.map(Vec::<u8>::new(), |x| x), Ok(Vec::new()));
    let drops = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&drops);
    let items = (0..10).map(move |id| {
        if id == 5 {
            panic!("hostile: next");
        }
        Counted::new(id, &counter, false)
    });
    assert!(catch_unwind(AssertUnwindSafe(|| pool.map(items, |item| item.id))).is_err());
    assert_eq!(drops.load(SeqCst), 5);
    assert_eq!(pool.map(1..=3u8, |x| x * 2), Ok(vec![2, 4, 6]));
    let stats = settled_stats(&pool);
    assert_eq!(stats.completed, stats.submitted, "{stats:?}");
}

/// docs/semantics.md P1: a `max_threads` whose bookkeeping memory cannot hold is refused with
/// an `Err`. Before the fix `max_threads(1 << 30)` aborted the process (the per-thread
/// counters, 128 GiB, were allocated infallibly after the bells' 4 GiB mapping succeeded).
#[test]
fn p1_a_max_threads_above_the_limit_is_refused() {
    for max in [PoolBuilder::MAX_THREADS + 1, 1 << 30, usize::MAX] {
        let built = WorkerPool::builder()
            .min_threads(0)
            .max_threads(max)
            .build();
        assert_eq!(
            built.err(),
            Some(BuildError::TooManyThreads {
                max,
                limit: PoolBuilder::MAX_THREADS
            })
        );
    }
    if cfg!(miri) {
        // A pool at the limit sets up 65,536 thread slots: minutes under Miri, and no unsafe
        // code beyond what the smaller pools run.
        return;
    }
    let pool = WorkerPool::builder()
        .min_threads(0)
        .max_threads(PoolBuilder::MAX_THREADS)
        .build()
        .unwrap();
    assert_eq!(pool.run(|_| 7).unwrap().join(), Ok(7));
}

/// docs/semantics.md P9 and P10: a task broadcasts while another worker joins it. The joining
/// worker must run its share of the broadcast while it waits: the broadcast waits for every
/// live worker. Before the fix the join waited on the task's word only, and the two waited for
/// each other for ever (here: the watchdog below).
#[test]
fn p9_a_broadcast_from_a_task_that_another_worker_joins_runs_on_the_joining_worker() {
    let pool = pool(2);
    let inner = Arc::clone(&pool);
    let parent = pool
        .run(move |_| {
            let (started, wait_started) = mpsc::channel();
            let broadcaster = Arc::clone(&inner);
            let child = inner
                .run(move |_| {
                    started.send(()).unwrap();
                    broadcaster.broadcast(|ctx| ctx.worker_index()).ok()
                })
                .unwrap();
            // The child runs on the other worker: this one now joins it, and it broadcasts.
            wait_started.recv().unwrap();
            child.join()
        })
        .unwrap();
    let outcome = parent.join_timeout(WATCHDOG);
    let Ok(outcome) = outcome else {
        pool.destroy();
        panic!("deadlock: the broadcast waited for the worker joining its task");
    };
    assert_eq!(outcome, Ok(Ok(Some(vec![Ok(Some(0)), Ok(Some(1))]))));
    let stats = settled_stats(&pool);
    assert_eq!(stats.completed, stats.submitted, "{stats:?}");
}

/// docs/semantics.md P9 and P10: the same with keyed tasks: a keyed task broadcasts while
/// another worker joins a later task of its key (and so waits for the lane, not the task).
#[test]
fn p9_a_broadcast_from_a_keyed_task_runs_on_a_worker_waiting_for_its_lane() {
    let pool = pool(2);
    let inner = Arc::clone(&pool);
    let parent = pool
        .run(move |ctx| {
            // A key whose lane is on the other worker.
            let me = ctx.worker_index().unwrap();
            let key = (0u64..)
                .find(|k| {
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    std::hash::Hash::hash(k, &mut hasher);
                    std::hash::Hasher::finish(&hasher) % 2 != me as u64
                })
                .unwrap();
            let (started, wait_started) = mpsc::channel();
            let broadcaster = Arc::clone(&inner);
            let first = inner
                .run_keyed(&key, move |_| {
                    started.send(()).unwrap();
                    broadcaster.broadcast(|ctx| ctx.worker_index()).ok()
                })
                .unwrap();
            let second = inner.run_keyed(&key, |_| 2).unwrap();
            wait_started.recv().unwrap();
            (second.join(), first.join())
        })
        .unwrap();
    let Ok(outcome) = parent.join_timeout(WATCHDOG) else {
        pool.destroy();
        panic!("deadlock: the broadcast waited for the worker waiting for its lane");
    };
    assert_eq!(
        outcome,
        Ok((Ok(2), Ok(Some(vec![Ok(Some(0)), Ok(Some(1))]))))
    );
    let stats = settled_stats(&pool);
    assert_eq!(stats.completed, stats.submitted, "{stats:?}");
}

/// A pool of two threads that never idle out, whose queue holds one task and whose
/// submitters block (`WhenFull::Block`, P2) for at most `block` when it is full.
fn blocking_pool(block: std::time::Duration) -> Arc<WorkerPool> {
    Arc::new(
        WorkerPool::builder()
            .min_threads(2)
            .max_threads(2)
            .idle_timeout(None)
            .max_queue(MaxQueue::Bounded(1))
            .when_full(WhenFull::Block(block))
            .build()
            .unwrap(),
    )
}

/// Starts two tasks of a two-thread `pool`, one on each worker, each blocked until its
/// sender (returned) is used, and waits until both run: then queues one more task, which
/// waits (both workers are busy) until one of them returns. Returns the senders and the
/// queued task's handle.
fn two_busy_workers_and_a_queued_task<A, B>(
    pool: &Arc<WorkerPool>,
    first: impl FnOnce(&Arc<WorkerPool>) -> A + Send + 'static,
    second: impl FnOnce(&Arc<WorkerPool>) -> B + Send + 'static,
) -> (
    [mpsc::Sender<()>; 2],
    sharedbuf::pool::TaskHandle<A>,
    sharedbuf::pool::TaskHandle<B>,
    sharedbuf::pool::TaskHandle<u32>,
)
where
    A: Send + 'static,
    B: Send + 'static,
{
    let (running, both_running) = mpsc::channel();
    let (go_first, first_go) = mpsc::channel::<()>();
    let (go_second, second_go) = mpsc::channel::<()>();
    let (inner, started) = (Arc::clone(pool), running.clone());
    let first = pool
        .run(move |_| {
            started.send(()).unwrap();
            first_go.recv().unwrap();
            first(&inner)
        })
        .unwrap();
    let inner = Arc::clone(pool);
    let second = pool
        .run(move |_| {
            running.send(()).unwrap();
            second_go.recv().unwrap();
            second(&inner)
        })
        .unwrap();
    for _ in 0..2 {
        both_running
            .recv_timeout(WATCHDOG)
            .expect("both tasks start");
    }
    let queued = pool.run(|_| 3).unwrap();
    assert_eq!(
        pool.queue_size(),
        1,
        "both workers are busy: the task waits"
    );
    ([go_first, go_second], first, second, queued)
}

/// What a broadcast made by the second task of [`two_busy_workers_and_a_queued_task`] ran.
type Broadcast = Option<Vec<Result<Option<usize>, TaskError>>>;

/// Releases both busy workers' tasks, then checks what both broadcast tests expect of the
/// second one: its broadcast ran once on each worker, the queued task ran, and every task
/// completed. Returns the first task's result.
fn release_then_check_the_broadcast<A: Send + 'static>(
    pool: &Arc<WorkerPool>,
    go: [mpsc::Sender<()>; 2],
    first: sharedbuf::pool::TaskHandle<A>,
    broadcaster: sharedbuf::pool::TaskHandle<Broadcast>,
    queued: sharedbuf::pool::TaskHandle<u32>,
) -> Result<A, TaskError> {
    for go in &go {
        go.send(()).unwrap();
    }
    let first = pool_common::join(first);
    assert_eq!(
        pool_common::join(broadcaster),
        Ok(Some(vec![Ok(Some(0)), Ok(Some(1))]))
    );
    assert_eq!(pool_common::join(queued), Ok(3));
    let stats = settled_stats(pool);
    assert_eq!(stats.completed, stats.submitted, "{stats:?}");
    first
}

/// docs/semantics.md P2 (`WhenFull::Block`), P9 and P10: a task blocked submitting to its
/// full pool runs its worker's share of a broadcast while it waits. Here the other worker
/// broadcasts, and the queue only has room once that broadcast returns (its worker then takes
/// the queued task). Before the fix the blocked submitter waited on the queue alone: the two
/// workers waited for each other until the `Block` timeout, and the submission was refused
/// `QueueFull` (the broadcast then ran).
#[test]
fn p9_a_task_blocked_submitting_to_a_full_queue_runs_its_share_of_a_broadcast() {
    // Only room made for it ends the block in time; the timeout is a bound on a regression.
    let pool = blocking_pool(WATCHDOG / 4);
    let (go, submitter, broadcaster, queued) = two_busy_workers_and_a_queued_task(
        &pool,
        |pool| pool.run(|_| 4).map(|handle| handle.join()).ok(),
        |pool| pool.broadcast(|ctx| ctx.worker_index()).ok(),
    );
    let submitted = release_then_check_the_broadcast(&pool, go, submitter, broadcaster, queued);
    assert_eq!(
        submitted.unwrap(),
        Some(Ok(4)),
        "the blocked submission was accepted"
    );
}

/// docs/semantics.md P6, P9 and P10: a task waiting in `wait_drained` runs its worker's share
/// of a broadcast while it waits. Here the other worker broadcasts, and the queue only drains
/// once that broadcast returns (its worker then takes the queued task). Before the fix the
/// waiting task waited on the queue alone: the two workers waited for each other until the
/// drain's timeout, and `wait_drained` returned `false` (the broadcast then ran).
#[test]
fn p9_a_task_waiting_for_the_drain_runs_its_share_of_a_broadcast() {
    let pool = pool(2);
    let (go, drainer, broadcaster, queued) = two_busy_workers_and_a_queued_task(
        &pool,
        |pool| pool.wait_drained(Some(WATCHDOG / 4)),
        |pool| pool.broadcast(|ctx| ctx.worker_index()).ok(),
    );
    let drained = release_then_check_the_broadcast(&pool, go, drainer, broadcaster, queued);
    assert_eq!(drained, Ok(true), "the queue drained");
}

/// docs/semantics.md P4 and P7: tasks whose captured values panic when dropped, dropped
/// unrun by a cancel, by `destroy` and by a `close` that timed out, each on another thread:
/// every one is dropped once, the thread doing it goes on to the rest, every handle resolves,
/// and the counts add up.
#[test]
fn p7_captures_that_panic_when_dropped_unrun_harm_no_cancel_or_destroy() {
    quiet_panics("hostile");
    let drops = Arc::new(AtomicUsize::new(0));
    for ending in ["cancel", "destroy", "close"] {
        drops.store(0, SeqCst);
        let pool = pool(1);
        let gate = pool_common::Gate::new();
        let g = gate.clone();
        let holder = pool.run(move |_| g.wait()).unwrap();
        gate.until_entered(1);
        let handles: Vec<_> = (0..20)
            .map(|id| {
                let captured = Counted::new(id, &drops, id % 3 == 0);
                // The whole value, not only its field (closures capture disjoint fields).
                pool.run(move |_| {
                    let captured = captured;
                    captured.id
                })
                .unwrap()
            })
            .collect();
        let ender = Arc::clone(&pool);
        let cancelled = std::thread::spawn(move || match ending {
            "cancel" => handles.iter().filter(|h| h.cancel()).count(),
            "destroy" => {
                ender.destroy();
                drop(handles);
                20
            }
            _ => {
                let closed = ender.close(Some(std::time::Duration::ZERO));
                assert!(closed.is_err(), "{closed:?}");
                drop(handles);
                20
            }
        })
        .join()
        .expect("the ending thread was not left half-way");
        assert_eq!(cancelled, 20, "{ending}");
        assert_eq!(drops.load(SeqCst), 20, "{ending}: captures leaked");
        gate.open();
        let held = holder.join();
        assert!(
            held == Ok(()) || held == Err(TaskError::PoolDestroyed),
            "{held:?}"
        );
        if ending == "cancel" {
            assert_eq!(pool.run(|_| 1).unwrap().join(), Ok(1));
        }
        let stats = settled_stats(&pool);
        assert_eq!(
            stats.submitted,
            stats.completed + stats.failed + stats.cancelled + stats.timed_out + stats.destroyed,
            "{ending}: {stats:?}"
        );
        assert_eq!((stats.queued, stats.running), (0, 0), "{ending}: {stats:?}");
    }
}

/// docs/semantics.md P7: a task that holds the last handle of its own pool and drops it, and
/// a task that destroys its own pool. The drop only stops the pool accepting (a thread
/// cannot join itself): what was queued still runs. The destroy resolves the queued tasks
/// and the task itself `PoolDestroyed`, and the task goes on to its end.
#[test]
fn p7_a_task_that_drops_or_destroys_its_own_pool() {
    let pool = Arc::new(WorkerPool::builder().max_threads(2).build().unwrap());
    let gate = pool_common::Gate::new();
    let (g, own) = (gate.clone(), Arc::clone(&pool));
    let dropper = pool
        .run(move |_| {
            g.wait();
            drop(own); // the last handle: closes, from inside
            5
        })
        .unwrap();
    gate.until_entered(1);
    let queued: Vec<_> = (0..4).map(|i| pool.run(move |_| i).unwrap()).collect();
    drop(pool);
    gate.open();
    assert_eq!(pool_common::join(dropper), Ok(5));
    for (i, handle) in queued.into_iter().enumerate() {
        assert_eq!(pool_common::join(handle), Ok(i));
    }

    let pool = pool_common_pool_of_one();
    let gate = pool_common::Gate::new();
    let (g, own) = (gate.clone(), Arc::clone(&pool));
    let (done_tx, done) = mpsc::channel();
    let destroyer = pool
        .run(move |ctx| {
            g.wait();
            own.destroy();
            done_tx.send(ctx.is_cancelled()).unwrap();
        })
        .unwrap();
    gate.until_entered(1);
    let queued = pool.run(|_| 1).unwrap();
    gate.open();
    assert_eq!(done.recv_timeout(WATCHDOG), Ok(true));
    assert_eq!(pool_common::join(destroyer), Err(TaskError::PoolDestroyed));
    assert_eq!(pool_common::join(queued), Err(TaskError::PoolDestroyed));
    assert!(pool.run(|_| 0).is_err());
    let stats = settled_stats(&pool);
    assert_eq!((stats.submitted, stats.destroyed), (2, 2), "{stats:?}");
}

fn pool_common_pool_of_one() -> Arc<WorkerPool> {
    pool(1)
}

/// docs/semantics.md P7: `close` twice, `close(Some(ZERO))`, and `destroy` racing `close` from
/// other threads: every call returns, every accepted task resolves once, and the counts add up.
#[test]
fn p7_close_twice_and_destroy_racing_close() {
    for round in 0..20 {
        let pool = pool(2);
        let handles: Vec<_> = (0..50u64)
            .map(|i| pool.run(move |_| (0..i * 100).sum::<u64>()).unwrap())
            .collect();
        let (closer, destroyer) = (Arc::clone(&pool), Arc::clone(&pool));
        let close = std::thread::spawn(move || closer.close(None));
        let destroy = std::thread::spawn(move || {
            if round % 2 == 0 {
                destroyer.destroy();
            }
            destroyer.close(Some(std::time::Duration::ZERO)).ok();
        });
        destroy.join().unwrap();
        let _ = close.join().unwrap();
        assert_eq!(
            pool.close(None),
            Ok(()),
            "a second close after the threads are gone"
        );
        for handle in handles {
            let outcome = pool_common::join(handle);
            assert!(
                matches!(outcome, Ok(_) | Err(TaskError::PoolDestroyed)),
                "{outcome:?}"
            );
        }
        let stats = settled_stats(&pool);
        assert_eq!(
            stats.submitted,
            stats.completed + stats.destroyed,
            "{stats:?}"
        );
        assert_eq!((stats.queued, stats.threads), (0, 0), "{stats:?}");
    }
}

/// docs/semantics.md P9 (broadcast): a closure that panics on one worker gives that worker's
/// entry `Err(Panicked)` and the others their values; broadcasts race workers retiring on their
/// idle timeout, and a `close` and a `destroy` from other threads: each call returns one entry
/// per worker it reached (or `Err(Closed)`), and the counts add up.
#[test]
fn p9_broadcast_with_a_panic_and_racing_idle_retirement_close_and_destroy() {
    quiet_panics("hostile");
    let pool = pool(3);
    let results = pool
        .broadcast(|ctx| {
            if ctx.worker_index() == Some(1) {
                panic!("hostile: broadcast on 1");
            }
            ctx.worker_index()
        })
        .ok()
        .unwrap();
    assert_eq!(
        results,
        [
            Ok(Some(0)),
            Err(TaskError::Panicked("hostile: broadcast on 1".into())),
            Ok(Some(2))
        ]
    );
    for ending in ["retire", "close", "destroy"] {
        let pool = Arc::new(
            WorkerPool::builder()
                .min_threads(0)
                .max_threads(3)
                .idle_timeout(std::time::Duration::from_micros(50))
                .build()
                .unwrap(),
        );
        let broadcaster = Arc::clone(&pool);
        let broadcasts = std::thread::spawn(move || {
            let mut reached = 0;
            // Fewer rounds under Miri, which interprets them about a thousand times slower.
            for _ in 0..if cfg!(miri) { 20 } else { 300 } {
                // Work that starts threads, which then retire while broadcasts arrive.
                let _ = broadcaster.map(0..6u32, |x| x);
                match broadcaster.broadcast(|ctx| ctx.worker_index().is_some()) {
                    Ok(results) => {
                        assert!(results.len() <= 3);
                        reached += results.iter().filter(|r| **r == Ok(true)).count();
                    }
                    Err(_) => break, // closed
                }
            }
            reached
        });
        match ending {
            "close" => {
                std::thread::yield_now();
                let _ = pool.close(None);
            }
            "destroy" => {
                std::thread::yield_now();
                pool.destroy();
            }
            _ => {}
        }
        broadcasts.join().expect("a broadcast hung or panicked");
        let stats = settled_stats(&pool);
        assert_eq!(
            stats.submitted,
            stats.completed + stats.failed + stats.cancelled + stats.destroyed,
            "{ending}: {stats:?}"
        );
        assert_eq!(stats.queued, 0, "{ending}: {stats:?}");
    }
}

/// docs/semantics.md P9 (keyed tasks): many keys on one worker's lanes, a keyed task that
/// joins a later task of its own key (run inline, in order), and keyed tasks cancelled or
/// timed out while they wait behind a running one: each key keeps its order, every handle
/// resolves once, and the counts add up.
#[test]
fn p9_keyed_tasks_joins_cancels_and_timeouts() {
    let pool = pool(2);
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let gate = pool_common::Gate::new();
    let g = gate.clone();
    let first = pool.run_keyed(&"k", move |_| g.wait()).unwrap();
    gate.until_entered(1);
    let mut waiting = Vec::new();
    for i in 0..30u32 {
        let log = Arc::clone(&log);
        let options = sharedbuf::pool::TaskOptions::new()
            .key(&"k")
            .timeout(std::time::Duration::from_secs(600));
        waiting.push(
            pool.run_with(options, move |_| {
                log.lock().unwrap().push(i);
                i
            })
            .unwrap(),
        );
    }
    // Cancel every third one while they wait behind the gate task.
    let mut expected = Vec::new();
    let mut outcomes = Vec::new();
    for (i, handle) in waiting.into_iter().enumerate() {
        if i % 3 == 0 {
            assert!(handle.cancel());
            outcomes.push((handle, Err(TaskError::Cancelled)));
        } else {
            expected.push(i as u32);
            outcomes.push((handle, Ok(i as u32)));
        }
    }
    // A keyed task that joins a later task of its own key: runs it inline, in order.
    let inner = Arc::clone(&pool);
    let joiner = pool
        .run_keyed(&"k", move |_| {
            let later = inner.run_keyed(&"k", |_| 99).unwrap();
            later.join()
        })
        .unwrap();
    // Many other keys meanwhile, on both workers.
    let others: Vec<_> = (0..200u32)
        .map(|i| pool.run_keyed(&i, move |_| i).unwrap())
        .collect();
    gate.open();
    assert_eq!(pool_common::join(first), Ok(()));
    for (handle, outcome) in outcomes {
        assert_eq!(pool_common::join(handle), outcome);
    }
    assert_eq!(pool_common::join(joiner), Ok(Ok(99)));
    for (i, handle) in others.into_iter().enumerate() {
        assert_eq!(pool_common::join(handle), Ok(i as u32));
    }
    assert_eq!(*log.lock().unwrap(), expected);
    // A keyed task that times out behind... its own run: the lane stays busy until it returns.
    let (release_tx, release) = mpsc::channel::<()>();
    let slow = pool
        .run_with(
            sharedbuf::pool::TaskOptions::new()
                .key(&"t")
                .timeout(std::time::Duration::from_millis(1)),
            move |_| release.recv_timeout(WATCHDOG).is_ok(),
        )
        .unwrap();
    let next = pool.run_keyed(&"t", |_| 2).unwrap();
    assert_eq!(pool_common::join(slow), Err(TaskError::TimedOut));
    release_tx.send(()).unwrap();
    assert_eq!(pool_common::join(next), Ok(2));
    let stats = settled_stats(&pool);
    assert_eq!(
        stats.submitted,
        stats.completed + stats.cancelled + stats.timed_out,
        "{stats:?}"
    );
    assert_eq!((stats.queued, stats.overdue), (0, 0), "{stats:?}");
}

/// docs/semantics.md P7 and P10: thread hooks that use the pool: a start hook that submits a
/// task and joins it (run inline), broadcasts, and closes the pool (only stops it accepting,
/// `FromInsidePool`); an exit hook that destroys it. Nothing hangs and every task resolves.
#[test]
fn p7_hooks_that_submit_broadcast_close_and_destroy() {
    let slot: Arc<std::sync::OnceLock<std::sync::Weak<WorkerPool>>> = Arc::default();
    let (start_slot, exit_slot) = (Arc::clone(&slot), Arc::clone(&slot));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_by_hook = Arc::clone(&seen);
    let pool = Arc::new(
        WorkerPool::builder()
            .min_threads(0)
            .max_threads(2)
            .max_queue(MaxQueue::Unbounded)
            .on_thread_start(move |worker| {
                let Some(pool) = start_slot.get().and_then(std::sync::Weak::upgrade) else {
                    return;
                };
                let joined = match pool.run(move |_| worker) {
                    Ok(handle) => handle.join(),
                    Err(_) => return, // closed by the other hook meanwhile
                };
                let broadcast = pool
                    .broadcast(|ctx| ctx.worker_index())
                    .ok()
                    .map(|r| r.len());
                seen_by_hook
                    .lock()
                    .unwrap()
                    .push((joined, broadcast.is_some()));
                if worker == 1 {
                    let _ = pool.close(None);
                }
            })
            .on_thread_exit(move |_| {
                if let Some(pool) = exit_slot.get().and_then(std::sync::Weak::upgrade) {
                    pool.destroy();
                }
            })
            .build()
            .unwrap(),
    );
    slot.set(Arc::downgrade(&pool)).unwrap();
    let handles: Vec<_> = (0..20u32)
        .filter_map(|i| pool.run(move |_| i).ok())
        .collect();
    for handle in handles {
        let outcome = pool_common::join(handle);
        assert!(
            matches!(outcome, Ok(_) | Err(TaskError::PoolDestroyed)),
            "{outcome:?}"
        );
    }
    let _ = pool.close(None);
    assert!(
        !seen.lock().unwrap().is_empty(),
        "no start hook used the pool"
    );
    for (joined, _) in seen.lock().unwrap().iter() {
        assert!(
            matches!(joined, Ok(_) | Err(TaskError::PoolDestroyed)),
            "{joined:?}"
        );
    }
    let stats = settled_stats(&pool);
    assert_eq!(
        stats.submitted,
        stats.completed + stats.destroyed,
        "{stats:?}"
    );
    assert_eq!((stats.queued, stats.threads), (0, 0), "{stats:?}");
}

/// docs/semantics.md P9 and P10: `map` from inside tasks while every worker is busy running
/// such a task: each caller runs its own chunks (or joins the ones a worker took), and nothing
/// deadlocks, on one thread or several.
#[test]
fn p10_map_from_inside_tasks_with_every_worker_busy() {
    // Fewer items under Miri, which interprets the tasks about a thousand times slower.
    const ITEMS: u64 = if cfg!(miri) { 100 } else { 1000 };
    for threads in [1, 2, 3] {
        let pool = pool(threads);
        let handles: Vec<_> = (0..threads as u64 * 3)
            .map(|t| {
                let inner = Arc::clone(&pool);
                pool.run(move |_| {
                    inner
                        .map(0..ITEMS, move |x| x * t)
                        .map(|v| v.iter().sum::<u64>())
                })
                .unwrap()
            })
            .collect();
        for (t, handle) in handles.into_iter().enumerate() {
            assert_eq!(
                pool_common::join(handle),
                Ok(Ok((0..ITEMS).sum::<u64>() * t as u64)),
                "{threads} threads"
            );
        }
        let stats = settled_stats(&pool);
        assert_eq!(stats.completed, stats.submitted, "{stats:?}");
    }
}
