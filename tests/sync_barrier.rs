//! `sync::Barrier` (docs/semantics.md S1, S3, S6): parties set once under concurrent attach,
//! one leader per generation, nobody passes early, reuse, withdrawal on timeout and terminate,
//! `arrive_and_drop`, several handles, and a stress run with its invariants.
#![cfg(not(loom))]

mod common;
mod sync_support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use sharedbuf::sync::Barrier;
use sharedbuf::{Error, Int32Array, SharedBuffer, Uint32Array};
use sync_support::{buffer, spawn, spawn_blocked, terminate_while_blocked};

/// The barrier's 16 bytes as four 32-bit words: state (low, high), parties, sequence.
fn words(buffer: &SharedBuffer, byte_offset: usize) -> Vec<u32> {
    Uint32Array::with_range(buffer, byte_offset, Some(4))
        .unwrap()
        .to_vec()
}

// docs/semantics.md S1
#[test]
fn s1_a_fresh_barrier_of_one_party_always_passes_as_leader() {
    let buffer = buffer(32);
    let barrier = Barrier::at(&buffer, 16, 1).unwrap();
    assert_eq!(
        words(&buffer, 16),
        [0, 0, 1, 0],
        "attaching wrote only the parties"
    );
    for _ in 0..3 {
        assert!(barrier.wait().unwrap().is_leader());
    }
    assert_eq!(
        barrier
            .wait_for(Duration::ZERO)
            .unwrap()
            .map(|r| r.is_leader()),
        Some(true)
    );
    assert_eq!((barrier.parties(), barrier.expected()), (1, 1));
    assert_eq!((Barrier::BYTES, Barrier::ALIGN), (16, 8));
    assert_eq!(barrier.byte_offset(), 16);
}

#[test]
fn s1_bad_places_and_party_counts_are_refused_and_write_nothing() {
    let buffer = buffer(32);
    assert_eq!(
        Barrier::at(&buffer, 4, 2).err(),
        Some(Error::Misaligned {
            byte_offset: 4,
            align: 8
        })
    );
    assert!(matches!(
        Barrier::at(&buffer, 24, 2),
        Err(Error::RangeOutOfBounds {
            start: 24,
            end: 40,
            len: 32
        })
    ));
    assert!(matches!(
        Barrier::at(&buffer, usize::MAX - 7, 2),
        Err(Error::RangeOutOfBounds { .. })
    ));
    assert!(matches!(
        Barrier::at(&SharedBuffer::new(8).unwrap(), 0, 2),
        Err(Error::RangeOutOfBounds { .. })
    ));
    let range = |value: i64| Error::CountOutOfRange {
        count: "barrier parties",
        value,
        min: 1,
        max: i64::from(Barrier::MAX_PARTIES),
    };
    assert_eq!(Barrier::at(&buffer, 0, 0).err(), Some(range(0)));
    assert_eq!(
        Barrier::at(&buffer, 0, Barrier::MAX_PARTIES + 1).err(),
        Some(range(i64::from(Barrier::MAX_PARTIES) + 1))
    );
    assert_eq!(Uint32Array::new(&buffer).unwrap().to_vec(), [0; 8]);
    assert!(Barrier::at(&buffer, 0, Barrier::MAX_PARTIES).is_ok());
}

// docs/semantics.md S1: the parties are written once; a different count is refused, never a
// silent reset.
#[test]
fn s1_attaching_with_other_parties_is_a_mismatch() {
    let buffer = buffer(16);
    let barrier = Barrier::at(&buffer, 0, 3).unwrap();
    assert_eq!(
        Barrier::at(&buffer, 0, 4).err(),
        Some(Error::ParameterMismatch {
            parameter: "parties",
            existing: 3,
            requested: 4
        })
    );
    assert_eq!(words(&buffer, 0)[2], 3);
    assert_eq!(
        Barrier::at(&buffer, 0, 3).unwrap().parties(),
        barrier.parties()
    );
}

