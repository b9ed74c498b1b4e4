//! The in-process waiter table: who waits on which address, in FIFO order (docs/semantics.md A8–A11).
//!
//! Waiters are keyed by the absolute byte address of the element waited on, which identifies
//! (memory block, byte) while the memory is alive — and it is: a blocked `wait` borrows its view,
//! and a [`WaitFuture`](super::WaitFuture) holds a clone of its buffer. The table is a fixed
//! array of buckets picked by hashing the address (parking_lot style), so it never grows with
//! the number of distinct addresses ever waited on. A bucket keeps one FIFO list per address
//! that currently has waiters ([`address_lists`]): `notify` takes the oldest waiters of its
//! address without looking at any other, and a waiter that leaves early (timed out,
//! interrupted, future dropped) is unlinked in O(1) wherever it stands in its list.
//!
//! Invariants, each kept with the bucket locked (the lists' own are in [`address_lists`]):
//! - T1: once enqueued (at most once), a waiter is in its bucket's lists exactly while its
//!   outcome is unset. Only this module sets an outcome, right after taking the waiter out of
//!   the lists, in the same critical section; so exactly one of "notified and counted" and "timed out, interrupted or
//!   cancelled" happens, and `notify` counts precisely the waiters whose outcome it set (A8).
//! - T2: `queued` is the number of waiters in the bucket's lists, plus one inside
//!   `enqueue_if`'s critical section while it checks the value (see the handshake below), plus
//!   those a requeue is moving here while its target decides ([`notify_requeueing`]).
//! - T4: a waiter's key changes only when a notify moves it (requeue), with both its old and
//!   its new bucket locked; a requeued waiter is never moved again, and never times out.
//! - T3: no user code runs with a bucket locked: wakers run after the lock is released, and a
//!   `Waiter` (whose drop drops a waker) is never dropped for the last time under it.
//!
//! Correctness (A11, "no lost wakeup"): `wait` checks the value and enqueues with the bucket
//! locked, and `notify` dequeues with the same lock held. The no-waiter fast path of `notify`
//! skips the lock by reading the bucket's `queued` count instead, which is sound because of a
//! store-buffering handshake through `fence(SeqCst)` on both sides:
//!
//! ```text
//! waiter (lock held)              notifier
//! queued += 1                     store value        (the caller's, before notify)
//! fence(SeqCst)                   fence(SeqCst)
//! load value == expected?         queued == 0 ? return 0
//! ```
//!
//! Either the waiter's load sees the new value (it returns `NotEqual`), or the notifier's load
//! sees the raised count (it takes the lock and finds the waiter). Never neither.
//!
//! Waking is user code for a future (its `Waker`), and may panic. A notify wakes every waiter it
//! took whatever one waker does, and only then lets the first panic continue (fault: one
//! panicking waker used to strand the rest of the wake list, counted but never woken).

mod address_lists;
mod prefetch;

use std::any::Any;
use std::panic;

use self::address_lists::AddressLists;
pub(crate) use self::prefetch::Enqueued;
use self::prefetch::{prefetch, SlabAddress};
use super::outcome::Outcome;
use super::requeue::RequeueTarget;
use super::waiter::{wake_catching, Waiter};
use crate::element::Waitable;
use crate::error::Error;
use crate::shim::{self, fence, lock, Arc, AtomicUsize, Mutex, MutexGuard, Ordering, LOOM};
use crate::view::TypedArray;

/// Number of buckets (a power of two). Under loom there is one: every address shares it, which
/// is the demanding case (notify must pick its address's list out of several), and keeps the
/// model deterministic (real addresses, and so hashes, differ between loom executions).
const BUCKETS: usize = if LOOM { 1 } else { 256 };

/// One bucket: the waiters of every address that hashes here, one FIFO list per address.
#[repr(align(128))]
struct Bucket {
    /// How many waiters are in `waiters` (T2), readable without the lock (the notify fast
    /// path). Changed only with `waiters` locked.
    queued: AtomicUsize,
    waiters: Mutex<AddressLists>,
    /// Where `waiters`' slab is, for [`prefetch_cancel`] (a hint, set with `waiters` locked).
    slab: SlabAddress,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            queued: AtomicUsize::new(0),
            waiters: Mutex::new(AddressLists::default()),
            slab: SlabAddress::default(),
        }
    }
}

shim::lazy_static! {
    // Built bucket by bucket on the heap: the whole table (32 KiB) as one value would pass
    // through the stack of whichever thread touches it first, and threads with small stacks
    // wait too.
    static ref TABLE: Box<[Bucket]> = (0..BUCKETS).map(|_| Bucket::new()).collect();
}

