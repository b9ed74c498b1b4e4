//! Conformance tests for `TypedArray`: docs/semantics.md V1–V4, one section per item.

use std::sync::{Arc, Barrier};
use std::thread;

use sharedbuf::{
    BigInt64Array, BigUint64Array, Element, Error, Float32Array, Float64Array, Int16Array,
    Int32Array, Int8Array, SharedBuffer, TypedArray, Uint16Array, Uint32Array, Uint8Array,
};

// ---- V1: the ten element types and their JS names -----------------------------------------

/// Runs `$body` once per element type, with `$t` bound to the type and `$values` to a few
/// values of it worth round-tripping (extremes, and for floats NaN, infinities and -0.0).
macro_rules! for_each_element {
    ($t:ident, $values:ident => $body:block) => {{
        {
            type $t = i8;
            let $values: Vec<$t> = vec![0, 1, -1, i8::MIN, i8::MAX];
            $body
        }
        {
            type $t = u8;
            let $values: Vec<$t> = vec![0, 1, 0x80, u8::MAX];
            $body
        }
        {
            type $t = i16;
            let $values: Vec<$t> = vec![0, -1, i16::MIN, i16::MAX, 0x1234];
            $body
        }
        {
            type $t = u16;
            let $values: Vec<$t> = vec![0, 1, u16::MAX, 0x8001];
            $body
        }
        {
            type $t = i32;
            let $values: Vec<$t> = vec![0, -1, i32::MIN, i32::MAX, 0x1234_5678];
            $body
        }
        {
            type $t = u32;
            let $values: Vec<$t> = vec![0, 1, u32::MAX, 0x8000_0001];
            $body
        }
        {
            type $t = i64;
            let $values: Vec<$t> = vec![0, -1, i64::MIN, i64::MAX, 0x0102_0304_0506_0708];
            $body
        }
        {
            type $t = u64;
            let $values: Vec<$t> = vec![0, 1, u64::MAX, 0x8000_0000_0000_0001];
            $body
        }
        {
            type $t = f32;
            let $values: Vec<$t> = vec![
                0.0,
                -0.0,
                1.5,
                f32::MIN,
                f32::MAX,
                f32::INFINITY,
                f32::MIN_POSITIVE,
            ];
            $body
        }
        {
            type $t = f64;
            let $values: Vec<$t> =
                vec![0.0, -0.0, -2.25, f64::MAX, f64::NEG_INFINITY, f64::EPSILON];
            $body
        }
    }};
}

#[test]
fn v1_every_element_type_round_trips() {
    for_each_element!(T, values => {
        let size = std::mem::size_of::<T>();
        let buf = SharedBuffer::new(size * values.len()).unwrap();
        let view = TypedArray::<T>::new(&buf).unwrap();
        assert_eq!(view.len(), values.len());
        assert_eq!(view.byte_length(), size * values.len());
        assert!(view.iter().all(|v| v == T::default()), "starts zeroed");
        for (i, &v) in values.iter().enumerate() {
            view.set(i, v).unwrap();
        }
        for (i, &v) in values.iter().enumerate() {
            let got = view.get(i).unwrap();
            // Compare bits, so -0.0 and 0.0 are told apart.
            assert_eq!(format!("{got:?}"), format!("{v:?}"), "{}[{i}]", T::JS_VIEW_NAME);
        }
        // The bytes in memory are the value's native-endian bytes.
        let bytes = Uint8Array::new(&buf).unwrap().to_vec();
        let last = *values.last().unwrap();
        let at = size * (values.len() - 1);
        assert_eq!(bytes[at..], last.to_ne_bytes()[..], "{}", T::JS_VIEW_NAME);
    });
}

#[test]
fn v1_float_nan_bits_are_preserved() {
    let buf = SharedBuffer::new(16).unwrap();
    let f32s = Float32Array::new(&buf).unwrap();
    let odd_nan = f32::from_bits(0x7FC0_1234);
    f32s.set(0, odd_nan).unwrap();
    assert_eq!(f32s.get(0).unwrap().to_bits(), 0x7FC0_1234);
    let f64s = Float64Array::new(&buf).unwrap();
    let odd_nan = f64::from_bits(0xFFF8_0000_DEAD_BEEF);
    f64s.set(1, odd_nan).unwrap();
    assert_eq!(f64s.get(1).unwrap().to_bits(), 0xFFF8_0000_DEAD_BEEF);
}

