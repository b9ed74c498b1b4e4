//! Worker-side batches seen from the public API (docs/semantics.md P4, P5, P7, P8, P10, P11; the
//! scheduler's rules B1–B7 in src/pool/scheduler.rs).
//!
//! A worker that takes a plain task while others wait takes a share of the queue with it as its
//! batch and runs those tasks without going back to the queue. A user cannot see a batch, so
//! everything a user may do to a queued task must work the same on one: cancel it, give it a
//! timeout, let it panic, join it from another task, destroy the pool. Each test makes batches
//! form the same way — one worker, held by a gate task while the queue fills, so that the task it
//! takes next comes with up to 16 more — and then does one of those things to tasks that sit in
//! the batch.
#![cfg(not(loom))]

mod pool_common;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use pool_common::{join, settled_stats, Gate, WATCHDOG};
use sharedbuf::pool::{MaxQueue, TaskError, TaskHandle, TaskOptions, WorkerPool};

/// One worker that never idles out, with an unbounded queue (bounded pools take no batches).
fn one_worker_pool() -> WorkerPool {
    WorkerPool::builder()
        .max_threads(1)
        .idle_timeout(None)
        .max_queue(MaxQueue::Unbounded)
        .build()
        .unwrap()
}

/// Occupies the pool's only worker until the returned gate opens; returns once the task runs.
fn hold(pool: &WorkerPool) -> (Gate, TaskHandle<()>) {
    let gate = Gate::new();
    let g = gate.clone();
    let handle = pool.run(move |_| g.wait()).unwrap();
    gate.until_entered(1);
    (gate, handle)
}

/// A task that reports its start, then waits for the test's word: the worker takes it with a
/// batch behind it and stays in it while the test works on the batch. Returns the handle, a
/// receiver that yields once the task has started, and the sender that releases it.
fn head_task(pool: &WorkerPool) -> (TaskHandle<()>, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let handle = pool
        .run(move |_| {
            started_tx.send(()).unwrap();
            // Bounded, so a test that fails before releasing it does not hang the pool's drop.
            let _ = release_rx.recv_timeout(WATCHDOG);
        })
        .unwrap();
    (handle, started_rx, release_tx)
}

/// Plain tasks `0..n` that each append their number to the returned log.
fn numbered_tasks(pool: &WorkerPool, n: usize) -> (Arc<Mutex<Vec<usize>>>, Vec<TaskHandle<()>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let handles = (0..n)
        .map(|i| {
            let log = Arc::clone(&log);
            pool.run(move |_| log.lock().unwrap().push(i)).unwrap()
        })
        .collect();
    (log, handles)
}

/// `n` plain tasks that each count their run in the returned counter.
fn counted_tasks(pool: &WorkerPool, n: usize) -> (Arc<AtomicUsize>, Vec<TaskHandle<()>>) {
    let ran = Arc::new(AtomicUsize::new(0));
    let handles = (0..n)
        .map(|_| {
            let ran = Arc::clone(&ran);
            pool.run(move |_| {
                ran.fetch_add(1, SeqCst);
            })
            .unwrap()
        })
        .collect();
    (ran, handles)
}

#[test]
fn queued_tasks_run_once_each_in_submission_order_across_batches() {
    let pool = one_worker_pool();
    let (gate, held) = hold(&pool);
    let (log, handles) = numbered_tasks(&pool, 300);
    gate.open();
    for handle in handles {
        assert_eq!(join(handle), Ok(()));
    }
    assert_eq!(join(held), Ok(()));
    assert_eq!(*log.lock().unwrap(), (0..300).collect::<Vec<_>>());
    let stats = settled_stats(&pool);
    assert_eq!((stats.completed, stats.queued, stats.running), (301, 0, 0));
}

