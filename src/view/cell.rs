//! [`Cell`]: one bounds-checked element location, the only way the rest of the crate (the
//! atomics, the waiter table) touches region memory.
//!
//! A `Cell` can only be made by a view after it checked the index, so holding one proves the
//! location is in bounds and aligned; that proof is what every `unsafe` block here relies on.

use std::marker::PhantomData;

use crate::element::Element;
use crate::region::{Region, RegionPtr, RmwOp};
use crate::shim::Ordering;

/// An in-bounds, aligned element location in a region.
pub(crate) struct Cell<'a, T: Element> {
    region: &'a Region,
    offset: usize,
    /// `region` at `offset`, cached so loads and stores are one instruction.
    ptr: RegionPtr,
    _element: PhantomData<fn() -> T>,
}

impl<'a, T: Element> Cell<'a, T> {
    /// # Safety
    /// `offset` is a multiple of `size_of::<T>()` and `offset + size_of::<T>()` is within
    /// `region.reserved()`.
    #[inline(always)]
    #[allow(dead_code)] // kept for callers without a cached pointer (e.g. the waiter table)
    pub(crate) unsafe fn new_unchecked(region: &'a Region, offset: usize) -> Self {
        debug_assert!(offset % std::mem::size_of::<T>() == 0);
        debug_assert!(offset + std::mem::size_of::<T>() <= region.reserved());
        Cell {
            region,
            offset,
            // SAFETY: `offset` is within the region per the caller.
            ptr: unsafe { region.ptr_at(offset) },
            _element: PhantomData,
        }
    }

    /// As [`Cell::new_unchecked`], with `ptr` the caller's cached pointer to that location.
    ///
    /// # Safety
    /// As for [`Cell::new_unchecked`], and `ptr` is `region.ptr_at(offset)`.
    #[inline(always)]
    pub(crate) unsafe fn with_ptr_unchecked(
        region: &'a Region,
        offset: usize,
        ptr: RegionPtr,
    ) -> Self {
        debug_assert!(offset % std::mem::size_of::<T>() == 0);
        debug_assert!(offset + std::mem::size_of::<T>() <= region.reserved());
        Cell {
            region,
            offset,
            ptr,
            _element: PhantomData,
        }
    }

    /// The absolute address of the location: its identity for waiter lists (SEMANTICS A10).
    #[allow(dead_code)]
    pub(crate) fn address(&self) -> usize {
        self.region.address(self.offset)
    }

    /// The region the location is in.
    #[allow(dead_code)]
    pub(crate) fn region(&self) -> &'a Region {
        self.region
    }

    /// The location's byte offset in its region.
    #[allow(dead_code)]
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    #[inline(always)]
    pub(crate) fn load(&self, order: Ordering) -> T {
        // SAFETY: a `Cell` is only made for an aligned, in-bounds offset (`new_unchecked`),
        // `ptr` points there, and `region` borrows the live region.
        T::from_bits(unsafe { self.ptr.load::<T::Bits>(0, order) })
    }

    #[inline(always)]
    pub(crate) fn store(&self, value: T, order: Ordering) {
        // SAFETY: a `Cell` is only made for an aligned, in-bounds offset (`new_unchecked`),
        // `ptr` points there, and `region` borrows the live region.
        unsafe { self.ptr.store::<T::Bits>(0, value.to_bits(), order) }
    }

    /// Read-modify-write; returns the old value.
    #[inline(always)]
    pub(crate) fn rmw(&self, op: RmwOp, operand: T, order: Ordering) -> T {
        // SAFETY: a `Cell` is only made for an aligned, in-bounds offset (`new_unchecked`).
        T::from_bits(unsafe {
            self.region
                .rmw::<T::Bits>(self.offset, op, operand.to_bits(), order)
        })
    }

    /// Compare-exchange; returns the old value whether or not it wrote.
    #[inline(always)]
    pub(crate) fn compare_exchange(&self, expected: T, replacement: T, order: Ordering) -> T {
        // SAFETY: a `Cell` is only made for an aligned, in-bounds offset (`new_unchecked`).
        T::from_bits(unsafe {
            self.region.compare_exchange::<T::Bits>(
                self.offset,
                expected.to_bits(),
                replacement.to_bits(),
                order,
            )
        })
    }
}
