//! The worker's thread: runs the closure, turns what it returns (or its panic) into the
//! worker's ending, then records the ending, closes the port and sets `EXITED` (docs/semantics.md W1,
//! W2, W9).
//!
//! User code runs all through a worker's thread: the closure, its `IntoExitCode` conversion,
//! and the `Drop`s of the closure, the context (its `worker_data`), the returned value and a
//! panic's payload. Any of them may panic, even while another panic is being handled, so:
//!
//! - each runs inside `panics::catch_panic` (W2), which also drops the panic's payload inside
//!   a `catch_unwind` (a payload whose `Drop` panics too is leaked, not dropped again);
//! - the three steps that end a worker — record the ending, close the port, set `EXITED` — are
//!   the `Drop` of an [`ExitGuard`] made before anything else runs, not statements after the
//!   user code: they happen whatever it does, so the parent always gets `Exit` and
//!   `join`/`terminate`/`recv_event` always return.

use super::context::{enter_worker, IntoExitCode, WorkerContext};
use super::event::WorkerError;
use super::lifecycle::{Ending, Lifecycle};
use crate::channel::Closer;
use crate::panics::catch_panic;
use crate::shim::{self, IdCounter};

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
    // First, so that it is dropped last: after the interrupter is uninstalled, on every path.
    let mut exit = ExitGuard {
        lifecycle,
        closer,
        ending: None,
    };
    let _installed = lifecycle.interrupter.install();
    enter_worker(thread_id);
    exit.ending = Some(outcome(f, context, lifecycle));
}

/// Runs the worker and decides how it ended (W2, W9). Every piece of user code runs inside
/// [`catch_panic`], so this returns whatever that code does.
fn outcome<In, Out, D, F, R>(
    f: F,
    context: WorkerContext<In, Out, D>,
    lifecycle: &Lifecycle,
) -> Ending
where
    F: FnOnce(WorkerContext<In, Out, D>) -> R,
    R: IntoExitCode,
{
    // Created → Running, one compare-exchange that fails if `terminate()` came first: then the
    // closure never runs, `RUNNING` is never set and the parent sees no `Online` (W9).
    if !lifecycle.start() {
        // The closure's captures and the `worker_data` are user types: their `Drop` may panic,
        // which changes nothing here.
        let _ = catch_panic(move || drop((f, context)));
        return Ending::terminated();
    }
    let returned = catch_panic(move || f(context));
    // Running → Finished, one `fetch_or` right after the closure is over and before anything
    // looks at its result: it says whether `terminate()` came first (W9).
    let terminated_first = lifecycle.finish();
    match returned {
        // After `terminate()` only `Exit` is reported (W9), whatever the closure did with the
        // `Terminated` error (returned it, unwrapped it, ignored it): its result is not looked
        // at, only dropped.
        Ok(value) if terminated_first => {
            let _ = catch_panic(move || drop(value));
            Ending::terminated()
        }
        Err(_) if terminated_first => Ending::terminated(),
        // It returned before `terminate()`: its real outcome stands, even if `terminate()`
        // lands while it is converted.
        Ok(value) => match catch_panic(move || value.into_exit_code()) {
            Ok(Ok(code)) => Ending::code(code),
            Ok(Err(message)) => Ending::failed(WorkerError::returned(message)),
            Err(message) => Ending::failed(WorkerError::panic(message)),
        },
        Err(message) => Ending::failed(WorkerError::panic(message)),
    }
}

/// Ends the worker when dropped, however the thread gets there: records the ending, closes
/// the port, sets `EXITED`, in that order (W1).
struct ExitGuard<'a, Out, In> {
    lifecycle: &'a Lifecycle,
    closer: &'a Closer<Out, In>,
    /// What [`outcome`] decided; `None` only if our own code unwound before it returned.
    ending: Option<Ending>,
}

impl<Out, In> Drop for ExitGuard<'_, Out, In> {
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // a failed loom model: see `shim::model_is_unwinding`
        }
        let ending = self.ending.take().unwrap_or_else(|| {
            Ending::failed(WorkerError::panic(
                "the worker's runtime unwound before the worker's ending was decided".to_owned(),
            ))
        });
        self.lifecycle.exit(ending, || self.closer.close());
    }
}