#[test]
fn v1_aliases_carry_the_js_names() {
    let buf = SharedBuffer::new(8).unwrap();
    let names = [
        format!("{:?}", Int8Array::new(&buf).unwrap()),
        format!("{:?}", Uint8Array::new(&buf).unwrap()),
        format!("{:?}", Int16Array::new(&buf).unwrap()),
        format!("{:?}", Uint16Array::new(&buf).unwrap()),
        format!("{:?}", Int32Array::new(&buf).unwrap()),
        format!("{:?}", Uint32Array::new(&buf).unwrap()),
        format!("{:?}", BigInt64Array::new(&buf).unwrap()),
        format!("{:?}", BigUint64Array::new(&buf).unwrap()),
        format!("{:?}", Float32Array::new(&buf).unwrap()),
        format!("{:?}", Float64Array::new(&buf).unwrap()),
    ];
    let expected = [
        "Int8Array",
        "Uint8Array",
        "Int16Array",
        "Uint16Array",
        "Int32Array",
        "Uint32Array",
        "BigInt64Array",
        "BigUint64Array",
        "Float32Array",
        "Float64Array",
    ];
    for (debug, name) in names.iter().zip(expected) {
        assert!(debug.starts_with(name), "{debug} should start with {name}");
    }
    assert_eq!(<i64 as Element>::JS_VIEW_NAME, "BigInt64Array");
}

#[test]
fn v1_views_of_different_types_share_bytes() {
    let buf = SharedBuffer::new(8).unwrap();
    let bytes = Uint8Array::new(&buf).unwrap();
    let words = Uint32Array::new(&buf).unwrap();
    let signed = Int8Array::new(&buf).unwrap();
    words.set(1, 0x0403_02FF).unwrap();
    assert_eq!(bytes.to_vec()[4..], 0x0403_02FFu32.to_ne_bytes());
    let low = if cfg!(target_endian = "little") { 4 } else { 7 };
    assert_eq!(signed.get(low), Some(-1));
    bytes.set(0, 0x7F).unwrap();
    assert_eq!(words.get(0), Some(u32::from_ne_bytes([0x7F, 0, 0, 0])));
}

// ---- V2: offset alignment, offset past the end, explicit length past the end ------------------

#[test]
fn v2_misaligned_offset_is_err_for_every_wider_type() {
    let buf = SharedBuffer::new(64).unwrap();
    for_each_element!(T, _values => {
        let size = std::mem::size_of::<T>();
        for offset in 0..=3 * size {
            let result = TypedArray::<T>::with_range(&buf, offset, Some(1));
            if offset % size == 0 {
                let view = result.unwrap();
                assert_eq!(view.byte_offset(), offset);
            } else {
                assert_eq!(
                    result.unwrap_err(),
                    Error::Misaligned { byte_offset: offset, align: size },
                    "{} at {offset}",
                    T::JS_VIEW_NAME
                );
                // Also without a length (and regardless of what the rest would be).
                assert!(TypedArray::<T>::with_range(&buf, offset, None).is_err());
            }
        }
    });
}

#[test]
fn v2_offset_past_the_end_is_err() {
    let buf = SharedBuffer::new(16).unwrap();
    assert_eq!(
        Int32Array::with_range(&buf, 20, None).unwrap_err(),
        Error::RangeOutOfBounds {
            start: 20,
            end: 20,
            len: 16
        }
    );
    assert!(Int32Array::with_range(&buf, 20, Some(0)).is_err());
    assert!(Uint8Array::with_range(&buf, 17, Some(0)).is_err());
    assert!(Uint8Array::with_range(&buf, usize::MAX, None).is_err());
    assert!(BigInt64Array::with_range(&buf, usize::MAX - 7, Some(0)).is_err());
    // Exactly at the end is an empty view, as in JavaScript.
    let empty = Int32Array::with_range(&buf, 16, None).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.get(0), None);
    let empty = Int32Array::with_range(&buf, 16, Some(0)).unwrap();
    assert_eq!(empty.len(), 0);
}

