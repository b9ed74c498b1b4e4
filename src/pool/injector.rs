//! [`Injector`]: the ring a submitter pushes plain tasks to without taking the pool's lock,
//! and the flag that says when it may ([`Injector::is_open`]).
//!
//! # Why
//!
//! In bulk the submitting thread is the pool's bottleneck, and a third of its time went to the
//! one scheduler lock it shares with every worker taking a task. While every worker slot is
//! occupied and none is idle, a new task needs no scheduling decision at all: a busy worker
//! looks at the queues before it goes idle (scheduler I1). So in that state a plain task
//! (normal priority, no key) goes to this ring instead, and whoever next takes the lock moves
//! it to the end of the normal-priority queue ([`Injector::drain`]), where it is counted as if
//! it had been queued under the lock. A push costs a few atomics on lines the workers read
//! once per drain, not a lock the workers fight for.
//!
//! # Protocol (loom: `loom_pool_fast_submit`)
//!
//! - **F1 (the gate).** `open` is written only under the pool lock. It is `true` only while
//!   the state under the lock allows a push without a decision: the pool is open, every slot is
//!   occupied, no worker is idle, and the queue is unbounded (`MaxQueue::Unbounded`; a bound is
//!   checked against the count under the lock, which a push to the ring would pass by).
//!   Whoever makes it `false` stores `false` *first*, then drains the ring under the same lock
//!   and makes sure a thread takes each task it drained (ring an idle worker, start a thread).
//! - **F2 (the pusher).** A push publishes its task, then reads `open` again (a `SeqCst`
//!   fence between, as between F1's store and its drain).
//!   If it reads `true`, its publication precedes any later `false` store, so the drain after
//!   that store sees the task (F1): it is done. If it reads `false`, it takes the lock itself
//!   (which drains) and makes sure of a taker as a locked submission would, or takes the task
//!   back if the pool no longer accepts tasks. Either way no task is stranded.
//! - **F3 (order).** Tickets are published in order (a pusher waits for the one before it to
//!   publish, a few instructions unless it was preempted), so a drain takes every task whose
//!   push returned, oldest first, and a locked normal-priority submission (which drains first)
//!   stays behind every earlier push: FIFO within the priority holds.
//! - **F4 (slots).** A pusher reserves a ticket only while fewer than [`CAPACITY`] tickets are
//!   undrained, so it never writes a slot the drain has not emptied; a full ring sends the
//!   task down the locked path. Pushers check against a copy of the drained count on their
//!   own line (`drained_seen`), which is never ahead of the drain's, and read the drain's
//!   count (on a line every drain writes) only when the copy says the ring may be full: an
//!   old copy can only refuse a ticket, never grant one the real count would not. Both reads
//!   and the copy's store are `Acquire`/`Release`, so a pusher that checks against the copy
//!   also sees the slot emptied by the drain that advanced the count it copied.
//! - **F5 (room).** A drain takes only as many tasks as the normal-priority queue has room for
//!   (the scheduler grows it first if it can, with `try_reserve`: a push that cannot grow
//!   must not abort), oldest first; the rest stay published in the ring, in order, as its
//!   *backlog*, and a later drain takes them once there is room. The ring is their storage
//!   meanwhile: a task a pusher saw accepted (F2) is never lost for lack of memory. A pusher
//!   refused under the lock takes its task back out of the backlog if it is still there
//!   (leaving its slot empty: the drain skips it).

use std::collections::VecDeque;

use super::job::JobRef;
use crate::shim::{
    fence, thread, AtomicBool, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
    UnsafeCell, LOOM,
};

/// Tasks the ring holds (two under loom: fewer model objects).
pub(super) const CAPACITY: usize = if LOOM { 2 } else { 512 };

/// A value on cache lines of its own (two: CPUs often fetch lines in pairs).
#[repr(align(128))]
pub(super) struct Padded<T>(pub(super) T);

/// What only the holder of the pool lock reads and writes: its copies of the gate and of the
/// drained count, so a locked section reads no shared line to learn them (and a loom model
/// has fewer atomic steps to interleave).
#[derive(Default)]
pub(super) struct LockedSide {
    open: bool,
    drained: usize,
    /// The last drain left tasks in the ring (F5).
    backlog: bool,
}

