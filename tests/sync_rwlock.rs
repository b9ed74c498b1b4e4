//! `sync::RwLock` (docs/semantics.md S1, S2, S3, S5, S6): attaching, shared reads and exclusive
//! writes, relock refusal, writer preference, the read phase that keeps readers from starving,
//! timed locks, a stress run checked through views, and terminate of blocked workers.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{current_tid, join_within, spawn_asleep, until, wait_until_asleep};
use sharedbuf::sync::RwLock;
use sharedbuf::worker::{Worker, WorkerEvent};
use sharedbuf::{Error, Int32Array, SharedBuffer, Uint32Array};

/// The lock's six 32-bit words (state low/high, owner low/high, the two sequences).
fn words(lock: &RwLock) -> Vec<u32> {
    Uint32Array::with_range(lock.buffer(), lock.byte_offset(), Some(6))
        .unwrap()
        .to_vec()
}

/// The state and owner words, zero whenever nobody holds or waits for the lock (the sequence
/// words may have moved).
fn state_and_owner(lock: &RwLock) -> Vec<u32> {
    words(lock)[..4].to_vec()
}

#[test]
fn s1_zero_bytes_are_an_unlocked_lock_and_bad_places_are_refused() {
    assert_eq!((RwLock::BYTES, RwLock::ALIGN), (24, 8));
    let buffer = SharedBuffer::new(64).unwrap();
    let lock = RwLock::at(&buffer, 8).unwrap();
    assert_eq!(words(&lock), [0; 6]);
    drop(lock.read().unwrap());
    drop(lock.write().unwrap());
    assert_eq!(words(&lock), [0; 6], "uncontended locking leaves zeros");
    assert!(Uint32Array::new(&buffer).unwrap().iter().all(|w| w == 0));

    assert_eq!(
        RwLock::at(&buffer, 12).err(),
        Some(Error::Misaligned {
            byte_offset: 12,
            align: 8
        })
    );
    assert_eq!(
        RwLock::at(&buffer, 48).err(),
        Some(Error::RangeOutOfBounds {
            start: 48,
            end: 72,
            len: 64
        })
    );
    assert!(RwLock::at(&SharedBuffer::new(16).unwrap(), 0).is_err());
    assert!(RwLock::at(&buffer, 40).is_ok());
}

#[test]
fn s2_readers_share_and_a_writer_excludes_everyone() {
    let buffer = SharedBuffer::new(64).unwrap();
    let lock = RwLock::at(&buffer, 0).unwrap();
    let other = RwLock::at(&buffer.clone(), 0).unwrap(); // another handle, same bytes
    let a = lock.read().unwrap();
    let b = other.read().unwrap();
    assert_eq!(lock.reader_count(), 2);
    assert!(lock.try_write().is_err_and(|e| e == Error::WouldBlock));
    assert!(lock
        .try_write_for(Duration::from_millis(5))
        .is_err_and(|e| e == Error::WouldBlock));
    drop((a, b));
    let writer = other.write().unwrap();
    assert!(lock.is_write_locked());
    let remote = lock.clone();
    assert!(thread::spawn(move || {
        remote.try_read().is_err_and(|e| e == Error::WouldBlock)
            && remote.try_write().is_err_and(|e| e == Error::WouldBlock)
    })
    .join()
    .unwrap());
    drop(writer);
    assert_eq!(state_and_owner(&lock), [0, 0, 0, 0]);
}

#[test]
fn s2_the_writer_relocking_is_would_deadlock() {
    let lock = RwLock::at(&SharedBuffer::new(24).unwrap(), 0).unwrap();
    let writer = lock.write().unwrap();
    assert_eq!(lock.write().unwrap_err(), Error::WouldDeadlock);
    assert_eq!(lock.read().unwrap_err(), Error::WouldDeadlock);
    assert_eq!(lock.try_write().unwrap_err(), Error::WouldDeadlock);
    assert_eq!(lock.try_read().unwrap_err(), Error::WouldDeadlock);
    assert_eq!(
        lock.try_read_for(Duration::from_secs(3600)).unwrap_err(),
        Error::WouldDeadlock
    );
    assert_eq!(writer.lock().byte_offset(), 0);
    drop(writer);
    // Readers are not recorded: a thread may hold several read locks.
    let first = lock.read().unwrap();
    let second = lock.read().unwrap();
    drop((first, second));
    assert_eq!(state_and_owner(&lock), [0, 0, 0, 0]);
}

