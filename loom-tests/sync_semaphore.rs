//! Loom model (docs/semantics.md S3, S5): permits are conserved under racing acquires and
//! releases with waiters. A large acquire (which under loom becomes the heir as soon as it has
//! slept once, so the reservation path is explored too) and a small one race two releases that
//! together hold exactly what they need: every thread returns (no lost wakeup: a sleeper left
//! behind is a deadlock loom reports), no permit is created or lost, and no reservation is left
//! set.
//!
//! Proven by a planted bug: `release` skips the `notify` when `WAITING` was set (loom deadlock).
#![cfg(loom)]

use sharedbuf::sync::Semaphore;
use sharedbuf::{loom_hooks, SharedBuffer, Uint32Array};

/// The semaphore word's `HEIR` bit (see `src/sync/semaphore.rs`).
const HEIR: u32 = 2;

#[test]
fn permits_are_conserved_with_waiters() {
    loom::model(|| {
        let buffer = SharedBuffer::new(Semaphore::BYTES).unwrap();
        let semaphore = Semaphore::at(&buffer, 0).unwrap();

        let acquirers: Vec<_> = [2, 1]
            .into_iter()
            .map(|n| {
                let semaphore = semaphore.clone();
                loom::thread::spawn(move || semaphore.acquire(n).unwrap())
            })
            .collect();
        semaphore.release(1).unwrap();
        // A free switch point (not a preemption): lets the large acquire wake to too few
        // permits and become the heir before the second release, within the preemption bound.
        loom::thread::yield_now();
        semaphore.release(2).unwrap();
        for acquirer in acquirers {
            acquirer.join().unwrap();
        }

        // Released 1 + 2, acquired 2 + 1: a permit created would be left over; a permit lost
        // would leave an acquirer asleep (a deadlock).
        assert_eq!(semaphore.available(), 0, "a permit was created");
        let word = Uint32Array::new(&buffer).unwrap().get(0).unwrap();
        assert_eq!(word & HEIR, 0, "a reservation was left behind");
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
