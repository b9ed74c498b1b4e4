//! Counters at their wrap: every counter the crate keeps in a word a test can set, started a
//! few steps below its wrap (or its limit), then driven across it by the normal protocol with
//! real contention, private and process-shared. A value near the wrap is well-formed data: a
//! process-shared buffer that outlived many programs holds one (docs/semantics.md S7 tolerates
//! garbage; this is not even garbage), and a long-lived process reaches one in weeks.
//!
//! - sync primitives: the barrier's 24-bit generation and its sequence, the condition
//!   variable's sequence, the latch's epoch, the mutex's side word, the readers-writer lock's
//!   two sequences (all wrapping 32-bit eventcounts, S8), and the semaphore's permits at their
//!   maximum;
//! - the byte ring's positions, which count bytes modulo 2³² (its module docs), between threads
//!   and with a child process;
//! - a process-shared buffer's waiter tickets (the FIFO order of A9 / X2), 64-bit, in the
//!   header, where a peer's high value is as well-formed as any;
//! - the job queue's `seq` (job ids) in Redis, which the scripts accept up to 2⁵³ (with the
//!   `redis` feature and a `redis-server` on `PATH`).
//!
//! Tests marked "Fault:" failed before their fix. No test measures time: deadlines only end
//! waits, and hangs are caught by watchdogs.
#![cfg(all(not(loom), target_os = "linux"))]

mod common;
mod process_support;
#[cfg(feature = "redis")]
mod queue_support;
mod sync_support;

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use sharedbuf::channel::ByteRing;
use sharedbuf::sync::{Barrier, Condvar, Latch, Mutex, RwLock, Semaphore};
use sharedbuf::{atomics, BigUint64Array, Error, Int32Array, SharedBuffer, Uint32Array};
use sync_support::{spawn, spawn_blocked, WATCHDOG};

const ROLES: &str = "child_process_roles";

/// A fresh buffer of `bytes` bytes: private, or process-shared (a memfd).
fn buffer(shared: bool, bytes: usize) -> SharedBuffer {
    if shared {
        SharedBuffer::memfd("wraparound", bytes).unwrap()
    } else {
        SharedBuffer::new(bytes).unwrap()
    }
}

fn set_u32(buffer: &SharedBuffer, byte_offset: usize, value: u32) {
    let word = Uint32Array::with_range(buffer, byte_offset, Some(1)).unwrap();
    word.set(0, value).unwrap();
}

fn get_u32(buffer: &SharedBuffer, byte_offset: usize) -> u32 {
    let word = Uint32Array::with_range(buffer, byte_offset, Some(1)).unwrap();
    word.get(0).unwrap()
}

fn set_u64(buffer: &SharedBuffer, byte_offset: usize, value: u64) {
    let word = BigUint64Array::with_range(buffer, byte_offset, Some(1)).unwrap();
    word.set(0, value).unwrap();
}

