//! A second hostile-user pass over the foundation: buffers (docs/semantics.md B1–B6), views
//! (V2–V5), atomics and `wait_async` (A4, A6, A8, A12), ports (W4, W6) and workers (W1, W3).
//! Each test here is a case an earlier version got wrong (its doc says how) or a probe of an
//! edge the other test files do not reach.
#![cfg(not(loom))]
#![cfg(target_os = "linux")]

mod common;

use std::future::Future;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

use common::within_watchdog;
use sharedbuf::atomics::{self, WaitAsync};
use sharedbuf::worker::Worker;
use sharedbuf::{
    DataView, Error, Int32Array, MessageChannel, SharedBuffer, Uint8Array, WaitResult,
};

// ---------------------------------------------------------------------------------------------
// Probes of edges (no fault found; kept as regression guards).

/// V4: element ranges at and around `usize::MAX`, inverted, and empty at the end are refused
/// (or accepted) without a panic, on fixed and length-tracking views.
#[test]
fn v4_element_ranges_near_usize_max_are_errors_not_panics() {
    for buf in [
        SharedBuffer::new(16).unwrap(),
        SharedBuffer::growable(16, 64).unwrap(),
    ] {
        let view = Int32Array::new(&buf).unwrap();
        assert!(view.subarray(usize::MAX..).is_err());
        assert!(view.subarray(..=usize::MAX).is_err());
        assert!(view
            .subarray((Bound::Excluded(usize::MAX), Bound::Unbounded))
            .is_err());
        assert!(view
            .subarray((Bound::Excluded(3), Bound::Excluded(4)))
            .unwrap()
            .is_empty());
        assert!(view.subarray(4..4).unwrap().is_empty());
        assert!(view.subarray(5..5).is_err());
        assert!(view.fill_range(usize::MAX - 1..usize::MAX, 1).is_err());
        assert!(view.fill_range(3..=usize::MAX, 1).is_err());
        assert!(view.copy_from_slice(usize::MAX, &[1]).is_err());
        assert!(view.copy_from_slice(4, &[]).is_ok());
        assert!(view.copy_to_slice(usize::MAX, &mut []).is_err());
        assert_eq!(view.get(usize::MAX), None);
        assert!(view.set(usize::MAX, 1).is_err());
        assert!(atomics::load(&view, usize::MAX).is_err());
        assert!(buf.slice(usize::MAX..).is_err());
        assert!(buf.slice(..=usize::MAX).is_err());
        assert!(Int32Array::with_range(&buf, usize::MAX & !3, None).is_err());
        assert!(Int32Array::with_range(&buf, 0, Some(usize::MAX)).is_err());
        assert!(Int32Array::with_range(&buf, 16, Some(usize::MAX / 4)).is_err());
        assert_eq!(view.to_vec(), vec![0; 4]);
    }
}

/// V5: `DataView` accesses whose offset plus size overflow are `Err(RangeOutOfBounds)`.
#[test]
fn v5_data_view_offsets_near_usize_max_are_errors_not_panics() {
    for buf in [
        SharedBuffer::new(16).unwrap(),
        SharedBuffer::growable(16, 64).unwrap(),
    ] {
        let dv = DataView::with_range(&buf, 3, None).unwrap();
        for offset in [usize::MAX, usize::MAX - 1, usize::MAX - 7, 13, 12] {
            assert!(matches!(
                dv.get_float64(offset, true),
                Err(Error::RangeOutOfBounds { .. })
            ));
            assert!(dv.set_big_uint64(offset, 1, false).is_err());
        }
        assert!(dv.get_uint8(12).is_ok());
        assert!(DataView::with_range(&buf, usize::MAX, Some(1)).is_err());
        assert!(DataView::with_range(&buf, 1, Some(usize::MAX)).is_err());
        assert!(DataView::with_range(&buf, 17, None).is_err());
        assert_eq!(
            DataView::with_range(&buf, 16, None).unwrap().byte_length(),
            0
        );
    }
}

