//! [`ByteRing`]: a bounded ring of variable-length byte messages whose *whole* state — both
//! positions, every record header and every payload byte — lives in a byte range of a
//! [`SharedBuffer`], so two processes mapping the same buffer can talk through it.
//!
//! The typed [`Ring`](super::ring) keeps its stamps in a buffer but its payloads (any `T`) in
//! process memory; it cannot cross a process boundary. This ring moves bytes only: a sender
//! copies a message into the buffer once (or a serializer writes it there directly through
//! [`ByteSender::send_with`]), and the receiver copies it out once (or reads it in place
//! through [`ByteReceiver::recv_with`]). Every access to the range goes through the region's
//! atomic words and its copy engine: no Rust slice or reference over shared memory is ever
//! made, so a peer writing the bytes at any moment is never undefined behaviour.
//!
//! One sender and one receiver (SPSC), one ring per direction: that is what a process worker
//! needs (the parent writes, the child reads, and a second ring carries the answers), and it
//! lets each side keep its own position privately, trusting nothing it reads back (see
//! "A hostile peer"). Several producers would need a claim-then-commit step per record, and a
//! producer dying between its claim and its commit would stall the ring for every other
//! producer; threads of one process that want to share a sender put it behind a mutex.
//!
//! # Layout
//!
//! The ring occupies [`ByteRing::bytes_for`]`(capacity)` bytes from a byte offset that is a
//! multiple of [`ByteRing::ALIGN`] (64, a cache line, is best). All-zero bytes are a valid
//! empty, open ring: attaching writes only the capacity, once.
//!
//! ```text
//!  offset   word                 written by                      who sleeps on it
//!  0        capacity: u32        the first attach (set once)     -
//!  4        roles: u32           each attach of a sender (bit 0)  -
//!                                or receiver (bit 1), once
//!  64       tail: u32            sender: its byte position       the receiver
//!                                receiver: the WAITING flag
//!                                close: the CLOSED flag
//!  128      head: u32            receiver: its byte position     the sender
//!                                sender: the WAITING flag
//!                                close: the CLOSED flag
//!  192      data: capacity bytes of records, each 8-aligned:
//!
//!           +----------------+----------------+--------------------------+
//!           | len: u32       | kind: u32      | payload: len bytes,      |
//!           |                | MESSAGE or     | padded to a multiple of 8|
//!           |                | PADDING        |                          |
//!           +----------------+----------------+--------------------------+
//! ```
//!
//! (Under loom the header words sit 8 bytes apart instead of 64.) A position is a byte count
//! modulo 2³²; it maps to offset `position % capacity` of the data area (the capacity is a
//! power of two, so that mapping survives the 2³² wrap). Positions are multiples of 8, which
//! leaves bits 0 and 1 of each position word for the [`WAITING`] and [`CLOSED`] flags.
//!
//! A record never wraps: when a message does not fit between the tail and the end of the data
//! area, the sender first publishes a `PADDING` record whose length is exactly the rest of the
//! area, and the message starts at offset 0. So a message of `n` bytes takes
//! `8 + round_up(n, 8)` contiguous bytes, the largest is `capacity − 8` bytes
//! ([`ByteRing::max_message_len`]), and a larger one is refused with `Err(ExceedsMax)` before
//! anything is written.
//!
//! # Protocol
//!
//! - **Send**: the sender knows its own position (`tail`, kept privately) and a cached copy of
//!   the receiver's (`head`). If the record does not fit in `capacity − (tail − head)`, it
//!   reloads `head` (Acquire). With room, it copies the payload and writes the record header
//!   (relaxed atomic stores), then **publishes** with one compare-exchange on the tail word
//!   (Release): new position, `WAITING` cleared, and only if `CLOSED` is not set. If the old
//!   word had `WAITING`, it calls `notify`; otherwise a message costs no `notify` at all.
//! - **Receive**: the receiver knows its own position (`head`) and a cached `tail`. When they
//!   are equal it reloads the tail word (Acquire, pairing with the publish). It reads the
//!   record header, checks it (below), copies the payload out, then **frees** the record with
//!   one compare-exchange on the head word (Release, so the sender never overwrites bytes
//!   still being read): new position, `WAITING` cleared, `CLOSED` kept; `notify` only if
//!   `WAITING` was set. A `PADDING` record is freed and skipped.
//! - **Block**: a receiver that finds the ring empty (or a sender that finds it full) polls
//!   briefly, then sets `WAITING` in the word it waits on (tail, or head) with a
//!   compare-exchange from the exact value it looked at, and `wait`s on the word while it
//!   holds that flagged value. The peer's publish (or free) is a read-modify-write of the same
//!   word, so the two are totally ordered: either the peer's compare-exchange sees the flag and
//!   notifies, or the flagging fails and the waiter looks again. `wait` checks the value under
//!   the waiter table's lock (docs/semantics.md A11), so the notify that follows is never lost.
//!   Both words are 32-bit: on a futex the same protocol runs unchanged.
//! - **Close** (either side, or any [`ByteRing`] handle; also dropping a sender or receiver):
//!   `fetch_or(CLOSED)` on the tail word, then on the head word, and a `notify` on each. A
//!   publish either came before the close (its message is delivered) or sees `CLOSED` and
//!   fails; a receiver delivers everything published, then reports `Closed`; a blocked sender
//!   or receiver is woken because the word it sleeps on changed.
//!
//! # Invariants
//!
//! 1. Only the sender moves the tail position and only the receiver moves the head position;
//!    the other side and `close` only set flag bits, with read-modify-writes that keep the
//!    position.
//! 2. `0 ≤ tail − head ≤ capacity` (modulo 2³²), and both are multiples of 8.
//! 3. Every byte between head and tail belongs to a complete record written before the tail
//!    passed it (the publish is Release, the reload Acquire); every byte outside belongs to the
//!    sender, and is reused only after the receiver's Release free of it.
//! 4. A record lies entirely within the data area, and within `tail − head`.
//! 5. No waiter sleeps while the word it sleeps on lacks its `WAITING` flag, except for a
//!    moment before it finds the word changed.
//!
//! # A hostile peer (docs/semantics.md X5)
//!
//! The peer may be another process that is buggy, malicious or half-dead, so everything read
//! from the range is untrusted input. Each side keeps its own position privately and treats
//! the peer's as a claim to check: a position word whose position is not a multiple of 8, lies
//! outside `[own − capacity, own]` (or `[own, own + capacity]`), or was moved by someone else;
//! a record whose kind is unknown, whose length runs past the published bytes or the end of
//! the area, or a padding record that does not reach the end exactly — each gives
//! `Err(Error::Corrupted)`, read once and never used. Payload copies are atomic byte copies
//! bounded by the ring's own capacity, so garbage payload bytes are just garbage messages.
//!
//! What a hostile peer **can** do: send garbage or withhold messages; corrupt the ring so every
//! later call returns `Err(Corrupted)`; overwrite a message while it is being read (its bytes
//! are then garbage); keep a waiter asleep by never notifying; reopen a ring it sees closed, for
//! itself (this side keeps its own closed flag). What it **cannot** do: make this side read or
//! write outside the ring's range, allocate more than the capacity, panic, invoke undefined
//! behaviour, or keep a call from returning at its deadline. A call without a deadline waits
//! until the peer acts or this side closes the ring: a peer that died says nothing, so the
//! process layer must watch it (a pidfd, or the robust-lock owner word) and call
//! [`ByteRing::close`] when it dies — which wakes every local waiter, since a dead peer cannot
//! undo the close. (A live peer that rewrites a word back to the exact value a waiter expects,
//! in the instant between this side's close and the waiter's sleep, can delay that waiter until
//! its deadline; a wait loop that must end should pass one.)

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::byte_data::DataArea;
use super::byte_message::{MessageReader, MessageWriter};
use crate::atomics::{SharedWords, WaitResult, Word};
use crate::buffer::SharedBuffer;
use crate::error::Error;
use crate::range;
use crate::shim::{self, thread, Arc, Ordering, LOOM};

