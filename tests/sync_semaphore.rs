//! `sync::Semaphore` (docs/semantics.md S1, S3, S5, S6): the contract, attaching, limits,
//! several handles, fairness for a large acquire, a stress run with its invariants, and
//! terminate of a worker blocked in `acquire`.
#![cfg(not(loom))]

mod common;
mod sync_support;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use sharedbuf::sync::Semaphore;
use sharedbuf::{Error, Int32Array, SharedBuffer, Uint32Array};
use sync_support::{buffer, spawn, spawn_blocked, terminate_while_blocked};

const MAX: u32 = Semaphore::MAX_PERMITS;

/// The semaphore's word, read through a view, without its `WAITING` bit (bit 0), which a
/// waiter that gave up may leave set (it only costs the next release a notify that finds
/// nobody). What is left must be `permits << 2`: no reservation (`HEIR`, bit 1) left behind.
fn word(buffer: &SharedBuffer, byte_offset: usize) -> u32 {
    Uint32Array::with_range(buffer, byte_offset, Some(1))
        .unwrap()
        .get(0)
        .unwrap()
        & !1
}

// docs/semantics.md S1
#[test]
fn s1_fresh_bytes_are_a_semaphore_with_no_permits() {
    let buffer = buffer(64);
    let semaphore = Semaphore::at(&buffer, 8).unwrap();
    assert_eq!(semaphore.available(), 0);
    assert_eq!(semaphore.try_acquire(1), Ok(false));
    assert_eq!(semaphore.try_acquire(0), Ok(true));
    assert_eq!(semaphore.acquire_for(1, Duration::ZERO), Ok(false));
    assert_eq!(semaphore.acquire(0), Ok(()));
    assert_eq!(
        word(&buffer, 8),
        0,
        "attaching and failing to acquire wrote nothing"
    );
    assert_eq!((Semaphore::BYTES, Semaphore::ALIGN), (4, 4));
    assert_eq!(
        (semaphore.byte_offset(), semaphore.buffer().byte_length()),
        (8, 64)
    );
}

#[test]
fn release_and_acquire_count_permits() {
    let buffer = buffer(8);
    let semaphore = Semaphore::at(&buffer, 4).unwrap();
    semaphore.release(3).unwrap();
    assert_eq!(semaphore.available(), 3);
    assert_eq!(semaphore.try_acquire(2), Ok(true));
    assert_eq!(semaphore.available(), 1);
    assert_eq!(semaphore.try_acquire(2), Ok(false));
    assert_eq!(
        semaphore.acquire_for(2, Duration::from_millis(1)),
        Ok(false)
    );
    assert_eq!(
        semaphore.available(),
        1,
        "a timed-out acquire takes nothing"
    );
    semaphore.acquire(1).unwrap();
    assert_eq!(semaphore.available(), 0);
    semaphore.release(0).unwrap();
    assert_eq!(word(&buffer, 4), 0);
}

#[test]
fn s1_bad_places_are_refused() {
    let buffer = buffer(16);
    assert_eq!(
        Semaphore::at(&buffer, 2).err(),
        Some(Error::Misaligned {
            byte_offset: 2,
            align: 4
        })
    );
    assert!(matches!(
        Semaphore::at(&buffer, 16),
        Err(Error::RangeOutOfBounds {
            start: 16,
            end: 20,
            len: 16
        })
    ));
    assert!(matches!(
        Semaphore::at(&buffer, usize::MAX - 3),
        Err(Error::RangeOutOfBounds { .. })
    ));
    assert!(matches!(
        Semaphore::at(&SharedBuffer::new(2).unwrap(), 0),
        Err(Error::RangeOutOfBounds { .. })
    ));
    assert!(
        Semaphore::at(&buffer, 12).is_ok(),
        "the last place that fits"
    );
}

