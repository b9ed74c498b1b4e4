//! Backing memory: where a buffer's bytes live.
//!
//! A [`Region`] is a zeroed block reserved once at its maximum size, so growing a buffer never
//! moves it (SEMANTICS B4) and views stay valid. Small blocks come from the heap
//! ([`heap`]), large ones from an anonymous mapping ([`mmap`]) so the operating system commits
//! pages only when they are touched; file and memfd mappings shared with other processes will
//! be a third backing behind the same interface. Under `--cfg loom` the block is an array of
//! loom atomic cells (`loom_cells`) so models see every access.
//!
//! Soundness (DESIGN.md rule 1): another thread, or another process, may write any byte at any
//! time, so region memory is only ever touched through atomics: no `&[u8]`, `&mut [u8]` or `&T`
//! over it, ever. Bulk copies are word-wise relaxed atomic loops. Overlapping accesses of
//! different sizes (a `Uint8Array` and an `Int32Array` over the same bytes) are allowed, as in
//! every JavaScript engine: that is the one place the crate relies on the hardware (x86 and
//! ARM both keep such accesses single-copy atomic per byte) beyond Rust's memory model.

mod bits;
#[cfg(not(loom))]
mod heap;
#[cfg(loom)]
mod loom_cells;
#[cfg(not(loom))]
mod mmap;

pub use bits::Bits;
pub(crate) use bits::RmwOp;

#[cfg(not(loom))]
use crate::error::Error;
#[cfg(not(loom))]
use crate::shim::Ordering;

/// The largest block a region will try to reserve: Rust allocations and pointer offsets are
/// limited to `isize::MAX` bytes.
pub(crate) const MAX_RESERVE: usize = isize::MAX as usize;

/// A zeroed block of memory reserved at a fixed size, accessed only atomically.
#[cfg(not(loom))]
pub(crate) struct Region {
    base: std::ptr::NonNull<u8>,
    reserved: usize,
    _backing: Backing,
}

/// What owns the memory behind `Region::base`; dropping it frees the memory.
#[cfg(not(loom))]
#[allow(dead_code)] // the owners are held only for their `Drop`
enum Backing {
    /// Zero bytes: nothing to own, `base` is dangling and never accessed.
    Empty,
    Heap(heap::HeapBlock),
    Anonymous(mmap::AnonymousMapping),
}

#[cfg(loom)]
pub(crate) use loom_cells::{Region, RegionPtr};

// SAFETY: the region's memory is only accessed through atomic operations (see the module docs),
// and the backing owners are plain allocations with no thread affinity, so sharing and sending
// a `Region` between threads is sound.
#[cfg(not(loom))]
unsafe impl Send for Region {}
// SAFETY: as for `Send`: every access through `&Region` is atomic.
#[cfg(not(loom))]
unsafe impl Sync for Region {}

/// A cached pointer to one byte of a region, for hot paths (typed views keep one to their
/// first byte so an element access is an add and one atomic instruction, not a walk through
/// the buffer handle).
///
/// Making one is safe; using it is `unsafe`: the caller must keep the region alive (views hold
/// a clone of their buffer) and stay within its reserved bytes. A region never moves, so the
/// pointer stays valid for as long as the region lives.
#[cfg(not(loom))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct RegionPtr(std::ptr::NonNull<u8>);

// SAFETY: a `RegionPtr` is only dereferenced atomically (`load`/`store` below), like the region
// it points into, which is itself `Send` and `Sync`.
#[cfg(not(loom))]
unsafe impl Send for RegionPtr {}
// SAFETY: as for `Send`.
#[cfg(not(loom))]
unsafe impl Sync for RegionPtr {}

#[cfg(not(loom))]
impl RegionPtr {
    /// The pointer `bytes` further on.
    ///
    /// # Safety
    /// The result stays within the region's reserved bytes (or one past the end).
    #[inline(always)]
    pub(crate) unsafe fn add(self, bytes: usize) -> RegionPtr {
        // SAFETY: in bounds per the caller.
        RegionPtr(unsafe { self.0.add(bytes) })
    }

    /// Atomic load of the `B` at `offset` bytes past this pointer.
    ///
    /// # Safety
    /// The region is alive; the pointer plus `offset` is aligned to `B::SIZE` and the `B::SIZE`
    /// bytes there are within the region's reserved bytes.
    #[inline(always)]
    pub(crate) unsafe fn load<B: Bits>(self, offset: usize, order: Ordering) -> B {
        // SAFETY: in bounds, aligned and alive per the caller; region memory is atomic-only.
        unsafe { B::load(self.0.as_ptr().add(offset), order) }
    }

