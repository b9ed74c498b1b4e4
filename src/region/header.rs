//! The header of a process-shared buffer: what every process mapping the buffer agrees on.
//!
//! A process-shared buffer is a file (a memfd or a named file, e.g. under `/dev/shm`) that
//! starts with this header; the buffer's byte 0 is the first byte after it, so views and
//! atomics work on the data exactly as on a private buffer. The header is written once by the
//! process that creates the file, magic number last, and validated by every process that opens
//! it ([`parse`]) before anything else of the file is used (docs/semantics.md X1).
//!
//! ## Layout, version 1
//!
//! Every field is a native-endian integer at a naturally aligned offset, read and written only
//! with atomic operations (never through a Rust reference: another process may write it at any
//! time). Sizes in bytes.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic: the bytes `sharedbf` |
//! | 8 | 4 | layout version: 1 |
//! | 12 | 4 | header length: where the data starts (16384) |
//! | 16 | 8 | byte length: the buffer's current length; a grow compare-exchanges it |
//! | 24 | 8 | max byte length: fixed at creation (a fixed buffer's own length) |
//! | 32 | 4 | flags: bit 0 = growable; any other bit refuses the file (a newer feature) |
//! | 36 | 4 | waiter slots: how many (384) |
//! | 40 | 24 | reserved, zero |
//! | 64 | 8 | waiting: slots queued now (the no-waiter fast path of `notify`) |
//! | 72 | 8 | next ticket: hands out the FIFO order of waiters |
//! | 80 | 8 | slots used: one past the highest slot ever claimed (bounds `notify`'s scan) |
//! | 88 | 4008 | reserved, zero: room for later needs (a liveness table of the processes attached, futex words of the crate's own) |
//! | 4096 | 32 × 384 | waiter slots |
//!
//! A waiter slot (32 bytes; the protocol is in `atomics/process_waiters.rs`):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | state: status in the low 32 bits (the futex word), generation in the high 32 |
//! | 8 | 8 | the byte offset in the data of the element waited on |
//! | 16 | 8 | ticket (FIFO order) |
//! | 24 | 4 | owner: the waiting process's id |
//! | 28 | 4 | link: which doorbell to ring (async waiters), or a doorbell's ring counter |
//!
//! The file is exactly header length + max byte length bytes long from its creation (sparse:
//! pages cost memory when first touched), so every byte below any length up to the maximum is
//! backed and a grow is one compare-exchange of the length word.
//!
//! ## Trust
//!
//! Another process may write anything into the header at any time, so after validation a
//! process keeps its own copy of what must not change (the maximum, the flags: [`Layout`]) and
//! checks every value it reads from the header again before using it: a length against its
//! own maximum, a slot index against its own slot count. What it reads can be wrong, never
//! unsafe to use (docs/semantics.md X5).

use std::marker::PhantomData;
use std::time::Instant;

use super::bits::{Bits, RmwOp};
use super::memory::RegionPtr;
use super::MAX_RESERVE;
use crate::error::Error;
use crate::shim::{Ordering, Parked, LOOM};

/// The first bytes of every process-shared buffer.
pub(crate) const MAGIC: [u8; 8] = *b"sharedbf";
/// The layout this crate writes and reads.
pub(crate) const VERSION: u32 = 1;
/// The bytes [`parse`] validates: the fixed fields.
pub(crate) const PREFIX_LEN: usize = 64;

const VERSION_AT: usize = 8;
const HEADER_LEN_AT: usize = 12;
const BYTE_LENGTH_AT: usize = 16;
const MAX_BYTE_LENGTH_AT: usize = 24;
const FLAGS_AT: usize = 32;
const SLOTS_AT: usize = 36;
const WAITING_AT: usize = 64;
const NEXT_TICKET_AT: usize = 72;
const SLOTS_USED_AT: usize = 80;

/// Where the waiter slots start. Under loom the header is tiny (models use a few slots, and
/// every byte is a loom cell); it never reaches a file there.
const SLOTS_OFFSET: usize = if LOOM { 128 } else { 4096 };
/// Waiter slots per buffer.
pub(crate) const SLOT_COUNT: usize = if LOOM { 4 } else { 384 };
/// Bytes per waiter slot.
pub(crate) const SLOT_SIZE: usize = 32;
/// Bytes before the data: a whole number of pages natively, so the data is page-aligned.
pub(crate) const HEADER_LEN: usize = SLOTS_OFFSET + SLOT_COUNT * SLOT_SIZE;

const FLAG_GROWABLE: u32 = 1;
const KNOWN_FLAGS: u32 = FLAG_GROWABLE;