impl LockedSide {
    /// Whether the last drain left tasks in the ring for lack of room (F5).
    pub(super) fn backlog(&self) -> bool {
        self.backlog
    }
}

/// The ring (see the module docs).
pub(super) struct Injector {
    /// F1: whether a push needs no lock. Read by every push; written rarely, under the lock.
    open: Padded<AtomicBool>,
    /// The next ticket to hand out, and the pushers' copy of `drained` (F4); then the tickets
    /// below `published` are written (F3). Written by pushers.
    reserved: Padded<PushSide>,
    published: Padded<AtomicUsize>,
    /// Tickets below this were drained. Written only by the drain, under the pool lock.
    drained: Padded<AtomicUsize>,
    slots: Box<[UnsafeCell<Option<JobRef>>]>,
}

/// What only pushers write, on one line.
struct PushSide {
    reserved: AtomicUsize,
    /// A value `drained` had (F4): never ahead of it.
    drained_seen: AtomicUsize,
}

// SAFETY: a slot is written only by the pusher holding its ticket, before it publishes it,
// and read only by the drain (under the pool lock), after it saw the ticket published and
// before it marks the ticket drained, which the next pusher of that slot waits for (F4).
unsafe impl Sync for Injector {}

impl Injector {
    pub(super) fn new() -> Injector {
        Injector {
            open: Padded(AtomicBool::new(false)),
            reserved: Padded(PushSide {
                reserved: AtomicUsize::new(0),
                drained_seen: AtomicUsize::new(0),
            }),
            published: Padded(AtomicUsize::new(0)),
            drained: Padded(AtomicUsize::new(0)),
            slots: (0..CAPACITY).map(|_| UnsafeCell::new(None)).collect(),
        }
    }

    /// Whether a push may skip the lock: a hint the pusher reads before pushing (`false` sends
    /// it down the locked path at once). The decision is [`push`](Injector::push)'s.
    pub(super) fn is_open(&self) -> bool {
        self.open.0.load(Relaxed)
    }

    /// Sets the gate (`side`: the pool state's); the caller holds the pool lock, and after
    /// storing `false` drains the ring
    /// and finds a taker for every task it drained (F1). Returns whether it changed.
    pub(super) fn set_open(&self, side: &mut LockedSide, open: bool) -> bool {
        if side.open == open {
            return false;
        }
        side.open = open;
        self.open.0.store(open, Relaxed);
        // F1 against F2's fence: the drain that follows sees every push whose pusher then read
        // the gate open. (Fences, not `SeqCst` accesses: loom checks this pattern only with
        // fences.)
        fence(SeqCst);
        true
    }

