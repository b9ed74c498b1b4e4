//! [`Ring`]: one direction of a message channel, a bounded multi-producer multi-consumer queue
//! (Dmitry Vyukov's design) whose sequence numbers live in a
//! [`SharedBuffer`](crate::SharedBuffer) and which blocks and wakes through the crate's own
//! [`atomics::wait`](crate::atomics::wait) / [`atomics::notify`](crate::atomics::notify).
//!
//! # Layout
//!
//! One array of `u64` words ([`SharedWords`]) holds the `head` (next position to receive), the `tail` (next position
//! to post, with the [`CLOSED`] mark in its top bit) and one *stamp* per slot. The payloads live
//! beside it in `UnsafeCell<MaybeUninit<T>>` slots (arbitrary `T` cannot live in shared bytes).
//!
//! # Stamps
//!
//! A slot's stamp says whose turn it is, as Vyukov's sequence number does. Position `pos` goes
//! to slot `pos % capacity` in the lap that starts at `lap = pos - pos % capacity`; the stamp
//! `2 * lap` means "empty, ready for the post at `pos`", `2 * lap + 2` means "full, holding the
//! message posted at `pos`", and a receiver frees the slot for the next lap by stamping it
//! `2 * (lap + capacity)`. Doubling leaves bit 0 free for the [`WAITING`] flag, and counting
//! from the lap rather than from `pos` makes all-zero memory a valid empty ring (nothing to
//! initialize).
//!
//! # Blocking without paying for it
//!
//! A thread that must wait for a slot (a receiver on an empty ring, a sender on a full one) sets
//! [`WAITING`] in that slot's stamp with a compare-exchange, then `atomics::wait`s on the stamp.
//! The thread that next changes the stamp does so with a swap, and calls `notify` only if the
//! old stamp had [`WAITING`] set. The flag and the swap are read-modify-writes of the same word,
//! so they are totally ordered: either the swap sees the flag (and notifies), or the waiter's
//! compare-exchange fails (and it sees the new stamp). `wait` checks the value under the waiter
//! table's lock (docs/semantics.md A11), so a notify that follows the swap is never lost. When nobody
//! waits, a message costs no `notify` at all.
//!
//! # Closing
//!
//! `close` sets [`CLOSED`] in the tail with one read-modify-write, so a post either claimed its
//! position before the close (and its message will be delivered, unless the receiving port is
//! dropped: see below) or sees the mark and fails.
//! Then, after a `SeqCst` fence, it clears every slot's [`WAITING`] flag and notifies — unless
//! the [`PARKED`] word says no thread ever got as far as parking. A waiter sets `PARKED` and
//! its flag, fences, then checks the mark: with both fences, at least one of the two sees the
//! other, so a waiter either sees the close or is woken by it.
//!
//! # Room to work
//!
//! A post that finds the ring full does not take back each slot the moment a receiver frees
//! it: while it polls, it waits until a stretch of slots from its position on (a quarter of the
//! ring, at most [`MAX_STRETCH`]) is free, then fills them in a burst. Posting into the slot a
//! receiver has just freed keeps the two threads on the same cache lines of stamps and
//! payloads, moving those lines between cores several times per message; a stretch apart,
//! each thread works on lines the other has left. It is only a polling heuristic: a post that
//! finds its slot free never waits, and one whose polling budget runs out parks on its own slot
//! as before. (No polling under loom, so the models never see it.)
//!
//! # A claimed slot is waited for, not skipped
//!
//! A post claims its position (the tail) before it writes the message and stamps the slot full,
//! so the oldest slot can be claimed but not yet full while later ones are. A receive must not
//! skip it (that would break the order, W4) and must not answer "empty" either: the post has
//! claimed its place in the queue, and its caller may already have heard from a later post that
//! returned. So when the oldest slot is not full, a receive reads the tail: if no post claimed
//! the head position (`tail <= head`) the ring is empty (or closed and drained); otherwise the
//! post that claimed it is between its claim and its stamp — it only writes the value, it never
//! blocks — and the receive spins briefly, then yields, until the stamp says full. crossbeam's
//! array channel waits in the same place. Head operations are `Acquire`/`AcqRel`, so a
//! receive that sees a head moved by another receiver also sees the posts that receiver saw
//! (the tail it claimed, the slots it published): "a post that returned before my receive
//! began is seen" holds across threads, not only on x86.
//!
//! # Dropping the receiving port discards its messages
//!
//! A ring has one receiving port. Once that port is dropped nothing can receive from the ring
//! any more, so its `Drop` closes the channel and then [`Ring::discard_all`] drops every message
//! left. After the close the tail is final: each post either claimed a position below it or
//! fails with `Closed` (and gives its message back to the caller, who drops it). The discard
//! takes positions from the head like a receive, until the head reaches the final tail; a
//! position claimed before the close but not yet stamped full is waited for as above (a post
//! that claimed it never gives up: it writes and stamps). So when `discard_all` returns, every
//! message ever accepted was either received or dropped, and nothing is posted later. Dropping
//! a message runs user code that may panic: a guard drops the rest and the first panic
//! propagates (a second panic aborts, as for a `Vec`). The other direction of the channel is
//! untouched: its port may still receive what was posted before the close.

