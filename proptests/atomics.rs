//! Random sequences of the Atomics operations against a sequential model (docs/semantics.md A1–A4).
//!
//! Each case is a list of operations, each on a random integer type, through a view at a random
//! aligned byte offset, at a random index that is sometimes past the end. The model is a plain
//! byte vector: it predicts every return value (the old value, A2/A3; `Err` out of range, A4)
//! and, after every step, every byte of the buffer.

#![cfg(not(loom))]

use proptest::prelude::*;
use sharedbuf::{atomics, AtomicElement, Error, SharedBuffer, TypedArray, Uint8Array};

/// The buffer every case runs on.
const BUF_LEN: usize = 48;

#[derive(Debug, Clone, Copy)]
enum Op {
    Load,
    Store(u64),
    Add(u64),
    Sub(u64),
    And(u64),
    Or(u64),
    Xor(u64),
    Exchange(u64),
    /// `expected: None` means "whatever the model holds there now", so that matches happen.
    CompareExchange {
        expected: Option<u64>,
        replacement: u64,
    },
}

/// One step: `op` on element `index` of a view of `width` bytes starting at element
/// `offset_elements` (view length: the rest of the buffer).
#[derive(Debug, Clone, Copy)]
struct Step {
    width: Width,
    signed: bool,
    offset_elements: usize,
    index: usize,
    op: Op,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Width {
    W1 = 1,
    W2 = 2,
    W4 = 4,
    W8 = 8,
}

/// The test's bridge between the eight integer types and raw `u64` bits.
trait Int: AtomicElement {
    fn from_bits64(bits: u64) -> Self;
    fn to_bits64(self) -> u64;
}

macro_rules! int {
    ($($t:ty => $u:ty),*) => {$(
        impl Int for $t {
            fn from_bits64(bits: u64) -> Self {
                bits as $t
            }
            fn to_bits64(self) -> u64 {
                // Through the unsigned type, so that negative values do not sign-extend.
                self as $u as u64
            }
        }
    )*};
}
int!(i8 => u8, u8 => u8, i16 => u16, u16 => u16, i32 => u32, u32 => u32, i64 => u64, u64 => u64);

/// The model of one step: its return value as `u64` bits (or the error) and the new bytes.
fn model(bytes: &mut [u8], step: &Step) -> Result<u64, Error> {
    let size = step.width as usize;
    let len = BUF_LEN / size - step.offset_elements;
    if step.index >= len {
        return Err(Error::IndexOutOfRange {
            index: step.index,
            len,
        });
    }
    let at = (step.offset_elements + step.index) * size;
    let mut raw = [0u8; 8];
    raw[..size].copy_from_slice(&bytes[at..at + size]);
    // Native order: on little-endian the low bytes come first, on big-endian the element's
    // bytes are the high end of a u64 read of them.
    let old = if cfg!(target_endian = "little") {
        u64::from_le_bytes(raw)
    } else {
        u64::from_be_bytes(raw) >> (64 - 8 * size)
    };
    let mask = if size == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size)) - 1
    };
    let (returned, new) = match step.op {
        Op::Load => (old, old),
        Op::Store(v) => (v & mask, v),
        Op::Add(v) => (old, old.wrapping_add(v)),
        Op::Sub(v) => (old, old.wrapping_sub(v)),
        Op::And(v) => (old, old & v),
        Op::Or(v) => (old, old | v),
        Op::Xor(v) => (old, old ^ v),
        Op::Exchange(v) => (old, v),
        Op::CompareExchange {
            expected,
            replacement,
        } => {
            let expected = expected.unwrap_or(old) & mask;
            (old, if expected == old { replacement } else { old })
        }
    };
    let new = new & mask;
    let new_bytes = if cfg!(target_endian = "little") {
        new.to_le_bytes()
    } else {
        (new << (64 - 8 * size)).to_be_bytes()
    };
    bytes[at..at + size].copy_from_slice(&new_bytes[..size]);
    Ok(returned)
}