/// B2, B3: grow to exactly a maximum that is not a multiple of the page size, then past it.
#[test]
fn b3_grow_to_an_odd_maximum_then_past_it() {
    let buf = SharedBuffer::growable(1, 4097).unwrap();
    buf.grow(4097).unwrap();
    let bytes = Uint8Array::new(&buf).unwrap();
    bytes.set(4096, 7).unwrap();
    assert_eq!(bytes.get(4096), Some(7));
    assert!(matches!(buf.grow(4098), Err(Error::ExceedsMax { .. })));
    assert!(matches!(
        buf.grow(usize::MAX),
        Err(Error::ExceedsMax { .. })
    ));
    assert_eq!(buf.byte_length(), 4097);
    assert!(matches!(
        SharedBuffer::growable(0, usize::MAX),
        Err(Error::AllocationFailed { .. })
    ));
    assert!(matches!(
        SharedBuffer::new(usize::MAX),
        Err(Error::AllocationFailed { .. })
    ));
}

/// A6, A8, A12: extreme counts and timeouts.
#[test]
fn a8_a12_extreme_counts_and_timeouts() {
    let view = Int32Array::new(&SharedBuffer::new(8).unwrap()).unwrap();
    assert_eq!(atomics::notify(&view, 0, Some(usize::MAX)), Ok(0));
    assert_eq!(atomics::notify(&view, 0, Some(0)), Ok(0));
    assert_eq!(
        atomics::wait(&view, 0, 1, Some(Duration::MAX)),
        Ok(WaitResult::NotEqual)
    );
    assert_eq!(
        atomics::wait(&view, 0, 0, Some(Duration::ZERO)),
        Ok(WaitResult::TimedOut)
    );
    let WaitAsync::Pending(future) = atomics::wait_async(&view, 1, 0, Some(Duration::MAX)).unwrap()
    else {
        panic!("expected a pending future")
    };
    assert_eq!(atomics::notify(&view, 1, Some(usize::MAX)), Ok(1));
    let (result, _) = common::block_on(future);
    assert_eq!(result, WaitResult::Ok);
}

// ---------------------------------------------------------------------------------------------
// Faults found by this pass.

/// W1, W3: a worker that holds its own handle (sent to it through a channel) and joins it, or
/// waits for its own events, can never see its own exit: each call is refused with
/// `Err(WouldDeadlock)` instead of blocking forever. (`join` and `recv_event` from inside the
/// worker hung before; `terminate` returned `Err(Terminated)` and left the worker flagged.)
#[test]
fn w1_w3_a_worker_joining_or_reading_its_own_handle_is_refused_not_hung() {
    let results = within_watchdog("a worker joining itself", || {
        let (to_worker, from_parent) = MessageChannel::<Worker<(), ()>>::new();
        let (report, results) = MessageChannel::<Result<(), Error>>::new();
        let worker: Worker<(), ()> = Worker::spawn(move |_ctx| {
            let me = from_parent.recv().expect("the parent sends the handle");
            let _ = report.post_message(me.recv_event().map(drop));
            let _ = report.post_message(me.recv_event_timeout(Duration::from_secs(3600)).map(drop));
            let _ = report.post_message(me.join_timeout(Duration::from_secs(3600)).map(drop));
            let _ = report.post_message(me.join().map(drop));
        })
        .unwrap();
        to_worker.post_message(worker).unwrap();
        results.iter().collect::<Vec<_>>()
    });
    assert_eq!(results, vec![Err(Error::WouldDeadlock); 4]);
}

/// What a [`reentrant_waker`] does.
#[derive(Clone, Copy, PartialEq)]
enum Reenter {
    /// `notify` whenever it is cloned.
    OnClone,
    /// Nothing itself; its clones `notify` when they are dropped.
    ClonesOnDrop,
    /// `notify` when dropped.
    OnDrop,
}

