//! The bulk engine: moving bytes between region memory and private memory (a view's
//! `copy_to_slice` / `copy_from_slice`), from one region to another (a buffer's `slice`), and
//! filling region memory with a repeated element (a view's `fill`), without ever making a Rust
//! slice over region memory (soundness rule 1).
//!
//! Two ways, picked by size:
//! - relaxed atomic loads or stores, a machine word at a time where alignment allows (a byte or
//!   an element at a time at the unaligned ends): atomic by construction, and what runs under
//!   loom and Miri;
//! - on x86-64, the CPU's string instructions (`rep movsb`, `rep stosq`) for larger copies and
//!   fills, where they are faster; see [`copy_bytes_by_cpu`] and [`fill_words_by_cpu`] for why
//!   they are the same atomic accesses.

use super::{Bits, RegionPtr};
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

/// Fills of at least this many bytes of whole words use [`fill_words_by_cpu`] (at every size
/// above: unlike copies out, a string fill keeps up with the word loop beyond the caches).
#[cfg(all(target_arch = "x86_64", not(miri)))]
const CPU_FILL_MIN: usize = 2048;

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

/// Copies `len` bytes of region memory from `src` to `dst`, another region (both may be
/// accessed by others meanwhile, atomically).
///
/// Byte-wise atomic, as JavaScript's `SharedArrayBuffer.prototype.slice`: each byte is read once
/// and written once, whole. On x86-64 a large copy is one `rep movsb` from region to region (no
/// private bounce buffer: both sides are only ever accessed atomically, and the string copy is
/// the same byte-wise atomic copy as the loops; see [`copy_bytes_by_cpu`]); otherwise machine
/// words where source and destination can both be word-aligned at once, bytes where they
/// cannot.
///
/// # Safety
/// The `len` bytes at `src` and at `dst` are within live regions' accessible bytes and do not
/// overlap (they are in distinct regions).
pub(super) unsafe fn copy_between(src: RegionPtr, dst: RegionPtr, len: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if let (true, Some(from), Some(to)) = (len >= CPU_COPY_MIN, src.raw(), dst.raw()) {
        // SAFETY: per the caller, `from` is valid for `len` region bytes and `to` for `len`
        // region bytes of another region, so they do not overlap; both are only ever accessed
        // atomically by others.
        unsafe { copy_bytes_by_cpu(from, to, len) };
        return;
    }
    let head = head_len(dst, len);
    let words = if (src.address() + head) % 8 == 0 {
        (len - head) / 8
    } else {
        0 // the two can never be word-aligned together: bytes all the way
    };
    let mut i = 0;
    // SAFETY: (all three loops) `i < len` keeps both accesses within the caller's ranges; the
    // word accesses start where both `dst + i` and `src + i` are 8-aligned.
    unsafe {
        while i < head {
            dst.store::<u8>(i, src.load::<u8>(i, Relaxed), Relaxed);
            i += 1;
        }
        for _ in 0..words {
            dst.store::<u64>(i, src.load::<u64>(i, Relaxed), Relaxed);
            i += 8;
        }
        while i < len {
            dst.store::<u8>(i, src.load::<u8>(i, Relaxed), Relaxed);
            i += 1;
        }
    }
}

