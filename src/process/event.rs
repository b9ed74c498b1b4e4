//! What a process worker reports to its parent: [`ProcessEvent`]s and its [`ProcessExit`].

use std::fmt;

use crate::worker::WorkerError;

/// One event from a process worker, in the order of a thread worker's (docs/semantics.md W1,
/// X4): `Online`, then every message it posted, then `Error` (if it failed), then `Exit`,
/// always last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessEvent<Out> {
    /// The child process is set up and its entry function starts (cluster's `'online'`). Not
    /// reported for a child that died, or was terminated, before.
    Online,
    /// A message the child posted (`'message'`).
    Message(Out),
    /// The entry function returned an error or panicked (`'error'`); `Exit` with code 1
    /// follows. Not reported for an entry still running when
    /// [`terminate`](super::ProcessWorker::terminate) was called.
    Error(WorkerError),
    /// The child process is gone and reaped (`'exit'`); no event follows.
    Exit(ProcessExit),
}

/// How a process worker ended: its exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessExit {
    code: Option<i32>,
    signal: Option<i32>,
    terminated: bool,
}

impl ProcessExit {
    pub(super) fn new(status: std::process::ExitStatus, terminated: bool) -> ProcessExit {
        use std::os::unix::process::ExitStatusExt;
        ProcessExit {
            code: status.code(),
            signal: status.signal(),
            terminated,
        }
    }

    /// How a process ended that was reaped by someone else (this process ignores SIGCHLD, so
    /// the kernel reaps its children itself): neither a code nor a signal is known.
    pub(super) fn unknown(terminated: bool) -> ProcessExit {
        ProcessExit {
            code: None,
            signal: None,
            terminated,
        }
    }

    /// The exit code, if the process exited (0 after a normal return of its entry or the
    /// code it returned, 1 after an error, a panic or a graceful terminate); `None` if a
    /// signal killed it, or if it was reaped by someone else (a parent that ignores SIGCHLD
    /// has its children reaped by the kernel: how they ended is then unknown).
    pub fn code(&self) -> Option<i32> {
        self.code
    }

    /// The signal that killed the process (`libc::SIGKILL`, …), if one did (and is known:
    /// see [`code`](Self::code)).
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }

    /// Whether [`terminate`](super::ProcessWorker::terminate) was called before it ended.
    pub fn terminated(&self) -> bool {
        self.terminated
    }

    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ProcessExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}")?,
            (None, Some(signal)) => write!(f, "killed by signal {signal}")?,
            (None, None) => write!(f, "ended")?,
        }
        if self.terminated {
            write!(f, " (terminated)")?;
        }
        Ok(())
    }
}
