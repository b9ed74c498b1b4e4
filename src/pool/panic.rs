//! Running user code (a task, a hook, a `Drop`) so that its panic becomes a value.
//!
//! The same few lines as the worker runtime's `catch_panic` (`src/worker/runtime.rs`, private
//! there); they could move to one shared place.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use crate::shim::LOOM;

/// Runs `f`, turning a panic into its message. Under loom panics are not caught: loom reports
/// the failures it finds by panicking, and those must reach the model.
///
/// `AssertUnwindSafe`: what `f` touches of the pool's own state is left consistent at every
/// panic point (each "must happen" step sits in a drop guard), and the user's own state is
/// theirs to judge, as with `std::thread::spawn`.
pub(super) fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    if LOOM {
        return Ok(f());
    }
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| message(&*payload))
}

/// Drops `value`, swallowing a panic from its `Drop`: for values the pool drops on its own
/// threads or in the middle of its own loops (a discarded result, a cancelled closure), where
/// nobody could receive the panic and the rest of the loop must still happen.
pub(super) fn drop_quietly<T>(value: T) {
    let _ = catch_panic(move || drop(value));
}

/// The message of a panic payload.
pub(super) fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
