//! Page-aligned heap blocks: the backing for small buffers, for every buffer under Miri (which
//! cannot run `mmap`), and, without zeroing, for the copies `slice` makes.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use crate::error::Error;

const PAGE: usize = 4096;

/// The alignment of blocks that are overwritten at once (`slice`'s copies): a cache line, more
/// than any atomic access needs. Not a page: the system allocator (glibc) maps and unmaps every
/// large page-aligned block afresh, so each copy would fault in every page again, where a
/// cache-line-aligned block is recycled like a `Vec`'s.
const LINE: usize = 64;

/// An owned heap allocation of a non-zero size, aligned to a page or a cache line.
pub(super) struct HeapBlock {
    base: NonNull<u8>,
    layout: Layout,
}

impl HeapBlock {
    /// Allocates `size` (> 0) zeroed bytes aligned to a page.
    pub(super) fn zeroed(size: usize) -> Result<HeapBlock, Error> {
        Self::allocate(size, PAGE, true)
    }

    /// Allocates `size` (> 0) bytes aligned to a cache line, with unspecified (uninitialized)
    /// contents: the caller writes every byte before reading any.
    pub(super) fn uninit(size: usize) -> Result<HeapBlock, Error> {
        Self::allocate(size, LINE, false)
    }

    fn allocate(size: usize, align: usize, zeroed: bool) -> Result<HeapBlock, Error> {
        debug_assert!(size > 0);
        let layout = Layout::from_size_align(size, align).map_err(|_| Error::AllocationFailed {
            bytes: size,
            reason: "the size overflows the platform's allocation limit".into(),
        })?;
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe {
            if zeroed {
                alloc::alloc_zeroed(layout)
            } else {
                alloc::alloc(layout)
            }
        };
        let base = NonNull::new(ptr).ok_or_else(|| Error::AllocationFailed {
            bytes: size,
            reason: "the allocator is out of memory".into(),
        })?;
        Ok(HeapBlock { base, layout })
    }

    pub(super) fn base(&self) -> NonNull<u8> {
        self.base
    }
}

impl Drop for HeapBlock {
    fn drop(&mut self) {
        // SAFETY: `base` came from `alloc_zeroed` with exactly this layout and is freed once.
        unsafe { alloc::dealloc(self.base.as_ptr(), self.layout) }
    }
}