use std::mem::{self, MaybeUninit};
use std::time::Instant;

use crate::atomics::{SharedWords, WaitResult, Word};
use crate::error::Error;
use crate::shim::{fence, thread, Ordering, UnsafeCell, LOOM};

/// Bit 0 of a stamp: a thread is (about to be) blocked on this slot; whoever changes the
/// stamp next must `notify`.
const WAITING: u64 = 1;
/// Top bit of the tail: the ring is closed; no post may claim a position any more.
const CLOSED: u64 = 1 << 63;

/// Words between the head and the tail and between the tail and the stamps: a cache line in a
/// real build (so posting and receiving threads do not fight over one line); none under loom
/// (each word is a model object there).
const PAD: usize = if LOOM { 1 } else { 8 };
const HEAD: usize = 0;
const TAIL: usize = PAD;
/// Non-zero once any thread has parked on the ring: `close` skips its scan of the stamps
/// while it is zero.
const PARKED: usize = TAIL + 1;
const STAMPS: usize = 2 * PAD + 1;

/// How often a blocked post or receive polls (with a spin hint, then a yield) before it parks
/// through `atomics::wait`, which itself spins briefly before sleeping. Not under loom, where
/// parking is the model.
const POLLS: u32 = 11;
/// Polls that spin (2^n spin hints for poll n) before the rest yield the CPU.
const SPINNING_POLLS: u32 = 7;

/// The most slots a post that found the ring full waits, while it polls, to see free before it
/// posts again (a quarter of the ring if that is fewer): see "Room to work" in the module docs.
const MAX_STRETCH: u64 = 256;

/// The smallest capacity the stamp scheme supports (with one slot, "full at `pos`" and "empty
/// for `pos + 1`" would be the same stamp).
pub(crate) const MIN_CAPACITY: usize = 2;
/// The largest capacity a ring accepts.
pub(crate) const MAX_CAPACITY: usize = 1 << 24;

/// Why a non-blocking attempt did not complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// The slot at `index`, for position `pos`, is not ready; its stamp was `stamp` when last
    /// looked at.
    Slot { pos: u64, index: usize, stamp: u64 },
    /// The ring is closed: no post may succeed, or no message is left to receive.
    Closed,
}

/// One direction of a channel: a bounded FIFO of `T`.
pub(crate) struct Ring<T> {
    /// Head, tail, the parked mark and the stamps (see the module docs' layout).
    words: SharedWords<u64>,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: u64,
}

