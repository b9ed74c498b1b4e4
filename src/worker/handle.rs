//! [`Worker`]: the parent's handle, [`WorkerBuilder`], and the runtime that runs a worker's
//! closure on its thread (SEMANTICS W1–W3, W7).
//!
//! # How the event order is kept (W1)
//!
//! `Online` is the lifecycle word turning `RUNNING`; messages come through the worker's port;
//! `Error` and `Exit` are stored by the runtime *before* it closes the port and then sets
//! `EXITED`. The parent reads in stages: `Online` once the worker runs, then messages until the
//! port reports it is closed and drained, then `Error` and `Exit` once `EXITED` is set. A port
//! delivers everything posted before its close, so `Exit` comes after every message, by
//! construction.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use super::context::{enter_worker, IntoExitCode, WorkerContext};
use super::event::{ExitStatus, WorkerError, WorkerEvent, WorkerState};
use crate::atomics::{self, Interrupter, WaitResult};
use crate::channel::{Closer, MessagePort, PostError, DEFAULT_CAPACITY};
use crate::error::Error;
use crate::shim::{lock, thread, Arc, AtomicU8, Mutex, Ordering};
use crate::{Int32Array, SharedBuffer};

/// Lifecycle word bits.
const RUNNING: i32 = 1;
const EXITED: i32 = 2;
const TERMINATING: i32 = 4;

/// Stages of the parent's event stream.
const STAGE_ONLINE: u8 = 0;
const STAGE_MESSAGES: u8 = 1;
const STAGE_ENDING: u8 = 2;
const STAGE_DONE: u8 = 3;

/// Worker ids: unique in the process, never 0 (0 is "not a worker"). A plain counter that
/// synchronizes nothing, so it is std's atomic even under loom (a loom atomic cannot be static).
static NEXT_THREAD_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// What the parent and the worker's thread share about the worker's life.
pub(crate) struct Lifecycle {
    /// `RUNNING | EXITED | TERMINATING` bits, waited on through `atomics::wait`.
    word: Int32Array,
    /// Installed on the worker's thread: `terminate()` interrupts its blocking waits.
    interrupter: Interrupter,
    /// How it ended; written once, before `EXITED` is set.
    ending: Mutex<Ending>,
}

#[derive(Default)]
struct Ending {
    error: Option<WorkerError>,
    status: Option<ExitStatus>,
}

/// How long to wait for something.
#[derive(Clone, Copy)]
enum Patience {
    /// Not at all: answer `Err(Timeout)` if it is not there now.
    None,
    /// Until the deadline (`None`: forever).
    Until(Option<Instant>),
}

impl Lifecycle {
    fn new() -> Result<Lifecycle, Error> {
        Ok(Lifecycle {
            word: Int32Array::new(&SharedBuffer::new(4)?)?,
            interrupter: Interrupter::new(),
            ending: Mutex::new(Ending::default()),
        })
    }

    fn bits(&self) -> i32 {
        atomics::load(&self.word, 0).unwrap_or(0)
    }

    /// Sets `bit`; returns the bits before.
    fn set(&self, bit: i32) -> i32 {
        let before = atomics::or(&self.word, 0, bit).unwrap_or(0);
        let _ = atomics::notify(&self.word, 0, None);
        before
    }

    pub(crate) fn is_terminating(&self) -> bool {
        self.bits() & TERMINATING != 0
    }

    fn request_termination(&self) {
        atomics::or(&self.word, 0, TERMINATING).ok();
        self.interrupter.interrupt();
    }

    /// Waits until `bit` is set.
    fn wait_for(&self, bit: i32, patience: Patience) -> Result<(), Error> {
        loop {
            let bits = self.bits();
            if bits & bit != 0 {
                return Ok(());
            }
            let deadline = match patience {
                Patience::None => return Err(Error::Timeout),
                Patience::Until(deadline) => deadline,
            };
            if atomics::wait_until(&self.word, 0, bits, deadline)? == WaitResult::TimedOut {
                return Err(Error::Timeout);
            }
        }
    }

    fn exit_status(&self) -> ExitStatus {
        // Written before `EXITED` is set; callers saw `EXITED`.
        lock(&self.ending).status.unwrap_or(ExitStatus::TERMINATED)
    }
}

