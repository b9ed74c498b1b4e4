//! The one place that picks `std` or `loom` primitives.
//!
//! Under `--cfg loom` every atomic, lock, condition variable, thread and cell the crate uses comes
//! from loom, so the loom models in `loom-tests/` check the very code users run. Code shared by
//! both builds takes its primitives from here. The exceptions name `std::sync` or `loom`
//! directly: code that exists in one build only (the `wait_async` timer thread and the spin's
//! CPU count outside loom, `loom::lazy_static!` statics under it), and the worker id counter, a
//! static that synchronizes nothing (a loom atomic cannot be a static).

#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::{
    cell::UnsafeCell,
    sync::{
        atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize},
        Arc, Condvar, Mutex, MutexGuard,
    },
    thread, thread_local,
};

#[cfg(not(loom))]
#[allow(unused_imports)]
pub(crate) use std::{
    sync::{
        atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize},
        Arc, Condvar, Mutex, MutexGuard,
    },
    thread, thread_local,
};

pub(crate) use std::sync::atomic::Ordering;

/// `std`'s `UnsafeCell` with loom's closure API, so code using it runs unchanged under loom,
/// where every access is tracked.
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
#[allow(dead_code)]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Locks a shim mutex, ignoring poisoning: the crate's critical sections never leave shared
/// state half-updated across a panic point, so a poisoned lock still guards consistent data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
