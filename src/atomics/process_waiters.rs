//! `wait` and `notify` on process-shared buffers: a waiter table in the buffer's header, and a
//! Linux futex per waiter (docs/semantics.md X2, X5).
//!
//! This file is the slots' protocol and `notify`; a blocked thread's side of `wait` is in
//! `process_wait.rs`, a future's doorbell in `process_bridge.rs`. It depends on nothing else of
//! the wait machinery, so the waiter (which carries its [`SlotRef`]) can sit above it.
//!
//! The in-process waiter table ([`super::waiter_table`]) cannot see a waiter in another
//! process, and a bare futex on the watched value cannot give JavaScript's contract: the kernel
//! does not say whom a wake reached (so `notify` could not count exactly, nor an interrupt end
//! one particular wait), and a futex is 32 bits wide. So a process-shared buffer carries its
//! own waiter table, in the slots of its header (layout in `region/header.rs`), and each
//! blocked thread sleeps on the futex word of *its own* slot:
//!
//! - a waiter claims a free slot, writes there the element's offset in the buffer, a ticket
//!   (its place in the FIFO order) and its process id, and publishes the slot as queued;
//! - `notify` scans the slots queued on that offset, oldest ticket first (tickets count modulo
//!   2⁶⁴: the oldest is the furthest below the header's next ticket), and takes each one
//!   with a compare-exchange of its state word to "notified", then wakes its futex. The
//!   compare-exchange decides: exactly one of "notified and counted" and "timed out /
//!   interrupted / cancelled" happens to each waiter, whichever process does what;
//! - the waiter, or whoever cancels it, moves the slot out of the queue the same way;
//! - the owner frees the slot once it has read its outcome.
//!
//! So across processes `notify` counts exactly the waiters it woke, and wakes them in ticket
//! (arrival) order, within a process and across processes alike. A waiter's value check reads
//! the element in user space, so `i64` waits are exactly like `i32` ones: the futex is the
//! slot's 32-bit status word, never the watched value.
//!
//! ## The slot's state word
//!
//! Low 32 bits: the status (the futex word); high 32 bits: a generation, raised each time the
//! slot is claimed, so a compare-exchange made with a stale reading of a slot that was freed
//! and claimed again fails instead of touching the new waiter (ABA).
//!
//! ```text
//!  FREE ──claim──▶ CLAIMED ──publish──▶ WAITING ──park──▶ PARKED
//!    ▲                                     │ │               │ │
//!    │             notify (counts it) ◀────┘ └──▶ TIMED_OUT / INTERRUPTED / CANCELLED
//!    │                  │                            │     (the waiter, an interrupter,
//!    └──── release ─────┴────────────────────────────┘      the timer, a dropped future)
//! ```
//!
//! Only the owner moves `WAITING → PARKED` (it is about to sleep on the futex, so a notify
//! must wake it) and releases; everything that leaves the queue does so by compare-exchange
//! from `WAITING` or `PARKED` with the owner's generation, and lowers the header's `waiting`
//! count once. `DOORBELL` marks the slot of an async bridge (`process_bridge.rs`), never a
//! waiter.
//!
//! ## No lost wakeup (A11 across processes)
//!
//! Check and enqueue cannot share a lock with a notifier in another process, so the waiter
//! enqueues first and checks after, in a store-buffering handshake with `notify`:
//!
//! ```text
//! waiter                                  notifier
//! waiting += 1; slot = WAITING            store value            (the caller's)
//! fence(SeqCst)                           fence(SeqCst)
//! load value == expected?                 waiting == 0 ? return 0 : scan the slots
//! ```
//!
//! Either the waiter sees the new value (it withdraws and returns `NotEqual`), or the notifier
//! sees the slot queued. A waiter whose re-check fails but that a notifier took first returns
//! `Ok` and is counted: it was enqueued when the notify came, as if it had checked just before
//! the store. (Before enqueuing, the waiter also checks once, so a mismatch costs no slot.)
//!
//! ## Hostile and dead peers (X5)
//!
//! Every process can write every slot. Whatever it writes, this process only compares what it
//! reads, bounds slot indices by its own slot count, and never sleeps past its own deadline:
//! garbage can make a wait end early (a waiter whose slot was overwritten gets
//! `Err(BadHeader)`, or `Ok` if the garbage reads "notified"; an interrupt or timeout it did
//! not cause is never believed), wake nobody, or be counted wrongly, never more. A process that dies while
//! waiting leaves its slot queued; a notify that takes such a slot finds that its futex woke
//! nobody, asks the kernel whether the owner still exists, and if not frees the slot and does
//! not count it, so a dead waiter never absorbs a wakeup meant for a live one. (A waiter that
//! died in the microseconds between queuing and sleeping can still absorb one notify; and the
//! probe is a process id, which the kernel may have reused.) When every slot is taken, slots of
//! processes that no longer exist are freed before a wait gives up with `Err(TooManyWaiters)`
//! — except a slot only claimed, whose owner word may still name its previous owner (see
//! `reclaim_dead`).
//!
//! A user's own `wait` on a value another process should change, with no timeout, waits for
//! ever if that process died first, exactly as `Atomics.wait` does: give it a timeout.