#[test]
fn v2_explicit_length_past_the_end_is_err() {
    let buf = SharedBuffer::new(16).unwrap();
    assert!(Int32Array::with_range(&buf, 0, Some(4)).is_ok());
    assert_eq!(
        Int32Array::with_range(&buf, 4, Some(4)).unwrap_err(),
        Error::RangeOutOfBounds {
            start: 4,
            end: 20,
            len: 16
        }
    );
    assert!(Int32Array::with_range(&buf, 0, Some(5)).is_err());
    // Lengths whose byte size overflows are refused, not wrapped.
    for huge in [
        usize::MAX,
        usize::MAX / 4 + 1,
        usize::MAX / 8,
        isize::MAX as usize,
    ] {
        assert!(
            Int32Array::with_range(&buf, 0, Some(huge)).is_err(),
            "{huge}"
        );
        assert!(
            Float64Array::with_range(&buf, 8, Some(huge)).is_err(),
            "{huge}"
        );
    }
    // A growable buffer checks against its current length, not its maximum.
    let g = SharedBuffer::growable(8, 64).unwrap();
    assert!(Uint16Array::with_range(&g, 0, Some(5)).is_err());
    g.grow(10).unwrap();
    assert_eq!(Uint16Array::with_range(&g, 0, Some(5)).unwrap().len(), 5);
}

// ---- V3: length-tracking views; fixed buffers need a whole number of elements ---------------

#[test]
fn v3_length_tracking_view_follows_grow() {
    let g = SharedBuffer::growable(6, 64).unwrap();
    let tracking = Int32Array::with_range(&g, 4, None).unwrap();
    assert!(tracking.is_length_tracking());
    assert_eq!(tracking.len(), 0, "(6 - 4) / 4 rounds down");
    assert_eq!(
        tracking.set(0, 1),
        Err(Error::IndexOutOfRange { index: 0, len: 0 })
    );
    g.grow(8).unwrap();
    assert_eq!(tracking.len(), 1);
    tracking.set(0, 11).unwrap();
    g.grow(23).unwrap();
    assert_eq!(tracking.len(), 4);
    assert_eq!(tracking.byte_length(), 16);
    tracking.set(3, 33).unwrap();
    assert_eq!(tracking.get(4), None);
    assert_eq!(tracking.to_vec(), [11, 0, 0, 33]);
    g.grow(64).unwrap();
    assert_eq!(tracking.len(), 15);
    assert_eq!(tracking.iter().count(), 15);

    // An explicit length on a growable buffer is fixed.
    let fixed = Int32Array::with_range(&g, 0, Some(2)).unwrap();
    assert!(!fixed.is_length_tracking());
    assert_eq!(fixed.len(), 2);
}

#[test]
fn v3_tracking_subarray_stays_tracking_only_when_open_ended() {
    let g = SharedBuffer::growable(8, 32).unwrap();
    let view = Uint16Array::new(&g).unwrap();
    let open = view.subarray(1..).unwrap();
    let closed = view.subarray(1..3).unwrap();
    assert_eq!((open.len(), closed.len()), (3, 2));
    g.grow(32).unwrap();
    assert_eq!((open.len(), closed.len()), (15, 2));
    assert!(open.is_length_tracking());
    assert!(!closed.is_length_tracking());
    open.set(14, 5).unwrap();
    assert_eq!(view.get(15), Some(5));
}

#[test]
fn v3_fixed_buffer_without_length_needs_whole_elements() {
    let buf = SharedBuffer::new(10).unwrap();
    assert_eq!(Uint16Array::new(&buf).unwrap().len(), 5);
    assert!(!Uint16Array::new(&buf).unwrap().is_length_tracking());
    assert_eq!(
        Int32Array::new(&buf).unwrap_err(),
        Error::LengthNotMultiple {
            byte_length: 10,
            element_size: 4
        }
    );
    assert!(Float64Array::new(&buf).is_err());
    // From offset 4 the rest (6 bytes) is not a multiple of 4 either, of 2 it is.
    assert!(Int32Array::with_range(&buf, 4, None).is_err());
    assert_eq!(Int16Array::with_range(&buf, 4, None).unwrap().len(), 3);
    // With an explicit length the remainder does not matter.
    assert_eq!(Int32Array::with_range(&buf, 4, Some(1)).unwrap().len(), 1);
    // On a growable buffer a remainder is fine: the tracking length rounds down.
    let g = SharedBuffer::growable(10, 20).unwrap();
    assert_eq!(Int32Array::new(&g).unwrap().len(), 2);
}

