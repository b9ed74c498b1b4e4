//! Loom model (docs/semantics.md S3): an in-buffer `Latch` counted down by two threads while two
//! others wait. No waiter passes before zero (each reads what both counters-down wrote before
//! counting down, and loom checks those writes happen-before the read), and none sleeps
//! forever after (a waiter left asleep is a deadlock loom reports).
//!
//! Proven by a planted bug: the count-down reaching zero bumps the epoch but skips the `notify` (loom deadlock).
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use sharedbuf::sync::Latch;
use sharedbuf::{loom_hooks, SharedBuffer};

/// What each counter-down wrote before counting down.
struct Written([UnsafeCell<usize>; 2]);

fn read_both(written: &Written) -> [usize; 2] {
    // SAFETY: each cell is written once, before its writer's count_down; readers read only
    // after their wait returned (what the model checks).
    [0, 1].map(|i| written.0[i].with(|cell| unsafe { *cell }))
}

#[test]
fn no_waiter_passes_before_zero_and_none_sleeps_forever() {
    loom::model(|| {
        let buffer = SharedBuffer::new(Latch::BYTES).unwrap();
        let latch = Latch::at(&buffer, 0).unwrap();
        latch.count_up(2).unwrap();
        let written = Arc::new(Written([UnsafeCell::new(0), UnsafeCell::new(0)]));

        let downers: Vec<_> = (0..2)
            .map(|i| {
                let (latch, written) = (latch.clone(), written.clone());
                loom::thread::spawn(move || {
                    // SAFETY: see `read_both`.
                    written.0[i].with_mut(|cell| unsafe { *cell = i + 1 });
                    latch.count_down().unwrap();
                })
            })
            .collect();
        let waiter = {
            let (latch, written) = (latch.clone(), written.clone());
            loom::thread::spawn(move || {
                latch.wait().unwrap();
                read_both(&written)
            })
        };
        latch.wait().unwrap();
        assert_eq!(read_both(&written), [1, 2], "passed before zero");
        assert_eq!(waiter.join().unwrap(), [1, 2], "passed before zero");
        for downer in downers {
            downer.join().unwrap();
        }
        assert_eq!(latch.count(), 0);
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
