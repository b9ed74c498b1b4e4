//! [`Lifecycle`]: what the parent and the worker's thread share about the worker's life — one
//! word of state bits they wait and wake on, the interrupter `terminate()` fires, and how the
//! worker ended (SEMANTICS W1–W3).
//!
//! # The lifecycle word
//!
//! Bits only ever get set, never cleared, each by one read-modify-write that also tells its
//! setter what was set before:
//!
//! - `RUNNING`: set by the worker's thread when it starts, before it runs the closure.
//! - `TERMINATING`: set by `terminate()` (or dropping the handle), before it fires the
//!   interrupter.
//! - `EXITED`: set by the worker's thread last of all, after the ending was recorded and the
//!   port closed; nothing of the worker runs after it but the thread's own return.
//!
//! Every change is followed by a `notify`, so a thread waiting in [`Lifecycle::wait_for`] for a
//! bit sees it.

use std::time::Instant;

use super::event::{ExitStatus, WorkerError};
use crate::atomics::{Interrupter, SharedWord, WaitResult};
use crate::error::Error;
use crate::shim::{lock, Mutex, Ordering};

/// The worker's thread is running (or has run) the worker.
pub(super) const RUNNING: i32 = 1;
/// The worker is gone: its ending is recorded and its port closed.
pub(super) const EXITED: i32 = 2;
/// The parent asked the worker to terminate.
pub(super) const TERMINATING: i32 = 4;

/// How long to wait for something.
#[derive(Clone, Copy)]
pub(super) enum Patience {
    /// Not at all: answer [`NotYet`] if it is not there now.
    None,
    /// Until the deadline (`None`: forever).
    Until(Option<Instant>),
}

/// What waiting with some [`Patience`] found when it ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum NotYet {
    /// Not there yet (with `Patience::None`: now; otherwise: by the deadline).
    Pending,
    /// The wait itself failed (the waiting thread is a worker being terminated).
    Failed(Error),
}

impl NotYet {
    /// The public form: a wait that ran out is `Error::Timeout`.
    pub(super) fn into_error(self) -> Error {
        match self {
            NotYet::Pending => Error::Timeout,
            NotYet::Failed(error) => error,
        }
    }
}

/// What the parent and the worker's thread share about the worker's life.
pub(crate) struct Lifecycle {
    /// `RUNNING | EXITED | TERMINATING` bits, waited on through `atomics::wait`.
    word: SharedWord<i32>,
    /// Installed on the worker's thread: `terminate()` interrupts its blocking waits.
    pub(super) interrupter: Interrupter,
    /// How it ended; written once, before `EXITED` is set.
    ending: Mutex<Ending>,
}

/// How the worker ended: read by the parent once `EXITED` is set.
#[derive(Default)]
pub(super) struct Ending {
    /// The `Error` event still to deliver, if any (taken when delivered).
    pub(super) error: Option<WorkerError>,
    pub(super) status: Option<ExitStatus>,
}

impl Lifecycle {
    pub(super) fn new() -> Result<Lifecycle, Error> {
        Ok(Lifecycle {
            word: SharedWord::new()?,
            interrupter: Interrupter::new(),
            ending: Mutex::new(Ending::default()),
        })
    }

    /// The bits set so far.
    pub(super) fn bits(&self) -> i32 {
        self.word.get().load(Ordering::SeqCst)
    }

    /// Sets `bit` and wakes everyone waiting for a change; returns the bits before.
    pub(super) fn set(&self, bit: i32) -> i32 {
        let word = self.word.get();
        let before = word.fetch_or(bit, Ordering::SeqCst);
        word.notify(None);
        before
    }

    /// Whether `terminate()` was called (or the handle dropped).
    pub(crate) fn is_terminating(&self) -> bool {
        self.bits() & TERMINATING != 0
    }

    /// Sets `TERMINATING`, then interrupts the worker's blocking waits.
    pub(super) fn request_termination(&self) {
        self.word.get().fetch_or(TERMINATING, Ordering::SeqCst);
        self.interrupter.interrupt();
    }

    /// Waits until `bit` is set.
    pub(super) fn wait_for(&self, bit: i32, patience: Patience) -> Result<(), NotYet> {
        let word = self.word.get();
        loop {
            let bits = word.load(Ordering::SeqCst);
            if bits & bit != 0 {
                return Ok(());
            }
            let deadline = match patience {
                Patience::None => return Err(NotYet::Pending),
                Patience::Until(deadline) => deadline,
            };
            match word.wait_until(bits, deadline) {
                Ok(WaitResult::TimedOut) => return Err(NotYet::Pending),
                Ok(WaitResult::Ok | WaitResult::NotEqual) => {}
                Err(error) => return Err(NotYet::Failed(error)),
            }
        }
    }

    /// Records how the worker ended. Called once, by the worker's thread, before `EXITED`.
    pub(super) fn record_ending(&self, error: Option<WorkerError>, status: ExitStatus) {
        let mut ending = lock(&self.ending);
        ending.error = error;
        ending.status = Some(status);
    }

    /// The ending, for the parent to read once it saw `EXITED`.
    pub(super) fn ending(&self) -> crate::shim::MutexGuard<'_, Ending> {
        lock(&self.ending)
    }

    /// The exit status. Only meaningful once `EXITED` is set (it was recorded before).
    pub(super) fn exit_status(&self) -> ExitStatus {
        lock(&self.ending).status.unwrap_or(ExitStatus::TERMINATED)
    }
}
