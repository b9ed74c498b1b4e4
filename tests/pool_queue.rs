//! docs/semantics.md P1, P2, P6: threads between min and max (lazy growth, idle reaping), the
//! queue bound and what happens when it is reached, backpressure, thread hooks, statistics.

#[path = "common/mod.rs"]
mod common;
mod pool_common;

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use pool_common::{eventually, join, Gate, WATCHDOG};
use sharedbuf::pool::{BuildError, MaxQueue, PoolError, WhenFull, WorkerPool};

/// A pool of one thread held busy by a task waiting on the returned gate.
fn busy_pool(max_queue: MaxQueue, when_full: WhenFull) -> (WorkerPool, Gate) {
    let pool = WorkerPool::builder()
        .min_threads(1)
        .max_threads(1)
        .max_queue(max_queue)
        .when_full(when_full)
        .build()
        .unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    drop(pool.run(move |_| g.wait()).unwrap());
    gate.until_entered(1);
    (pool, gate)
}

#[test]
fn building_checks_the_settings() {
    assert_eq!(
        WorkerPool::builder().max_threads(0).build().err(),
        Some(BuildError::ZeroMaxThreads)
    );
    assert_eq!(
        WorkerPool::builder()
            .min_threads(3)
            .max_threads(2)
            .build()
            .err(),
        Some(BuildError::MinAboveMax { min: 3, max: 2 })
    );
    assert_eq!(
        WorkerPool::builder().name("a\0b").build().err(),
        Some(BuildError::NameHasNul)
    );
    let pool = WorkerPool::new().unwrap();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(pool.max_threads(), cpus);
    assert_eq!(pool.stats().threads, 1, "min_threads defaults to 1");
}

#[test]
fn a_full_queue_rejects_and_gives_the_task_back() {
    let (pool, gate) = busy_pool(MaxQueue::Bounded(2), WhenFull::Reject);
    let queued: Vec<_> = (0..2).map(|i| pool.run(move |_| i).unwrap()).collect();
    assert_eq!(pool.queue_size(), 2);
    assert!(pool.needs_drain());
    let refused = pool.run(|_| 99).unwrap_err();
    assert!(matches!(refused, PoolError::QueueFull(_)));
    let task = refused.into_task(); // the very closure, given back
    gate.open();
    assert!(pool.wait_drained(Some(WATCHDOG)));
    assert_eq!(pool.queue_size(), 0);
    assert!(!pool.needs_drain());
    for (i, handle) in queued.into_iter().enumerate() {
        assert_eq!(join(handle), Ok(i));
    }
    assert_eq!(join(pool.run(task).unwrap()), Ok(99));
}

#[test]
fn auto_bounds_the_queue_at_max_threads_squared() {
    let pool = WorkerPool::builder()
        .min_threads(2)
        .max_threads(2)
        .max_queue(MaxQueue::Auto)
        .build()
        .unwrap();
    let gate = Gate::new();
    for _ in 0..2 {
        let g = gate.clone();
        drop(pool.run(move |_| g.wait()).unwrap());
    }
    gate.until_entered(2);
    let queued: Vec<_> = (0..4).map(|i| pool.run(move |_| i).unwrap()).collect();
    assert!(matches!(pool.run(|_| 4), Err(PoolError::QueueFull(_))));
    gate.open();
    for handle in queued {
        join(handle).unwrap();
    }
}

#[test]
fn a_zero_bound_accepts_a_task_only_when_a_worker_can_start_it() {
    let pool = WorkerPool::builder()
        .min_threads(1)
        .max_threads(1)
        .max_queue(MaxQueue::Bounded(0))
        .build()
        .unwrap();
    eventually("the worker is idle", || pool.stats().idle_threads == 1);
    let gate = Gate::new();
    let g = gate.clone();
    let busy = pool.run(move |_| g.wait()).unwrap();
    gate.until_entered(1);
    assert!(matches!(pool.run(|_| ()), Err(PoolError::QueueFull(_))));
    gate.open();
    join(busy).unwrap();
}

