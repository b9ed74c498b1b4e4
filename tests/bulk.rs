//! The bulk paths of views and buffers (`fill`, `fill_range`, `slice`) at every size and
//! alignment their engine distinguishes: element-at-a-time ends, machine words, and (on x86-64,
//! from 2 KiB) the CPU's string instructions. Each is checked byte for byte against a plain
//! model; a racing reader checks that `fill` writes each element whole (docs/semantics.md V4).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use sharedbuf::{
    BigUint64Array, Element, SharedBuffer, TypedArray, Uint16Array, Uint32Array, Uint8Array,
};

/// Lengths around the engine's boundaries: tiny, a word, a few words, just below and above
/// 2 KiB, and large enough for many cache lines (smaller under Miri, which is slow).
fn lengths() -> Vec<usize> {
    let mut lengths = vec![0, 1, 2, 3, 7, 8, 9, 15, 17, 63, 64, 65, 200];
    if cfg!(miri) {
        lengths.push(700);
    } else {
        lengths.extend([2047, 2048, 2049, 4096 + 24, 70_001]);
    }
    lengths
}

fn bytes_of(buf: &SharedBuffer) -> Vec<u8> {
    Uint8Array::new(buf).unwrap().to_vec()
}

/// Fills `count` elements of `T` at element offset `first` (of a view starting at byte
/// `view_offset`) and checks every byte of the buffer against the model.
fn check_fill<T: Element>(view_offset: usize, first: usize, count: usize, value: T, bits: &[u8]) {
    let size = std::mem::size_of::<T>();
    let len = view_offset + (first + count + 3) * size; // room after the range
    let buf = SharedBuffer::new(len).unwrap();
    Uint8Array::new(&buf).unwrap().fill(0xEE);
    let view = TypedArray::<T>::with_range(&buf, view_offset, None).unwrap();
    view.fill_range(first..first + count, value).unwrap();
    let mut model = vec![0xEE; len];
    for k in 0..count {
        let at = view_offset + (first + k) * size;
        model[at..at + size].copy_from_slice(bits);
    }
    assert_eq!(
        bytes_of(&buf),
        model,
        "{} fill of {count} from element {first} at byte offset {view_offset}",
        T::JS_VIEW_NAME
    );
    // `fill` of the whole view: every element.
    view.fill(value);
    for (k, element) in view.to_vec().into_iter().enumerate() {
        assert_eq!(element, value, "{} element {k}", T::JS_VIEW_NAME);
    }
}

#[test]
fn v4_fill_writes_exactly_its_range_at_every_length_and_alignment() {
    for count in lengths() {
        for view_offset in [0, 8, 16, 24] {
            for first in [0, 1, 3] {
                check_fill::<u8>(view_offset + first % 8, first, count, 0xA5, &[0xA5]);
                let v16 = 0x1234u16;
                check_fill::<u16>(view_offset, first, count / 2, v16, &v16.to_ne_bytes());
                let v32 = 0x89AB_CDEFu32;
                check_fill::<u32>(view_offset, first, count / 4, v32, &v32.to_ne_bytes());
                let f64_value = -1.5f64;
                check_fill::<f64>(
                    view_offset,
                    first,
                    count / 8,
                    f64_value,
                    &f64_value.to_ne_bytes(),
                );
            }
        }
    }
}

#[test]
fn b5_slice_copies_exactly_its_range_at_every_length_and_alignment() {
    let total = lengths().into_iter().max().unwrap() + 64;
    let buf = SharedBuffer::new(total).unwrap();
    let pattern: Vec<u8> = (0..total).map(|i| (i * 7 + i / 251) as u8).collect();
    Uint8Array::new(&buf)
        .unwrap()
        .copy_from_slice(0, &pattern)
        .unwrap();
    for len in lengths() {
        // Source offsets of every alignment relative to the copy's (page-aligned) start.
        for start in [0, 1, 5, 8, 13, 40] {
            let copy = buf.slice(start..start + len).unwrap();
            assert_eq!(copy.byte_length(), len);
            assert!(!copy.same_memory(&buf));
            assert_eq!(
                bytes_of(&copy),
                &pattern[start..start + len],
                "{start}..+{len}"
            );
        }
    }
}

/// A reader racing `fill` sees every element either all old or all new, never a mix of the two
/// values' bytes: a fill stores whole elements (or whole words holding whole elements), at every
/// size, including the CPU string stores of large fills. A word store racing an element load
/// is a mixed-size race, defined by the hardware the crate relies on (soundness rule 2), not by
/// Rust's memory model: native only.
fn fill_never_tears<T: Element>(a: T, b: T, elements: usize) {
    let buf = SharedBuffer::new(elements * std::mem::size_of::<T>()).unwrap();
    let view = TypedArray::<T>::new(&buf).unwrap();
    view.fill(a);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (view, stop) = (view.clone(), stop.clone());
        thread::spawn(move || {
            let mut fills = 0u64;
            while !stop.load(Ordering::Relaxed) || fills < 4 {
                view.fill(if fills % 2 == 0 { b } else { a });
                fills += 1;
            }
            fills
        })
    };
    let rounds = if cfg!(miri) { 2 } else { 400 };
    let mut seen_b = 0u64;
    for _ in 0..rounds {
        for (i, x) in view.iter().enumerate() {
            assert!(
                x == a || x == b,
                "{} element {i} torn: {x:?}",
                T::JS_VIEW_NAME
            );
            seen_b += u64::from(x == b);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let fills = writer.join().unwrap();
    eprintln!(
        "{}: {fills} fills raced, {seen_b} new elements seen",
        T::JS_VIEW_NAME
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "fill stores machine words over narrower elements: racing atomics of different sizes are outside Rust's memory model (soundness rule 2); Miri rejects them"
)]
fn v4_a_racing_fill_never_tears_an_element() {
    let elements = if cfg!(miri) { 64 } else { 4096 };
    fill_never_tears::<u16>(0x00FF, 0xFF00, elements);
    fill_never_tears::<u32>(0x0000_FFFF, 0xFFFF_0000, elements);
    fill_never_tears::<u64>(0x0000_0000_FFFF_FFFF, 0xFFFF_FFFF_0000_0000, elements);
    fill_never_tears::<f64>(1.0, -2.0, elements);
}

#[test]
fn v4_fill_on_a_length_tracking_view_follows_growth() {
    let buf = SharedBuffer::growable(6, 1 << 20).unwrap();
    let view = Uint16Array::new(&buf).unwrap();
    view.fill(7);
    assert_eq!(view.to_vec(), [7, 7, 7]);
    buf.grow(5000).unwrap();
    view.fill_range(3.., 9).unwrap();
    let all = view.to_vec();
    assert_eq!(all.len(), 2500);
    assert_eq!(&all[..3], &[7, 7, 7]);
    assert!(all[3..].iter().all(|&x| x == 9));
    let words = Uint32Array::new(&buf).unwrap();
    words.fill(0xDEAD_BEEF);
    assert!(BigUint64Array::new(&buf)
        .unwrap()
        .to_vec()
        .iter()
        .all(|&x| x == 0xDEAD_BEEF_DEAD_BEEF));
}