/// The largest maximum byte length a process-shared buffer may have.
pub(crate) const MAX_DATA: usize = MAX_RESERVE - HEADER_LEN;

/// Where a slot's 32-bit status (the futex word) sits in its 64-bit state word.
const STATUS_AT: usize = if cfg!(target_endian = "little") { 0 } else { 4 };

/// What a process validated when it mapped the buffer, and keeps as its own truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The length when the header was read (the header's length word is the truth after).
    pub(crate) byte_length: usize,
    pub(crate) max_byte_length: usize,
    pub(crate) growable: bool,
}

impl Layout {
    /// The layout of a new buffer of `byte_length` bytes, growable up to `max` if `Some`.
    pub(crate) fn new(byte_length: usize, max: Option<usize>) -> Result<Layout, Error> {
        let max_byte_length = max.unwrap_or(byte_length);
        if byte_length > max_byte_length {
            return Err(Error::ExceedsMax {
                requested: byte_length,
                max: max_byte_length,
            });
        }
        if max_byte_length > MAX_DATA {
            return Err(Error::AllocationFailed {
                bytes: max_byte_length,
                reason: format!(
                    "larger than the {MAX_DATA} bytes a process-shared buffer can hold"
                ),
            });
        }
        Ok(Layout {
            byte_length,
            max_byte_length,
            growable: max.is_some(),
        })
    }

    /// The file's length: the header and the whole maximum.
    pub(crate) fn file_len(&self) -> usize {
        HEADER_LEN + self.max_byte_length
    }
}

fn bad(reason: impl Into<String>) -> Error {
    Error::BadHeader {
        reason: reason.into(),
    }
}

fn u32_at(prefix: &[u8; PREFIX_LEN], at: usize) -> u32 {
    u32::from_ne_bytes([prefix[at], prefix[at + 1], prefix[at + 2], prefix[at + 3]])
}

fn u64_at(prefix: &[u8; PREFIX_LEN], at: usize) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&prefix[at..at + 8]);
    u64::from_ne_bytes(bytes)
}

/// Validates the first [`PREFIX_LEN`] bytes of a file of `file_len` bytes: `Ok` with lengths
/// that fit the file (`byte_length <= max_byte_length`, and the file holds exactly the header
/// and the maximum), or `Err(BadHeader)` saying what is wrong. Never panics, whatever the bytes.
pub(crate) fn parse(prefix: &[u8; PREFIX_LEN], file_len: u64) -> Result<Layout, Error> {
    if file_len < HEADER_LEN as u64 {
        return Err(bad(format!(
            "the file is {file_len} bytes, shorter than the {HEADER_LEN}-byte header"
        )));
    }
    if prefix[..8] != MAGIC {
        return Err(if prefix[..8] == [0; 8] {
            bad("no magic number: the header was never written (or is still being written)")
        } else {
            bad(format!(
                "wrong magic number {:02x?}: not a sharedbuf buffer",
                &prefix[..8]
            ))
        });
    }
    let version = u32_at(prefix, VERSION_AT);
    if version != VERSION {
        return Err(bad(if version > VERSION {
            format!("layout version {version} is newer than this crate's ({VERSION})")
        } else {
            format!("layout version {version} does not exist")
        }));
    }
    let header_len = u32_at(prefix, HEADER_LEN_AT);
    if header_len as usize != HEADER_LEN {
        return Err(bad(format!(
            "header length {header_len} bytes, expected {HEADER_LEN}"
        )));
    }
    let slots = u32_at(prefix, SLOTS_AT);
    if slots as usize != SLOT_COUNT {
        return Err(bad(format!("{slots} waiter slots, expected {SLOT_COUNT}")));
    }
    let flags = u32_at(prefix, FLAGS_AT);
    if flags & !KNOWN_FLAGS != 0 {
        return Err(bad(format!(
            "unknown flags {:#x} (a feature of a newer version)",
            flags & !KNOWN_FLAGS
        )));
    }
    let growable = flags & FLAG_GROWABLE != 0;
    let max = u64_at(prefix, MAX_BYTE_LENGTH_AT);
    let length = u64_at(prefix, BYTE_LENGTH_AT);
    if max > MAX_DATA as u64 {
        return Err(bad(format!(
            "maximum length of {max} bytes is more than a buffer can hold"
        )));
    }
    if file_len != HEADER_LEN as u64 + max {
        return Err(bad(format!(
            "the file is {file_len} bytes, but its header says {} (the header and a maximum of {max} bytes)",
            HEADER_LEN as u64 + max
        )));
    }
    if length > max {
        return Err(bad(format!(
            "length of {length} bytes exceeds the maximum of {max} bytes"
        )));
    }
    if !growable && length != max {
        return Err(bad(format!(
            "a fixed buffer whose length ({length} bytes) differs from its maximum ({max} bytes)"
        )));
    }
    // Both fit in `usize`: at most `MAX_DATA`.
    Ok(Layout {
        byte_length: length as usize,
        max_byte_length: max as usize,
        growable,
    })
}

