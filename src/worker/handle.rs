//! [`Worker`]: the parent's handle to a worker thread, and the event stream it reads
//! (SEMANTICS W1–W3).
//!
//! # How the event order is kept (W1)
//!
//! `Online` is the lifecycle word turning `RUNNING`; messages come through the worker's port;
//! `Error` and `Exit` are recorded by the runtime *before* it closes the port and then sets
//! `EXITED`. The parent reads in stages: `Online` once the worker runs, then messages until the
//! port reports it is closed and drained, then `Error` and `Exit` once `EXITED` is set. A port
//! delivers everything posted before its close, so `Exit` comes after every message, by
//! construction.
//!
//! The stage only moves forward, each step by one compare-exchange, so two threads reading
//! events from the same handle deliver each of `Online`, `Error` and `Exit` once.

use std::fmt;
use std::time::{Duration, Instant};

use super::event::{ExitStatus, WorkerEvent, WorkerState};
use super::lifecycle::{Lifecycle, NotYet, Patience, EXITED, RUNNING};
use crate::channel::{MessagePort, NoMessage, PostError};
use crate::error::Error;
use crate::shim::{lock, thread, Arc, AtomicU8, Mutex, Ordering};

/// Stages of the parent's event stream.
/// `Online` not delivered yet. Leaves (to `STAGE_MESSAGES`) once `RUNNING` was seen.
const STAGE_ONLINE: u8 = 0;
/// Delivering messages. Leaves (to `STAGE_ENDING`) once the port is closed and drained: the
/// runtime closes it only after recording the ending, so every message came before.
const STAGE_MESSAGES: u8 = 1;
/// Delivering `Error` (if any), then `Exit`. Reads the ending only once `EXITED` is set.
const STAGE_ENDING: u8 = 2;
/// `Exit` was delivered; nothing follows.
const STAGE_DONE: u8 = 3;

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

impl<In, Out> Worker<In, Out> {
    /// The handle of a worker whose thread was just started.
    pub(super) fn from_parts(
        port: MessagePort<In, Out>,
        lifecycle: Arc<Lifecycle>,
        thread_id: u64,
        thread: thread::JoinHandle<()>,
    ) -> Worker<In, Out> {
        Worker {
            port,
            lifecycle,
            stage: AtomicU8::new(STAGE_ONLINE),
            thread_id,
            thread: Mutex::new(Some(thread)),
        }
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
            .map_err(NotYet::into_error)
    }

    /// As [`recv_event`](Self::recv_event), giving up with `Err(Error::Timeout)` after
    /// `timeout`.
    pub fn recv_event_timeout(&self, timeout: Duration) -> Result<WorkerEvent<Out>, Error> {
        self.next_event(Patience::Until(Instant::now().checked_add(timeout)))
            .map_err(NotYet::into_error)
    }

    /// The next event if it is there now.
    pub fn try_recv_event(&self) -> Option<WorkerEvent<Out>> {
        self.next_event(Patience::None).ok()
    }

    /// A blocking iterator over the events; it ends after `Exit`.
    pub fn events(&self) -> Events<'_, In, Out> {
        Events { worker: self }
    }

    fn next_event(&self, patience: Patience) -> Result<WorkerEvent<Out>, NotYet> {
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
                        Patience::None => self.port.try_recv_or_why().map_err(|why| match why {
                            NoMessage::Empty => NotYet::Pending,
                            NoMessage::Closed => NotYet::Failed(Error::Closed),
                        }),
                        Patience::Until(deadline) => {
                            self.port.recv_until(deadline).map_err(|error| match error {
                                Error::Timeout => NotYet::Pending,
                                error => NotYet::Failed(error),
                            })
                        }
                    };
                    match message {
                        Ok(message) => return Ok(WorkerEvent::Message(message)),
                        Err(NotYet::Failed(Error::Closed)) => {
                            self.advance(STAGE_MESSAGES, STAGE_ENDING);
                        }
                        Err(other) => return Err(other),
                    }
                }
                STAGE_ENDING => {
                    self.lifecycle.wait_for(EXITED, patience)?;
                    let mut ending = self.lifecycle.ending();
                    if let Some(error) = ending.error.take() {
                        return Ok(WorkerEvent::Error(error));
                    }
                    if self.advance(STAGE_ENDING, STAGE_DONE) {
                        let status = ending.status.unwrap_or(ExitStatus::TERMINATED);
                        return Ok(WorkerEvent::Exit(status));
                    }
                }
                _ => return Err(NotYet::Failed(Error::Closed)),
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

    /// `worker.threadId`: the id the worker sees as [`WorkerContext::thread_id`](super::WorkerContext::thread_id).
    pub fn thread_id(&self) -> u64 {
        self.thread_id
    }

    /// `worker.terminate()` (W3): asks the worker to stop and waits until it is gone. Its
    /// blocked `atomics::wait`, `recv` and `recv_timeout` return `Err(Error::Terminated)` at once,
    /// so `?` unwinds it; a worker that never blocks stops when it checks
    /// [`WorkerContext::is_terminating`](super::WorkerContext::is_terminating) (a thread cannot be killed: a pure CPU loop that ignores
    /// the flag keeps this call waiting). Idempotent; returns the exit status (code 1,
    /// `terminated()`, unless the worker had already exited on its own).
    ///
    /// `Err(Error::Terminated)` only if the calling thread is itself a worker being terminated.
    pub fn terminate(&self) -> Result<ExitStatus, Error> {
        if self.lifecycle.bits() & EXITED == 0 {
            self.lifecycle.request_termination();
        }
        self.lifecycle
            .wait_for(EXITED, Patience::Until(None))
            .map_err(NotYet::into_error)?;
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
                Err(NotYet::Failed(Error::Closed)) => break self.lifecycle.exit_status(),
                Err(other) => return Err(other.into_error()),
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
