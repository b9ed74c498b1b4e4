//! The non-blocking Atomics (docs/semantics.md A1–A5, A13) on all eight integer view types.
//!
//! Every per-type test lives in a module generated for each of `i8 u8 i16 u16 i32 u32 i64 u64`
//! (so a failure names its type, e.g. `u16::a2_add_returns_old_value_and_wraps`); the
//! mixed-width tests at the end look at the same bytes through views of different widths and
//! offsets. Threads synchronise with `Barrier`s and the crate's own atomics, never with sleeps.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Barrier;
use std::thread;

use sharedbuf::{atomics, Error, SharedBuffer, TypedArray, Uint8Array};

/// Every byte of `buf`, read through a fresh `Uint8Array`.
fn bytes(buf: &SharedBuffer) -> Vec<u8> {
    Uint8Array::new(buf).unwrap().to_vec()
}

/// Rounds of the racy visibility tests: plenty natively, few under Miri (which is slow and
/// explores interleavings itself).
const ROUNDS: usize = if cfg!(miri) { 20 } else { 20_000 };
/// Increments per thread in the RMW atomicity test.
const INCREMENTS: usize = if cfg!(miri) { 50 } else { 20_000 };

/// A barrier whose waiters spin (yielding now and then, as the machine has 2 shared cores), so
/// that they leave it within a fraction of a microsecond of each other.
struct SpinBarrier {
    parties: usize,
    arrived: AtomicUsize,
}

impl SpinBarrier {
    fn new(parties: usize) -> Self {
        SpinBarrier {
            parties,
            arrived: AtomicUsize::new(0),
        }
    }

