//! A grow whose memory the system refuses to commit is a clean `Err(AllocationFailed)` and
//! leaves the buffer as it was (docs/semantics.md B3, B4).
//!
//! The refusal is provoked with the data-segment limit (`RLIMIT_DATA`), which Linux applies to
//! making private pages writable, so committing more than the limit allows fails with ENOMEM
//! while reserving address space does not. The limit is process-wide, hence this test's own
//! binary, with one test in it.

/// Linux only: the data limit covers private writable mappings there (since Linux 4.7).
#[cfg(all(target_os = "linux", not(miri)))]
#[test]
fn b3_a_grow_the_system_refuses_to_commit_is_err_and_changes_nothing() {
    use sharedbuf::{Error, SharedBuffer, Uint8Array};

    const MIB: usize = 1 << 20;

    let buf = SharedBuffer::growable(MIB, 1 << 40).unwrap();
    let bytes = Uint8Array::new(&buf).unwrap();
    bytes.set(MIB - 1, 0x5A).unwrap();

    // Allow what the process has now plus 64 MiB of private writable memory.
    let headroom = 64 * MIB;
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `old` is a valid `rlimit` to write into.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_DATA, &mut old) }, 0);
    let limit = libc::rlimit {
        rlim_cur: (data_bytes() + headroom) as libc::rlim_t,
        rlim_max: old.rlim_max,
    };
    // SAFETY: lowering the soft limit below the hard limit is always allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) }, 0);

    let small = buf.grow(2 * MIB);
    let refused = buf.grow(MIB << 10); // 1 GiB: far past the headroom
    let after_refusal = buf.byte_length();
    let last_kept = bytes.get(MIB - 1);
    let fresh_zero = bytes.get(2 * MIB - 1);
    let writable = bytes.set(2 * MIB - 1, 7).and_then(|()| buf.grow(3 * MIB));

    // SAFETY: restores the limits read above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_DATA, &old) }, 0);

    small.expect("a grow within the limit succeeds");
    match refused {
        Err(Error::AllocationFailed { bytes, ref reason }) => {
            assert_eq!(bytes, MIB << 10);
            assert!(reason.contains("commit"), "{reason}");
        }
        other => panic!("expected Err(AllocationFailed), got {other:?}"),
    }
    assert_eq!(after_refusal, 2 * MIB, "a refused grow leaves the length");
    assert_eq!(last_kept, Some(0x5A));
    assert_eq!(fresh_zero, Some(0));
    writable.expect("the buffer still works after a refused grow");
    assert_eq!(buf.byte_length(), 3 * MIB);
    assert_eq!(bytes.get(2 * MIB - 1), Some(7));
    assert_eq!(bytes.get(3 * MIB - 1), Some(0));
}

/// The process's private writable memory now, in bytes (`VmData` in `/proc/self/status`).
#[cfg(all(target_os = "linux", not(miri)))]
fn data_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmData:"))
        .expect("VmData in /proc/self/status");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmData in kB");
    kib * 1024
}
