//! The bounds of a length-tracking view at every length its buffer passes through
//! (docs/semantics.md V3, V4): element `i` of a view at byte offset `o` exists exactly when
//! `o + (i + 1) * size <= byte_length`, for the getter, the setter and the atomics alike, and
//! indices so large that their byte offset would overflow are refused, never wrapped.

use sharedbuf::{atomics, Element, Error, SharedBuffer, TypedArray};

fn check_tracking_bounds<T: Element + sharedbuf::AtomicElement + From<u8>>() {
    let size = std::mem::size_of::<T>();
    for offset in [0, size, 3 * size] {
        let buf = SharedBuffer::growable(offset, offset + 6 * size + 7).unwrap();
        let view = TypedArray::<T>::with_range(&buf, offset, None).unwrap();
        assert!(view.is_length_tracking());
        for byte_length in offset..=buf.max_byte_length() {
            buf.grow(byte_length).unwrap();
            let elements = (byte_length - offset) / size;
            assert_eq!(
                view.len(),
                elements,
                "offset {offset}, length {byte_length}"
            );
            for i in 0..elements + 3 {
                let exists = offset + (i + 1) * size <= byte_length;
                let what = format!(
                    "{} element {i} at offset {offset}, length {byte_length}",
                    T::JS_VIEW_NAME
                );
                assert_eq!(view.get(i).is_some(), exists, "get: {what}");
                assert_eq!(view.set(i, T::from(1)).is_ok(), exists, "set: {what}");
                assert_eq!(atomics::load(&view, i).is_ok(), exists, "load: {what}");
            }
        }
        for huge in [
            usize::MAX,
            usize::MAX / size,
            (usize::MAX / size).saturating_add(1),
            isize::MAX as usize / size,
            (isize::MAX as usize - size) / size,
            (isize::MAX as usize - size) / size + 1,
        ] {
            assert_eq!(view.get(huge), None, "{} index {huge}", T::JS_VIEW_NAME);
            assert!(matches!(
                view.set(huge, T::from(1)),
                Err(Error::IndexOutOfRange { index, .. }) if index == huge
            ));
        }
    }
}

#[test]
fn v3_v4_a_tracking_view_holds_exactly_the_elements_that_fit() {
    check_tracking_bounds::<u8>();
    check_tracking_bounds::<u16>();
    check_tracking_bounds::<i32>();
    check_tracking_bounds::<u64>();
}
