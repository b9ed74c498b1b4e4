//! [`Worker`]: the parent's handle to a worker thread, and the event stream it reads
//! (docs/semantics.md W1–W3, W9).
//!
//! # How the event order is kept (W1)
//!
//! `Online` is the lifecycle word turning `RUNNING`, which it does iff the closure runs (see
//! [`super::lifecycle`]); messages come through the worker's port; `Error` and `Exit` are
//! recorded by the worker's exit guard *before* it closes the port and then sets `EXITED`. The
//! parent reads in stages: `Online` once `RUNNING` is seen (none if `EXITED` comes without it),
//! then messages until the port reports it is closed and drained, then `Error` and `Exit` once
//! `EXITED` is set. A port delivers everything posted before its close, so `Exit` comes after
//! every message, by construction.
//!
//! The stage only moves forward, each step by one compare-exchange, so two threads reading
//! events from the same handle deliver each of `Online`, `Error` and `Exit` at most once, and
//! `Exit` exactly once.

use std::fmt;
use std::time::{Duration, Instant};

use super::event::{ExitStatus, WorkerEvent, WorkerState};
use super::lifecycle::{Lifecycle, NotYet, Patience, EXITED, RUNNING};
use crate::channel::{MessagePort, NoMessage, PostError};
use crate::error::Error;
use crate::region::MadeIn;
use crate::shim::{self, lock, thread, Arc, AtomicU8, Mutex, Ordering};

// Stages of the parent's event stream, in order; a stage is left only by the compare-exchange
// to the next one, so each transition below happens once.

/// `Online` not decided yet. Left (to `STAGE_MESSAGES`) once `RUNNING` or `EXITED` is seen:
/// with `RUNNING`, by the reader that then delivers `Online`; with `EXITED` alone (terminated
/// before its closure ran, W9), with no `Online`. `join` skips it unread.
const STAGE_ONLINE: u8 = 0;
/// Delivering messages. Left (to `STAGE_ENDING`) once the port is closed and drained: the
/// worker can post nothing after its port closed, so every message came before.
const STAGE_MESSAGES: u8 = 1;
/// Delivering `Error` (if any), then `Exit`. Reads the ending only once `EXITED` is set (it
/// was recorded before). Left (to `STAGE_DONE`) by the reader that delivers `Exit`.
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
///
/// ```
/// use sharedbuf::worker::{Worker, WorkerEvent};
///
/// let worker: Worker<u32, u32> = Worker::spawn(|ctx| {
///     let n = ctx.recv()?;
///     ctx.post_message(n + 1)
/// })?;
/// worker.post_message(41)?;
/// assert_eq!(worker.recv_event()?, WorkerEvent::Online);
/// assert_eq!(worker.recv_event()?, WorkerEvent::Message(42));
/// assert!(worker.join()?.success()); // the closure returned Ok: exit code 0
/// # Ok::<(), sharedbuf::Error>(())
/// ```
///
/// A worker does not cross a `fork` (docs/semantics.md X7): its thread is not in the forked
/// child, so there every call that would wait for it (`recv_event`, `recv_event_timeout`,
/// `events`, `post_message`, `terminate`, `join`) returns `Err(Error::ForkedHandle)` at once
/// (`try_post_message` and `post_message_timeout`: `PostError::ForkedHandle`, the message given
/// back: nobody there would read it), and dropping it leaves the parent's worker alone (its thread handle is leaked, not
/// detached).
#[must_use = "dropping a Worker asks its thread to terminate"]
pub struct Worker<In, Out> {
    port: MessagePort<In, Out>,
    lifecycle: Arc<Lifecycle>,
    stage: AtomicU8,
    thread_id: u64,
    thread: Mutex<Option<thread::JoinHandle<()>>>,
    /// Its thread is not in a fork child of this process.
    made_in: MadeIn,
}

/// What a fork refusal calls a worker (docs/semantics.md X7).
const WHAT: &str = "worker";

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
            made_in: MadeIn::now(),
        }
    }
}

impl<In, Out> Worker<In, Out> {
    /// `worker.postMessage(message)`. Waits while the worker's queue is full;
    /// `Err(Error::Closed)` once the worker has exited (W4): the message is dropped.
    pub fn post_message(&self, message: In) -> Result<(), Error> {
        self.made_in.check(WHAT)?;
        self.port.post_message(message)
    }