/// Bit 0 of a position word: the other side is (about to be) asleep on this word; whoever
/// changes the position next must `notify`.
const WAITING: u32 = 1;
/// Bit 1 of both position words: the ring is closed.
const CLOSED: u32 = 2;
const FLAGS: u32 = WAITING | CLOSED;

/// Bytes between the header words that two threads write (a cache line in a real build, so
/// the sender's and the receiver's words do not share one; a cell under loom).
const LINE: usize = if LOOM { 8 } else { 64 };
/// Indices of the header words, in `u32`s from the ring's start.
const CAPACITY: usize = 0;
const ROLES: usize = 1;
const TAIL: usize = LINE / 4;
const HEAD: usize = 2 * LINE / 4;
/// Byte offset of the data area from the ring's start.
const DATA: usize = 3 * LINE;

/// Bits of the roles word.
const SENDER: u32 = 1;
const RECEIVER: u32 = 2;

/// Bytes of a record header, and the alignment of every record.
const RECORD_HEADER: u32 = 8;
/// Record kinds (the header's high half). Not zero, so zeroed or stale bytes where a record
/// should be are caught as corruption rather than read as an empty message.
const MESSAGE: u32 = 0x5342_4d31; // "SBM1"
const PADDING: u32 = 0x5342_5031; // "SBP1"

/// How many times in a row a compare-exchange on a position word may fail before the word is
/// declared corrupted. The legitimate reasons to fail are few (the other side sets its flag
/// once per sleep, `close` sets its flag once), so only a peer rewriting the word without end
/// gets this far.
const CAS_TRIES: u32 = 64;

/// How often a blocked send or receive polls before it flags its word and sleeps (which itself
/// spins briefly first). Not under loom, where sleeping is the model.
const POLLS: u32 = 10;
/// Polls that spin (2^n spin hints for poll n) before the rest yield the CPU.
const SPINNING_POLLS: u32 = 7;

/// How long a blocking call may wait.
#[derive(Clone, Copy)]
enum Until {
    /// Not at all: report `Full` or "empty".
    Now,
    /// Until the deadline (`None`: no deadline).
    Deadline(Option<Instant>),
}

