//! Raw memory behind a region: nothing (zero bytes), a heap block, an anonymous mapping, or a
//! reservation of address space committed as it grows, and [`RegionPtr`], a plain pointer whose word operations are single atomic instructions.
//!
//! Under loom `loom_memory.rs` takes this file's place with the same interface.

use std::ptr::NonNull;
use std::time::Instant;

use super::bits::{Bits, RmwOp};
use super::futex;
use super::heap::HeapBlock;
use super::mmap::AnonymousMapping;
#[cfg(unix)]
use super::reservation::Reservation;
use crate::error::Error;
use crate::shim::{Ordering, Parked};

/// Blocks at least this large come from an anonymous mapping (committed lazily by the OS);
/// smaller ones from the heap. Miri cannot run `mmap`, so under Miri everything is heap.
const MAPPING_THRESHOLD: usize = if cfg!(miri) { usize::MAX } else { 256 * 1024 };

/// Blocks to be written in full at once (`uninit`) at least this large are mapped and advised
/// to use huge pages (2 MiB on x86-64): a few of them, so the ragged ends matter little.
const HUGE_PAGE_THRESHOLD: usize = if cfg!(miri) { usize::MAX } else { 8 << 20 };

/// What owns a region's memory; dropping it frees the memory.
#[allow(dead_code)] // the owners are held only for their `Drop`
pub(super) enum Memory {
    /// Zero bytes: nothing to own, the pointer is dangling and never accessed.
    Empty,
    /// Wholly accessible from the start.
    Heap(HeapBlock),
    /// Wholly accessible from the start (pages are still committed lazily by the OS).
    Anonymous(AnonymousMapping),
    /// Address space whose accessible part grows with [`Memory::commit`].
    #[cfg(unix)]
    Reserved(Reservation),
}

impl Memory {
    /// `reserved` zeroed bytes of which at least the first `accessible` may be accessed, and a
    /// pointer to the first.
    ///
    /// Blocks that are wholly accessible, or small, are allocated outright; a large one with
    /// room to grow reserves address space only and commits `accessible` bytes of it.
    pub(super) fn new(reserved: usize, accessible: usize) -> Result<(Memory, RegionPtr), Error> {
        debug_assert!(accessible <= reserved);
        Ok(if reserved == 0 {
            (Memory::Empty, RegionPtr(NonNull::<u64>::dangling().cast()))
        } else if reserved < MAPPING_THRESHOLD {
            let block = HeapBlock::zeroed(reserved)?;
            let base = RegionPtr(block.base());
            (Memory::Heap(block), base)
        } else if accessible == reserved {
            let mapping = AnonymousMapping::zeroed(reserved)?;
            let base = RegionPtr(mapping.base());
            (Memory::Anonymous(mapping), base)
        } else {
            Self::reserve(reserved, accessible)?
        })
    }

    /// `len` bytes with unspecified contents, all accessible (the caller writes them all before
    /// reading any): heap memory the allocator need not zero, or for a block of several huge
    /// pages a mapping advised to use them ([`AnonymousMapping::for_immediate_write`]).
    pub(super) fn uninit(len: usize) -> Result<(Memory, RegionPtr), Error> {
        Ok(if len == 0 {
            (Memory::Empty, RegionPtr(NonNull::<u64>::dangling().cast()))
        } else if len >= HUGE_PAGE_THRESHOLD {
            let mapping = AnonymousMapping::for_immediate_write(len)?;
            let base = RegionPtr(mapping.base());
            (Memory::Anonymous(mapping), base)
        } else {
            let block = HeapBlock::uninit(len)?;
            let base = RegionPtr(block.base());
            (Memory::Heap(block), base)
        })
    }

    /// Address space for `reserved` bytes, the first `accessible` committed.
    #[cfg(unix)]
    fn reserve(reserved: usize, accessible: usize) -> Result<(Memory, RegionPtr), Error> {
        let reservation = Reservation::new(reserved, accessible)?;
        let base = RegionPtr(reservation.base());
        Ok((Memory::Reserved(reservation), base))
    }

    /// Without reservations (not unix), the whole block is mapped, as for a fixed buffer.
    #[cfg(not(unix))]
    fn reserve(reserved: usize, _accessible: usize) -> Result<(Memory, RegionPtr), Error> {
        let mapping = AnonymousMapping::zeroed(reserved)?;
        let base = RegionPtr(mapping.base());
        Ok((Memory::Anonymous(mapping), base))
    }

    /// Makes sure the first `len` bytes may be accessed, from every thread, once this returns
    /// `Ok`. Thread-safe; never makes any byte inaccessible.
    pub(super) fn commit(&self, len: usize) -> Result<(), Error> {
        match self {
            #[cfg(unix)]
            Memory::Reserved(reservation) => reservation.commit(len),
            _ => Ok(()),
        }
    }
}

/// A pointer to one byte of a region, for hot paths (a view keeps one to its first byte, so an
/// element access is an add and one atomic instruction, not a walk through the buffer handle).
///
/// Making one is safe; using it is `unsafe`: the caller must keep the region alive (views hold
/// a clone of their buffer) and stay within its accessible bytes (its buffer's length, see
/// [`super::Region::commit`]). A region never moves, so the
/// pointer stays valid for as long as the region lives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RegionPtr(NonNull<u8>);

// SAFETY: a `RegionPtr` is only dereferenced atomically (the operations below), like the region
// it points into, whose memory has no thread affinity.
unsafe impl Send for RegionPtr {}
// SAFETY: as for `Send`.
unsafe impl Sync for RegionPtr {}