    /// Waits for all parties; reusable, as every party calls it the same number of times.
    fn wait(&self) {
        let generation = self.arrived.fetch_add(1, SeqCst) / self.parties;
        let release = (generation + 1) * self.parties;
        let mut spins = 0u32;
        while self.arrived.load(SeqCst) < release {
            spins += 1;
            if spins % 256 == 0 {
                thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

macro_rules! per_type_tests {
    ($($module:ident: $t:ty),* $(,)?) => {$(
        mod $module {
            use super::*;

            type T = $t;
            const SIZE: usize = std::mem::size_of::<T>();

            fn view(elements: usize) -> (SharedBuffer, TypedArray<T>) {
                let buf = SharedBuffer::new(elements * SIZE).unwrap();
                let view = TypedArray::<T>::new(&buf).unwrap();
                (buf, view)
            }

            /// A1: store→load ordering across threads (Dekker / store buffering). Thread A
            /// stores x then loads y; thread B stores y then loads x. Sequential consistency
            /// forbids both loads seeing 0; relaxed or acquire/release atomics allow it (and
            /// x86 shows it readily through its store buffer).
            #[test]
            fn a1_seqcst_store_load_order_across_threads() {
                // Round r uses its own fresh pair of elements 2r and 2r+1, so no reset races.
                let (_buf, view) = view(2 * ROUNDS);
                // A spinning start line: a blocking Barrier releases the two threads tens of
                // microseconds apart, too far for their stores and loads to overlap.
                let start = SpinBarrier::new(2);
                let (seen_by_a, seen_by_b) = thread::scope(|s| {
                    let a = s.spawn(|| {
                        (0..ROUNDS)
                            .map(|r| {
                                start.wait();
                                atomics::store(&view, 2 * r, 1).unwrap();
                                atomics::load(&view, 2 * r + 1).unwrap()
                            })
                            .collect::<Vec<T>>()
                    });
                    let b = s.spawn(|| {
                        (0..ROUNDS)
                            .map(|r| {
                                start.wait();
                                atomics::store(&view, 2 * r + 1, 1).unwrap();
                                atomics::load(&view, 2 * r).unwrap()
                            })
                            .collect::<Vec<T>>()
                    });
                    (a.join().unwrap(), b.join().unwrap())
                });
                for r in 0..ROUNDS {
                    assert!(
                        seen_by_a[r] == 1 || seen_by_b[r] == 1,
                        "round {r}: both threads missed the other's store (not SeqCst)"
                    );
                }
            }

            /// A1: message passing. The writer fills the data with `store` then raises a flag
            /// with `store`; a reader that sees the flag (via `load`) sees all the data.
            #[test]
            fn a1_seqcst_message_passing() {
                let data_len = 8;
                // Round r: elements r*(data_len+1) .. +data_len are data, the next is the flag.
                let stride = data_len + 1;
                let (_buf, view) = view(stride * ROUNDS);
                let barrier = Barrier::new(2);
                // The reader records what it saw and the test asserts after the scope: a
                // failed assertion inside it would leave the writer at the next round's
                // barrier, and the scope would join it for ever (a hang instead of a failure).
                let stale = thread::scope(|s| {
                    s.spawn(|| {
                        for r in 0..ROUNDS {
                            barrier.wait();
                            for k in 0..data_len {
                                atomics::store(&view, r * stride + k, (k + 1) as T).unwrap();
                            }
                            atomics::store(&view, r * stride + data_len, 1).unwrap();
                        }
                    });
                    let mut stale = Vec::new();
                    for r in 0..ROUNDS {
                        barrier.wait();
                        while atomics::load(&view, r * stride + data_len).unwrap() != 1 {
                            atomics::pause();
                        }
                        for k in 0..data_len {
                            let seen = atomics::load(&view, r * stride + k).unwrap();
                            if seen != (k + 1) as T {
                                stale.push((r, k, seen));
                            }
                        }
                    }
                    stale
                });
                assert!(
                    stale.is_empty(),
                    "flag seen before data (round, element, value seen): {stale:?}"
                );
            }

            /// A1: read-modify-writes are atomic: two threads each `add` 1 many times and no
            /// increment is lost (the total wraps like the type does).
            #[test]
            fn a1_concurrent_adds_lose_nothing() {
                let (_buf, view) = view(1);
                let barrier = Barrier::new(2);
                thread::scope(|s| {
                    for _ in 0..2 {
                        s.spawn(|| {
                            barrier.wait();
                            for _ in 0..INCREMENTS {
                                atomics::add(&view, 0, 1).unwrap();
                            }
                        });
                    }
                });
                assert_eq!(atomics::load(&view, 0).unwrap(), (2 * INCREMENTS) as u64 as T);
            }

            /// A2: the exact numbers of docs/semantics.md A2 (truncated to the type's width), and
            /// `store` returning the value it stored.
            #[test]
            fn a2_rmw_returns_old_value_exact_numbers() {
                let (_buf, view) = view(2);
                // from 0, add(10) returns 0 and leaves 10; add(-5) returns 10 and leaves 5.
                assert_eq!(atomics::add(&view, 0, 10).unwrap(), 0);
                assert_eq!(atomics::load(&view, 0).unwrap(), 10);
                assert_eq!(atomics::add(&view, 0, (-5i64) as T).unwrap(), 10);
                assert_eq!(atomics::load(&view, 0).unwrap(), 5);
                // sub on 100 by 10 returns 100 and leaves 90.
                assert_eq!(atomics::store(&view, 0, 100).unwrap(), 100);
                assert_eq!(atomics::sub(&view, 0, 10).unwrap(), 100);
                assert_eq!(atomics::load(&view, 0).unwrap(), 90);
                // xor 0x33333333 with 0x55555555 returns 0x33333333 and leaves 0x66666666.
                let (x33, x55, x66) =
                    (0x3333_3333u64 as T, 0x5555_5555u64 as T, 0x6666_6666u64 as T);
                assert_eq!(atomics::store(&view, 0, x33).unwrap(), x33);
                assert_eq!(atomics::xor(&view, 0, x55).unwrap(), x33);
                assert_eq!(atomics::load(&view, 0).unwrap(), x66);
                // and / or / exchange also return the old value.
                assert_eq!(atomics::and(&view, 0, 0x0f).unwrap(), x66);
                assert_eq!(atomics::load(&view, 0).unwrap(), 0x06);
                assert_eq!(atomics::or(&view, 0, 0x30).unwrap(), 0x06);
                assert_eq!(atomics::load(&view, 0).unwrap(), 0x36);
                assert_eq!(atomics::exchange(&view, 0, 7).unwrap(), 0x36);
                assert_eq!(atomics::load(&view, 0).unwrap(), 7);
                // The neighbouring element was never touched.
                assert_eq!(atomics::load(&view, 1).unwrap(), 0);
            }

            /// A2: add and sub wrap on overflow instead of panicking or saturating.
            #[test]
            fn a2_add_and_sub_wrap() {
                let (_buf, view) = view(1);
                atomics::store(&view, 0, T::MAX).unwrap();
                assert_eq!(atomics::add(&view, 0, 1).unwrap(), T::MAX);
                assert_eq!(atomics::load(&view, 0).unwrap(), T::MIN);
                assert_eq!(atomics::sub(&view, 0, 1).unwrap(), T::MIN);
                assert_eq!(atomics::load(&view, 0).unwrap(), T::MAX);
                assert_eq!(atomics::add(&view, 0, T::MAX).unwrap(), T::MAX);
                assert_eq!(atomics::load(&view, 0).unwrap(), T::MAX.wrapping_add(T::MAX));
                // A store of an out-of-range-looking value is simply the bits of the type.
                assert_eq!(atomics::store(&view, 0, T::MIN).unwrap(), T::MIN);
                assert_eq!(atomics::load(&view, 0).unwrap(), T::MIN);
            }

            /// A3: compare_exchange always returns the old value and writes only on a match.
            #[test]
            fn a3_compare_exchange_writes_only_on_match() {
                let (buf, view) = view(2);
                atomics::store(&view, 0, 5).unwrap();
                let before = bytes(&buf);
                assert_eq!(atomics::compare_exchange(&view, 0, 6, 9).unwrap(), 5);
                assert_eq!(bytes(&buf), before, "a failed compare_exchange wrote");
                assert_eq!(atomics::compare_exchange(&view, 0, 5, 9).unwrap(), 5);
                assert_eq!(atomics::load(&view, 0).unwrap(), 9);
                // Extreme values compare by their full bit pattern.
                assert_eq!(atomics::compare_exchange(&view, 0, 9, T::MIN).unwrap(), 9);
                assert_eq!(atomics::compare_exchange(&view, 0, T::MAX, 1).unwrap(), T::MIN);
                assert_eq!(atomics::load(&view, 0).unwrap(), T::MIN);
                assert_eq!(atomics::compare_exchange(&view, 0, T::MIN, T::MAX).unwrap(), T::MIN);
                assert_eq!(atomics::load(&view, 0).unwrap(), T::MAX);
                assert_eq!(atomics::load(&view, 1).unwrap(), 0);
            }

            /// A3: under contention exactly one of several racing compare_exchanges from the
            /// same expected value wins.
            #[test]
            fn a3_racing_compare_exchanges_have_one_winner() {
                let rounds = if cfg!(miri) { 10 } else { 500 };
                let (_buf, view) = view(rounds);
                let barrier = Barrier::new(2);
                let wins: usize = thread::scope(|s| {
                    let racers: Vec<_> = (1..=2)
                        .map(|me| {
                            let (view, barrier) = (&view, &barrier);
                            s.spawn(move || {
                                (0..rounds)
                                    .filter(|&r| {
                                        barrier.wait();
                                        atomics::compare_exchange(view, r, 0, me as T).unwrap()
                                            == 0
                                    })
                                    .count()
                            })
                        })
                        .collect();
                    racers.into_iter().map(|h| h.join().unwrap()).sum()
                });
                assert_eq!(wins, rounds, "each round must have exactly one winner");
                for r in 0..rounds {
                    let winner = atomics::load(&view, r).unwrap();
                    assert!(winner == 1 || winner == 2, "round {r}: {winner:?}");
                }
            }

            /// A4: an index out of range is `Err(IndexOutOfRange)` for every operation, and
            /// nothing is read or written: not even the bytes right after the view, which lie
            /// inside the buffer.
            #[test]
            fn a4_out_of_range_is_err_and_writes_nothing() {
                // A 2-element view at offset SIZE inside a 4-element buffer: index 2 of the view
                // would be element 3 of the buffer, which exists.
                let buf = SharedBuffer::new(4 * SIZE).unwrap();
                Uint8Array::new(&buf).unwrap().fill(0xA5);
                let view = TypedArray::<T>::with_range(&buf, SIZE, Some(2)).unwrap();
                let before = bytes(&buf);
                let pattern = 0xA5A5_A5A5_A5A5_A5A5u64 as T;
                for index in [2, 3, 1000, usize::MAX / SIZE, usize::MAX] {
                    let expected = Err(Error::IndexOutOfRange { index, len: 2 });
                    assert_eq!(atomics::load(&view, index), expected);
                    assert_eq!(atomics::store(&view, index, 1), expected);
                    assert_eq!(atomics::add(&view, index, 1), expected);
                    assert_eq!(atomics::sub(&view, index, 1), expected);
                    assert_eq!(atomics::and(&view, index, 0), expected);
                    assert_eq!(atomics::or(&view, index, T::MAX), expected);
                    assert_eq!(atomics::xor(&view, index, T::MAX), expected);
                    assert_eq!(atomics::exchange(&view, index, 1), expected);
                    // Even a compare_exchange whose expected value matches the bytes there.
                    assert_eq!(atomics::compare_exchange(&view, index, pattern, 1), expected);
                    assert_eq!(bytes(&buf), before, "index {index} touched memory");
                }
                // An empty view has no valid index at all.
                let empty = TypedArray::<T>::with_range(&buf, 4 * SIZE, None).unwrap();
                assert_eq!(
                    atomics::store(&empty, 0, 1),
                    Err(Error::IndexOutOfRange { index: 0, len: 0 })
                );
                assert_eq!(bytes(&buf), before);
                // The last valid index still works.
                assert_eq!(atomics::exchange(&view, 1, 0).unwrap(), pattern);
            }

            /// A13: `pause` is a spin-loop hint and nothing else: it returns, touches no
            /// memory, and works as the body of a spin-wait on another thread's store.
            #[test]
            fn a13_pause_is_only_a_hint() {
                let (buf, view) = view(1);
                let before = bytes(&buf);
                for _ in 0..1000 {
                    atomics::pause();
                }
                assert_eq!(bytes(&buf), before);
                thread::scope(|s| {
                    s.spawn(|| atomics::store(&view, 0, 1).unwrap());
                    while atomics::load(&view, 0).unwrap() != 1 {
                        atomics::pause();
                    }
                });
            }
        }
    )*};
}

per_type_tests!(
    i8: i8,
    u8: u8,
    i16: i16,
    u16: u16,
    i32: i32,
    u32: u32,
    i64: i64,
    u64: u64,
);

/// A5: `is_lock_free(4)` is true; 1, 2 and 8 give the platform's fixed answer (the same on every
/// call, and what the target's atomics support); every other size is false.
#[test]
fn a5_is_lock_free() {
    assert!(atomics::is_lock_free(4));
    assert_eq!(atomics::is_lock_free(1), cfg!(target_has_atomic = "8"));
    assert_eq!(atomics::is_lock_free(2), cfg!(target_has_atomic = "16"));
    assert_eq!(atomics::is_lock_free(8), cfg!(target_has_atomic = "64"));
    for size in [1, 2, 4, 8] {
        assert_eq!(atomics::is_lock_free(size), atomics::is_lock_free(size));
    }
    for size in [0, 3, 5, 6, 7, 9, 12, 16, 32, usize::MAX] {
        assert!(!atomics::is_lock_free(size), "is_lock_free({size})");
    }
    if cfg!(target_arch = "x86_64") {
        assert!([1, 2, 4, 8].iter().all(|&size| atomics::is_lock_free(size)));
    }
}

/// A1 with views of different widths over the same bytes: an RMW through one width is seen,
/// byte for byte in native order, through the others.
#[test]
fn a1_mixed_width_views_over_the_same_bytes() {
    let buf = SharedBuffer::new(16).unwrap();
    let u8s = TypedArray::<u8>::new(&buf).unwrap();
    let i16s = TypedArray::<i16>::new(&buf).unwrap();
    let u32s = TypedArray::<u32>::new(&buf).unwrap();
    let i64s = TypedArray::<i64>::new(&buf).unwrap();

    let word = 0x0102_0304_0506_0708i64;
    assert_eq!(atomics::store(&i64s, 1, word).unwrap(), word);
    let expected = word.to_ne_bytes();
    for (k, &byte) in expected.iter().enumerate() {
        assert_eq!(atomics::load(&u8s, 8 + k).unwrap(), byte);
    }
    let low = u32::from_ne_bytes(expected[..4].try_into().unwrap());
    let high = u32::from_ne_bytes(expected[4..].try_into().unwrap());
    assert_eq!(atomics::load(&u32s, 2).unwrap(), low);
    assert_eq!(atomics::load(&u32s, 3).unwrap(), high);

    // An RMW on one byte changes exactly that byte of the wider elements.
    assert_eq!(atomics::add(&u8s, 8, 0x10).unwrap(), expected[0]);
    let mut changed = expected;
    changed[0] = changed[0].wrapping_add(0x10);
    assert_eq!(
        atomics::load(&i64s, 1).unwrap(),
        i64::from_ne_bytes(changed)
    );
    // An i16 exchange over bytes 10..12.
    let old16 = i16::from_ne_bytes([changed[2], changed[3]]);
    assert_eq!(atomics::exchange(&i16s, 5, -1).unwrap(), old16);
    changed[2] = 0xff;
    changed[3] = 0xff;
    assert_eq!(
        atomics::load(&i64s, 1).unwrap(),
        i64::from_ne_bytes(changed)
    );
    // compare_exchange through the u32 view sees the bytes written through the others.
    let cur = u32::from_ne_bytes(changed[..4].try_into().unwrap());
    assert_eq!(atomics::compare_exchange(&u32s, 2, cur, 0).unwrap(), cur);
    assert_eq!(&bytes(&buf)[8..12], &[0, 0, 0, 0]);
    // The first eight bytes were never touched.
    assert_eq!(atomics::load(&i64s, 0).unwrap(), 0);
}

/// A1 with views at different byte offsets: element 0 of a view at offset 8 is element 2 of a
/// view at offset 0, and RMWs through either are one location.
#[test]
fn a1_views_at_different_offsets_share_elements() {
    let buf = SharedBuffer::new(16).unwrap();
    let whole = TypedArray::<i32>::new(&buf).unwrap();
    let tail = TypedArray::<i32>::with_range(&buf, 8, None).unwrap();
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        for (view, index) in [(&whole, 2), (&tail, 0)] {
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                for _ in 0..INCREMENTS {
                    atomics::add(view, index, 1).unwrap();
                }
            });
        }
    });
    let total = 2 * INCREMENTS as i32;
    assert_eq!(atomics::load(&whole, 2).unwrap(), total);
    assert_eq!(atomics::load(&tail, 0).unwrap(), total);
    assert_eq!(atomics::load(&whole, 1).unwrap(), 0);
    assert_eq!(atomics::load(&whole, 3).unwrap(), 0);
}