/// The ring's memory and settings, shared by every handle of one attach.
struct Core {
    /// The header words (capacity, roles, tail, head), as `u32`s.
    header: SharedWords<u32>,
    /// The data area: record headers and payload bytes.
    data: DataArea,
    byte_offset: usize,
    /// Set by a `close` through this attach; a peer cannot clear it (it is process memory).
    /// Only a guard against a peer reopening the ring: the shared `CLOSED` bits are the
    /// protocol, and what the loom models check.
    closed_here: AtomicBool,
}

impl Core {
    fn word(&self, index: usize) -> Word<'_, u32> {
        self.header.get(index)
    }

    fn tail(&self) -> Word<'_, u32> {
        self.word(TAIL)
    }

    fn head(&self) -> Word<'_, u32> {
        self.word(HEAD)
    }

    fn offset_of(&self, position: u32) -> u32 {
        position & (self.capacity() - 1)
    }

    /// The header word of the record at data offset `offset` (see [`DataArea::record`]).
    fn record(&self, offset: u32) -> Word<'_, u64> {
        self.data.record(offset)
    }

    fn capacity(&self) -> u32 {
        self.data.capacity()
    }

    fn is_closed(&self) -> bool {
        self.closed_here.load(Ordering::SeqCst) || self.tail().load(Ordering::SeqCst) & CLOSED != 0
    }

    /// Sets `CLOSED` in both position words and wakes whoever sleeps on them. Always notifies
    /// (close is rare), so a peer that cleared a `WAITING` flag cannot make us skip a wakeup.
    fn close(&self) {
        self.closed_here.store(true, Ordering::SeqCst);
        for word in [self.tail(), self.head()] {
            word.fetch_or(CLOSED, Ordering::SeqCst);
            word.notify(None);
        }
    }
}

/// A bounded FIFO of byte messages living entirely in bytes of a [`SharedBuffer`]: one
/// [`ByteSender`] and one [`ByteReceiver`], possibly in two processes mapping the buffer.
///
/// `ByteRing::at` attaches to the bytes like the `sync` primitives do: the place is checked
/// once, all-zero bytes are an empty open ring, the capacity is written exactly once however
/// many handles attach at the same moment, and a different capacity later is
/// `Err(ParameterMismatch)`. A handle is cheap to clone and keeps the buffer alive. The
/// [`sender`](ByteRing::sender) and the [`receiver`](ByteRing::receiver) can each be taken
/// once in the ring's life, by any handle (the claim is recorded in the bytes).
///
/// See the module docs for the layout, the protocol, and what a hostile peer can and cannot do.
///
/// ```
/// use sharedbuf::channel::ByteRing;
/// use sharedbuf::SharedBuffer;
///
/// let capacity = ByteRing::capacity_for(100, 8)?; // eight 100-byte messages at once
/// let buffer = SharedBuffer::new(ByteRing::bytes_for(capacity)?)?;
/// let mut tx = ByteRing::at(&buffer, 0, capacity)?.sender()?;
/// let mut rx = ByteRing::at(&buffer, 0, capacity)?.receiver()?; // another attach, same ring
///
/// let t = std::thread::spawn(move || -> Result<(), sharedbuf::Error> {
///     for word in ["one", "two", "three"] {
///         tx.send(word.as_bytes(), None)?;
///     }
///     Ok(()) // dropping the sender closes the ring
/// });
/// let mut got = Vec::new();
/// while let Ok(bytes) = rx.recv(None) {          // `Err(Closed)` once closed and drained
///     got.push(String::from_utf8(bytes).unwrap());
/// }
/// assert_eq!(got, ["one", "two", "three"]);
/// t.join().unwrap()?;
/// # Ok::<(), sharedbuf::Error>(())
/// ```
#[derive(Clone)]
pub struct ByteRing {
    core: Arc<Core>,
}

impl ByteRing {
    /// Alignment the ring's byte offset must have (64, a cache line, keeps the sender's and
    /// the receiver's words apart in every process).
    pub const ALIGN: usize = 8;
    /// Bytes of the header before the data area.
    pub const HEADER_BYTES: usize = DATA;
    /// Bytes of a record header: a message of `n` bytes takes `RECORD_HEADER_BYTES +
    /// round_up(n, 8)` bytes of the data area.
    pub const RECORD_HEADER_BYTES: usize = RECORD_HEADER as usize;
    /// The smallest capacity (data bytes).
    pub const MIN_CAPACITY: usize = 16;
    /// The largest capacity (data bytes): 1 GiB, so positions modulo 2³² never wrap past
    /// each other.
    pub const MAX_CAPACITY: usize = 1 << 30;

    /// Total bytes a ring of `capacity` data bytes occupies: [`HEADER_BYTES`](Self::HEADER_BYTES)
    /// `+ capacity`. `Err(InvalidParameter)` unless `capacity` is a power of two in
    /// [`MIN_CAPACITY`](Self::MIN_CAPACITY)`..=`[`MAX_CAPACITY`](Self::MAX_CAPACITY).
    pub fn bytes_for(capacity: usize) -> Result<usize, Error> {
        check_capacity(capacity)?;
        Ok(Self::HEADER_BYTES + capacity)
    }

