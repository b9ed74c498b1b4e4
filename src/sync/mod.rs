//! Locks whose whole state lives in the bytes of a [`SharedBuffer`](crate::SharedBuffer)
//! (docs/semantics.md S1–S8, X3): [`Mutex`], [`Condvar`], [`RwLock`], [`Semaphore`], [`Barrier`],
//! [`Latch`], [`Once`].
//!
//! # Why this layer exists
//!
//! Raw [`wait`](crate::atomics::wait) / [`notify`](crate::atomics::notify) is how experts build
//! locks; everyone else wants the locks. Rust's locks (std, parking_lot) live in process memory:
//! they cannot sit in a buffer you share, map from a file or hand to another process. JavaScript
//! is getting locks that live in shared memory (TC39 shared structs: `Atomics.Mutex`,
//! `Atomics.Condition`). This layer is that: a lock is a few words at a byte offset you choose
//! in a buffer, starting from all-zero bytes, reachable from every thread holding a clone of the
//! buffer — and from every process mapping it (process-shared buffers). The locks block
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
//! (it may then never be free again, until zeros are written back: S7), but never memory safety — every word is read and written
//! atomically, and the protocols never trust a value to index memory. So does *sleeping* on
//! them: an [`atomics::wait`](crate::atomics::wait) (or `wait_async`) on a primitive's word
//! through a view queues beside the primitive's own sleepers, and a wake the protocol counts
//! as handed to one of them (a `Mutex` unlock's, a `RwLock` writer's, a `Condvar::notify(1)`)
//! can go to it instead: the blocked locker it was meant for then sleeps on until its deadline,
//! and a `Mutex` wakes no queued waiter any more. Reading the words (`load`) is harmless.
//!
//! # Words
//!
//! Threads sleep only through "sleep while the word holds `v`" and "wake `n`, tell me how
//! many": no token passes through the waiter table, so the same protocols run between
//! processes, whose waits queue in the buffer's header (`atomics/process_waiters.rs`). Who
//! holds a lock is recorded in a separate 64-bit owner word (`owner.rs`): a per-thread token in
//! a private buffer, an identity another process can check in a process-shared one. Each
//! primitive's file states its words, its protocol and the invariants it keeps.
//!
//! # Across processes: a dead holder (X3)
//!
//! In a process-shared buffer a lock must survive its holder's death: a process killed while
//! holding it must not leave the others waiting for ever. So there:
//!
//! - the owner word holds the holder's **identity** — kernel thread id and that thread's start
//!   time (`owner.rs`) — which no later thread can share, even one that reuses the id;
//! - the owner word is written in the *same* compare-exchange that takes the lock (the
//!   `Mutex`: `shared_mutex.rs`), or claimed *before* the lock bit is set and given back after
//!   it is cleared (`RwLock` writers: `shared_rwlock.rs`; `Once` runners: `once.rs`), so no
//!   instant exists at which a lock is held by nobody anyone can check;
//! - waiters sleep at most a slice at a time (1 ms, doubling to 50 ms) and ask whether the
//!   holder is dead before sleeping and whenever a slice ends (`liveness.rs`: `/proc`, never a
//!   guess); the one whose compare-exchange replaces a dead identity holds the lock, with the
//!   news: [`LockError::OwnerDied`]. Its guard's `mark_consistent()` makes the lock normal
//!   again; released without it, the lock is retired ([`Error::NotRecoverable`](crate::Error)).
//!
//! [`Mutex`]'s docs show a takeover and its repair; `loom-tests/sync_owner_died.rs` models the
//! takeover race and a waiter woken by the end of its slice.
//!
//! Lock results have std's shape ([`LockResult`], and [`TryLockResult`] whose
//! [`TryLockError::WouldBlock`] says "not taken"), so `?` still works in functions returning
//! `Result<_, Error>`. Private buffers keep their own protocols and never probe anything: there
//! nothing can die holding a lock but the whole process.
//!
//! | primitive | `BYTES` | `ALIGN` | words (byte offset: word) |
//! | --- | --- | --- | --- |
//! | [`Mutex`] | 16 | 8 | 0: state `u32` (waiters sleep here), 4: side `u32` (the heir and `lock_async` futures sleep here), 8: owner `u64` — in a process-shared buffer: 0: waiter count `u32`, 4: side `u32`, 8: owner `u64`, the lock itself (waiters sleep here) |
//! | [`Condvar`] | 8 | 4 | 0: sequence `u32` (waiters sleep here), 4: waiter count `u32` |
//! | [`RwLock`] | 24 | 8 | 0: state `u64`, 8: owner `u64` (the writer), 16: readers' sequence `u32`, 20: writers' sequence `u32` |
//! | [`Semaphore`] | 4 | 4 | 0: state `u32` (permits and two flags; waiters sleep here) |
//! | [`Barrier`] | 16 | 8 | 0: state `u64` (generation, dropped parties, arrivals), 8: parties `u32` (set once), 12: sequence `u32` (waiting parties sleep here) |
//! | [`Latch`] | 8 | 4 | 0: count `u32`, 4: epoch `u32` (waiters sleep here) |
//! | [`Once`] | 16 | 8 | 0: state `u32` (waiters sleep here), 4: reserved, 8: owner `u64` (the runner) |
//!
//! ```
//! use sharedbuf::sync::{Condvar, Mutex, RwLock};
//! use sharedbuf::SharedBuffer;
//!
//! // Lay the primitives out one after another, each at a multiple of its alignment.
//! let buffer = SharedBuffer::new(64)?;
//! let mutex = Mutex::at(&buffer, 0)?;
//! let condvar = Condvar::at(&buffer, Mutex::BYTES)?;
//! let rwlock = RwLock::at(&buffer, Mutex::BYTES + Condvar::BYTES)?;
//! let _guard = mutex.lock()?;
//! assert_eq!(condvar.notify_all(), 0);
//! assert_eq!(rwlock.reader_count(), 0);
//! # Ok::<(), sharedbuf::Error>(())
//! ```

use std::time::{Duration, Instant};

mod attach;
mod condvar;
mod liveness;
mod lock_result;
mod mutex;
mod mutex_async;
mod owner;
mod rwlock;
mod shared_mutex;
mod shared_rwlock;
mod spin;

mod barrier;
mod latch;
mod once;
mod semaphore;

/// What the loom models drive through `crate::loom_hooks` (used in loom builds only).
#[allow(unused_imports)]
pub(crate) mod hooks {
    pub(crate) use super::liveness::model::this_thread_dies;
    pub(crate) use super::mutex::set_loom_starving_after;
}

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use latch::Latch;
pub use lock_result::{LockError, LockResult, TryLockError, TryLockResult};
pub use mutex::{Mutex, MutexGuard};
pub use mutex_async::{AsyncMutexGuard, LockFuture};
pub use once::{Once, OnceState};
pub use rwlock::{ReadResult, RwLock, RwLockReadGuard, RwLockWriteGuard, TryReadResult};
pub use semaphore::Semaphore;

/// The deadline of a wait with `timeout` starting now; `None` (no deadline) when the instant is
/// too far away to represent, as `atomics::wait` treats such timeouts.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Whether `deadline` has passed (never for `None`). The locks notice their deadline through
/// their sleeps; only their rare polling branches (a count that cannot grow) check it here.
pub(crate) fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|at| Instant::now() >= at)
}