#[test]
fn counts_past_the_maximum_are_refused_and_change_nothing() {
    let semaphore = Semaphore::at(&buffer(4), 0).unwrap();
    let too_many = Error::CountOutOfRange {
        count: "semaphore permits asked for",
        value: i64::from(MAX) + 1,
        min: 0,
        max: i64::from(MAX),
    };
    assert_eq!(semaphore.try_acquire(MAX + 1), Err(too_many.clone()));
    assert_eq!(semaphore.acquire(MAX + 1), Err(too_many.clone()));
    assert!(matches!(
        semaphore.acquire_for(u32::MAX, Duration::ZERO),
        Err(Error::CountOutOfRange { .. })
    ));
    semaphore.release(MAX - 1).unwrap();
    assert_eq!(
        semaphore.release(2),
        Err(Error::CountOutOfRange {
            count: "semaphore permits",
            value: i64::from(MAX) + 1,
            min: 0,
            max: i64::from(MAX),
        })
    );
    assert_eq!(semaphore.available(), MAX - 1);
    semaphore.release(1).unwrap();
    assert_eq!(semaphore.available(), MAX);
    assert!(semaphore.release(u32::MAX).is_err());
    assert_eq!(semaphore.try_acquire(MAX), Ok(true));
    assert_eq!(semaphore.available(), 0);
}

