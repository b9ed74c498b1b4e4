//! What a worker sees of itself (docs/semantics.md W7, W8): [`WorkerContext`], and what its closure may
//! return ([`IntoExitCode`]).

use std::cell::Cell;
use std::fmt;

use super::lifecycle::Lifecycle;
use crate::channel::MessagePort;
use crate::error::Error;
use crate::shim::{self, Arc};

shim::thread_local_static! {
    /// The worker id of the current thread; 0 on every thread that is not a worker.
    static CURRENT_WORKER: Cell<u64> = Cell::new(0);
}

/// Marks the current thread as worker `id` (for [`is_main_thread`] and [`thread_id`]).
pub(crate) fn enter_worker(id: u64) {
    CURRENT_WORKER.with(|current| current.set(id));
}

/// `isMainThread`: `false` on a thread running a [`Worker`](super::Worker), `true` on every
/// other thread (Rust has no single main thread; any thread that is not a worker plays its
/// part).
pub fn is_main_thread() -> bool {
    thread_id() == 0
}

/// `threadId`: the current worker's id (the one [`Worker::thread_id`](super::Worker::thread_id)
/// reports), or 0 on a thread that is not a worker, as on Node's main thread.
pub fn thread_id() -> u64 {
    CURRENT_WORKER.with(Cell::get)
}

/// What a worker's closure receives: its port to the parent, its `worker_data`, its id, and
/// whether it was asked to terminate (docs/semantics.md W7, W8).
///
/// The port posts `Out` to the parent (which sees them as
/// [`WorkerEvent::Message`](super::WorkerEvent::Message)) and receives the `In` the parent
/// posts. It is closed when the worker ends.
pub struct WorkerContext<In, Out, D = ()> {
    port: MessagePort<Out, In>,
    worker_data: D,
    thread_id: u64,
    lifecycle: Arc<Lifecycle>,
}

impl<In, Out, D> WorkerContext<In, Out, D> {
    pub(crate) fn new(
        port: MessagePort<Out, In>,
        worker_data: D,
        thread_id: u64,
        lifecycle: Arc<Lifecycle>,
    ) -> Self {
        WorkerContext {
            port,
            worker_data,
            thread_id,
            lifecycle,
        }
    }

    /// `parentPort`: posts to and receives from the parent.
    pub fn port(&self) -> &MessagePort<Out, In> {
        &self.port
    }

    /// `parentPort.postMessage(message)`: shorthand for `port().post_message(message)`.
    pub fn post_message(&self, message: Out) -> Result<(), Error> {
        self.port.post_message(message)
    }

    /// Shorthand for `port().recv()`: the parent's next message. Returns
    /// `Err(Error::Terminated)` if the worker is terminated while it waits (W3).
    pub fn recv(&self) -> Result<In, Error> {
        self.port.recv()
    }

    /// `workerData`: the payload given to [`WorkerBuilder::worker_data`](super::WorkerBuilder::worker_data).
    pub fn worker_data(&self) -> &D {
        &self.worker_data
    }

    /// Mutable access to the `worker_data`.
    pub fn worker_data_mut(&mut self) -> &mut D {
        &mut self.worker_data
    }

    /// Takes the `worker_data` out, leaving `D::default()` behind.
    pub fn take_worker_data(&mut self) -> D
    where
        D: Default,
    {
        std::mem::take(&mut self.worker_data)
    }

    /// `threadId`: this worker's id, unique in the process and never 0.
    pub fn thread_id(&self) -> u64 {
        self.thread_id
    }

    /// `isMainThread`: always `false` inside a worker.
    pub fn is_main_thread(&self) -> bool {
        false
    }

    /// Whether the parent called [`terminate`](super::Worker::terminate) (or dropped its
    /// handle). A worker that computes without blocking checks this to stop: nothing else can
    /// interrupt a pure CPU loop (W3).
    pub fn is_terminating(&self) -> bool {
        self.lifecycle.is_terminating()
    }
}

impl<In, Out, D> fmt::Debug for WorkerContext<In, Out, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerContext")
            .field("thread_id", &self.thread_id)
            .field("port", &self.port)
            .field("is_terminating", &self.is_terminating())
            .finish_non_exhaustive()
    }
}

/// What a worker's closure may return: the exit code, or the error that ends it (docs/semantics.md W2).
///
/// - `()` exits with code 0; an `i32` exits with that code;
/// - `Result<T, E>` with `E: Display`: `Ok(t)` exits as `t` does; `Err(e)` is reported as an
///   [`Error`](super::WorkerEvent::Error) event with `e`'s text, then exit code 1.
pub trait IntoExitCode {
    /// `Ok(code)`, or `Err(message)` for a failure.
    fn into_exit_code(self) -> Result<i32, String>;
}

impl IntoExitCode for () {
    fn into_exit_code(self) -> Result<i32, String> {
        Ok(0)
    }
}

impl IntoExitCode for i32 {
    fn into_exit_code(self) -> Result<i32, String> {
        Ok(self)
    }
}

impl<T: IntoExitCode, E: fmt::Display> IntoExitCode for Result<T, E> {
    fn into_exit_code(self) -> Result<i32, String> {
        match self {
            Ok(value) => value.into_exit_code(),
            Err(error) => Err(error.to_string()),
        }
    }
}