    /// The smallest capacity that holds `messages` messages of up to `max_message_len` bytes
    /// each at the same time, whatever the ring's position (a wrap's padding included); at
    /// least one message. `Err(ExceedsMax)` if that is more than
    /// [`MAX_CAPACITY`](Self::MAX_CAPACITY).
    pub fn capacity_for(max_message_len: usize, messages: usize) -> Result<usize, Error> {
        let too_large = |requested: usize| Error::ExceedsMax {
            requested,
            max: Self::MAX_CAPACITY,
        };
        let record = max_message_len
            .checked_next_multiple_of(8)
            .and_then(|payload| payload.checked_add(Self::RECORD_HEADER_BYTES))
            .ok_or(too_large(usize::MAX))?;
        // One padding record at most per lap, shorter than the record that did not fit.
        let needed = record
            .checked_mul(messages.max(1))
            .and_then(|bytes| bytes.checked_add(record - Self::RECORD_HEADER_BYTES))
            .ok_or(too_large(usize::MAX))?;
        let capacity = needed
            .max(Self::MIN_CAPACITY)
            .checked_next_power_of_two()
            .ok_or(too_large(needed))?;
        if capacity > Self::MAX_CAPACITY {
            return Err(too_large(needed));
        }
        Ok(capacity)
    }

    /// A handle on the ring of `capacity` data bytes at `byte_offset` of `buffer`.
    ///
    /// Errors: `Err(InvalidParameter)` unless `capacity` is a power of two in
    /// [`MIN_CAPACITY`](Self::MIN_CAPACITY)`..=`[`MAX_CAPACITY`](Self::MAX_CAPACITY);
    /// `Err(Misaligned)` unless `byte_offset` is a multiple of [`ALIGN`](Self::ALIGN);
    /// `Err(RangeOutOfBounds)` unless its [`bytes_for`](Self::bytes_for)`(capacity)` bytes lie
    /// in the buffer; `Err(ParameterMismatch)` if the bytes already hold another capacity.
    pub fn at(buffer: &SharedBuffer, byte_offset: usize, capacity: usize) -> Result<Self, Error> {
        let capacity32 = check_capacity(capacity)?;
        if byte_offset % Self::ALIGN != 0 {
            return Err(Error::Misaligned {
                byte_offset,
                align: Self::ALIGN,
            });
        }
        range::fit(
            byte_offset,
            Self::HEADER_BYTES + capacity,
            buffer.byte_length(),
        )?;
        let header = SharedWords::at(buffer, byte_offset, DATA / 4)?;
        let records = SharedWords::at(buffer, byte_offset + DATA, capacity / 8)?;
        match header
            .get(CAPACITY)
            .compare_exchange(0, capacity32, Ordering::AcqRel)
        {
            Ok(_) => {}
            Err(existing) if existing == capacity32 => {}
            Err(existing) => {
                return Err(Error::ParameterMismatch {
                    parameter: "byte ring capacity",
                    existing: u64::from(existing),
                    requested: capacity as u64,
                })
            }
        }
        Ok(ByteRing {
            core: Arc::new(Core {
                header,
                data: DataArea::new(records, byte_offset + DATA, capacity32),
                byte_offset,
                closed_here: AtomicBool::new(false),
            }),
        })
    }

    /// The data bytes.
    pub fn capacity(&self) -> usize {
        self.core.capacity() as usize
    }

    /// The longest message: `capacity − 8` bytes.
    pub fn max_message_len(&self) -> usize {
        max_message_len(self.core.capacity())
    }

    /// The byte offset of the ring in its buffer.
    pub fn byte_offset(&self) -> usize {
        self.core.byte_offset
    }

    /// The buffer the ring lives in.
    pub fn buffer(&self) -> &SharedBuffer {
        self.core.header.buffer()
    }

    /// Takes the ring's sending side. `Err(AlreadyAttached)` if a sender was ever taken from
    /// this ring, through any handle or process; `Err(Corrupted)` if the positions in the
    /// bytes are not a state the protocol produces.
    pub fn sender(&self) -> Result<ByteSender, Error> {
        self.claim(SENDER, "byte ring's sender")?;
        let core = &self.core;
        let tail = core.tail().load(Ordering::Acquire) & !FLAGS;
        let head = core.head().load(Ordering::Acquire) & !FLAGS;
        if tail % RECORD_HEADER != 0 || !within(tail.wrapping_sub(head), core.capacity()) {
            return Err(Error::Corrupted {
                what: "the ring's positions at attach",
            });
        }
        Ok(ByteSender {
            core: Arc::clone(core),
            tail,
            head_seen: head,
        })
    }

    /// Takes the ring's receiving side. `Err(AlreadyAttached)` if a receiver was ever taken
    /// from this ring, through any handle or process; `Err(Corrupted)` if its position in the
    /// bytes is not one the protocol produces.
    pub fn receiver(&self) -> Result<ByteReceiver, Error> {
        self.claim(RECEIVER, "byte ring's receiver")?;
        let core = &self.core;
        let head = core.head().load(Ordering::Acquire) & !FLAGS;
        if head % RECORD_HEADER != 0 {
            return Err(Error::Corrupted {
                what: "the receiver's position at attach",
            });
        }
        Ok(ByteReceiver {
            core: Arc::clone(core),
            head,
            tail_seen: head,
        })
    }

