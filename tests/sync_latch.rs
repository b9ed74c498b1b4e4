//! `sync::Latch` (docs/semantics.md S1, S3, S6): counting up and down, waiting for zero, limits,
//! reuse, a zero that is re-raised at once, several handles, a stress run of wait-group rounds,
//! and terminate of a worker blocked in `wait`.
#![cfg(not(loom))]

mod common;
mod sync_support;

use std::time::Duration;

use sharedbuf::sync::Latch;
use sharedbuf::{Error, Int32Array, SharedBuffer, Uint32Array};
use sync_support::{buffer, spawn, spawn_blocked, terminate_while_blocked};

fn below_zero() -> Error {
    Error::CountOutOfRange {
        count: "latch count",
        value: -1,
        min: 0,
        max: i64::from(u32::MAX),
    }
}

// docs/semantics.md S1
#[test]
fn s1_fresh_bytes_are_a_latch_at_zero() {
    let buffer = buffer(16);
    let latch = Latch::at(&buffer, 8).unwrap();
    assert_eq!(latch.count(), 0);
    assert_eq!(latch.wait(), Ok(()));
    assert_eq!(latch.wait_for(Duration::ZERO), Ok(true));
    assert_eq!(latch.count_down(), Err(below_zero()));
    assert_eq!(
        Uint32Array::new(&buffer).unwrap().to_vec(),
        [0; 4],
        "nothing written"
    );
    assert_eq!((Latch::BYTES, Latch::ALIGN), (8, 4));
    assert_eq!(latch.byte_offset(), 8);
}

#[test]
fn s1_bad_places_are_refused() {
    let buffer = buffer(16);
    assert_eq!(
        Latch::at(&buffer, 6).err(),
        Some(Error::Misaligned {
            byte_offset: 6,
            align: 4
        })
    );
    assert!(matches!(
        Latch::at(&buffer, 12),
        Err(Error::RangeOutOfBounds {
            start: 12,
            end: 20,
            len: 16
        })
    ));
    assert!(matches!(
        Latch::at(&buffer, usize::MAX - 3),
        Err(Error::RangeOutOfBounds { .. })
    ));
    assert!(matches!(
        Latch::at(&SharedBuffer::new(4).unwrap(), 0),
        Err(Error::RangeOutOfBounds { .. })
    ));
    assert!(Latch::at(&buffer, 8).is_ok());
}

#[test]
fn counts_out_of_range_are_refused_and_change_nothing() {
    let latch = Latch::at(&buffer(8), 0).unwrap();
    latch.count_up(u32::MAX - 1).unwrap();
    assert_eq!(
        latch.count_up(2),
        Err(Error::CountOutOfRange {
            count: "latch count",
            value: i64::from(u32::MAX) + 1,
            min: 0,
            max: i64::from(u32::MAX),
        })
    );
    assert_eq!(latch.count(), u32::MAX - 1);
    latch.count_up(1).unwrap();
    latch.count_up(0).unwrap();
    assert_eq!(latch.count(), u32::MAX);
    latch.count_down().unwrap();
    assert_eq!(latch.count(), u32::MAX - 1);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn waiters_pass_only_when_the_count_reaches_zero() {
    let latch = Latch::at(&buffer(8), 0).unwrap();
    latch.count_up(3).unwrap();
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let latch = latch.clone();
            spawn_blocked(move || latch.wait())
        })
        .collect();
    latch.count_down().unwrap();
    latch.count_down().unwrap();
    assert_eq!(latch.count(), 1);
    for waiter in &waiters {
        assert!(waiter.try_result().is_none(), "passed before zero");
    }
    latch.count_down().unwrap();
    for waiter in waiters {
        assert_eq!(waiter.join("wait"), Ok(()));
    }
    assert_eq!(latch.count_down(), Err(below_zero()));
}

/// `count_down_by(n)`: one step of `n`; refused (nothing changed) below `n`; the step that
/// reaches zero wakes the waiters, `n == 0` changes nothing.
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn count_down_by_steps_n_at_once_and_the_step_to_zero_wakes() {
    let latch = Latch::at(&buffer(8), 0).unwrap();
    latch.count_up(10).unwrap();
    let waiter = {
        let latch = latch.clone();
        spawn_blocked(move || latch.wait())
    };
    latch.count_down_by(4).unwrap();
    latch.count_down_by(0).unwrap();
    assert_eq!(latch.count(), 6);
    let refused = latch.count_down_by(7).unwrap_err();
    assert!(
        matches!(refused, Error::CountOutOfRange { value: -1, .. }),
        "{refused:?}"
    );
    assert_eq!(latch.count(), 6, "a refused step changes nothing");
    assert!(waiter.try_result().is_none(), "passed before zero");
    latch.count_down_by(6).unwrap();
    assert_eq!(waiter.join("wait"), Ok(()));
    assert_eq!(latch.count_down_by(1), Err(below_zero()));
}

