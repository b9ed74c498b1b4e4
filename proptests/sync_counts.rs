//! Random sequences of operations on an in-buffer `Semaphore` and `Latch` against a sequential
//! model (docs/semantics.md S1, S3).
//!
//! Each case runs a list of operations, through one of several handles on the same bytes (two
//! attached separately, one cloned), on one thread, so nothing ever blocks: the blocking calls
//! appear in their timed form with a zero timeout, which must then answer exactly as the model
//! says. The model is a plain integer: it predicts every return value (including
//! `Err(CountOutOfRange)` at the limits, which must change nothing) and the count after every
//! step.

#![cfg(not(loom))]

use std::time::Duration;

use proptest::prelude::*;
use sharedbuf::sync::{Latch, Semaphore};
use sharedbuf::{Error, SharedBuffer};

const MAX_PERMITS: u64 = Semaphore::MAX_PERMITS as u64;

/// A count near zero, or near the top of its range (so the limits are hit).
fn count(max: u64) -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0u32..6,
        1 => (0u64..4).prop_map(move |below| (max - below) as u32),
        1 => any::<u32>(),
    ]
}

#[derive(Debug, Clone, Copy)]
enum SemaphoreOp {
    Release(u32),
    TryAcquire(u32),
    /// `acquire_for(n, 0)`: one try.
    AcquireNow(u32),
    /// `acquire(n)`, only issued by the test when the model says it will not block.
    Acquire(u32),
}

fn semaphore_op() -> impl Strategy<Value = (usize, SemaphoreOp)> {
    let op = prop_oneof![
        count(MAX_PERMITS).prop_map(SemaphoreOp::Release),
        count(MAX_PERMITS).prop_map(SemaphoreOp::TryAcquire),
        count(MAX_PERMITS).prop_map(SemaphoreOp::AcquireNow),
        count(MAX_PERMITS).prop_map(SemaphoreOp::Acquire),
    ];
    (0usize..3, op)
}

#[derive(Debug, Clone, Copy)]
enum LatchOp {
    CountUp(u32),
    CountDown,
    /// `wait_for(0)`.
    WaitNow,
    /// `wait()`, only issued by the test when the model says it will not block.
    Wait,
}

fn latch_op() -> impl Strategy<Value = (usize, LatchOp)> {
    let op = prop_oneof![
        1 => count(u64::from(u32::MAX)).prop_map(LatchOp::CountUp),
        3 => Just(LatchOp::CountDown),
        1 => Just(LatchOp::WaitNow),
        1 => Just(LatchOp::Wait),
    ];
    (0usize..3, op)
}

fn out_of_range(count: &'static str, value: i64, max: u64) -> Error {
    Error::CountOutOfRange {
        count,
        value,
        min: 0,
        max: max as i64,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn semaphore_matches_a_counter(
        offset in (0usize..4).prop_map(|k| 4 * k),
        ops in prop::collection::vec(semaphore_op(), 1..60),
    ) {
        let buffer = SharedBuffer::new(16).unwrap();
        let first = Semaphore::at(&buffer, offset).unwrap();
        let handles = [first.clone(), Semaphore::at(&buffer.clone(), offset).unwrap(), first];
        let mut model: u64 = 0;
        for (handle, op) in ops {
            let semaphore = &handles[handle];
            let asked_too_much = |n: u32| out_of_range("semaphore permits asked for", i64::from(n), MAX_PERMITS);
            match op {
                SemaphoreOp::Release(n) => {
                    let total = model + u64::from(n);
                    if total > MAX_PERMITS {
                        prop_assert_eq!(
                            semaphore.release(n),
                            Err(out_of_range("semaphore permits", total as i64, MAX_PERMITS))
                        );
                    } else {
                        prop_assert_eq!(semaphore.release(n), Ok(()));
                        model = total;
                    }
                }
                SemaphoreOp::TryAcquire(n) | SemaphoreOp::AcquireNow(n) => {
                    let result = match op {
                        SemaphoreOp::TryAcquire(_) => semaphore.try_acquire(n),
                        _ => semaphore.acquire_for(n, Duration::ZERO),
                    };
                    if u64::from(n) > MAX_PERMITS {
                        prop_assert_eq!(result, Err(asked_too_much(n)));
                    } else if u64::from(n) <= model {
                        prop_assert_eq!(result, Ok(true));
                        model -= u64::from(n);
                    } else {
                        prop_assert_eq!(result, Ok(false));
                    }
                }
                SemaphoreOp::Acquire(n) => {
                    if u64::from(n) > MAX_PERMITS {
                        prop_assert_eq!(semaphore.acquire(n), Err(asked_too_much(n)));
                    } else if u64::from(n) <= model {
                        prop_assert_eq!(semaphore.acquire(n), Ok(()));
                        model -= u64::from(n);
                    }
                    // Otherwise it would block: skipped.
                }
            }
            for other in &handles {
                prop_assert_eq!(u64::from(other.available()), model);
            }
        }
    }

    #[test]
    fn latch_matches_a_counter(
        offset in (0usize..3).prop_map(|k| 4 * k),
        ops in prop::collection::vec(latch_op(), 1..60),
    ) {
        let buffer = SharedBuffer::new(16).unwrap();
        let first = Latch::at(&buffer, offset).unwrap();
        let handles = [first.clone(), Latch::at(&buffer.clone(), offset).unwrap(), first];
        let mut model: u64 = 0;
        let max = u64::from(u32::MAX);
        for (handle, op) in ops {
            let latch = &handles[handle];
            match op {
                LatchOp::CountUp(n) => {
                    let total = model + u64::from(n);
                    if total > max {
                        prop_assert_eq!(
                            latch.count_up(n),
                            Err(out_of_range("latch count", total as i64, max))
                        );
                    } else {
                        prop_assert_eq!(latch.count_up(n), Ok(()));
                        model = total;
                    }
                }
                LatchOp::CountDown => {
                    if model == 0 {
                        prop_assert_eq!(latch.count_down(), Err(out_of_range("latch count", -1, max)));
                    } else {
                        prop_assert_eq!(latch.count_down(), Ok(()));
                        model -= 1;
                    }
                }
                LatchOp::WaitNow => {
                    prop_assert_eq!(latch.wait_for(Duration::ZERO), Ok(model == 0));
                }
                LatchOp::Wait => {
                    if model == 0 {
                        prop_assert_eq!(latch.wait(), Ok(()));
                    }
                }
            }
            for other in &handles {
                prop_assert_eq!(u64::from(other.count()), model);
            }
        }
    }
}
