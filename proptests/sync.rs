//! Random sequences of non-blocking `sync` operations on one thread against a model
//! (docs/semantics.md S1, S2): what every `try_` call returns, what the locks report, and that
//! the bytes return to all zero once every guard is dropped. Plus random attach offsets against
//! the rule "aligned and within the buffer".

#![cfg(not(loom))]

use std::time::Duration;

use proptest::prelude::*;
use sharedbuf::sync::{
    Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError,
};
use sharedbuf::{Error, SharedBuffer, Uint32Array};

const BUF_LEN: usize = 64;

#[derive(Debug, Clone, Copy)]
enum Op {
    /// `try_lock` (or `try_lock_for(0)`) through handle 0 or 1 of the mutex.
    TryLock {
        handle: usize,
        timed: bool,
    },
    Unlock,
    /// `try_read` (or `try_read_for(0)`) through handle 0 or 1 of the rwlock.
    TryRead {
        handle: usize,
        timed: bool,
    },
    /// Drops the read guard at this position (modulo how many are held).
    DropRead(usize),
    TryWrite {
        handle: usize,
        timed: bool,
    },
    DropWrite,
    /// `notify(n)` on the condvar: nobody ever waits, so 0.
    Notify(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let handle = 0..2usize;
    prop_oneof![
        (handle.clone(), any::<bool>()).prop_map(|(handle, timed)| Op::TryLock { handle, timed }),
        Just(Op::Unlock),
        (handle.clone(), any::<bool>()).prop_map(|(handle, timed)| Op::TryRead { handle, timed }),
        (0..8usize).prop_map(Op::DropRead),
        (handle, any::<bool>()).prop_map(|(handle, timed)| Op::TryWrite { handle, timed }),
        Just(Op::DropWrite),
        (0..4usize).prop_map(Op::Notify),
    ]
}

proptest! {
    #[test]
    fn try_operations_follow_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let buffer = SharedBuffer::new(BUF_LEN).unwrap();
        let mutexes = [Mutex::at(&buffer, 0).unwrap(), Mutex::at(&buffer.clone(), 0).unwrap()];
        let condvar = Condvar::at(&buffer, 16).unwrap();
        let rwlocks = [RwLock::at(&buffer, 24).unwrap(), RwLock::at(&buffer, 24).unwrap()];

        let mut mutex_guard: Option<MutexGuard<'_>> = None;
        let mut reads: Vec<RwLockReadGuard<'_>> = Vec::new();
        let mut write: Option<RwLockWriteGuard<'_>> = None;

        for op in ops {
            match op {
                Op::TryLock { handle, timed } => {
                    let mutex = &mutexes[handle];
                    let got = if timed { mutex.try_lock_for(Duration::ZERO) } else { mutex.try_lock() };
                    if mutex_guard.is_some() {
                        // Held by this very thread: refused, whichever handle asks (S2).
                        prop_assert_eq!(got.map_err(Error::from).err(), Some(Error::WouldDeadlock));
                    } else {
                        prop_assert!(got.is_ok(), "a free mutex is taken");
                        mutex_guard = got.ok();
                    }
                }
                Op::Unlock => drop(mutex_guard.take()),
                Op::TryRead { handle, timed } => {
                    let lock = &rwlocks[handle];
                    let got = if timed { lock.try_read_for(Duration::ZERO) } else { lock.try_read() };
                    if write.is_some() {
                        prop_assert_eq!(got.map_err(Error::from).err(), Some(Error::WouldDeadlock));
                    } else {
                        prop_assert!(got.is_ok(), "no writer: readers share");
                        reads.extend(got.ok());
                    }
                }
                Op::DropRead(k) => {
                    if !reads.is_empty() {
                        let k = k % reads.len();
                        drop(reads.swap_remove(k));
                    }
                }
                Op::TryWrite { handle, timed } => {
                    let lock = &rwlocks[handle];
                    let got = if timed { lock.try_write_for(Duration::ZERO) } else { lock.try_write() };
                    if write.is_some() {
                        prop_assert_eq!(got.map_err(Error::from).err(), Some(Error::WouldDeadlock));
                    } else if !reads.is_empty() {
                        // Readers are not recorded: held for reading by this thread is "busy".
                        prop_assert!(matches!(got, Err(TryLockError::WouldBlock)));
                    } else {
                        prop_assert!(got.is_ok(), "a free lock is taken for writing");
                        write = got.ok();
                    }
                }
                Op::DropWrite => drop(write.take()),
                Op::Notify(n) => prop_assert_eq!(condvar.notify(n), 0),
            }
            for mutex in &mutexes {
                prop_assert_eq!(mutex.is_locked(), mutex_guard.is_some());
            }
            for lock in &rwlocks {
                prop_assert_eq!(lock.reader_count(), reads.len());
                prop_assert_eq!(lock.is_write_locked(), write.is_some());
            }
        }
        drop((mutex_guard, reads, write));
        // Every guard gone: the bytes are all zero again, except sequence numbers (none moved:
        // nobody ever waited), so everything.
        let words = Uint32Array::new(&buffer).unwrap().to_vec();
        prop_assert!(words.iter().all(|&w| w == 0), "bytes left behind: {:?}", words);
    }