// ---- V4: out of range is Err/None, never a panic; element access never tears --------------

#[test]
fn v4_out_of_range_is_none_or_err_never_panic() {
    let buf = SharedBuffer::new(16).unwrap();
    let view = Int32Array::with_range(&buf, 4, Some(2)).unwrap();
    for index in [2, 3, 4, usize::MAX / 4, usize::MAX / 4 + 1, usize::MAX] {
        assert_eq!(view.get(index), None);
        assert_eq!(
            view.set(index, 1),
            Err(Error::IndexOutOfRange { index, len: 2 })
        );
    }
    // Nothing was written anywhere.
    assert_eq!(Int32Array::new(&buf).unwrap().to_vec(), [0; 4]);
}

#[test]
fn v4_bulk_copies_check_bounds() {
    let buf = SharedBuffer::new(32).unwrap();
    let view = Uint32Array::with_range(&buf, 8, Some(4)).unwrap();
    view.copy_from_slice(1, &[7, 8, 9]).unwrap();
    assert_eq!(view.to_vec(), [0, 7, 8, 9]);
    let mut out = [0u32; 2];
    view.copy_to_slice(2, &mut out).unwrap();
    assert_eq!(out, [8, 9]);
    assert!(view.copy_from_slice(2, &[1, 2, 3]).is_err());
    assert!(view.copy_from_slice(5, &[]).is_err());
    assert!(view.copy_from_slice(usize::MAX, &[1]).is_err());
    assert!(view.copy_to_slice(3, &mut out).is_err());
    assert!(view.copy_to_slice(usize::MAX, &mut out).is_err());
    view.copy_from_slice(4, &[]).unwrap(); // empty at the end is fine
    assert_eq!(view.to_vec(), [0, 7, 8, 9], "failed copies wrote nothing");
    // The bytes outside the view are untouched.
    let all = Uint32Array::new(&buf).unwrap().to_vec();
    assert_eq!(all, [0, 0, 0, 7, 8, 9, 0, 0]);
}

#[test]
fn v4_bulk_copies_at_every_alignment_and_length() {
    // Exercises the byte head/tail and word middle of the copy loops: a copy that drops or
    // duplicates a byte anywhere shows here.
    let buf = SharedBuffer::new(80).unwrap();
    let view = Uint8Array::new(&buf).unwrap();
    for start in 0..12 {
        for len in 0..40 {
            view.fill(0);
            let src: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(13) | 1).collect();
            view.copy_from_slice(start, &src).unwrap();
            let all = view.to_vec();
            assert!(all[..start].iter().all(|&b| b == 0));
            assert_eq!(
                all[start..start + len],
                src[..],
                "in: start {start} len {len}"
            );
            assert!(all[start + len..].iter().all(|&b| b == 0));
            let mut back = vec![0u8; len];
            view.copy_to_slice(start, &mut back).unwrap();
            assert_eq!(back, src, "out: start {start} len {len}");
        }
    }
}

#[test]
fn v4_fill_subarray_and_iter() {
    let buf = SharedBuffer::new(40).unwrap();
    let view = Int16Array::new(&buf).unwrap();
    view.fill(-3);
    assert!(view.iter().all(|v| v == -3));
    view.fill_range(2..5, 9).unwrap();
    assert_eq!(view.to_vec()[..6], [-3, -3, 9, 9, 9, -3]);
    assert!(view.fill_range(19..21, 0).is_err());
    #[allow(clippy::reversed_empty_ranges)]
    let inverted = view.fill_range(5..2, 0);
    assert!(inverted.is_err());
    let sub = view.subarray(2..6).unwrap();
    assert_eq!(sub.byte_offset(), 4);
    assert_eq!(sub.to_vec(), [9, 9, 9, -3]);
    sub.set(3, 100).unwrap();
    assert_eq!(view.get(5), Some(100));
    assert!(view.subarray(..21).is_err());
    assert_eq!(view.subarray(20..).unwrap().len(), 0);
    let collected: Vec<i16> = (&sub).into_iter().collect();
    assert_eq!(collected, [9, 9, 9, 100]);
    assert_eq!(sub.iter().len(), 4);
}