/// The header of one mapping of a process-shared buffer, and this process's validated
/// [`Layout`] of it.
pub(crate) struct Header {
    /// Byte 0 of the mapping.
    base: RegionPtr,
    layout: Layout,
}

// SAFETY: the header is only accessed through atomics (`HeaderWord`), like region memory.
unsafe impl Send for Header {}
// SAFETY: as for `Send`.
unsafe impl Sync for Header {}

impl Header {
    /// # Safety
    /// `base` points to the first of at least [`HEADER_LEN`] accessible bytes, 8-aligned, that
    /// stay mapped for as long as the `Header` lives and are only ever accessed atomically.
    pub(crate) unsafe fn new(base: RegionPtr, layout: Layout) -> Header {
        Header { base, layout }
    }

    /// Writes a new header for `self`'s layout into zeroed memory that no other process can
    /// see yet, or that others only read after the magic number: every field first, the magic
    /// last, with release ordering.
    pub(crate) fn write(&self) {
        let layout = self.layout;
        self.word::<u32>(VERSION_AT)
            .store(VERSION, Ordering::Relaxed);
        self.word::<u32>(HEADER_LEN_AT)
            .store(HEADER_LEN as u32, Ordering::Relaxed);
        self.word::<u64>(BYTE_LENGTH_AT)
            .store(layout.byte_length as u64, Ordering::Relaxed);
        self.word::<u64>(MAX_BYTE_LENGTH_AT)
            .store(layout.max_byte_length as u64, Ordering::Relaxed);
        let flags = if layout.growable { FLAG_GROWABLE } else { 0 };
        self.word::<u32>(FLAGS_AT).store(flags, Ordering::Relaxed);
        self.word::<u32>(SLOTS_AT)
            .store(SLOT_COUNT as u32, Ordering::Relaxed);
        self.word::<u64>(0)
            .store(u64::from_ne_bytes(MAGIC), Ordering::Release);
    }

    /// The layout this process validated (its own maximum and flags).
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }

    /// The header's length word: the buffer's length, which any process may have written.
    pub(crate) fn length(&self) -> HeaderWord<'_, u64> {
        self.word(BYTE_LENGTH_AT)
    }

    /// The number of queued waiter slots (a hint: see `atomics/process_waiters.rs`).
    pub(crate) fn waiting(&self) -> HeaderWord<'_, u64> {
        self.word(WAITING_AT)
    }

    /// The next waiter's ticket.
    pub(crate) fn next_ticket(&self) -> HeaderWord<'_, u64> {
        self.word(NEXT_TICKET_AT)
    }

    /// One past the highest slot ever claimed.
    pub(crate) fn slots_used(&self) -> HeaderWord<'_, u64> {
        self.word(SLOTS_USED_AT)
    }

    /// Waiter slot `index`, `None` unless `index < SLOT_COUNT`.
    pub(crate) fn slot(&self, index: usize) -> Option<Slot<'_>> {
        (index < SLOT_COUNT).then(|| Slot {
            header: self,
            at: SLOTS_OFFSET + index * SLOT_SIZE,
        })
    }

    /// The word of type `B` at `at`, which is aligned and within the header (callers pass the
    /// constants above).
    fn word<B: Bits>(&self, at: usize) -> HeaderWord<'_, B> {
        assert!(at % B::SIZE == 0 && at + B::SIZE <= HEADER_LEN);
        HeaderWord {
            // SAFETY: `at + B::SIZE <= HEADER_LEN` (asserted): within the header's bytes.
            ptr: unsafe { self.base.add(at) },
            _header: PhantomData,
            _bits: PhantomData,
        }
    }
}

/// One waiter slot of a [`Header`]; see the layout above.
#[derive(Clone, Copy)]
pub(crate) struct Slot<'a> {
    header: &'a Header,
    at: usize,
}

