//! `atomics::wait_async` (docs/semantics.md A12), on the test's own tiny executor
//! (`common::block_on`, a thread-parking waker) and on tokio.
//!
//! A pending `wait_async` is enqueued before the call returns, so FIFO order among async
//! waiters is established exactly by call order; blocking waiters join the same list through
//! `common::spawn_blocked_waiter` (enqueued once their thread is asleep).

#![cfg(not(loom))]
#![cfg(target_os = "linux")]

mod common;

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    block_on, panicking_waker, poll_once, recv_within, report_result, spawn_blocked,
    spawn_blocked_waiter,
};
use sharedbuf::atomics::{self, WaitAsync, WaitFuture};
use sharedbuf::{BigInt64Array, Error, Int32Array, SharedBuffer, WaitResult};

fn int32s(len: usize) -> Int32Array {
    Int32Array::new(&SharedBuffer::new(4 * len).unwrap()).unwrap()
}

/// The future of a `wait_async` that must be pending.
fn pending(result: Result<WaitAsync, Error>) -> WaitFuture {
    match result {
        Ok(WaitAsync::Pending(future)) => future,
        other => panic!("expected a pending wait, got {other:?}"),
    }
}

/// A12: the future is `Send + Unpin` (and `'static`: it owns what it needs), a
/// `Future<Output = WaitResult>`.
#[test]
fn a12_future_is_send_unpin_static() {
    let _serial = crate::common::serial();
    fn assert_bounds<F: Future<Output = WaitResult> + Send + Unpin + 'static>() {}
    assert_bounds::<WaitFuture>();
}

/// A12: a mismatch answers `Ready(NotEqual)` at once and enqueues nothing.
#[test]
fn a12_not_equal_is_ready() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    atomics::store(&view, 0, 1).unwrap();
    for timeout in [None, Some(Duration::ZERO), Some(Duration::from_secs(60))] {
        assert!(matches!(
            atomics::wait_async(&view, 0, 2, timeout),
            Ok(WaitAsync::Ready(WaitResult::NotEqual))
        ));
    }
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
}

/// A12: a zero timeout with a matching value answers `Ready(TimedOut)` and leaves nothing
/// in the list; `into_future` of a ready answer resolves to it.
#[test]
fn a12_zero_timeout_is_ready_timed_out() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    let answer = atomics::wait_async(&view, 0, 0, Some(Duration::ZERO)).unwrap();
    assert!(matches!(answer, WaitAsync::Ready(WaitResult::TimedOut)));
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
    assert_eq!(block_on(answer.into_future()).0, WaitResult::TimedOut);
}

/// A4: out of range is `Err`, not a future.
#[test]
fn a12_out_of_range_is_err() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    assert_eq!(
        atomics::wait_async(&view, 1, 0, None).unwrap_err(),
        Error::IndexOutOfRange { index: 1, len: 1 }
    );
}

/// A12: a pending future resolves to `Ok` when notified, whether the notify comes before the
/// first poll or while the executor is parked on it (from another thread).
#[test]
fn a12_pending_resolves_ok_on_notify() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    // Notified before the first poll: counted, and the first poll is ready.
    let mut future = pending(atomics::wait_async(&view, 0, 0, None));
    assert_eq!(atomics::notify(&view, 0, None), Ok(1));
    assert_eq!(poll_once(&mut future), Poll::Ready(WaitResult::Ok));

    // Notified while the executor thread is parked in `block_on`.
    let future = pending(atomics::wait_async(&view, 0, 0, None));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let executor = thread::spawn(move || {
        tid_tx.send(common::current_tid()).unwrap();
        block_on(future)
    });
    common::wait_until_asleep(tid_rx.recv().unwrap());
    assert_eq!(atomics::notify(&view, 0, None), Ok(1));
    let (result, polls) = executor.join().unwrap();
    assert_eq!(result, WaitResult::Ok);
    assert!(polls >= 2, "resolved before the notify: {polls} poll(s)");
}

/// A12: a pending future with a timeout that nobody notifies resolves to `TimedOut` after at
/// least the timeout, and has then left the list.
#[test]
fn a12_pending_times_out() {
    let _serial = crate::common::serial();
    let timeout = Duration::from_millis(50);
    let view = BigInt64Array::new(&SharedBuffer::new(8).unwrap()).unwrap();
    let start = Instant::now();
    let future = pending(atomics::wait_async(&view, 0, 0, Some(timeout)));
    assert_eq!(block_on(future).0, WaitResult::TimedOut);
    assert!(start.elapsed() >= timeout, "after {:?}", start.elapsed());
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
}

