//! Running user code (a worker's closure, a pool task, a hook, a `Drop`) so that its panic
//! becomes a value: the one place the worker runtime, the pool and process workers catch
//! panics.
//!
//! A panic's payload is user code too: its `Drop` may panic in turn. Such a second panic must
//! not escape from the place that caught the first (it would kill a worker thread in the middle
//! of its protocol), so the payload is dropped under a second `catch_unwind`, and the payload
//! of *that* panic is leaked (`mem::forget`), not dropped: it could panic again, without end.
//! The leak is one allocation, and only for a payload type whose `Drop` panics.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use crate::shim::LOOM;

/// Runs `f`, turning a panic into its message; the payload is dropped here, safely. Under loom
/// panics are not caught: loom reports the failures it finds by panicking, and those must reach
/// the model.
///
/// `AssertUnwindSafe`: callers leave their own state consistent at every panic point (each
/// "must happen" step sits in a drop guard); the user's state is theirs to judge, as with
/// `std::thread::spawn`.
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    if LOOM {
        return Ok(f());
    }
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = message(&*payload);
        drop_payload(payload);
        message
    })
}

/// The text of a panic: its `&str` or `String` payload.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// Drops a panic's payload; a panic from its `Drop` is caught and its own payload leaked.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(second) = panic::catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(second);
    }
}
