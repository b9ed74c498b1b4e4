//! Loom model (docs/semantics.md P7; worker.rs `ThreadExit`): a pool's thread hooks are
//! dropped only once no thread can call them again — when its last thread exits a pool that is
//! no longer open, or by its drop after the joins — so every thread it started, including one
//! started after the last idle worker was reaped, runs both hooks.
//!
//! Proven by a planted bug: the exiting thread drops the hooks whenever it is the last one
//! alive, open pool or not (the reaped worker drops them; loom finds the schedule where the
//! second task starts a new thread, which then runs neither hook: "threads started: 2, start
//! hooks run: 1").
#![cfg(loom)]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use sharedbuf::loom_hooks;
use sharedbuf::pool::{MaxQueue, WorkerPool};

#[test]
fn every_thread_runs_both_hooks_and_the_hooks_are_dropped_after_the_last() {
    loom::model(|| {
        // std atomics: only read after the pool's drop has joined every thread.
        let starts = Arc::new(AtomicUsize::new(0));
        let exits = Arc::new(AtomicUsize::new(0));
        let (started, exited) = (Arc::clone(&starts), Arc::clone(&exits));
        let pool = WorkerPool::builder()
            .min_threads(0)
            .max_threads(1)
            .idle_timeout(Duration::from_millis(1))
            .max_queue(MaxQueue::Unbounded)
            .on_thread_start(move |_| {
                started.fetch_add(1, SeqCst);
            })
            .on_thread_exit(move |_| {
                exited.fetch_add(1, SeqCst);
            })
            .build()
            .unwrap();
        // The first task starts the pool's only thread; the clock may reap it while the second
        // task is submitted, which then starts another.
        pool.run(|_| ()).unwrap().join().unwrap();
        let clock = loom::thread::spawn(loom_hooks::fire_timeouts);
        assert_eq!(pool.run(|_| 7).unwrap().join().unwrap(), 7);
        clock.join().unwrap();
        pool.close(None).unwrap();
        let threads = pool.stats().threads_started as usize;
        drop(pool);
        assert_eq!(
            starts.load(SeqCst),
            threads,
            "threads started: {threads}, start hooks run: {}",
            starts.load(SeqCst)
        );
        assert_eq!(exits.load(SeqCst), threads);
        // Dropped: nothing but this model holds the counters.
        assert_eq!(
            Arc::strong_count(&starts),
            1,
            "the start hook was not dropped"
        );
        assert_eq!(
            Arc::strong_count(&exits),
            1,
            "the exit hook was not dropped"
        );
    });
}
