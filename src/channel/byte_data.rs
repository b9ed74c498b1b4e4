//! The data area of a [`ByteRing`](super::ByteRing): the bytes its records live in, with the
//! record headers as words and bounds-checked copies between the payload bytes and private
//! memory. The ring's protocol (`byte_ring`) and the in-place message access (`byte_message`)
//! both build on it, so neither depends on the other.

use crate::atomics::{SharedWords, Word};
use crate::error::Error;
use crate::range;

/// A ring's data area: `capacity` bytes at a fixed place of a buffer (kept alive by the words).
pub(super) struct DataArea {
    /// The data area as `u64`s: the record headers are read and written through these.
    records: SharedWords<u64>,
    /// Absolute byte offset of the data area in the buffer.
    at: usize,
    /// A power of two in `MIN_CAPACITY..=MAX_CAPACITY`.
    capacity: u32,
}

impl DataArea {
    /// The data area of `capacity` bytes whose words are `records`, starting at byte `at` of
    /// their buffer (the caller checked that it lies within the buffer).
    pub(super) fn new(records: SharedWords<u64>, at: usize, capacity: u32) -> Self {
        DataArea {
            records,
            at,
            capacity,
        }
    }

    /// Its size in bytes.
    pub(super) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The header word of the record at data offset `offset` (a multiple of 8 below the
    /// capacity, from the caller's own position).
    pub(super) fn record(&self, offset: u32) -> Word<'_, u64> {
        self.records.get(offset as usize / 8)
    }

    /// Copies `src` into the data area at `offset`.
    pub(super) fn copy_in(&self, offset: usize, src: &[u8]) -> Result<(), Error> {
        range::fit(offset, src.len(), self.capacity as usize)?;
        // SAFETY: the `capacity` bytes of the data area lie within the buffer (checked at
        // attach; a buffer never shrinks) and `offset + len <= capacity` (just checked); `src`
        // is private memory valid for `len` reads; `self.records` keeps the buffer alive.
        unsafe {
            self.records
                .buffer()
                .region()
                .copy_in(self.at + offset, src.as_ptr(), src.len())
        };
        Ok(())
    }

    /// Copies `len` bytes of the data area at `offset` out to `dst`.
    ///
    /// # Safety
    /// `dst` is valid for `len` byte writes and is not region memory.
    pub(super) unsafe fn copy_out(
        &self,
        offset: usize,
        dst: *mut u8,
        len: usize,
    ) -> Result<(), Error> {
        range::fit(offset, len, self.capacity as usize)?;
        // SAFETY: in bounds as in `copy_in`; `dst` per the caller.
        unsafe {
            self.records
                .buffer()
                .region()
                .copy_out(self.at + offset, dst, len)
        };
        Ok(())
    }
}
