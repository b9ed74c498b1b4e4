//! [`SharedBuffer`]: JavaScript's `SharedArrayBuffer`.
//!
//! A buffer is a handle to one block of zeroed bytes. Cloning the handle shares the block, as
//! posting a `SharedArrayBuffer` to a worker does (SEMANTICS B6); [`SharedBuffer::slice`] is the
//! only way to copy (B5). A growable buffer reserves its maximum once, so growing never moves
//! the bytes and every view stays valid (B4); a large maximum is reserved as address space
//! only, and each grow commits the memory up to the new length before publishing it. Bytes are
//! read and written through typed views ([`crate::TypedArray`], [`crate::DataView`]) and
//! [`crate::atomics`].

use std::fmt;
use std::ops::RangeBounds;
use std::ptr::NonNull;

use crate::error::Error;
use crate::range::{self, Unit};
use crate::region::Region;
use crate::shim::{Arc, AtomicUsize, Ordering};

/// A block of shared bytes: fixed-length or growable (grow-only), shared by cloning.
///
/// ```
/// use sharedbuf::SharedBuffer;
///
/// let buf = SharedBuffer::new(16)?;
/// assert_eq!(buf.byte_length(), 16);
/// let same = buf.clone(); // shares the bytes
/// assert!(same.same_memory(&buf));
///
/// let g = SharedBuffer::growable(8, 64)?;
/// g.grow(32)?;
/// assert_eq!(g.byte_length(), 32);
/// assert!(g.grow(16).is_err()); // never shrinks
/// # Ok::<(), sharedbuf::Error>(())
/// ```
#[derive(Clone)]
pub struct SharedBuffer {
    inner: Arc<Inner>,
}

struct Inner {
    region: Region,
    /// Current length; only ever increases (B3). Never above `region.reserved()`, and every
    /// byte below it is accessible: a grow commits the bytes before publishing the length.
    byte_length: AtomicUsize,
    /// `Some(max)` for a growable buffer.
    max_byte_length: Option<usize>,
}

impl SharedBuffer {
    /// A fixed-length buffer of `byte_length` zero bytes (SEMANTICS B1). A length the platform
    /// cannot provide is `Err(Error::AllocationFailed)`, never an abort.
    pub fn new(byte_length: usize) -> Result<SharedBuffer, Error> {
        Self::with_region(byte_length, None)
    }

    /// A growable buffer of `byte_length` zero bytes that may grow up to `max_byte_length`
    /// (SEMANTICS B2). The maximum is reserved now, so growing never moves memory; only the
    /// first `byte_length` bytes are committed, so a maximum far above the machine's memory
    /// (a TiB, as JavaScript engines allow) costs address space only.
    pub fn growable(byte_length: usize, max_byte_length: usize) -> Result<SharedBuffer, Error> {
        if byte_length > max_byte_length {
            return Err(Error::ExceedsMax {
                requested: byte_length,
                max: max_byte_length,
            });
        }
        Self::with_region(byte_length, Some(max_byte_length))
    }

    fn with_region(byte_length: usize, max: Option<usize>) -> Result<SharedBuffer, Error> {
        let region = Region::new(max.unwrap_or(byte_length), byte_length)?;
        Ok(Self::from_region(region, byte_length, max))
    }

    /// A buffer over `region`, whose first `byte_length` bytes are accessible.
    fn from_region(region: Region, byte_length: usize, max: Option<usize>) -> SharedBuffer {
        SharedBuffer {
            inner: Arc::new(Inner {
                region,
                byte_length: AtomicUsize::new(byte_length),
                max_byte_length: max,
            }),
        }
    }

    /// The current length in bytes. Never decreases.
    #[inline]
    pub fn byte_length(&self) -> usize {
        self.inner.byte_length.load(Ordering::Acquire)
    }

    /// A pointer to the length word, for views that cache it (so a length-tracking view's
    /// bound is one relaxed load, not a walk through the handle).
    #[inline]
    pub(crate) fn length_word(&self) -> LengthWord {
        LengthWord(NonNull::from(&self.inner.byte_length))
    }

    /// The most this buffer can grow to; a fixed buffer's own length (SEMANTICS B2).
    pub fn max_byte_length(&self) -> usize {
        self.inner
            .max_byte_length
            .unwrap_or_else(|| self.byte_length())
    }

    /// Whether the buffer was made with [`SharedBuffer::growable`], even when its length
    /// already equals its maximum (SEMANTICS B2).
    pub fn is_growable(&self) -> bool {
        self.inner.max_byte_length.is_some()
    }

