//! Noticing `fork()`: a counter bumped in the child of every fork (docs/semantics.md X7).
//!
//! A child forked without `exec` has only the thread that forked and a copy of everything
//! else, so what the crate cached per process — a thread's lock identity (`sync/owner.rs`),
//! the `wait_async` timer thread (`atomics/timer.rs`), the doorbell bridges
//! (`atomics/process_bridge.rs`) — is stale there. Each records the generation it was made in
//! and compares: one relaxed load, no system call. So do the handles whose threads or child
//! process do not cross a fork ([`MadeIn`]).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;

/// Bumped in the child of every `fork()` (a std atomic: touched from a fork handler).
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The current fork generation: 0 in a process that never forked from one using it, one more
/// in each child. Registers the fork handler on first use, so a value read before a fork
/// always differs from the child's.
pub(crate) fn fork_generation() -> u64 {
    register();
    GENERATION.load(Ordering::Relaxed)
}

#[cfg(target_os = "linux")]
fn register() {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn forked_child() {
        // Async-signal-safe: one atomic add.
        GENERATION.fetch_add(1, Ordering::Relaxed);
    }
    REGISTER.call_once(|| {
        // SAFETY: registers a child handler that only bumps an atomic; no other handler.
        // A failure (out of memory) leaves fork children unnoticed, which the crate documents
        // for processes that fork without exec anyway.
        unsafe {
            libc::pthread_atfork(None, None, Some(forked_child));
        }
    });
}

#[cfg(not(target_os = "linux"))]
fn register() {}

/// The fork generation a handle was made in (docs/semantics.md X7): a `Worker`, `WorkerPool`,
/// `ProcessWorker` or queue consumer keeps one, and in a `fork()` child of the process that
/// made it, refuses to wait on threads or a child process that are not there (and its drop
/// leaks instead of joining or killing them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MadeIn(u64);

impl MadeIn {
    /// The generation of the calling process.
    pub(crate) fn now() -> MadeIn {
        MadeIn(fork_generation())
    }

    /// Whether the calling process is a `fork()` child of the one that made the handle: one
    /// relaxed load (on a pool's submit path). The fork handler is registered already: `now`
    /// did it, in this process or in the one it was forked from (handlers cross a fork).
    pub(crate) fn forked(self) -> bool {
        self.0 != GENERATION.load(Ordering::Relaxed)
    }

    /// `Err(ForkedHandle)` naming `what` in a fork child of the process that made the handle.
    pub(crate) fn check(self, what: &'static str) -> Result<(), Error> {
        if self.forked() {
            Err(Error::ForkedHandle { what })
        } else {
            Ok(())
        }
    }
}
