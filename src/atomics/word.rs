//! Owned, checked-once words for the crate's own protocols: [`SharedWord`] (one word) and
//! [`SharedWords`] (a fixed array, e.g. a ring's stamps), each reached through a [`Word`].
//!
//! The crate's protocol words (a ring's head, tail and stamps, a worker's lifecycle bits, and
//! the lock words of the `sync` layer) live in a [`SharedBuffer`] like user data, so they block
//! and wake through the same [`wait`](super::wait()) / [`notify`](super::notify) — which is what
//! lets the loom models check the code users run. Going through a public view for them would
//! mean re-checking a bounds the protocol already guarantees and then discarding an impossible
//! `Err`; these types check alignment and bounds once, when they are made, and hand out
//! [`Word`]s whose operations cannot fail. They sit in the atomics layer, not the view layer,
//! because they wait and notify (a view-layer type could not without importing upwards).
//!
//! A [`Word`] mirrors std's atomic integers (`load`, `store`, `swap`, `fetch_*`,
//! `compare_exchange` returning `Result`, each with an explicit `Ordering`), plus
//! [`Word::wait_until`] and [`Word::notify`] (in `word_wait.rs`, so that the words themselves
//! depend on nothing of the wait machinery: a condition variable's requeue target is a word).

use std::marker::PhantomData;

use crate::buffer::SharedBuffer;
use crate::element::Waitable;
use crate::error::Error;
use crate::range;
use crate::region::{Bits, RegionPtr, RmwOp};
use crate::shim::Ordering;
use crate::view::ElementRef;

/// A fixed number of waitable words at a byte offset of a [`SharedBuffer`], bounds-checked once.
/// Holds a clone of the buffer, so its words stay valid for as long as it lives.
pub(crate) struct SharedWords<T: Waitable> {
    /// Keeps the region behind `base` alive.
    memory: SharedBuffer,
    base: RegionPtr,
    len: usize,
    _element: PhantomData<fn() -> T>,
}

impl<T: Waitable> SharedWords<T> {
    const SIZE: usize = <T::Bits as Bits>::SIZE;

    /// `len` zeroed words in a buffer of their own.
    pub(crate) fn new(len: usize) -> Result<Self, Error> {
        let bytes = len.checked_mul(Self::SIZE).ok_or(Error::AllocationFailed {
            bytes: usize::MAX,
            reason: format!(
                "{len} words of {} bytes overflow the address space",
                Self::SIZE
            ),
        })?;
        Self::at(&SharedBuffer::new(bytes)?, 0, len)
    }

    /// `len` words of `buffer` from `byte_offset`: `Err(Misaligned)` unless the offset is a
    /// multiple of the word size, `Err(RangeOutOfBounds)` unless they lie within the buffer's
    /// current length (which never shrinks, so they stay within it).
    pub(crate) fn at(buffer: &SharedBuffer, byte_offset: usize, len: usize) -> Result<Self, Error> {
        if byte_offset % Self::SIZE != 0 {
            return Err(Error::Misaligned {
                byte_offset,
                align: Self::SIZE,
            });
        }
        let bytes = len.saturating_mul(Self::SIZE);
        range::fit(byte_offset, bytes, buffer.byte_length())?;
        // SAFETY: `byte_offset <= byte_length <= reserved` (checked just above).
        let base = unsafe { buffer.region().ptr_at(byte_offset) };
        Ok(SharedWords {
            memory: buffer.clone(),
            base,
            len,
            _element: PhantomData,
        })
    }

    /// The buffer the words live in.
    #[allow(dead_code)] // for the `sync` layer
    pub(crate) fn buffer(&self) -> &SharedBuffer {
        &self.memory
    }

    /// Word `index`.
    ///
    /// # Panics
    /// If `index >= len()`, as slice indexing does: callers index with their own protocol's
    /// positions (a ring's slot numbers), never with user input.
    #[inline(always)]
    pub(crate) fn get(&self, index: usize) -> Word<'_, T> {
        if index >= self.len {
            // Out of line: formatting the message in place would make every access spill the
            // index to the stack first (one store per word access on the lock fast paths).
            word_out_of_range(index, self.len);
        }
        // SAFETY: `index < len`, checked just above.
        unsafe { self.get_unchecked(index) }
    }

    /// Word `index`, unchecked: for callers whose `index` is a constant below the `len` they
    /// made the words with (a lock's fixed layout), where even the comparison shows on a fast
    /// path.
    ///
    /// # Safety
    /// `index < len()` (the `len` given to [`SharedWords::at`] or [`SharedWords::new`]).
    #[inline(always)]
    pub(crate) unsafe fn get_unchecked(&self, index: usize) -> Word<'_, T> {
        debug_assert!(index < self.len);
        // SAFETY: `index < len` (the caller's contract), and the `len` words from `base` were
        // checked to lie within the buffer, aligned, at construction; `&self` keeps `memory`,
        // so the region, alive.
        let element = unsafe { ElementRef::new_unchecked(self.base.add(index * Self::SIZE)) };
        Word(element, &self.memory)
    }
}

