//! The bulk-copy engine: moving bytes between region memory and private memory (a view's
//! `copy_to_slice` / `copy_from_slice`, a buffer's `slice`), without ever making a Rust slice
//! over region memory (DESIGN rule 1).
//!
//! Two ways, picked by size:
//! - relaxed atomic loads or stores, a machine word at a time where alignment allows (a byte at
//!   a time at the unaligned ends): byte-wise atomic by construction, and what runs under loom
//!   and Miri;
//! - on x86-64, the CPU's string copy (`rep movsb`) for mid-sized copies, where it is faster; see
//!   [`copy_bytes_by_cpu`] for why that is the same byte-wise atomic copy.

use super::RegionPtr;
use crate::shim::Ordering::Relaxed;

/// Copies of at least this many bytes use [`copy_bytes_by_cpu`]; shorter copies use the
/// atomic word loops, which win below a few KiB (no microcode start-up).
#[cfg(all(target_arch = "x86_64", not(miri)))]
const CPU_COPY_MIN: usize = 2048;

/// ... and below this many: beyond the caches, memory bandwidth bounds both ways of copying,
/// and `rep movsb` out of a large mapping measured 3-4x slower than the word loop here
/// (benches/views.rs, `bulk_out/64MiB`).
#[cfg(all(target_arch = "x86_64", not(miri)))]
const CPU_COPY_MAX: usize = 8 << 20;

/// Copies `len` bytes of region memory at `src` out to `dst`.
///
/// # Safety
/// The `len` bytes at `src` are within a live region; `dst` is valid for `len` byte writes and
/// is not region memory.
#[inline]
pub(super) unsafe fn copy_out(src: RegionPtr, dst: *mut u8, len: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if let (true, Some(raw)) = ((CPU_COPY_MIN..CPU_COPY_MAX).contains(&len), src.raw()) {
        // SAFETY: per the caller, `raw` is valid for `len` region bytes and `dst` for `len`
        // private bytes; they do not overlap (`dst` is not region memory).
        unsafe { copy_bytes_by_cpu(raw, dst, len) };
        return;
    }
    let head = head_len(src, len);
    let words = (len - head) / 8;
    let mut i = 0;
    // SAFETY: (all three loops) `i < len` keeps the region access within the caller's range
    // and `dst + i` within the caller's buffer; word loads start at an 8-aligned address.
    unsafe {
        while i < head {
            dst.add(i).write(src.load::<u8>(i, Relaxed));
            i += 1;
        }
        for _ in 0..words {
            dst.add(i)
                .cast::<u64>()
                .write_unaligned(src.load::<u64>(i, Relaxed));
            i += 8;
        }
        while i < len {
            dst.add(i).write(src.load::<u8>(i, Relaxed));
            i += 1;
        }
    }
}

/// Copies `len` bytes from `src` into region memory at `dst`.
///
/// # Safety
/// The `len` bytes at `dst` are within a live region; `src` is valid for `len` byte reads and
/// is not region memory.
#[inline]
pub(super) unsafe fn copy_in(src: *const u8, dst: RegionPtr, len: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if let (true, Some(raw)) = ((CPU_COPY_MIN..CPU_COPY_MAX).contains(&len), dst.raw()) {
        // SAFETY: per the caller, `raw` is valid for `len` region bytes and `src` for `len`
        // private bytes; they do not overlap (`src` is not region memory).
        unsafe { copy_bytes_by_cpu(src, raw, len) };
        return;
    }
    let head = head_len(dst, len);
    let words = (len - head) / 8;
    let mut i = 0;
    // SAFETY: (all three loops) `i < len` keeps the region access within the caller's range
    // and `src + i` within the caller's buffer; word stores start at an 8-aligned address.
    unsafe {
        while i < head {
            dst.store::<u8>(i, src.add(i).read(), Relaxed);
            i += 1;
        }
        for _ in 0..words {
            dst.store::<u64>(i, src.add(i).cast::<u64>().read_unaligned(), Relaxed);
            i += 8;
        }
        while i < len {
            dst.store::<u8>(i, src.add(i).read(), Relaxed);
            i += 1;
        }
    }
}

/// Copies `len` bytes of region memory from `src` to `dst` (possibly another region), through
/// a small private bounce buffer (both may be written by others meanwhile).
///
/// # Safety
/// The `len` bytes at `src` and at `dst` are within live regions and do not overlap.
pub(super) unsafe fn copy_between(src: RegionPtr, dst: RegionPtr, len: usize) {
    let mut bounce = [0u8; 4096];
    let mut done = 0;
    while done < len {
        let chunk = (len - done).min(bounce.len());
        // SAFETY: both ranges are in bounds per the caller; `bounce` is private memory of at
        // least `chunk` bytes.
        unsafe {
            copy_out(src.add(done), bounce.as_mut_ptr(), chunk);
            copy_in(bounce.as_ptr(), dst.add(done), chunk);
        }
        done += chunk;
    }
}

/// Bytes to copy one at a time before `at` reaches an 8-byte boundary (at most `len`).
fn head_len(at: RegionPtr, len: usize) -> usize {
    ((8 - at.address() % 8) % 8).min(len)
}

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
/// loom (whose memory is not raw: `RegionPtr::raw` is `None` there).
///
/// # Safety
/// `src` is valid for `len` byte reads, `dst` for `len` byte writes, and the ranges do not
/// overlap; any region memory among them is only ever accessed atomically by others.
#[cfg(all(target_arch = "x86_64", not(miri)))]
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
#[cfg(all(target_arch = "x86_64", not(miri)))]
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