    /// Atomic store of `value` at `offset` bytes past this pointer.
    ///
    /// # Safety
    /// As for [`RegionPtr::load`].
    #[inline(always)]
    pub(crate) unsafe fn store<B: Bits>(self, offset: usize, value: B, order: Ordering) {
        // SAFETY: in bounds, aligned and alive per the caller; region memory is atomic-only.
        unsafe { B::store(self.0.as_ptr().add(offset), value, order) }
    }

    /// Atomic read-modify-write of the `B` here; returns the old value.
    ///
    /// # Safety
    /// As for [`RegionPtr::load`], at offset 0.
    #[inline(always)]
    pub(crate) unsafe fn rmw<B: Bits>(self, op: RmwOp, operand: B, order: Ordering) -> B {
        // SAFETY: in bounds, aligned and alive per the caller; region memory is atomic-only.
        unsafe { B::rmw(self.0.as_ptr(), op, operand, order) }
    }

    /// Atomic compare-exchange of the `B` here; returns the old value whether or not it wrote.
    ///
    /// # Safety
    /// As for [`RegionPtr::load`], at offset 0.
    #[inline(always)]
    pub(crate) unsafe fn compare_exchange<B: Bits>(
        self,
        expected: B,
        replacement: B,
        order: Ordering,
    ) -> B {
        // SAFETY: in bounds, aligned and alive per the caller; region memory is atomic-only.
        unsafe { B::compare_exchange(self.0.as_ptr(), expected, replacement, order) }
    }

    /// The absolute address: the identity of a location for waiter lists (SEMANTICS A10).
    pub(crate) fn address(self) -> usize {
        self.0.as_ptr() as usize
    }
}

/// Blocks at least this large come from an anonymous mapping (committed lazily by the OS);
/// smaller ones from the heap. Miri cannot run `mmap`, so under Miri everything is heap.
#[cfg(not(loom))]
const MAPPING_THRESHOLD: usize = if cfg!(miri) { usize::MAX } else { 256 * 1024 };

#[cfg(not(loom))]
impl Region {
    /// Reserves `reserved` zeroed bytes, or explains why the platform refused (SEMANTICS B1).
    pub(crate) fn zeroed(reserved: usize) -> Result<Region, Error> {
        if reserved > MAX_RESERVE {
            return Err(Error::AllocationFailed {
                bytes: reserved,
                reason: format!("larger than the platform limit of {MAX_RESERVE} bytes"),
            });
        }
        let (base, backing) = if reserved == 0 {
            (std::ptr::NonNull::<u64>::dangling().cast(), Backing::Empty)
        } else if reserved < MAPPING_THRESHOLD {
            let block = heap::HeapBlock::zeroed(reserved)?;
            (block.base(), Backing::Heap(block))
        } else {
            let mapping = mmap::AnonymousMapping::zeroed(reserved)?;
            (mapping.base(), Backing::Anonymous(mapping))
        };
        Ok(Region {
            base,
            reserved,
            _backing: backing,
        })
    }

    /// The number of bytes reserved.
    pub(crate) fn reserved(&self) -> usize {
        self.reserved
    }

    /// A cached pointer to byte `offset`, for hot paths; see [`RegionPtr`].
    ///
    /// # Safety
    /// `offset <= self.reserved()`.
    #[inline]
    pub(crate) unsafe fn ptr_at(&self, offset: usize) -> RegionPtr {
        debug_assert!(offset <= self.reserved());
        // SAFETY: `offset <= reserved` per the caller: the result points into the block or one
        // past its end (for an empty region `offset` is 0 and the dangling base is kept).
        RegionPtr(unsafe { self.base.add(offset) })
    }

    /// Pointer to byte `offset`.
    ///
    /// # Safety
    /// `offset <= self.reserved`.
    #[inline(always)]
    unsafe fn at(&self, offset: usize) -> *mut u8 {
        debug_assert!(offset <= self.reserved);
        // SAFETY: the caller keeps `offset` within the reserved block (or one past it).
        unsafe { self.base.as_ptr().add(offset) }
    }