    /// Posts if there is room now; gives the message back otherwise: as
    /// [`MessagePort::try_post_message`] on the worker's port (`Full`, or `Closed` once the
    /// worker has exited; `ForkedHandle` in a fork child, docs/semantics.md X7).
    pub fn try_post_message(&self, message: In) -> Result<(), PostError<In>> {
        if self.made_in.forked() {
            return Err(PostError::ForkedHandle(message));
        }
        self.port.try_post_message(message)
    }

    /// Posts, waiting at most `timeout` for room; gives the message back otherwise: as
    /// [`MessagePort::post_message_timeout`] on the worker's port (`Timeout`, `Closed` once
    /// the worker has exited, `Terminated`; `ForkedHandle` in a fork child, X7).
    pub fn post_message_timeout(
        &self,
        message: In,
        timeout: Duration,
    ) -> Result<(), PostError<In>> {
        if self.made_in.forked() {
            return Err(PostError::ForkedHandle(message));
        }
        self.port.post_message_timeout(message, timeout)
    }

    /// The next event, waiting for it (W1). After `Exit` has been returned: `Err(Error::Closed)`.
    /// Called on the worker's own thread (a worker handed its own handle), which would wait
    /// for its own exit: `Err(Error::WouldDeadlock)`, as is `recv_event_timeout`.
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
        if matches!(patience, Patience::Until(_)) {
            self.made_in.check(WHAT).map_err(NotYet::Failed)?;
        }
        if matches!(patience, Patience::Until(_)) && self.is_own_thread() {
            // The worker's own thread waiting for its own events: `Exit` (and the close of
            // its port, which ends the messages) comes only after this thread returns.
            return Err(NotYet::Failed(Error::WouldDeadlock));
        }
        loop {
            match self.stage.load(Ordering::SeqCst) {
                STAGE_ONLINE => {
                    let bits = self.lifecycle.wait_for(RUNNING | EXITED, patience)?;
                    // ONLINE → MESSAGES: `RUNNING` is set iff the closure runs, and never after
                    // `EXITED`, so `EXITED` without it means the closure never ran: no `Online`.
                    if self.advance(STAGE_ONLINE, STAGE_MESSAGES) && bits & RUNNING != 0 {
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
                            // MESSAGES → ENDING: closed and drained, every message was
                            // delivered (a losing reader just moves on with the winner).
                            self.advance(STAGE_MESSAGES, STAGE_ENDING);
                        }
                        Err(other) => return Err(other),
                    }
                }
                STAGE_ENDING => {
                    self.lifecycle.wait_for(EXITED, patience)?;
                    // The ending was recorded before `EXITED`; its lock makes taking the
                    // `Error` and delivering `Exit` one step for concurrent readers.
                    let mut ending = self.lifecycle.ending();
                    if let Some(error) = ending.as_mut().and_then(|ending| ending.error.take()) {
                        return Ok(WorkerEvent::Error(error));
                    }
                    // ENDING → DONE: the `Error`, if any, was taken; `Exit` is last.
                    if self.advance(STAGE_ENDING, STAGE_DONE) {
                        let status = ending
                            .as_ref()
                            .map_or(ExitStatus::TERMINATED, |ending| ending.status);
                        return Ok(WorkerEvent::Exit(status));
                    }
                }
                _ => return Err(NotYet::Failed(Error::Closed)),
            }
        }
    }

    /// Whether the calling thread is this worker's own (it was handed its own handle).
    fn is_own_thread(&self) -> bool {
        super::thread_id() == self.thread_id
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

    /// `worker.terminate()` (W3, W9): asks the worker to stop and waits until it is gone. Its
    /// blocked `atomics::wait`, `recv` and `recv_timeout` return `Err(Error::Terminated)` at
    /// once, so `?` unwinds it; a worker that never blocks stops when it checks
    /// [`WorkerContext::is_terminating`](super::WorkerContext::is_terminating). A thread cannot
    /// be killed: a pure CPU loop that ignores the flag keeps this call waiting (see
    /// [`terminate_timeout`](Self::terminate_timeout)).
    ///
    /// Idempotent. Returns the exit status: code 1, `terminated()` — unless the closure had
    /// already returned (or panicked) before the request, in which case it keeps its own
    /// status. After a termination only `Exit` is reported, never `Error`, whatever the
    /// closure does with the `Terminated` error; a worker terminated before its closure started
    /// reports no `Online` (its closure never runs).
    ///
    /// `Err(Error::Terminated)` only if the calling thread is itself a worker being terminated.
    pub fn terminate(&self) -> Result<ExitStatus, Error> {
        self.terminate_until(None)
    }

    /// As [`terminate`](Self::terminate), but waits at most `timeout` for the worker to be
    /// gone: `Err(Error::Timeout)` if it is still running then — it keeps its terminate flag
    /// and ends as terminated whenever it stops; [`join`](Self::join),
    /// [`terminate`](Self::terminate) or the events tell when.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use sharedbuf::worker::{Worker, WorkerEvent};
    /// use sharedbuf::Error;
    ///
    /// let stop = Arc::new(AtomicBool::new(false));
    /// let seen = Arc::clone(&stop);
    /// let worker: Worker<(), ()> = Worker::spawn(move |_ctx| {
    ///     while !seen.load(Ordering::SeqCst) {} // a CPU loop that ignores termination
    /// })?;
    /// assert_eq!(worker.recv_event()?, WorkerEvent::Online); // the loop is running
    /// assert_eq!(worker.terminate_timeout(Duration::from_millis(10)), Err(Error::Timeout));
    /// stop.store(true, Ordering::SeqCst);
    /// let status = worker.join()?;
    /// assert_eq!((status.code(), status.terminated()), (1, true));
    /// # Ok::<(), sharedbuf::Error>(())
    /// ```
    pub fn terminate_timeout(&self, timeout: Duration) -> Result<ExitStatus, Error> {
        self.terminate_until(Instant::now().checked_add(timeout))
    }

    fn terminate_until(&self, deadline: Option<Instant>) -> Result<ExitStatus, Error> {
        self.made_in.check(WHAT)?;
        if self.lifecycle.bits() & EXITED == 0 {
            self.lifecycle.request_termination();
        }
        self.lifecycle
            .wait_for(EXITED, Patience::Until(deadline))
            .map_err(NotYet::into_error)?;
        Ok(self.lifecycle.exit_status())
    }

    /// Waits for the worker to exit and returns its status. Events not read yet are dropped
    /// (while waiting, so a worker blocked on a full port is not stuck).
    ///
    /// Called on the worker's own thread (a worker handed its own handle), which could never
    /// see its own exit: `Err(Error::WouldDeadlock)` at once, and the handle is dropped, which
    /// asks the worker to terminate as dropping any handle does.
    pub fn join(self) -> Result<ExitStatus, Error> {
        self.join_until(None)
    }

    /// As [`join`](Self::join), but waits at most `timeout`: `Err(Error::Timeout)` if the
    /// worker is still running then. The handle stays usable either way: join again, wait for
    /// events or terminate. The events it read while waiting are dropped, as `join` drops
    /// them; once it has returned `Ok`, every later `join` or `join_timeout` returns the same
    /// status. `Err(Error::WouldDeadlock)` on the worker's own thread, as for `join`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sharedbuf::worker::Worker;
    /// use sharedbuf::Error;
    ///
    /// let worker: Worker<u32, ()> = Worker::spawn(|ctx| ctx.recv().map(drop))?;
    /// // It waits for a message: still running.
    /// assert_eq!(worker.join_timeout(Duration::from_millis(10)), Err(Error::Timeout));
    /// worker.post_message(1)?;
    /// let status = worker.join_timeout(Duration::from_secs(60))?;
    /// assert_eq!((status.code(), status.terminated()), (0, false));
    /// # Ok::<(), sharedbuf::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<ExitStatus, Error> {
        self.join_until(Instant::now().checked_add(timeout))
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<ExitStatus, Error> {
        self.made_in.check(WHAT)?;
        if self.is_own_thread() {
            return Err(Error::WouldDeadlock);
        }
        // `Online` would be dropped anyway: do not wait (and be woken) for it.
        self.advance(STAGE_ONLINE, STAGE_MESSAGES);
        let status = loop {
            match self.next_event(Patience::Until(deadline)) {
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
        if shim::model_is_unwinding() {
            return; // a failed loom model: see `shim::model_is_unwinding`
        }
        if self.made_in.forked() {
            // A fork child: the thread is the parent's. Neither interrupt (its waits live in
            // this process's copy) nor detach it (its handle may name a thread this process
            // starts later): leak the handle (docs/semantics.md X7).
            std::mem::forget(lock(&self.thread).take());
            return;
        }
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
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Events<'a, In, Out> {
    worker: &'a Worker<In, Out>,
}

impl<In, Out> fmt::Debug for Events<'_, In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("worker", &self.worker)
            .finish()
    }
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
