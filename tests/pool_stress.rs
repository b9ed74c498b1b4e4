//! 100,000 tasks with random cancels, timeouts and panics: every handle resolves exactly once,
//! every task body runs at most once (and never after a cancel that won), every result is
//! dropped exactly once, and the statistics add up to what the handles said.

mod pool_common;

use std::sync::atomic::{AtomicI64, AtomicU8, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use pool_common::{join, quiet_panics, Rng, WATCHDOG};
use sharedbuf::pool::{MaxQueue, TaskError, TaskOptions, WorkerPool};

/// A result that counts how many of its kind are alive.
struct Counted(Arc<AtomicI64>, u32);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

#[derive(Default, Debug, PartialEq)]
struct Tally {
    ok: u64,
    cancelled: u64,
    timed_out: u64,
    panicked: u64,
    destroyed: u64,
}

#[test]
fn a_hundred_thousand_tasks_with_random_cancels_and_timeouts() {
    quiet_panics("stress panic");
    const TASKS: usize = 100_000;
    let pool = WorkerPool::builder()
        .min_threads(1)
        .max_threads(4)
        .idle_timeout(Duration::from_millis(1)) // threads come and go meanwhile
        .max_queue(MaxQueue::Unbounded)
        .build()
        .unwrap();
    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..TASKS).map(|_| AtomicU8::new(0)).collect());
    let live = Arc::new(AtomicI64::new(0));
    let mut rng = Rng::new(0x5eed_f00d);
    let mut handles = Vec::with_capacity(TASKS);
    let mut expect_timeout = vec![false; TASKS];
    for i in 0..TASKS {
        let (runs, live) = (Arc::clone(&runs), Arc::clone(&live));
        let mut options = TaskOptions::new();
        let kind = rng.next() % 100;
        if kind < 5 {
            options = options.timeout(Duration::ZERO); // times out as it starts
            expect_timeout[i] = true;
        } else if kind < 6 {
            options = options.timeout(Duration::from_micros(50)); // and spins until told
            expect_timeout[i] = true;
        } else if kind < 8 {
            options = options.timeout(WATCHDOG); // a timeout that never fires
        }
        let handle = pool
            .run_with(options, move |ctx| {
                assert_eq!(runs[i].fetch_add(1, SeqCst), 0, "task {i} ran twice");
                if kind == 5 {
                    while !ctx.is_cancelled() {
                        std::hint::spin_loop();
                    }
                }
                if (8..9).contains(&kind) {
                    panic!("stress panic {i}");
                }
                live.fetch_add(1, SeqCst);
                Counted(live, i as u32)
            })
            .unwrap();
        if rng.chance(10) {
            handle.cancel(); // wins if the task has not started
        }
        handles.push(handle);
        if i % 1_000 == 999 {
            // Cancel a few older ones too, some queued, some done.
            for _ in 0..50 {
                let victim = (rng.next() as usize) % handles.len();
                handles[victim].cancel();
            }
        }
    }
    let mut tally = Tally::default();
    for (i, handle) in handles.into_iter().enumerate() {
        match join(handle) {
            Ok(value) => {
                assert_eq!(value.1 as usize, i);
                tally.ok += 1;
            }
            Err(TaskError::Cancelled) => tally.cancelled += 1,
            Err(TaskError::TimedOut) => {
                assert!(
                    expect_timeout[i],
                    "task {i} timed out without a short timeout"
                );
                tally.timed_out += 1;
            }
            Err(TaskError::Panicked(message)) => {
                assert_eq!(message, format!("stress panic {i}"));
                tally.panicked += 1;
            }
            Err(other) => panic!("task {i}: {other:?}"),
        }
    }
    pool.close(Some(WATCHDOG)).unwrap();
    // Every thread is joined: every body has run or never will.
    let ran = runs.iter().filter(|r| r.load(SeqCst) == 1).count() as u64;
    assert!(runs.iter().all(|r| r.load(SeqCst) <= 1));
    assert_eq!(ran, TASKS as u64 - tally.cancelled, "ran iff not cancelled");
    assert_eq!(live.load(SeqCst), 0, "every result dropped exactly once");
    let stats = pool.stats();
    assert_eq!(stats.submitted, TASKS as u64);
    assert_eq!(
        Tally {
            ok: stats.completed,
            cancelled: stats.cancelled,
            timed_out: stats.timed_out,
            panicked: stats.failed,
            destroyed: stats.destroyed,
        },
        tally
    );
    assert_eq!(
        stats.completed + stats.failed + stats.cancelled + stats.timed_out + stats.destroyed,
        stats.submitted
    );
    assert_eq!((stats.queued, stats.running, stats.overdue), (0, 0, 0));
    // Durations are sampled (one task in 8 per submitting thread); counts are exact.
    assert!(
        stats.run_time.count <= ran && stats.run_time.count >= ran / 10,
        "{stats:?}"
    );
    assert!(tally.cancelled > 0 && tally.timed_out > 0 && tally.panicked > 0);
}

#[test]
fn destroy_in_the_middle_of_ten_thousand_tasks_resolves_each_handle_once() {
    let pool = Arc::new(
        WorkerPool::builder()
            .min_threads(2)
            .max_threads(2)
            .max_queue(MaxQueue::Unbounded)
            .build()
            .unwrap(),
    );
    let runs: Arc<Vec<AtomicU8>> = Arc::new((0..10_000).map(|_| AtomicU8::new(0)).collect());
    let handles: Vec<_> = (0..10_000)
        .map(|i| {
            let runs = Arc::clone(&runs);
            pool.run(move |_| {
                runs[i].fetch_add(1, SeqCst);
                i
            })
            .unwrap()
        })
        .collect();
    pool.destroy();
    let mut tally = Tally::default();
    for (i, handle) in handles.into_iter().enumerate() {
        match join(handle) {
            Ok(value) => {
                assert_eq!(value, i);
                tally.ok += 1;
            }
            Err(TaskError::PoolDestroyed) => tally.destroyed += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    // A handle resolves a moment before its task is counted (PoolStats::running), and destroy
    // joins no thread: wait until nothing runs, when every count is in (reading the stats
    // right after the last join failed 1 run in 60: completed 8580, handles 8581).
    pool_common::eventually("every task counted", || pool.stats().running == 0);
    let pool = Arc::try_unwrap(pool).ok().unwrap();
    let stats = pool.stats();
    drop(pool);
    assert!(runs.iter().all(|r| r.load(SeqCst) <= 1));
    let ran = runs.iter().filter(|r| r.load(SeqCst) == 1).count() as u64;
    assert!(ran >= tally.ok, "a task destroyed while running still ran");
    assert_eq!(
        (stats.completed, stats.destroyed),
        (tally.ok, tally.destroyed)
    );
    assert_eq!(stats.completed + stats.destroyed, 10_000);
}