#[test]
fn cancelled_batch_tasks_never_run_and_the_others_run_once_in_order() {
    // P4: a task cancelled before it starts never runs, whether it waits in the queue or in
    // the worker's batch (B2: batch entries stay queued until claimed).
    let pool = one_worker_pool();
    let (gate, held) = hold(&pool);
    let (head, head_started, release_head) = head_task(&pool);
    let (log, handles) = numbered_tasks(&pool, 60);
    gate.open();
    head_started.recv().unwrap(); // the worker now holds `head` and a batch of the next tasks
    for (i, handle) in handles.iter().enumerate() {
        if i % 2 == 1 {
            assert!(handle.cancel(), "task {i} had not started and must cancel");
        }
    }
    release_head.send(()).unwrap();
    for (i, handle) in handles.into_iter().enumerate() {
        let expected = if i % 2 == 1 {
            Err(TaskError::Cancelled)
        } else {
            Ok(())
        };
        assert_eq!(join(handle), expected, "task {i}");
    }
    assert_eq!((join(head), join(held)), (Ok(()), Ok(())));
    let evens: Vec<usize> = (0..60).step_by(2).collect();
    assert_eq!(*log.lock().unwrap(), evens);
    let stats = settled_stats(&pool);
    assert_eq!((stats.completed, stats.cancelled), (32, 30), "{stats:?}");
    assert_eq!((stats.queued, stats.running), (0, 0));
}

#[test]
fn a_batch_tasks_timeout_counts_from_its_own_start_and_still_fires() {
    // P8: the timeout counts from the task's start, not from when its batch was formed, and
    // a batch task that overruns it is timed out like any other.
    let pool = one_worker_pool();
    let (gate, held) = hold(&pool);
    let head = pool
        .run(|_| std::thread::sleep(Duration::from_millis(400))) // time passing, not a wait for anything
        .unwrap();
    // Queued behind 400 ms of `head`, in its batch: a timeout counted from the batch would
    // have passed before it starts.
    let patient = pool
        .run_with(
            TaskOptions::new().timeout(Duration::from_millis(300)),
            |_| 7,
        )
        .unwrap();
    // Runs until its cancel flag is set, which only its timeout does.
    let overrun = pool
        .run_with(
            TaskOptions::new().timeout(Duration::from_millis(50)),
            |ctx| {
                let start = std::time::Instant::now();
                while !ctx.is_cancelled() {
                    assert!(start.elapsed() < WATCHDOG, "the timeout never fired");
                    std::thread::yield_now();
                }
                "saw the flag"
            },
        )
        .unwrap();
    let after = pool.run(|_| "after").unwrap();
    gate.open();
    assert_eq!(join(head), Ok(()));
    assert_eq!(join(patient), Ok(7));
    assert_eq!(join(overrun), Err(TaskError::TimedOut));
    assert_eq!(join(after), Ok("after"));
    assert_eq!(join(held), Ok(()));
    assert_eq!(settled_stats(&pool).timed_out, 1);
}

#[test]
fn a_panic_in_a_batch_fails_only_its_own_task() {
    // P5: a panicking task resolves `Panicked`; the rest of its batch runs, in order, once.
    let pool = one_worker_pool();
    let (gate, held) = hold(&pool);
    let log = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..40)
        .map(|i| {
            let log = Arc::clone(&log);
            pool.run(move |_| {
                if i % 7 == 3 {
                    panic!("task {i} panics");
                }
                log.lock().unwrap().push(i);
            })
            .unwrap()
        })
        .collect();
    gate.open();
    for (i, handle) in handles.into_iter().enumerate() {
        let expected = if i % 7 == 3 {
            Err(TaskError::Panicked(format!("task {i} panics")))
        } else {
            Ok(())
        };
        assert_eq!(join(handle), expected, "task {i}");
    }
    assert_eq!(join(held), Ok(()));
    let ran: Vec<usize> = (0..40).filter(|i| i % 7 != 3).collect();
    assert_eq!(*log.lock().unwrap(), ran);
    assert_eq!(
        join(pool.run(|_| "still serving").unwrap()),
        Ok("still serving")
    );
    let stats = settled_stats(&pool);
    assert_eq!((stats.completed, stats.failed), (36, 6), "{stats:?}");
}

