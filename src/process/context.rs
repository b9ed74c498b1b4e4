//! [`ProcessContext`]: what a process worker's entry function gets — its end of the link to the
//! parent, the buffers the parent handed over, its name, and whether it was asked to
//! terminate.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::frame::{self, Frame};
use super::payload::Payload;
use crate::buffer::SharedBuffer;
use crate::channel::{ByteReceiver, ByteRing, ByteSender};
use crate::error::Error;

/// The child's end of the link, shared by its context and its runtime (which sends `Online`
/// and `Error`, and closes the rings when the entry returns or the parent dies).
pub(super) struct ChildLink {
    pub(super) tx: Mutex<ByteSender>,
    pub(super) rx: Mutex<ByteReceiver>,
    pub(super) rings: [ByteRing; 2],
    /// Set by SIGTERM (the parent's `terminate`) or the parent's death.
    pub(super) terminating: AtomicBool,
}

impl ChildLink {
    /// Closes both rings: blocked calls on either side return `Closed`.
    pub(super) fn close(&self) {
        for ring in &self.rings {
            ring.close();
        }
    }
}

/// Locks `mutex`, ignoring poisoning: the ends inside are consistent whatever a panicking
/// holder did (the ring's own state lives in shared memory and is checked on every call).
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a process worker's entry function gets: its link to the parent (`In` messages in,
/// `Out` messages out), the shared buffers the parent handed over, and its name.
///
/// Blocking calls ([`recv`](Self::recv), a full [`post_message`](Self::post_message),
/// `atomics::wait`) on the entry's thread return `Err(Error::Terminated)` once the parent
/// calls [`terminate`](super::ProcessWorker::terminate), and `Err(Error::Closed)` (the link)
/// once the parent process is gone.
pub struct ProcessContext<In, Out> {
    link: Arc<ChildLink>,
    buffers: Vec<SharedBuffer>,
    name: String,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In: Payload, Out: Payload> ProcessContext<In, Out> {
    pub(super) fn new(
        link: Arc<ChildLink>,
        buffers: Vec<SharedBuffer>,
        name: String,
    ) -> ProcessContext<In, Out> {
        ProcessContext {
            link,
            buffers,
            name,
            _types: PhantomData,
        }
    }

    /// Posts `message` to the parent (its [`ProcessEvent::Message`](super::ProcessEvent)),
    /// waiting while the ring is full. `Err(ExceedsMax)` for a message longer than the ring
    /// can hold, `Err(Codec)` if it cannot be encoded, `Err(Closed)` once the parent is gone.
    pub fn post_message(&self, message: &Out) -> Result<(), Error> {
        frame::send_message(&mut lock(&self.link.tx), message, Some(None))
    }

    /// As [`post_message`](Self::post_message), giving up with `Err(Timeout)` if the ring has
    /// had no room for `timeout` (the parent is not reading).
    pub fn post_message_timeout(&self, message: &Out, timeout: Duration) -> Result<(), Error> {
        let deadline = Instant::now().checked_add(timeout);
        frame::send_message(&mut lock(&self.link.tx), message, Some(deadline))
    }

    /// As [`post_message`](Self::post_message), but `Err(Full)` at once if the ring has no
    /// room now.
    pub fn try_post_message(&self, message: &Out) -> Result<(), Error> {
        frame::send_message(&mut lock(&self.link.tx), message, None)
    }

    /// The next message from the parent, waiting for it. `Err(Closed)` once the parent called
    /// [`disconnect`](super::ProcessWorker::disconnect) (after every message it posted
    /// before) or is gone; `Err(Codec)` for a message that does not decode as `In` (it is
    /// consumed; the next call reads the next one).
    pub fn recv(&self) -> Result<In, Error> {
        self.recv_until(Some(None))?.ok_or(Error::Timeout)
    }

    /// As [`recv`](Self::recv), giving up with `Err(Timeout)` after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<In, Error> {
        self.recv_until(Some(Instant::now().checked_add(timeout)))?
            .ok_or(Error::Timeout)
    }

    /// The next message if one is there now, `Ok(None)` if not (never waits); otherwise the
    /// errors of [`recv`](Self::recv).
    pub fn try_recv(&self) -> Result<Option<In>, Error> {
        self.recv_until(None)
    }

    fn recv_until(&self, until: Option<Option<Instant>>) -> Result<Option<In>, Error> {
        match frame::recv_frame::<In>(&mut lock(&self.link.rx), until)? {
            None => Ok(None),
            Some(Frame::Message(message)) => Ok(Some(message)),
            Some(_) => Err(Error::Codec {
                reason: "the parent sent a frame only a child sends".into(),
            }),
        }
    }

    /// The process-shared buffers the parent handed over
    /// ([`ProcessWorkerBuilder::share`](super::ProcessWorkerBuilder::share)), in its order.
    pub fn shared_buffers(&self) -> &[SharedBuffer] {
        &self.buffers
    }

    /// The worker's name (the builder's, or the entry's name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the parent asked this worker to terminate, or died. A computation that does
    /// not block should check it now and then and return; otherwise the parent kills the
    /// process after its grace period.
    pub fn is_terminating(&self) -> bool {
        self.link.terminating.load(Ordering::SeqCst)
    }
}

impl<In, Out> fmt::Debug for ProcessContext<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessContext")
            .field("name", &self.name)
            .field("shared_buffers", &self.buffers.len())
            .field(
                "is_terminating",
                &self.link.terminating.load(Ordering::SeqCst),
            )
            .finish_non_exhaustive()
    }
}