/// The same step through the crate, on a view of `T`.
fn run<T: Int>(buf: &SharedBuffer, step: &Step, model_bytes_before: &[u8]) -> Result<u64, Error> {
    let size = std::mem::size_of::<T>();
    let view = TypedArray::<T>::with_range(buf, step.offset_elements * size, None).unwrap();
    let i = step.index;
    let v = T::from_bits64;
    let result = match step.op {
        Op::Load => atomics::load(&view, i),
        Op::Store(x) => atomics::store(&view, i, v(x)),
        Op::Add(x) => atomics::add(&view, i, v(x)),
        Op::Sub(x) => atomics::sub(&view, i, v(x)),
        Op::And(x) => atomics::and(&view, i, v(x)),
        Op::Or(x) => atomics::or(&view, i, v(x)),
        Op::Xor(x) => atomics::xor(&view, i, v(x)),
        Op::Exchange(x) => atomics::exchange(&view, i, v(x)),
        Op::CompareExchange {
            expected,
            replacement,
        } => {
            // "Current value" is read from the model, never from the buffer under test.
            let expected = match expected {
                Some(e) => e,
                None => {
                    let mut probe = model_bytes_before.to_vec();
                    model(
                        &mut probe,
                        &Step {
                            op: Op::Load,
                            ..*step
                        },
                    )
                    .unwrap_or(0)
                }
            };
            atomics::compare_exchange(&view, i, v(expected), v(replacement))
        }
    };
    result.map(T::to_bits64)
}

fn width() -> impl Strategy<Value = Width> {
    prop_oneof![
        Just(Width::W1),
        Just(Width::W2),
        Just(Width::W4),
        Just(Width::W8)
    ]
}

/// Values biased towards the edges where wrapping and sign bits matter.
fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..4,
        Just(u64::MAX),
        Just(0x7f),
        Just(0x80),
        Just(0x7fff),
        Just(0x8000),
        Just(0x7fff_ffff),
        Just(0x8000_0000),
        Just(i64::MAX as u64),
        Just(i64::MIN as u64),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Load),
        value().prop_map(Op::Store),
        value().prop_map(Op::Add),
        value().prop_map(Op::Sub),
        value().prop_map(Op::And),
        value().prop_map(Op::Or),
        value().prop_map(Op::Xor),
        value().prop_map(Op::Exchange),
        (prop::option::weighted(0.5, value()), value()).prop_map(|(expected, replacement)| {
            Op::CompareExchange {
                expected,
                replacement,
            }
        }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    (
        width(),
        any::<bool>(),
        0usize..3,
        op(),
        0u8..16,
        any::<usize>(),
    )
        .prop_map(|(width, signed, offset_elements, op, index_kind, huge)| {
            let len = BUF_LEN / width as usize - offset_elements;
            // Mostly in range, sometimes just past the end, rarely anywhere at all.
            let index = match index_kind {
                0..=11 => huge % len,
                12..=14 => len + huge % 3,
                _ => huge,
            };
            Step {
                width,
                signed,
                offset_elements,
                index,
                op,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 1_000 }))]

    #[test]
    fn prop_rmw_sequences_match_the_sequential_model(
        initial in prop::collection::vec(any::<u8>(), BUF_LEN),
        steps in prop::collection::vec(step(), 1..64),
    ) {
        let buf = SharedBuffer::new(BUF_LEN).unwrap();
        let bytes_view = Uint8Array::new(&buf).unwrap();
        bytes_view.copy_from_slice(0, &initial).unwrap();
        let mut expected_bytes = initial;
        for (n, step) in steps.iter().enumerate() {
            let before = expected_bytes.clone();
            let expected = model(&mut expected_bytes, step);
            let actual = match (step.width, step.signed) {
                (Width::W1, true) => run::<i8>(&buf, step, &before),
                (Width::W1, false) => run::<u8>(&buf, step, &before),
                (Width::W2, true) => run::<i16>(&buf, step, &before),
                (Width::W2, false) => run::<u16>(&buf, step, &before),
                (Width::W4, true) => run::<i32>(&buf, step, &before),
                (Width::W4, false) => run::<u32>(&buf, step, &before),
                (Width::W8, true) => run::<i64>(&buf, step, &before),
                (Width::W8, false) => run::<u64>(&buf, step, &before),
            };
            prop_assert_eq!(&actual, &expected, "step {}: {:?}", n, step);
            prop_assert_eq!(bytes_view.to_vec(), expected_bytes.clone(), "memory after step {}: {:?}", n, step);
        }
    }
}
