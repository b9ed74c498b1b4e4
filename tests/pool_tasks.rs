//! docs/semantics.md P3, P5, P6, P11: running tasks, their handles, what a task sees of itself,
//! panics, priorities, progress, and the handle as a `Future`.

mod pool_common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use pool_common::{join, Gate, WATCHDOG};
use sharedbuf::pool::{MaxQueue, Priority, TaskError, TaskOptions, WorkerPool};
use sharedbuf::{atomics, Int32Array, SharedBuffer};

/// Tasks per submitter in the panic storm (half of them panic); fewer under Miri, which
/// interprets them about a thousand times slower.
const STORM: u64 = if cfg!(miri) { 20 } else { 2_500 };
/// Tasks awaited on the tokio runtime.
const AWAITED: u64 = if cfg!(miri) { 50 } else { 10_000 };
/// Tasks each of four threads submits and joins in turn.
const PER_SUBMITTER: u64 = if cfg!(miri) { 20 } else { 1_000 };

fn pool(threads: usize) -> WorkerPool {
    WorkerPool::builder()
        .min_threads(threads)
        .max_threads(threads)
        .max_queue(MaxQueue::Unbounded)
        .build()
        .unwrap()
}

#[test]
fn a_task_returns_its_value_through_its_handle() {
    let pool = pool(2);
    let handles: Vec<_> = (0..100u64)
        .map(|i| pool.run(move |_| i * i).unwrap())
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(join(handle), Ok((i * i) as u64));
    }
}

#[test]
fn moving_a_vec_into_a_task_does_not_copy_it_and_a_shared_buffer_is_shared() {
    let pool = pool(1);
    let bytes = vec![7u8; 1 << 20];
    let address = bytes.as_ptr() as usize;
    let buffer = SharedBuffer::new(4).unwrap();
    let view = Int32Array::new(&buffer).unwrap();
    let task_view = view.clone();
    let handle = pool
        .run(move |_| {
            atomics::store(&task_view, 0, 42).unwrap();
            (bytes.as_ptr() as usize, bytes) // Piscina's transferList: the same heap block
        })
        .unwrap();
    let (seen, bytes) = join(handle).unwrap();
    assert_eq!(seen, address);
    assert_eq!(bytes.as_ptr() as usize, address);
    assert_eq!(atomics::load(&view, 0).unwrap(), 42);
}

#[test]
fn a_task_sees_its_worker_index_and_thread_id_and_the_thread_is_named() {
    let pool = WorkerPool::builder()
        .min_threads(3)
        .max_threads(3)
        .name("resize")
        .build()
        .unwrap();
    let seen = pool
        .broadcast(|ctx| {
            let name = std::thread::current().name().map(str::to_owned);
            (ctx.worker_index(), ctx.thread_id(), name)
        })
        .unwrap();
    let mut ids = HashSet::new();
    for (index, result) in seen.into_iter().enumerate() {
        let (worker, thread_id, name) = result.unwrap();
        assert_eq!(worker, Some(index));
        assert_ne!(thread_id, 0);
        assert!(ids.insert(thread_id), "thread ids are unique");
        assert_eq!(name.as_deref(), Some(format!("resize-{index}").as_str()));
    }
}

#[test]
fn progress_reported_by_a_running_task_is_read_from_its_handle() {
    let pool = pool(1);
    let (blocker, reported, resume) = (Gate::new(), Gate::new(), Gate::new());
    let b = blocker.clone();
    let first = pool.run(move |_| b.wait()).unwrap();
    let (r, s) = (reported.clone(), resume.clone());
    let handle = pool
        .run(move |ctx| {
            ctx.progress(25);
            r.open();
            s.wait();
            ctx.progress(100);
        })
        .unwrap();
    assert_eq!(handle.progress(), None); // queued behind `first`: nothing reported yet
    blocker.open();
    reported.wait(); // the task has reported 25 and waits
    assert_eq!(handle.progress(), Some(25));
    resume.open();
    join(first).unwrap();
    let handle = loop {
        if handle.is_finished() {
            break handle;
        }
        std::thread::yield_now();
    };
    assert_eq!(handle.progress(), Some(100));
    join(handle).unwrap();
}