#[test]
fn a_batch_task_joining_a_later_task_of_the_same_batch_runs_it_inline() {
    // P10: the one worker runs `first`, whose batch holds `second`; `first` joins `second`.
    // Without the inline run the worker would wait for itself (the watchdog fails the test).
    let pool = one_worker_pool();
    let (gate, held) = hold(&pool);
    let (send_handle, receive_handle) = mpsc::channel::<TaskHandle<&'static str>>();
    let first = pool
        .run(move |_| join(receive_handle.recv().unwrap()))
        .unwrap();
    let second = pool.run(|_| "second").unwrap();
    let third = pool.run(|_| "third").unwrap();
    send_handle.send(second).unwrap();
    gate.open();
    assert_eq!(join(first), Ok(Ok("second")));
    assert_eq!(join(third), Ok("third"));
    assert_eq!(join(held), Ok(()));
    assert_eq!(settled_stats(&pool).completed, 4);
}

#[test]
fn destroy_reaches_the_tasks_of_a_batch_at_once_and_none_of_them_runs() {
    // P7, B5: `destroy` resolves every task that has not started `PoolDestroyed` at once,
    // including those in the running worker's batch, and the worker starts none of them.
    let pool = one_worker_pool();
    let (gate, held) = hold(&pool);
    let (head, head_started, release_head) = head_task(&pool);
    let (ran, handles) = counted_tasks(&pool, 40);
    gate.open();
    head_started.recv().unwrap();
    pool.destroy();
    // Joined while `head` still runs: a batch task that destroy missed would wait for it.
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(join(handle), Err(TaskError::PoolDestroyed), "task {i}");
    }
    assert_eq!(join(head), Err(TaskError::PoolDestroyed));
    release_head.send(()).unwrap();
    assert_eq!(join(held), Ok(()));
    drop(pool); // joins the worker: after this nothing more can run
    assert_eq!(ran.load(SeqCst), 0, "a destroyed task ran");
}

#[test]
fn close_during_a_batch_lets_the_batch_and_the_queue_finish_in_order() {
    // P7: `close` stops accepting and lets every queued task run, those in a batch included.
    let pool = Arc::new(one_worker_pool());
    let (gate, held) = hold(&pool);
    let (head, head_started, release_head) = head_task(&pool);
    let (log, handles) = numbered_tasks(&pool, 50);
    gate.open();
    head_started.recv().unwrap();
    let closer = {
        let pool = Arc::clone(&pool);
        std::thread::spawn(move || pool.close(None))
    };
    pool_common::eventually("the pool stops accepting", || !pool.is_open());
    assert!(pool.run(|_| ()).is_err(), "a closed pool accepted a task");
    release_head.send(()).unwrap();
    assert_eq!(closer.join().unwrap(), Ok(()));
    for handle in handles {
        assert_eq!(join(handle), Ok(()));
    }
    assert_eq!((join(head), join(held)), (Ok(()), Ok(())));
    assert_eq!(*log.lock().unwrap(), (0..50).collect::<Vec<_>>());
}

#[test]
fn a_batch_task_that_destroys_its_own_pool_runs_none_of_the_rest() {
    // P7 from inside: the task the worker runs destroys the pool; the tasks in its batch
    // behind it resolve `PoolDestroyed` and never start (B5: the worker's claims fail).
    let (exited_tx, exited) = mpsc::channel();
    let exited_tx = Mutex::new(exited_tx);
    let pool = Arc::new(
        WorkerPool::builder()
            .max_threads(1)
            .idle_timeout(None)
            .max_queue(MaxQueue::Unbounded)
            .on_thread_exit(move |_| exited_tx.lock().unwrap().send(()).unwrap())
            .build()
            .unwrap(),
    );
    let (gate, held) = hold(&pool);
    let inner = Arc::clone(&pool);
    let destroyer = pool
        .run(move |ctx| {
            inner.destroy();
            ctx.is_cancelled() // destroy sets the running task's cancel flag
        })
        .unwrap();
    let (ran, handles) = counted_tasks(&pool, 30);
    gate.open();
    assert_eq!(join(held), Ok(()));
    // Its own value is dropped: the pool resolved it `PoolDestroyed` while it ran.
    assert_eq!(join(destroyer), Err(TaskError::PoolDestroyed));
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(join(handle), Err(TaskError::PoolDestroyed), "task {i}");
    }
    // Once the worker has exited, nothing more can run.
    exited
        .recv_timeout(WATCHDOG)
        .expect("the worker never exited after destroy");
    assert_eq!(ran.load(SeqCst), 0, "a destroyed task ran");
}