// docs/semantics.md S1: eight threads attach to fresh bytes at the same moment, with two
// different counts. Exactly one count wins: every attach with it succeeds, every other one
// fails naming it.
#[test]
fn s1_concurrent_attach_sets_the_parties_exactly_once() {
    // Fewer rounds under Miri, which interprets the threads about a thousand times slower.
    for round in 0..if cfg!(miri) { 5 } else { 200 } {
        let buffer = buffer(16);
        let start = Arc::new(std::sync::Barrier::new(8));
        let attaches: Vec<_> = (0..8u32)
            .map(|t| {
                let (buffer, start) = (buffer.clone(), start.clone());
                let parties = 2 + (t + round) % 2;
                spawn(move || {
                    start.wait();
                    (
                        parties,
                        Barrier::at(&buffer, 0, parties).map(|b| b.parties()),
                    )
                })
            })
            .collect();
        let results: Vec<_> = attaches.into_iter().map(|a| a.join("attach")).collect();
        let winner = words(&buffer, 0)[2];
        assert!(winner == 2 || winner == 3);
        for (parties, result) in results {
            if parties == winner {
                assert_eq!(result, Ok(winner));
            } else {
                assert_eq!(
                    result,
                    Err(Error::ParameterMismatch {
                        parameter: "parties",
                        existing: u64::from(winner),
                        requested: u64::from(parties),
                    })
                );
            }
        }
    }
}