fn get_u64(buffer: &SharedBuffer, byte_offset: usize) -> u64 {
    let word = BigUint64Array::with_range(buffer, byte_offset, Some(1)).unwrap();
    word.get(0).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Barrier: `state` = generation (bits 40..64) · dropped (20..40) · arrivals (0..20) at offset
// 0, parties at 8, sequence at 12.

const GENERATION_SHIFT: u32 = 40;
const GENERATIONS_WRAP: u64 = 1 << 24;

// docs/semantics.md S8 (S1): a barrier whose generation and sequence are a few steps below
// their wrap releases each generation exactly once, with one leader, across the wrap.
#[test]
fn barrier_generations_cross_the_wrap_one_leader_each() {
    const PARTIES: usize = 3;
    const ROUNDS: usize = 40;
    for shared in [false, true] {
        let buffer = buffer(shared, 16 + 4 * PARTIES);
        set_u64(&buffer, 0, (GENERATIONS_WRAP - 5) << GENERATION_SHIFT);
        set_u32(&buffer, 12, u32::MAX - 3);
        let cells = Int32Array::with_range(&buffer, 16, Some(PARTIES)).unwrap();
        let leaders: Arc<Vec<AtomicUsize>> =
            Arc::new((0..ROUNDS).map(|_| AtomicUsize::new(0)).collect());
        let parties: Vec<_> = (0..PARTIES)
            .map(|me| {
                let (buffer, cells, leaders) = (buffer.clone(), cells.clone(), leaders.clone());
                spawn(move || {
                    let barrier = Barrier::at(&buffer, 0, PARTIES as u32).unwrap();
                    for round in 0..ROUNDS {
                        cells.set(me, round as i32).unwrap();
                        if barrier.wait().unwrap().is_leader() {
                            leaders[round].fetch_add(1, SeqCst);
                        }
                        for party in 0..PARTIES {
                            let seen = cells.get(party).unwrap() as usize;
                            assert!(seen >= round, "round {round}: party {party} not arrived");
                        }
                    }
                })
            })
            .collect();
        for party in parties {
            party.join("a party crossing the generation wrap");
        }
        for (round, count) in leaders.iter().enumerate() {
            assert_eq!(
                count.load(SeqCst),
                1,
                "shared {shared}: leaders of round {round}"
            );
        }
        let generation = get_u64(&buffer, 0) >> GENERATION_SHIFT;
        assert_eq!(
            generation,
            ROUNDS as u64 - 5,
            "shared {shared}: wrapped, no arrival left"
        );
        assert_eq!(get_u64(&buffer, 0) & ((1 << 40) - 1), 0);
        assert_eq!(
            get_u32(&buffer, 12),
            ROUNDS as u32 - 4,
            "shared {shared}: sequence"
        );
    }
}

// docs/semantics.md S8 (S3): a party that times out in the generation just below the wrap
// withdraws its arrival, and one that passes at the wrap is told so.
#[test]
fn barrier_timeouts_at_the_generation_wrap() {
    for shared in [false, true] {
        let buffer = buffer(shared, 16);
        set_u64(&buffer, 0, (GENERATIONS_WRAP - 1) << GENERATION_SHIFT);
        let barrier = Barrier::at(&buffer, 0, 2).unwrap();
        assert_eq!(
            barrier.wait_for(std::time::Duration::ZERO).unwrap(),
            None,
            "alone: withdrawn"
        );
        assert_eq!(
            get_u64(&buffer, 0),
            (GENERATIONS_WRAP - 1) << GENERATION_SHIFT
        );
        let other = barrier.clone();
        let waiting = spawn_blocked(move || other.wait_for(WATCHDOG).unwrap());
        assert!(barrier.wait().unwrap().is_leader());
        let passed = waiting.join("the party of the last generation before the wrap");
        assert_eq!(passed.map(|r| r.is_leader()), Some(false));
        assert_eq!(get_u64(&buffer, 0), 0, "generation 0 again, no arrival");
    }
}

// ---------------------------------------------------------------------------------------------
// Condvar: sequence at 0, waiters at 4; its mutex at 16; a turn word at 32.

// docs/semantics.md S8 (S4): with the sequence just below its wrap, every notify wakes its
// waiter (counted exactly), across the wrap.
#[test]
fn condvar_notifies_wake_their_waiter_across_the_sequence_wrap() {
    let _serial = common::serial();
    for shared in [false, true] {
        let buffer = buffer(shared, 40);
        set_u32(&buffer, 0, u32::MAX - 2);
        let condvar = Condvar::at(&buffer, 0).unwrap();
        let mutex = Mutex::at(&buffer, 16).unwrap();
        let flag = Int32Array::with_range(&buffer, 32, Some(1)).unwrap();
        for round in 0..6 {
            let (condvar2, mutex2, flag2) = (condvar.clone(), mutex.clone(), flag.clone());
            let waiter = spawn_blocked(move || {
                let guard = mutex2.lock().unwrap();
                let _guard = condvar2
                    .wait_while(guard, |_| flag2.get(0) != Some(round + 1))
                    .unwrap();
            });
            let guard = mutex.lock().unwrap();
            flag.set(0, round + 1).unwrap();
            assert_eq!(condvar.notify_one(), 1, "shared {shared}: round {round}");
            drop(guard);
            waiter.join("a condvar waiter across the sequence wrap");
        }
        assert_eq!(get_u32(&buffer, 0), 3, "six notifies from u32::MAX - 2");
        assert_eq!(get_u32(&buffer, 4), 0, "nobody registered");
    }
}

// docs/semantics.md S8 (S4): two threads taking turns through one condition variable, its
// sequence started below the wrap, many times across it.
#[test]
fn condvar_ping_pong_across_the_sequence_wrap() {
    const ROUNDS: i32 = 2_000;
    for shared in [false, true] {
        let buffer = buffer(shared, 40);
        set_u32(&buffer, 0, u32::MAX - ROUNDS as u32 / 2);
        let players: Vec<_> = (0..2)
            .map(|me| {
                let buffer = buffer.clone();
                spawn(move || {
                    let condvar = Condvar::at(&buffer, 0).unwrap();
                    let mutex = Mutex::at(&buffer, 16).unwrap();
                    let turn = Int32Array::with_range(&buffer, 32, Some(1)).unwrap();
                    for round in 0..ROUNDS {
                        if round % 2 != me {
                            continue;
                        }
                        let guard = mutex.lock().unwrap();
                        let _guard = condvar
                            .wait_while(guard, |_| turn.get(0) != Some(round))
                            .unwrap();
                        turn.set(0, round + 1).unwrap();
                        condvar.notify_all();
                    }
                })
            })
            .collect();
        for player in players {
            player.join("a player taking turns across the sequence wrap");
        }
        assert_eq!(get_u32(&buffer, 32) as i32, ROUNDS, "shared {shared}");
    }
}

// ---------------------------------------------------------------------------------------------
// Latch: count at 0, epoch at 4.

// docs/semantics.md S8: rounds of count-up, concurrent count-downs and waiters, with the epoch
// started just below its wrap: every waiter of every round returns once the count is zero.
#[test]
fn latch_rounds_across_the_epoch_wrap() {
    const ROUNDS: u32 = 8;
    const WORKERS: u32 = 3;
    for shared in [false, true] {
        let buffer = buffer(shared, 8);
        set_u32(&buffer, 4, u32::MAX - 3);
        let latch = Latch::at(&buffer, 0).unwrap();
        for round in 0..ROUNDS {
            latch.count_up(WORKERS).unwrap();
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let latch = latch.clone();
                    spawn(move || latch.wait_for(WATCHDOG).unwrap())
                })
                .collect();
            let workers: Vec<_> = (0..WORKERS)
                .map(|_| {
                    let latch = latch.clone();
                    spawn(move || latch.count_down().unwrap())
                })
                .collect();
            for worker in workers {
                worker.join("a count-down");
            }
            for waiter in waiters {
                assert!(
                    waiter.join("a latch waiter"),
                    "shared {shared}: round {round}"
                );
            }
        }
        assert_eq!(
            get_u32(&buffer, 4),
            ROUNDS - 4,
            "shared {shared}: epoch wrapped"
        );
        assert_eq!(latch.count(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Mutex: state at 0, side at 4, owner at 8.

// docs/semantics.md S8 (S2): `lock_async` futures sleep on the side word; with it just below
// its wrap, every unlock that finds one pending wakes it, round after round across the wrap.
#[test]
fn mutex_async_waiters_wake_across_the_side_wrap() {
    for shared in [false, true] {
        let buffer = buffer(shared, 16);
        set_u32(&buffer, 4, u32::MAX - 2);
        let mutex = Mutex::at(&buffer, 0).unwrap();
        for round in 0..6 {
            let guard = mutex.lock().unwrap();
            let other = mutex.clone();
            let pending = spawn_blocked(move || {
                let (guard, _polls) = common::block_on(other.lock_async());
                drop(guard.unwrap());
            });
            let side = get_u32(&buffer, 4);
            drop(guard);
            pending.join("a lock_async future across the side wrap");
            assert_ne!(
                get_u32(&buffer, 4),
                side,
                "shared {shared}: round {round}: the unlock bumped the side word"
            );
        }
        assert!(get_u32(&buffer, 4) < 10, "shared {shared}: wrapped");
        assert!(!mutex.is_locked());
    }
}

// docs/semantics.md S8 (S2, S5): four threads contending for one mutex whose side word starts
// just below its wrap (starving waiters become heirs and sleep on it): no increment lost.
#[test]
fn mutex_contention_across_the_side_wrap() {
    const THREADS: usize = 4;
    const LOCKS: usize = 3_000;
    for shared in [false, true] {
        let buffer = buffer(shared, 24);
        set_u32(&buffer, 4, u32::MAX - 1);
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let buffer = buffer.clone();
                spawn(move || {
                    let mutex = Mutex::at(&buffer, 0).unwrap();
                    let cell = Int32Array::with_range(&buffer, 16, Some(1)).unwrap();
                    for i in 0..LOCKS {
                        // A plain read and write: only the lock makes them add up.
                        let add_one = || {
                            let n = cell.get(0).unwrap();
                            cell.set(0, n + 1).unwrap();
                        };
                        if i % 8 == 0 {
                            let guard = common::block_on(mutex.lock_async()).0.unwrap();
                            add_one();
                            drop(guard);
                        } else {
                            let guard = mutex.lock().unwrap();
                            add_one();
                            drop(guard);
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join("a contending locker");
        }
        assert_eq!(
            get_u32(&buffer, 16) as usize,
            THREADS * LOCKS,
            "shared {shared}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// RwLock: state at 0, owner at 8, readers sequence at 16, writers sequence at 20.

// docs/semantics.md S8 (S5): with both sequences just below their wrap, a write unlock wakes
// the reader waiting on one, and the reader's unlock the writer waiting on the other, round
// after round across the wrap.
#[test]
fn rwlock_waiters_wake_across_the_sequence_wraps() {
    let _serial = common::serial();
    for shared in [false, true] {
        let buffer = buffer(shared, 24);
        set_u32(&buffer, 16, u32::MAX - 2);
        set_u32(&buffer, 20, u32::MAX - 2);
        let lock = RwLock::at(&buffer, 0).unwrap();
        for round in 0..6 {
            let write = lock.write().unwrap();
            let (reader_lock, writer_lock) = (lock.clone(), lock.clone());
            let (read_tx, read_rx) = mpsc::channel();
            let reader = spawn_blocked(move || {
                let guard = reader_lock.read().unwrap();
                // Holds the read lock until told: the writer below must wait for it.
                read_rx.recv().unwrap();
                drop(guard);
            });
            let writer = spawn_blocked(move || drop(writer_lock.write().unwrap()));
            drop(write);
            common::until(|| lock.reader_count() == 1, "the reader in");
            read_tx.send(()).unwrap();
            reader.join("a reader across the sequence wrap");
            writer.join("a writer across the sequence wrap");
            assert!(
                !lock.is_write_locked() && lock.reader_count() == 0,
                "shared {shared}: round {round}"
            );
        }
        assert!(
            get_u32(&buffer, 16) < 10,
            "shared {shared}: readers sequence wrapped"
        );
        assert!(
            get_u32(&buffer, 20) < 10,
            "shared {shared}: writers sequence wrapped"
        );
    }
}

// docs/semantics.md S8 (S2): readers and writers contending, both sequences starting just
// below their wrap: writers exclude everyone, and no write is lost.
#[test]
fn rwlock_contention_across_the_sequence_wraps() {
    const WRITES: usize = 2_000;
    for shared in [false, true] {
        let buffer = buffer(shared, 32);
        set_u32(&buffer, 16, u32::MAX - 1);
        set_u32(&buffer, 20, u32::MAX - 1);
        let threads: Vec<_> = (0..4)
            .map(|me| {
                let buffer = buffer.clone();
                spawn(move || {
                    let lock = RwLock::at(&buffer, 0).unwrap();
                    let cells = Int32Array::with_range(&buffer, 24, Some(2)).unwrap();
                    for _ in 0..WRITES {
                        if me % 2 == 0 {
                            let _guard = lock.write().unwrap();
                            let n = cells.get(0).unwrap();
                            cells.set(0, n + 1).unwrap();
                            cells.set(1, n + 1).unwrap();
                        } else {
                            let _guard = lock.read().unwrap();
                            assert_eq!(cells.get(0), cells.get(1), "a torn write seen");
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join("a reader or writer");
        }
        assert_eq!(get_u32(&buffer, 24) as usize, 2 * WRITES, "shared {shared}");
    }
}

// ---------------------------------------------------------------------------------------------
// Semaphore: one word, permits from bit 2.

// docs/semantics.md S8 (S3): a semaphore a few permits below its maximum: releases past the
// maximum are refused with nothing changed, and contending acquires and releases conserve the
// permits.
#[test]
fn semaphore_permits_at_their_maximum() {
    const START: u32 = Semaphore::MAX_PERMITS - 4;
    for shared in [false, true] {
        let buffer = buffer(shared, 4);
        set_u32(&buffer, 0, START << 2);
        let semaphore = Semaphore::at(&buffer, 0).unwrap();
        assert!(matches!(
            semaphore.release(5),
            Err(Error::CountOutOfRange { .. })
        ));
        assert_eq!(
            semaphore.available(),
            START,
            "a refused release changed nothing"
        );
        let threads: Vec<_> = (0..4)
            .map(|me| {
                let semaphore = semaphore.clone();
                spawn(move || {
                    for i in 0..2_000u32 {
                        let n = 1 + (i + me) % 3;
                        // Room for at most 4 more: a release may be refused while others
                        // hold none. Acquire first, so this thread's release always fits.
                        semaphore.acquire(n).unwrap();
                        semaphore.release(n).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join("an acquirer");
        }
        assert_eq!(semaphore.available(), START, "shared {shared}: conserved");
        semaphore.release(4).unwrap();
        assert_eq!(semaphore.available(), Semaphore::MAX_PERMITS);
        assert!(semaphore.release(1).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// ByteRing: tail word at 64, head word at 128 (positions, bytes modulo 2^32, flags in bits 0-1).

const RING_CAPACITY: usize = 256;
/// Where both positions start: 2^32 less three laps and a bit, so the messages cross the
/// position wrap mid-lap, with a padding record near it.
const RING_START: u32 = 0u32.wrapping_sub(3 * RING_CAPACITY as u32 + 40);
const RING_MESSAGES: u64 = 3_000;

/// Message `seq`: its number, then `seq % 61` bytes that follow from it.
fn ring_message(seq: u64) -> Vec<u8> {
    let mut bytes = seq.to_le_bytes().to_vec();
    bytes.extend((0..seq % 61).map(|i| (seq as u8).wrapping_mul(31).wrapping_add(i as u8)));
    bytes
}

/// The ring at offset 0 of `buffer`, its positions set to [`RING_START`] first.
fn ring_near_the_wrap(buffer: &SharedBuffer) -> ByteRing {
    set_u32(buffer, 64, RING_START);
    set_u32(buffer, 128, RING_START);
    ByteRing::at(buffer, 0, RING_CAPACITY).unwrap()
}

fn receive_all(rx: &mut sharedbuf::channel::ByteReceiver) {
    let deadline = Instant::now() + WATCHDOG;
    for seq in 0..RING_MESSAGES {
        let bytes = rx
            .recv(Some(deadline))
            .unwrap_or_else(|e| panic!("message {seq}: {e}"));
        assert_eq!(bytes, ring_message(seq), "message {seq}: in order, intact");
    }
    assert_eq!(rx.recv(Some(deadline)), Err(Error::Closed), "none left");
}

// docs/semantics.md X4, S8: a byte ring whose positions start just below 2^32 delivers every
// message in order and intact across the position wrap, sender and receiver on two threads
// (the ring fills, so both sides also sleep).
#[test]
fn byte_ring_messages_cross_the_position_wrap_in_order() {
    for shared in [false, true] {
        let buffer = buffer(shared, ByteRing::bytes_for(RING_CAPACITY).unwrap());
        let ring = ring_near_the_wrap(&buffer);
        let (mut tx, mut rx) = (ring.sender().unwrap(), ring.receiver().unwrap());
        let sender = spawn(move || {
            for seq in 0..RING_MESSAGES {
                tx.send(&ring_message(seq), None).unwrap();
            }
        });
        receive_all(&mut rx);
        sender.join("the sender");
        let position = get_u32(&buffer, 128) & !3;
        assert!(position < RING_START, "shared {shared}: the head wrapped");
    }
}

// docs/semantics.md X4, S8: the same across two processes: a child sends, the parent receives.
#[test]
fn byte_ring_messages_cross_the_position_wrap_between_processes() {
    let buffer = buffer(true, ByteRing::bytes_for(RING_CAPACITY).unwrap());
    let ring = ring_near_the_wrap(&buffer);
    let mut rx = ring.receiver().unwrap();
    let child = process_support::spawn_child(ROLES, "ring-sender", Some(&buffer), "");
    receive_all(&mut rx);
    process_support::expect_success(child, "the sending child");
}

/// The body of every child process of this file (a no-op in a normal test run).
#[test]
fn child_process_roles() {
    let Some(role) = process_support::child_role(ROLES) else {
        return;
    };
    assert_eq!(role, format!("{ROLES}:ring-sender"));
    let buffer = process_support::child_buffer();
    let ring = ByteRing::at(&buffer, 0, RING_CAPACITY).unwrap();
    let mut tx = ring.sender().unwrap();
    for seq in 0..RING_MESSAGES {
        tx.send(&ring_message(seq), None).unwrap();
    }
    // Dropping the sender closes the ring: the parent sees the end.
}

// ---------------------------------------------------------------------------------------------
// Process-shared waiter tickets: the header's next-ticket word (file offset 72) orders the
// waiters of every process (A9, X2).

/// Writes `value` into the header word at file offset `at`, as a peer process would.
fn poke_header(buffer: &SharedBuffer, at: u64, value: u64) {
    let file = std::fs::File::from(buffer.as_fd().unwrap().try_clone_to_owned().unwrap());
    file.write_all_at(&value.to_ne_bytes(), at).unwrap();
}

// docs/semantics.md A9, X2, S8: waiters on a process-shared buffer whose tickets straddle the
// 2^64 wrap are still woken oldest first.
// Fault: `notify` sorted the queued waiters by ticket, so the waiters that got tickets after
// the wrap (0, 1) were woken before the older ones (2^64 − 2, 2^64 − 1).
#[test]
fn x2_fifo_holds_across_the_ticket_wrap() {
    let _serial = common::serial();
    const WAITERS: usize = 4;
    for start in [u64::MAX - 1, u64::MAX - 3, (1 << 63) - 2] {
        let buffer = buffer(true, 8);
        poke_header(&buffer, 72, start);
        let view = Int32Array::new(&buffer).unwrap();
        let (woken_tx, woken_rx) = mpsc::channel();
        let waiters: Vec<_> = (0..WAITERS)
            .map(|k| common::spawn_blocked(&view, 0, 0, None, common::report_woken(&woken_tx, k)))
            .collect();
        for expected in 0..WAITERS {
            assert_eq!(atomics::notify(&view, 0, Some(1)).unwrap(), 1);
            let woken = common::recv_within(&woken_rx, "the woken waiter");
            assert_eq!(woken, expected, "tickets from {start:#x}: oldest first");
        }
        for waiter in waiters {
            waiter.join().unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The job queue's `seq`: the last job id given out, a Redis string the scripts accept up to
// 2^53 (Lua numbers are doubles).

/// Job ids from here on cross 10^14, where Lua 5.1's own number-to-string conversion (`..`,
/// `tostring`, 14 significant digits) turns to exponents: `1e+14`.
#[cfg(feature = "redis")]
const SEQ_START: u64 = 100_000_000_000_000 - 3;

// docs/semantics.md Q3, Q5, S8: with `seq` just below 10^14, delayed jobs each run once with
// their own payload and id, and a dedupe key names its job's real id.
// Fault: ADD built the delayed job's hash key and the dedupe key's `pending:<id>` by Lua
// concatenation, so from 10^14 on the ids of several jobs printed alike (`delayed:1e+14`):
// their hashes overwrote each other, FETCH (which names the key by the id string Redis
// stored, `100000000000001`) found none, and a duplicate's owner was read as job 14.
#[cfg(feature = "redis")]
#[test]
fn queue_job_ids_past_ten_to_the_fourteenth() {
    use queue_support::{queue_name, redis_or_skip, wait_until};
    use sharedbuf::pool::WorkerPool;
    use sharedbuf::queue::{redis, Added, JobOptions, JobQueue};
    use std::collections::BTreeMap;
    use std::sync::Mutex as StdMutex;
    use std::time::Duration;

    let Some(server) = redis_or_skip("queue_job_ids_past_ten_to_the_fourteenth") else {
        return;
    };
    let name = queue_name("wrap-seq");
    let mut con = server.connection();
    let _: () = redis::cmd("SET")
        .arg(format!("sbq:{{{name}}}:seq"))
        .arg(SEQ_START)
        .query(&mut con)
        .unwrap();
    let queue = JobQueue::connect(&server.url(), &name).unwrap();
    let delay = JobOptions::new().delay(Duration::from_millis(20));
    let mut expected = BTreeMap::new();
    for n in 0..6u64 {
        let payload = format!("delayed {n}").into_bytes();
        let added = queue.add(&payload, delay.clone()).unwrap();
        assert_eq!(
            added,
            Added::New(sharedbuf::queue::JobId(SEQ_START + 1 + n))
        );
        expected.insert(added.id().0, payload);
    }
    let keyed = queue.add(b"keyed", delay.clone().dedupe("wrap")).unwrap();
    assert!(keyed.is_new());
    expected.insert(keyed.id().0, b"keyed".to_vec());
    assert_eq!(
        queue
            .add(b"keyed again", JobOptions::new().dedupe("wrap"))
            .unwrap(),
        Added::Duplicate(keyed.id()),
        "the key names its job's id"
    );

    let ran = Arc::new(StdMutex::new(BTreeMap::new()));
    let record = Arc::clone(&ran);
    let pool = Arc::new(WorkerPool::builder().max_threads(2).build().unwrap());
    let consumer = queue
        .consumer("wrap-seq")
        .run_on(&pool, move |job, _ctx| {
            let previous = record
                .lock()
                .unwrap()
                .insert(job.id().0, job.payload().to_vec());
            assert!(previous.is_none(), "job {} ran twice", job.id());
            Ok(())
        })
        .unwrap();
    wait_until("every delayed job ran or failed", || {
        let stats = queue.stats().unwrap();
        stats.delayed == 0 && stats.waiting == 0 && stats.active == 0
    });
    consumer.close(Some(WATCHDOG)).unwrap();
    assert_eq!(
        *ran.lock().unwrap(),
        expected,
        "each job once, with its payload"
    );
    assert_eq!(queue.stats().unwrap().dead_lettered, 0);
}

// docs/semantics.md Q11, S8: ids are exact up to 2^53 (Lua numbers are doubles): a call whose
// jobs would need ids past it adds none and says why, and the ids up to it are given out once.
// Fault: ADD refused only a `seq` already at 2^53, so a batch begun below it gave its later
// jobs rounded ids: 2^53 + 1 came out as 2^53 again, two jobs under one id.
#[cfg(feature = "redis")]
#[test]
fn queue_job_ids_end_at_two_to_the_fifty_third() {
    use queue_support::{queue_name, redis_or_skip};
    use sharedbuf::queue::{redis, Added, JobId, JobOptions, JobQueue};

    let Some(server) = redis_or_skip("queue_job_ids_end_at_two_to_the_fifty_third") else {
        return;
    };
    const LAST: u64 = 1 << 53;
    let name = queue_name("wrap-seq-end");
    let mut con = server.connection();
    let _: () = redis::cmd("SET")
        .arg(format!("sbq:{{{name}}}:seq"))
        .arg(LAST - 2)
        .query(&mut con)
        .unwrap();
    let queue = JobQueue::connect(&server.url(), &name).unwrap();
    let three = vec![(&b"a"[..], JobOptions::new()); 3];
    match queue.add_batch(three) {
        Err(error) => assert!(error.to_string().contains("seq"), "{error}"),
        Ok(added) => panic!("three ids past {}: {added:?}", LAST - 2),
    }
    assert_eq!(
        queue.stats().unwrap().waiting,
        0,
        "a refused call adds nothing"
    );
    let two = queue
        .add_batch(vec![(&b"b"[..], JobOptions::new()); 2])
        .unwrap();
    assert_eq!(two, [Added::New(JobId(LAST - 1)), Added::New(JobId(LAST))]);
    let error = queue.add(b"c", JobOptions::new()).unwrap_err();
    assert!(error.to_string().contains("seq"), "{error}");
    assert_eq!(queue.stats().unwrap().waiting, 2);
}
