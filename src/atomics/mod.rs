//! JavaScript's `Atomics` over typed views (SEMANTICS A1–A13).
//!
//! Every operation takes a view and an element index, checks the index before touching memory
//! (A4), and is sequentially consistent (A1). Read-modify-write operations return the OLD value
//! (A2). Only integer views compile ([`crate::AtomicElement`]); `wait`/`notify` take `i32` and
//! `i64` views (and `u32`/`u64`, [`crate::Waitable`]).
//!
//! `wait`, `wait_async` and `notify` share one in-process waiter table keyed by the element's
//! absolute byte address, FIFO per address, with exact wake counts. A blocked `wait` can be
//! interrupted from another thread through an [`Interrupter`] (how a worker's `terminate()`
//! reaches it).

mod interrupt;
mod ops;
mod spin;
mod timer;
mod wait;
mod wait_async;
mod waiter;
mod waiters;

pub use interrupt::{is_interrupted, InterruptGuard, Interrupter};
pub use ops::{
    add, and, compare_exchange, exchange, is_lock_free, load, or, pause, store, sub, xor,
};
pub(crate) use wait::wait_until;
pub use wait::{notify, wait, WaitResult};
pub use wait_async::{wait_async, WaitAsync, WaitFuture};

/// Test hooks for the loom models (only under `cfg(loom)`).
#[cfg(loom)]
pub(crate) mod hooks {
    pub(crate) use super::timer::{fire_timeouts, pending_timeouts};
    pub(crate) use super::waiters::{total_queued, unpark_all_spuriously};
}
