//! JavaScript's `Atomics` over typed views (docs/semantics.md A1–A13).
//!
//! Every operation takes a view and an element index, checks the index before touching memory
//! (A4), and is sequentially consistent (A1). Read-modify-write operations return the OLD value
//! (A2). Only integer views compile ([`crate::AtomicElement`]); `wait`/`notify` take `i32` and
//! `i64` views (and `u32`/`u64`, [`crate::Waitable`]).
//!
//! `wait`, `wait_async` and `notify` share one in-process waiter table keyed by the element's
//! absolute byte address, FIFO per address, with exact wake counts. A blocked `wait` can be
//! interrupted from another thread through an [`Interrupter`] (how a worker's `terminate()`
//! reaches it). On a process-shared buffer ([`SharedBuffer::is_process_shared`]) they use the
//! waiter slots in the buffer's header instead, and Linux futexes, so they reach every process
//! that maps the buffer, with the same exact counts and FIFO order (docs/semantics.md X2).
//!
//! [`SharedBuffer::is_process_shared`]: crate::SharedBuffer::is_process_shared

mod cancel;
mod deadline;
mod interrupt;
mod ops;
mod outcome;
mod process_bridge;
mod process_wait;
mod process_waiters;
mod requeue;
mod spin;
pub(crate) mod timer; // crate-visible for the loom hooks only
mod wait;
mod wait_async;
mod waiter;
mod waiter_table;
mod word;
mod word_wait;

pub use interrupt::{is_interrupted, InterruptGuard, Interrupter};
pub use ops::{
    add, and, compare_exchange, exchange, is_lock_free, load, or, pause, store, sub, xor,
};
pub use outcome::WaitResult;
pub(crate) use requeue::RequeueTarget;
pub use wait::{notify, wait};
pub use wait_async::{wait_async, WaitAsync, WaitFuture};
#[doc(hidden)] // for the waiter_table bench only
pub use waiter_table::waiter_bucket;
pub(crate) use word::{SharedWord, SharedWords, Word};

/// What the loom models drive through `crate::loom_hooks` (used in loom builds only).
#[allow(unused_imports)]
pub(crate) mod hooks {
    pub(crate) use super::process_waiters::slots_taken;
    pub(crate) use super::timer;
    pub(crate) use super::waiter_table::{total_queued, unpark_all_spuriously};
}