/// A waker that reenters `atomics::notify` on element 0 of `view` from inside its `clone` or
/// its `drop`, as user code may.
fn reentrant_waker(view: &'static Int32Array, mode: Reenter) -> Waker {
    fn parts(data: *const ()) -> &'static (Int32Array, Reenter) {
        // SAFETY: `data` is always a leaked `&'static (Int32Array, Reenter)`.
        unsafe { &*(data as *const (Int32Array, Reenter)) }
    }
    fn raw(view: &Int32Array, mode: Reenter) -> RawWaker {
        let data: &'static (Int32Array, Reenter) = Box::leak(Box::new((view.clone(), mode)));
        RawWaker::new(data as *const _ as *const (), &VTABLE)
    }
    fn clone(data: *const ()) -> RawWaker {
        let (view, mode) = parts(data);
        match mode {
            Reenter::OnClone => {
                let _ = atomics::notify(view, 0, None);
                raw(view, Reenter::OnClone)
            }
            Reenter::ClonesOnDrop | Reenter::OnDrop => raw(view, Reenter::OnDrop),
        }
    }
    fn wake(_: *const ()) {}
    fn drop(data: *const ()) {
        let (view, mode) = parts(data);
        if *mode == Reenter::OnDrop {
            let _ = atomics::notify(view, 0, None);
        }
    }
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake, drop);
    // SAFETY: the functions keep the `RawWaker` contract: all are thread-safe, and
    // the data they share is leaked, so never freed under them.
    unsafe { Waker::from_raw(raw(view, mode)) }
}

/// The future of a `wait_async` on element 0 of `view`, which holds 0.
fn pending_on(view: &Int32Array) -> sharedbuf::atomics::WaitFuture {
    match atomics::wait_async(view, 0, 0, None).unwrap() {
        WaitAsync::Pending(future) => future,
        other => panic!("expected a pending future, got {other:?}"),
    }
}

fn leaked_view() -> &'static Int32Array {
    Box::leak(Box::new(
        Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap(),
    ))
}

/// A12: a waker is user code, and a `WaitFuture`'s poll must not run it while holding a lock
/// that waking the same future takes. A waker whose `clone` (run when the future stores it)
/// calls `notify` on the element the future waits on wakes that future: the poll returns
/// `Ready(Ok)`, where it used to deadlock on the future's own waker slot (seen hanging).
#[test]
fn a12_a_waker_that_notifies_from_its_clone_does_not_deadlock_the_poll() {
    let (first, again) = within_watchdog("a poll whose waker notifies on clone", || {
        let view = leaked_view();
        let mut future = pending_on(view);
        let waker = reentrant_waker(view, Reenter::OnClone);
        let first = Pin::new(&mut future).poll(&mut Context::from_waker(&waker));
        let again = Pin::new(&mut future).poll(&mut Context::from_waker(&waker));
        (first, again)
    });
    assert_eq!(first, Poll::Ready(WaitResult::Ok));
    assert_eq!(again, Poll::Ready(WaitResult::Ok));
}

/// A12: as above, for a waker whose `drop` notifies: run when a later poll's waker replaces
/// it. That poll returns `Ready(Ok)`; it used to deadlock (seen hanging).
#[test]
fn a12_a_waker_that_notifies_from_its_drop_does_not_deadlock_the_poll() {
    let (pending, second) = within_watchdog("a poll whose old waker notifies on drop", || {
        let view = leaked_view();
        let mut future = pending_on(view);
        let dropping = reentrant_waker(view, Reenter::ClonesOnDrop);
        let pending = Pin::new(&mut future).poll(&mut Context::from_waker(&dropping));
        drop(dropping); // the future holds a clone, whose drop notifies later
        let second = Pin::new(&mut future).poll(&mut Context::from_waker(Waker::noop()));
        (pending, second)
    });
    assert_eq!(pending, Poll::Pending);
    assert_eq!(second, Poll::Ready(WaitResult::Ok));
}

/// A12: a future dropped from inside its own waker (the task owning it is woken and drops
/// it at once), and a resolved future polled again with a waker that panics when cloned:
/// `notify` counts it once and returns, and the resolved future answers without cloning.
#[test]
fn a12_a_future_dropped_by_its_own_waker_and_polled_after_resolving() {
    struct DropOnWake(Mutex<Option<sharedbuf::atomics::WaitFuture>>);
    impl std::task::Wake for DropOnWake {
        fn wake(self: Arc<Self>) {
            drop(self.0.lock().unwrap().take());
        }
    }
    let woken = within_watchdog("a future dropped by its own waker", || {
        let view = leaked_view();
        let slot = Arc::new(DropOnWake(Mutex::new(Some(pending_on(view)))));
        let waker = Waker::from(Arc::clone(&slot));
        let polled = {
            let mut guard = slot.0.lock().unwrap();
            let future = guard.as_mut().unwrap();
            Pin::new(future).poll(&mut Context::from_waker(&waker))
        };
        assert_eq!(polled, Poll::Pending);
        drop(waker);
        let woken = atomics::notify(view, 0, None).unwrap();
        assert!(
            slot.0.lock().unwrap().is_none(),
            "the waker ran and dropped it"
        );
        (woken, atomics::notify(view, 0, None).unwrap())
    });
    assert_eq!(woken, (1, 0));

    let view = leaked_view();
    let mut future = pending_on(view);
    assert_eq!(atomics::notify(view, 0, None), Ok(1));
    let (panicky, _) = std::sync::mpsc::channel();
    let panicky = common::panicking_waker(panicky);
    for _ in 0..2 {
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Pin::new(&mut future).poll(&mut Context::from_waker(&panicky))
        }));
        assert!(matches!(polled, Ok(Poll::Ready(WaitResult::Ok))));
    }
}

