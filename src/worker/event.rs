//! What a worker reports to its parent: [`WorkerEvent`]s, [`WorkerError`], [`ExitStatus`], and
//! its [`WorkerState`] (docs/semantics.md W1, W2).

use std::fmt;

/// One event from a worker, in docs/semantics.md W1's order: `Online`, then every message the worker
/// posted, then `Error` (if it failed), then `Exit`, always last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEvent<Out> {
    /// The worker's closure started (Node's `'online'`). Not reported for a worker terminated
    /// before its closure ran: that closure never runs (W9).
    Online,
    /// A message the worker posted (Node's `'message'`).
    Message(Out),
    /// The worker returned an error or panicked (Node's `'error'`); `Exit` with code 1 follows.
    /// Never reported once [`terminate`](super::Worker::terminate) came first (W9).
    Error(WorkerError),
    /// The worker is gone (Node's `'exit'`); no event follows. Reported on every path, even
    /// when the worker's code panics while it ends (W9).
    Exit(ExitStatus),
}

/// Why a worker failed: the error it returned, or the message of its panic (docs/semantics.md W2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerError {
    message: String,
    panicked: bool,
}

impl WorkerError {
    pub(crate) fn returned(message: String) -> WorkerError {
        WorkerError {
            message,
            panicked: false,
        }
    }

    pub(crate) fn panic(message: String) -> WorkerError {
        WorkerError {
            message,
            panicked: true,
        }
    }

    /// The error's `Display` text, or the panic's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the worker panicked (rather than returned an error).
    pub fn is_panic(&self) -> bool {
        self.panicked
    }
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.panicked {
            write!(f, "the worker panicked: {}", self.message)
        } else {
            write!(f, "the worker failed: {}", self.message)
        }
    }
}

impl std::error::Error for WorkerError {}

/// How a worker ended (docs/semantics.md W2): code 0 for a normal return (or the code it returned),
/// 1 after an error, a panic, or [`terminate`](super::Worker::terminate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus {
    code: i32,
    terminated: bool,
}

impl ExitStatus {
    pub(crate) const TERMINATED: ExitStatus = ExitStatus {
        code: 1,
        terminated: true,
    };

    pub(crate) fn code_only(code: i32) -> ExitStatus {
        ExitStatus {
            code,
            terminated: false,
        }
    }

    /// The exit code (Node's `'exit'` argument).
    pub fn code(&self) -> i32 {
        self.code
    }

    /// Whether the worker ended because it was terminated.
    pub fn terminated(&self) -> bool {
        self.terminated
    }

    /// Code 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.terminated {
            write!(f, "exit code {} (terminated)", self.code)
        } else {
            write!(f, "exit code {}", self.code)
        }
    }
}

/// Where a worker is in its life (docs/semantics.md W1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkerState {
    /// Spawned; its closure has not started yet (and never will if it was terminated first).
    Created,
    /// Its closure started; the worker has not exited yet.
    Running,
    /// It is gone; the `Exit` event (and any messages before it) may still be unread.
    Exited,
}