/// A12 (with A9): async and blocking waiters share one FIFO list and both count in notify.
#[test]
fn a12_async_and_blocking_waiters_share_one_fifo_list() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    let mut first = pending(atomics::wait_async(&view, 0, 0, None));
    let second = spawn_blocked_waiter(&view, 0, 0, None);
    let mut third = pending(atomics::wait_async(&view, 0, 0, None));
    let fourth = spawn_blocked_waiter(&view, 0, 0, None);

    assert_eq!(atomics::notify(&view, 0, Some(1)), Ok(1));
    assert_eq!(poll_once(&mut first), Poll::Ready(WaitResult::Ok));
    assert_eq!(poll_once(&mut third), Poll::Pending);
    assert!(!second.handle.is_finished());

    assert_eq!(atomics::notify(&view, 0, Some(1)), Ok(1));
    assert_eq!(second.join(), Ok(WaitResult::Ok));
    assert_eq!(poll_once(&mut third), Poll::Pending);
    assert!(!fourth.handle.is_finished());

    assert_eq!(
        atomics::notify(&view, 0, None),
        Ok(2),
        "both kinds are counted"
    );
    assert_eq!(poll_once(&mut third), Poll::Ready(WaitResult::Ok));
    assert_eq!(fourth.join(), Ok(WaitResult::Ok));
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
}

/// A12: dropping a pending future removes its waiter: a later notify does not count it, and
/// the waiter queued behind it is the one woken.
#[test]
fn a12_dropped_future_is_not_counted() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    let dropped = pending(atomics::wait_async(&view, 0, 0, None));
    drop(dropped);
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));

    let dropped = pending(atomics::wait_async(
        &view,
        0,
        0,
        Some(Duration::from_secs(60)),
    ));
    let mut kept = pending(atomics::wait_async(&view, 0, 0, None));
    drop(dropped);
    assert_eq!(atomics::notify(&view, 0, Some(1)), Ok(1));
    assert_eq!(poll_once(&mut kept), Poll::Ready(WaitResult::Ok));
    assert_eq!(atomics::notify(&view, 0, None), Ok(0));
}

/// A12: the future can move to another thread and resolve there (it is `Send`), and keeps
/// the memory alive after every view and buffer handle is gone.
#[test]
fn a12_future_outlives_its_view() {
    let _serial = crate::common::serial();
    let buf = SharedBuffer::new(4).unwrap();
    let view = Int32Array::new(&buf).unwrap();
    let future = pending(atomics::wait_async(
        &view,
        0,
        0,
        Some(Duration::from_millis(20)),
    ));
    drop((view, buf));
    let resolved = thread::spawn(move || block_on(future).0).join().unwrap();
    assert_eq!(resolved, WaitResult::TimedOut);
}

mod tokio_runtime {
    //! The same future on tokio: no tokio-specific code in the crate, just a stored `Waker`.

    use super::*;

    /// A12 on a current-thread runtime: resolved by a notify from a std thread.
    #[tokio::test]
    // The guard only orders this binary's tests (`common::serial`); no other task here takes it.
    #[allow(clippy::await_holding_lock)]
    async fn a12_tokio_pending_resolves_ok_on_notify() {
        let _serial = crate::common::serial();
        let view = int32s(1);
        let future = pending(atomics::wait_async(&view, 0, 0, None));
        let notifier = thread::spawn(move || atomics::notify(&view, 0, None));
        assert_eq!(future.await, WaitResult::Ok);
        assert_eq!(notifier.join().unwrap(), Ok(1));
    }

    /// A12 on tokio: a timeout resolves to `TimedOut` after at least the timeout.
    #[tokio::test]
    // The guard only orders this binary's tests (`common::serial`); no other task here takes it.
    #[allow(clippy::await_holding_lock)]
    async fn a12_tokio_pending_times_out() {
        let _serial = crate::common::serial();
        let view = int32s(1);
        let timeout = Duration::from_millis(30);
        let start = Instant::now();
        let future = pending(atomics::wait_async(&view, 0, 0, Some(timeout)));
        assert_eq!(future.await, WaitResult::TimedOut);
        assert!(start.elapsed() >= timeout);
        assert_eq!(atomics::notify(&view, 0, None), Ok(0));
    }