impl<'a> Slot<'a> {
    /// Status (low 32 bits) and generation (high 32 bits).
    pub(crate) fn state(self) -> HeaderWord<'a, u64> {
        self.header.word(self.at)
    }

    /// The status half of the state word alone: the futex word.
    pub(crate) fn status(self) -> HeaderWord<'a, u32> {
        self.header.word(self.at + STATUS_AT)
    }

    /// The byte offset in the data of the element waited on.
    pub(crate) fn offset(self) -> HeaderWord<'a, u64> {
        self.header.word(self.at + 8)
    }

    /// The waiter's place in the FIFO order.
    pub(crate) fn ticket(self) -> HeaderWord<'a, u64> {
        self.header.word(self.at + 16)
    }

    /// The waiting process's id.
    pub(crate) fn owner(self) -> HeaderWord<'a, u32> {
        self.header.word(self.at + 24)
    }

    /// Which doorbell to ring, or a doorbell's ring counter.
    pub(crate) fn link(self) -> HeaderWord<'a, u32> {
        self.header.word(self.at + 28)
    }
}

/// An aligned word of a [`Header`], borrowed from it: atomic operations only, which cannot
/// fail (the word was checked to lie within the header when it was made).
#[derive(Clone, Copy)]
pub(crate) struct HeaderWord<'a, B: Bits> {
    ptr: RegionPtr,
    _header: PhantomData<&'a Header>,
    _bits: PhantomData<fn() -> B>,
}

impl<B: Bits> HeaderWord<'_, B> {
    pub(crate) fn load(self, order: Ordering) -> B {
        // SAFETY: the word is aligned and within the header (`Header::word`), whose mapping
        // the borrow keeps alive; header memory is only accessed atomically.
        unsafe { self.ptr.load(0, order) }
    }

    pub(crate) fn store(self, value: B, order: Ordering) {
        // SAFETY: as in `load`.
        unsafe { self.ptr.store(0, value, order) }
    }

    /// Writes `new` if the word holds `current`: `Ok(current)` or `Err(actual)`.
    pub(crate) fn compare_exchange(self, current: B, new: B, order: Ordering) -> Result<B, B> {
        // SAFETY: as in `load`.
        let old = unsafe { self.ptr.compare_exchange(current, new, order) };
        if old == current {
            Ok(old)
        } else {
            Err(old)
        }
    }

    /// Adds (wrapping); returns the old value.
    pub(crate) fn fetch_add(self, value: B, order: Ordering) -> B {
        // SAFETY: as in `load`.
        unsafe { self.ptr.rmw(RmwOp::Add, value, order) }
    }

    /// Subtracts (wrapping); returns the old value.
    pub(crate) fn fetch_sub(self, value: B, order: Ordering) -> B {
        // SAFETY: as in `load`.
        unsafe { self.ptr.rmw(RmwOp::Sub, value, order) }
    }
}