impl RegionPtr {
    /// A pointer to `base`, the first byte of memory a backing owns.
    pub(super) fn from_base(base: NonNull<u8>) -> RegionPtr {
        RegionPtr(base)
    }

    /// The pointer `bytes` further on.
    ///
    /// # Safety
    /// The result stays within the region's reserved bytes (or one past the end).
    #[inline(always)]
    pub(crate) unsafe fn add(self, bytes: usize) -> RegionPtr {
        // SAFETY: in bounds per the caller.
        RegionPtr(unsafe { self.0.add(bytes) })
    }

    /// Atomic load of the `B` at `offset` bytes past this pointer.
    ///
    /// # Safety
    /// The region is alive; the pointer plus `offset` is aligned to `B::SIZE` and the `B::SIZE`
    /// bytes there are within the region's reserved bytes.
    #[inline(always)]
    pub(crate) unsafe fn load<B: Bits>(self, offset: usize, order: Ordering) -> B {
        // SAFETY: in bounds, aligned and alive per the caller; region memory is atomic-only.
        unsafe { B::load(self.0.as_ptr().add(offset), order) }
    }

    /// Atomic load of the `B` at index `index` (`index * B::SIZE` bytes past this pointer): the
    /// same as [`RegionPtr::load`], in the form a loop over elements compiles best (an indexed
    /// address, as for a slice, rather than a byte offset computed first).
    ///
    /// # Safety
    /// As for [`RegionPtr::load`] at offset `index * B::SIZE`.
    #[inline(always)]
    pub(crate) unsafe fn load_element<B: Bits>(self, index: usize, order: Ordering) -> B {
        // SAFETY: in bounds, aligned and alive per the caller; region memory is atomic-only.
        unsafe { B::load(self.0.as_ptr().cast::<B>().add(index).cast(), order) }
    }

    /// Atomic store of `value` at index `index`; see [`RegionPtr::load_element`].
    ///
    /// # Safety
    /// As for [`RegionPtr::load`] at offset `index * B::SIZE`.
    #[inline(always)]
    pub(crate) unsafe fn store_element<B: Bits>(self, index: usize, value: B, order: Ordering) {
        // SAFETY: in bounds, aligned and alive per the caller; region memory is atomic-only.
        unsafe { B::store(self.0.as_ptr().cast::<B>().add(index).cast(), value, order) }
    }

    /// Atomic store of `value` at `offset` bytes past this pointer.
    ///
    /// # Safety
    /// As for [`RegionPtr::load`].
    #[inline(always)]
    pub(crate) unsafe fn store<B: Bits>(self, offset: usize, value: B, order: Ordering) {
        // SAFETY: in bounds, aligned and alive per the caller; region memory is atomic-only.
        unsafe { B::store(self.0.as_ptr().add(offset), value, order) }
    }

    /// Atomic read-modify-write of the `B` here; returns the old value.
    ///
    /// # Safety
    /// As for [`RegionPtr::load`], at offset 0.
    #[inline(always)]
    pub(crate) unsafe fn rmw<B: Bits>(self, op: RmwOp, operand: B, order: Ordering) -> B {
        // SAFETY: in bounds, aligned and alive per the caller; region memory is atomic-only.
        unsafe { B::rmw(self.0.as_ptr(), op, operand, order) }
    }

    /// Atomic compare-exchange of the `B` here; returns the old value whether or not it wrote.
    ///
    /// # Safety
    /// As for [`RegionPtr::load`], at offset 0.
    #[inline(always)]
    pub(crate) unsafe fn compare_exchange<B: Bits>(
        self,
        expected: B,
        replacement: B,
        order: Ordering,
    ) -> B {
        // SAFETY: in bounds, aligned and alive per the caller; region memory is atomic-only.
        unsafe { B::compare_exchange(self.0.as_ptr(), expected, replacement, order) }
    }

    /// The absolute address: the identity of a location for waiter lists (docs/semantics.md A10).
    #[inline(always)]
    pub(crate) fn address(self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Sleeps while the `u32` here holds `expected`, until a [`RegionPtr::futex_wake`] on it
    /// from any process mapping the same file, or `deadline` (see `futex.rs`).
    ///
    /// # Safety
    /// As for [`RegionPtr::load`] of a `u32`, at offset 0.
    pub(crate) unsafe fn futex_wait(self, expected: u32, deadline: Option<Instant>) -> Parked {
        // SAFETY: an aligned, live, atomic-only word per the caller.
        unsafe { futex::wait(self.0.as_ptr().cast(), expected, deadline) }
    }

    /// Wakes up to `count` threads in [`RegionPtr::futex_wait`] on the `u32` here; returns how
    /// many.
    ///
    /// # Safety
    /// As for [`RegionPtr::futex_wait`].
    pub(crate) unsafe fn futex_wake(self, count: u32) -> usize {
        // SAFETY: as per the caller.
        unsafe { futex::wake(self.0.as_ptr().cast(), count) }
    }

    /// The raw pointer, for copies done by the CPU's string instructions (`region/copy.rs`).
    /// `None` where memory is not raw (loom). Only the x86_64 string-instruction copies use it,
    /// and Miri runs the portable loops instead.
    #[cfg_attr(any(miri, not(target_arch = "x86_64")), allow(dead_code))]
    #[inline(always)]
    pub(crate) fn raw(self) -> Option<*mut u8> {
        Some(self.0.as_ptr())
    }
}