    /// A12 + A9 on a multi-thread runtime: tasks spawned with futures enqueued in order wake
    /// in that order, one per `notify(Some(1))`; each notify counts exactly one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // The guard only orders this binary's tests (`common::serial`); no other task here takes it.
    #[allow(clippy::await_holding_lock)]
    async fn a12_tokio_tasks_wake_in_fifo_order() {
        let _serial = crate::common::serial();
        const TASKS: usize = 16;
        let view = int32s(1);
        // A std channel: the test body runs on the test thread, the tasks on the two workers,
        // so blocking on `recv` here stalls no task.
        let (woken_tx, woken_rx) = std::sync::mpsc::channel();
        let tasks: Vec<_> = (0..TASKS)
            .map(|k| {
                let future = pending(atomics::wait_async(&view, 0, 0, None));
                let woken_tx = woken_tx.clone();
                tokio::spawn(async move {
                    let result = future.await;
                    woken_tx.send(k).unwrap();
                    result
                })
            })
            .collect();
        for k in 0..TASKS {
            assert_eq!(atomics::notify(&view, 0, Some(1)), Ok(1));
            assert_eq!(woken_rx.recv(), Ok(k));
        }
        assert_eq!(atomics::notify(&view, 0, None), Ok(0));
        for task in tasks {
            assert_eq!(task.await.unwrap(), WaitResult::Ok);
        }
    }

    /// A12 on tokio: a future dropped by `tokio::time::timeout` (cancellation) leaves the list.
    #[tokio::test]
    // The guard only orders this binary's tests (`common::serial`); no other task here takes it.
    #[allow(clippy::await_holding_lock)]
    async fn a12_tokio_cancelled_future_is_not_counted() {
        let _serial = crate::common::serial();
        let view = int32s(1);
        let future = pending(atomics::wait_async(&view, 0, 0, None));
        let outcome = tokio::time::timeout(Duration::from_millis(10), future).await;
        assert!(
            outcome.is_err(),
            "nobody notified, yet it resolved: {outcome:?}"
        );
        assert_eq!(atomics::notify(&view, 0, None), Ok(0));
    }
}

/// A12: a resolved future keeps answering the same result if polled again (no hang), and the
/// notify that resolved it counted it once.
#[test]
fn a12_resolved_future_repeats_its_result() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    let mut future = pending(atomics::wait_async(&view, 0, 0, None));
    assert!(poll_once(&mut future).is_pending());
    assert_eq!(atomics::notify(&view, 0, None).unwrap(), 1);
    assert_eq!(poll_once(&mut future), Poll::Ready(WaitResult::Ok));
    assert_eq!(poll_once(&mut future), Poll::Ready(WaitResult::Ok));
    assert_eq!(atomics::notify(&view, 0, None).unwrap(), 0);
}

/// Records that it was woken.
struct FlagWaker(AtomicBool);

