//! Loom model (docs/semantics.md S2, S5): writers and readers enter an in-buffer `RwLock` in every
//! interleaving. A writer never overlaps a reader or another writer (loom checks the guarded
//! cell: writers write it, readers read it), nobody is left asleep (a deadlock loom reports),
//! and the words return to zero.
//!
//! Proven by a planted bug: the write unlock fast path's compare-exchange Release → Relaxed (loom causality violation: the reader's read races the writer's write).
#![cfg(loom)]

#[path = "sync_support.rs"]
mod support;

use sharedbuf::sync::RwLock;
use sharedbuf::{loom_hooks, SharedBuffer};
use support::Guarded;

/// The main thread writes; one spawned thread reads; with `second_writer`, another writes.
fn writers_and_a_reader(second_writer: bool) {
    let buffer = SharedBuffer::new(RwLock::BYTES).unwrap();
    let lock = RwLock::at(&buffer, 0).unwrap();
    let guarded = Guarded::new();

    let (reader_lock, reader_guarded) = (lock.clone(), guarded.clone());
    let reader = loom::thread::spawn(move || {
        let _guard = reader_lock.read().unwrap();
        reader_guarded.get()
    });
    let writer = second_writer.then(|| {
        let (writer_lock, writer_guarded) = (lock.clone(), guarded.clone());
        loom::thread::spawn(move || {
            let _guard = writer_lock.write().unwrap();
            writer_guarded.bump();
        })
    });
    {
        let _guard = lock.write().unwrap();
        guarded.bump();
    }
    let seen = reader.join().unwrap();
    if let Some(writer) = writer {
        writer.join().unwrap();
    }
    let writes = 1 + usize::from(second_writer);
    assert!(seen <= writes);
    assert_eq!(guarded.get(), writes);
    let words = support::words(&buffer, 16);
    assert_eq!(words, [0, 0, 0, 0], "state and owner words");
    assert_eq!(loom_hooks::queued_waiters(), 0);
}

#[test]
fn a_writer_and_a_reader() {
    loom::model(|| writers_and_a_reader(false));
}

/// Three threads: at most one preemption (two cost minutes).
#[test]
fn two_writers_and_a_reader() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(1, |bound| bound.min(1)));
    builder.check(|| writers_and_a_reader(true));
}
