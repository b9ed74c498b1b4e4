//! Address-space reservations: the backing for large growable buffers.
//!
//! A growable buffer's maximum may be far above the machine's memory (JavaScript engines allow
//! a `maxByteLength` of a TiB and more). So the maximum is reserved as address space only, a
//! private anonymous mapping with no access (`PROT_NONE`, `MAP_NORESERVE`) that costs neither
//! memory nor commit charge, and the pages are made readable and writable (committed) up to
//! the buffer's length when it is made and each time it grows. The operating system still hands
//! out zeroed pages lazily, when they are first touched.
//!
//! memmap2 cannot map without access or change a mapping's protection in place, so this file
//! calls `mmap`, `mprotect` and `munmap` itself (unix only; elsewhere a growable buffer maps its
//! whole maximum, see `native_memory.rs`).
//!
//! Committing is thread-safe and never undone: concurrent [`Reservation::commit`]s of different
//! sizes each make everything below their own size accessible before returning, so a caller
//! that publishes a length after its commit returned never publishes a length whose bytes are
//! not accessible (see `SharedBuffer::grow`).

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::Error;

/// An owned reservation of address space whose first [`Reservation::committed`] bytes are
/// readable and writable.
pub(super) struct Reservation {
    base: NonNull<u8>,
    /// The reserved size in bytes, as asked (the system rounds the mapping up to whole pages).
    size: usize,
    page: usize,
    /// Bytes known accessible: a multiple of the page size (or `size`), only ever raised, and
    /// only after the `mprotect` covering every byte below it returned.
    committed: AtomicUsize,
}

impl Reservation {
    /// Reserves `size` (> 0) bytes of address space and commits the first `accessible`.
    pub(super) fn new(size: usize, accessible: usize) -> Result<Reservation, Error> {
        debug_assert!(size > 0 && accessible <= size);
        // SAFETY: `sysconf` has no preconditions.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            n if n > 0 => n as usize,
            _ => 4096,
        };
        // SAFETY: a fresh anonymous mapping chosen by the system (null address hint) overlaps
        // nothing of ours; the arguments are valid for `mmap`.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::AllocationFailed {
                bytes: size,
                reason: format!(
                    "the system refused to reserve the address space: {}",
                    io::Error::last_os_error()
                ),
            });
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| Error::AllocationFailed {
            bytes: size,
            reason: "the system returned a null mapping".into(),
        })?;
        // From here on, dropping `reservation` unmaps it (also on the error path below).
        let reservation = Reservation {
            base,
            size,
            page,
            committed: AtomicUsize::new(0),
        };
        reservation.commit(accessible)?;
        Ok(reservation)
    }

    pub(super) fn base(&self) -> NonNull<u8> {
        self.base
    }

    /// Makes the first `len` (<= the reserved size) bytes readable and writable, if they are
    /// not already. When this returns `Ok`, they are accessible to every thread; on `Err`
    /// (the system refused to commit the memory) nothing this reservation promised changed.
    pub(super) fn commit(&self, len: usize) -> Result<(), Error> {
        debug_assert!(len <= self.size);
        // Acquire: pairs with the Release below, so a caller that finds the bytes committed by
        // another thread's call also finds that call's `mprotect` done.
        let done = self.committed.load(Ordering::Acquire);
        if len <= done {
            return Ok(());
        }
        // Whole pages: from the first byte not known accessible (`done` is page-aligned or the
        // whole size) to the page holding the last byte asked for.
        let end = len.next_multiple_of(self.page).min(self.size);
        // SAFETY: `done < len <= size`: the range lies within the mapping, which `self` owns;
        // `base + done` is page-aligned. Other threads may be committing overlapping ranges:
        // setting read/write on pages already read/write changes nothing, and no page of a
        // reservation is ever made inaccessible again, so no access anyone relies on can fault.
        let result = unsafe {
            libc::mprotect(
                self.base.as_ptr().add(done).cast(),
                end - done,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if result != 0 {
            return Err(Error::AllocationFailed {
                bytes: len,
                reason: format!(
                    "the system refused to commit the memory: {}",
                    io::Error::last_os_error()
                ),
            });
        }
        // Every byte below `end` is accessible now (below `done` by the invariant, the rest by
        // our `mprotect`), so the high-water mark may rise to `end`.
        self.committed.fetch_max(end, Ordering::Release);
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: `base` and `size` are exactly the mapping `new` made, unmapped once; no
        // pointer into it is used after the region (its only owner) is gone.
        let result = unsafe { libc::munmap(self.base.as_ptr().cast(), self.size) };
        debug_assert_eq!(result, 0, "munmap of a region's reservation failed");
    }
}