/// The panic of [`SharedWords::get`] for an index out of range (a bug of the caller's protocol).
#[cold]
#[inline(never)]
#[track_caller]
fn word_out_of_range(index: usize, len: usize) -> ! {
    panic!("word {index} of {len} is out of range")
}

/// One waitable word in a [`SharedBuffer`], checked once; see [`SharedWords`].
pub(crate) struct SharedWord<T: Waitable>(SharedWords<T>);

impl<T: Waitable> SharedWord<T> {
    /// A zeroed word in a buffer of its own.
    pub(crate) fn new() -> Result<Self, Error> {
        SharedWords::new(1).map(SharedWord)
    }

    /// The word at `byte_offset` of `buffer` (aligned and in bounds, else `Err`).
    #[allow(dead_code)] // for the `sync` layer
    pub(crate) fn at(buffer: &SharedBuffer, byte_offset: usize) -> Result<Self, Error> {
        SharedWords::at(buffer, byte_offset, 1).map(SharedWord)
    }

    /// The word.
    #[inline(always)]
    pub(crate) fn get(&self) -> Word<'_, T> {
        // SAFETY: a `SharedWord` is only made with `len` 1 (`new`, `at`), so index 0 is in range.
        unsafe { self.0.get_unchecked(0) }
    }
}

/// A checked word, borrowed from the [`SharedWord`] or [`SharedWords`] that keeps it alive,
/// with the buffer it lives in (whose kind decides how `wait` / `notify` work). Every
/// operation is one atomic instruction (or one `wait` / `notify`) and cannot fail.
#[derive(Clone, Copy)]
pub(crate) struct Word<'a, T: Waitable>(ElementRef<'a, T>, &'a SharedBuffer);

#[allow(dead_code)] // the full std-like set, for the `sync` layer
impl<T: Waitable> Word<'_, T> {
    #[inline(always)]
    pub(crate) fn load(self, order: Ordering) -> T {
        self.0.load(order)
    }

    #[inline(always)]
    pub(crate) fn store(self, value: T, order: Ordering) {
        self.0.store(value, order)
    }

    /// Writes `value`; returns the old value.
    #[inline(always)]
    pub(crate) fn swap(self, value: T, order: Ordering) -> T {
        self.0.rmw(RmwOp::Exchange, value, order)
    }

    /// Adds (wrapping); returns the old value.
    #[inline(always)]
    pub(crate) fn fetch_add(self, value: T, order: Ordering) -> T {
        self.0.rmw(RmwOp::Add, value, order)
    }

    /// Subtracts (wrapping); returns the old value.
    #[inline(always)]
    pub(crate) fn fetch_sub(self, value: T, order: Ordering) -> T {
        self.0.rmw(RmwOp::Sub, value, order)
    }

    /// Bitwise OR; returns the old value.
    #[inline(always)]
    pub(crate) fn fetch_or(self, value: T, order: Ordering) -> T {
        self.0.rmw(RmwOp::Or, value, order)
    }

    /// Bitwise AND; returns the old value.
    #[inline(always)]
    pub(crate) fn fetch_and(self, value: T, order: Ordering) -> T {
        self.0.rmw(RmwOp::And, value, order)
    }

    /// Writes `new` if the word holds `current`: `Ok(current)` if it wrote, `Err(actual)` if
    /// not (std's convention; the failure ordering is the strongest `order` allows).
    #[inline(always)]
    pub(crate) fn compare_exchange(self, current: T, new: T, order: Ordering) -> Result<T, T> {
        let old = self.0.compare_exchange(current, new, order);
        if old == current {
            Ok(old)
        } else {
            Err(old)
        }
    }
}

impl<'a, T: Waitable> Word<'a, T> {
    /// The checked element (for the blocking half, `word_wait.rs`).
    #[inline(always)]
    pub(super) fn element(self) -> ElementRef<'a, T> {
        self.0
    }

    /// The buffer the word lives in, whose kind decides how it waits.
    #[inline(always)]
    pub(super) fn memory(self) -> &'a SharedBuffer {
        self.1
    }
}

impl Word<'_, u32> {
    /// The word's absolute address: the key of its waiter list (docs/semantics.md A10).
    pub(crate) fn address(self) -> usize {
        self.0.address()
    }
}
