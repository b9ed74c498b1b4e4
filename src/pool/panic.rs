//! Dropping values on the pool's own threads so that a panicking `Drop` harms nothing; the
//! pool catches panics with the crate's `panics::catch_panic`, re-exported here.

pub(super) use crate::panics::catch_panic;

/// Drops `value`, swallowing a panic from its `Drop`: for values the pool drops on its own
/// threads or in the middle of its own loops (a discarded result, a cancelled closure), where
/// nobody could receive the panic and the rest of the loop must still happen.
pub(super) fn drop_quietly<T>(value: T) {
    let _ = catch_panic(move || drop(value));
}

/// [`drop_quietly`] for a value in place (no copy: `map`'s results may be large), so that a
/// loop over many values drops every one of them.
///
/// # Safety
/// As [`std::ptr::drop_in_place`]; the value is not used again.
pub(super) unsafe fn drop_in_place_quietly<T>(value: *mut T) {
    // SAFETY: the caller's contract.
    let _ = catch_panic(|| unsafe { std::ptr::drop_in_place(value) });
}