/// One writer flips every element between two values whose halves differ; readers must only
/// ever see one of the two, for every element width (a torn read would mix halves).
fn never_torn<T: Element>(a: T, b: T) {
    let iterations = if cfg!(miri) { 30 } else { 100_000 };
    let buf = SharedBuffer::new(4 * std::mem::size_of::<T>()).unwrap();
    let view = TypedArray::<T>::new(&buf).unwrap();
    view.fill(a);
    let start = Arc::new(Barrier::new(2));
    let writer = {
        let (view, start) = (view.clone(), start.clone());
        thread::spawn(move || {
            start.wait();
            for i in 0..iterations {
                let value = if i % 2 == 0 { b } else { a };
                // `fill` stores machine words over narrower elements: against the readers'
                // element loads that is a mixed-size race (soundness rule 2), which Miri
                // rejects, so under Miri the writer stores element by element.
                if cfg!(miri) {
                    (0..view.len()).for_each(|k| view.set(k, value).unwrap());
                } else {
                    view.fill(value);
                }
            }
        })
    };
    start.wait();
    for _ in 0..iterations {
        for v in view.iter() {
            assert!(
                v == a || v == b,
                "torn read {v:?} (between {a:?} and {b:?})"
            );
        }
        // Bulk copies move whole machine words, so racing one against element stores of a
        // narrower type is a mixed-size race: defined by the hardware the crate relies on
        // (soundness rule 2), not by Rust's memory model, so Miri rejects it. Native only.
        if !cfg!(miri) {
            let mut copy = vec![a; view.len()];
            view.copy_to_slice(0, &mut copy).unwrap();
            assert!(
                copy.iter().all(|&v| v == a || v == b),
                "torn bulk read {copy:?}"
            );
        }
    }
    writer.join().unwrap();
    // The writer's last fill (an odd iteration: `a`) is visible after join.
    assert!(iterations % 2 == 0);
    assert!(view.iter().all(|v| v == a));
}

#[test]
fn v4_concurrent_element_access_never_tears() {
    never_torn::<u16>(0x00FF, 0xFF00);
    never_torn::<i32>(0x0000_FFFF, -65536);
    never_torn::<u64>(0x0000_0000_FFFF_FFFF, 0xFFFF_FFFF_0000_0000);
    never_torn::<i64>(0, -1);
    never_torn::<f64>(1.0, f64::from_bits(0x0000_0000_FFFF_FFFF));
    never_torn::<f32>(1.0, -3.5e-9);
}

/// Writes from many threads through different views of one buffer all land (no lost writes
/// between neighbouring elements: element stores never touch their neighbours).
#[test]
fn v4_neighbouring_elements_written_by_different_threads() {
    let threads = 4;
    let per_thread = if cfg!(miri) { 8 } else { 4096 };
    let buf = SharedBuffer::new(threads * per_thread).unwrap();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let view = Uint8Array::new(&buf).unwrap();
            thread::spawn(move || {
                // Interleaved: thread t owns bytes t, t + threads, … so every word is shared.
                for k in 0..per_thread {
                    view.set(k * threads + t, t as u8 + 1).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let bytes = Uint8Array::new(&buf).unwrap().to_vec();
    for (i, &b) in bytes.iter().enumerate() {
        assert_eq!(b as usize, i % threads + 1, "byte {i}");
    }
}

// ---- Element ranges (subarray, fill_range): errors in elements ------------------------------

/// Fault: `subarray` and `fill_range` refused a range of element indices with a message about
/// bytes ("byte range 2..9 does not fit in 4 bytes" for a view of 4 elements). Decided: element
/// ranges get their own errors, whose messages speak of elements (the variants themselves are
/// checked in `tests/element_range_errors.rs`).
#[test]
fn subarray_and_fill_range_errors_speak_of_elements() {
    let view = Int32Array::new(&SharedBuffer::new(16).unwrap()).unwrap(); // 4 elements
    let (start, end) = (3, 1);
    let past_the_end = [
        view.subarray(2..9).unwrap_err(),
        view.fill_range(2..9, 0).unwrap_err(),
    ];
    let inverted = [
        view.subarray(start..end).unwrap_err(),
        view.fill_range(start..end, 0).unwrap_err(),
    ];
    for error in past_the_end.iter().chain(&inverted) {
        let message = error.to_string();
        assert!(
            message.contains("element") && !message.contains("byte"),
            "{error:?}: {message}"
        );
    }
    for error in &past_the_end {
        assert!(error.to_string().contains("2..9"), "{error}");
    }
}
