//! [`Ring`]: one direction of a message channel, a bounded multi-producer multi-consumer queue
//! (Dmitry Vyukov's design) whose head and tail live in a [`SharedBuffer`](crate::SharedBuffer),
//! so that it blocks and wakes through the crate's own [`atomics::wait`](crate::atomics::wait) /
//! [`atomics::notify`](crate::atomics::notify) on them.
//!
//! # Layout
//!
//! Two words of a [`SharedWords`], a cache line apart: the `head` (next position to receive)
//! and the `tail` (next position to post). Each carries flags in its top bits: [`CLOSED`] (set
//! by `close`, never cleared) and [`ASLEEP`] (a thread sleeps on the word). The slots are an
//! array of [`Slot`]s, each a *stamp* beside the message it guards (arbitrary `T` cannot live in
//! shared bytes), so the thread that takes a message finds its stamp and its payload on the
//! same cache line: a message moves one line between the cores, not two.
//!
//! # Stamps
//!
//! A slot's stamp says whose turn it is, as Vyukov's sequence number does. Position `pos` goes
//! to slot `pos % capacity` in the lap that starts at `lap = pos - pos % capacity`; the stamp
//! `lap` means "empty, ready for the post at `pos`", `lap + 1` means "full, holding the message
//! posted at `pos`", and a receiver frees the slot for the next lap by stamping it
//! `lap + capacity`. Counting from the lap rather than from `pos` makes zero a valid empty
//! ring. Stamps are written with plain `Release` stores: nobody sleeps on a stamp.
//!
//! # Blocking without paying for it
//!
//! A post claims its position by moving the tail with a compare-exchange, a receive by moving
//! the head; a thread that must wait sleeps on the word the thread it waits for will move. A
//! receiver that finds the ring empty sets [`ASLEEP`] in the tail with a `fetch_or`, and
//! sleeps (`atomics::wait`) on the tail unless the value it got back shows that a post already
//! claimed the position it wants (or the close): the next post's compare-exchange must then
//! see the flag, clears it, and calls `notify` once its message is stamped. A sender that finds
//! the ring full does the same on the head, which the receive that frees its slot moves. The
//! flag and the claim are read-modify-writes of one word, so they are totally ordered: either
//! the claim sees the flag (and notifies), or the flag's `fetch_or` sees the claim (and the
//! thread does not sleep). `wait` checks the value under the waiter table's lock
//! (docs/semantics.md A11), so a notify that follows the claim is never lost. When nobody
//! waits, a message costs no `notify` and no read-modify-write beyond its claim.
//!
//! # Closing
//!
//! `close` sets [`CLOSED`] in the tail, then in the head, each with one read-modify-write, and
//! notifies a word whose old value had [`ASLEEP`]. A post either claimed its position before
//! the close (and its message will be delivered, unless the receiving port is dropped: see
//! below) or sees the mark and fails. A thread about to sleep sees `CLOSED` in the value its
//! `fetch_or` returns, or `close` sees its flag; since `CLOSED` is never cleared, the word a
//! sleeper waits on has changed for good, so it cannot miss the wake (no ABA).
//!
//! # Room to work
//!
//! A post that finds the ring full does not take back each slot the moment a receiver frees
//! it: while it polls, it waits until a stretch of slots from its position on (a quarter of the
//! ring, at most [`MAX_STRETCH`]) is free, then fills them in a burst. Posting into the slot a
//! receiver has just freed keeps the two threads on the same cache lines, moving those lines
//! between cores several times per message; a stretch apart, each thread works on lines the
//! other has left. It is only a polling heuristic: a post that finds its slot free never
//! waits, and one whose polling budget runs out sleeps on the head as above. (No polling under
//! loom, so the models never see it.)
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
use crate::shim::{thread, AtomicU64, Ordering, UnsafeCell, LOOM};

/// Top bit of the head and the tail: the ring is closed; no post may claim a position any
/// more, and nobody may fall asleep on the word.
const CLOSED: u64 = 1 << 63;
/// A thread sleeps (or is about to) on this word: whoever moves it next must `notify`.
const ASLEEP: u64 = 1 << 62;
/// The position bits of the head and the tail (2^62 messages: centuries at a billion a second).
const POSITION: u64 = ASLEEP - 1;

