//! The worker's thread: runs the closure, turns what it returns (or its panic) into the
//! worker's ending, then closes the port and sets `EXITED`, in that order (SEMANTICS W1, W2).

use std::panic::{self, AssertUnwindSafe};

use super::context::{enter_worker, IntoExitCode, WorkerContext};
use super::event::{ExitStatus, WorkerError};
use super::lifecycle::{Lifecycle, EXITED, RUNNING, TERMINATING};
use crate::channel::Closer;
use crate::shim::{IdCounter, LOOM};

/// Worker ids: unique in the process, never 0 (0 is "not a worker").
static NEXT_THREAD_ID: IdCounter = IdCounter::starting_at(1);

/// A fresh worker id.
pub(super) fn next_thread_id() -> u64 {
    NEXT_THREAD_ID.next()
}

/// The body of a worker's thread.
pub(super) fn run<In, Out, D, F, R>(
    f: F,
    context: WorkerContext<In, Out, D>,
    lifecycle: &Lifecycle,
    closer: &Closer<Out, In>,
    thread_id: u64,
) where
    F: FnOnce(WorkerContext<In, Out, D>) -> R,
    R: IntoExitCode,
{
    let _installed = lifecycle.interrupter.install();
    enter_worker(thread_id);
    // Created → Running. The parent's `Online` waits for this bit.
    let before = lifecycle.set(RUNNING);
    let (error, status) = if before & TERMINATING != 0 {
        // Terminated before it started: the closure never runs.
        drop(context);
        (None, ExitStatus::TERMINATED)
    } else {
        let outcome = catch_panic(move || f(context).into_exit_code());
        let terminated = lifecycle.is_terminating();
        match outcome {
            Ok(Ok(code)) if !terminated => (None, ExitStatus::code_only(code)),
            Ok(Err(message)) if !terminated => (
                Some(WorkerError::returned(message)),
                ExitStatus::code_only(1),
            ),
            // After `terminate()`, as in Node, only `Exit` is reported; the closure's error
            // is most likely the `Error::Terminated` that unwound it.
            Ok(_) => (None, ExitStatus::TERMINATED),
            Err(message) => {
                let status = if terminated {
                    ExitStatus::TERMINATED
                } else {
                    ExitStatus::code_only(1)
                };
                (Some(WorkerError::panic(message)), status)
            }
        }
    };
    // The ending is recorded before the port closes, and the port closes before `EXITED`:
    // a parent that saw the port drained and then `EXITED` finds the ending there (W1).
    lifecycle.record_ending(error, status);
    closer.close();
    lifecycle.set(EXITED);
}

/// Runs `f`, turning a panic into its message (W2). Under loom panics are not caught: loom
/// reports the failures it finds by panicking, and those must reach the model.
fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    if LOOM {
        return Ok(f());
    }
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        if let Some(text) = payload.downcast_ref::<&str>() {
            (*text).to_owned()
        } else if let Some(text) = payload.downcast_ref::<String>() {
            text.clone()
        } else {
            "a panic with a non-string payload".to_owned()
        }
    })
}