/// W3: two threads terminating one worker at once, and a message whose `Drop` terminates the
/// worker it was posted to (run on the worker's thread when its port drops it): every call
/// returns, with one status.
#[test]
fn w3_concurrent_terminates_and_a_terminate_from_a_message_drop() {
    type Shared = Arc<Mutex<Option<Arc<Worker<TerminateOnDrop, ()>>>>>;
    struct TerminateOnDrop(Shared);
    impl Drop for TerminateOnDrop {
        fn drop(&mut self) {
            if let Some(worker) = self.0.lock().unwrap().take() {
                let _ = worker.terminate();
            }
        }
    }
    let statuses = within_watchdog("concurrent terminates", || {
        let worker: Arc<Worker<(), ()>> = Arc::new(
            Worker::spawn(|ctx: sharedbuf::worker::WorkerContext<(), ()>| {
                let _ = ctx.recv();
            })
            .unwrap(),
        );
        let others: Vec<_> = (0..4)
            .map(|_| {
                let worker = Arc::clone(&worker);
                std::thread::spawn(move || worker.terminate())
            })
            .collect();
        let mine = worker.terminate();
        let mut all: Vec<_> = others.into_iter().map(|t| t.join().unwrap()).collect();
        all.push(mine);
        all
    });
    assert!(statuses
        .iter()
        .all(|s| s.as_ref().is_ok_and(|s| s.terminated())));

    within_watchdog("a terminate from a message's drop", || {
        let shared = Arc::new(Mutex::new(None));
        let worker: Arc<Worker<TerminateOnDrop, ()>> = Arc::new(
            Worker::builder()
                .capacity(4)
                .spawn(
                    |ctx: sharedbuf::worker::WorkerContext<TerminateOnDrop, ()>| {
                        // Leaves the message queued: the port drops it when the closure ends.
                        let _ = ctx.port();
                    },
                )
                .unwrap(),
        );
        *shared.lock().unwrap() = Some(Arc::clone(&worker));
        let _ = worker.post_message(TerminateOnDrop(Arc::clone(&shared)));
        let _ = worker.terminate();
        drop(shared.lock().unwrap().take());
    });
}

/// W7: an absurd stack size is `Err(SpawnFailed)` from `spawn`, never a panic (std's thread
/// builder asserts on a size that rounds past `usize::MAX`).
#[test]
#[cfg_attr(
    miri,
    ignore = "Miri's threads have no real stack: it spawns whatever the size"
)]
fn w7_absurd_stack_sizes_are_spawn_failed_not_a_panic() {
    for bytes in [usize::MAX, usize::MAX - 4095, 1 << 62, isize::MAX as usize] {
        let spawned = std::panic::catch_unwind(|| {
            Worker::builder()
                .stack_size(bytes)
                .spawn(|_ctx: sharedbuf::worker::WorkerContext<(), ()>| {})
                .map(|worker| worker.join())
        });
        match spawned {
            Ok(Err(Error::SpawnFailed { .. })) => {}
            Ok(other) => panic!("stack size {bytes}: expected SpawnFailed, got {other:?}"),
            Err(_) => panic!("stack size {bytes}: spawn panicked"),
        }
    }
}