fn buckets() -> &'static [Bucket] {
    &TABLE
}

/// Which bucket the waiters of address `key` share.
// Under loom `BUCKETS` is 1 (and returned early): the modulo is then by 1.
#[allow(clippy::modulo_one)]
fn bucket_index(key: usize) -> usize {
    if BUCKETS == 1 {
        return 0;
    }
    // Fibonacci hashing of the address without its low bits (elements are ≥ 4 bytes apart).
    let hash = (key >> 2).wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize);
    (hash >> (usize::BITS - BUCKETS.trailing_zeros())) % BUCKETS
}

/// Which waiter-table bucket element `index` of `view` hashes to, so the `waiter_table` bench
/// can pile waiters for other addresses into the bucket of the one it notifies. Not API.
#[doc(hidden)]
pub fn waiter_bucket<T: Waitable>(view: &TypedArray<T>, index: usize) -> Result<usize, Error> {
    Ok(bucket_index(view.element(index)?.address()))
}

/// Enqueues `waiter` at the back of its address's list if `value_matches()` holds, evaluated
/// with the bucket locked (check and enqueue are one critical section, A11). Returns where it
/// was enqueued (for [`prefetch_cancel`]), `None` if it was not.
pub(crate) fn enqueue_if(
    waiter: &Arc<Waiter>,
    value_matches: impl FnOnce() -> bool,
) -> Option<Enqueued> {
    let index = bucket_index(waiter.key());
    let bucket = &buckets()[index];
    let mut waiters = lock(&bucket.waiters);
    // Raise the count before reading the value: see the module docs.
    bucket.queued.fetch_add(1, Ordering::Relaxed);
    fence(Ordering::SeqCst);
    if !value_matches() {
        bucket.queued.fetch_sub(1, Ordering::Relaxed);
        return None;
    }
    let slot = waiters.push_back(Arc::clone(waiter));
    bucket.slab.set(waiters.slab_address());
    Some(Enqueued {
        bucket: index,
        slot,
    })
}

/// Starts loading what [`cancel_enqueued`] of `waiter`, enqueued at `at`, and then the
/// waiter's last drop will touch (see `prefetch.rs`): its slab slot and the waiter's memory
/// with the allocator's headers on either side. It changes nothing.
#[inline]
fn prefetch_cancel(waiter: &Arc<Waiter>, at: Enqueued) {
    if LOOM {
        return;
    }
    let slab = buckets()[at.bucket].slab.get();
    prefetch(slab.wrapping_add(at.slot.wrapping_mul(AddressLists::SLOT_SIZE)));
    // The waiter with its reference counts (two words before it), the allocator's header
    // before those, and the next block's header after it.
    let start = (Arc::as_ptr(waiter) as usize).wrapping_sub(32);
    let end = (Arc::as_ptr(waiter) as usize).wrapping_add(std::mem::size_of::<Waiter>() + 16);
    let mut line = start & !63;
    while line <= end {
        prefetch(line);
        line = line.wrapping_add(64);
    }
}

/// Wakes up to `count` waiters on `key`, oldest first (A8, A9); returns how many it woke. Costs
/// what it wakes: other addresses' waiters in the bucket are never looked at.
///
/// A condition variable's waiter may be moved instead of woken (see [`notify_requeueing`]); it
/// counts as woken all the same.
///
/// If a waker panics, every other waiter taken is still woken, then the first panic resumes.
pub(crate) fn notify(key: usize, count: usize) -> usize {
    if count == 0 {
        return 0;
    }
    let from = bucket_index(key);
    let bucket = &buckets()[from];
    // The notifier half of the handshake in the module docs: no waiter counted means none
    // can have seen the old value and still be about to sleep.
    fence(Ordering::SeqCst);
    if bucket.queued.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    let mut woken = WakeList::default();
    {
        let waiters = lock(&bucket.waiters);
        let target = waiters
            .front(key)
            .and_then(|oldest| oldest.requeue_target())
            .map(RequeueTarget::key)
            .filter(|&target| target != key); // already moved: woken, not moved again
        match target {
            Some(target) => notify_requeueing(key, count, target, waiters, &mut woken),
            None => {
                let mut waiters = waiters;
                while woken.len < count {
                    let Some(waiter) = waiters.pop_front(key) else {
                        break;
                    };
                    let unpark = waiter.finish(Outcome::Notified);
                    woken.push(waiter, unpark);
                }
                bucket.queued.fetch_sub(woken.len, Ordering::Relaxed);
            }
        }
    }
    let count = woken.len + woken.moved;
    woken.wake_all();
    count
}