/// A1 with racing RMWs of different widths on overlapping bytes: a u8 `add` on byte 0 and a
/// u32 `add` on the word holding it do not corrupt each other on this platform (the hardware
/// keeps each access whole). The low byte counts both; the rest counts the word adds' carry.
#[test]
#[cfg_attr(
    miri,
    ignore = "racing atomics of different sizes are outside Rust's memory model; Miri rejects them"
)]
fn a1_mixed_width_racing_rmws_stay_whole() {
    let buf = SharedBuffer::new(8).unwrap();
    let u8s = TypedArray::<u8>::new(&buf).unwrap();
    let u32s = TypedArray::<u32>::new(&buf).unwrap();
    let barrier = Barrier::new(2);
    // The byte view touches byte 4: the second word's lowest (LE) or highest (BE) byte.
    let byte_index = if cfg!(target_endian = "little") { 4 } else { 7 };
    thread::scope(|s| {
        s.spawn(|| {
            barrier.wait();
            for _ in 0..INCREMENTS {
                atomics::add(&u8s, byte_index, 1).unwrap();
            }
        });
        s.spawn(|| {
            barrier.wait();
            for _ in 0..INCREMENTS {
                atomics::add(&u32s, 1, 1).unwrap();
            }
        });
    });
    // Adding INCREMENTS to the low byte wraps mod 256 with the carry lost, while the word adds
    // carry into the upper bytes; both are additive mod 2^8 on the low byte.
    let word = atomics::load(&u32s, 1).unwrap();
    assert_eq!(word as u8, (2 * INCREMENTS) as u8);
    assert_eq!(atomics::load(&u32s, 0).unwrap(), 0);
}
