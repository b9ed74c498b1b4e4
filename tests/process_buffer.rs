//! Process-shared buffers (docs/semantics.md X1, X5): memfds and named files, their header,
//! and every way a file that is not a usable buffer is refused before anything of it is used.
#![cfg(target_os = "linux")]

mod process_support;

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use process_support::{ScratchPath, HEADER_LEN};
use sharedbuf::{atomics, BigInt64Array, Error, Int32Array, SharedBuffer, Uint8Array};

fn bad_header_reason(result: Result<SharedBuffer, Error>) -> String {
    match result {
        Err(Error::BadHeader { reason }) => reason,
        other => panic!("expected Err(BadHeader), got {other:?}"),
    }
}

// docs/semantics.md X1
#[test]
#[cfg_attr(miri, ignore)]
fn a_memfd_buffer_is_process_shared_zeroed_and_usable() {
    let buf = SharedBuffer::memfd("x1-basic", 100).unwrap();
    assert!(buf.is_process_shared());
    assert!(!buf.is_growable());
    assert_eq!((buf.byte_length(), buf.max_byte_length()), (100, 100));
    let bytes = Uint8Array::new(&buf).unwrap();
    assert!(bytes.to_vec().iter().all(|&b| b == 0));
    let words = Int32Array::new(&buf).unwrap();
    assert_eq!(atomics::add(&words, 24, 5).unwrap(), 0);
    assert_eq!(words.get(24), Some(5));
    assert_eq!(words.get(25), None);
    assert!(!SharedBuffer::new(8).unwrap().is_process_shared());
    assert!(SharedBuffer::new(8).unwrap().as_fd().is_none());
}

// docs/semantics.md X1: the data starts after the header, so byte 0 of the buffer is the
// file's byte HEADER_LEN, and the file is exactly the header plus the maximum.
#[test]
#[cfg_attr(miri, ignore)]
fn the_data_starts_after_the_header() {
    let buf = SharedBuffer::memfd("x1-layout", 64).unwrap();
    Uint8Array::new(&buf).unwrap().set(0, 0xAB).unwrap();
    let file = File::from(buf.as_fd().unwrap().try_clone_to_owned().unwrap());
    assert_eq!(file.metadata().unwrap().len(), HEADER_LEN + 64);
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, HEADER_LEN).unwrap();
    assert_eq!(byte[0], 0xAB);
    let mut magic = [0u8; 8];
    file.read_exact_at(&mut magic, 0).unwrap();
    assert_eq!(&magic, b"sharedbf");
}

