//! [`Lifecycle`]: what the parent and the worker's thread share about the worker's life — one
//! word of state bits they wait and wake on, the interrupter `terminate()` fires, and how the
//! worker ended (docs/semantics.md W1–W3, W9).
//!
//! # The lifecycle word
//!
//! Bits only ever get set, never cleared. Each race between the parent and the worker's thread
//! is decided by ONE read-modify-write on the word, never by a load followed by a store:
//!
//! - `RUNNING` — set by [`Lifecycle::start`], a compare-exchange `0 → RUNNING` on the worker's
//!   thread before the closure runs. It fails if `TERMINATING` is already set (nothing else can
//!   be set before it): then the closure never runs and `RUNNING` is never set. So `RUNNING` is
//!   set iff the closure runs, and the parent reports `Online` iff it sees `RUNNING` (W9).
//! - `TERMINATING` — set by [`Lifecycle::request_termination`] (`terminate()`, or dropping the
//!   handle), before it fires the interrupter. Decides nothing by itself: the worker's two RMWs
//!   read it.
//! - `FINISHED` — set by [`Lifecycle::finish`], a `fetch_or` on the worker's thread right after
//!   the closure returned or unwound, before anything looks at what it returned. The bits it
//!   returns say whether `TERMINATING` came first: if so the worker ends as terminated whatever
//!   the closure did; if not, its real outcome stands, even if `terminate()` lands a moment
//!   later (W9).
//! - `EXITED` — set by the worker's thread last of all, from a drop guard (so on every path),
//!   after the ending was recorded and the port closed; nothing of the worker runs after it but
//!   the thread's own return.
//!
//! `RUNNING` and `EXITED` are followed by a `notify`, so a thread waiting in
//! [`Lifecycle::wait_for`] for them sees them; nobody waits for `TERMINATING` or `FINISHED`.

use std::time::Instant;

use super::event::{ExitStatus, WorkerError};
use crate::atomics::{Interrupter, SharedWord, WaitResult};
use crate::error::Error;
use crate::shim::{lock, Mutex, MutexGuard, Ordering};

/// The worker's closure runs (or ran): set iff it does.
pub(super) const RUNNING: i32 = 1;
/// The worker is gone: its ending is recorded and its port closed.
pub(super) const EXITED: i32 = 2;
/// The parent asked the worker to terminate.
pub(super) const TERMINATING: i32 = 4;
/// The closure returned or unwound.
pub(super) const FINISHED: i32 = 8;

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

/// How the worker ended: recorded once by the worker's thread before `EXITED`, read by the
/// parent after.
pub(super) struct Ending {
    /// The `Error` event still to deliver, if any (taken when delivered).
    pub(super) error: Option<WorkerError>,
    pub(super) status: ExitStatus,
}

impl Ending {
    /// Exit with `code`, no `Error` event.
    pub(super) fn code(code: i32) -> Ending {
        Ending {
            error: None,
            status: ExitStatus::code_only(code),
        }
    }

    /// `Error`, then exit code 1 (W2).
    pub(super) fn failed(error: WorkerError) -> Ending {
        Ending {
            error: Some(error),
            status: ExitStatus::code_only(1),
        }
    }

    /// Terminated: no `Error`, exit code 1, `terminated()` (W9).
    pub(super) fn terminated() -> Ending {
        Ending {
            error: None,
            status: ExitStatus::TERMINATED,
        }
    }
}

/// What the parent and the worker's thread share about the worker's life.
pub(crate) struct Lifecycle {
    /// `RUNNING | EXITED | TERMINATING | FINISHED` bits, waited on through `atomics::wait`.
    word: SharedWord<i32>,
    /// Installed on the worker's thread: `terminate()` interrupts its blocking waits.
    pub(super) interrupter: Interrupter,
    /// How it ended; `None` until recorded, just before `EXITED` is set.
    ending: Mutex<Option<Ending>>,
}

impl Lifecycle {
    pub(super) fn new() -> Result<Lifecycle, Error> {
        Ok(Lifecycle {
            word: SharedWord::new()?,
            interrupter: Interrupter::new(),
            ending: Mutex::new(None),
        })
    }

    /// The bits set so far.
    pub(super) fn bits(&self) -> i32 {
        self.word.get().load(Ordering::SeqCst)
    }

    /// Created → Running, unless `terminate()` came first: `true` if the closure may run (and
    /// `RUNNING` is now set), `false` if it must not (and `RUNNING` never will be).
    pub(super) fn start(&self) -> bool {
        let word = self.word.get();
        // Before the start only `TERMINATING` can be set: the exchange fails iff it is.
        let started = word.compare_exchange(0, RUNNING, Ordering::SeqCst).is_ok();
        if started {
            word.notify(None);
        }
        started
    }

    /// Marks the closure as over (returned or unwound); `true` if `terminate()` came first, in
    /// which case the worker ends as terminated, whatever the closure did.
    pub(super) fn finish(&self) -> bool {
        self.word.get().fetch_or(FINISHED, Ordering::SeqCst) & TERMINATING != 0
    }

    /// Whether `terminate()` was called (or the handle dropped).
    pub(crate) fn is_terminating(&self) -> bool {
        self.bits() & TERMINATING != 0
    }

    /// Sets `TERMINATING`, then interrupts the worker's blocking waits — also after `FINISHED`:
    /// the worker's thread may still run user code (an exit-code conversion, a `Drop`) that
    /// waits. Idempotent.
    pub(super) fn request_termination(&self) {
        self.word.get().fetch_or(TERMINATING, Ordering::SeqCst);
        self.interrupter.interrupt();
    }

    /// Waits until one of the `bits` is set; returns all the bits set then.
    pub(super) fn wait_for(&self, bits: i32, patience: Patience) -> Result<i32, NotYet> {
        let word = self.word.get();
        loop {
            let now = word.load(Ordering::SeqCst);
            if now & bits != 0 {
                return Ok(now);
            }
            let deadline = match patience {
                Patience::None => return Err(NotYet::Pending),
                Patience::Until(deadline) => deadline,
            };
            match word.wait_until(now, deadline) {
                Ok(WaitResult::TimedOut) => return Err(NotYet::Pending),
                Ok(WaitResult::Ok | WaitResult::NotEqual) => {}
                Err(error) => return Err(NotYet::Failed(error)),
            }
        }
    }

    /// Records how the worker ended and sets `EXITED`. Called once, by the worker's thread,
    /// from its exit guard; `close_port` runs between the two, so a parent that saw the port
    /// closed and drained and then `EXITED` finds the ending recorded (W1).
    pub(super) fn exit(&self, ending: Ending, close_port: impl FnOnce()) {
        *lock(&self.ending) = Some(ending);
        close_port();
        let word = self.word.get();
        word.fetch_or(EXITED, Ordering::SeqCst);
        word.notify(None);
    }

    /// The ending, for the parent to read once it saw `EXITED` (`Some` from then on).
    pub(super) fn ending(&self) -> MutexGuard<'_, Option<Ending>> {
        lock(&self.ending)
    }

    /// The exit status, for a parent that saw `EXITED`.
    pub(super) fn exit_status(&self) -> ExitStatus {
        // Recorded before `EXITED` is set, so `None` is never read; answering "terminated"
        // keeps this total without a panic.
        lock(&self.ending)
            .as_ref()
            .map_or(ExitStatus::TERMINATED, |ending| ending.status)
    }
}
