//! One waiting agent — a blocked thread or a pending [`WaitFuture`](super::WaitFuture) — and how
//! it learns its outcome.
//!
//! A waiter's `state` word says whether it is still in the waiter table (`QUEUED`, or `PARKED`
//! once its thread went to sleep) or how it left (an [`Outcome`]: notified, timed out,
//! interrupted, cancelled). Only the table moves a waiter out of the queue, always with its
//! bucket locked ([`super::waiter_table`]), so exactly one of "notify counted it" and "it timed out / was
//! interrupted / was dropped" happens. The waiter itself only ever moves `QUEUED → PARKED`.
//!
//! Waking is split from deciding: the table sets the outcome under the lock and hands the waiter
//! back, and [`Waiter::wake`] runs after the lock is released. A thread is only unparked if it
//! had announced `PARKED`: a waiter still spinning on its own state word picks up the outcome
//! without a syscall, which is what makes a quick handoff cost well under a microsecond instead
//! of a 30–80 µs futex wake on this kind of machine.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::task::Waker;

use super::outcome::Outcome;
use super::process_waiters::SlotRef;
use super::requeue::RequeueTarget;
use crate::shim::{lock, thread, Arc, AtomicBool, AtomicU32, AtomicUsize, Mutex, Ordering, LOOM};

/// State word: in the table, not parked (the thread may be spinning, or the waiter is a future).
const QUEUED: u32 = 0;
/// State word: in the table, and its thread is parked or about to park: a wake must unpark it.
const PARKED: u32 = 1;

/// How a waiter is woken once its outcome is set.
enum Wake {
    /// A blocked thread: unparked if it announced `PARKED`.
    Thread(thread::Thread),
    /// A pending future: the waker from its latest poll.
    Task(Mutex<Option<Waker>>),
}

/// One entry of the waiter table.
pub(crate) struct Waiter {
    /// The absolute byte address waited on (docs/semantics.md A10); a requeue changes it to its
    /// target's. Read and written with the waiter's bucket locked (both buckets, for a move).
    key: AtomicUsize,
    /// Where a notify may move this waiter instead of waking it.
    requeue: Option<RequeueTarget>,
    /// A notify moved it to `requeue`'s word: it was counted then, and it no longer times
    /// out (changed with the buckets locked, like `key`).
    requeued: AtomicBool,
    state: AtomicU32,
    /// Where the waiter sits in its bucket while queued (`waiter_table::address_lists`). Read
    /// and written only with that bucket locked, which orders the accesses: relaxed suffices.
    slot: AtomicUsize,
    wake: Wake,
    /// For a wait on a process-shared buffer: its slot in the buffer's header, where its
    /// outcome is decided instead of in the waiter table (`process_waiters.rs`). The waiter
    /// itself then only carries the wait's registration with its interrupters and the timer.
    process_slot: Option<SlotRef>,
    /// For a future waiting on a process-shared buffer: the doorbell that serves it.
    doorbell: Option<Box<dyn Doorbell>>,
}

/// The doorbell that serves the futures of one process-shared buffer in this process
/// (`process_bridge.rs`), as its waiters see it: a seam, so that the waiter (below) can hand a
/// cancel to the bridge (above, it holds waiters) without depending on it.
pub(crate) trait Doorbell: Send + Sync {
    /// Takes `waiter` (slot `slot`) off the doorbell's list if it is still there, with
    /// `outcome`, freeing its slot; returns its final outcome (the one set when it left the
    /// list). With `wake`, its task is woken.
    fn finish(&self, waiter: &Arc<Waiter>, slot: &SlotRef, outcome: Outcome, wake: bool)
        -> Outcome;
}

impl Waiter {
    /// A waiter for the calling thread.
    pub(crate) fn for_current_thread(key: usize) -> Waiter {
        Waiter {
            key: AtomicUsize::new(key),
            requeue: None,
            requeued: AtomicBool::new(false),
            state: AtomicU32::new(QUEUED),
            slot: AtomicUsize::new(0),
            wake: Wake::Thread(thread::current()),
            process_slot: None,
            doorbell: None,
        }
    }

    /// A waiter for a future; its waker is set by [`Waiter::set_waker`] on each poll.
    pub(crate) fn for_task(key: usize) -> Waiter {
        Waiter {
            key: AtomicUsize::new(key),
            requeue: None,
            requeued: AtomicBool::new(false),
            state: AtomicU32::new(QUEUED),
            slot: AtomicUsize::new(0),
            wake: Wake::Task(Mutex::new(None)),
            process_slot: None,
            doorbell: None,
        }
    }

    /// This waiter, waiting in `slot` of a process-shared buffer's header instead of in the
    /// waiter table; a future's `doorbell` serves it (`None` for a blocked thread).
    pub(crate) fn in_process_slot(
        self,
        slot: SlotRef,
        doorbell: Option<Box<dyn Doorbell>>,
    ) -> Waiter {
        Waiter {
            process_slot: Some(slot),
            doorbell,
            ..self
        }
    }

    /// This waiter, which a notify may move onto `target`'s waiters instead of waking it (a
    /// condition variable's waiter and its mutex).
    pub(crate) fn requeueing_to(self, target: RequeueTarget) -> Waiter {
        Waiter {
            requeue: Some(target),
            ..self
        }
    }

    /// The address the waiter waits on now. Stable only with its bucket locked.
    #[inline]
    pub(crate) fn key(&self) -> usize {
        self.key.load(Ordering::Relaxed)
    }