/// Words from the head to the tail: a cache line in a real build (so posting and receiving
/// threads do not fight over one line); none under loom (each word is a model object there).
const PAD: usize = if LOOM { 1 } else { 8 };
const HEAD: usize = 0;
const TAIL: usize = PAD;
const WORDS: usize = PAD + 1;

/// How often a blocked post or receive polls (with a spin hint, then a yield) before it sleeps
/// through `atomics::wait`, which itself spins briefly before sleeping. Not under loom, where
/// sleeping is the model.
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
    /// The slot for position `pos` is not ready (not yet emptied for a post, not yet filled for
    /// a receive).
    Slot { pos: u64 },
    /// The ring is closed: no post may succeed, or no message is left to receive.
    Closed,
}

/// One message place: its stamp (module docs) and the message, side by side.
struct Slot<T> {
    stamp: AtomicU64,
    message: UnsafeCell<MaybeUninit<T>>,
}

/// One direction of a channel: a bounded FIFO of `T`.
pub(crate) struct Ring<T> {
    /// The head and the tail (see the module docs' layout).
    words: SharedWords<u64>,
    slots: Box<[Slot<T>]>,
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
            // A count of messages, not a length in bytes: not `ExceedsMax`.
            return Err(Error::InvalidParameter {
                parameter: "message channel capacity",
                value: capacity as u64,
                expected: "at most 2^24 messages",
            });
        }
        let capacity = capacity.max(MIN_CAPACITY).next_power_of_two();
        let slots = allocate_slots(capacity)?;
        let words = SharedWords::new(WORDS)?; // zeroed: both at position 0, no flag
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

    fn head(&self) -> Word<'_, u64> {
        self.words.get(HEAD)
    }

    fn tail(&self) -> Word<'_, u64> {
        self.words.get(TAIL)
    }

    /// The slot for position `pos`.
    fn slot(&self, pos: u64) -> &Slot<T> {
        &self.slots[(pos & self.mask) as usize]
    }

    /// The stamp of the slot for `pos` while it waits for the post at `pos`.
    fn empty_stamp(&self, pos: u64) -> u64 {
        pos & !self.mask
    }

    /// The stamp of the slot for `pos` once it holds the message posted at `pos`.
    fn full_stamp(&self, pos: u64) -> u64 {
        self.empty_stamp(pos) + 1
    }

    /// Posts `value` if a slot is free; otherwise gives it back with what blocked it.
    pub(crate) fn try_push(&self, value: T) -> Result<(), (T, Blocked)> {
        let tail_word = self.tail();
        let mut tail = tail_word.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err((value, Blocked::Closed));
            }
            let pos = tail & POSITION;
            let slot = self.slot(pos);
            let stamp = slot.stamp.load(Ordering::Acquire);
            let lag = lag(stamp, self.empty_stamp(pos));
            if lag == 0 {
                // The slot is free for `pos`: claim the position (clearing `ASLEEP`).
                if let Err(seen) = tail_word.compare_exchange(tail, pos + 1, Ordering::Relaxed) {
                    tail = seen;
                    continue;
                }
                // SAFETY: the claim made this thread the slot's only owner until it stamps
                // the slot full below; the receiver that emptied it last lap is done with it
                // (its release stamp was read with Acquire above).
                slot.message
                    .with_mut(|message| unsafe { (*message).write(value) });
                slot.stamp.store(self.full_stamp(pos), Ordering::Release);
                if tail & ASLEEP != 0 {
                    tail_word.notify(None);
                }
                return Ok(());
            } else if lag < 0 {
                // Still full from the previous lap.
                return Err((value, Blocked::Slot { pos }));
            } else {
                // Another sender claimed `pos` meanwhile.
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
        let head_word = self.head();
        let mut head = head_word.load(Ordering::Acquire);
        let mut snoozes = 0;
        loop {
            let pos = head & POSITION;
            let slot = self.slot(pos);
            let stamp = slot.stamp.load(Ordering::Acquire);
            let lag = lag(stamp, self.full_stamp(pos));
            if lag == 0 {
                // Claim the position, keeping `CLOSED` and clearing `ASLEEP`.
                let next = (pos + 1) | (head & CLOSED);
                if let Err(seen) = head_word.compare_exchange(head, next, Ordering::AcqRel) {
                    head = seen;
                    continue;
                }
                // SAFETY: the stamp (read with Acquire, pairing with the sender's Release)
                // says the slot holds the message posted at `pos`, and winning the claim made
                // this thread its only reader; it is read exactly once, then stamped free.
                let value = slot
                    .message
                    .with(|message| unsafe { (*message).assume_init_read() });
                let free = self.empty_stamp(pos + self.capacity() as u64);
                slot.stamp.store(free, Ordering::Release);
                if head & ASLEEP != 0 {
                    head_word.notify(None);
                }
                return Ok(value);
            } else if lag < 0 {
                // Nothing published at `pos` yet.
                if !check_closed {
                    return Err(Blocked::Slot { pos });
                }
                let tail = self.tail().load(Ordering::Acquire);
                let claimed = tail & POSITION;
                if claimed <= pos {
                    // No post claimed `pos`: empty, or closed and drained.
                    if tail & CLOSED != 0 && claimed == pos {
                        return Err(Blocked::Closed);
                    }
                    return Err(Blocked::Slot { pos });
                }
                // A post claimed `pos` and is writing it: wait for its stamp (module docs).
                snooze(&mut snoozes);
                head = head_word.load(Ordering::Acquire);
            } else {
                // Another receiver took `pos` meanwhile.
                head = head_word.load(Ordering::Acquire);
            }
        }
    }

    /// Posts `value`, waiting while the ring is full, until `deadline`.
    pub(crate) fn push(&self, mut value: T, deadline: Option<Instant>) -> Result<(), (T, Error)> {
        let mut polls = 0;
        let mut snoozes = 0;
        loop {
            match self.try_push(value) {
                Ok(()) => return Ok(()),
                Err((back, Blocked::Closed)) => return Err((back, Error::Closed)),
                Err((back, Blocked::Slot { pos })) => {
                    value = back;
                    if poll_again(&mut polls) {
                        self.poll_for_room(pos, &mut polls);
                        continue;
                    }
                    // The post waits for the receive of `pos - capacity` to claim the head.
                    let until = pos.wrapping_sub(self.capacity() as u64);
                    match sleep(self.head(), until, deadline) {
                        // That receive claimed the head and is emptying the slot (it never
                        // blocks before it stamps): give it a moment.
                        Ok(Awaited::Claimed) => snooze(&mut snoozes),
                        Ok(Awaited::LookAgain) => {}
                        Err(error) => return Err((value, error)),
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
            // sleeping also check for the close.
            match self.take(polls == 0 || polls >= POLLS) {
                Ok(value) => return Ok(value),
                Err(Blocked::Closed) => return Err(Error::Closed),
                Err(Blocked::Slot { pos }) => {
                    if poll_again(&mut polls) {
                        continue;
                    }
                    // The receive waits for the post of `pos` to claim the tail; once it has,
                    // `take(true)` waits for its stamp.
                    sleep(self.tail(), pos, deadline)?;
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
        let stamp = &self.slot(last).stamp;
        // Only a hint (the post that follows checks its slot with Acquire): Relaxed.
        while lag(stamp.load(Ordering::Relaxed), self.empty_stamp(last)) < 0 {
            if *polls >= SPINNING_POLLS || !poll_again(polls) {
                return;
            }
        }
    }

    /// How many messages the ring holds: positions posts have claimed that no receive has
    /// taken yet (a post between its claim and its stamp counts, as its message will be
    /// received next). A snapshot, as crossbeam's `len`: other threads may change it at once.
    pub(crate) fn len(&self) -> usize {
        loop {
            // A tail that did not move while the head was read makes the pair one moment's:
            // the head cannot pass that tail.
            let tail = self.tail().load(Ordering::SeqCst) & POSITION;
            let head = self.head().load(Ordering::SeqCst) & POSITION;
            if self.tail().load(Ordering::SeqCst) & POSITION == tail {
                // At most the capacity: a post claims a position only once the receive a lap
                // before it has moved the head past that slot.
                return tail.saturating_sub(head) as usize;
            }
        }
    }

    /// Whether the ring was closed (posts fail; receives drain what is left).
    pub(crate) fn is_closed(&self) -> bool {
        self.tail().load(Ordering::SeqCst) & CLOSED != 0
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

    /// Closes the ring and wakes every thread asleep on it. Idempotent.
    pub(crate) fn close(&self) {
        // The tail first: once a sleeper on the head is woken by the mark there, posts fail.
        // A tail already marked means another close is marking the head (or has).
        for word in [self.tail(), self.head()] {
            let old = word.fetch_or(CLOSED, Ordering::SeqCst);
            if old & CLOSED != 0 {
                return;
            }
            if old & ASLEEP != 0 {
                word.notify(None);
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
        self.tail().fetch_or(CLOSED, Ordering::Relaxed);
        self.discard_all();
    }
}

impl<T> Slot<T> {
    /// Empty for lap 0.
    fn new() -> Self {
        Slot {
            stamp: AtomicU64::new(0),
            message: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }
}

/// `capacity` empty slots, or `Err(AllocationFailed)` if the allocator refuses them (never an
/// abort: a large capacity of large messages is a request that may fairly fail).
fn allocate_slots<T>(capacity: usize) -> Result<Box<[Slot<T>]>, Error> {
    let mut slots = Vec::new();
    // `try_reserve_exact` checks the byte count for overflow.
    if let Err(refused) = slots.try_reserve_exact(capacity) {
        return Err(Error::AllocationFailed {
            bytes: capacity.saturating_mul(mem::size_of::<Slot<T>>()),
            reason: format!("{capacity} message slots: {refused}"),
        });
    }
    slots.extend((0..capacity).map(|_| Slot::new()));
    Ok(slots.into_boxed_slice())
}

/// What a [`sleep`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaited {
    /// The position waited for was already claimed: its slot is a few instructions from its
    /// stamp.
    Claimed,
    /// Woken, or the ring is closed: look again.
    LookAgain,
}

/// Sleeps on `word` (the head or the tail) until it moves, unless it has already moved past
/// `pos` or is closed: flags it [`ASLEEP`] with a compare-exchange from the value it checked,
/// then waits while it holds that value and the flag (module docs, "Blocking").
/// `Err(Timeout)` once `deadline` has passed, `Err(Terminated)` if this worker thread is
/// asked to terminate.
fn sleep(word: Word<'_, u64>, pos: u64, deadline: Option<Instant>) -> Result<Awaited, Error> {
    let seen = word.fetch_or(ASLEEP, Ordering::SeqCst);
    if seen & CLOSED != 0 {
        return Ok(Awaited::LookAgain);
    }
    // Signed, as `lag`: positions wrap (a post at `pos < capacity` waits for `pos - capacity`).
    if ((seen & POSITION).wrapping_sub(pos) as i64) > 0 {
        // The claim came first (a flag left set costs the next claim one `notify` with nobody
        // to wake).
        return Ok(Awaited::Claimed);
    }
    match word.wait_until(seen | ASLEEP, deadline)? {
        WaitResult::TimedOut => Err(Error::Timeout),
        WaitResult::Ok | WaitResult::NotEqual => Ok(Awaited::LookAgain),
    }
}

/// How far `stamp` is past `expected`, the stamp a thread wants to see: 0 when the slot is
/// ready for it, negative while the slot is a step behind (not yet emptied or filled), positive
/// when other threads already moved it on.
fn lag(stamp: u64, expected: u64) -> i64 {
    stamp.wrapping_sub(expected) as i64
}

/// Whether to look at the ring once more, after a short, growing pause (spin hints first,
/// then yielding the CPU), before sleeping. Never under loom.
fn poll_again(polls: &mut u32) -> bool {
    if LOOM || *polls >= POLLS {
        return false;
    }
    pause(*polls);
    *polls += 1;
    true
}

/// A pause before looking again at a slot that another thread is a few instructions from
/// stamping (no sleeping: that thread never blocks before it stamps). Under loom, a yield,
/// which tells the model to run the other threads first.
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
    // 2^24 stamps to initialise: a fraction of a second natively, hours interpreted.
    #[cfg_attr(miri, ignore)]
    fn zero_sized_messages_work_at_the_largest_capacity() {
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
