//! Dropping values on the pool's own threads so that a panicking `Drop` harms nothing; the
//! pool catches panics with the crate's `panics::catch_panic`, re-exported here.

pub(super) use crate::panics::catch_panic;

/// Drops `value`, swallowing a panic from its `Drop`: for values the pool drops on its own
/// threads or in the middle of its own loops (a discarded result, a cancelled closure), where
/// nobody could receive the panic and the rest of the loop must still happen.
pub(super) fn drop_quietly<T>(value: T) {
    let _ = catch_panic(move || drop(value));
}
