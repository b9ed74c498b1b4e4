//! Helpers shared by the `sync` loom models (included with `#[path]`).
#![allow(dead_code)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use sharedbuf::{SharedBuffer, Uint32Array};

/// Data that only a lock's holder touches: loom reports any access not ordered after the
/// previous holder's (a broken mutual exclusion or a missing acquire/release).
#[derive(Clone)]
pub struct Guarded(Arc<UnsafeCell<usize>>);

impl Guarded {
    pub fn new() -> Guarded {
        Guarded(Arc::new(UnsafeCell::new(0)))
    }

    /// Adds one; call only while holding the lock.
    pub fn bump(&self) {
        // SAFETY: the models call this only while holding the lock that guards it; loom checks
        // that every two calls are ordered.
        self.0.with_mut(|value| unsafe { *value += 1 });
    }

    /// The value; call only while holding the lock, or after joining every thread.
    pub fn get(&self) -> usize {
        // SAFETY: as for `bump`.
        self.0.with(|value| unsafe { *value })
    }
}

/// The 32-bit words of `bytes` bytes of `buffer` from 0, for checking a lock's state at the end.
pub fn words(buffer: &SharedBuffer, bytes: usize) -> Vec<u32> {
    Uint32Array::with_range(buffer, 0, Some(bytes / 4))
        .unwrap()
        .to_vec()
}