impl HeaderWord<'_, u32> {
    /// Sleeps while the word holds `expected`, until woken by [`HeaderWord::futex_wake`] from
    /// any process mapping the buffer, or until `deadline`. May return spuriously; `Woken`
    /// also when the word did not hold `expected`.
    pub(crate) fn futex_wait(self, expected: u32, deadline: Option<Instant>) -> Parked {
        // SAFETY: as in `load`: an aligned 32-bit word of live, shared, atomic-only memory.
        unsafe { self.ptr.futex_wait(expected, deadline) }
    }

    /// Wakes up to `count` threads sleeping in [`HeaderWord::futex_wait`] on this word, in
    /// any process; returns how many.
    pub(crate) fn futex_wake(self, count: u32) -> usize {
        // SAFETY: as in `futex_wait`.
        unsafe { self.ptr.futex_wake(count) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(layout: Layout) -> [u8; PREFIX_LEN] {
        let mut p = [0u8; PREFIX_LEN];
        p[..8].copy_from_slice(&MAGIC);
        p[8..12].copy_from_slice(&VERSION.to_ne_bytes());
        p[12..16].copy_from_slice(&(HEADER_LEN as u32).to_ne_bytes());
        p[16..24].copy_from_slice(&(layout.byte_length as u64).to_ne_bytes());
        p[24..32].copy_from_slice(&(layout.max_byte_length as u64).to_ne_bytes());
        p[32..36].copy_from_slice(&u32::from(layout.growable).to_ne_bytes());
        p[36..40].copy_from_slice(&(SLOT_COUNT as u32).to_ne_bytes());
        p
    }

    fn reason(result: Result<Layout, Error>) -> String {
        match result {
            Err(Error::BadHeader { reason }) => reason,
            other => panic!("expected BadHeader, got {other:?}"),
        }
    }

    #[test]
    fn a_written_header_parses_back() {
        for layout in [
            Layout::new(100, None).unwrap(),
            Layout::new(0, Some(1 << 40)).unwrap(),
            Layout::new(8, Some(8)).unwrap(),
        ] {
            let file_len = layout.file_len() as u64;
            assert_eq!(parse(&prefix(layout), file_len), Ok(layout));
        }
    }

    #[test]
    fn each_defect_is_named() {
        let layout = Layout::new(64, Some(128)).unwrap();
        let good = prefix(layout);
        let len = layout.file_len() as u64;
        let with = |at: usize, bytes: &[u8]| {
            let mut p = good;
            p[at..at + bytes.len()].copy_from_slice(bytes);
            p
        };
        assert!(reason(parse(&good, HEADER_LEN as u64 - 1)).contains("shorter"));
        assert!(reason(parse(&with(0, b"SHAREDBF"), len)).contains("magic"));
        assert!(reason(parse(&with(0, &[0; 8]), len)).contains("never written"));
        assert!(reason(parse(&with(8, &2u32.to_ne_bytes()), len)).contains("newer"));
        assert!(reason(parse(&with(8, &0u32.to_ne_bytes()), len)).contains("version 0"));
        assert!(reason(parse(&with(12, &8u32.to_ne_bytes()), len)).contains("header length"));
        assert!(reason(parse(&with(36, &1u32.to_ne_bytes()), len)).contains("slots"));
        assert!(reason(parse(&with(32, &3u32.to_ne_bytes()), len)).contains("unknown flags"));
        assert!(reason(parse(&good, len + 1)).contains("header says"));
        assert!(reason(parse(&with(16, &129u64.to_ne_bytes()), len)).contains("exceeds"));
        assert!(reason(parse(&with(32, &0u32.to_ne_bytes()), len)).contains("fixed buffer"));
        let huge = with(24, &u64::MAX.to_ne_bytes());
        assert!(reason(parse(&huge, u64::MAX)).contains("more than a buffer can hold"));
    }

    #[test]
    fn new_layouts_check_their_lengths() {
        assert!(matches!(
            Layout::new(9, Some(8)),
            Err(Error::ExceedsMax { .. })
        ));
        assert!(matches!(
            Layout::new(0, Some(usize::MAX)),
            Err(Error::AllocationFailed { .. })
        ));
        assert!(Layout::new(MAX_DATA, None).is_ok());
    }

    mod fuzz {
        //! Random headers into the parser: `Ok` only with lengths that fit the file, `Err`
        //! otherwise, never a panic (docs/semantics.md X1, X5).

        use super::*;
        use proptest::prelude::*;

        /// `Ok` layouts must be self-consistent and fit the file exactly.
        fn check(prefix: &[u8; PREFIX_LEN], file_len: u64) {
            if let Ok(layout) = parse(prefix, file_len) {
                assert!(layout.byte_length <= layout.max_byte_length);
                assert!(layout.max_byte_length <= MAX_DATA);
                assert_eq!(layout.file_len() as u64, file_len);
                assert!(layout.growable || layout.byte_length == layout.max_byte_length);
                assert_eq!(&prefix[..8], &MAGIC);
            }
        }

        /// A valid prefix for a random layout, then up to four random byte overwrites; a file
        /// length that is right, or off by a little, or anything.
        fn mutated() -> impl Strategy<Value = ([u8; PREFIX_LEN], u64)> {
            (
                0usize..=1 << 20,
                0usize..=1 << 20,
                any::<bool>(),
                proptest::collection::vec((0usize..PREFIX_LEN, any::<u8>()), 0..4),
                prop_oneof![Just(0i64), -2i64..=2, any::<i64>()],
            )
                .prop_map(|(a, b, growable, edits, delta)| {
                    let (len, max) = if growable {
                        (a.min(b), a.max(b))
                    } else {
                        (a, a)
                    };
                    let layout = Layout::new(len, growable.then_some(max)).unwrap();
                    let mut p = prefix(layout);
                    for (at, byte) in edits {
                        p[at] = byte;
                    }
                    (p, (layout.file_len() as u64).wrapping_add_signed(delta))
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 16 } else { 2048 }))]

            #[test]
            fn random_bytes_never_panic(bytes in proptest::array::uniform32(any::<u8>()),
                                        more in proptest::array::uniform32(any::<u8>()),
                                        file_len in any::<u64>()) {
                let mut p = [0u8; PREFIX_LEN];
                p[..32].copy_from_slice(&bytes);
                p[32..].copy_from_slice(&more);
                check(&p, file_len);
            }

            #[test]
            fn near_valid_headers_parse_consistently((p, file_len) in mutated()) {
                check(&p, file_len);
            }
        }
    }
}
