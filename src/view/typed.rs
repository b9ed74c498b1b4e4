//! [`TypedArray`]: a typed window onto a buffer's bytes (docs/semantics.md V1–V4).
//!
//! A view is a buffer handle plus a byte offset and either a fixed length or "track the
//! buffer's length" (JavaScript's length-tracking views over growable buffers). Every element
//! read or write is a relaxed atomic access, so views never tear and never race-UB even while
//! other threads write the same bytes (V4); the atomics in [`crate::atomics`] add the
//! sequentially consistent operations.

use std::fmt;
use std::marker::PhantomData;
use std::ops::RangeBounds;

use crate::buffer::{LengthWord, SharedBuffer};
use crate::element::Element;
use crate::error::Error;
use crate::range::{self, Unit};
use crate::region::{Bits, RegionPtr};
use crate::shim::Ordering;
use crate::view::ElementRef;

/// A typed view of `T` elements over a [`SharedBuffer`]; cheap to clone (it shares the
/// buffer), `Send` and `Sync`.
///
/// ```
/// use sharedbuf::{Int32Array, SharedBuffer};
///
/// let buf = SharedBuffer::new(16)?;
/// let all = Int32Array::new(&buf)?;               // 4 elements
/// let tail = Int32Array::with_range(&buf, 8, Some(2))?; // elements 2 and 3 of `all`
/// tail.set(0, -7)?;
/// assert_eq!(all.get(2), Some(-7));
/// assert_eq!(all.get(4), None);                   // out of range: None, never a panic
/// assert!(all.set(4, 1).is_err());
/// # Ok::<(), sharedbuf::Error>(())
/// ```
///
/// **Hot loops over a length-tracking view.** Each access to a tracking view reads the buffer's
/// length again (an atomic load the compiler may not hoist), so that it sees a `grow` by another
/// thread at once; that load, one more per element, makes a `get` loop about three times a
/// plain `[AtomicU32]` loop (as it does plain Rust code with the same check). A loop that need
/// not see growth while it runs takes a fixed view of the length now, once, and loops over that
/// (its check is a plain comparison; the memory is the same):
///
/// ```
/// use sharedbuf::{SharedBuffer, Uint32Array};
///
/// let buf = SharedBuffer::growable(0, 1 << 20)?;
/// let tracking = Uint32Array::new(&buf)?;         // follows the buffer's length
/// buf.grow(4096)?;
/// let now = tracking.subarray(..tracking.len())?; // fixed: 1024 elements
/// for i in 0..now.len() {
///     now.set(i, i as u32)?;
/// }
/// assert_eq!(tracking.get(1023), Some(1023));
/// # Ok::<(), sharedbuf::Error>(())
/// ```
pub struct TypedArray<T: Element> {
    buffer: SharedBuffer,
    /// The view's first byte, cached so an element access is an add and one atomic
    /// instruction: the region never moves, and `buffer` keeps it alive.
    base: RegionPtr,
    byte_offset: usize,
    /// `Some` for a length-tracking view: its buffer's length word, cached so that the length
    /// now is one relaxed load, not a walk through the buffer handle (`buffer` keeps the word
    /// alive). Every bounds check tests it first, so in a loop the compiler splits on it once.
    length_word: Option<LengthWord>,
    /// A fixed view's length; 0 for a tracking view, so that a comparison with it fails and
    /// the check goes on to the length word. A plain number, so a fixed view's bounds check is
    /// one comparison and a loop over the view compiles like one over a slice. (Plain fields
    /// rather than an enum: in a loop of stores the compiler reloads an enum's payload after
    /// every store, but hoists a plain field.)
    fixed_len: usize,
    _element: PhantomData<fn() -> T>,
}

