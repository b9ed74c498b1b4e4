#![doc = include_str!("../README.md")]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod atomics;
mod buffer;
pub mod channel;
mod element;
mod error;
mod panics;
pub mod pool;
#[cfg(all(feature = "process", target_os = "linux", not(loom)))]
pub mod process;
#[cfg(feature = "redis")]
pub mod queue;
mod range;
mod region;
mod shim;
pub mod sync;
mod view;
pub mod worker;

pub use atomics::WaitResult;
pub use buffer::SharedBuffer;
pub use channel::{MessageChannel, MessagePort};
pub use element::{AtomicElement, Element, Waitable};
pub use error::Error;
pub use view::{
    BigInt64Array, BigUint64Array, DataView, Endian, Float32Array, Float64Array, Int16Array,
    Int32Array, Int8Array, Iter, TypedArray, Uint16Array, Uint32Array, Uint8Array,
};
pub use worker::Worker;

/// Hooks the crate's own loom models in `loom-tests/` use to drive what has no loom equivalent.
///
/// Not part of the API: they exist only when built with both `--cfg loom` and
/// `--cfg sharedbuf_loom_hooks` (which the crate's CI sets), so a downstream crate running its
/// own loom models with `--cfg loom` never sees them.
///
/// A model must join every thread it (or a worker) spawned before it returns: loom drops its
/// lazy statics, the waiter table among them, when the model's main thread ends, and a thread
/// still running then would touch freed model state.
#[cfg(all(loom, sharedbuf_loom_hooks))]
#[doc(hidden)]
pub mod loom_hooks {
    /// Plays the timer: every waiter currently waiting with a finite timeout (blocking or
    /// async) times out now, racing whatever else the model does. Under loom a timed wait never
    /// times out on its own.
    pub fn fire_timeouts() {
        crate::atomics::hooks::timer::fire_timeouts();
    }

    /// Number of waiters (blocking or async) with a finite timeout that
    /// [`fire_timeouts`] would time out now. A waiter is counted once it is in the waiter table.
    pub fn pending_timeouts() -> usize {
        crate::atomics::hooks::timer::pending_timeouts()
    }

    /// Unparks every queued waiter's thread without notifying it: a spurious wakeup.
    pub fn unpark_all_spuriously() {
        crate::atomics::hooks::unpark_all_spuriously();
    }

    /// Number of waiters in the waiter table (it must return to zero).
    pub fn queued_waiters() -> usize {
        crate::atomics::hooks::total_queued()
    }

    /// How many sleeps make a blocked `sync::Mutex` waiter ask for the next unlock to be handed
    /// to it, for the calling test (default 1; `u32::MAX`: never). Natively that takes 1 ms of
    /// waiting, which a model cannot measure.
    pub fn mutex_starving_after(sleeps: u32) {
        crate::sync::hooks::set_loom_starving_after(sleeps);
    }

    /// Declares the calling model thread dead, as if its process had been killed: a process-shared
    /// lock whose owner word names it now has a dead holder (docs/semantics.md X3). Call it
    /// after the thread's last lock operation (typically after `std::mem::forget` of a guard);
    /// under loom a waiter asks about its holder before every sleep.
    pub fn owner_dies() {
        crate::sync::hooks::this_thread_dies();
    }

    /// Makes every pool's queues act as if memory ran out once one holds `entries` entries
    /// (the room the normal-priority queue keeps for batches included), for the calling test
    /// (`usize::MAX`: no limit, the default). Natively that takes exhausting the process.
    pub fn pool_queue_limit(entries: usize) {
        crate::pool::hooks::set_loom_queue_limit(entries);
    }

    /// Number of waiter slots taken in a process-shared buffer's header (it must return to
    /// zero once every wait on it has returned); 0 for a private buffer.
    pub fn process_slots_taken(buffer: &crate::SharedBuffer) -> usize {
        crate::atomics::hooks::slots_taken(buffer)
    }
}

/// soundness rule 5 for the process workers' public types.
#[cfg(all(feature = "process", target_os = "linux", not(loom)))]
mod process_assertions {
    use super::process::*;
    use static_assertions::assert_impl_all;