    /// Publishes `job` (F3, F4), or gives it back if the ring is full. `Ok(true)`: the gate
    /// was still open after the publication, so the task will be drained and taken (F2);
    /// `Ok(false)`: it was shut, and the pusher must settle the task under the lock.
    pub(super) fn push(&self, job: JobRef) -> Result<bool, JobRef> {
        let side = &self.reserved.0;
        let mut ticket = side.reserved.load(Relaxed);
        // Acquire (here and below): the drain emptied the slot before it advanced `drained`
        // past it, and the copy was stored after such a load (F4).
        let mut drained = side.drained_seen.load(Acquire);
        loop {
            if ticket.wrapping_sub(drained) >= CAPACITY {
                // The copy may be old: look at the drain's count itself.
                drained = self.drained.0.load(Acquire);
                if ticket.wrapping_sub(drained) >= CAPACITY {
                    return Err(job);
                }
                side.drained_seen.store(drained, Release);
            }
            match side.reserved.compare_exchange_weak(
                ticket,
                ticket.wrapping_add(1),
                Relaxed,
                Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => ticket = actual,
            }
        }
        self.slots[ticket % CAPACITY].with_mut(|slot| {
            // SAFETY: the ticket is this pusher's alone, and the drain is done with its slot
            // (F4, checked above): it left `None`, so writing over it (without reading the
            // line a worker wrote last) drops nothing; nobody reads the slot before the ticket
            // is published.
            unsafe { slot.write(Some(job)) }
        });
        let mut spins = 0u32;
        while self.published.0.load(Acquire) != ticket {
            // The pusher before us is between its reservation and its publication.
            spins = spins.saturating_add(1);
            if LOOM || spins > 64 {
                thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        // Release: the slot's write, and every earlier pusher's, which this one acquired,
        // come with the ticket.
        self.published.0.store(ticket.wrapping_add(1), Release);
        // F2 against F1's fence in `set_open`.
        fence(SeqCst);
        Ok(self.open.0.load(Relaxed))
    }

    /// The count of published tickets: a worker polling for work watches it.
    pub(super) fn published(&self) -> usize {
        self.published.0.load(Relaxed)
    }

    /// Moves the published tasks, oldest first, to the end of `queue`, as many as `room` makes
    /// room for there (given the queue and how many wait: F5); returns how many it moved. The
    /// caller holds the pool lock (one drain at a time) and passes the state's `side`.
    pub(super) fn drain(
        &self,
        side: &mut LockedSide,
        queue: &mut VecDeque<JobRef>,
        room: impl FnOnce(&mut VecDeque<JobRef>, usize) -> usize,
    ) -> usize {
        let start = side.drained;
        let published = self.published.0.load(Acquire);
        if published == start {
            return 0; // and no backlog: it would be published
        }
        let waiting = published.wrapping_sub(start);
        let count = room(queue, waiting).min(waiting);
        side.backlog = count < waiting;
        if count == 0 {
            return 0;
        }
        // `push_back` never grows the queue: `room` made room.
        self.take_published(side, count, |job| queue.push_back(job))
    }

    /// Takes every published task out of the ring, oldest first, into `out`, whatever room the
    /// queue has: `destroy` (which took the queues' storage away) destroys the backlog (F5)
    /// from there. The ring holds at most [`CAPACITY`] published tasks (F4), so `out` holds
    /// them all without allocating. The caller holds the pool lock and passes the state's
    /// `side`. Returns how many it took (a slot a pusher emptied, F5, counts none).
    pub(super) fn take_all(
        &self,
        side: &mut LockedSide,
        out: &mut [Option<JobRef>; CAPACITY],
    ) -> usize {
        let published = self.published.0.load(Acquire);
        let count = published.wrapping_sub(side.drained);
        side.backlog = false;
        let mut index = 0;
        self.take_published(side, count, |job| {
            out[index] = Some(job);
            index += 1;
        })
    }

    /// Takes the next `count` published tasks out of their slots, oldest first, and hands each
    /// to `put`; returns how many it handed (a slot whose pusher took its task back, F5,
    /// hands none). The caller holds the pool lock (one taker at a time) and read `published`
    /// with `Acquire` at least `count` tickets past `side.drained`.
    fn take_published(
        &self,
        side: &mut LockedSide,
        count: usize,
        mut put: impl FnMut(JobRef),
    ) -> usize {
        let end = side.drained.wrapping_add(count);
        let mut taken = 0;
        let mut ticket = side.drained;
        while ticket != end {
            let job = self.slots[ticket % CAPACITY].with_mut(|slot| {
                // SAFETY: the ticket is published (its write happened before the caller's
                // `Acquire` load) and not yet drained, so no pusher touches its slot (F4).
                unsafe { (*slot).take() }
            });
            if let Some(job) = job {
                put(job);
                taken += 1;
            }
            ticket = ticket.wrapping_add(1);
        }
        side.drained = end;
        self.drained.0.store(end, Release);
        taken
    }

    /// Takes the task at `address` (a [`JobRef::as_ptr`]) back out of the ring if a drain left
    /// it there (F5); the caller holds the pool lock and refuses the task.
    pub(super) fn take_back(&self, side: &LockedSide, address: *const ()) -> Option<JobRef> {
        let published = self.published.0.load(Acquire);
        let mut ticket = side.drained;
        while ticket != published {
            let job = self.slots[ticket % CAPACITY].with_mut(|slot| {
                // SAFETY: as in `take_published`: the ticket is published and not drained, and
                // only the lock holder reads or writes its slot until it is.
                let slot = unsafe { &mut *slot };
                match slot {
                    Some(job) if job.as_ptr() == address => slot.take(),
                    _ => None,
                }
            });
            if job.is_some() {
                return job;
            }
            ticket = ticket.wrapping_add(1);
        }
        None
    }
}