/// `Int8Array`: a view of `i8`.
pub type Int8Array = TypedArray<i8>;
/// `Uint8Array`: a view of `u8`.
pub type Uint8Array = TypedArray<u8>;
/// `Int16Array`: a view of `i16`.
pub type Int16Array = TypedArray<i16>;
/// `Uint16Array`: a view of `u16`.
pub type Uint16Array = TypedArray<u16>;
/// `Int32Array`: a view of `i32`.
pub type Int32Array = TypedArray<i32>;
/// `Uint32Array`: a view of `u32`.
pub type Uint32Array = TypedArray<u32>;
/// `BigInt64Array`: a view of `i64`.
pub type BigInt64Array = TypedArray<i64>;
/// `BigUint64Array`: a view of `u64`.
pub type BigUint64Array = TypedArray<u64>;
/// `Float32Array`: a view of `f32`.
pub type Float32Array = TypedArray<f32>;
/// `Float64Array`: a view of `f64`.
pub type Float64Array = TypedArray<f64>;

impl<T: Element> TypedArray<T> {
    const SIZE: usize = <T::Bits as Bits>::SIZE;

    /// A view of the whole buffer, as `new Int32Array(sab)`: length-tracking on a growable
    /// buffer; on a fixed buffer the length must be a multiple of the element size (V3).
    pub fn new(buffer: &SharedBuffer) -> Result<Self, Error> {
        Self::with_range(buffer, 0, None)
    }

    /// A view from `byte_offset`, as `new Int32Array(sab, byteOffset, length)`.
    ///
    /// The offset must be a multiple of the element size and not past the buffer's length
    /// (V2). With `Some(length)` the elements must fit in the buffer now; with `None` the view
    /// tracks a growable buffer's length, or covers the rest of a fixed buffer, which must be
    /// a whole number of elements (V3).
    pub fn with_range(
        buffer: &SharedBuffer,
        byte_offset: usize,
        length: Option<usize>,
    ) -> Result<Self, Error> {
        if byte_offset % Self::SIZE != 0 {
            return Err(Error::Misaligned {
                byte_offset,
                align: Self::SIZE,
            });
        }
        let byte_length = buffer.byte_length();
        range::fit(byte_offset, 0, byte_length)?;
        let length = match length {
            Some(n) => {
                // An element count whose byte size overflows cannot fit: `fit` reports it.
                let bytes = n.saturating_mul(Self::SIZE);
                range::fit(byte_offset, bytes, byte_length)?;
                Some(n)
            }
            None if buffer.is_growable() => None,
            None => {
                let rest = byte_length - byte_offset;
                if rest % Self::SIZE != 0 {
                    return Err(Error::LengthNotMultiple {
                        byte_length: rest,
                        element_size: Self::SIZE,
                    });
                }
                Some(rest / Self::SIZE)
            }
        };
        Ok(Self::from_parts(buffer.clone(), byte_offset, length))
    }

    /// A view over `buffer` from `byte_offset` with `length` elements (`None`: tracking),
    /// both already checked against the buffer.
    fn from_parts(buffer: SharedBuffer, byte_offset: usize, length: Option<usize>) -> Self {
        // SAFETY: `byte_offset` was checked to be at most the buffer's length, which never
        // exceeds the region's reserved size.
        let base = unsafe { buffer.region().ptr_at(byte_offset) };
        let length_word = length.is_none().then(|| buffer.length_word());
        TypedArray {
            buffer,
            base,
            byte_offset,
            length_word,
            fixed_len: length.unwrap_or(0),
            _element: PhantomData,
        }
    }

    /// The number of elements now; a length-tracking view's length follows `grow` (V3).
    #[inline(always)]
    pub fn len(&self) -> usize {
        match self.length_word {
            None => self.fixed_len,
            Some(word) => self.tracking_len(word),
        }
    }

    /// A length-tracking view's length now: one relaxed load of the buffer's length word.
    #[inline(always)]
    fn tracking_len(&self, word: LengthWord) -> usize {
        // SAFETY: `word` is this view's buffer's, and `self.buffer` keeps that alive.
        Self::elements_between(self.byte_offset, unsafe { word.load_relaxed() })
    }

    /// The whole elements from `byte_offset` to a buffer length of `byte_length`. A view's
    /// offset is at most its buffer's length when it is made, and lengths never decrease.
    #[inline(always)]
    fn elements_between(byte_offset: usize, byte_length: usize) -> usize {
        (byte_length - byte_offset) / Self::SIZE
    }

