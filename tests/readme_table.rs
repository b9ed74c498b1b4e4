//! The README's "JavaScript → Rust" table, row by row: every name it gives exists and does what
//! the row says (a user copies these lines first). A row that changes must change here too.
//! Contract numbers: docs/semantics.md B, V, A, W, P, S.

use std::time::Duration;

use sharedbuf::atomics::{self, Interrupter, WaitAsync};
use sharedbuf::pool::{MaxQueue, Priority, TaskError, TaskOptions, WorkerPool};
use sharedbuf::sync::{Barrier, Condvar, Latch, Mutex, Once, RwLock, Semaphore};
use sharedbuf::worker::{self, Worker, WorkerEvent};
use sharedbuf::{
    BigUint64Array, DataView, Endian, Error, Float32Array, Float64Array, Int32Array, Int8Array,
    MessageChannel, SharedBuffer, TypedArray, WaitResult,
};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// B1–B5: `new`, `growable`, the three properties, `grow`, `slice` (a copy), `clone` (shares).
#[test]
fn b_buffer_rows() -> Result {
    let sab = SharedBuffer::new(8)?;
    assert_eq!(
        (sab.byte_length(), sab.max_byte_length(), sab.is_growable()),
        (8, 8, false)
    );
    let g = SharedBuffer::growable(8, 64)?;
    assert_eq!(
        (g.byte_length(), g.max_byte_length(), g.is_growable()),
        (8, 64, true)
    );
    g.grow(16)?;
    assert_eq!(g.byte_length(), 16);
    Int8Array::new(&sab)?.set(1, 7)?;
    let copy = sab.slice(0..4)?;
    assert_eq!((copy.byte_length(), copy.same_memory(&sab)), (4, false));
    assert_eq!(Int8Array::new(&copy)?.get(1), Some(7));
    assert!(sab.clone().same_memory(&sab));
    Ok(())
}

/// V1–V5: constructors, the type aliases, get/set, properties, copies, fill, subarray, DataView.
#[test]
fn v_view_rows() -> Result {
    let sab = SharedBuffer::new(16)?;
    let ta: TypedArray<i32> = Int32Array::new(&sab)?;
    let part = Int32Array::with_range(&sab, 4, Some(2))?;
    let _: (Float32Array, Float64Array, BigUint64Array) = (
        Float32Array::new(&sab)?,
        Float64Array::new(&sab)?,
        BigUint64Array::new(&sab)?,
    );
    ta.set(1, 5)?;
    assert_eq!((ta.get(1), ta.get(4)), (Some(5), None));
    assert_eq!(
        (part.len(), part.byte_offset(), part.get(0)),
        (2, 4, Some(5))
    );
    assert!(part.buffer().same_memory(&sab));
    ta.copy_from_slice(2, &[8, 9])?;
    let mut out = [0; 2];
    ta.copy_to_slice(2, &mut out)?;
    assert_eq!((ta.to_vec(), out), (vec![0, 5, 8, 9], [8, 9]));
    ta.fill(1);
    ta.fill_range(1..3, 2)?;
    assert_eq!(ta.to_vec(), [1, 2, 2, 1]);
    assert_eq!(ta.subarray(1..3)?.to_vec(), [2, 2]);
    let dv = DataView::new(&sab)?;
    dv.set_int32(1, -2, true)?;
    assert_eq!(dv.get_int32(1, true)?, -2);
    assert_eq!(dv.get::<i32>(1, Endian::Little)?, -2);
    Ok(())
}