#[test]
fn s3_timed_locks_give_up_and_leave_no_trace() {
    let lock = RwLock::at(&SharedBuffer::new(24).unwrap(), 0).unwrap();
    let (held_tx, held_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let remote = lock.clone();
    let holder = thread::spawn(move || {
        let _writer = remote.write().unwrap();
        held_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    held_rx.recv().unwrap();
    assert!(lock
        .try_read_for(Duration::ZERO)
        .is_err_and(|e| e == Error::WouldBlock));
    assert!(lock
        .try_read_for(Duration::from_millis(10))
        .is_err_and(|e| e == Error::WouldBlock));
    assert!(lock
        .try_write_until(Instant::now() + Duration::from_millis(10))
        .is_err_and(|e| e == Error::WouldBlock));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(
        state_and_owner(&lock),
        [0, 0, 0, 0],
        "timed-out waiters uncounted"
    );
    drop(lock.try_read_for(Duration::ZERO).expect("free"));
    drop(lock.try_write_for(Duration::ZERO).expect("free"));
}

/// While a writer waits, new readers wait behind it: `try_read` refuses, and a blocking
/// reader gets in only after the writer.
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s5_readers_wait_behind_a_waiting_writer() {
    let lock = RwLock::at(&SharedBuffer::new(24).unwrap(), 0).unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let first = lock.read().unwrap();
    let (remote, log) = (lock.clone(), order.clone());
    let (writer, _) = spawn_asleep(move || {
        let _writer = remote.write().unwrap();
        log.lock().unwrap().push("writer");
    });
    assert!(
        lock.try_read().is_err_and(|e| e == Error::WouldBlock),
        "a writer is waiting"
    );
    let (remote, log) = (lock.clone(), order.clone());
    let (reader, _) = spawn_asleep(move || {
        let _reader = remote.read().unwrap();
        log.lock().unwrap().push("reader");
    });
    drop(first);
    join_within(writer, "the writer");
    join_within(reader, "the reader");
    assert_eq!(*order.lock().unwrap(), ["writer", "reader"]);
    assert_eq!(state_and_owner(&lock), [0, 0, 0, 0]);
}

/// A reader that waited through a write goes in before the next waiting writer: the write
/// unlock opens a read phase.
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s5_a_write_unlock_lets_waiting_readers_in_before_the_next_writer() {
    let lock = RwLock::at(&SharedBuffer::new(24).unwrap(), 0).unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer = lock.write().unwrap();
    let (remote, log) = (lock.clone(), order.clone());
    let (reader, _) = spawn_asleep(move || {
        let _reader = remote.read().unwrap();
        log.lock().unwrap().push("reader");
    });
    let (remote, log) = (lock.clone(), order.clone());
    let (next_writer, _) = spawn_asleep(move || {
        let _writer = remote.write().unwrap();
        log.lock().unwrap().push("next writer");
    });
    drop(writer);
    join_within(reader, "the reader");
    join_within(next_writer, "the next writer");
    assert_eq!(*order.lock().unwrap(), ["reader", "next writer"]);
    assert_eq!(state_and_owner(&lock), [0, 0, 0, 0]);
}

/// Overlapping readers that never leave the lock free cannot keep a writer out (writer
/// preference); asserted on progress, under a watchdog.
#[test]
fn s5_a_writer_is_not_starved_by_overlapping_readers() {
    let lock = RwLock::at(&SharedBuffer::new(24).unwrap(), 0).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (lock, stop, reads) = (lock.clone(), stop.clone(), reads.clone());
            thread::spawn(move || {
                while !stop.load(SeqCst) {
                    let _guard = lock.read().unwrap();
                    reads.fetch_add(1, SeqCst);
                    for _ in 0..1000 {
                        std::hint::spin_loop();
                    }
                }
            })
        })
        .collect();
    // A watchdog: readers that panicked before their first read fail the test here instead of
    // leaving it spinning for ever.
    until(|| reads.load(SeqCst) > 0, "the readers' first read");
    let writer = {
        let lock = lock.clone();
        thread::spawn(move || {
            for _ in 0..100 {
                drop(lock.write().unwrap());
            }
        })
    };
    join_within(writer, "the writer (starved by readers?)");
    stop.store(true, SeqCst);
    for reader in readers {
        join_within(reader, "a reader");
    }
    assert_eq!(state_and_owner(&lock), [0, 0, 0, 0]);
}

/// 6 readers and 2 writers: writers update a counter pair with two plain stores, readers check
/// it is never seen half updated.
#[test]
fn s2_readers_never_see_a_half_done_write() {
    // Fewer under Miri, which interprets the threads about a thousand times slower.
    const WRITES: i32 = if cfg!(miri) { 100 } else { 20_000 };
    let buffer = SharedBuffer::new(64).unwrap();
    let lock = RwLock::at(&buffer, 0).unwrap();
    let pair = Int32Array::with_range(&buffer, 32, Some(2)).unwrap();
    let start = Arc::new(Barrier::new(8));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (lock, pair, start) = (lock.clone(), pair.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                for _ in 0..WRITES {
                    let _guard = lock.write().unwrap();
                    let a = pair.get(0).unwrap();
                    pair.set(0, a + 1).unwrap();
                    pair.set(1, a + 1).unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let (lock, pair, start) = (lock.clone(), pair.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut last = 0;
                while last < 2 * WRITES {
                    let _guard = lock.read().unwrap();
                    let (a, b) = (pair.get(0).unwrap(), pair.get(1).unwrap());
                    assert_eq!(a, b, "a reader saw a half-done write");
                    assert!(a >= last, "the pair went backwards");
                    last = a;
                }
            })
        })
        .collect();
    for thread in writers.into_iter().chain(readers) {
        join_within(thread, "a reader or writer");
    }
    assert_eq!(pair.to_vec(), [2 * WRITES, 2 * WRITES]);
    assert_eq!(state_and_owner(&lock), [0, 0, 0, 0]);
}