/// Configures a worker before it starts (SEMANTICS W7): `Worker::builder().name(..)...spawn(f)`.
#[derive(Debug)]
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
        let thread_id = NEXT_THREAD_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let closer = worker_port.closer();
        let context = WorkerContext::new(
            worker_port,
            self.worker_data,
            thread_id,
            Arc::clone(&lifecycle),
        );
        let shared = Arc::clone(&lifecycle);
        let handle = thread
            .spawn(move || run(f, context, &shared, &closer, thread_id))
            .map_err(|error| Error::SpawnFailed {
                reason: error.to_string(),
            })?;
        Ok(Worker {
            port,
            lifecycle,
            stage: AtomicU8::new(STAGE_ONLINE),
            thread_id,
            thread: Mutex::new(Some(handle)),
        })
    }
}

/// The worker's thread: runs `f`, turns what it returns (or its panic) into the ending, then
/// closes the port and sets `EXITED`, in that order (see the module docs).
fn run<In, Out, D, F, R>(
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
    {
        let mut ending = lock(&lifecycle.ending);
        ending.error = error;
        ending.status = Some(status);
    }
    closer.close();
    lifecycle.set(EXITED);
}

/// Runs `f`, turning a panic into its message (W2). Under loom panics are not caught: loom
/// reports the failures it finds by panicking, and those must reach the model.
fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    if cfg!(loom) {
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

/// The parent's handle to a worker thread (Node's `Worker`): posts `In` to it, receives its
/// [`WorkerEvent`]s carrying `Out`.
///
/// Dropping the handle without [`join`](Self::join) terminates the worker if it is still
/// running (as [`terminate`](Self::terminate) does, without waiting) and detaches its thread:
/// a drop never blocks, and a worker that honours termination does not outlive its handle for
/// long. Unread events are dropped.
pub struct Worker<In, Out> {
    port: MessagePort<In, Out>,
    lifecycle: Arc<Lifecycle>,
    stage: AtomicU8,
    thread_id: u64,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
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

impl<In, Out> Worker<In, Out> {
    /// `worker.postMessage(message)`. Waits while the worker's queue is full;
    /// `Err(Error::Closed)` once the worker has exited (W4): the message is dropped.
    pub fn post_message(&self, message: In) -> Result<(), Error> {
        self.port.post_message(message)
    }

    /// Posts if there is room now; gives the message back otherwise.
    pub fn try_post_message(&self, message: In) -> Result<(), PostError<In>> {
        self.port.try_post_message(message)
    }

    /// Posts, waiting at most `timeout` for room; gives the message back otherwise.
    pub fn post_message_timeout(
        &self,
        message: In,
        timeout: Duration,
    ) -> Result<(), PostError<In>> {
        self.port.post_message_timeout(message, timeout)
    }

    /// The next event, waiting for it (W1). After `Exit` has been returned: `Err(Error::Closed)`.
    pub fn recv_event(&self) -> Result<WorkerEvent<Out>, Error> {
        self.next_event(Patience::Until(None))
    }

    /// As [`recv_event`](Self::recv_event), giving up with `Err(Error::Timeout)` after
    /// `timeout`.
    pub fn recv_event_timeout(&self, timeout: Duration) -> Result<WorkerEvent<Out>, Error> {
        self.next_event(Patience::Until(Instant::now().checked_add(timeout)))
    }

    /// The next event if it is there now.
    pub fn try_recv_event(&self) -> Option<WorkerEvent<Out>> {
        self.next_event(Patience::None).ok()
    }

    /// A blocking iterator over the events; it ends after `Exit`.
    pub fn events(&self) -> Events<'_, In, Out> {
        Events { worker: self }
    }

    fn next_event(&self, patience: Patience) -> Result<WorkerEvent<Out>, Error> {
        loop {
            match self.stage.load(Ordering::SeqCst) {
                STAGE_ONLINE => {
                    self.lifecycle.wait_for(RUNNING, patience)?;
                    if self.advance(STAGE_ONLINE, STAGE_MESSAGES) {
                        return Ok(WorkerEvent::Online);
                    }
                }
                STAGE_MESSAGES => {
                    let message = match patience {
                        Patience::None => self.port.try_recv_or_why(),
                        Patience::Until(deadline) => self.port.recv_until(deadline),
                    };
                    match message {
                        Ok(message) => return Ok(WorkerEvent::Message(message)),
                        Err(Error::Closed) => {
                            self.advance(STAGE_MESSAGES, STAGE_ENDING);
                        }
                        Err(error) => return Err(error),
                    }
                }
                STAGE_ENDING => {
                    self.lifecycle.wait_for(EXITED, patience)?;
                    let mut ending = lock(&self.lifecycle.ending);
                    if let Some(error) = ending.error.take() {
                        return Ok(WorkerEvent::Error(error));
                    }
                    if self.advance(STAGE_ENDING, STAGE_DONE) {
                        let status = ending.status.unwrap_or(ExitStatus::TERMINATED);
                        return Ok(WorkerEvent::Exit(status));
                    }
                }
                _ => return Err(Error::Closed),
            }
        }
    }

    fn advance(&self, from: u8, to: u8) -> bool {
        self.stage
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Where the worker is in its life (W1).
    pub fn state(&self) -> WorkerState {
        let bits = self.lifecycle.bits();
        if bits & EXITED != 0 {
            WorkerState::Exited
        } else if bits & RUNNING != 0 {
            WorkerState::Running
        } else {
            WorkerState::Created
        }
    }

    /// `worker.threadId`: the id the worker sees as [`WorkerContext::thread_id`].
    pub fn thread_id(&self) -> u64 {
        self.thread_id
    }

    /// `worker.terminate()` (W3): asks the worker to stop and waits until it is gone. Its
    /// blocked `atomics::wait`, `recv` and `recv_timeout` return `Err(Error::Terminated)` at once,
    /// so `?` unwinds it; a worker that never blocks stops when it checks
    /// [`WorkerContext::is_terminating`] (a thread cannot be killed: a pure CPU loop that ignores
    /// the flag keeps this call waiting). Idempotent; returns the exit status (code 1,
    /// `terminated()`, unless the worker had already exited on its own).
    ///
    /// `Err(Error::Terminated)` only if the calling thread is itself a worker being terminated.
    pub fn terminate(&self) -> Result<ExitStatus, Error> {
        if self.lifecycle.bits() & EXITED == 0 {
            self.lifecycle.request_termination();
        }
        self.lifecycle.wait_for(EXITED, Patience::Until(None))?;
        Ok(self.lifecycle.exit_status())
    }

    /// Waits for the worker to exit and returns its status. Events not read yet are dropped
    /// (while waiting, so a worker blocked on a full port is not stuck).
    pub fn join(self) -> Result<ExitStatus, Error> {
        // `Online` would be dropped anyway: do not wait (and be woken) for it.
        self.advance(STAGE_ONLINE, STAGE_MESSAGES);
        let status = loop {
            match self.next_event(Patience::Until(None)) {
                Ok(WorkerEvent::Exit(status)) => break status,
                Ok(_) => {}
                Err(Error::Closed) => break self.lifecycle.exit_status(),
                Err(error) => return Err(error),
            }
        };
        if let Some(thread) = lock(&self.thread).take() {
            // The thread has set `EXITED`; it only returns now. Its closure's panics were
            // caught, so `join` reports nothing new.
            let _ = thread.join();
        }
        Ok(status)
    }
}

impl<In, Out> Drop for Worker<In, Out> {
    fn drop(&mut self) {
        if self.lifecycle.bits() & EXITED == 0 {
            self.lifecycle.request_termination();
        }
        // The port closes as it drops; the thread, if still running, is detached.
    }
}

impl<In, Out> fmt::Debug for Worker<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("thread_id", &self.thread_id)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// Blocking iterator over a worker's events ([`Worker::events`]); ends after `Exit`.
pub struct Events<'a, In, Out> {
    worker: &'a Worker<In, Out>,
}

impl<In, Out> Iterator for Events<'_, In, Out> {
    type Item = WorkerEvent<Out>;
    fn next(&mut self) -> Option<WorkerEvent<Out>> {
        self.worker.recv_event().ok()
    }
}

impl<'a, In, Out> IntoIterator for &'a Worker<In, Out> {
    type Item = WorkerEvent<Out>;
    type IntoIter = Events<'a, In, Out>;
    fn into_iter(self) -> Events<'a, In, Out> {
        self.events()
    }
}