    fn claim(&self, role: u32, name: &'static str) -> Result<(), Error> {
        let old = self.core.word(ROLES).fetch_or(role, Ordering::AcqRel);
        if old & role != 0 {
            return Err(Error::AlreadyAttached { role: name });
        }
        Ok(())
    }

    /// Closes the ring for both sides (idempotent): sends fail with `Err(Closed)` from now on;
    /// the receiver still gets every message sent before, then `Err(Closed)`; a blocked sender
    /// or receiver returns at once. Also what the process layer calls when the peer dies.
    pub fn close(&self) {
        self.core.close();
    }

    /// Whether the ring was closed (by either side, or through any handle).
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }

    /// The sender's position as the tail word says now: the end of what it has published
    /// (a peer's claim, unchecked; see [`ByteReceiver::read_up_to`]).
    #[allow(dead_code)] // for the process workers only, which loom builds leave out
    pub(crate) fn published(&self) -> u32 {
        self.core.tail().load(Ordering::Acquire) & !FLAGS
    }
}

impl fmt::Debug for ByteRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteRing")
            .field("byte_offset", &self.core.byte_offset)
            .field("capacity", &self.core.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The sending side of a [`ByteRing`] (one per ring). Dropping it closes the ring: the
/// receiver gets what was sent, then `Err(Closed)`.
#[must_use = "dropping a ByteSender closes the ring for good"]
pub struct ByteSender {
    core: Arc<Core>,
    /// Our position: the truth, never read back from the bytes.
    tail: u32,
    /// The receiver's position when we last looked (checked; it only grows).
    head_seen: u32,
}

impl ByteSender {
    /// Sends `message` if there is room now: `Err(Full)` if not, `Err(Closed)` once the ring
    /// is closed, `Err(ExceedsMax)` if it is longer than
    /// [`max_message_len`](Self::max_message_len), `Err(Corrupted)` if the receiver's side
    /// of the bytes is garbage. Nothing is sent unless it returns `Ok`.
    ///
    /// `Full` can come on an empty ring too: a record never wraps, so a message that would
    /// cross the end of the data area needs a padding record to the end first, and then room
    /// for the whole record at offset 0. The padding is published at once when it fits (it is
    /// no message: the receiver passes over it), so the same message is accepted once the
    /// receiver has caught up; a ring sized with [`ByteRing::capacity_for`] never needs that.
    pub fn try_send(&mut self, message: &[u8]) -> Result<(), Error> {
        self.send_until(message.len(), Until::Now, |w| w.write(message))
    }

    /// Sends `message`, waiting while the ring is full, until `deadline` (`None`: no
    /// deadline): `Err(Timeout)` then, `Err(Terminated)` if this thread is a worker asked to
    /// terminate while it waited; otherwise as [`try_send`](Self::try_send).
    pub fn send(&mut self, message: &[u8], deadline: Option<Instant>) -> Result<(), Error> {
        self.send_until(message.len(), Until::Deadline(deadline), |w| {
            w.write(message)
        })
    }

    /// Sends a message written in place by `write`, without a copy in between (a serializer
    /// writes straight into the shared bytes through the [`MessageWriter`], which implements
    /// [`io::Write`](std::io::Write)). Room for `max_len` bytes is reserved first (waiting
    /// as [`send`](Self::send) does); the message is what `write` wrote, at most `max_len`
    /// bytes.
    /// If `write` returns `Err` (or panics) nothing is sent and its error is returned; the
    /// ring's errors convert into `E` (there is `From<Error> for io::Error`).
    ///
    /// ```
    /// use std::io::Write;
    /// use sharedbuf::channel::ByteRing;
    /// use sharedbuf::SharedBuffer;
    ///
    /// let buffer = SharedBuffer::new(ByteRing::bytes_for(256)?)?;
    /// let ring = ByteRing::at(&buffer, 0, 256)?;
    /// let (mut tx, mut rx) = (ring.sender()?, ring.receiver()?);
    /// tx.send_with(64, None, |w| write!(w, "{}+{}={}", 2, 2, 4))?;
    /// assert_eq!(rx.try_recv()?.as_deref(), Some(&b"2+2=4"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_with<R, E: From<Error>>(
        &mut self,
        max_len: usize,
        deadline: Option<Instant>,
        write: impl FnOnce(&mut MessageWriter<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.send_until(max_len, Until::Deadline(deadline), write)
    }

    /// [`send_with`](Self::send_with) if there is room for `max_len` bytes now, else
    /// `Err(Full)` (converted into `E`) without calling `write`.
    pub fn try_send_with<R, E: From<Error>>(
        &mut self,
        max_len: usize,
        write: impl FnOnce(&mut MessageWriter<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        self.send_until(max_len, Until::Now, write)
    }

    fn send_until<R, E: From<Error>>(
        &mut self,
        max_len: usize,
        until: Until,
        write: impl FnOnce(&mut MessageWriter<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let offset = self.reserve(max_len, until)?;
        let mut writer =
            MessageWriter::new(&self.core.data, (offset + RECORD_HEADER) as usize, max_len);
        let value = write(&mut writer)?;
        let len = writer.len();
        // `len <= max_len`, so the record fits where the reservation made room.
        self.core
            .record(offset)
            .store(pack(MESSAGE, len as u32), Ordering::Relaxed);
        self.publish(record_len(len))?;
        Ok(value)
    }

    /// Makes room for a record holding `len` bytes at the tail (publishing a padding record
    /// first if it would cross the end of the data area); returns the record's data offset.
    fn reserve(&mut self, len: usize, until: Until) -> Result<u32, Error> {
        let capacity = self.core.capacity();
        if len > max_message_len(capacity) {
            return Err(Error::ExceedsMax {
                requested: len,
                max: max_message_len(capacity),
            });
        }
        let record = record_len(len);
        let mut polls = 0;
        loop {
            let offset = self.core.offset_of(self.tail);
            let to_end = capacity - offset;
            let needed = if record <= to_end { record } else { to_end };
            if self.room() < needed {
                let head = self.reload_head()?;
                if self.room() < needed {
                    let Until::Deadline(deadline) = until else {
                        return Err(Error::Full);
                    };
                    if !poll_again(&mut polls) {
                        park(self.core.head(), head, deadline)?;
                    }
                    continue;
                }
            }
            if needed == record {
                return Ok(offset);
            }
            // The record would cross the end: pad to the end, and start over at offset 0.
            self.core
                .record(offset)
                .store(pack(PADDING, to_end), Ordering::Relaxed);
            self.publish(to_end)?;
        }
    }

    /// Free bytes as far as we know (the receiver may have freed more since).
    fn room(&self) -> u32 {
        // `tail − head_seen <= capacity` (checked when `head_seen` was read, kept by every
        // publish); saturating all the same.
        self.core
            .capacity()
            .saturating_sub(self.tail.wrapping_sub(self.head_seen))
    }

    /// Reloads and checks the receiver's position; returns the head word as read.
    fn reload_head(&mut self) -> Result<u32, Error> {
        let word = self.core.head().load(Ordering::Acquire);
        if word & CLOSED != 0 || self.core.closed_here.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        let head = word & !FLAGS;
        if head % RECORD_HEADER != 0 || !within(self.tail.wrapping_sub(head), self.core.capacity())
        {
            return Err(Error::Corrupted {
                what: "the receiver's position is not within the ring",
            });
        }
        self.head_seen = head;
        Ok(word)
    }

    /// Publishes the next `bytes` bytes (complete records): moves the tail word to our new
    /// position, clearing `WAITING` (and notifying if it was set), unless the ring is closed.
    fn publish(&mut self, bytes: u32) -> Result<(), Error> {
        if self.core.closed_here.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        let new = self.tail.wrapping_add(bytes);
        let word = self.core.tail();
        // First guess: our position with no flag set (nobody asleep, not closed), so that the
        // common case is one compare-exchange and no load.
        let mut current = self.tail;
        for _ in 0..CAS_TRIES {
            if current & CLOSED != 0 {
                return Err(Error::Closed);
            }
            if current & !FLAGS != self.tail {
                return Err(Error::Corrupted {
                    what: "the sender's position was moved by another writer",
                });
            }
            match word.compare_exchange(current, new, Ordering::Release) {
                Ok(_) => {
                    self.tail = new;
                    if current & WAITING != 0 {
                        word.notify(None);
                    }
                    return Ok(());
                }
                Err(seen) => current = seen,
            }
        }
        Err(Error::Corrupted {
            what: "the sender's position word changes at every try",
        })
    }

    /// The data bytes.
    pub fn capacity(&self) -> usize {
        self.core.capacity() as usize
    }

    /// The longest message: `capacity − 8` bytes.
    pub fn max_message_len(&self) -> usize {
        max_message_len(self.core.capacity())
    }

    /// Closes the ring (see [`ByteRing::close`]).
    pub fn close(&self) {
        self.core.close();
    }

    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }
}

impl Drop for ByteSender {
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // a failed loom model: touching loom now would abort (see `shim`)
        }
        self.core.close();
    }
}