use std::cmp::Reverse;
use std::mem::ManuallyDrop;

use super::deadline::Deadline;
use super::outcome::Outcome;
use crate::buffer::SharedBuffer;
use crate::element::Waitable;
use crate::error::Error;
use crate::region::{current_process, process_exists, Header, Slot, SLOT_COUNT};
use crate::shim::{fence, Ordering, Parked, LOOM};
use crate::view::ElementRef;

const FREE: u32 = 0;
const CLAIMED: u32 = 1;
const WAITING: u32 = 2;
const PARKED: u32 = 3;
const NOTIFIED: u32 = 4;
const TIMED_OUT: u32 = 5;
const INTERRUPTED: u32 = 6;
const CANCELLED: u32 = 7;
const DOORBELL: u32 = 8;

/// A blocked thread's slot has no doorbell: the notifier wakes the slot itself.
pub(super) const NO_LINK: u32 = u32::MAX;

fn pack(status: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(status)
}

fn status(state: u64) -> u32 {
    state as u32
}

fn generation(state: u64) -> u32 {
    (state >> 32) as u32
}

fn outcome_of(status: u32) -> Option<Outcome> {
    match status {
        NOTIFIED => Some(Outcome::Notified),
        TIMED_OUT => Some(Outcome::TimedOut),
        INTERRUPTED => Some(Outcome::Interrupted),
        CANCELLED => Some(Outcome::Cancelled),
        _ => None,
    }
}

fn status_of(outcome: Outcome) -> u32 {
    match outcome {
        Outcome::Notified => NOTIFIED,
        Outcome::TimedOut => TIMED_OUT,
        Outcome::Interrupted => INTERRUPTED,
        Outcome::Cancelled => CANCELLED,
    }
}

/// The error of a waiter whose slot another process overwrote.
pub(super) fn lost() -> Error {
    Error::BadHeader {
        reason: "another process overwrote this waiter's slot".into(),
    }
}

/// What a slot's owner finds in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// Claimed or queued, still ours.
    Queued { parked: bool },
    /// Out of the queue, with this outcome (not yet released).
    Resolved(Outcome),
    /// Not our generation any more, or a status no process of this crate gives a claimed slot.
    Lost,
}

/// What moving a slot out of the queue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Resolution {
    /// Done; the owner was parked (its futex needs a wake) if `was_parked`.
    Resolved { was_parked: bool },
    /// Someone else moved it first, with this outcome.
    Already(Outcome),
    /// The slot is not ours any more.
    Lost,
}

/// A claimed slot: the buffer (which keeps the mapping alive), the slot's index, and the
/// generation it was claimed with. Carried by the `Waiter` of a process-shared wait, so that
/// interrupters and the timer can reach the slot.
#[derive(Clone)]
pub(crate) struct SlotRef {
    buffer: SharedBuffer,
    /// Below `SLOT_COUNT`; a `u32` keeps the slot reference (inside every `Waiter`) two words.
    index: u32,
    generation: u32,
}