/// A1–A6: the read-modify-write functions, `is_lock_free`, `pause`, `wait`, `notify`,
/// `wait_async`, `Interrupter`.
#[test]
fn a_atomics_rows() -> Result {
    let ta = Int32Array::new(&SharedBuffer::new(8)?)?;
    atomics::store(&ta, 0, 6)?;
    assert_eq!(atomics::add(&ta, 0, 1)?, 6);
    assert_eq!(atomics::sub(&ta, 0, 2)?, 7);
    assert_eq!(atomics::and(&ta, 0, 4)?, 5);
    assert_eq!(atomics::or(&ta, 0, 3)?, 4);
    assert_eq!(atomics::xor(&ta, 0, 1)?, 7);
    assert_eq!(atomics::exchange(&ta, 0, 9)?, 6);
    assert_eq!(atomics::compare_exchange(&ta, 0, 9, 1)?, 9);
    assert_eq!(atomics::load(&ta, 0)?, 1);
    assert!(atomics::is_lock_free(4));
    atomics::pause();

    assert_eq!(atomics::wait(&ta, 0, 0, None)?, WaitResult::NotEqual);
    let zero = Some(Duration::ZERO);
    assert_eq!(atomics::wait(&ta, 0, 1, zero)?, WaitResult::TimedOut);
    assert_eq!(atomics::notify(&ta, 0, Some(1))?, 0); // how many woke: nobody waits
    assert!(matches!(
        atomics::wait_async(&ta, 0, 0, None)?,
        WaitAsync::Ready(WaitResult::NotEqual)
    ));
    let pending = atomics::wait_async(&ta, 0, 1, None)?;
    assert!(matches!(pending, WaitAsync::Pending(_)));
    assert_eq!(atomics::notify(&ta, 0, None)?, 1); // the pending future was woken
    drop(pending);

    // An `Interrupter` installed on the waiting thread ends its `wait` from anywhere.
    let interrupter = Interrupter::new();
    let (view, remote) = (ta.clone(), interrupter.clone());
    let waiter = std::thread::spawn(move || {
        let _installed = remote.install();
        atomics::wait(&view, 1, 0, None)
    });
    interrupter.interrupt();
    assert_eq!(waiter.join().unwrap(), Err(Error::Terminated));
    Ok(())
}

/// W4, W6: ports: capacity, post/try/timeout, recv/timeout/iteration, try_recv, close.
#[test]
fn w_port_rows() -> Result {
    let (port1, port2) = MessageChannel::<u32>::new();
    assert_eq!(port1.capacity(), 1024);
    let (small, _other) = MessageChannel::<u32>::with_capacity(2)?;
    small.post_message(1)?;
    small.post_message(2)?;
    let refused = small.try_post_message(3).unwrap_err();
    assert_eq!(refused.into_message(), 3);
    let refused = small.post_message_timeout(4, Duration::ZERO).unwrap_err();
    assert_eq!(refused.into_message(), 4);

    assert_eq!(port2.try_recv(), None);
    for n in 0..3 {
        port1.post_message(n)?;
    }
    assert_eq!(port2.recv()?, 0);
    assert_eq!(port2.recv_timeout(Duration::from_secs(5))?, 1);
    assert_eq!(port2.try_recv(), Some(2));
    port1.post_message(3)?;
    port1.close(); // closes both; earlier messages are still delivered
    assert!(port2.is_closed());
    assert_eq!((&port2).into_iter().collect::<Vec<_>>(), [3]);
    assert_eq!(port2.post_message(4), Err(Error::Closed));
    Ok(())
}

/// W1–W5: the worker builder, its context, events, `terminate`, errors as `Error` then `Exit`.
#[test]
fn w_worker_rows() -> Result {
    let worker: Worker<u32, u64> = Worker::builder()
        .worker_data(7u32)
        .name("row")
        .stack_size(256 * 1024)
        .spawn(|ctx| -> std::result::Result<(), Error> {
            assert!(!ctx.is_main_thread() && !worker::is_main_thread());
            let n = ctx.recv()?;
            ctx.port().post_message(u64::from(n + ctx.worker_data()))?;
            ctx.post_message(ctx.thread_id())
        })?;
    assert!(worker::is_main_thread());
    worker.post_message(1)?;
    let id = worker.thread_id();
    let events: Vec<_> = worker.events().collect();
    assert_eq!(
        events[..3],
        [
            WorkerEvent::Online,
            WorkerEvent::Message(8),
            WorkerEvent::Message(id)
        ]
    );
    assert!(matches!(events[3], WorkerEvent::Exit(status) if status.success()));
    assert_eq!(worker.post_message(2), Err(Error::Closed));

    let failing: Worker<(), ()> = Worker::spawn(|_| Err::<(), _>("bad input"))?;
    let events: Vec<_> = failing.events().collect();
    assert!(matches!(&events[1], WorkerEvent::Error(e) if e.message().contains("bad input")));
    assert!(matches!(events[2], WorkerEvent::Exit(status) if status.code() == 1));

    let blocked: Worker<(), ()> = Worker::spawn(|ctx| ctx.recv())?;
    assert_eq!(blocked.recv_event()?, WorkerEvent::Online);
    let status = blocked.terminate()?;
    assert_eq!((status.code(), status.terminated()), (1, true));
    Ok(())
}