#[test]
fn block_waits_for_room_and_gives_up_after_its_timeout() {
    let (pool, gate) = busy_pool(
        MaxQueue::Bounded(1),
        WhenFull::Block(Duration::from_millis(10)),
    );
    let first = pool.run(|_| 1).unwrap();
    // Full: after 10 ms of waiting, refused (the duration is not measured, only the outcome).
    assert!(matches!(pool.run(|_| 2), Err(PoolError::QueueFull(_))));
    gate.open();
    assert_eq!(join(first), Ok(1));
    drop(pool);

    let (pool, gate) = busy_pool(MaxQueue::Bounded(1), WhenFull::Block(WATCHDOG));
    let pool = Arc::new(pool);
    let first = pool.run(|_| 1).unwrap();
    let remote = Arc::clone(&pool);
    let (blocked, waiting) = mpsc::channel();
    let submitter = std::thread::spawn(move || {
        blocked.send(()).unwrap();
        remote.run(|_| 2).map(join)
    });
    waiting.recv().unwrap();
    gate.open(); // the busy task ends, `first` starts: room for the blocked submission
    assert_eq!(join(first), Ok(1));
    assert_eq!(submitter.join().unwrap().unwrap(), Ok(2));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn block_with_a_zero_bound_takes_the_first_worker_that_becomes_free() {
    // A block far longer than the watchdog: only being woken can end it in time.
    let (pool, gate) = busy_pool(
        MaxQueue::Bounded(0),
        WhenFull::Block(Duration::from_secs(3600)),
    );
    let pool = Arc::new(pool);
    let remote = Arc::clone(&pool);
    let (tid, tid_of_submitter) = mpsc::channel();
    let (result, submitted) = mpsc::channel();
    std::thread::spawn(move || {
        tid.send(common::current_tid()).unwrap();
        result.send(remote.run(|_| 3).map(join).ok()).unwrap();
    });
    // Asleep = blocked waiting for room (the queue is full: the only worker is busy).
    common::wait_until_asleep(tid_of_submitter.recv().unwrap());
    gate.open(); // the busy task ends and its worker goes idle: room for the blocked task
    let result = submitted
        .recv_timeout(WATCHDOG)
        .expect("the blocked submitter was never woken: hang");
    assert_eq!(result, Some(Ok(3)));
}

#[test]
fn block_gives_up_when_the_pool_closes() {
    let (pool, gate) = busy_pool(MaxQueue::Bounded(0), WhenFull::Block(WATCHDOG));
    let pool = Arc::new(pool);
    let remote = Arc::clone(&pool);
    let submitter = std::thread::spawn(move || remote.run(|_| ()).err());
    let closer = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.close(Some(WATCHDOG)))
    };
    let refused = submitter.join().unwrap();
    assert!(
        matches!(refused, Some(PoolError::Closed(_))) || refused.is_none(),
        "refused as closed, or accepted before the close"
    );
    gate.open();
    closer.join().unwrap().unwrap();
}

#[test]
fn caller_runs_runs_the_task_on_the_submitting_thread() {
    let (pool, gate) = busy_pool(MaxQueue::Bounded(0), WhenFull::CallerRuns);
    let here = std::thread::current().id();
    let handle = pool
        .run(move |ctx| {
            (
                ctx.worker_index(),
                ctx.thread_id(),
                std::thread::current().id() == here,
            )
        })
        .unwrap();
    assert!(handle.is_finished(), "it ran before run() returned");
    assert_eq!(join(handle), Ok((None, 0, true)));
    // A keyed task is refused instead: running it here would break its key's order.
    assert!(matches!(
        pool.run_keyed(&1, |_| ()),
        Err(PoolError::QueueFull(_))
    ));
    gate.open();
    pool.close(Some(WATCHDOG)).unwrap();
    assert_eq!(
        pool.stats().completed,
        2,
        "the busy task and the one run here"
    );
}