// SAFETY: a `Ring` owns the `T`s in its slots and hands each one to exactly one receiver (the
// stamps give each slot to one thread at a time), so sending the ring moves `T`s between
// threads: `T: Send` is all that needs.
unsafe impl<T: Send> Send for Ring<T> {}
// SAFETY: shared access only moves `T`s in and out of slots, one owner at a time (the stamp
// protocol above); no `&T` is ever handed out, so `T: Sync` is not needed.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Ring<T> {
    /// A ring of at least `capacity` slots (rounded up to a power of two, at least
    /// [`MIN_CAPACITY`]); `Err` past [`MAX_CAPACITY`] or if memory is refused.
    pub(crate) fn new(capacity: usize) -> Result<Ring<T>, Error> {
        if capacity > MAX_CAPACITY {
            return Err(Error::ExceedsMax {
                requested: capacity,
                max: MAX_CAPACITY,
            });
        }
        let capacity = capacity.max(MIN_CAPACITY).next_power_of_two();
        let slots = allocate_slots(capacity)?;
        let words = SharedWords::new(STAMPS + capacity)?; // zeroed: every slot empty for lap 0
        Ok(Ring {
            words,
            slots,
            mask: capacity as u64 - 1,
        })
    }

    /// The number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn word(&self, index: usize) -> Word<'_, u64> {
        self.words.get(index)
    }

    fn stamp(&self, index: usize) -> Word<'_, u64> {
        self.word(STAMPS + index)
    }

    fn index_of(&self, pos: u64) -> usize {
        (pos & self.mask) as usize
    }

    /// The stamp of the slot for `pos` while it waits for the post at `pos`.
    fn empty_stamp(&self, pos: u64) -> u64 {
        2 * (pos & !self.mask)
    }

    /// The stamp of the slot for `pos` once it holds the message posted at `pos`.
    fn full_stamp(&self, pos: u64) -> u64 {
        self.empty_stamp(pos) + 2
    }

    /// Posts `value` if a slot is free; otherwise gives it back with what blocked it.
    pub(crate) fn try_push(&self, value: T) -> Result<(), (T, Blocked)> {
        let tail_word = self.word(TAIL);
        let mut tail = tail_word.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err((value, Blocked::Closed));
            }
            let index = self.index_of(tail);
            let stamp_cell = self.stamp(index);
            let stamp = stamp_cell.load(Ordering::Acquire);
            let lag = lag(stamp, self.empty_stamp(tail));
            if lag == 0 {
                // The slot is free for `tail`: claim the position.
                if let Err(seen) = tail_word.compare_exchange(tail, tail + 1, Ordering::Relaxed) {
                    tail = seen;
                    continue;
                }
                // SAFETY: the claim made this thread the slot's only owner until it stamps
                // the slot full below; the receiver that emptied it last lap is done with it
                // (its release stamp was read with Acquire above).
                self.slots[index].with_mut(|slot| unsafe { (*slot).write(value) });
                let old = stamp_cell.swap(self.full_stamp(tail), Ordering::Release);
                if old & WAITING != 0 {
                    self.wake(index);
                }
                return Ok(());
            } else if lag < 0 {
                // Still full from the previous lap.
                return Err((
                    value,
                    Blocked::Slot {
                        pos: tail,
                        index,
                        stamp,
                    },
                ));
            } else {
                // Another sender claimed `tail` meanwhile.
                tail = tail_word.load(Ordering::Relaxed);
            }
        }
    }

    /// Takes the oldest message if one is queued (waiting the moment it takes a post that
    /// claimed the oldest slot to fill it); otherwise says what to wait for.
    pub(crate) fn try_pop(&self) -> Result<T, Blocked> {
        self.take(true)
    }

    /// `try_pop`; with `check_closed == false` an empty ring is always `Blocked::Slot`, without
    /// reading the tail (a line every post writes): what a receiver polling for the next
    /// message wants.
    fn take(&self, check_closed: bool) -> Result<T, Blocked> {
        let head_word = self.word(HEAD);
        let mut head = head_word.load(Ordering::Acquire);
        let mut snoozes = 0;
        loop {
            let index = self.index_of(head);
            let stamp_cell = self.stamp(index);
            let stamp = stamp_cell.load(Ordering::Acquire);
            let lag = lag(stamp, self.full_stamp(head));
            if lag == 0 {
                if let Err(seen) = head_word.compare_exchange(head, head + 1, Ordering::AcqRel) {
                    head = seen;
                    continue;
                }
                // SAFETY: the stamp (read with Acquire, pairing with the sender's Release)
                // says the slot holds the message posted at `head`, and winning the claim made
                // this thread its only reader; it is read exactly once, then stamped free.
                let value = self.slots[index].with(|slot| unsafe { (*slot).assume_init_read() });
                let free = self.empty_stamp(head + self.capacity() as u64);
                let old = stamp_cell.swap(free, Ordering::Release);
                if old & WAITING != 0 {
                    self.wake(index);
                }
                return Ok(value);
            } else if lag < 0 {
                // Nothing published at `head` yet.
                if !check_closed {
                    return Err(Blocked::Slot {
                        pos: head,
                        index,
                        stamp,
                    });
                }
                let tail = self.word(TAIL).load(Ordering::Acquire);
                let claimed = tail & !CLOSED;
                if claimed <= head {
                    // No post claimed `head`: empty, or closed and drained.
                    if tail & CLOSED != 0 && claimed == head {
                        return Err(Blocked::Closed);
                    }
                    return Err(Blocked::Slot {
                        pos: head,
                        index,
                        stamp,
                    });
                }
                // A post claimed `head` and is writing it: wait for its stamp (module docs).
                snooze(&mut snoozes);
                head = head_word.load(Ordering::Acquire);
            } else {
                // Another receiver took `head` meanwhile.
                head = head_word.load(Ordering::Acquire);
            }
        }
    }

    /// Posts `value`, waiting while the ring is full, until `deadline`.
    pub(crate) fn push(&self, mut value: T, deadline: Option<Instant>) -> Result<(), (T, Error)> {
        let mut polls = 0;
        loop {
            match self.try_push(value) {
                Ok(()) => return Ok(()),
                Err((back, Blocked::Closed)) => return Err((back, Error::Closed)),
                Err((back, Blocked::Slot { pos, index, stamp })) => {
                    value = back;
                    if poll_again(&mut polls) {
                        self.poll_for_room(pos, &mut polls);
                        continue;
                    }
                    if let Err(error) = self.park(index, stamp, deadline, |ring| ring.is_closed()) {
                        return Err((value, error));
                    }
                }
            }
        }
    }

    /// Receives the oldest message, waiting while the ring is empty, until `deadline`.
    pub(crate) fn pop(&self, deadline: Option<Instant>) -> Result<T, Error> {
        let mut polls = 0;
        loop {
            // While polling, only look for the message; the first look and every look after
            // parking also check for the close.
            match self.take(polls == 0 || polls >= POLLS) {
                Ok(value) => return Ok(value),
                Err(Blocked::Closed) => return Err(Error::Closed),
                Err(Blocked::Slot { index, stamp, .. }) => {
                    if poll_again(&mut polls) {
                        continue;
                    }
                    self.park(index, stamp, deadline, |ring| ring.is_drained())?;
                }
            }
        }
    }

    /// A post found the ring full at `pos`: while its polls still spin, waits until the
    /// receivers have freed a stretch of slots from `pos` on, not just the one at `pos` ("Room
    /// to work"). The polls that yield the CPU wait for `pos` alone, as before: on a busy
    /// machine a yield can hand the CPU to another process for a whole time slice.
    fn poll_for_room(&self, pos: u64, polls: &mut u32) {
        let stretch = (self.capacity() as u64 / 4).clamp(1, MAX_STRETCH);
        let last = pos + stretch - 1;
        let stamp_cell = self.stamp(self.index_of(last));
        // Only a hint (the post that follows checks its slot with Acquire): Relaxed.
        while lag(stamp_cell.load(Ordering::Relaxed), self.empty_stamp(last)) < 0 {
            if *polls >= SPINNING_POLLS || !poll_again(polls) {
                return;
            }
        }
    }

    /// Blocks on slot `index` while its stamp is `stamp`, unless `done` (checked after the
    /// flag is set) says there is nothing to wait for. Returns when the caller should retry.
    fn park(
        &self,
        index: usize,
        stamp: u64,
        deadline: Option<Instant>,
        done: impl Fn(&Self) -> bool,
    ) -> Result<(), Error> {
        let stamp_cell = self.stamp(index);
        let flagged = stamp | WAITING;
        self.word(PARKED).fetch_or(1, Ordering::SeqCst);
        if stamp & WAITING == 0
            && stamp_cell
                .compare_exchange(stamp, flagged, Ordering::SeqCst)
                .is_err()
        {
            return Ok(()); // the stamp moved on: retry
        }
        // Pairs with the fence in `close`: we see its mark, or it sees `PARKED` and our flag.
        fence(Ordering::SeqCst);
        if done(self) {
            // Our flag may have been set after `close` cleared the flags and woke the slot: take
            // it back and wake the slot again. Left set, it would be the flag another waiter
            // set before the close (ABA): that waiter, not yet asleep when `close` woke the
            // slot, would then find the value it expects and sleep with nobody left to wake it.
            self.unflag_and_wake(index);
            return Ok(()); // the retry reports `Closed`
        }
        match stamp_cell.wait_until(flagged, deadline)? {
            WaitResult::TimedOut => Err(Error::Timeout),
            WaitResult::Ok | WaitResult::NotEqual => Ok(()),
        }
    }

    fn wake(&self, index: usize) {
        self.stamp(index).notify(None);
    }

    /// Whether the ring was closed (posts fail; receives drain what is left).
    pub(crate) fn is_closed(&self) -> bool {
        self.word(TAIL).load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Closed, and every message posted before the close has been received.
    fn is_drained(&self) -> bool {
        let tail = self.word(TAIL).load(Ordering::SeqCst);
        tail & CLOSED != 0 && tail & !CLOSED == self.word(HEAD).load(Ordering::SeqCst)
    }

    /// Drops every message left in the ring, which must be closed and have no receiver any
    /// more (its port is being dropped): see "Dropping the receiving port" in the module docs.
    /// If a message's `Drop` panics, the rest are still dropped and the panic propagates.
    pub(crate) fn discard_all(&self) {
        /// On unwinding out of a message's `Drop`, drops the messages after it.
        struct DiscardRest<'a, T>(&'a Ring<T>);
        impl<T> Drop for DiscardRest<'_, T> {
            fn drop(&mut self) {
                self.0.discard_all();
            }
        }

        debug_assert!(self.is_closed(), "discard_all on an open ring");
        let rest = DiscardRest(self);
        // On a closed ring `take` ends with `Closed` once the head reaches the final tail; it
        // waits for a position claimed before the close. (`Slot` would mean an open ring.)
        while let Ok(message) = self.take(true) {
            drop(message);
        }
        mem::forget(rest);
    }

    /// Closes the ring and wakes every thread blocked on it. Idempotent.
    pub(crate) fn close(&self) {
        let old = self.word(TAIL).fetch_or(CLOSED, Ordering::SeqCst);
        if old & CLOSED != 0 {
            return;
        }
        // Pairs with the fence in `park`.
        fence(Ordering::SeqCst);
        if self.word(PARKED).load(Ordering::SeqCst) == 0 {
            return; // nobody ever parked: no flag to clear, nobody to wake
        }
        for index in 0..self.capacity() {
            self.unflag_and_wake(index);
        }
    }

    /// Clears slot `index`'s [`WAITING`] flag and, if it was set, wakes the slot's waiters.
    fn unflag_and_wake(&self, index: usize) {
        let stamp_cell = self.stamp(index);
        let mut stamp = stamp_cell.load(Ordering::SeqCst);
        while stamp & WAITING != 0 {
            match stamp_cell.compare_exchange(stamp, stamp & !WAITING, Ordering::SeqCst) {
                Ok(_) => {
                    self.wake(index);
                    break;
                }
                Err(seen) => stamp = seen,
            }
        }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // No other thread can touch the ring now, so every claimed position was published.
        // Usually its receiving port discarded what was left when it was dropped; a port that
        // was leaked (`mem::forget`) did not. Mark it closed (without waking anyone: nobody
        // is left) so `discard_all` stops at the tail.
        self.word(TAIL).fetch_or(CLOSED, Ordering::Relaxed);
        self.discard_all();
    }
}