impl fmt::Debug for ByteSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteSender")
            .field("byte_offset", &self.core.byte_offset)
            .field("capacity", &self.core.capacity())
            .field("position", &self.tail)
            .finish()
    }
}

/// The receiving side of a [`ByteRing`] (one per ring). Dropping it closes the ring: the
/// sender's next send fails with `Err(Closed)`.
#[must_use = "dropping a ByteReceiver closes the ring for good"]
pub struct ByteReceiver {
    core: Arc<Core>,
    /// Our position: the truth, never read back from the bytes.
    head: u32,
    /// The sender's position when we last looked (checked; it only grows).
    tail_seen: u32,
}

/// A checked record: where its payload starts and how long it is, and its size in the ring.
struct Record {
    payload_at: usize,
    len: usize,
    bytes: u32,
}

impl ByteReceiver {
    /// The oldest message if one is there now: `Ok(None)` if not, `Err(Closed)` once the ring
    /// is closed and every message sent before was received, `Err(Corrupted)` if the sender's
    /// side of the bytes is garbage.
    pub fn try_recv(&mut self) -> Result<Option<Vec<u8>>, Error> {
        self.recv_until(Until::Now, |message| message.to_vec())
    }

    /// The oldest message, waiting while the ring is empty, until `deadline` (`None`: no
    /// deadline): `Err(Timeout)` then, `Err(Terminated)` if this thread is a worker asked to
    /// terminate while it waited; otherwise as [`try_recv`](Self::try_recv).
    pub fn recv(&mut self, deadline: Option<Instant>) -> Result<Vec<u8>, Error> {
        self.recv_until(Until::Deadline(deadline), |message| message.to_vec())?
            .ok_or(Error::Timeout)
    }