impl Wake for FlagWaker {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Fault: a `Waker` that panics inside `notify` stranded every other waiter of the same wake
/// list (counted and marked notified, never unparked or woken). Decided: every waiter `notify`
/// takes is woken whatever one waker does; the panic may propagate from `notify` afterwards.
/// Checks A8 (both kinds counted, an immediate second notify counts 0) and A12 (async and
/// blocking waiters share the list) around a panicking waker: the blocked thread queued behind
/// it returns `Ok`, and so does an async waiter queued behind both.
// docs/semantics.md A8, A12
#[test]
fn a8_a12_a_panicking_waker_does_not_strand_the_other_waiters() {
    let _serial = crate::common::serial();
    let view = int32s(1);
    let mut panicky = pending(atomics::wait_async(&view, 0, 0, None));
    let (woken_tx, woken_rx) = mpsc::channel();
    let waker = panicking_waker(woken_tx);
    assert!(Pin::new(&mut panicky)
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    drop(waker); // the future holds its own clone

    let (results_tx, results_rx) = mpsc::channel();
    let blocked = spawn_blocked(&view, 0, 0, None, report_result(&results_tx));
    let mut behind = pending(atomics::wait_async(&view, 0, 0, None));
    let flag = Arc::new(FlagWaker(AtomicBool::new(false)));
    let flag_waker = Waker::from(Arc::clone(&flag));
    assert!(Pin::new(&mut behind)
        .poll(&mut Context::from_waker(&flag_waker))
        .is_pending());

    let notified = panic::catch_unwind(AssertUnwindSafe(|| atomics::notify(&view, 0, None)));
    recv_within(&woken_rx, "calling the panicking waker");
    if let Ok(count) = notified {
        assert_eq!(count, Ok(3), "all three waiters are counted");
    }
    assert_eq!(
        recv_within(
            &results_rx,
            "the blocked wait queued behind the panicking waker"
        ),
        Ok(WaitResult::Ok)
    );
    assert!(
        flag.0.load(Ordering::SeqCst),
        "the async waiter behind the panicking one was not woken"
    );
    assert_eq!(poll_once(&mut behind), Poll::Ready(WaitResult::Ok));
    assert_eq!(poll_once(&mut panicky), Poll::Ready(WaitResult::Ok));
    assert_eq!(
        atomics::notify(&view, 0, None),
        Ok(0),
        "every waiter left the list with the first notify"
    );
    assert_eq!(blocked.join(), Ok(WaitResult::Ok));
}

/// Shuffles `items` with a fixed xorshift sequence (reproducible runs, no extra dependency).
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// Fault: cancelling a pending async waiter cost a scan of its whole list (dropping 200,000
/// futures newest-first took seconds). Speed belongs in the benches; this checks that
/// cancellation at scale stays exact. 20,000 pending futures on four addresses are dropped,
/// the newest half newest-first, then a quarter in a shuffled order with `notify(Some(k))`
/// calls in between: each notify counts exactly the waiters still pending and wakes the oldest
/// (A8, A9), dropped ones are never counted (A12), and the survivors are counted exactly once.
// docs/semantics.md A8, A9, A12
#[test]
fn a12_thousands_of_dropped_futures_leave_exact_notify_counts() {
    let _serial = crate::common::serial();
    const FUTURES: usize = 20_000;
    const ADDRESSES: usize = 4;
    let view = int32s(ADDRESSES);
    let mut futures: Vec<Option<WaitFuture>> = (0..FUTURES)
        .map(|i| Some(pending(atomics::wait_async(&view, i % ADDRESSES, 0, None))))
        .collect();
    // What the test expects to be pending on each address, oldest first.
    let mut queued: Vec<VecDeque<usize>> = vec![VecDeque::new(); ADDRESSES];
    for i in 0..FUTURES {
        queued[i % ADDRESSES].push_back(i);
    }

    for i in (FUTURES / 2..FUTURES).rev() {
        futures[i] = None;
        assert_eq!(queued[i % ADDRESSES].pop_back(), Some(i));
    }

    let mut order: Vec<usize> = (0..FUTURES / 2).collect();
    shuffle(&mut order, 0x9E37_79B9_7F4A_7C15);
    for (n, &i) in order[..FUTURES / 4].iter().enumerate() {
        futures[i] = None;
        let address = i % ADDRESSES;
        if let Some(position) = queued[address].iter().position(|&j| j == i) {
            queued[address].remove(position);
        }
        if n % 250 == 249 {
            let address = (n / 250) % ADDRESSES;
            let count = 1 + n % 7;
            let expected = count.min(queued[address].len());
            assert_eq!(
                atomics::notify(&view, address, Some(count)),
                Ok(expected),
                "notify(Some({count})) on address {address} after {} drops",
                n + 1
            );
            for _ in 0..expected {
                let woken = queued[address].pop_front().unwrap();
                let future = futures[woken].as_mut().unwrap();
                assert_eq!(poll_once(future), Poll::Ready(WaitResult::Ok), "{woken}");
            }
            if let Some(&next) = queued[address].front() {
                let future = futures[next].as_mut().unwrap();
                assert_eq!(poll_once(future), Poll::Pending, "{next} is next in line");
            }
        }
    }

    for (address, survivors) in queued.iter().enumerate() {
        assert_eq!(
            atomics::notify(&view, address, None),
            Ok(survivors.len()),
            "the survivors on address {address}"
        );
        for &i in survivors {
            let future = futures[i].as_mut().unwrap();
            assert_eq!(poll_once(future), Poll::Ready(WaitResult::Ok), "{i}");
        }
        assert_eq!(atomics::notify(&view, address, None), Ok(0));
    }
}
