//! [`WorkerBuilder`]: a worker's settings (docs/semantics.md W7), and how a worker is started.

use super::context::{IntoExitCode, WorkerContext};
use super::handle::Worker;
use super::lifecycle::Lifecycle;
use super::runtime;
use crate::channel::{MessagePort, DEFAULT_CAPACITY};
use crate::error::Error;
use crate::shim::{thread, Arc};

/// Configures a worker before it starts (docs/semantics.md W7): `Worker::builder().name(..)...spawn(f)`.
#[derive(Debug)]
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct WorkerBuilder<D = ()> {
    name: Option<String>,
    stack_size: Option<usize>,
    capacity: usize,
    worker_data: D,
}

impl Default for WorkerBuilder<()> {
    fn default() -> Self {
        WorkerBuilder {
            name: None,
            stack_size: None,
            capacity: DEFAULT_CAPACITY,
            worker_data: (),
        }
    }
}

impl<D> WorkerBuilder<D> {
    /// The worker thread's OS name (Node's `name` option). A name with a NUL byte makes
    /// `spawn` fail with `Err`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The worker thread's stack size in bytes (Node's `resourceLimits.stackSizeMb`).
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// How many messages each direction of the worker's port holds before a post waits
    /// (default [`DEFAULT_CAPACITY`]; see [`crate::channel`]).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// `workerData`: a payload moved into the worker, read with
    /// [`WorkerContext::worker_data`].
    pub fn worker_data<T>(self, worker_data: T) -> WorkerBuilder<T> {
        WorkerBuilder {
            name: self.name,
            stack_size: self.stack_size,
            capacity: self.capacity,
            worker_data,
        }
    }

    /// Starts the worker: `f` runs on a new thread with the worker's [`WorkerContext`], and its
    /// return value becomes the exit code ([`IntoExitCode`]). `Err(Error::SpawnFailed)` if the
    /// system refuses the thread or the name has a NUL byte.
    pub fn spawn<In, Out, F, R>(self, f: F) -> Result<Worker<In, Out>, Error>
    where
        In: Send + 'static,
        Out: Send + 'static,
        D: Send + 'static,
        F: FnOnce(WorkerContext<In, Out, D>) -> R + Send + 'static,
        R: IntoExitCode,
    {
        let mut thread = thread::Builder::new();
        if let Some(name) = self.name {
            if name.contains('\0') {
                return Err(Error::SpawnFailed {
                    reason: format!("the worker name {name:?} contains a NUL byte"),
                });
            }
            thread = thread.name(name);
        }
        if let Some(bytes) = self.stack_size {
            thread = thread.stack_size(bytes);
        }
        let (port, worker_port) = MessagePort::<In, Out>::entangled(self.capacity)?;
        let lifecycle = Arc::new(Lifecycle::new()?);
        let thread_id = runtime::next_thread_id();
        let closer = worker_port.closer();
        let context = WorkerContext::new(
            worker_port,
            self.worker_data,
            thread_id,
            Arc::clone(&lifecycle),
        );
        let shared = Arc::clone(&lifecycle);
        let handle = thread
            .spawn(move || runtime::run(f, context, &shared, &closer, thread_id))
            .map_err(|error| Error::SpawnFailed {
                reason: error.to_string(),
            })?;
        Ok(Worker::from_parts(port, lifecycle, thread_id, handle))
    }
}

impl Worker<(), ()> {
    /// A builder for the worker's name, stack size, capacity and `worker_data`.
    pub fn builder() -> WorkerBuilder {
        WorkerBuilder::default()
    }
}

impl<In: Send + 'static, Out: Send + 'static> Worker<In, Out> {
    /// Starts a worker with default settings: `Worker::builder().spawn(f)`.
    pub fn spawn<F, R>(f: F) -> Result<Worker<In, Out>, Error>
    where
        F: FnOnce(WorkerContext<In, Out>) -> R + Send + 'static,
        R: IntoExitCode,
    {
        Worker::builder().spawn(f)
    }
}