/// `capacity` empty slots, or `Err(AllocationFailed)` if the allocator refuses them (never an
/// abort: a large capacity of large messages is a request that may fairly fail).
fn allocate_slots<T>(capacity: usize) -> Result<Box<[UnsafeCell<MaybeUninit<T>>]>, Error> {
    let mut slots = Vec::new();
    // `try_reserve_exact` checks the byte count for overflow and asks for nothing when the
    // slots are zero-sized.
    if let Err(refused) = slots.try_reserve_exact(capacity) {
        return Err(Error::AllocationFailed {
            bytes: capacity.saturating_mul(mem::size_of::<UnsafeCell<MaybeUninit<T>>>()),
            reason: format!("{capacity} message slots: {refused}"),
        });
    }
    slots.extend((0..capacity).map(|_| UnsafeCell::new(MaybeUninit::uninit())));
    Ok(slots.into_boxed_slice())
}

/// How far `stamp` is past `expected`, the stamp a thread wants to see: 0 when the slot is
/// ready for it, negative while the slot is a step behind (not yet emptied or filled), positive
/// when other threads already moved it on. Ignores the [`WAITING`] flag.
fn lag(stamp: u64, expected: u64) -> i64 {
    (stamp & !WAITING).wrapping_sub(expected) as i64
}