/// `notify` when the oldest waiter of `key` (whose bucket is locked in `waiters`) is a condition
/// variable's waiter with a requeue target, the mutex it will lock next: FUTEX_CMP_REQUEUE.
///
/// Waking such a waiter while its mutex is held — typically by the very thread notifying —
/// costs two wakeups: it runs, finds the mutex held, and sleeps again until the unlock. So the
/// waiters taken that share the oldest one's target are moved onto the target word's list
/// instead, if the target accepts them (the mutex counts them as its own waiters, and only
/// does while it is held: its unlock will wake one). They were counted by this notify: from
/// then on a requeued waiter no longer times out ([`cancel`]), and it leaves its wait when the
/// mutex's unlock wakes it, as that mutex's waiter. The other waiters taken are woken.
///
/// Both buckets are locked for the move (lower index first, so two moves in opposite
/// directions cannot deadlock), so a waiter is always in exactly one list (T1), and the target
/// bucket's `queued` is raised before `accept` runs, the same handshake as `enqueue_if`'s: an
/// unlock after the acceptance sees the raised count, takes the lock and finds the moved
/// waiters.
fn notify_requeueing(
    key: usize,
    count: usize,
    target: usize,
    waiters: MutexGuard<'static, AddressLists>,
    woken: &mut WakeList,
) {
    let (from, to) = (bucket_index(key), bucket_index(target));
    let (mut waiters, mut other) = if to == from {
        (waiters, None)
    } else if to > from {
        (waiters, Some(lock(&buckets()[to].waiters)))
    } else {
        drop(waiters);
        let other = lock(&buckets()[to].waiters);
        (lock(&buckets()[from].waiters), Some(other))
    };
    let mut taken = SmallList::<Arc<Waiter>>::default();
    while taken.len < count {
        let Some(waiter) = waiters.pop_front(key) else {
            break;
        };
        taken.push(waiter);
    }
    let targets = |waiter: &Waiter| waiter.requeue_target().map(RequeueTarget::key) == Some(target);
    let moving = taken.iter().filter(|waiter| targets(waiter)).count();
    let accepted = match taken.iter().find(|waiter| targets(waiter)) {
        Some(first) => {
            let to_bucket = &buckets()[to];
            to_bucket.queued.fetch_add(moving, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let accepted = first
                .requeue_target()
                .is_some_and(|t| u32::try_from(moving).is_ok_and(|n| t.accept(n)));
            if !accepted {
                to_bucket.queued.fetch_sub(moving, Ordering::Relaxed);
            }
            accepted
        }
        None => false,
    };
    let taken_len = taken.len;
    let target_lists = match other.as_mut() {
        Some(other) => &mut **other,
        None => &mut *waiters,
    };
    for waiter in taken.into_iter() {
        if accepted && targets(&waiter) {
            waiter.set_requeued(target);
            target_lists.push_back(waiter);
        } else {
            let unpark = waiter.finish(Outcome::Notified);
            woken.push(waiter, unpark);
        }
    }
    buckets()[from]
        .queued
        .fetch_sub(taken_len, Ordering::Relaxed);
    woken.moved += if accepted { moving } else { 0 };
}

/// Locks the bucket `waiter` is in: its key, so its bucket, changes when a notify moves it, but
/// only with that bucket locked, so a key read under the lock of its bucket stays put.
fn lock_bucket_of(waiter: &Waiter) -> (&'static Bucket, MutexGuard<'static, AddressLists>) {
    loop {
        let index = bucket_index(waiter.key());
        let bucket = &buckets()[index];
        let waiters = lock(&bucket.waiters);
        if bucket_index(waiter.key()) == index {
            return (bucket, waiters);
        }
    }
}

/// Takes `waiter`, which waits in this table (not in a process-shared buffer's slot: those are
/// cancelled through `cancel.rs`), out of the table with `outcome` (timed out,
/// interrupted, cancelled) unless `notify` already did. Returns the waiter's final outcome: `outcome`, or `Notified` when the
/// notify won the race (then it was counted, and the caller must report `Ok`). With `wake`, the
/// waiter's thread or task is woken (used when someone other than the waiter cancels it); a
/// panicking waker unwinds out of here, with the waiter already out of the table.
///
/// `None` (and nothing changes) for a timeout of a requeued waiter: a notify counted it when
/// it moved it, so it no longer times out; only its mutex's unlock or an interrupt end its wait.
pub(crate) fn cancel(waiter: &Arc<Waiter>, outcome: Outcome, wake: bool) -> Option<Outcome> {
    let (removed, unpark) = {
        let (bucket, mut waiters) = lock_bucket_of(waiter);
        if !waiter.is_queued() {
            drop(waiters);
            return Some(waiter.outcome().unwrap_or(outcome));
        }
        if outcome == Outcome::TimedOut && waiter.was_requeued() {
            return None;
        }
        let removed = waiters.remove(waiter);
        debug_assert!(removed.is_some(), "T1: a queued waiter is in the lists");
        if removed.is_some() {
            bucket.queued.fetch_sub(1, Ordering::Relaxed);
        }
        (removed, waiter.finish(outcome))
    };
    // Not the last reference (the caller holds one), but dropped unlocked all the same (T3).
    drop(removed);
    if wake {
        waiter.wake(unpark);
    }
    Some(outcome)
}

/// [`cancel`] with `Outcome::Cancelled` of a future's `waiter`, enqueued at `at`, for a dropped
/// `wait_async` (nobody is told the outcome, and nothing is woken).
///
/// The same critical section as `cancel`'s, reached without reading the waiter first: the
/// bucket and slot come from `at`, and the slot is checked to hold this very waiter, which is
/// then queued (T1). Until the state is set, only the slab is read, so the waiter's own
/// cache line (prefetched first, by [`prefetch_cancel`], before the lock) loads while the
/// neighbours are unlinked.
/// If the waiter is not there (a notify took it, or moved it elsewhere), `at` is stale and
/// `cancel` decides.
pub(crate) fn cancel_enqueued(waiter: &Arc<Waiter>, at: Enqueued) {
    prefetch_cancel(waiter, at);
    let bucket = &buckets()[at.bucket];
    let removed = {
        let mut waiters = lock(&bucket.waiters);
        let removed = waiters.remove_from(at.slot, waiter);
        if removed.is_some() {
            bucket.queued.fetch_sub(1, Ordering::Relaxed);
            // A future's waiter has no thread to unpark, and a dropped one is not woken.
            waiter.finish(Outcome::Cancelled);
        }
        removed
    };
    match removed {
        // Not the last reference (the caller holds one), but dropped unlocked all the same (T3).
        Some(removed) => drop(removed),
        None => {
            cancel(waiter, Outcome::Cancelled, false);
        }
    }
}

/// A few values inline, the rest on the heap: what one `notify` takes, without allocating for
/// the common `notify(1)`.
struct SmallList<T> {
    len: usize,
    inline: [Option<T>; 4],
    spilled: Vec<T>,
}

impl<T> Default for SmallList<T> {
    fn default() -> Self {
        SmallList {
            len: 0,
            inline: [None, None, None, None],
            spilled: Vec::new(),
        }
    }
}

impl<T> SmallList<T> {
    fn push(&mut self, value: T) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = Some(value),
            None => self.spilled.push(value),
        }
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.inline.iter().flatten().chain(self.spilled.iter())
    }

    fn into_iter(self) -> impl Iterator<Item = T> {
        self.inline.into_iter().flatten().chain(self.spilled)
    }
}

