//! Page-aligned zeroed heap blocks: the backing for small buffers, and for every buffer under
//! Miri (which cannot run `mmap`).

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use crate::error::Error;

const PAGE: usize = 4096;

/// An owned, zeroed, page-aligned heap allocation of a non-zero size.
pub(super) struct HeapBlock {
    base: NonNull<u8>,
    layout: Layout,
}

impl HeapBlock {
    /// Allocates `size` (> 0) zeroed bytes aligned to a page.
    pub(super) fn zeroed(size: usize) -> Result<HeapBlock, Error> {
        debug_assert!(size > 0);
        let layout = Layout::from_size_align(size, PAGE).map_err(|_| Error::AllocationFailed {
            bytes: size,
            reason: "the size overflows the platform's allocation limit".into(),
        })?;
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
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
