//! [`ElementRef`]: one bounds-checked element location, the only way the layers above the
//! views (the atomics, the waiter table, the crate's own protocol words) touch region memory.
//!
//! An `ElementRef` can only be made by code that checked the location, so holding one proves it
//! is in bounds and aligned; that proof is what every `unsafe` block here relies on. It borrows
//! what keeps the memory alive (a view or an owned word), so it cannot outlive it.

use std::marker::PhantomData;

use crate::element::Element;
use crate::region::{RegionPtr, RmwOp};
use crate::shim::Ordering;

/// An in-bounds, aligned element location in a region, borrowed for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct ElementRef<'a, T: Element> {
    /// The location, cached so every operation is one atomic instruction.
    ptr: RegionPtr,
    /// The borrow of whatever keeps `ptr`'s region alive.
    _alive: PhantomData<&'a ()>,
    _element: PhantomData<fn() -> T>,
}

impl<'a, T: Element> ElementRef<'a, T> {
    /// # Safety
    /// `ptr` points into a region that stays alive for `'a`, aligned to `size_of::<T>()`, with
    /// the whole element within the region's reserved bytes.
    #[inline(always)]
    pub(crate) unsafe fn new_unchecked(ptr: RegionPtr) -> Self {
        ElementRef {
            ptr,
            _alive: PhantomData,
            _element: PhantomData,
        }
    }

    /// The absolute address of the location: its identity for waiter lists (docs/semantics.md A10).
    #[inline(always)]
    pub(crate) fn address(&self) -> usize {
        self.ptr.address()
    }

    #[inline(always)]
    pub(crate) fn load(&self, order: Ordering) -> T {
        // SAFETY: an `ElementRef` is only made for an aligned, in-bounds location of a region
        // that outlives it (`new_unchecked`).
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

    /// Compare-exchange; returns the old value whether or not it wrote (JavaScript's
    /// `compareExchange`).
    #[inline(always)]
    pub(crate) fn compare_exchange(&self, expected: T, replacement: T, order: Ordering) -> T {
        // SAFETY: as in `load`.
        T::from_bits(unsafe {
            self.ptr
                .compare_exchange::<T::Bits>(expected.to_bits(), replacement.to_bits(), order)
        })
    }
}