/// A6, A12: timeouts that are finite but centuries long behave as waits that a `notify` ends
/// (`Ok`), never as an immediate time-out; a far timer entry does not keep a near one from
/// firing.
#[test]
fn a6_a12_centuries_long_timeouts_are_ended_by_notify() {
    let huge = Duration::from_secs(i64::MAX as u64 / 4);
    let view = leaked_view();
    let WaitAsync::Pending(far) = atomics::wait_async(view, 0, 0, Some(huge)).unwrap() else {
        panic!("expected a pending future")
    };
    let WaitAsync::Pending(near) =
        atomics::wait_async(view, 0, 0, Some(Duration::from_millis(1))).unwrap()
    else {
        panic!("expected a pending future")
    };
    let near = within_watchdog("a near timeout behind a far one", move || {
        common::block_on(near).0
    });
    assert_eq!(near, WaitResult::TimedOut);
    assert_eq!(atomics::notify(view, 0, None), Ok(1));
    assert_eq!(common::block_on(far).0, WaitResult::Ok);

    let blocked = std::thread::spawn(move || atomics::wait(view, 0, 0, Some(huge)));
    let woken = within_watchdog("a notify of a centuries-long blocking wait", move || loop {
        match atomics::notify(view, 0, None).unwrap() {
            0 if !blocked.is_finished() => std::thread::yield_now(),
            _ => return blocked.join().unwrap(),
        }
    });
    assert_eq!(woken, Ok(WaitResult::Ok));
}

/// B4, V3, V5: views over a growable process-shared buffer follow a grow made through another
/// handle to the same file (as another process's grow is seen), at their first access past
/// the old end; ranges past the new end are still refused.
#[test]
#[cfg_attr(
    miri,
    ignore = "maps a memfd file: Miri has no memfd_create or mmap of files"
)]
fn b4_v3_views_follow_a_grow_through_another_handle_to_the_same_file() {
    let buf = SharedBuffer::memfd_growable("core-hostile", 8, 1 << 20).unwrap();
    let other = SharedBuffer::from_fd(buf.as_fd().unwrap().try_clone_to_owned().unwrap()).unwrap();
    let ints = Int32Array::new(&buf).unwrap();
    let dv = DataView::with_range(&buf, 4, None).unwrap();
    let tail = Int32Array::with_range(&buf, 8, None).unwrap();
    assert_eq!((ints.len(), tail.len(), dv.byte_length()), (2, 0, 4));
    other.grow(4096).unwrap();
    Int32Array::new(&other).unwrap().set(1023, -5).unwrap();
    assert_eq!(ints.get(1023), Some(-5));
    assert_eq!(tail.get(1021), Some(-5));
    assert_eq!(dv.get_int32(4088, true), Ok(-5));
    assert!(dv.get_int32(4089, true).is_err());
    assert_eq!(ints.get(1024), None);
    assert_eq!(buf.byte_length(), 4096);
    assert!(matches!(
        buf.grow(8),
        Err(Error::Shrink { current: 4096, .. })
    ));
}

/// A waker whose `clone` panics (its `wake` and `drop` do nothing).
fn waker_panicking_on_clone() -> Waker {
    fn clone(_: *const ()) -> RawWaker {
        panic!("this waker refuses to be cloned")
    }
    fn nothing(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, nothing, nothing, nothing);
    // SAFETY: the functions touch no data (a null pointer is never read), and are thread-safe.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) }
}

/// A12: a pending future polled with a waker that panics when cloned: the panic is the
/// poll's, the future stays in the list (a `notify` counts it) and resolves `Ok` at its next
/// poll; nothing of the crate is left locked.
#[test]
fn a12_a_waker_panicking_on_clone_leaves_the_future_waiting() {
    let view = leaked_view();
    let mut future = pending_on(view);
    let panicky = waker_panicking_on_clone();
    let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Pin::new(&mut future).poll(&mut Context::from_waker(&panicky))
    }));
    assert!(polled.is_err(), "the clone's panic is the poll's");
    assert_eq!(atomics::notify(view, 0, None), Ok(1));
    let again = Pin::new(&mut future).poll(&mut Context::from_waker(Waker::noop()));
    assert_eq!(again, Poll::Ready(WaitResult::Ok));
    // A resolved future answers without storing (or cloning) the waker.
    let resolved = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Pin::new(&mut future).poll(&mut Context::from_waker(&panicky))
    }));
    assert!(matches!(resolved, Ok(Poll::Ready(WaitResult::Ok))));
}
