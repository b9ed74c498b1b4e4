//! The one place that picks `std` or `loom` primitives.
//!
//! Under `--cfg loom` every atomic, lock, thread and cell the crate uses comes from loom, so the
//! loom models in `loom-tests/` check the very code users run. The rest of the crate takes its
//! primitives from here and never names `std::sync` or `loom` itself. What differs between the
//! two builds is confined to four files: this one, the region's backing (`region/mod.rs` picks
//! raw memory or loom cells), the `wait_async` timer (`atomics/timer.rs`: a real clock thread or
//! one a model drives), and the test hooks in `lib.rs`. Everything else reads [`LOOM`] as a
//! plain constant where it must behave differently (no spinning, no caught panics, smaller
//! tables), so both branches always compile.
//!
//! The seams:
//! - [`park_until`]: how a blocked thread sleeps until it is woken or its deadline passes.
//!   Native: `thread::park_timeout`; under loom: `thread::park`, and a model thread plays the
//!   clock. A futex-based park for process-shared memory plugs in here.
//! - [`lazy_static!`](crate::shim::lazy_static) and [`thread_local_static!`](crate::shim::thread_local_static):
//!   statics that loom must reset between executions.
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
    thread,
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
    thread,
};

pub(crate) use std::sync::atomic::Ordering;
use std::time::Instant;

/// Whether this is a loom build. Code that must behave differently under the model checker
/// (no spinning, no caught panics, one waiter bucket) tests this constant, so both branches
/// compile in every build.
pub(crate) const LOOM: bool = cfg!(loom);

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

/// Whether the calling thread unwinds because loom itself gave up on the model (it found a
/// deadlock, a leak, a causality violation); always `false` outside loom.
///
/// A destructor that would touch loom state (lock a mutex, access an atomic, count an `Arc`
/// down) does nothing when this holds, because loom cannot take it: after loom reports a
/// deadlock no model thread is active, and while `loom::model` unwinds it drops its lazy
/// statics (the waiter table, holding the `Arc`s of still-queued waiters) outside the model.
/// A loom operation in either place panics again, and a panic in a destructor during
/// unwinding aborts the whole test binary: `#[should_panic]` and the binary's other tests are
/// lost. Skipping the cleanup is harmless then: loom re-raises its panic and checks nothing
/// after.
///
/// A panic of the model's own code (a `sync::Once` closure that panics on purpose, caught by
/// the model) is not loom giving up: cleanup runs as usual, so the model goes on and loom's
/// leak check still holds. Which is which is told by where the panic was raised: a panic hook,
/// installed with the first loom `Arc`, marks the thread when the panic comes from loom's own
/// source (`loom_failed`).
pub(crate) fn model_is_unwinding() -> bool {
    LOOM && std::thread::panicking() && loom_failed()
}

#[cfg(not(loom))]
fn loom_failed() -> bool {
    false
}

#[cfg(loom)]
use model_arc::loom_failed;

/// Locks a shim mutex, ignoring poisoning: the crate's critical sections never leave shared
/// state half-updated across a panic point, so a poisoned lock still guards consistent data.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// What [`park_until`] returned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parked {
    /// Woken, or a spurious wakeup: the caller re-checks what it waits for.
    Woken,
    /// The deadline had passed; the thread did not sleep.
    DeadlinePassed,
}

/// Parks the calling thread until it is unparked or `deadline` (`None`: never) passes.
/// Spurious returns are allowed: callers loop on their own condition.
///
/// Under loom the deadline is ignored (loom has no clock): a model thread times waiters out
/// through `loom_hooks::fire_timeouts`, so a model never depends on real time.
#[cfg(not(loom))]
pub(crate) fn park_until(deadline: Option<Instant>) -> Parked {
    match deadline {
        Some(at) => {
            let now = Instant::now();
            if now >= at {
                return Parked::DeadlinePassed;
            }
            thread::park_timeout(at - now);
        }
        None => thread::park(),
    }
    Parked::Woken
}