    /// Where a notify may move it, if anywhere.
    pub(crate) fn requeue_target(&self) -> Option<&RequeueTarget> {
        self.requeue.as_ref()
    }

    /// Records that a notify moved it onto its requeue target's waiters. Called by the waiter
    /// table with both buckets locked.
    pub(crate) fn set_requeued(&self, key: usize) {
        self.key.store(key, Ordering::Relaxed);
        self.requeued.store(true, Ordering::Relaxed);
    }

    /// Whether a notify moved it ([`Waiter::set_requeued`]). With the bucket locked, or once
    /// its outcome is set (the outcome's release orders it).
    pub(crate) fn was_requeued(&self) -> bool {
        self.requeued.load(Ordering::Relaxed)
    }

    /// The slot of a waiter on a process-shared buffer.
    #[inline]
    pub(crate) fn process_slot(&self) -> Option<&SlotRef> {
        self.process_slot.as_ref()
    }

    /// The doorbell that serves a future waiting on a process-shared buffer.
    pub(crate) fn doorbell(&self) -> Option<&dyn Doorbell> {
        self.doorbell.as_deref()
    }

    /// The outcome, or `None` while the waiter is still in the table.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        Outcome::of_state(self.state.load(Ordering::Acquire))
    }

    /// Whether the waiter is still in the table. Only meaningful with its bucket locked.
    pub(crate) fn is_queued(&self) -> bool {
        self.outcome().is_none()
    }

    /// Sets the outcome. Called only by the waiter table, with the waiter's bucket locked and
    /// just after removing it from the queue (or, for a future waiting on a process-shared
    /// buffer, by whoever takes it off its doorbell's list: `process_bridge.rs`). Returns
    /// whether the thread must be unparked.
    pub(crate) fn finish(&self, outcome: Outcome) -> bool {
        self.state.swap(outcome as u32, Ordering::AcqRel) == PARKED
    }

    /// The waiter's slot in its bucket. Only meaningful with its bucket locked, while queued.
    pub(crate) fn slot(&self) -> usize {
        self.slot.load(Ordering::Relaxed)
    }

    /// Records the waiter's slot in its bucket; called with the bucket locked.
    pub(crate) fn set_slot(&self, slot: usize) {
        self.slot.store(slot, Ordering::Relaxed);
    }

    /// Wakes whoever waits on this waiter after [`Waiter::finish`]; `unpark` is what `finish`
    /// returned. Runs with no lock held, so a waker may do anything — including panic, which
    /// unwinds out of here (see [`wake_catching`] for callers that must go on).
    pub(crate) fn wake(&self, unpark: bool) {
        match &self.wake {
            Wake::Thread(thread) => {
                if unpark {
                    thread.unpark();
                }
            }
            Wake::Task(waker) => {
                let waker = lock(waker).take();
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        }
    }

    /// Announces that the thread is about to park. `false` means the outcome is already set and
    /// the thread must not park.
    pub(crate) fn announce_park(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, PARKED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
            || self.state.load(Ordering::Acquire) == PARKED
    }

    /// Unparks the waiter's thread without setting an outcome: a spurious wakeup, which the
    /// waiter must absorb (the loom models inject these through `loom_hooks`).
    #[allow(dead_code)] // used by the loom hooks only
    pub(crate) fn unpark_spuriously(&self) {
        if let Wake::Thread(thread) = &self.wake {
            thread.unpark();
        }
    }

    /// Stores the waker of the future's latest poll; returns the outcome if it was already set
    /// (checked after storing, so a concurrent `finish` + `wake` is never missed).
    ///
    /// The waker's `clone` and the replaced waker's `drop` are user code, so they run with the
    /// slot unlocked: one that calls `notify` on this waiter's element reaches [`Waiter::wake`],
    /// which locks the slot, and would deadlock on it. (Only the future's own poll stores a
    /// waker, so nothing else changes the slot between the look and the store.)
    pub(crate) fn set_waker(&self, waker: &Waker) -> Option<Outcome> {
        if let Wake::Task(slot) = &self.wake {
            let current = matches!(&*lock(slot), Some(stored) if stored.will_wake(waker));
            if !current {
                let fresh = waker.clone();
                let replaced = lock(slot).replace(fresh);
                drop(replaced);
            }
        }
        self.outcome()
    }
}

/// Wakes `waiter` ([`Waiter::wake`]) and drops this reference to it, returning the payload of
/// a panic instead of unwinding: the waker, and the waiter's drop if this was its last
/// reference (which drops the stored waker), are user code. A caller with several waiters to
/// wake wakes them all and only then propagates the panic, so one faulty executor cannot strand
/// the others. The outcome is set before this runs, so a panic leaves nothing half-done.
///
/// Under loom nothing is caught: loom reports the failures it finds by panicking, and those
/// must reach the model (its wakers never panic).
pub(crate) fn wake_catching(waiter: Arc<Waiter>, unpark: bool) -> Result<(), Box<dyn Any + Send>> {
    if LOOM {
        waiter.wake(unpark);
        return Ok(());
    }
    // AssertUnwindSafe: a panic here leaves nothing of ours half-updated. The outcome was set
    // before, and the waker slot's lock is released before the waker is called.
    panic::catch_unwind(AssertUnwindSafe(move || waiter.wake(unpark)))
}
