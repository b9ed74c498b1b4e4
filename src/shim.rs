//! The one place that picks `std` or `loom` primitives.
//!
//! Under `--cfg loom` every atomic, lock, condition variable, thread and cell the crate uses comes
//! from loom, so the loom models in `loom-tests/` check the very code users run. Code shared by
//! both builds takes its primitives from here. The exceptions name `std::sync` or `loom`
//! directly: code that exists in one build only (the `wait_async` timer thread and the spin's
//! CPU count outside loom, `loom::lazy_static!` statics under it), and the worker id counter, a
//! static that synchronizes nothing (a loom atomic cannot be a static).
//!
//! A failing model must fail cleanly, so nothing the crate drops while a model thread unwinds
//! may touch loom: see [`model_is_unwinding`], and `model_arc::Arc` (loom's `Arc`, which leaks
//! instead of counting down then).

#[cfg(loom)]
#[allow(unused_imports)]
pub(crate) use loom::{
    cell::UnsafeCell,
    sync::{
        atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize},
        Condvar, Mutex, MutexGuard,
    },
    thread, thread_local,
};

#[cfg(loom)]
pub(crate) use model_arc::Arc;

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

/// Whether the calling thread unwinds inside a loom model; always `false` outside loom.
///
/// A destructor that would touch loom state (lock a mutex, access an atomic, count an `Arc`
/// down) does nothing when this holds, because loom cannot take it: after loom reports a
/// deadlock no model thread is active, and while `loom::model` unwinds it drops its lazy
/// statics (the waiter table, holding the `Arc`s of still-queued waiters) outside the model.
/// A loom operation in either place panics again, and a panic in a destructor during
/// unwinding aborts the whole test binary: `#[should_panic]` and the binary's other tests are
/// lost. Skipping the cleanup is harmless: any panic in a model thread ends the run, and
/// `loom::model` re-raises it and checks nothing after. (A model that caught the panic with
/// `catch_unwind` and went on would see the skipped cleanup; models should not catch panics.)
/// Outside loom, cleanup during a panic is kept: it is how the other side learns of it.
pub(crate) fn model_is_unwinding() -> bool {
    cfg!(loom) && std::thread::panicking()
}

/// Locks a shim mutex, ignoring poisoning: the crate's critical sections never leave shared
/// state half-updated across a panic point, so a poisoned lock still guards consistent data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(loom)]
mod model_arc {
    //! loom's `Arc`, except that a drop during unwinding leaks instead of telling loom.
    //!
    //! Dropping a loom `Arc` is a loom operation (the count goes down; a scheduling point). The
    //! unwind of a failed model drops many: the waiter `atomics::wait` holds, buffers and views
    //! on the stack, the queued waiters in the waiter table. Each would panic again and abort
    //! the test binary (see [`model_is_unwinding`](super::model_is_unwinding)), so while the
    //! thread unwinds the reference is leaked instead, which is always safe; the run is over.

    use std::mem::ManuallyDrop;
    use std::ops::Deref;

    /// `loom::sync::Arc<T>` whose drop leaks while the thread is panicking.
    pub(crate) struct Arc<T>(ManuallyDrop<loom::sync::Arc<T>>);

    impl<T> Arc<T> {
        #[track_caller]
        pub(crate) fn new(value: T) -> Arc<T> {
            Arc(ManuallyDrop::new(loom::sync::Arc::new(value)))
        }

        pub(crate) fn ptr_eq(this: &Arc<T>, other: &Arc<T>) -> bool {
            loom::sync::Arc::ptr_eq(&this.0, &other.0)
        }

        pub(crate) fn as_ptr(this: &Arc<T>) -> *const T {
            loom::sync::Arc::as_ptr(&this.0)
        }
    }

    impl<T> Clone for Arc<T> {
        #[track_caller]
        fn clone(&self) -> Arc<T> {
            Arc(ManuallyDrop::new(loom::sync::Arc::clone(&self.0)))
        }
    }

    impl<T> Deref for Arc<T> {
        type Target = T;

        fn deref(&self) -> &T {
            &self.0
        }
    }

    impl<T: Default> Default for Arc<T> {
        #[track_caller]
        fn default() -> Arc<T> {
            Arc::new(T::default())
        }
    }

    impl<T> Drop for Arc<T> {
        fn drop(&mut self) {
            if super::model_is_unwinding() {
                return; // leaked: see the module docs
            }
            // SAFETY: `drop` runs once, and `self.0` is not used after it.
            unsafe { ManuallyDrop::drop(&mut self.0) }
        }
    }
}