impl SlotRef {
    pub(super) fn header(&self) -> &Header {
        self.buffer
            .process_shared()
            .expect("a slot belongs to a process-shared buffer")
    }

    fn slot(&self) -> Slot<'_> {
        self.header()
            .slot(self.index as usize)
            .expect("a slot's index was checked when it was claimed")
    }

    /// What the slot holds now.
    pub(super) fn seen(&self) -> Seen {
        let state = self.slot().state().load(Ordering::Acquire);
        if generation(state) != self.generation {
            return Seen::Lost;
        }
        match status(state) {
            CLAIMED | WAITING => Seen::Queued { parked: false },
            PARKED => Seen::Queued { parked: true },
            other => outcome_of(other).map_or(Seen::Lost, Seen::Resolved),
        }
    }

    /// Moves the slot out of the queue with outcome `to`, unless someone did first.
    pub(super) fn resolve(&self, to: Outcome) -> Resolution {
        let to = status_of(to);
        let state = self.slot().state();
        let mut current = state.load(Ordering::Acquire);
        loop {
            if generation(current) != self.generation {
                return Resolution::Lost;
            }
            let was_parked = match status(current) {
                WAITING => false,
                PARKED => true,
                other => return outcome_of(other).map_or(Resolution::Lost, Resolution::Already),
            };
            match state.compare_exchange(current, pack(to, self.generation), Ordering::AcqRel) {
                Ok(_) => {
                    self.header().waiting().fetch_sub(1, Ordering::Relaxed);
                    return Resolution::Resolved { was_parked };
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Announces that the owner is about to sleep on the slot's futex (`WAITING → PARKED`);
    /// `false` if the slot is no longer `WAITING`.
    pub(super) fn announce_park(&self) -> bool {
        self.slot()
            .state()
            .compare_exchange(
                pack(WAITING, self.generation),
                pack(PARKED, self.generation),
                Ordering::AcqRel,
            )
            .is_ok()
    }

    /// Sleeps on the slot's futex while it is `PARKED` (any generation: a peer's scribbling
    /// only ends the sleep early), until `deadline`.
    pub(super) fn sleep(&self, deadline: Deadline) -> Parked {
        self.slot().status().futex_wait(PARKED, deadline.instant())
    }

    /// Wakes the owner if it sleeps on the slot's futex.
    pub(super) fn wake_owner(&self) -> usize {
        self.slot().status().futex_wake(1)
    }

    /// Frees a slot that is out of the queue (or only claimed). A slot that is not ours any
    /// more is left alone.
    pub(super) fn release(&self) {
        let state = self.slot().state();
        let current = state.load(Ordering::Acquire);
        if generation(current) == self.generation
            && matches!(
                status(current),
                CLAIMED | NOTIFIED | TIMED_OUT | INTERRUPTED | CANCELLED | DOORBELL
            )
        {
            let _ = state.compare_exchange(current, pack(FREE, self.generation), Ordering::AcqRel);
        }
    }
}

/// A slot this process claimed and filled in, not yet queued; freed if dropped so.
pub(super) struct Claimed(ManuallyDrop<SlotRef>);

impl Claimed {
    /// Claims a free slot of `buffer` (whose header is `header`) for a waiter on byte `offset`
    /// of the data, ringing doorbell `link` when notified (`NO_LINK`: the slot's own futex).
    /// `Err(TooManyWaiters)` if none is free, after freeing those of processes that are gone.
    pub(super) fn new(
        buffer: &SharedBuffer,
        header: &Header,
        offset: u64,
        link: u32,
    ) -> Result<Claimed, Error> {
        // A second pass after freeing the slots of dead processes (it also finds slots freed
        // behind the first pass).
        for attempt in 0..2 {
            if attempt == 1 {
                reclaim_dead(header);
            }
            for index in 0..SLOT_COUNT {
                if let Some(claimed) = Self::try_claim(buffer, header, index, offset, link) {
                    return Ok(claimed);
                }
            }
        }
        Err(Error::TooManyWaiters { slots: SLOT_COUNT })
    }

    fn try_claim(
        buffer: &SharedBuffer,
        header: &Header,
        index: usize,
        offset: u64,
        link: u32,
    ) -> Option<Claimed> {
        let short_index = u32::try_from(index).ok()?;
        let slot = header.slot(index)?;
        let generation = take_free(slot)?;
        slot.offset().store(offset, Ordering::Relaxed);
        let ticket = header.next_ticket().fetch_add(1, Ordering::Relaxed);
        slot.ticket().store(ticket, Ordering::Relaxed);
        slot.owner().store(current_process(), Ordering::Relaxed);
        slot.link().store(link, Ordering::Relaxed);
        raise_slots_used(header, index + 1);
        Some(Claimed(ManuallyDrop::new(SlotRef {
            buffer: buffer.clone(),
            index: short_index,
            generation,
        })))
    }

    /// The claimed slot.
    pub(super) fn slot_ref(&self) -> &SlotRef {
        &self.0
    }

    /// The slot's index.
    pub(super) fn index(&self) -> usize {
        self.0.index as usize
    }

    /// Queues the slot (the waiter's half of the handshake in the module docs): from here on
    /// a notify may take it.
    pub(super) fn publish(self) -> Queued {
        let slot = self.into_inner();
        let header = slot.header();
        header.waiting().fetch_add(1, Ordering::SeqCst);
        slot.slot()
            .state()
            .store(pack(WAITING, slot.generation), Ordering::SeqCst);
        fence(Ordering::SeqCst);
        Queued(ManuallyDrop::new(slot))
    }

    /// Marks the slot as a doorbell (`process_bridge.rs`): never a waiter, its link word is a
    /// ring counter.
    pub(super) fn into_doorbell(self) -> SlotRef {
        let slot = self.into_inner();
        slot.slot().link().store(0, Ordering::Relaxed);
        slot.slot()
            .state()
            .store(pack(DOORBELL, slot.generation), Ordering::Release);
        slot
    }

    fn into_inner(self) -> SlotRef {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the slot is moved out once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        self.0.release();
        // SAFETY: dropped once, here.
        unsafe { ManuallyDrop::drop(&mut self.0) }
    }
}

/// A queued slot, owned by a blocked waiter: on drop it leaves the queue (if nobody took it
/// out) and is freed, however the wait ends.
pub(super) struct Queued(ManuallyDrop<SlotRef>);

impl Queued {
    pub(super) fn slot_ref(&self) -> &SlotRef {
        &self.0
    }

    /// Hands the slot over to whoever frees it next (a future's bridge).
    pub(super) fn into_slot_ref(self) -> SlotRef {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the slot is moved out once.
        unsafe { ManuallyDrop::take(&mut this.0) }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        if let Seen::Queued { .. } = self.0.seen() {
            self.0.resolve(Outcome::Cancelled);
        }
        self.0.release();
        // SAFETY: dropped once, here.
        unsafe { ManuallyDrop::drop(&mut self.0) }
    }
}

/// Claims `slot` if it is free: `CLAIMED` with the next generation, which it returns. The
/// claimer fills in the other fields after this.
fn take_free(slot: Slot<'_>) -> Option<u32> {
    let state = slot.state().load(Ordering::Relaxed);
    if status(state) != FREE {
        return None;
    }
    let generation = generation(state).wrapping_add(1);
    slot.state()
        .compare_exchange(state, pack(CLAIMED, generation), Ordering::Acquire)
        .ok()?;
    Some(generation)
}

/// Raises the header's "slots used" mark to at least `used` (it bounds notify's scan).
fn raise_slots_used(header: &Header, used: usize) {
    let word = header.slots_used();
    let used = used as u64;
    let mut current = word.load(Ordering::Relaxed);
    while current < used {
        match word.compare_exchange(current, used, Ordering::SeqCst) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

/// Frees the slots whose owner process no longer exists.
///
/// Never a `CLAIMED` slot: its claimer writes its process id only after the compare-exchange
/// that claimed it, so until then the owner word still names the slot's previous owner —
/// perhaps a dead process whose slot a notify freed — and the claimer may be alive. Every
/// later status is set by the claimer after it wrote its id (release, or a read-modify-write
/// continuing that release), so the owner read after the state (acquire) is that status's.
/// A process killed between claiming a slot and queuing it (a few instructions) leaves the
/// slot claimed for good.
fn reclaim_dead(header: &Header) {
    if LOOM {
        return; // a model has one process
    }
    let me = current_process();
    for index in 0..SLOT_COUNT {
        let Some(slot) = header.slot(index) else {
            break;
        };
        let state = slot.state().load(Ordering::Acquire);
        if matches!(status(state), FREE | CLAIMED) {
            continue;
        }
        let owner = slot.owner().load(Ordering::Relaxed);
        if owner == me || process_exists(owner) {
            continue;
        }
        let free = pack(FREE, generation(state));
        let freed = slot.state().compare_exchange(state, free, Ordering::AcqRel);
        if freed.is_ok() && matches!(status(state), WAITING | PARKED) {
            header.waiting().fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The byte offset of `element` in `buffer`'s data: how every process names the location
/// (each maps the file at its own address).
pub(super) fn offset_in<T: Waitable>(buffer: &SharedBuffer, element: &ElementRef<'_, T>) -> u64 {
    // SAFETY: offset 0 is within every region.
    let base = unsafe { buffer.region().ptr_at(0) }.address();
    (element.address() - base) as u64
}

/// [`super::notify`] on a process-shared buffer: wakes up to `count` waiters on byte `offset`,
/// in any process, oldest ticket first; returns how many it woke.
pub(crate) fn notify(header: &Header, offset: u64, count: usize) -> usize {
    if count == 0 {
        return 0;
    }
    // The notifier's half of the handshake in the module docs.
    fence(Ordering::SeqCst);
    if header.waiting().load(Ordering::Relaxed) == 0 {
        return 0;
    }
    let used = header.slots_used().load(Ordering::Relaxed);
    let used = usize::try_from(used).map_or(SLOT_COUNT, |used| used.min(SLOT_COUNT));
    let mut queued: Vec<(u64, usize, u64)> = Vec::new();
    for index in 0..used {
        let Some(slot) = header.slot(index) else {
            break;
        };
        let state = slot.state().load(Ordering::Acquire);
        if matches!(status(state), WAITING | PARKED)
            && slot.offset().load(Ordering::Relaxed) == offset
        {
            queued.push((slot.ticket().load(Ordering::Relaxed), index, state));
        }
    }
    // Oldest first, by age: tickets count modulo 2^64 (a buffer may come with the counter
    // anywhere, near its wrap too), so the oldest is the furthest below the next ticket. Read
    // after the slots: each queued slot seen (acquire) was published after its claimer took
    // its ticket, so `next` is past every ticket of a slot this notify can take.
    let next = header.next_ticket().load(Ordering::Relaxed);
    queued.sort_unstable_by_key(|&(ticket, index, _)| (Reverse(next.wrapping_sub(ticket)), index));
    let mut woken = 0;
    for (_, index, state) in queued {
        if woken == count {
            break;
        }
        if let Some(slot) = header.slot(index) {
            if take(header, slot, state) {
                woken += 1;
            }
        }
    }
    woken
}

/// Takes a queued slot for a notify: `true` if it was taken and its waiter will wake (counted),
/// `false` if it had left the queue, or its owner's process no longer exists.
fn take(header: &Header, slot: Slot<'_>, mut state: u64) -> bool {
    let claim = generation(state);
    loop {
        let notified = pack(NOTIFIED, claim);
        match slot
            .state()
            .compare_exchange(state, notified, Ordering::AcqRel)
        {
            Ok(_) => break,
            Err(actual)
                if generation(actual) == claim && matches!(status(actual), WAITING | PARKED) =>
            {
                state = actual
            }
            Err(_) => return false,
        }
    }
    header.waiting().fetch_sub(1, Ordering::Relaxed);
    let link = slot.link().load(Ordering::Relaxed);
    let delivered = if link != NO_LINK {
        ring(header, link)
    } else {
        status(state) != PARKED || slot.status().futex_wake(1) > 0
    };
    if delivered || LOOM || process_exists(slot.owner().load(Ordering::Relaxed)) {
        return true;
    }
    // Its process is gone: it will never wake. Free the slot, and count nobody.
    let _ =
        slot.state()
            .compare_exchange(pack(NOTIFIED, claim), pack(FREE, claim), Ordering::AcqRel);
    false
}

/// Rings doorbell slot `link` (the bridge serving the futures of one process on this buffer,
/// `process_bridge.rs`): `true` if that woke its thread (it may also have been awake already).
fn ring(header: &Header, link: u32) -> bool {
    let Some(doorbell) = usize::try_from(link).ok().and_then(|i| header.slot(i)) else {
        return false;
    };
    if status(doorbell.state().load(Ordering::Acquire)) != DOORBELL {
        return false;
    }
    doorbell.link().fetch_add(1, Ordering::Release);
    doorbell.link().futex_wake(1) > 0
}

/// Number of slots of `buffer`'s header that are not free (the loom models check it returns to
/// zero: every wait frees its slot, however it ends).
#[allow(dead_code)] // used by the loom hooks only
pub(crate) fn slots_taken(buffer: &SharedBuffer) -> usize {
    let Some(header) = buffer.process_shared() else {
        return 0;
    };
    (0..SLOT_COUNT)
        .filter_map(|index| header.slot(index))
        .filter(|slot| status(slot.state().load(Ordering::SeqCst)) != FREE)
        .count()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The id of a process that has ended and been reaped.
    fn a_dead_process() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        child.id()
    }

    // docs/semantics.md X2: only the slots of processes that no longer exist are reclaimed.
    // A live waiter that has just claimed a slot (`CLAIMED`) has not written its process id
    // yet: the owner word still names the slot's previous owner, which may be dead (a notify
    // that found it dead freed the slot and left its id). Reclaiming then would free the live
    // waiter's slot under it; another waiter would claim it, and the two would overwrite each
    // other's fields (the first one's publish turning the second's claim into its own, the
    // second's getting `Err(BadHeader)`).
    #[test]
    #[cfg_attr(miri, ignore)] // memfd, kill: foreign to Miri
    fn a_slot_being_claimed_is_not_reclaimed_for_its_previous_owner() {
        let buffer = SharedBuffer::memfd("x2-reclaim", 8).unwrap();
        let header = buffer.process_shared().unwrap();
        let slot = header.slot(0).unwrap();
        // What a notify leaves after freeing a dead waiter's slot: FREE, the dead id behind.
        slot.owner().store(a_dead_process(), Ordering::Relaxed);
        // A live waiter's claim, at the moment between its compare-exchange and its id.
        let generation = take_free(slot).expect("a free slot");
        // Meanwhile another waiter finds every slot taken and reclaims those of dead processes.
        reclaim_dead(header);
        assert_eq!(
            slot.state().load(Ordering::Relaxed),
            pack(CLAIMED, generation),
            "a live waiter's claim was freed under it"
        );
        assert!(take_free(slot).is_none(), "claimed twice");
        // A slot whose claimer did write its (dead) id is the dead process's: reclaimed.
        let other = header.slot(1).unwrap();
        let generation = take_free(other).unwrap();
        other.owner().store(a_dead_process(), Ordering::Relaxed);
        other
            .state()
            .store(pack(WAITING, generation), Ordering::SeqCst);
        header.waiting().fetch_add(1, Ordering::SeqCst);
        reclaim_dead(header);
        assert_eq!(status(other.state().load(Ordering::Relaxed)), FREE);
        assert_eq!(header.waiting().load(Ordering::Relaxed), 0);
    }
}