#[test]
fn threads_grow_lazily_up_to_max_and_idle_ones_are_reaped_down_to_min() {
    let exits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&exits);
    let pool = WorkerPool::builder()
        .min_threads(1)
        .max_threads(4)
        .idle_timeout(Duration::from_millis(5))
        .max_queue(MaxQueue::Unbounded)
        .on_thread_exit(move |_| {
            counted.fetch_add(1, SeqCst);
        })
        .build()
        .unwrap();
    assert_eq!(pool.stats().threads, 1);
    let gate = Gate::new();
    let busy: Vec<_> = (0..6)
        .map(|_| {
            let g = gate.clone();
            pool.run(move |ctx| {
                g.wait();
                ctx.worker_index().unwrap()
            })
            .unwrap()
        })
        .collect();
    gate.until_entered(4);
    let stats = pool.stats();
    assert_eq!(
        (stats.threads, stats.queued),
        (4, 2),
        "grew to max, then queued"
    );
    gate.open();
    for handle in busy {
        assert!(join(handle).unwrap() < 4);
    }
    // A thread runs its exit hook before it is counted out of `threads` (worker.rs,
    // `ThreadExit`): wait for both (Miri's schedules showed `threads` 2 after the third hook).
    eventually("idle threads above the minimum exit", || {
        exits.load(SeqCst) == 3 && pool.stats().threads == 1
    });
    let stats = pool.stats();
    assert_eq!(
        (stats.threads, stats.peak_threads, stats.threads_started),
        (1, 4, 4)
    );
    // The survivor still works, and growth starts again when needed.
    assert_eq!(join(pool.run(|_| 7).unwrap()), Ok(7));
}

thread_local! {
    static MODEL: Cell<Option<usize>> = const { Cell::new(None) };
}

#[test]
fn start_hooks_set_up_per_thread_state_and_exit_hooks_run_for_every_thread() {
    let (started, exited) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (s, e) = (Arc::clone(&started), Arc::clone(&exited));
    let pool = WorkerPool::builder()
        .min_threads(3)
        .max_threads(3)
        .on_thread_start(move |worker| {
            MODEL.with(|model| model.set(Some(worker * 10)));
            s.fetch_add(1, SeqCst);
        })
        .on_thread_exit(move |worker| {
            assert_eq!(MODEL.with(Cell::get), Some(worker * 10));
            e.fetch_add(1, SeqCst);
        })
        .build()
        .unwrap();
    let seen = pool.broadcast(|ctx| MODEL.with(Cell::get) == ctx.worker_index().map(|w| w * 10));
    assert_eq!(seen.unwrap(), [Ok(true), Ok(true), Ok(true)]);
    assert_eq!(started.load(SeqCst), 3);
    drop(pool);
    assert_eq!(
        exited.load(SeqCst),
        3,
        "drop joined every thread after its exit hook"
    );
}

#[test]
fn a_panicking_hook_is_counted_and_the_thread_goes_on() {
    let pool = WorkerPool::builder()
        .min_threads(1)
        .max_threads(1)
        .on_thread_start(|_| panic!("hook failed on purpose"))
        .on_thread_exit(|_| panic!("hook failed on purpose"))
        .build()
        .unwrap();
    assert_eq!(join(pool.run(|_| 1).unwrap()), Ok(1));
    pool.close(Some(WATCHDOG)).unwrap();
    assert_eq!(pool.stats().hook_panics, 2);
}

#[test]
fn stats_report_run_and_wait_times_and_utilization() {
    let pool = WorkerPool::builder()
        .min_threads(1)
        .max_threads(1)
        .max_queue(MaxQueue::Unbounded)
        .build()
        .unwrap();
    let gate = Gate::new();
    let g = gate.clone();
    let blocker = pool
        .run(move |_| {
            g.wait();
        })
        .unwrap();
    let queued: Vec<_> = (0..99).map(|_| pool.run(|_| ()).unwrap()).collect();
    gate.open();
    join(blocker).unwrap();
    for handle in queued {
        join(handle).unwrap();
    }
    let stats = pool_common::settled_stats(&pool);
    // Durations are sampled, one task in 8 per submitting thread; counts are exact.
    assert_eq!(stats.completed, 100);
    assert_eq!(stats.run_time.count, stats.wait_time.count);
    assert!((12..=13).contains(&stats.run_time.count), "{stats:?}");
    let run = stats.run_time;
    assert!(run.p50 <= run.p90 && run.p90 <= run.p99 && run.p99 <= run.max);
    assert!(run.max > Duration::ZERO);
    let wait = stats.wait_time;
    assert!(wait.p50 <= wait.p90 && wait.p90 <= wait.p99 && wait.p99 <= wait.max);
    assert!(stats.utilization > 0.0 && stats.utilization <= 1.0);
    assert_eq!(stats.submitted, stats.completed);
}