/// P1–P9: the builder, run/join, options, cancel, the drain calls, close, the extras.
#[test]
fn p_pool_rows() -> Result {
    let pool = WorkerPool::builder()
        .min_threads(1)
        .max_threads(4)
        .idle_timeout(Duration::from_secs(30))
        .max_queue(MaxQueue::Auto)
        .build()?;
    assert_eq!(
        pool.run(|_| 6 * 7).map_err(|e| e.without_task())?.join()?,
        42
    );
    let options = TaskOptions::new()
        .timeout(Duration::from_secs(30))
        .priority(Priority::High);
    let handle = pool.run_with(options, |ctx| {
        ctx.progress(1);
        ctx.is_cancelled()
    });
    assert!(!handle.map_err(|e| e.without_task())?.join()?);
    let _ = (pool.queue_size(), pool.needs_drain());
    assert!(pool.wait_drained(Some(Duration::from_secs(30))));
    let keyed = pool
        .run_keyed(&"user-1", |_| 1)
        .map_err(|e| e.without_task())?;
    assert_eq!(keyed.join()?, 1);
    let everywhere = pool.broadcast(|_| ()).map_err(|e| e.without_task())?;
    assert!(!everywhere.is_empty());
    assert_eq!(pool.map(vec![1, 2, 3], |n: i32| n * 2)?, [2, 4, 6]);
    assert!(pool.stats().submitted >= 3);
    pool.close(Some(Duration::from_secs(30)))?;

    // `destroy()`: a queued task never runs, a running one blocked in `atomics::wait` is
    // interrupted, and the pool's drop joins its thread. The first task says it started before
    // the second is submitted: with one thread the default queue (`MaxQueue::Auto`, P2) holds
    // one task, so a second submitted while the first still waits in it is `QueueFull`.
    let destroyed = WorkerPool::builder().max_threads(1).build()?;
    let cells = Int32Array::new(&SharedBuffer::new(8)?)?;
    // Dropped before the pool: a failed `?` below releases the task instead of leaving the
    // pool's drop (which joins its thread) waiting for ever.
    let _release = ReleaseOnDrop(cells.clone());
    let task_cells = cells.clone();
    let blocked = destroyed
        .run(move |_| {
            atomics::store(&task_cells, 1, 1)?; // started
            atomics::notify(&task_cells, 1, None)?;
            atomics::wait(&task_cells, 0, 0, None) // nobody notifies index 0
        })
        .map_err(|e| e.without_task())?;
    while atomics::load(&cells, 1)? == 0 {
        atomics::wait(&cells, 1, 0, None)?;
    }
    let queued = destroyed.run(|_| ()).map_err(|e| e.without_task())?;
    assert!(queued.cancel());
    destroyed.destroy();
    assert_eq!(queued.join(), Err(TaskError::Cancelled));
    assert_eq!(blocked.join(), Err(TaskError::PoolDestroyed));
    Ok(())
}

/// Stores 1 at index 0 and wakes its waiters when dropped.
struct ReleaseOnDrop(Int32Array);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        let _ = atomics::store(&self.0, 0, 1);
        let _ = atomics::notify(&self.0, 0, None);
    }
}

/// S1, S2: `Mutex::at`, `lock`, relock, `try_lock_for`, `Condvar`, the other primitives.
///
/// `?` on a lock result converts into `sharedbuf::Error` (the guard in `LockError` borrows the
/// lock, so it cannot become a `Box<dyn Error>`).
#[test]
fn s_lock_rows() -> std::result::Result<(), Error> {
    let buf = SharedBuffer::new(256)?;
    let m = Mutex::at(&buf, 0)?;
    {
        let _guard = m.lock()?;
        assert_eq!(
            m.lock().map(drop).map_err(Error::from),
            Err(Error::WouldDeadlock)
        );
    }
    assert!(m.try_lock_for(Duration::from_millis(1)).is_ok());
    let cv = Condvar::at(&buf, Mutex::BYTES)?;
    assert_eq!(cv.notify(1), 0); // how many woke
    let guard = m.lock()?;
    let guard = cv.wait_while(guard, |_| false)?;
    drop(guard);
    // Each a few bytes at an offset; all-zero bytes are the initial state.
    let rw = RwLock::at(&buf, 64)?;
    let semaphore = Semaphore::at(&buf, 64 + RwLock::BYTES)?;
    let barrier = Barrier::at(&buf, 96, 1)?;
    let latch = Latch::at(&buf, 96 + Barrier::BYTES)?;
    let once = Once::at(&buf, 128)?;
    drop(rw.read()?);
    assert!(!semaphore.try_acquire(1)?); // no permits yet
    assert!(barrier.wait()?.is_leader());
    latch.wait()?; // count zero: open
    assert!(!once.is_completed());
    Ok(())
}