    assert_impl_all!(ProcessWorker<u8, String>: Send, Sync);
    assert_impl_all!(ProcessWorkerBuilder: Send, Sync, Clone);
    assert_impl_all!(ProcessContext<u8, Bytes>: Send, Sync);
    assert_impl_all!(ProcessEvent<u8>: Send, Sync, Clone);
    assert_impl_all!(ProcessExit: Send, Sync, Copy);
    assert_impl_all!(Entry<u8, u8>: Send, Sync);
    assert_impl_all!(Events<'static, u8, u8>: Send, Sync);
    assert_impl_all!(Bytes: Send, Sync, Clone);
}

mod assertions {
    //! soundness rule 5: the thread-safety of every public type, checked at compile time.
    use super::*;
    use static_assertions::assert_impl_all;

    assert_impl_all!(SharedBuffer: Send, Sync, Clone);
    assert_impl_all!(TypedArray<i8>: Send, Sync, Clone);
    assert_impl_all!(TypedArray<f64>: Send, Sync, Clone);
    assert_impl_all!(MessagePort<Vec<u8>>: Send, Sync);
    assert_impl_all!(MessagePort<u8, String>: Send, Sync);
    assert_impl_all!(channel::PostError<u8>: Send, Sync, std::error::Error);
    assert_impl_all!(Error: From<channel::PostError<u8>>);
    assert_impl_all!(channel::Iter<'static, u8, u8>: Send, Sync);
    assert_impl_all!(channel::TryIter<'static, u8, u8>: Send, Sync);
    assert_impl_all!(channel::IntoIter<u8, u8>: Send, Sync);
    assert_impl_all!(MessageChannel<Vec<u8>>: Send, Sync);
    assert_impl_all!(channel::ByteRing: Send, Sync, Clone);
    assert_impl_all!(channel::ByteSender: Send, Sync);
    assert_impl_all!(channel::ByteReceiver: Send, Sync);
    assert_impl_all!(channel::MessageWriter<'static>: Send, Sync, std::io::Write);
    assert_impl_all!(channel::MessageReader<'static>: Send, Sync, std::io::Read);
    assert_impl_all!(Worker<Vec<u8>, String>: Send, Sync);
    assert_impl_all!(worker::WorkerBuilder<Vec<u8>>: Send, Sync);
    assert_impl_all!(worker::WorkerContext<u8, u8, Vec<u8>>: Send, Sync);
    assert_impl_all!(worker::WorkerEvent<u8>: Send, Sync, Clone);
    assert_impl_all!(worker::WorkerError: Send, Sync, std::error::Error);
    assert_impl_all!(worker::ExitStatus: Send, Sync, Copy);
    assert_impl_all!(worker::WorkerState: Send, Sync, Copy);
    assert_impl_all!(worker::Events<'static, u8, u8>: Send, Sync);
    static_assertions::assert_not_impl_any!(MessagePort<std::rc::Rc<u8>>: Send, Sync);
    assert_impl_all!(Int32Array: Send, Sync, Clone);
    assert_impl_all!(DataView: Send, Sync, Clone);
    assert_impl_all!(Endian: Send, Sync, Copy, std::hash::Hash);
    assert_impl_all!(Error: Send, Sync, std::error::Error);
    assert_impl_all!(Iter<'static, u64>: Send, Sync);
    assert_impl_all!(WaitResult: Send, Sync, Copy, std::hash::Hash, std::fmt::Display);
    assert_impl_all!(atomics::WaitAsync: Send, Sync);
    assert_impl_all!(atomics::WaitFuture: Send, Sync, Unpin, std::future::Future<Output = WaitResult>);
    assert_impl_all!(atomics::Interrupter: Send, Sync, Clone);
    assert_impl_all!(pool::WorkerPool: Send, Sync);
    assert_impl_all!(pool::PoolBuilder: Send, Sync);
    assert_impl_all!(pool::TaskHandle<Vec<u8>>: Send, Sync, Unpin, std::future::Future<Output = Result<Vec<u8>, pool::TaskError>>);
    assert_impl_all!(pool::TaskContext<'static>: Send, Sync);
    assert_impl_all!(pool::TaskOptions: Send, Sync, Copy, std::hash::Hash);
    assert_impl_all!(pool::Priority: Send, Sync, Copy, Ord, std::hash::Hash);
    assert_impl_all!(pool::MaxQueue: Send, Sync, Copy, std::hash::Hash);
    assert_impl_all!(pool::WhenFull: Send, Sync, Copy, std::hash::Hash);
    assert_impl_all!(pool::HistogramSummary: Send, Sync, Copy);
    assert_impl_all!(pool::TaskError: Send, Sync, Clone, std::error::Error);
    assert_impl_all!(pool::PoolError<fn()>: Send, Sync, std::error::Error);
    assert_impl_all!(pool::PoolStats: Send, Sync, Clone, Default);
    assert_impl_all!(pool::Cancelled: Send, Sync, Copy, std::error::Error);
    assert_impl_all!(pool::BuildError: Send, Sync, std::error::Error);
    assert_impl_all!(pool::CloseError: Send, Sync, std::error::Error);
    static_assertions::assert_not_impl_any!(atomics::InterruptGuard: Send, Sync);
    assert_impl_all!(sync::LockError<sync::MutexGuard<'static>>: Sync, std::error::Error);
    assert_impl_all!(sync::LockError<sync::AsyncMutexGuard<'static>>: Send, Sync);
    assert_impl_all!(sync::TryLockError<sync::MutexGuard<'static>>: Sync, std::error::Error);
    assert_impl_all!(sync::Mutex: Send, Sync, Clone);
    assert_impl_all!(sync::MutexGuard<'static>: Sync);
    static_assertions::assert_not_impl_any!(sync::MutexGuard<'static>: Send);
    assert_impl_all!(sync::LockFuture<'static>: Send, Sync, Unpin);
    assert_impl_all!(sync::AsyncMutexGuard<'static>: Send, Sync);
    assert_impl_all!(sync::Condvar: Send, Sync, Clone);
    assert_impl_all!(sync::WaitTimeoutResult: Send, Sync, Copy);
    assert_impl_all!(sync::RwLock: Send, Sync, Clone);
    assert_impl_all!(sync::RwLockReadGuard<'static>: Sync);
    assert_impl_all!(sync::RwLockWriteGuard<'static>: Sync);
    static_assertions::assert_not_impl_any!(sync::RwLockReadGuard<'static>: Send);
    static_assertions::assert_not_impl_any!(sync::RwLockWriteGuard<'static>: Send);
    assert_impl_all!(sync::Semaphore: Send, Sync, Clone);
    assert_impl_all!(sync::Barrier: Send, Sync, Clone);
    assert_impl_all!(sync::BarrierWaitResult: Send, Sync, Copy, std::hash::Hash);
    assert_impl_all!(sync::Latch: Send, Sync, Clone);
    assert_impl_all!(sync::Once: Send, Sync, Clone);
    assert_impl_all!(sync::OnceState: Send, Sync, Copy, std::hash::Hash);
    #[cfg(feature = "redis")]
    mod queue {
        use crate::queue::*;
        use static_assertions::assert_impl_all;
        assert_impl_all!(JobQueue: Send, Sync);
        assert_impl_all!(JobQueueBuilder: Send, Sync, Clone);
        assert_impl_all!(ConsumerBuilder: Send, Sync, Clone);
        assert_impl_all!(Consumer: Send, Sync);
        assert_impl_all!(Job: Send, Sync, Clone);
        assert_impl_all!(JobId: Send, Sync, Copy);
        assert_impl_all!(JobOptions: Send, Sync, Clone, std::hash::Hash);
        assert_impl_all!(Backoff: Send, Sync, Copy);
        assert_impl_all!(Added: Send, Sync, Copy);
        assert_impl_all!(Effects: Send, Sync, Clone);
        assert_impl_all!(JobError: Send, Sync, Clone, std::error::Error);
        assert_impl_all!(JobError: From<crate::Error>, From<crate::pool::TaskError>);
        assert_impl_all!(PayloadError: Send, Sync, Clone, std::error::Error);
        assert_impl_all!(QueueError: Send, Sync, std::error::Error);
        assert_impl_all!(QueueStats: Send, Sync, Clone);
        assert_impl_all!(ConsumerStats: Send, Sync, Clone);
        assert_impl_all!(ConsumerCounts: Send, Sync, Clone);
        assert_impl_all!(DeadLetter: Send, Sync, Clone);
    }
}
