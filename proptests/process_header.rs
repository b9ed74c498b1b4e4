//! Random and near-valid headers written into real files, opened with `SharedBuffer::open`
//! (docs/semantics.md X1, X5): a file is either refused with `Err(BadHeader)` before it is
//! mapped, or opened as a buffer whose lengths fit the file, every byte of which can be used.
//! Never a panic, never a `SIGBUS`.
#![cfg(all(target_os = "linux", not(loom)))]

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use sharedbuf::{Error, SharedBuffer, Uint8Array};

/// Bytes before the data (docs: `src/region/header.rs`).
const HEADER_LEN: u64 = 16384;

struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Scratch(
            format!(
                "/dev/shm/sharedbuf-prop-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            )
            .into(),
        )
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How to damage a valid file: its length and maximum when made, byte overwrites in its first
/// 64 bytes, and a new size.
type Damage = (usize, Option<usize>, Vec<(u64, u8)>, Option<u64>);

/// A file made by `create` (valid), then up to six byte overwrites in its first 64 bytes and a
/// new size: the same (most often), or anything up to a little past a valid one.
fn damaged() -> impl Strategy<Value = Damage> {
    (
        0usize..=8192,
        prop_oneof![Just(None), (0usize..=8192).prop_map(Some)],
        proptest::collection::vec((0u64..64, any::<u8>()), 0..6),
        prop_oneof![
            3 => Just(None),
            1 => (0u64..=HEADER_LEN + 16384).prop_map(Some),
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_opened_file_is_refused_or_wholly_usable(
        (len, max, edits, new_size) in damaged()
    ) {
        let scratch = Scratch::new();
        let max = max.map(|m| m.max(len));
        let made = match max {
            Some(max) => SharedBuffer::create_growable(&scratch.0, len, max),
            None => SharedBuffer::create(&scratch.0, len),
        };
        drop(made.unwrap());
        let file = std::fs::OpenOptions::new().write(true).open(&scratch.0).unwrap();
        for (at, byte) in &edits {
            file.write_all_at(&[*byte], *at).unwrap();
        }
        if let Some(size) = new_size {
            file.set_len(size).unwrap();
        }
        let file_len = file.metadata().unwrap().len();
        match SharedBuffer::open(&scratch.0) {
            Ok(buffer) => {
                let (len, max) = (buffer.byte_length(), buffer.max_byte_length());
                prop_assert!(len <= max);
                prop_assert_eq!(file_len, HEADER_LEN + max as u64);
                let bytes = Uint8Array::new(&buffer).unwrap();
                if len > 0 {
                    bytes.set(len - 1, 7).unwrap();
                    prop_assert_eq!(bytes.get(len - 1), Some(7));
                }
                if buffer.is_growable() {
                    buffer.grow(max).unwrap();
                    if max > 0 {
                        bytes.set(max - 1, 9).unwrap();
                        prop_assert_eq!(bytes.get(max - 1), Some(9));
                    }
                }
            }
            Err(Error::BadHeader { .. }) => {}
            Err(other) => prop_assert!(false, "not a header error: {other:?}"),
        }
    }
}