    /// Receives the oldest message by handing it to `read` in place (a deserializer reads
    /// straight from the shared bytes through the [`MessageReader`], which implements
    /// [`io::Read`](std::io::Read)); waits as [`recv`](Self::recv) does. The message is
    /// consumed when `read` returns, or unwinds.
    pub fn recv_with<R>(
        &mut self,
        deadline: Option<Instant>,
        read: impl FnOnce(&mut MessageReader<'_>) -> R,
    ) -> Result<R, Error> {
        self.recv_until(Until::Deadline(deadline), read)?
            .ok_or(Error::Timeout)
    }

    /// [`recv_with`](Self::recv_with) if a message is there now, else `Ok(None)` without
    /// calling `read`.
    pub fn try_recv_with<R>(
        &mut self,
        read: impl FnOnce(&mut MessageReader<'_>) -> R,
    ) -> Result<Option<R>, Error> {
        self.recv_until(Until::Now, read)
    }

    /// `None` only for `Until::Now`.
    fn recv_until<R>(
        &mut self,
        until: Until,
        read: impl FnOnce(&mut MessageReader<'_>) -> R,
    ) -> Result<Option<R>, Error> {
        let Some(record) = self.next(until)? else {
            return Ok(None);
        };
        // Frees the record when `read` returns or unwinds ("must happen" steps in a guard).
        let consume = Consume {
            core: &self.core,
            head: &mut self.head,
            bytes: record.bytes,
            done: false,
        };
        let mut reader = MessageReader::new(&consume.core.data, record.payload_at, record.len);
        let value = read(&mut reader);
        consume.finish()?;
        Ok(Some(value))
    }

    /// Finds the next message record, skipping padding; waits for one per `until`.
    fn next(&mut self, until: Until) -> Result<Option<Record>, Error> {
        let capacity = self.core.capacity();
        let mut polls = 0;
        loop {
            if self.tail_seen == self.head {
                let tail = self.reload_tail()?;
                if self.tail_seen == self.head {
                    if tail & CLOSED != 0 || self.core.closed_here.load(Ordering::Relaxed) {
                        return Err(Error::Closed);
                    }
                    let Until::Deadline(deadline) = until else {
                        return Ok(None);
                    };
                    if !poll_again(&mut polls) {
                        park(self.core.tail(), tail, deadline)?;
                    }
                    continue;
                }
            }
            let published = self.tail_seen.wrapping_sub(self.head);
            let offset = self.core.offset_of(self.head);
            let to_end = capacity - offset;
            let (kind, len) = unpack(self.core.record(offset).load(Ordering::Relaxed));
            match kind {
                MESSAGE => {
                    let bytes = record_len(len as usize);
                    // `len` is below 2^32, so `bytes` did not wrap unless `len` is absurd,
                    // which the checks below refuse as well (`bytes <= to_end <= capacity`).
                    if len as usize > max_message_len(capacity)
                        || bytes > to_end
                        || bytes > published
                    {
                        return Err(Error::Corrupted {
                            what: "a message record runs past the published bytes",
                        });
                    }
                    return Ok(Some(Record {
                        payload_at: (offset + RECORD_HEADER) as usize,
                        len: len as usize,
                        bytes,
                    }));
                }
                PADDING if len == to_end && to_end <= published => {
                    release(&self.core, &mut self.head, to_end)?;
                }
                PADDING => {
                    return Err(Error::Corrupted {
                        what: "a padding record does not end at the end of the ring",
                    })
                }
                _ => {
                    return Err(Error::Corrupted {
                        what: "a record of unknown kind",
                    })
                }
            }
        }
    }

    /// Whether every message received so far ends at or before `position` (a value of
    /// [`ByteRing::published`] read earlier): `true` for a message that was published when
    /// that position was read. Garbage in `position` only makes the answer wrong.
    #[allow(dead_code)] // for the process workers only, which loom builds leave out
    pub(crate) fn read_up_to(&self, position: u32) -> bool {
        within(position.wrapping_sub(self.head), self.core.capacity())
    }

    /// Reloads and checks the sender's position; returns the tail word as read.
    fn reload_tail(&mut self) -> Result<u32, Error> {
        let word = self.core.tail().load(Ordering::Acquire);
        let tail = word & !FLAGS;
        if tail % RECORD_HEADER != 0 || !within(tail.wrapping_sub(self.head), self.core.capacity())
        {
            return Err(Error::Corrupted {
                what: "the sender's position is not within the ring",
            });
        }
        self.tail_seen = tail;
        Ok(word)
    }

    /// The data bytes.
    pub fn capacity(&self) -> usize {
        self.core.capacity() as usize
    }

    /// The longest message: `capacity − 8` bytes.
    pub fn max_message_len(&self) -> usize {
        max_message_len(self.core.capacity())
    }

    /// Closes the ring (see [`ByteRing::close`]).
    pub fn close(&self) {
        self.core.close();
    }

    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        self.core.is_closed()
    }
}

impl Drop for ByteReceiver {
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // a failed loom model: touching loom now would abort (see `shim`)
        }
        self.core.close();
    }
}