// docs/semantics.md S1: handles attached separately, and clones, are one semaphore.
#[test]
fn s1_several_handles_agree() {
    let buffer = buffer(32);
    let first = Semaphore::at(&buffer, 16).unwrap();
    let second = Semaphore::at(&buffer.clone(), 16).unwrap();
    let clone = first.clone();
    let elsewhere = Semaphore::at(&buffer, 20).unwrap();
    first.release(5).unwrap();
    assert_eq!((second.available(), clone.available()), (5, 5));
    assert_eq!(second.try_acquire(4), Ok(true));
    assert_eq!(clone.try_acquire(2), Ok(false));
    assert_eq!(clone.try_acquire(1), Ok(true));
    assert_eq!(first.available(), 0);
    assert_eq!(
        elsewhere.available(),
        0,
        "another offset is another semaphore"
    );
    assert!(format!("{first:?}").contains("available: 0"));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn a_blocked_acquire_waits_until_it_can_take_all_it_asked_for() {
    let buffer = buffer(4);
    let semaphore = Semaphore::at(&buffer, 0).unwrap();
    let waiter = {
        let semaphore = semaphore.clone();
        spawn_blocked(move || semaphore.acquire(3))
    };
    semaphore.release(2).unwrap();
    // Two permits cannot satisfy it: it may wake, but it cannot return.
    assert!(waiter.try_result().is_none());
    semaphore.release(1).unwrap();
    assert_eq!(waiter.join("acquire(3)"), Ok(()));
    assert_eq!(semaphore.available(), 0);
    assert_eq!(word(&buffer, 0), 0, "no reservation left behind");
}

#[test]
fn a_release_happens_before_the_acquire_that_takes_its_permits() {
    let buffer = buffer(8);
    let semaphore = Semaphore::at(&buffer, 0).unwrap();
    let data = Int32Array::with_range(&buffer, 4, Some(1)).unwrap();
    // Fewer rounds under Miri, which interprets the threads about a thousand times slower.
    for round in 1..=if cfg!(miri) { 10 } else { 200 } {
        let reader = {
            let (semaphore, data) = (semaphore.clone(), data.clone());
            spawn(move || {
                semaphore.acquire(1).unwrap();
                data.get(0).unwrap()
            })
        };
        data.set(0, round).unwrap(); // a plain (relaxed) write
        semaphore.release(1).unwrap();
        assert_eq!(reader.join("acquire"), round);
    }
}

// docs/semantics.md S3: a timed-out acquire takes nothing and leaves no flag that would hold
// back others.
#[test]
fn s3_a_timed_out_acquire_takes_nothing() {
    let buffer = buffer(4);
    let semaphore = Semaphore::at(&buffer, 0).unwrap();
    semaphore.release(1).unwrap();
    for _ in 0..20 {
        assert_eq!(
            semaphore.acquire_for(2, Duration::from_millis(2)),
            Ok(false)
        );
    }
    assert_eq!(semaphore.available(), 1);
    assert_eq!(
        semaphore.try_acquire(1),
        Ok(true),
        "no heir left reserving permits"
    );
    assert_eq!(word(&buffer, 0), 0);
}

// docs/semantics.md S5: once a large acquire has waited about 1 ms, small acquires stop taking
// the permits it needs. The loop runs until that happens (however long it takes: no timing
// threshold); a semaphore without the guarantee would loop until the watchdog.
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s5_a_starving_large_acquire_reserves_released_permits() {
    let buffer = buffer(4);
    let semaphore = Semaphore::at(&buffer, 0).unwrap();
    let big = {
        let semaphore = semaphore.clone();
        spawn_blocked(move || semaphore.acquire(2))
    };
    let start = std::time::Instant::now();
    loop {
        semaphore.release(1).unwrap();
        // A small acquire takes the permit, until the large one reserves it.
        if !semaphore.try_acquire(1).unwrap() {
            break;
        }
        assert!(
            start.elapsed() < sync_support::WATCHDOG,
            "the starving acquire(2) never reserved the permits"
        );
        thread::yield_now();
    }
    assert_eq!(
        semaphore.available(),
        1,
        "the permit is reserved, not taken"
    );
    assert!(
        big.try_result().is_none(),
        "one permit cannot satisfy acquire(2)"
    );
    semaphore.release(1).unwrap();
    assert_eq!(big.join("acquire(2)"), Ok(()));
    assert_eq!(semaphore.try_acquire(1), Ok(false));
    semaphore.release(1).unwrap();
    assert_eq!(
        semaphore.try_acquire(1),
        Ok(true),
        "the reservation ended with the acquire"
    );
    assert_eq!(word(&buffer, 0), 0);
}

// docs/semantics.md S5: the same under load: two threads keep taking and returning single
// permits; an acquire of both must still get through.
#[test]
fn s5_a_large_acquire_gets_through_a_stream_of_small_ones() {
    let semaphore = Semaphore::at(&buffer(4), 0).unwrap();
    semaphore.release(2).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let small: Vec<_> = (0..2)
        .map(|_| {
            let (semaphore, stop) = (semaphore.clone(), stop.clone());
            spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(SeqCst) {
                    semaphore.acquire(1).unwrap();
                    std::hint::spin_loop();
                    semaphore.release(1).unwrap();
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    for _ in 0..20 {
        semaphore.acquire(2).unwrap();
        semaphore.release(2).unwrap();
    }
    stop.store(true, SeqCst);
    for thread in small {
        thread.join("small acquirer");
    }
    assert_eq!(semaphore.available(), 2);
}

// Stress: 4 threads acquire 1–3 of 4 permits, hold them while checking that no more than 4
// are held in all (a count kept beside the semaphore), sometimes with a short timeout. The
// permits and the word come back exactly.
#[test]
fn stress_permits_are_conserved_and_never_overcommitted() {
    const PERMITS: u32 = 4;
    const ROUNDS: u32 = if cfg!(miri) { 100 } else { 20_000 };
    let buffer = buffer(4);
    let semaphore = Semaphore::at(&buffer, 0).unwrap();
    semaphore.release(PERMITS).unwrap();
    let held = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let (semaphore, held) = (semaphore.clone(), held.clone());
            spawn(move || {
                let mut timeouts = 0;
                for round in 0..ROUNDS {
                    let n = 1 + (round + t) % 3;
                    if round % 7 == 0 {
                        if !semaphore.acquire_for(n, Duration::from_micros(50)).unwrap() {
                            timeouts += 1;
                            continue;
                        }
                    } else {
                        semaphore.acquire(n).unwrap();
                    }
                    let now = held.fetch_add(n, SeqCst) + n;
                    assert!(now <= PERMITS, "{now} permits held at once");
                    held.fetch_sub(n, SeqCst);
                    semaphore.release(n).unwrap();
                }
                timeouts
            })
        })
        .collect();
    for thread in threads {
        thread.join("stress thread");
    }
    assert_eq!(semaphore.available(), PERMITS);
    assert_eq!(word(&buffer, 0), PERMITS << 2, "no reservation left set");
}

// docs/semantics.md S6
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s6_terminate_interrupts_a_worker_blocked_in_acquire() {
    let semaphore = Semaphore::at(&buffer(4), 0).unwrap();
    semaphore.release(1).unwrap();
    for timed in [false, true] {
        let inside = semaphore.clone();
        let result = terminate_while_blocked(move || {
            if timed {
                inside.acquire_for(2, Duration::from_secs(3600)).map(drop)
            } else {
                inside.acquire(2)
            }
        });
        assert_eq!(result, Err(Error::Terminated));
        assert_eq!(
            semaphore.available(),
            1,
            "an interrupted acquire takes nothing"
        );
        assert_eq!(semaphore.try_acquire(1), Ok(true), "and reserves nothing");
        semaphore.release(1).unwrap();
    }
}