    /// Atomic load of the `B` at byte `offset`.
    ///
    /// # Safety
    /// `offset` is a multiple of `B::SIZE` and `offset + B::SIZE <= self.reserved()`.
    #[inline(always)]
    pub(crate) unsafe fn load<B: Bits>(&self, offset: usize, order: Ordering) -> B {
        // SAFETY: in bounds and aligned per the caller; region memory is atomic-only.
        unsafe { B::load(self.at(offset), order) }
    }

    /// Atomic store of `value` at byte `offset`.
    ///
    /// # Safety
    /// As for [`Region::load`].
    #[inline(always)]
    pub(crate) unsafe fn store<B: Bits>(&self, offset: usize, value: B, order: Ordering) {
        // SAFETY: in bounds and aligned per the caller; region memory is atomic-only.
        unsafe { B::store(self.at(offset), value, order) }
    }

    /// Copies `len` bytes starting at `offset` out to `dst`: byte-wise atomic, like every
    /// copy here (see [`copy_bytes_by_cpu`] for large copies, relaxed atomic words otherwise).
    ///
    /// # Safety
    /// `offset + len <= self.reserved()`; `dst` is valid for `len` byte writes and is not
    /// region memory.
    #[inline]
    pub(crate) unsafe fn copy_out(&self, offset: usize, dst: *mut u8, len: usize) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        if (CPU_COPY_MIN..CPU_COPY_MAX).contains(&len) {
            // SAFETY: the caller keeps `offset + len` within the region and `dst` valid for
            // `len` private bytes; the two do not overlap (`dst` is not region memory).
            unsafe { copy_bytes_by_cpu(self.at(offset), dst, len) };
            return;
        }
        // SAFETY: as above.
        unsafe { self.copy_out_atomic(offset, dst, len) }
    }

    /// Copies `len` bytes from `src` into the region at `offset`; see [`Region::copy_out`].
    ///
    /// # Safety
    /// `offset + len <= self.reserved()`; `src` is valid for `len` byte reads and is not
    /// region memory.
    #[inline]
    pub(crate) unsafe fn copy_in(&self, offset: usize, src: *const u8, len: usize) {
        #[cfg(all(target_arch = "x86_64", not(miri)))]
        if (CPU_COPY_MIN..CPU_COPY_MAX).contains(&len) {
            // SAFETY: the caller keeps `offset + len` within the region and `src` valid for
            // `len` private bytes; the two do not overlap (`src` is not region memory).
            unsafe { copy_bytes_by_cpu(src, self.at(offset), len) };
            return;
        }
        // SAFETY: as above.
        unsafe { self.copy_in_atomic(offset, src, len) }
    }

    /// Copies `len` bytes starting at `offset` out to `dst` with relaxed atomic loads, a
    /// machine word at a time where alignment allows.
    ///
    /// # Safety
    /// `offset + len <= self.reserved()`; `dst` is valid for `len` byte writes and is not
    /// region memory.
    unsafe fn copy_out_atomic(&self, offset: usize, dst: *mut u8, len: usize) {
        // SAFETY: the caller keeps `offset + len` in bounds.
        let src = unsafe { self.at(offset) };
        let head = src.align_offset(8).min(len);
        let words = (len - head) / 8;
        let mut i = 0;
        // SAFETY: (all three loops) `src + i` stays below `src + len`, inside the region;
        // word loads start at an 8-aligned address; `dst + i` stays inside the caller's buffer.
        unsafe {
            while i < head {
                dst.add(i).write(u8::load(src.add(i), Ordering::Relaxed));
                i += 1;
            }
            for _ in 0..words {
                dst.add(i)
                    .cast::<u64>()
                    .write_unaligned(u64::load(src.add(i), Ordering::Relaxed));
                i += 8;
            }
            while i < len {
                dst.add(i).write(u8::load(src.add(i), Ordering::Relaxed));
                i += 1;
            }
        }
    }

    /// Copies `len` bytes from `src` into the region at `offset` with relaxed atomic stores, a
    /// machine word at a time where alignment allows.
    ///
    /// # Safety
    /// `offset + len <= self.reserved()`; `src` is valid for `len` byte reads and is not
    /// region memory.
    unsafe fn copy_in_atomic(&self, offset: usize, src: *const u8, len: usize) {
        // SAFETY: the caller keeps `offset + len` in bounds.
        let dst = unsafe { self.at(offset) };
        let head = dst.align_offset(8).min(len);
        let words = (len - head) / 8;
        let mut i = 0;
        // SAFETY: (all three loops) `dst + i` stays below `dst + len`, inside the region;
        // word stores start at an 8-aligned address; `src + i` stays inside the caller's buffer.
        unsafe {
            while i < head {
                u8::store(dst.add(i), src.add(i).read(), Ordering::Relaxed);
                i += 1;
            }
            for _ in 0..words {
                u64::store(
                    dst.add(i),
                    src.add(i).cast::<u64>().read_unaligned(),
                    Ordering::Relaxed,
                );
                i += 8;
            }
            while i < len {
                u8::store(dst.add(i), src.add(i).read(), Ordering::Relaxed);
                i += 1;
            }
        }
    }
}