impl fmt::Debug for ByteReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ByteReceiver")
            .field("byte_offset", &self.core.byte_offset)
            .field("capacity", &self.core.capacity())
            .field("position", &self.head)
            .finish()
    }
}

/// Frees a received record when dropped, unless [`finish`](Consume::finish) already did.
struct Consume<'a> {
    core: &'a Core,
    head: &'a mut u32,
    bytes: u32,
    done: bool,
}

impl Consume<'_> {
    fn finish(mut self) -> Result<(), Error> {
        self.done = true;
        release(self.core, self.head, self.bytes)
    }
}

impl Drop for Consume<'_> {
    fn drop(&mut self) {
        if !self.done && !shim::model_is_unwinding() {
            // Unwinding out of the reader's closure: the message is consumed all the same;
            // a corrupted head word is reported by the next call.
            let _ = release(self.core, self.head, self.bytes);
        }
    }
}

/// Frees the next `bytes` bytes: advances our position `head` (the record is consumed whatever
/// happens next) and moves the head word there, keeping `CLOSED`, clearing `WAITING` (and
/// notifying if it was set).
fn release(core: &Core, head: &mut u32, bytes: u32) -> Result<(), Error> {
    let old = *head;
    let new = old.wrapping_add(bytes);
    *head = new;
    let word = core.head();
    let mut current = old; // first guess: no flag set (as in `publish`)
    for _ in 0..CAS_TRIES {
        if current & !FLAGS != old {
            return Err(Error::Corrupted {
                what: "the receiver's position was moved by another writer",
            });
        }
        match word.compare_exchange(current, new | (current & CLOSED), Ordering::Release) {
            Ok(_) => {
                if current & WAITING != 0 {
                    word.notify(None);
                }
                return Ok(());
            }
            Err(seen) => current = seen,
        }
    }
    Err(Error::Corrupted {
        what: "the receiver's position word changes at every try",
    })
}

/// Sleeps on `word` while it holds `seen` with `WAITING` set, after setting the flag from
/// exactly `seen` (see "Block" in the module docs). Returns when the caller should look again;
/// `Err(Timeout)` once `deadline` has passed (checked here too, so a peer that keeps changing
/// the word cannot keep us past it).
fn park(word: Word<'_, u32>, seen: u32, deadline: Option<Instant>) -> Result<(), Error> {
    if deadline.is_some_and(|at| Instant::now() >= at) {
        return Err(Error::Timeout);
    }
    let flagged = seen | WAITING;
    if seen & WAITING == 0
        && word
            .compare_exchange(seen, flagged, Ordering::SeqCst)
            .is_err()
    {
        return Ok(()); // the word moved on: look again
    }
    match word.wait_until(flagged, deadline)? {
        WaitResult::TimedOut => Err(Error::Timeout),
        WaitResult::Ok | WaitResult::NotEqual => Ok(()),
    }
}

/// Whether to look once more, after a short growing pause (spin hints, then yields), before
/// sleeping. Never under loom.
fn poll_again(polls: &mut u32) -> bool {
    if LOOM || *polls >= POLLS {
        return false;
    }
    if *polls < SPINNING_POLLS {
        for _ in 0..(1u32 << *polls) {
            std::hint::spin_loop();
        }
    } else {
        thread::yield_now();
    }
    *polls += 1;
    true
}

/// `Err(InvalidParameter)` unless `capacity` is a power of two in the allowed range.
fn check_capacity(capacity: usize) -> Result<u32, Error> {
    if capacity.is_power_of_two()
        && (ByteRing::MIN_CAPACITY..=ByteRing::MAX_CAPACITY).contains(&capacity)
    {
        Ok(capacity as u32)
    } else {
        Err(Error::InvalidParameter {
            parameter: "byte ring capacity",
            value: capacity as u64,
            expected: "a power of two from 16 to 2^30",
        })
    }
}

fn max_message_len(capacity: u32) -> usize {
    (capacity - RECORD_HEADER) as usize
}

/// Bytes of the record of a `len`-byte message (saturating: callers bound `len` first, or
/// refuse a result above the capacity).
fn record_len(len: usize) -> u32 {
    let padded = (len as u64).saturating_add(7) & !7;
    u32::try_from(padded.saturating_add(u64::from(RECORD_HEADER))).unwrap_or(u32::MAX)
}

/// Whether `distance` (`tail − head`, modulo 2³²) is a possible fill: at most the capacity.
fn within(distance: u32, capacity: u32) -> bool {
    distance <= capacity
}

fn pack(kind: u32, len: u32) -> u64 {
    (u64::from(kind) << 32) | u64::from(len)
}

fn unpack(header: u64) -> (u32, u32) {
    ((header >> 32) as u32, header as u32)
}
