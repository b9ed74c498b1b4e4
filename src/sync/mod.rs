//! Locks whose whole state lives in the bytes of a [`SharedBuffer`](crate::SharedBuffer)
//! (SEMANTICS S1–S6).
//!
//! # Why this layer exists
//!
//! Raw [`wait`](crate::atomics::wait) / [`notify`](crate::atomics::notify) is how experts build
//! locks; everyone else wants the locks. Rust's locks (std, parking_lot) live in process memory:
//! they cannot sit in a buffer you share, map from a file or hand to another process. JavaScript
//! is getting locks that live in shared memory (TC39 shared structs: `Atomics.Mutex`,
//! `Atomics.Condition`). This layer is that: a lock is a few words at a byte offset you choose
//! in a buffer, starting from all-zero bytes, reachable from every thread holding a clone of the
//! buffer — and, once the process issue lands, from every process mapping it. The locks block
//! and wake through the crate's own wait/notify, so the loom models in `loom-tests/` check the
//! code users run, and inside a worker every blocking call returns `Err(Terminated)` when the
//! worker's `terminate()` is called (S6), as `atomics::wait` does.
//!
//! # Attaching
//!
//! `X::at(&buffer, byte_offset)` checks the place once — the offset a multiple of `X::ALIGN`,
//! `X::BYTES` bytes within the buffer, else `Err` — and returns a handle: cheap to clone, `Send`
//! and `Sync`, keeping the buffer alive. Attaching writes nothing: all-zero bytes are every
//! primitive's initial state (S1), so every handle at the same offset, made before, after or at
//! the same moment as another, is the same primitive. A setting fixed at creation (a barrier's
//! parties) is written exactly once, however many threads attach at the same moment, and a
//! different value on a later attach is `Err(ParameterMismatch)`, never a silent reset.
//!
//! The bytes belong to the primitive from then on: writing them through a view breaks the lock
//! (it may then never be free again), but never memory safety — every word is read and written
//! atomically, and the protocols never trust a value to index memory.
//!
//! # Words
//!
//! Threads sleep only on 32-bit words, and only through "sleep while the word holds `v`" and
//! "wake `n`, tell me how many": no token passes through the waiter table, so the same
//! protocols run unchanged on a Linux futex shared between processes (whose words are 32-bit).
//! Who holds a lock is recorded in a separate 64-bit owner word (see `owner.rs`): in this
//! process a per-thread token, later a process-qualified identity the process issue can check
//! for a dead owner. Each primitive's file states its words, its protocol and the invariants it
//! keeps.

use std::time::{Duration, Instant};

// Shared pieces, used by every primitive (allowed unused until the first primitive lands).
#[allow(dead_code)]
mod attach;
#[allow(dead_code)]
mod owner;
#[allow(dead_code)]
mod spin;

mod barrier;
mod latch;
mod once;
mod semaphore;

pub use barrier::{Barrier, BarrierWaitResult};
pub use latch::Latch;
pub use once::{Once, OnceState};
pub use semaphore::Semaphore;

/// The deadline of a wait with `timeout` starting now; `None` (no deadline) when the instant is
/// too far away to represent, as `atomics::wait` treats such timeouts.
#[allow(dead_code)] // for the timed lock calls
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Whether `deadline` has passed (never for `None`).
#[allow(dead_code)] // for the timed lock calls
pub(crate) fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|at| Instant::now() >= at)
}