// A waiter that began before the count reached zero returns even if the count is raised again
// before it runs (it never misses the zero it waited for).
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn a_waiter_does_not_miss_a_zero_raised_again_at_once() {
    let latch = Latch::at(&buffer(8), 0).unwrap();
    for _ in 0..50 {
        latch.count_up(1).unwrap();
        let waiter = {
            let latch = latch.clone();
            spawn_blocked(move || latch.wait())
        };
        latch.count_down().unwrap();
        latch.count_up(1).unwrap(); // the next round starts before the waiter wakes
        assert_eq!(waiter.join("wait"), Ok(()));
        latch.count_down().unwrap();
    }
}

// docs/semantics.md S3
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s3_wait_for_gives_up_and_changes_nothing() {
    let latch = Latch::at(&buffer(8), 0).unwrap();
    latch.count_up(1).unwrap();
    assert_eq!(latch.wait_for(Duration::from_millis(2)), Ok(false));
    assert_eq!(latch.wait_for(Duration::ZERO), Ok(false));
    assert_eq!(latch.count(), 1);
    let waiter = {
        let latch = latch.clone();
        spawn_blocked(move || latch.wait_for(Duration::from_secs(3600)))
    };
    latch.count_down().unwrap();
    assert_eq!(waiter.join("wait_for"), Ok(true));
}

// docs/semantics.md S1
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s1_several_handles_agree() {
    let buffer = buffer(16);
    let a = Latch::at(&buffer, 4).unwrap();
    let b = Latch::at(&buffer.clone(), 4).unwrap();
    let elsewhere = Latch::at(&buffer, 8).unwrap();
    a.count_up(2).unwrap();
    assert_eq!(b.clone().count(), 2);
    assert_eq!(elsewhere.count(), 0, "another offset is another latch");
    let waiter = {
        let a = a.clone();
        spawn_blocked(move || a.wait())
    };
    b.count_down().unwrap();
    b.clone().count_down().unwrap();
    assert_eq!(waiter.join("wait"), Ok(()));
    assert!(format!("{a:?}").contains("count: 0"));
}

// Stress, as a wait group: 200 rounds, each counting up 4, four threads each writing its
// result (plain writes) and counting down, the main thread waiting and then reading every
// result: a count-down happens-before the wait it ends.
#[test]
fn stress_rounds_of_a_wait_group() {
    const THREADS: usize = 4;
    let buffer = buffer(8 + 4 * THREADS);
    let latch = Latch::at(&buffer, 0).unwrap();
    let results = Int32Array::with_range(&buffer, 8, Some(THREADS)).unwrap();
    // Fewer rounds under Miri, which interprets the threads about a thousand times slower.
    for round in 1..=if cfg!(miri) { 10 } else { 200 } {
        latch.count_up(THREADS as u32).unwrap();
        let threads: Vec<_> = (0..THREADS)
            .map(|me| {
                let (latch, results) = (latch.clone(), results.clone());
                spawn(move || {
                    results.set(me, round * 10 + me as i32).unwrap();
                    latch.count_down()
                })
            })
            .collect();
        latch.wait().unwrap();
        for me in 0..THREADS {
            assert_eq!(results.get(me), Some(round * 10 + me as i32));
        }
        for thread in threads {
            assert_eq!(thread.join("count_down"), Ok(()));
        }
    }
    assert_eq!(latch.count(), 0);
}

// docs/semantics.md S6
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s6_terminate_interrupts_a_worker_blocked_in_wait() {
    let latch = Latch::at(&buffer(8), 0).unwrap();
    latch.count_up(1).unwrap();
    for timed in [false, true] {
        let inside = latch.clone();
        let result = terminate_while_blocked(move || {
            if timed {
                inside.wait_for(Duration::from_secs(3600)).map(drop)
            } else {
                inside.wait()
            }
        });
        assert_eq!(result, Err(Error::Terminated));
        assert_eq!(latch.count(), 1);
    }
}
