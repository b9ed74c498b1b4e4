//! Loom models (docs/semantics.md S1): an in-buffer `Once`.
//!
//! - Two threads race to run it (and the main thread waits for it): exactly one closure runs,
//!   and every caller returns after it, seeing what it wrote (loom checks the happens-before).
//! - Poisoning: one closure panics while another caller waits for it. The panic's drop guard
//!   must wake the waiter (a waiter left asleep is a deadlock loom reports), which then gets
//!   `Err(Poisoned)` — or ran first itself, and then the panicking closure never ran.
//!
//! - The race again in a process-shared buffer, where callers claim the owner word first and
//!   one that meets another's claim polls it (`Start::Claimed`).
//!
//! Proven by a planted bug: the run's drop guard publishes the outcome but skips the `notify` when `QUEUED` (loom deadlock).
//! The process-shared race, by another: a caller that meets a claim returns as if completed.
#![cfg(loom)]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering::SeqCst;

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicUsize;
use loom::sync::Arc;
use sharedbuf::sync::Once;
use sharedbuf::{loom_hooks, Error, SharedBuffer};

/// What the poisoning model's closure panics with.
const EXPECTED_PANIC: &str = "the initializer failed";

/// Written only by the closure that runs.
struct Data(UnsafeCell<usize>);

impl Data {
    fn read(&self) -> usize {
        // SAFETY: written only inside the `Once`'s closure; read only after a call returned
        // (what the model checks).
        self.0.with(|cell| unsafe { *cell })
    }
}

#[test]
fn exactly_one_closure_runs_under_a_race() {
    race_to_run(|| SharedBuffer::new(Once::BYTES).unwrap());
}

/// Two callers race in a process-shared buffer (X3: each claims the owner word before it moves
/// the state), where a caller that meets the other's claim in passing polls it (S7): exactly
/// one closure runs and both return after it. (Smaller than the private race: the shared
/// protocol's probes and slices multiply the interleavings.)
#[test]
fn exactly_one_closure_runs_under_a_race_in_a_process_shared_buffer() {
    loom::model(|| {
        let buffer = SharedBuffer::memfd("model", Once::BYTES).unwrap();
        let once = Once::at(&buffer, 0).unwrap();
        let data = Arc::new(Data(UnsafeCell::new(0)));
        let run = |once: &Once, data: &Data, i: usize| {
            once.call_once(|| {
                // SAFETY: see `Data::read`.
                data.0.with_mut(|cell| unsafe { *cell = 10 + i });
            })
            .unwrap();
            data.read()
        };
        let other = {
            let (once, data) = (once.clone(), data.clone());
            loom::thread::spawn(move || run(&once, &data, 1))
        };
        let seen = run(&once, &data, 0);
        assert!(seen == 10 || seen == 11, "returned, yet not initialized");
        assert_eq!(other.join().unwrap(), seen, "two closures ran");
    });
}

fn race_to_run(new_buffer: fn() -> SharedBuffer) {
    loom::model(move || {
        let buffer = new_buffer();
        let once = Once::at(&buffer, 0).unwrap();
        let data = Arc::new(Data(UnsafeCell::new(0)));
        let runs = Arc::new(AtomicUsize::new(0));

        let callers: Vec<_> = (0..2)
            .map(|i| {
                let (once, data, runs) = (once.clone(), data.clone(), runs.clone());
                loom::thread::spawn(move || {
                    once.call_once(|| {
                        runs.fetch_add(1, SeqCst);
                        // SAFETY: see `Data::read`.
                        data.0.with_mut(|cell| unsafe { *cell = 10 + i });
                    })
                    .unwrap();
                    data.read()
                })
            })
            .collect();
        once.wait().unwrap();
        let seen = data.read();
        assert!(seen == 10 || seen == 11, "waited, yet not initialized");
        for caller in callers {
            assert_eq!(caller.join().unwrap(), seen);
        }
        assert_eq!(
            runs.load(SeqCst),
            1,
            "the closure ran {} times",
            runs.load(SeqCst)
        );
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

#[test]
fn a_panicking_closure_poisons_and_wakes_the_waiter() {
    // The closure's panic is expected in every execution: keep it quiet, and let every other
    // panic (an assertion, a deadlock loom reports) through.
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&EXPECTED_PANIC) {
            default_hook(info);
        }
    }));
    loom::model(|| {
        let buffer = SharedBuffer::new(Once::BYTES).unwrap();
        let once = Once::at(&buffer, 0).unwrap();
        let ran = Arc::new(AtomicUsize::new(0));

        let panicking = {
            let (once, ran) = (once.clone(), ran.clone());
            loom::thread::spawn(move || {
                panic::catch_unwind(AssertUnwindSafe(|| {
                    once.call_once(|| {
                        ran.fetch_add(1, SeqCst);
                        panic::panic_any(EXPECTED_PANIC);
                    })
                }))
                .is_err()
            })
        };
        let result = once.call_once(|| {
            ran.fetch_add(10, SeqCst);
        });
        let panicked = panicking.join().unwrap();
        match (panicked, result) {
            // The panicking closure ran first: this caller waited (or came later) and sees the
            // poison; its own closure never ran.
            (true, Err(Error::Poisoned)) => assert_eq!(ran.load(SeqCst), 1),
            // This caller ran first: the other call found it complete and ran nothing.
            (false, Ok(())) => assert_eq!(ran.load(SeqCst), 10),
            other => panic!("unexpected outcome {other:?}"),
        }
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
    let _ = panic::take_hook();
}
