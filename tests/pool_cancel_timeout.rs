//! docs/semantics.md P4, P8: cancelling (queued: never runs; running: a flag), timeouts
//! counted from the start, and what an overdue task does to the pool.

mod pool_common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pool_common::{eventually, join, Gate};
use sharedbuf::pool::{Cancelled, MaxQueue, TaskError, TaskOptions, WorkerPool};

fn pool(min: usize, max: usize) -> WorkerPool {
    WorkerPool::builder()
        .min_threads(min)
        .max_threads(max)
        .max_queue(MaxQueue::Unbounded)
        .idle_timeout(None)
        .build()
        .unwrap()
}

/// Sets its flag when dropped (to see a closure dropped without running).
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

#[test]
fn a_queued_task_that_is_cancelled_never_runs_and_its_closure_is_dropped() {
    let pool = pool(1, 1);
    let gate = Gate::new();
    let g = gate.clone();
    let blocker = pool.run(move |_| g.wait()).unwrap();
    gate.until_entered(1);
    let (ran, dropped) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (r, flag) = (Arc::clone(&ran), DropFlag(Arc::clone(&dropped)));
    let handle = pool
        .run(move |_| {
            let _flag = &flag;
            r.store(true, SeqCst);
        })
        .unwrap();
    assert_eq!(pool.queue_size(), 1);
    assert!(handle.cancel(), "it had not started");
    assert!(dropped.load(SeqCst), "the closure is dropped at once");
    assert_eq!(pool.queue_size(), 0);
    assert!(!handle.cancel(), "a second cancel finds it resolved");
    gate.open();
    join(blocker).unwrap();
    assert_eq!(join(handle), Err(TaskError::Cancelled));
    pool.close(None).unwrap();
    assert!(!ran.load(SeqCst));
    let stats = pool.stats();
    assert_eq!(
        (stats.cancelled, stats.completed, stats.submitted),
        (1, 1, 2)
    );
}

#[test]
fn a_running_task_sees_cancel_as_a_flag_and_its_handle_gets_what_it_returns() {
    let pool = pool(1, 1);
    let started = Gate::new();
    let s = started.clone();
    let handle = pool
        .run(move |ctx| -> Result<u32, Cancelled> {
            s.open();
            let mut rounds = 0;
            loop {
                ctx.check()?;
                rounds += 1;
                std::hint::spin_loop();
                if rounds == u32::MAX {
                    return Ok(rounds);
                }
            }
        })
        .unwrap();
    started.wait();
    assert!(!handle.cancel(), "it is running: only its flag is set");
    assert_eq!(join(handle), Ok(Err(Cancelled)));
    assert_eq!(
        pool.stats().cancelled,
        0,
        "it ran: not counted as cancelled"
    );
}

#[test]
fn a_timeout_counts_from_the_start_not_from_the_submission() {
    let pool = pool(1, 1);
    // Room for the task itself to run, even on a loaded machine that takes the core away from
    // it for a while: under Miri, which interprets it about a thousand times slower, 20 ms of
    // real time was not (it timed out once started).
    let timeout = Duration::from_millis(if cfg!(miri) { 3_000 } else { 200 });
    let gate = Gate::new();
    let g = gate.clone();
    let blocker = pool.run(move |_| g.wait()).unwrap();
    let queued_at = Instant::now();
    let handle = pool
        .run_with(TaskOptions::new().timeout(timeout), |ctx| {
            ctx.is_cancelled()
        })
        .unwrap();
    // Keep it queued for longer than its timeout (the condition under test, not a sync).
    while queued_at.elapsed() < 3 * timeout {
        std::thread::sleep(timeout);
    }
    gate.open();
    join(blocker).unwrap();
    assert_eq!(
        join(handle),
        Ok(false),
        "the wait in the queue did not count"
    );
    assert_eq!(pool.stats().timed_out, 0);
}

#[test]
fn a_task_past_its_timeout_resolves_timed_out_and_sees_its_flag() {
    let pool = pool(1, 1);
    let saw_flag = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&saw_flag);
    let handle = pool
        .run_with(
            TaskOptions::new().timeout(Duration::from_millis(1)),
            move |ctx| {
                while !ctx.is_cancelled() {
                    std::hint::spin_loop();
                }
                seen.store(true, SeqCst);
                "late value, dropped"
            },
        )
        .unwrap();
    assert_eq!(join(handle), Err(TaskError::TimedOut));
    pool.close(None).unwrap();
    assert!(saw_flag.load(SeqCst));
    let stats = pool.stats();
    assert_eq!((stats.timed_out, stats.completed, stats.overdue), (1, 0, 0));
}

#[test]
fn a_zero_timeout_times_the_task_out_as_it_starts() {
    let pool = pool(1, 1);
    let handle = pool
        .run_with(TaskOptions::new().timeout(Duration::ZERO), |ctx| {
            ctx.is_cancelled()
        })
        .unwrap();
    assert_eq!(join(handle), Err(TaskError::TimedOut));
}

#[test]
fn an_overdue_task_keeps_its_thread_and_the_pool_starts_a_replacement() {
    let pool = pool(1, 2);
    let release = Gate::new();
    let r = release.clone();
    let stubborn = pool
        .run_with(
            TaskOptions::new().timeout(Duration::from_millis(1)),
            move |_| {
                r.wait(); // ignores its cancel flag
            },
        )
        .unwrap();
    assert_eq!(join(stubborn), Err(TaskError::TimedOut));
    let stats = pool.stats();
    assert_eq!((stats.overdue, stats.running, stats.threads), (1, 1, 1));
    // Its thread is not free: the next task gets a new thread.
    let next = pool.run(|ctx| ctx.worker_index()).unwrap();
    assert_eq!(join(next), Ok(Some(1)));
    let stats = pool.stats();
    assert_eq!((stats.threads_started, stats.replacements), (2, 1));
    release.open();
    // The two counts are updated one after the other, not as one snapshot: wait for both.
    eventually("the overdue task returns and stops running", || {
        let stats = pool.stats();
        (stats.overdue, stats.running) == (0, 0)
    });
}

/// Tasks queued and then (nine in ten) cancelled; fewer under Miri, which interprets them
/// about a thousand times slower.
const QUEUED: usize = if cfg!(miri) { 100 } else { 10_000 };

#[test]
fn cancelling_many_queued_tasks_sweeps_their_entries_and_keeps_counts_exact() {
    let pool = pool(1, 1);
    let gate = Gate::new();
    let g = gate.clone();
    let blocker = pool.run(move |_| g.wait()).unwrap();
    gate.until_entered(1); // the one thread is busy: the tasks below all stay queued
    let ran = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..QUEUED)
        .map(|_| {
            let ran = Arc::clone(&ran);
            pool.run(move |_| ran.fetch_add(1, SeqCst)).unwrap()
        })
        .collect();
    let mut kept = Vec::new();
    for (i, handle) in handles.into_iter().enumerate() {
        if i % 10 == 0 {
            kept.push(handle);
        } else {
            assert!(handle.cancel());
        }
    }
    assert_eq!(pool.queue_size(), QUEUED / 10);
    gate.open();
    join(blocker).unwrap();
    for handle in kept {
        join(handle).unwrap();
    }
    assert_eq!(ran.load(SeqCst), QUEUED / 10);
    let stats = pool_common::settled_stats(&pool);
    assert_eq!(
        (stats.cancelled, stats.completed),
        ((QUEUED - QUEUED / 10) as u64, (QUEUED / 10 + 1) as u64)
    );
}