impl Region {
    /// Copies `len` bytes from `self` at `src_offset` to `dst` at `dst_offset`, through a small
    /// private bounce buffer (the two regions may be written by others meanwhile).
    ///
    /// # Safety
    /// `src_offset + len <= self.reserved()` and `dst_offset + len <= dst.reserved()`.
    pub(crate) unsafe fn copy_to_region(
        &self,
        src_offset: usize,
        dst: &Region,
        dst_offset: usize,
        len: usize,
    ) {
        let mut bounce = [0u8; 4096];
        let mut done = 0;
        while done < len {
            let chunk = (len - done).min(bounce.len());
            // SAFETY: both ranges are in bounds per the caller; `bounce` is private memory of
            // at least `chunk` bytes.
            unsafe {
                self.copy_out(src_offset + done, bounce.as_mut_ptr(), chunk);
                dst.copy_in(dst_offset + done, bounce.as_ptr(), chunk);
            }
            done += chunk;
        }
    }
}

/// Copies of at least this many bytes use [`copy_bytes_by_cpu`]; shorter copies use the
/// atomic word loops, which win below a few KiB (no microcode start-up).
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
const CPU_COPY_MIN: usize = 2048;

/// ... and below this many: beyond the caches, memory bandwidth bounds both ways of copying,
/// and `rep movsb` out of a large mapping measured 3-4x slower than the word loop here
/// (benches/views.rs, `bulk_out/64MiB`).
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
const CPU_COPY_MAX: usize = 8 << 20;

/// Copies `len` bytes from `src` to `dst` with the CPU's string-copy instruction (`rep movsb`).
///
/// Why this is sound although another thread may be writing the region bytes meanwhile: the
/// copy happens inside an `asm!` block, which the compiler treats as an opaque operation on the
/// memory behind the pointers (it assumes nothing about its contents before or after), and
/// whose meaning is the hardware's. On x86-64 `rep movsb` reads and writes each byte with a
/// single-byte access, and single-byte accesses are always single-copy atomic, so it is exactly
/// a byte-wise relaxed atomic copy: what JavaScript engines do for a `SharedArrayBuffer` and
/// what the word loops above do with Rust atomics (no Rust reference or slice over region
/// memory is created). Fast-string microcode may reorder the byte accesses among themselves,
/// which relaxed byte-wise copies permit. Not used under Miri (which cannot run `asm!`) or
/// loom (whose region is not raw memory).
///
/// # Safety
/// `src` is valid for `len` byte reads, `dst` for `len` byte writes, and the ranges do not
/// overlap; any region memory among them is only ever accessed atomically by others.
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
#[inline]
unsafe fn copy_bytes_by_cpu(src: *const u8, dst: *mut u8, len: usize) {
    // `rep movsb` is several times slower on common CPUs when the destination is not
    // cache-line aligned, so the first few bytes go separately, leaving `dst` aligned.
    let head = dst.align_offset(64).min(len);
    // SAFETY: valid, non-overlapping ranges per the caller, split at `head <= len`.
    unsafe {
        rep_movsb(src, dst, head);
        rep_movsb(src.add(head), dst.add(head), len - head);
    }
}

/// One `rep movsb` of `len` bytes.
///
/// # Safety
/// As for [`copy_bytes_by_cpu`].
#[cfg(all(target_arch = "x86_64", not(miri), not(loom)))]
#[inline(always)]
unsafe fn rep_movsb(src: *const u8, dst: *mut u8, len: usize) {
    // SAFETY: valid, non-overlapping ranges per the caller. `rep movsb` copies `rcx` bytes
    // from `[rsi]` to `[rdi]` upwards (the direction flag is clear on entry to `asm!`, as the
    // Rust ABI requires), touches no stack and changes no flags.
    unsafe {
        std::arch::asm!(
            "rep movsb",
            inout("rcx") len => _,
            inout("rsi") src => _,
            inout("rdi") dst => _,
            options(nostack, preserves_flags),
        );
    }
}