#[test]
fn a_panicking_task_fails_alone_and_the_pool_is_unharmed() {
    let pool = pool(2);
    let before = pool.stats().threads_started;
    let crash = pool.run(|_| -> u32 { panic!("bad input {}", 7) }).unwrap();
    let fine = pool.run(|_| 5).unwrap();
    assert_eq!(join(crash), Err(TaskError::Panicked("bad input 7".into())));
    assert_eq!(join(fine), Ok(5));
    let stats = pool_common::settled_stats(&pool);
    assert_eq!((stats.failed, stats.completed), (1, 1));
    // The panic was caught on the worker: no thread died or had to be replaced.
    assert_eq!(stats.threads_started, before);
    assert_eq!(join(pool.run(|_| 6).unwrap()), Ok(6));
}

#[test]
fn a_panic_storm_from_several_submitters_leaves_every_other_task_intact() {
    pool_common::quiet_panics("storm");
    let pool = Arc::new(pool(2));
    let submitters: Vec<_> = (0..4)
        .map(|s| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                let handles: Vec<_> = (0..STORM)
                    .map(|i| {
                        pool.run(move |_| {
                            if i % 2 == 0 {
                                panic!("storm {s}-{i}");
                            }
                            i
                        })
                        .unwrap()
                    })
                    .collect();
                for (i, handle) in (0u64..).zip(handles) {
                    match join(handle) {
                        Ok(value) => assert_eq!(value, i),
                        Err(TaskError::Panicked(message)) => {
                            assert_eq!(message, format!("storm {s}-{i}"))
                        }
                        Err(other) => panic!("{other:?}"),
                    }
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.join().unwrap();
    }
    // A worker counts a task just after its handle resolves; the counts add up once nothing
    // runs (stats.rs).
    pool_common::eventually("the last task is counted", || pool.stats().running == 0);
    let stats = pool.stats();
    assert_eq!((stats.failed, stats.completed), (2 * STORM, 2 * STORM));
    assert_eq!(stats.threads_started, 2);
}

/// A task that panics with a payload whose own `Drop` panics (as the worker runtime's fault 3):
/// the handle still resolves with `Panicked`, and the worker keeps serving.
#[test]
fn a_panic_payload_whose_drop_panics_fails_the_task_alone() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("the panic payload's Drop panicked");
        }
    }
    let pool = pool(1);
    let crash = pool
        .run(|_| -> u32 { std::panic::panic_any(Bomb) })
        .unwrap();
    assert_eq!(
        join(crash),
        Err(TaskError::Panicked(
            "a panic with a non-string payload".into()
        ))
    );
    assert_eq!(join(pool.run(|_| 2).unwrap()), Ok(2));
    assert_eq!(pool.stats().threads_started, 1);
}

#[test]
fn a_panicking_drop_of_an_unwanted_result_does_not_harm_the_worker() {
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("a result's Drop panicked");
        }
    }
    let pool = pool(1);
    let gate = Gate::new();
    let g = gate.clone();
    let handle = pool
        .run(move |_| {
            g.wait();
            Bomb
        })
        .unwrap();
    drop(handle); // detached: the worker drops the result
    gate.open();
    assert_eq!(join(pool.run(|_| 1).unwrap()), Ok(1));
    assert_eq!(pool.stats().threads_started, 1);
}

