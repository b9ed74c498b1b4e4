//! Growable buffers whose maximum is reserved as address space only and committed as they grow
//! (docs/semantics.md B3, B4): the length a thread sees is always backed by accessible memory,
//! however grows race with each other and with readers.
//!
//! A broken commit order (publishing a length before its pages are accessible) does not fail
//! an assertion here: it kills the test process with a segmentation fault, which fails the test
//! binary just as surely.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use sharedbuf::{DataView, Error, SharedBuffer, Uint8Array};

const MIB: usize = 1 << 20;

/// Far above what the test ever grows to, so the buffer is a reservation, not a mapping of its
/// whole maximum.
#[cfg(target_pointer_width = "64")]
const MAX: usize = 1 << 40;
#[cfg(not(target_pointer_width = "64"))]
const MAX: usize = 1 << 30;

/// Two growers race to grow one buffer a page and a bit at a time (odd sizes, so a length often
/// ends inside a page and the next grow commits from the middle of one), while two readers keep
/// touching the last byte of the length they see, through a length-tracking `Uint8Array` and a
/// length-tracking `DataView`. Every grow must be either `Ok` or a `Shrink` refusal naming a
/// larger length, and each thread's view of the length never decreases.
// docs/semantics.md B3, B4
#[test]
#[cfg_attr(miri, ignore)] // no mmap under Miri; the heap backing has nothing to commit
fn b4_racing_grows_and_readers_only_ever_see_accessible_bytes() {
    let rounds = 8;
    let target = 24 * MIB;
    for round in 0..rounds {
        let buf = SharedBuffer::growable(0, MAX).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(4));
        let grower = |step: usize| {
            let (buf, start) = (buf.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut last = 0;
                while last < target {
                    let n = buf.byte_length() + step;
                    match buf.grow(n) {
                        Ok(()) => {}
                        Err(Error::Shrink { requested, current }) => {
                            assert_eq!(requested, n);
                            assert!(current > n, "refused {n} while the length is {current}");
                        }
                        Err(e) => panic!("round {round}: grow({n}): {e:?}"),
                    }
                    let now = buf.byte_length();
                    assert!(now >= last, "length went from {last} to {now}");
                    last = now;
                }
            })
        };
        let reader = |through_data_view: bool| {
            let (buf, start, done) = (buf.clone(), start.clone(), done.clone());
            thread::spawn(move || {
                let bytes = Uint8Array::new(&buf).unwrap();
                let dv = DataView::new(&buf).unwrap();
                start.wait();
                let mut touched = 0u64;
                while !done.load(Ordering::Relaxed) {
                    if through_data_view {
                        let len = dv.byte_length();
                        if len > 0 {
                            let old = dv.get_uint8(len - 1).unwrap();
                            dv.set_uint8(len - 1, old.wrapping_add(1)).unwrap();
                            touched += 1;
                        }
                    } else {
                        let len = bytes.len();
                        if len > 0 {
                            let old = bytes.get(len - 1).unwrap();
                            bytes.set(len - 1, old.wrapping_add(1)).unwrap();
                            touched += 1;
                        }
                    }
                }
                touched
            })
        };
        let growers = [grower(4096 + 1), grower(3 * 4096 + 7)];
        let readers = [reader(false), reader(true)];
        for g in growers {
            g.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
        let touched: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(buf.byte_length() >= target);
        // The whole length is readable to its last byte after the race, too.
        let all = Uint8Array::new(&buf).unwrap();
        assert_eq!(all.to_vec().len(), buf.byte_length());
        eprintln!("round {round}: readers touched {touched} last bytes");
    }
}

/// Growing in steps that are not page multiples, from a length that is not one either: every
/// byte up to each new length reads zero and keeps what was written, to the very last.
// docs/semantics.md B4
#[test]
#[cfg_attr(miri, ignore)]
fn b4_grows_from_inside_a_page_commit_the_rest_of_it_and_beyond() {
    let buf = SharedBuffer::growable(4096 * 3 + 5, MAX).unwrap();
    let bytes = Uint8Array::new(&buf).unwrap();
    bytes.fill(0x11);
    for n in [
        4096 * 3 + 6,
        4096 * 4 - 1,
        4096 * 4,
        4096 * 9 + 333,
        5 * MIB + 1,
    ] {
        let before = bytes.len();
        buf.grow(n).unwrap();
        let all = bytes.to_vec();
        assert_eq!(all.len(), n);
        assert!(
            all[..before].iter().all(|&b| b == 0x11),
            "kept below {before}"
        );
        assert!(
            all[before..].iter().all(|&b| b == 0),
            "fresh from {before} to {n}"
        );
        bytes.fill(0x11);
    }
}
