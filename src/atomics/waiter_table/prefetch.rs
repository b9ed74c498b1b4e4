//! Prefetching what cancelling a waiter will touch, before it takes the bucket lock.
//!
//! Dropping a pending future in a random order is a chain of cache misses: the waiter, then
//! (its slot index read from it) its slab slot, then the allocator's headers beside the waiter
//! when it is freed. Locked instructions on the way (the bucket lock, the state swap, the
//! reference counts) wait for every load before them, so each miss is paid in full, one after
//! the other. A future knows where its waiter was enqueued ([`Enqueued`]), so the drop can
//! start all of these misses at once, before the first locked instruction, and its cancel
//! then starts from the slot (`cancel_enqueued`): the waiter's line is needed only at the end,
//! to set its state, and keeps loading while the neighbours are unlinked.
//!
//! Only a hint: a stale address (the slab grew since) costs a useless prefetch, nothing else;
//! the cancel itself reads everything again under the lock. A no-op off x86-64 and under loom.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Where a waiter was enqueued: its bucket and its slot in that bucket's slab. A hint for
/// [`prefetch_cancel`](super::prefetch_cancel) and
/// [`cancel_enqueued`](super::cancel_enqueued), never trusted: a notify takes the waiter out
/// (and the slot may be reused), a requeue moves it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Enqueued {
    pub(super) bucket: usize,
    pub(super) slot: usize,
}

/// The address of a bucket's slab, as last seen with the bucket locked. A plain std atomic,
/// not loom's: nothing is ever synchronized through it (it only feeds prefetches).
#[derive(Default)]
pub(super) struct SlabAddress(AtomicUsize);

impl SlabAddress {
    /// Records the slab's current address (called with the bucket locked).
    pub(super) fn set(&self, address: usize) {
        if self.0.load(Ordering::Relaxed) != address {
            self.0.store(address, Ordering::Relaxed);
        }
    }

    /// The slab's address as last recorded (possibly stale).
    pub(super) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Asks the CPU to start loading the cache line of `address` into all cache levels.
#[inline(always)]
pub(super) fn prefetch(address: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults, whatever the address (even an
    // unmapped or stale one), and changes no memory. The pointer is made without provenance
    // (`null().wrapping_add`, not an integer cast): nothing is accessed through it, so it
    // needs none, and Miri's provenance checks stay strict.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::null::<i8>().wrapping_add(address));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}