    /// Grows the buffer to `new_byte_length` bytes; the new bytes read as zero (SEMANTICS B3,
    /// B4). Growing to the current length is a no-op. Racing grows are ordered by a
    /// compare-and-swap: a grow that finds the length already larger fails with
    /// `Error::Shrink`, so the length never decreases.
    ///
    /// Errors: `NotGrowable` on a fixed buffer, `ExceedsMax` past the maximum, `Shrink` below
    /// the current length, `AllocationFailed` if the system refuses to commit the memory (the
    /// buffer is then unchanged).
    pub fn grow(&self, new_byte_length: usize) -> Result<(), Error> {
        let Some(max) = self.inner.max_byte_length else {
            return Err(Error::NotGrowable {
                byte_length: self.byte_length(),
            });
        };
        if new_byte_length > max {
            return Err(Error::ExceedsMax {
                requested: new_byte_length,
                max,
            });
        }
        let mut current = self.byte_length();
        if new_byte_length > current {
            // Commit first, publish after: readers bound their accesses by the published length
            // (often read relaxed), so every byte below it must already be accessible. The new
            // bytes were zeroed when the region was reserved (or read zero when first touched)
            // and nothing writes past `byte_length`.
            //
            // Why a relaxed read of the length suffices on the reader's side: `commit` returns
            // only once the system changed the mapping's protection for the whole process
            // (`mprotect` does so under the kernel's lock of the address space, before it
            // returns), and the length is stored after that. A reader that sees the new length and touches a
            // fresh page either finds it mapped, or faults into the kernel, which takes the same
            // lock and finds the page accessible. Racing grows may commit overlapping ranges:
            // committing is idempotent and never undone, and each grow commits everything below
            // its own length, so whichever length wins the compare-and-swap below is covered.
            self.inner.region.commit(new_byte_length)?;
        }
        loop {
            if new_byte_length < current {
                return Err(Error::Shrink {
                    requested: new_byte_length,
                    current,
                });
            }
            if new_byte_length == current {
                return Ok(());
            }
            match self.inner.byte_length.compare_exchange_weak(
                current,
                new_byte_length,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    /// Copies the bytes in `range` (of the current length) into a new fixed-length buffer that
    /// shares nothing with this one (SEMANTICS B5). A start after the end is
    /// `Err(InvertedRange)`; a range past the length is `Err(RangeOutOfBounds)`.
    ///
    /// ```
    /// use sharedbuf::{SharedBuffer, Uint8Array};
    /// let buf = SharedBuffer::new(8)?;
    /// Uint8Array::new(&buf)?.set(2, 7)?;
    /// let copy = buf.slice(2..4)?;
    /// assert_eq!(Uint8Array::new(&copy)?.to_vec(), [7, 0]);
    /// # Ok::<(), sharedbuf::Error>(())
    /// ```
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Result<SharedBuffer, Error> {
        let (start, end) = range::resolve(&range, self.byte_length(), Unit::Bytes)?;
        let len = end - start;
        // SAFETY: the copy below writes all `len` bytes before the region is read or shared
        // (it is wrapped in a buffer only after that).
        let copy = unsafe { Region::uninit(len)? };
        // SAFETY: `start..end` lies within this buffer's current length (checked by
        // `range::resolve`), whose bytes are accessible; `copy` is another region of exactly
        // `len` accessible bytes.
        unsafe { self.region().copy_to_region(start, &copy, 0, len) };
        Ok(SharedBuffer::from_region(copy, len, None))
    }

    /// Whether `self` and `other` are handles to the same memory.
    pub fn same_memory(&self, other: &SharedBuffer) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    #[inline]
    pub(crate) fn region(&self) -> &Region {
        &self.inner.region
    }
}

/// A pointer to a buffer's length word ([`SharedBuffer::length_word`]). The word lives in the
/// buffer's shared allocation, so the pointer is valid while any clone of that buffer lives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LengthWord(NonNull<AtomicUsize>);

// SAFETY: the pointee is an atomic, shared by the buffer's clones on every thread; the pointer
// is only used to load it.
unsafe impl Send for LengthWord {}
// SAFETY: as for `Send`.
unsafe impl Sync for LengthWord {}

impl LengthWord {
    /// The buffer's length, read without ordering: enough for bounds checks, since every byte
    /// up to the maximum was reserved and zeroed before the buffer could be shared (B4), and
    /// every byte below a published length was made accessible before it was published (see
    /// [`SharedBuffer::grow`] for why no ordering is needed for that either).
    ///
    /// # Safety
    /// A clone of the buffer this word came from is alive.
    #[inline(always)]
    pub(crate) unsafe fn load_relaxed(self) -> usize {
        // SAFETY: the buffer, which owns the word, is alive per the caller.
        unsafe { self.0.as_ref() }.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for SharedBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBuffer")
            .field("byte_length", &self.byte_length())
            .field("max_byte_length", &self.max_byte_length())
            .field("growable", &self.is_growable())
            .finish()
    }
}