// docs/semantics.md X1: a memfd's size can never change, so no process can shrink it under
// another's mapping (SIGBUS).
#[test]
#[cfg_attr(miri, ignore)]
fn a_memfd_is_sealed_against_any_size_change() {
    let buf = SharedBuffer::memfd("x1-sealed", 4096).unwrap();
    let fd = buf.as_fd().unwrap();
    // SAFETY: F_GET_SEALS only reads the seals of a live descriptor.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    for seal in [libc::F_SEAL_SHRINK, libc::F_SEAL_GROW, libc::F_SEAL_SEAL] {
        assert_ne!(seals & seal, 0, "seal {seal:#x} missing from {seals:#x}");
    }
    let file = File::from(fd.try_clone_to_owned().unwrap());
    assert!(file.set_len(10).is_err(), "a sealed memfd shrank");
    assert!(
        file.set_len(HEADER_LEN + 8192).is_err(),
        "a sealed memfd grew"
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_second_mapping_of_a_memfd_sees_the_same_bytes() {
    let buf = SharedBuffer::memfd("x1-second", 16).unwrap();
    let fd = buf.as_fd().unwrap().try_clone_to_owned().unwrap();
    let same = SharedBuffer::from_fd(fd).unwrap();
    let by_path = SharedBuffer::open(format!(
        "/proc/self/fd/{}",
        buf.as_fd().unwrap().as_raw_fd()
    ))
    .unwrap();
    assert!(!same.same_memory(&buf), "another mapping, another handle");
    BigInt64Array::new(&buf).unwrap().set(1, -9).unwrap();
    assert_eq!(BigInt64Array::new(&same).unwrap().get(1), Some(-9));
    assert_eq!(BigInt64Array::new(&by_path).unwrap().get(1), Some(-9));
    assert!(same.is_process_shared() && by_path.is_process_shared());
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_named_file_is_created_once_and_opened_by_path() {
    let path = ScratchPath::new("named");
    let buf = SharedBuffer::create(path.path(), 40).unwrap();
    assert_eq!(fs::metadata(path.path()).unwrap().len(), HEADER_LEN + 40);
    Int32Array::new(&buf).unwrap().set(9, 77).unwrap();
    let opened = SharedBuffer::open(path.path()).unwrap();
    assert_eq!((opened.byte_length(), opened.is_growable()), (40, false));
    assert_eq!(Int32Array::new(&opened).unwrap().get(9), Some(77));
    match SharedBuffer::create(path.path(), 40) {
        Err(Error::Io { operation, .. }) => assert!(operation.contains("create"), "{operation}"),
        other => panic!("creating an existing file: {other:?}"),
    }
    assert_eq!(
        Int32Array::new(&buf).unwrap().get(9),
        Some(77),
        "not clobbered"
    );
}

// docs/semantics.md X1 (B3 across processes): a grow through one mapping is seen through
// every other, by `byte_length`, tracking views and further grows.
#[test]
#[cfg_attr(miri, ignore)]
fn a_grow_is_seen_through_every_mapping() {
    let path = ScratchPath::new("grow");
    let a = SharedBuffer::create_growable(path.path(), 8, 1 << 20).unwrap();
    let b = SharedBuffer::open(path.path()).unwrap();
    let memfd = SharedBuffer::memfd_growable("x1-grow", 0, 64).unwrap();
    let memfd_b =
        SharedBuffer::from_fd(memfd.as_fd().unwrap().try_clone_to_owned().unwrap()).unwrap();
    for (a, b) in [(&a, &b), (&memfd, &memfd_b)] {
        assert!(b.is_growable());
        let tracking = Int32Array::new(b).unwrap();
        let before = tracking.len();
        a.grow(a.byte_length() + 32).unwrap();
        // The first thing `b`'s side does after the grow is an element access past what it has
        // seen: the view asks the header, not only this process's last known length.
        Int32Array::new(a).unwrap().set(before + 6, 9).unwrap();
        assert_eq!(tracking.get(before + 6), Some(9));
        assert_eq!(b.byte_length(), a.byte_length());
        assert_eq!(tracking.len(), before + 8);
        tracking.set(before + 7, 3).unwrap();
        assert_eq!(Int32Array::new(a).unwrap().get(before + 7), Some(3));
        assert!(matches!(b.grow(8), Err(Error::Shrink { .. })));
        b.grow(b.max_byte_length()).unwrap();
        assert_eq!(a.byte_length(), a.max_byte_length());
        assert!(matches!(
            a.grow(a.max_byte_length() + 1),
            Err(Error::ExceedsMax { .. })
        ));
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_huge_growable_maximum_costs_nothing_until_used() {
    let buf = SharedBuffer::memfd_growable("x1-huge", 4096, 1 << 40).unwrap();
    buf.grow(1 << 30).unwrap();
    let words = BigInt64Array::new(&buf).unwrap();
    words.set((1 << 27) - 1, 5).unwrap();
    assert_eq!(words.get((1 << 27) - 1), Some(5));
}

#[test]
#[cfg_attr(miri, ignore)]
fn lengths_are_checked_when_made() {
    assert!(matches!(
        SharedBuffer::memfd_growable("x1-len", 9, 8),
        Err(Error::ExceedsMax { .. })
    ));
    assert!(matches!(
        SharedBuffer::memfd("x1-len", usize::MAX),
        Err(Error::AllocationFailed { .. })
    ));
    assert!(matches!(
        SharedBuffer::memfd("nul\0byte", 8),
        Err(Error::Io { .. })
    ));
    let empty = SharedBuffer::memfd("x1-empty", 0).unwrap();
    assert_eq!(empty.byte_length(), 0);
}

// docs/semantics.md X1: what is not a usable buffer is refused before it is mapped.
#[test]
#[cfg_attr(miri, ignore)]
fn files_that_are_not_buffers_are_refused() {
    let missing = ScratchPath::new("missing");
    assert!(matches!(
        SharedBuffer::open(missing.path()),
        Err(Error::Io { .. })
    ));
    let dir = ScratchPath::new("dir");
    fs::create_dir(dir.path()).unwrap();
    let refused = SharedBuffer::open(dir.path());
    let _ = fs::remove_dir(dir.path());
    assert!(refused.is_err(), "a directory: {refused:?}");

    let empty = ScratchPath::new("empty");
    fs::write(empty.path(), b"").unwrap();
    assert!(bad_header_reason(SharedBuffer::open(empty.path())).contains("shorter"));

    let short = ScratchPath::new("short");
    let mut bytes = b"sharedbf".to_vec();
    bytes.resize(100, 0);
    fs::write(short.path(), &bytes).unwrap();
    assert!(bad_header_reason(SharedBuffer::open(short.path())).contains("shorter"));

    let foreign = ScratchPath::new("foreign");
    let text: Vec<u8> = b"#!/bin/sh\necho this is not a buffer\n"
        .iter()
        .copied()
        .cycle()
        .take(HEADER_LEN as usize + 4096)
        .collect();
    fs::write(foreign.path(), &text).unwrap();
    assert!(bad_header_reason(SharedBuffer::open(foreign.path())).contains("magic"));

    let zeros = ScratchPath::new("zeros");
    fs::write(zeros.path(), vec![0u8; HEADER_LEN as usize + 64]).unwrap();
    assert!(bad_header_reason(SharedBuffer::open(zeros.path())).contains("never written"));
}

/// A valid buffer file at `path` of `len` bytes, then `patch` applied to it with the buffer
/// unmapped.
fn patched(label: &str, len: usize, patch: impl FnOnce(&File)) -> ScratchPath {
    let path = ScratchPath::new(label);
    drop(SharedBuffer::create(path.path(), len).unwrap());
    let file = OpenOptions::new().write(true).open(path.path()).unwrap();
    patch(&file);
    path
}

// docs/semantics.md X1: a truncated file, a file longer than its header says, a version from
// the future, lengths that contradict each other.
#[test]
#[cfg_attr(miri, ignore)]
fn headers_that_do_not_match_their_file_are_refused() {
    let truncated = patched("truncated", 64, |f| f.set_len(HEADER_LEN + 63).unwrap());
    assert!(bad_header_reason(SharedBuffer::open(truncated.path())).contains("header says"));
    let cut = patched("cut", 64, |f| f.set_len(HEADER_LEN - 1).unwrap());
    assert!(bad_header_reason(SharedBuffer::open(cut.path())).contains("shorter"));
    let longer = patched("longer", 64, |f| f.set_len(HEADER_LEN + 65).unwrap());
    assert!(bad_header_reason(SharedBuffer::open(longer.path())).contains("header says"));
    let future = patched("future", 64, |f| {
        f.write_all_at(&2u32.to_ne_bytes(), 8).unwrap()
    });
    assert!(bad_header_reason(SharedBuffer::open(future.path())).contains("newer"));
    let max = patched("max", 64, |f| {
        f.write_all_at(&65u64.to_ne_bytes(), 24).unwrap()
    });
    assert!(bad_header_reason(SharedBuffer::open(max.path())).contains("header says"));
    let length = patched("length", 64, |f| {
        f.write_all_at(&65u64.to_ne_bytes(), 16).unwrap()
    });
    assert!(bad_header_reason(SharedBuffer::open(length.path())).contains("exceeds"));
    let flags = patched("flags", 64, |f| {
        f.write_all_at(&4u32.to_ne_bytes(), 32).unwrap()
    });
    assert!(bad_header_reason(SharedBuffer::open(flags.path())).contains("unknown flags"));
    let header_len = patched("header-len", 64, |f| {
        f.write_all_at(&4096u32.to_ne_bytes(), 12).unwrap()
    });
    assert!(bad_header_reason(SharedBuffer::open(header_len.path())).contains("header length"));
}

#[test]
#[cfg_attr(miri, ignore)]
fn a_read_only_descriptor_is_refused_with_a_clear_error() {
    let path = ScratchPath::new("read-only");
    drop(SharedBuffer::create(path.path(), 8).unwrap());
    let read_only = File::open(path.path()).unwrap();
    match SharedBuffer::from_fd(read_only.into()) {
        Err(Error::Io { operation, .. }) => assert!(operation.contains("map"), "{operation}"),
        other => panic!("{other:?}"),
    }
}