/// Under loom: parks until unparked, whatever the deadline (see the native version).
#[cfg(loom)]
pub(crate) fn park_until(_deadline: Option<Instant>) -> Parked {
    thread::park();
    Parked::Woken
}

/// The number of CPUs this process may run on (at least 1), read once.
pub(crate) fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A process-wide counter handing out unique ids (worker ids). It synchronizes nothing, so it
/// is std's atomic in every build (a loom atomic cannot live in a `static`).
pub(crate) struct IdCounter(std::sync::atomic::AtomicU64);

impl IdCounter {
    /// A counter whose first id is `first`.
    pub(crate) const fn starting_at(first: u64) -> IdCounter {
        IdCounter(std::sync::atomic::AtomicU64::new(first))
    }

    /// The next id.
    pub(crate) fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// `lazy_static! { static ref NAME: Type = init; }`: a lazily initialized static, std's
/// `LazyLock` natively and `loom::lazy_static!` under loom (whose statics are reset between
/// model executions, so model state never leaks from one execution into the next).
macro_rules! lazy_static {
    ($(#[$meta:meta])* static ref $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(loom)]
        loom::lazy_static! {
            $(#[$meta])* static ref $name: $ty = $init;
        }
        #[cfg(not(loom))]
        $(#[$meta])*
        static $name: std::sync::LazyLock<$ty> = std::sync::LazyLock::new(|| $init);
    };
}
pub(crate) use lazy_static;

/// `thread_local_static! { static NAME: Type = init; }` with a `const` initializer natively (no lazy
/// initialization check on access); loom's `thread_local!` does not take the `const` form.
macro_rules! thread_local_static {
    ($(#[$meta:meta])* static $name:ident: $ty:ty = $init:expr;) => {
        #[cfg(loom)]
        loom::thread_local! {
            $(#[$meta])* static $name: $ty = $init;
        }
        #[cfg(not(loom))]
        std::thread_local! {
            $(#[$meta])* static $name: $ty = const { $init };
        }
    };
}
pub(crate) use thread_local_static;

#[cfg(loom)]
mod model_arc {
    //! loom's `Arc`, except that a drop during unwinding leaks instead of telling loom.
    //!
    //! Dropping a loom `Arc` is a loom operation (the count goes down; a scheduling point). The
    //! unwind of a failed model drops many: the waiter `atomics::wait` holds, buffers and views
    //! on the stack, the queued waiters in the waiter table. Each would panic again and abort
    //! the test binary (see [`model_is_unwinding`](super::model_is_unwinding)), so while the
    //! thread unwinds the reference is leaked instead, which is always safe; the run is over.

    use std::cell::Cell;
    use std::mem::ManuallyDrop;
    use std::ops::Deref;

    std::thread_local! {
        /// Set on a thread (loom runs every model thread on the test's own thread) when a
        /// panic is raised from loom's source: loom gave up on the model.
        static LOOM_FAILED: Cell<bool> = const { Cell::new(false) };
    }

    /// Whether loom raised a panic on this thread (see `super::model_is_unwinding`).
    pub(crate) fn loom_failed() -> bool {
        LOOM_FAILED.with(Cell::get)
    }

    /// Installs, once per process, a panic hook that marks the thread when a panic comes from
    /// loom's own source files, then runs the hook that was there before.
    fn watch_for_loom_failures() {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                let from_loom = info.location().is_some_and(|at| {
                    let file = at.file().replace('\\', "/");
                    file.contains("/loom-") || file.contains("/loom/src/")
                });
                if from_loom {
                    LOOM_FAILED.with(|failed| failed.set(true));
                }
                previous(info);
            }));
        });
    }

    /// `loom::sync::Arc<T>` whose drop leaks while the thread is panicking.
    pub(crate) struct Arc<T>(ManuallyDrop<loom::sync::Arc<T>>);

    impl<T> Arc<T> {
        #[track_caller]
        pub(crate) fn new(value: T) -> Arc<T> {
            watch_for_loom_failures();
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
