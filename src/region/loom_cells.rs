//! The region under `--cfg loom`: an array of loom `AtomicU64` cells, one per 8 bytes, in
//! little-endian byte order (as on x86). Narrower accesses work on their containing cell —
//! loads shift and mask, writes use a compare-exchange loop — so mixed-size views stay
//! consistent and loom sees every access. Only tiny buffers belong in a loom model.

use std::sync::atomic::Ordering;

use super::bits::failure_ordering;
use super::{Bits, RmwOp, MAX_RESERVE};
use crate::error::Error;
use crate::shim::AtomicU64;

/// The loom stand-in for the raw cached pointer: the region (which never moves inside its
/// buffer's `Arc`) and a byte offset into it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RegionPtr {
    region: std::ptr::NonNull<Region>,
    /// `region.address(0)`, so `address` needs no access to the region.
    base_address: usize,
    offset: usize,
}

// SAFETY: only used to reach the region's loom atomics, and `Region` is `Send + Sync`.
unsafe impl Send for RegionPtr {}
// SAFETY: as for `Send`.
unsafe impl Sync for RegionPtr {}

impl RegionPtr {
    /// # Safety
    /// The result stays within the region.
    pub(crate) unsafe fn add(self, bytes: usize) -> RegionPtr {
        RegionPtr {
            offset: self.offset + bytes,
            ..self
        }
    }

    /// # Safety
    /// The region is alive; `offset` past the pointer is aligned and in bounds.
    pub(crate) unsafe fn load<B: Bits>(self, offset: usize, order: Ordering) -> B {
        // SAFETY: the region is alive per the caller.
        unsafe { self.region.as_ref().load(self.offset + offset, order) }
    }

    /// # Safety
    /// As for `load`.
    pub(crate) unsafe fn store<B: Bits>(self, offset: usize, value: B, order: Ordering) {
        // SAFETY: the region is alive per the caller.
        unsafe {
            self.region
                .as_ref()
                .store(self.offset + offset, value, order)
        }
    }

    /// # Safety
    /// As for `load`, at offset 0.
    pub(crate) unsafe fn rmw<B: Bits>(self, op: RmwOp, operand: B, order: Ordering) -> B {
        // SAFETY: the region is alive per the caller.
        unsafe { self.region.as_ref().rmw(self.offset, op, operand, order) }
    }

    /// # Safety
    /// As for `load`, at offset 0.
    pub(crate) unsafe fn compare_exchange<B: Bits>(
        self,
        expected: B,
        replacement: B,
        order: Ordering,
    ) -> B {
        // SAFETY: the region is alive per the caller.
        unsafe {
            self.region
                .as_ref()
                .compare_exchange(self.offset, expected, replacement, order)
        }
    }

    /// The absolute address (see the raw-memory `RegionPtr::address`).
    pub(crate) fn address(self) -> usize {
        self.base_address.wrapping_add(self.offset)
    }
}

/// A zeroed block of loom atomic cells.
pub(crate) struct Region {
    cells: Box<[AtomicU64]>,
    reserved: usize,
}

impl Region {
    /// Reserves `reserved` zeroed bytes (rounded up to whole cells).
    pub(crate) fn zeroed(reserved: usize) -> Result<Region, Error> {
        if reserved > MAX_RESERVE || reserved > (1 << 20) {
            return Err(Error::AllocationFailed {
                bytes: reserved,
                reason: "loom models only use small buffers".into(),
            });
        }
        let cells = (0..reserved.div_ceil(8))
            .map(|_| AtomicU64::new(0))
            .collect();
        Ok(Region { cells, reserved })
    }

    /// # Safety
    /// `offset <= self.reserved()`.
    pub(crate) unsafe fn ptr_at(&self, offset: usize) -> RegionPtr {
        debug_assert!(offset <= self.reserved());
        RegionPtr {
            region: std::ptr::NonNull::from(self),
            base_address: self.address(0),
            offset,
        }
    }

    pub(crate) fn reserved(&self) -> usize {
        self.reserved
    }

    pub(crate) fn address(&self, offset: usize) -> usize {
        (self.cells.as_ptr() as usize).wrapping_add(offset)
    }

    fn cell<B: Bits>(&self, offset: usize) -> (&AtomicU64, u32, u64) {
        let shift = ((offset % 8) * 8) as u32;
        let mask = if B::SIZE == 8 {
            u64::MAX
        } else {
            ((1u64 << (B::SIZE * 8)) - 1) << shift
        };
        (&self.cells[offset / 8], shift, mask)
    }

    /// # Safety
    /// `offset` is a multiple of `B::SIZE` and in bounds (checked here too, by indexing).
    pub(crate) unsafe fn load<B: Bits>(&self, offset: usize, order: Ordering) -> B {
        let (cell, shift, mask) = self.cell::<B>(offset);
        B::from_u64((cell.load(order) & mask) >> shift)
    }

    /// # Safety
    /// As for `load`.
    pub(crate) unsafe fn store<B: Bits>(&self, offset: usize, value: B, order: Ordering) {
        if B::SIZE == 8 {
            self.cells[offset / 8].store(value.to_u64(), order);
        } else {
            // SAFETY: same preconditions.
            unsafe { self.rmw(offset, RmwOp::Exchange, value, order) };
        }
    }

    /// # Safety
    /// As for `load`.
    pub(crate) unsafe fn rmw<B: Bits>(
        &self,
        offset: usize,
        op: RmwOp,
        operand: B,
        order: Ordering,
    ) -> B {
        let (cell, shift, mask) = self.cell::<B>(offset);
        let mut word = cell.load(failure_ordering(order));
        loop {
            let old = (word & mask) >> shift;
            let new = (op.apply(old, operand.to_u64()) << shift) & mask;
            match cell.compare_exchange(word, (word & !mask) | new, order, failure_ordering(order))
            {
                Ok(_) => return B::from_u64(old),
                Err(actual) => word = actual,
            }
        }
    }

    /// # Safety
    /// As for `load`.
    pub(crate) unsafe fn compare_exchange<B: Bits>(
        &self,
        offset: usize,
        expected: B,
        replacement: B,
        order: Ordering,
    ) -> B {
        let (cell, shift, mask) = self.cell::<B>(offset);
        let mut word = cell.load(failure_ordering(order));
        loop {
            let old = (word & mask) >> shift;
            if old != expected.to_u64() {
                return B::from_u64(old);
            }
            let new = (word & !mask) | ((replacement.to_u64() << shift) & mask);
            match cell.compare_exchange(word, new, order, failure_ordering(order)) {
                Ok(_) => return B::from_u64(old),
                Err(actual) => word = actual,
            }
        }
    }

    /// # Safety
    /// `offset + len` in bounds; `dst` valid for `len` writes.
    pub(crate) unsafe fn copy_out(&self, offset: usize, dst: *mut u8, len: usize) {
        for i in 0..len {
            // SAFETY: in bounds per the caller; `dst` valid for `len` writes.
            unsafe {
                dst.add(i)
                    .write(self.load::<u8>(offset + i, Ordering::Relaxed))
            };
        }
    }

    /// # Safety
    /// `offset + len` in bounds; `src` valid for `len` reads.
    pub(crate) unsafe fn copy_in(&self, offset: usize, src: *const u8, len: usize) {
        for i in 0..len {
            // SAFETY: in bounds per the caller; `src` valid for `len` reads.
            unsafe { self.store::<u8>(offset + i, src.add(i).read(), Ordering::Relaxed) };
        }
    }
}