/// Whether to look at the ring once more, after a short, growing pause (spin hints first,
/// then yielding the CPU), before parking. Never under loom.
fn poll_again(polls: &mut u32) -> bool {
    if LOOM || *polls >= POLLS {
        return false;
    }
    pause(*polls);
    *polls += 1;
    true
}

/// A pause before looking again at a slot that another thread is a few instructions from
/// stamping (no parking: that thread never blocks before it stamps). Under loom, a yield, which
/// tells the model to run the other threads first.
fn snooze(snoozes: &mut u32) {
    if LOOM {
        thread::yield_now();
        return;
    }
    pause(*snoozes);
    *snoozes = snoozes.saturating_add(1);
}

/// Pause number `n` of a growing series: 2^n spin hints for the first [`SPINNING_POLLS`], then
/// a yield of the CPU.
fn pause(n: u32) {
    if n < SPINNING_POLLS {
        for _ in 0..(1u32 << n) {
            std::hint::spin_loop();
        }
    } else {
        thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // 2^24 stamps to initialise: seconds natively, hours interpreted.
    #[cfg_attr(miri, ignore)]
    fn zero_sized_messages_need_no_slot_memory_even_at_the_largest_capacity() {
        let ring = Ring::<()>::new(MAX_CAPACITY).unwrap();
        assert_eq!(ring.capacity(), MAX_CAPACITY);
        ring.try_push(()).unwrap();
        assert_eq!(ring.try_pop(), Ok(()));
    }

    #[test]
    fn slots_whose_byte_count_overflows_are_an_error_not_a_panic() {
        // 2^24 slots of 2^40 bytes: 2^64 bytes, one more than `usize` holds.
        let result = Ring::<[u8; 1 << 40]>::new(MAX_CAPACITY);
        assert!(
            matches!(
                result,
                Err(Error::AllocationFailed {
                    bytes: usize::MAX,
                    ..
                })
            ),
            "{:?}",
            result.err()
        );
    }
}