    /// Whether the view has no elements now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The view's offset in its buffer, in bytes.
    pub fn byte_offset(&self) -> usize {
        self.byte_offset
    }

    /// The view's length in bytes now.
    pub fn byte_length(&self) -> usize {
        self.len() * Self::SIZE
    }

    /// Whether the view follows its buffer's growth.
    pub fn is_length_tracking(&self) -> bool {
        self.length_word.is_some()
    }

    /// The buffer the view looks at.
    pub fn buffer(&self) -> &SharedBuffer {
        &self.buffer
    }

    /// The checked location of element `index`: `Err(IndexOutOfRange)` past the end (V4, A4).
    #[inline]
    pub(crate) fn element(&self, index: usize) -> Result<ElementRef<'_, T>, Error> {
        // A fixed view's length first: the atomics are mostly single accesses, for which this
        // one comparison is the whole check (`in_bounds` tests the view's kind first, which
        // pays in loops, not here). A tracking view's length there is 0: it goes on.
        if !(index < self.fixed_len || self.in_bounds(index)) {
            return Err(Error::IndexOutOfRange {
                index,
                len: self.len(),
            });
        }
        // SAFETY: `base` is the region's pointer at `byte_offset`, a multiple of the element
        // size (checked at construction), and `index < len` keeps the element within
        // `byte_length <= reserved`; the borrow of `self` keeps the buffer, so the region, alive.
        Ok(unsafe { ElementRef::new_unchecked(self.base.add(index * Self::SIZE)) })
    }

    /// Relaxed atomic read of element `index`, unchecked.
    ///
    /// # Safety
    /// `index < self.len()` at some point in the past (views never shrink).
    #[inline(always)]
    unsafe fn load_unchecked(&self, index: usize) -> T {
        // SAFETY: `index` is in bounds per the caller, so the element lies within the region,
        // aligned (the offset is a multiple of the element size); `self.buffer` keeps the
        // region alive.
        T::from_bits(unsafe { self.base.load_element::<T::Bits>(index, Ordering::Relaxed) })
    }

    /// Whether element `index` exists now: for a fixed view one plain comparison with its
    /// length; for a tracking view one relaxed load of this process's length of the buffer
    /// and one comparison, and only if that fails a look at a process-shared header (another
    /// process may have grown the buffer). (Views never shrink, so an index found in bounds
    /// stays in bounds.)
    ///
    /// The kind is tested first: it never changes, so in a loop the compiler tests it once,
    /// outside, and each kind's loop keeps one comparison per element (none at all in a fixed
    /// view's `for i in 0..view.len()` where the compiler sees the view unchanged since
    /// `len()`). A tracking view does not compare with the length it had when it was made
    /// first: that saved a load only for indices below it, and cost every index past it a
    /// second comparison and branch (a loop over such indices ran about 10% slower).
    #[inline(always)]
    fn in_bounds(&self, index: usize) -> bool {
        // The fields are read up front so that in a loop the compiler hoists them all (a read
        // in one branch would be repeated on every pass through it).
        let (length_word, fixed_len, byte_offset) =
            (self.length_word, self.fixed_len, self.byte_offset);
        match length_word {
            None => index < fixed_len,
            Some(word) => {
                // SAFETY: `word` is this view's buffer's; `self.buffer` keeps it alive.
                let seen = unsafe { word.load_local_relaxed() };
                Self::ends_within(index, byte_offset, seen)
                    || Self::grown_to_hold(index, byte_offset, word)
            }
        }
    }

    /// Whether a process-shared header reports a length that holds element `index` (another
    /// process grew the buffer): the rare case, kept out of the loops that check bounds.
    #[cold]
    #[inline(never)]
    fn grown_to_hold(index: usize, byte_offset: usize, word: LengthWord) -> bool {
        // SAFETY: `word` is the caller's view's buffer's, which that view keeps alive.
        Self::ends_within(index, byte_offset, unsafe { word.load_relaxed() })
    }

    /// The largest index an element can have: its end, `index * SIZE + byte_offset + SIZE`,
    /// is at most a buffer's length, which is at most `isize::MAX` (the largest region).
    const MAX_INDEX: usize = (isize::MAX as usize - Self::SIZE) / Self::SIZE;

    /// Whether element `index` of a view at `byte_offset` ends within `byte_length` bytes.
    ///
    /// Computed on the element's end in bytes, so that in a loop the compiler steps that end
    /// along with the index: one comparison per element, no subtraction and division. Exact
    /// and overflow-free: past `MAX_INDEX` nothing fits, and below it
    /// `index * SIZE <= isize::MAX - SIZE`, so the end is at most `isize::MAX + byte_offset`.
    #[inline(always)]
    fn ends_within(index: usize, byte_offset: usize, byte_length: usize) -> bool {
        index <= Self::MAX_INDEX && index * Self::SIZE + byte_offset + Self::SIZE <= byte_length
    }

    /// Element `index`, or `None` past the end (V4). A relaxed atomic read: never torn.
    #[inline]
    pub fn get(&self, index: usize) -> Option<T> {
        // The base is read before the bounds check so that, in a loop, the compiler can hoist
        // both out of it (a load after the check is conditional and stays in the loop).
        let base = self.base;
        if self.in_bounds(index) {
            // SAFETY: `index < len`: the element lies within the region, aligned (the view's
            // offset is a multiple of the element size); `self.buffer` keeps the region alive.
            Some(T::from_bits(unsafe {
                base.load_element::<T::Bits>(index, Ordering::Relaxed)
            }))
        } else {
            None
        }
    }

    /// Writes element `index` (a relaxed atomic write); `Err(IndexOutOfRange)` past the end.
    #[inline]
    pub fn set(&self, index: usize, value: T) -> Result<(), Error> {
        let base = self.base;
        if self.in_bounds(index) {
            // SAFETY: as in `get`.
            unsafe { base.store_element::<T::Bits>(index, value.to_bits(), Ordering::Relaxed) };
            Ok(())
        } else {
            Err(Error::IndexOutOfRange {
                index,
                len: self.len(),
            })
        }
    }

    /// The absolute byte range of `count` elements from `start`, checked against the length.
    fn byte_span(&self, start: usize, count: usize) -> Result<usize, Error> {
        let len = self.len();
        if start > len {
            return Err(Error::IndexOutOfRange { index: start, len });
        }
        if count > len - start {
            return Err(Error::LengthMismatch {
                slice_len: count,
                available: len - start,
            });
        }
        Ok(self.byte_offset + start * Self::SIZE)
    }

    /// Copies `dst.len()` elements starting at element `start` into `dst` (word-wise relaxed
    /// atomic loads). `Err` if they are not all in the view.
    pub fn copy_to_slice(&self, start: usize, dst: &mut [T]) -> Result<(), Error> {
        let offset = self.byte_span(start, dst.len())?;
        // SAFETY: `byte_span` checked that the elements lie within the view, hence within the
        // region; `dst` is private memory valid for exactly that many bytes.
        unsafe {
            self.buffer.region().copy_out(
                offset,
                dst.as_mut_ptr().cast::<u8>(),
                std::mem::size_of_val(dst),
            )
        };
        Ok(())
    }

    /// Copies `src` into the view starting at element `start` (word-wise relaxed atomic
    /// stores), as JavaScript's `view.set(array, offset)`. `Err` if it does not fit.
    pub fn copy_from_slice(&self, start: usize, src: &[T]) -> Result<(), Error> {
        let offset = self.byte_span(start, src.len())?;
        // SAFETY: `byte_span` checked that the elements lie within the view, hence within the
        // region; `src` is private memory valid for exactly that many bytes.
        unsafe {
            self.buffer.region().copy_in(
                offset,
                src.as_ptr().cast::<u8>(),
                std::mem::size_of_val(src),
            )
        };
        Ok(())
    }

    /// A copy of all elements, as JavaScript's `Array.from(view)`.
    pub fn to_vec(&self) -> Vec<T> {
        let mut out = vec![T::default(); self.len()];
        // The view cannot shrink, so the length read above still fits.
        let copied = self.copy_to_slice(0, &mut out);
        debug_assert!(copied.is_ok());
        out
    }

    /// Sets every element to `value`: each element written whole, with machine-word (or, on
    /// x86-64, CPU string) stores for the bulk of the view.
    pub fn fill(&self, value: T) {
        self.fill_elements(0, self.len(), value);
    }

    /// Writes `value` into `count` elements from element `start`, already checked to lie
    /// within the view.
    fn fill_elements(&self, start: usize, count: usize, value: T) {
        // SAFETY: the elements lie within the view (per the caller; views never shrink), hence
        // within the buffer's accessible bytes; the offset is a multiple of the element size
        // (the view's offset is); `self.buffer` keeps the region alive.
        unsafe {
            self.buffer.region().fill::<T::Bits>(
                self.byte_offset + start * Self::SIZE,
                count,
                value.to_bits(),
            )
        }
    }

    /// Sets the elements in `range` to `value`, as JavaScript's `fill(value, start, end)`.
    /// `Err(InvertedElementRange)` if the start lies after the end,
    /// `Err(ElementRangeOutOfBounds)` past the view's length.
    pub fn fill_range(&self, range: impl RangeBounds<usize>, value: T) -> Result<(), Error> {
        let (start, end) = range::resolve(&range, self.len(), Unit::Elements)?;
        self.fill_elements(start, end - start, value);
        Ok(())
    }

    /// A view of the elements in `range` over the same memory, as JavaScript's
    /// `subarray(begin, end)`. An open-ended range on a length-tracking view stays tracking.
    /// `Err(InvertedElementRange)` if the start lies after the end,
    /// `Err(ElementRangeOutOfBounds)` past the view's length.
    pub fn subarray(&self, range: impl RangeBounds<usize>) -> Result<TypedArray<T>, Error> {
        let (start, end) = range::resolve(&range, self.len(), Unit::Elements)?;
        let tracking =
            self.is_length_tracking() && matches!(range.end_bound(), std::ops::Bound::Unbounded);
        Ok(self.sub(start, if tracking { None } else { Some(end - start) }))
    }

    /// The sub-view from `start` (already checked to be within the view).
    fn sub(&self, start: usize, length: Option<usize>) -> TypedArray<T> {
        Self::from_parts(
            self.buffer.clone(),
            self.byte_offset + start * Self::SIZE,
            length,
        )
    }

    /// An iterator over the elements (each a relaxed atomic read), as many as the view held
    /// when the iterator was made.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            view: self,
            next: 0,
            end: self.len(),
        }
    }
}

impl<T: Element> Clone for TypedArray<T> {
    fn clone(&self) -> Self {
        TypedArray {
            buffer: self.buffer.clone(),
            base: self.base,
            byte_offset: self.byte_offset,
            length_word: self.length_word,
            fixed_len: self.fixed_len,
            _element: PhantomData,
        }
    }
}

impl<T: Element> fmt::Debug for TypedArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(T::JS_VIEW_NAME)
            .field("byte_offset", &self.byte_offset)
            .field("len", &self.len())
            .field("length_tracking", &self.is_length_tracking())
            .finish()
    }
}

/// Iterator over a [`TypedArray`]'s elements; see [`TypedArray::iter`].
#[derive(Debug)]
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Iter<'a, T: Element> {
    view: &'a TypedArray<T>,
    next: usize,
    end: usize,
}

impl<T: Element> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.next >= self.end {
            return None;
        }
        // SAFETY: `next < end`, the view's length when the iterator was made; views never
        // shrink.
        let value = unsafe { self.view.load_unchecked(self.next) };
        self.next += 1;
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next;
        (left, Some(left))
    }
}

impl<T: Element> ExactSizeIterator for Iter<'_, T> {}

impl<'a, T: Element> IntoIterator for &'a TypedArray<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}
