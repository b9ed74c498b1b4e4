//! Element ranges (`TypedArray::subarray`, `TypedArray::fill_range`) are refused with errors of
//! their own, in elements: `Error::ElementRangeOutOfBounds` and `Error::InvertedElementRange`.
//! Byte ranges (`SharedBuffer::slice`, views' byte offsets, `DataView`) keep
//! `Error::RangeOutOfBounds` and `Error::InvertedRange`.
//!
//! A file of its own while the variants are new, so that the rest of the view tests keep
//! compiling without them.

use sharedbuf::{Error, Int32Array, SharedBuffer};

/// Fault: `subarray` and `fill_range` reported element indices in byte-range errors. Decided:
/// `ElementRangeOutOfBounds { start, end, len }` (with `len` the view's length in elements) and
/// `InvertedElementRange { start, end }`, whose messages speak of elements.
#[test]
fn subarray_and_fill_range_report_element_ranges() {
    let buf = SharedBuffer::new(16).unwrap();
    let view = Int32Array::new(&buf).unwrap(); // 4 elements
    let past_the_end = Error::ElementRangeOutOfBounds {
        start: 2,
        end: 9,
        len: 4,
    };
    assert_eq!(view.subarray(2..9).unwrap_err(), past_the_end);
    assert_eq!(view.fill_range(2..9, 0).unwrap_err(), past_the_end);
    assert_eq!(view.subarray(2..=8).unwrap_err(), past_the_end);

    let (start, end) = (3, 1);
    let inverted = Error::InvertedElementRange { start: 3, end: 1 };
    assert_eq!(view.subarray(start..end).unwrap_err(), inverted);
    assert_eq!(view.fill_range(start..end, 0).unwrap_err(), inverted);

    // `len` counts the view's elements, not the buffer's bytes.
    let offset = Int32Array::with_range(&buf, 4, None).unwrap(); // 3 elements
    assert_eq!(
        offset.subarray(1..5).unwrap_err(),
        Error::ElementRangeOutOfBounds {
            start: 1,
            end: 5,
            len: 3
        }
    );

    for error in [past_the_end, inverted] {
        let message = error.to_string();
        assert!(
            message.contains("element") && !message.contains("byte"),
            "{error:?}: {message}"
        );
    }
}