// docs/semantics.md P11
#[test]
fn higher_priorities_start_first_and_each_level_is_fifo() {
    let pool = pool(1);
    let gate = Gate::new();
    let g = gate.clone();
    let blocker = pool.run(move |_| g.wait()).unwrap();
    gate.until_entered(1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut handles = Vec::new();
    for (label, priority) in [
        ("low-1", Priority::Low),
        ("normal-1", Priority::Normal),
        ("high-1", Priority::High),
        ("low-2", Priority::Low),
        ("high-2", Priority::High),
        ("normal-2", Priority::Normal),
    ] {
        let order = Arc::clone(&order);
        let options = TaskOptions::new().priority(priority);
        handles.push(
            pool.run_with(options, move |_| order.lock().unwrap().push(label))
                .unwrap(),
        );
    }
    gate.open();
    join(blocker).unwrap();
    for handle in handles {
        join(handle).unwrap();
    }
    assert_eq!(
        *order.lock().unwrap(),
        ["high-1", "high-2", "normal-1", "normal-2", "low-1", "low-2"]
    );
}

#[test]
fn try_join_is_nonblocking_and_join_timeout_gives_the_handle_back() {
    let pool = pool(1);
    let gate = Gate::new();
    let g = gate.clone();
    let handle = pool.run(move |_| g.wait()).unwrap();
    assert!(!handle.is_finished());
    let handle = handle.try_join().unwrap_err();
    let handle = handle.join_timeout(Duration::ZERO).unwrap_err();
    gate.open();
    assert_eq!(join(handle), Ok(()));
}

#[test]
fn tokio_awaits_ten_thousand_handles() {
    let pool = Arc::new(
        WorkerPool::builder()
            .max_threads(2)
            .max_queue(MaxQueue::Unbounded)
            .build()
            .unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let total = runtime.block_on(async {
        let handles: Vec<_> = (0..AWAITED)
            .map(|i| pool.run(move |_| i).unwrap())
            .collect();
        let tasks: Vec<_> = handles
            .into_iter()
            .map(|handle| tokio::spawn(async move { handle.await.unwrap() }))
            .collect();
        let mut total = 0;
        for task in tasks {
            total += tokio::time::timeout(WATCHDOG, task)
                .await
                .expect("hang")
                .unwrap();
        }
        total
    });
    assert_eq!(total, (0..AWAITED).sum::<u64>());
}

#[test]
fn a_handle_awaited_on_a_current_thread_runtime_wakes_when_the_task_ends() {
    let pool = pool(1);
    let gate = Gate::new();
    let g = gate.clone();
    let handle = pool
        .run(move |_| {
            g.wait();
            9
        })
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let opener = std::thread::spawn(move || gate.open());
    let value = runtime.block_on(async { tokio::time::timeout(WATCHDOG, handle).await });
    opener.join().unwrap();
    assert_eq!(value.expect("hang"), Ok(9));
}

#[test]
fn a_panicking_waker_does_not_harm_the_worker_that_resolves_the_task() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Wake, Waker};
    struct PanickingWaker(AtomicUsize);
    impl Wake for PanickingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
            panic!("a waker panicked");
        }
    }
    let pool = pool(1);
    let gate = Gate::new();
    let g = gate.clone();
    let mut handle = pool.run(move |_| g.wait()).unwrap();
    let waker_state = Arc::new(PanickingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&waker_state));
    assert!(Pin::new(&mut handle)
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    gate.open();
    assert_eq!(join(pool.run(|_| 3).unwrap()), Ok(3)); // the worker went on
    assert_eq!(waker_state.0.load(SeqCst), 1);
    assert!(handle.is_finished());
}

#[test]
fn handles_resolve_even_when_the_caller_keeps_submitting_from_many_threads() {
    let pool = Arc::new(pool(2));
    let (sender, receiver) = mpsc::channel();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (pool, sender) = (Arc::clone(&pool), sender.clone());
            std::thread::spawn(move || {
                for i in 0..PER_SUBMITTER {
                    sender
                        .send(join(pool.run(move |_| i).unwrap()).unwrap())
                        .unwrap();
                }
            })
        })
        .collect();
    drop(sender);
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(
        receiver.iter().sum::<u64>(),
        4 * (0..PER_SUBMITTER).sum::<u64>()
    );
}