/// The waiters one `notify` removed, woken after the bucket lock is released (and how many it
/// moved instead: they count as woken).
#[derive(Default)]
struct WakeList {
    len: usize,
    list: SmallList<(Arc<Waiter>, bool)>,
    moved: usize,
}

impl WakeList {
    fn push(&mut self, waiter: Arc<Waiter>, unpark: bool) {
        self.list.push((waiter, unpark));
        self.len += 1;
    }

    /// Wakes every waiter in the list, each whatever the others' wakers do; then resumes the
    /// first panic a waker raised, if any (the others' payloads are dropped: one propagates).
    fn wake_all(self) {
        let mut first_panic: Option<Box<dyn Any + Send>> = None;
        for (waiter, unpark) in self.list.into_iter() {
            if let Err(payload) = wake_catching(waiter, unpark) {
                first_panic.get_or_insert(payload);
            }
        }
        if let Some(payload) = first_panic {
            panic::resume_unwind(payload);
        }
    }
}

/// Number of waiters in the whole table (the loom models check it returns to empty).
#[allow(dead_code)] // used by the loom hooks only
pub(crate) fn total_queued() -> usize {
    buckets()
        .iter()
        .map(|b| b.queued.load(Ordering::Relaxed))
        .sum()
}

/// Unparks the thread of every queued waiter without notifying it (loom models: spurious
/// wakeups must never surface as `Ok`).
#[allow(dead_code)] // used by the loom hooks only
pub(crate) fn unpark_all_spuriously() {
    for bucket in buckets() {
        let waiters = lock(&bucket.waiters);
        for waiter in waiters.iter() {
            waiter.unpark_spuriously();
        }
    }
}