/// Spawns a worker that reports its thread id and then takes `lock` for reading or writing
/// (blocking: the caller holds it the other way); terminates it once it is asleep.
fn terminate_blocked(lock: &RwLock, write: bool) {
    let worker: Worker<(), libc::pid_t> = Worker::builder()
        .worker_data(lock.clone())
        .spawn(move |ctx| -> Result<(), Error> {
            ctx.post_message(current_tid())?;
            if write {
                drop(ctx.worker_data().write()?);
            } else {
                drop(ctx.worker_data().read()?);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
    let tid = match worker.recv_event() {
        Ok(WorkerEvent::Message(tid)) => tid,
        other => panic!("expected the worker's tid, got {other:?}"),
    };
    wait_until_asleep(tid);
    let status = worker.terminate().unwrap();
    assert_eq!((status.code(), status.terminated()), (1, true));
    worker.join().unwrap();
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s6_terminate_interrupts_workers_blocked_in_read_and_in_write() {
    let lock = RwLock::at(&SharedBuffer::new(24).unwrap(), 0).unwrap();
    let reader = lock.read().unwrap();
    terminate_blocked(&lock, true);
    drop(reader);
    assert_eq!(
        state_and_owner(&lock),
        [0, 0, 0, 0],
        "the writer left the queue"
    );
    let writer = lock.write().unwrap();
    terminate_blocked(&lock, false);
    drop(writer);
    assert_eq!(
        state_and_owner(&lock),
        [0, 0, 0, 0],
        "the reader left the queue"
    );
    drop(lock.try_write().expect("usable after the terminates"));
}
