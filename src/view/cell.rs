//! [`Cell`]: one bounds-checked element location, the only way the rest of the crate (the
//! atomics, the waiter table) touches region memory.
//!
//! A `Cell` can only be made by a view after it checked the index, so holding one proves the
//! location is in bounds and aligned; that proof is what every `unsafe` block here relies on.

use std::marker::PhantomData;

use crate::element::Element;
use crate::region::{Region, RegionPtr, RmwOp};
use crate::shim::Ordering;

/// An in-bounds, aligned element location in a region, borrowed for `'a`.
pub(crate) struct Cell<'a, T: Element> {
    /// The location, cached by the view so every operation is one atomic instruction.
    ptr: RegionPtr,
    /// The borrow of the region that keeps `ptr` valid.
    _region: PhantomData<&'a Region>,
    _element: PhantomData<fn() -> T>,
}

impl<'a, T: Element> Cell<'a, T> {
    /// # Safety
    /// `ptr` points into `region`, aligned to `size_of::<T>()`, with the whole element within
    /// `region.reserved()`.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked(_region: &'a Region, ptr: RegionPtr) -> Self {
        Cell {
            ptr,
            _region: PhantomData,
            _element: PhantomData,
        }
    }

    /// The absolute address of the location: its identity for waiter lists (SEMANTICS A10).
    pub(crate) fn address(&self) -> usize {
        self.ptr.address()
    }

    #[inline(always)]
    pub(crate) fn load(&self, order: Ordering) -> T {
        // SAFETY: a `Cell` is only made for an aligned, in-bounds location (`new_unchecked`)
        // of a region it borrows.
        T::from_bits(unsafe { self.ptr.load::<T::Bits>(0, order) })
    }

    #[inline(always)]
    pub(crate) fn store(&self, value: T, order: Ordering) {
        // SAFETY: as in `load`.
        unsafe { self.ptr.store::<T::Bits>(0, value.to_bits(), order) }
    }

    /// Read-modify-write; returns the old value.
    #[inline(always)]
    pub(crate) fn rmw(&self, op: RmwOp, operand: T, order: Ordering) -> T {
        // SAFETY: as in `load`.
        T::from_bits(unsafe { self.ptr.rmw::<T::Bits>(op, operand.to_bits(), order) })
    }

    /// Compare-exchange; returns the old value whether or not it wrote.
    #[inline(always)]
    pub(crate) fn compare_exchange(&self, expected: T, replacement: T, order: Ordering) -> T {
        // SAFETY: as in `load`.
        T::from_bits(unsafe {
            self.ptr
                .compare_exchange::<T::Bits>(expected.to_bits(), replacement.to_bits(), order)
        })
    }
}