    #[test]
    fn attaching_succeeds_exactly_when_aligned_and_in_bounds(offset in 0..BUF_LEN + 16) {
        let buffer = SharedBuffer::new(BUF_LEN).unwrap();
        let cases: [(usize, usize, Result<(), Error>); 3] = [
            (Mutex::BYTES, Mutex::ALIGN, Mutex::at(&buffer, offset).map(drop)),
            (Condvar::BYTES, Condvar::ALIGN, Condvar::at(&buffer, offset).map(drop)),
            (RwLock::BYTES, RwLock::ALIGN, RwLock::at(&buffer, offset).map(drop)),
        ];
        for (bytes, align, result) in cases {
            let expected = if offset % align != 0 {
                Err(Error::Misaligned { byte_offset: offset, align })
            } else if offset + bytes > BUF_LEN {
                Err(Error::RangeOutOfBounds { start: offset, end: offset + bytes, len: BUF_LEN })
            } else {
                Ok(())
            };
            prop_assert_eq!(result, expected);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Poke {
    TryLock,
    TryLockForZero,
    TryRead,
    TryReadForZero,
    TryWrite,
    TryWriteForZero,
    Notify(usize),
    WaitForZero,
}

/// A word of garbage, biased toward the edges where counts overflow.
fn garbage_word() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (u32::MAX - 64)..=u32::MAX, 0..64u32, Just(0),]
}

fn poke() -> impl Strategy<Value = Poke> {
    prop_oneof![
        Just(Poke::TryLock),
        Just(Poke::TryLockForZero),
        Just(Poke::TryRead),
        Just(Poke::TryReadForZero),
        Just(Poke::TryWrite),
        Just(Poke::TryWriteForZero),
        (0..3usize).prop_map(Poke::Notify),
        Just(Poke::WaitForZero),
    ]
}

proptest! {
    /// Whatever the bytes hold (another thread or process scribbled over them), every call
    /// that cannot block forever returns — `Ok` or `Err` — and none panics, debug builds
    /// included (no arithmetic overflow on a garbage count). A garbage lock may stay taken;
    /// that is the scribbler's doing, not undefined behaviour.
    #[test]
    fn garbage_bytes_never_panic(
        garbage in prop::collection::vec(garbage_word(), 12),
        pokes in prop::collection::vec(poke(), 1..12),
    ) {
        let buffer = SharedBuffer::new(BUF_LEN).unwrap();
        Uint32Array::with_range(&buffer, 0, Some(12)).unwrap().copy_from_slice(0, &garbage).unwrap();
        let mutex = Mutex::at(&buffer, 0).unwrap();
        let condvar = Condvar::at(&buffer, 16).unwrap();
        let rwlock = RwLock::at(&buffer, 24).unwrap();
        // A clean mutex for the condition variable: a garbage mutex may never be free again,
        // and a condition variable's wait takes its mutex back without a deadline.
        let clean = Mutex::at(&buffer, 48).unwrap();
        for poke in pokes {
            match poke {
                Poke::TryLock => drop(mutex.try_lock()),
                Poke::TryLockForZero => drop(mutex.try_lock_for(Duration::ZERO)),
                Poke::TryRead => drop(rwlock.try_read()),
                Poke::TryReadForZero => drop(rwlock.try_read_for(Duration::ZERO)),
                Poke::TryWrite => drop(rwlock.try_write()),
                Poke::TryWriteForZero => drop(rwlock.try_write_for(Duration::ZERO)),
                Poke::Notify(n) => drop(condvar.notify(n)),
                Poke::WaitForZero => {
                    let guard = clean.lock().unwrap();
                    let (guard, _) = condvar.wait_for(guard, Duration::ZERO).unwrap();
                    drop(guard);
                }
            }
        }
    }
}