/// Fills with `value` the `count` elements of `B` starting at `dst`.
///
/// Each element is written whole (a relaxed atomic store of the element, or of the aligned
/// machine word holding it), as `TypedArray::fill` promises (docs/semantics.md V4): elements at
/// the unaligned ends one at a time, the rest as machine words holding `value` repeated; on
/// x86-64 a large fill stores those words with `rep stosq` ([`fill_words_by_cpu`]).
///
/// # Safety
/// The `count * B::SIZE` bytes at `dst` are within a live region's accessible bytes, and `dst`
/// is aligned to `B::SIZE`.
pub(super) unsafe fn fill<B: Bits>(dst: RegionPtr, count: usize, value: B) {
    let len = count * B::SIZE;
    // `dst` is aligned to the element size, which divides 8, so the bytes before the next
    // 8-byte boundary are whole elements, and in every 8-aligned word the elements sit at the
    // same places: the word holding `value` repeated writes each of them.
    let head = head_len(dst, len);
    let words = (len - head) / 8;
    let pattern = repeated(value);
    let mut i = 0;
    // SAFETY: the element stores stay below `len`, at multiples of the element size from an
    // aligned `dst`; the words from `head` to `head + words * 8 <= len` start 8-aligned.
    unsafe {
        while i < head {
            dst.store::<B>(i, value, Relaxed);
            i += B::SIZE;
        }
        fill_words(dst, i, head + words * 8, pattern);
        i = head + words * 8;
        while i < len {
            dst.store::<B>(i, value, Relaxed);
            i += B::SIZE;
        }
    }
}

/// Stores `pattern` into every 8-byte word of `dst` from byte `from` to byte `to`.
///
/// # Safety
/// `dst + from` is 8-aligned, `to - from` a multiple of 8, and those bytes are within a live
/// region's accessible bytes.
#[inline]
unsafe fn fill_words(dst: RegionPtr, from: usize, to: usize, pattern: u64) {
    let mut i = from;
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if let (true, Some(raw)) = (to - from >= CPU_FILL_MIN, dst.raw()) {
        // Word stores up to a cache-line boundary first: fast-string stores start slowly from
        // a misaligned line.
        while i < to && (dst.address() + i) % 64 != 0 {
            // SAFETY: `from <= i < to`, 8-aligned, within the caller's range.
            unsafe { dst.store::<u64>(i, pattern, Relaxed) };
            i += 8;
        }
        // SAFETY: `raw + i` is 8-aligned and the `to - i` bytes from it are within the
        // caller's range of region memory.
        unsafe { fill_words_by_cpu(raw.add(i), (to - i) / 8, pattern) };
        return;
    }
    while i < to {
        // SAFETY: as above.
        unsafe { dst.store::<u64>(i, pattern, Relaxed) };
        i += 8;
    }
}

/// `value`'s bytes repeated to fill a `u64`: the contents of every 8-aligned word of a run of
/// `value` elements (in either byte order, since the repetition is the same both ways).
fn repeated<B: Bits>(value: B) -> u64 {
    let mut pattern = value.to_u64();
    let mut width = B::SIZE * 8;
    while width < 64 {
        pattern |= pattern << width;
        width *= 2;
    }
    pattern
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

/// Stores `pattern` into the `words` 8-aligned machine words from `dst` with the CPU's string
/// store (`rep stosq`).
///
/// Why this is sound although others may access the words meanwhile: as for
/// [`copy_bytes_by_cpu`], the store happens inside an `asm!` block the compiler treats as an
/// opaque write of that memory, and its meaning is the hardware's: `rep stosq` is a sequence of
/// aligned 8-byte stores, each single-copy atomic on x86-64 (Intel SDM vol. 3, "Guaranteed
/// atomic operations"). Fast-string microcode may reorder those stores among themselves and
/// group them into whole cache lines (SDM, "Out-of-order stores for string operations"), which
/// relaxed stores permit; it does not split an aligned word. So this is exactly the word loop
/// of relaxed `AtomicU64` stores in [`fill`], and every element inside a word is written whole.
///
/// # Safety
/// `dst` is 8-aligned and valid for `words * 8` byte writes; any region memory there is only
/// ever accessed atomically by others.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline]
unsafe fn fill_words_by_cpu(dst: *mut u8, words: usize, pattern: u64) {
    // SAFETY: valid, aligned range per the caller. `rep stosq` stores `rax` to `rcx` words
    // upwards from `[rdi]` (the direction flag is clear on entry to `asm!`, as the Rust ABI
    // requires), touches no stack and changes no flags.
    unsafe {
        std::arch::asm!(
            "rep stosq",
            inout("rcx") words => _,
            inout("rdi") dst => _,
            in("rax") pattern,
            options(nostack, preserves_flags),
        );
    }
}