// One leader per generation, nobody passes early, reuse: 3 threads × 2,000 generations through
// handles attached separately. Before arriving each party writes the generation into its own
// cell (a plain write); after passing it must see every party's cell at that generation or
// later, and the leaders are counted per generation.
#[test]
fn one_leader_per_generation_and_nobody_passes_early() {
    const PARTIES: usize = 3;
    const GENERATIONS: usize = if cfg!(miri) { 50 } else { 2_000 };
    let buffer = buffer(16 + 4 * PARTIES);
    let cells = Int32Array::with_range(&buffer, 16, Some(PARTIES)).unwrap();
    let leaders: Arc<Vec<AtomicUsize>> =
        Arc::new((0..GENERATIONS).map(|_| AtomicUsize::new(0)).collect());
    let threads: Vec<_> = (0..PARTIES)
        .map(|me| {
            let (buffer, cells, leaders) = (buffer.clone(), cells.clone(), leaders.clone());
            spawn(move || {
                let barrier = Barrier::at(&buffer, 0, PARTIES as u32).unwrap();
                for generation in 0..GENERATIONS {
                    cells.set(me, generation as i32).unwrap();
                    if barrier.wait().unwrap().is_leader() {
                        leaders[generation].fetch_add(1, SeqCst);
                    }
                    for party in 0..PARTIES {
                        let seen = cells.get(party).unwrap() as usize;
                        assert!(seen >= generation, "party {party} had not arrived");
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join("party");
    }
    for (generation, count) in leaders.iter().enumerate() {
        assert_eq!(count.load(SeqCst), 1, "leaders of generation {generation}");
    }
    assert_eq!(
        words(&buffer, 0)[..2],
        [0, (GENERATIONS as u32) << 8],
        "arrivals back to 0"
    );
}

// docs/semantics.md S3: a party that times out withdraws its arrival, so the generation still
// needs all its parties.
#[test]
fn s3_a_timed_out_party_withdraws_its_arrival() {
    let buffer = buffer(16);
    let barrier = Barrier::at(&buffer, 0, 2).unwrap();
    assert_eq!(barrier.wait_for(Duration::from_millis(2)), Ok(None));
    assert_eq!(words(&buffer, 0)[0], 0, "no arrival left counted");
    // Had the first arrival stayed, this one would complete the generation.
    assert_eq!(barrier.wait_for(Duration::ZERO), Ok(None));
    let other = barrier.clone();
    let first = spawn(move || other.wait());
    let second = barrier.wait().unwrap();
    let first = first.join("wait").unwrap();
    assert!(first.is_leader() != second.is_leader());
}

// docs/semantics.md S3: a party blocked with a (long) timeout passes like any other when the
// generation completes.
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s3_a_timed_wait_passes_when_the_generation_completes() {
    let barrier = Barrier::at(&buffer(16), 0, 2).unwrap();
    let waiter = {
        let barrier = barrier.clone();
        spawn_blocked(move || barrier.wait_for(Duration::from_secs(3600)))
    };
    assert!(barrier.wait().unwrap().is_leader());
    let passed = waiter
        .join("wait_for")
        .unwrap()
        .map(|result| result.is_leader());
    assert_eq!(passed, Some(false));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn arrive_and_drop_completes_a_generation_and_shrinks_the_next() {
    let buffer = buffer(16);
    let barrier = Barrier::at(&buffer, 0, 3).unwrap();
    let blocked: Vec<_> = (0..2)
        .map(|_| {
            let barrier = barrier.clone();
            spawn_blocked(move || barrier.wait())
        })
        .collect();
    // The third arrival, leaving: it completes the generation and leads it.
    assert!(barrier.arrive_and_drop().unwrap().is_leader());
    for waiter in blocked {
        assert!(!waiter.join("wait").unwrap().is_leader());
    }
    assert_eq!((barrier.parties(), barrier.expected()), (3, 2));
    assert_eq!(
        Barrier::at(&buffer, 0, 3).unwrap().expected(),
        2,
        "drops are in the bytes"
    );
    // Two parties now make a generation.
    let other = barrier.clone();
    let first = spawn(move || other.wait());
    let second = barrier.wait().unwrap();
    assert!(first.join("wait").unwrap().is_leader() != second.is_leader());
    // A drop that does not complete the generation: one party is left, and passes alone.
    assert!(!barrier.arrive_and_drop().unwrap().is_leader());
    assert_eq!(barrier.expected(), 1);
    assert!(barrier.wait().unwrap().is_leader());
    assert!(barrier.arrive_and_drop().unwrap().is_leader());
    let gone = Error::CountOutOfRange {
        count: "barrier parties remaining",
        value: 0,
        min: 1,
        max: 3,
    };
    assert_eq!(barrier.wait(), Err(gone.clone()));
    assert_eq!(barrier.arrive_and_drop(), Err(gone));
}

// docs/semantics.md S1: handles attached from different threads and clones are one barrier.
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s1_several_handles_agree() {
    let buffer = buffer(32);
    let a = Barrier::at(&buffer, 16, 2).unwrap();
    let b = Barrier::at(&buffer.clone(), 16, 2).unwrap();
    let elsewhere = Barrier::at(&buffer, 0, 2).unwrap();
    let waiter = spawn_blocked(move || b.wait());
    assert_eq!(
        elsewhere.wait_for(Duration::ZERO),
        Ok(None),
        "another offset is another barrier"
    );
    assert!(a.clone().wait().unwrap().is_leader());
    assert!(!waiter.join("wait").unwrap().is_leader());
    assert!(format!("{a:?}").contains("parties: 2"));
}

// docs/semantics.md S6: a worker blocked in `wait` (and in `wait_for`) returns
// Err(Terminated), and its arrival is withdrawn.
#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn s6_terminate_interrupts_a_worker_blocked_in_wait() {
    let buffer = buffer(16);
    let barrier = Barrier::at(&buffer, 0, 2).unwrap();
    for timed in [false, true] {
        let inside = barrier.clone();
        let result = terminate_while_blocked(move || {
            if timed {
                inside.wait_for(Duration::from_secs(3600)).map(drop)
            } else {
                inside.wait().map(drop)
            }
        });
        assert_eq!(result, Err(Error::Terminated));
        assert_eq!(words(&buffer, 0)[0], 0, "the arrival was withdrawn");
        assert_eq!(barrier.wait_for(Duration::ZERO), Ok(None));
    }
}

// Stress with timeouts racing completions: 2 parties, one waiting with short timeouts and
// retrying, the other without. Every generation completes with exactly one leader, and a
// timed-out wait never ends a generation.
#[test]
fn stress_timeouts_racing_completions() {
    const GENERATIONS: usize = if cfg!(miri) { 100 } else { 5_000 };
    let buffer = buffer(16);
    let barrier = Barrier::at(&buffer, 0, 2).unwrap();
    let leaders = Arc::new(AtomicUsize::new(0));
    let patient = {
        let (barrier, leaders) = (barrier.clone(), leaders.clone());
        spawn(move || {
            for _ in 0..GENERATIONS {
                if barrier.wait().unwrap().is_leader() {
                    leaders.fetch_add(1, SeqCst);
                }
            }
        })
    };
    let mut timeouts = 0usize;
    for _ in 0..GENERATIONS {
        loop {
            match barrier.wait_for(Duration::from_micros(20)).unwrap() {
                Some(result) => {
                    if result.is_leader() {
                        leaders.fetch_add(1, SeqCst);
                    }
                    break;
                }
                None => timeouts += 1,
            }
        }
    }
    patient.join("patient party");
    assert_eq!(leaders.load(SeqCst), GENERATIONS);
    assert_eq!(words(&buffer, 0)[..2], [0, (GENERATIONS as u32) << 8]);
    let _ = timeouts; // how many is up to the scheduler
}
