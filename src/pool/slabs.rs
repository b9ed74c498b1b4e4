//! Where the chunks of `cells.rs` come from: chunks of [`CHUNK`] bytes handed out in order from
//! slabs of [`SLAB`] bytes (2 MiB, mapped and advised to use a transparent huge page), and a
//! slab whose chunks were all freed is kept for reuse, up to as many as were in use at the
//! busiest moment (at least [`KEEP_MIN`], at most [`KEEP_MAX`]), or unmapped.
//!
//! # Why
//!
//! A bulk submitter keeps a million cells alive (128 MB) and frees them when it joins. From the
//! allocator (one aligned `malloc` per chunk), the first rounds faulted that memory in 4 KiB at
//! a time (79,000 faults over five rounds of a million tasks), and every round walked it through
//! 32,000 small pages. Chunks handed out in order from slabs cost no `malloc` each, and a 2 MiB
//! slab faults once where the kernel grants a huge page (`madvise` mode) and takes one TLB
//! entry: five such rounds took 15,000 faults and a fifth less CPU, most of it from the slabs
//! themselves, a little from the huge pages (BENCHMARKS.md).
//!
//! # Protocol
//!
//! - **S1 (handing out).** One process-wide slab is current; chunks are handed out of it in
//!   order under a mutex, never twice while the slab lives. The slab's first chunk holds its
//!   header.
//! - **S2 (freeing).** The slab's `live` count starts at the number of chunks it has to give,
//!   plus one while it is current. Freeing a chunk takes one off (`Release`); the slab stops
//!   being current when its last chunk is handed out, and takes its own one off then. Whoever
//!   takes the count to zero (after an `Acquire` load of it, so every use of every chunk happened
//!   before) keeps the slab, if fewer are kept than the bound below, or unmaps it.
//! - **S3 (reuse).** A kept slab becomes current again only after S2's zero: no chunk of it,
//!   and so no block or cell in it (cells.rs C2), is referenced any more. A cell's address
//!   stays its identity while any reference to it lives (cells.rs C3).
//!
//! # How many empty slabs are kept
//!
//! As many as were in use at once at the busiest moment since the last [`trim`] (the peak),
//! at least [`KEEP_MIN`] (16 MiB) and at most [`KEEP_MAX`] (256 MiB), so that a burst like the
//! last one maps nothing new. A fresh slab costs more than its `mmap`: the kernel zeroes its
//! huge page on the first touch (`clear_page_erms`, 16.5 % of the samples of 1M-task rounds
//! when only 8 were kept, 56 slabs mapped afresh per round), and on this guest the first
//! touch of memory not used lately now and then costs far more (system time of five rounds,
//! median 0.28 s against 0.10 s with the slabs kept; BENCHMARKS.md, 2026-12-03). The slabs
//! are kept mapped as they are (no `MADV_FREE`: the kernel could take them back, but that was
//! measured to cost more user time). [`trim`] gives back all but [`KEEP_MIN`] and forgets
//! the peak: a pool's worker reaped after its idle timeout calls it, and so does dropping a
//! pool (the slabs are the process's, so any pool's trim gives back what any pool left). A
//! pool kept at a fixed size (`min_threads == max_threads`, or no idle timeout) keeps its
//! bursts' slabs until it is dropped.
//!
//! The cost: memory is held in slabs. One live chunk keeps its whole slab mapped (so a few
//! long-lived tasks spread over many slabs can hold 2 MiB each), the current slab stays mapped
//! for the life of the process once a pool has run a task, and after a burst of tasks, its
//! empty slabs (up to [`KEEP_MAX`]) stay mapped for the next until a [`trim`].

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// The size and alignment of a chunk (cells.rs).
pub(super) const CHUNK: usize = 8192;

/// The size and alignment of a slab: a huge page on x86-64 and aarch64. (Under Miri, four
/// chunks, so that tests go through many slabs.)
const SLAB: usize = if cfg!(miri) { 4 * CHUNK } else { 2 << 20 };

/// Chunks per slab, counting the header's.
const CHUNKS: usize = SLAB / CHUNK;

/// Empty slabs kept mapped for reuse whatever the peak (S2): 16 MiB. (Under Miri, one.)
const KEEP_MIN: usize = if cfg!(miri) { 1 } else { 8 };

/// Empty slabs kept mapped for reuse at most, after a peak of that many in use: 256 MiB, two
/// bursts of a million plain tasks. (Under Miri, three.)
const KEEP_MAX: usize = if cfg!(miri) { 3 } else { 128 };

/// The first chunk of a slab.
struct SlabHead {
    /// Chunks not yet freed, counting those not yet handed out, plus one while the slab is
    /// current (S2).
    live: AtomicUsize,
}

/// The current slab and its next chunk (S1), the empty slabs kept (S2), and how many slabs
/// are in use (current, or with a chunk not yet freed) now and at most since the last [`trim`].
struct Slabs {
    current: *mut u8,
    next: usize,
    kept: Vec<NonNull<u8>>,
    in_use: usize,
    peak: usize,
}

impl Slabs {
    /// How many empty slabs may be kept now.
    fn keep(&self) -> usize {
        self.peak.clamp(KEEP_MIN, KEEP_MAX)
    }
}

// SAFETY: the pointers are to slabs, plain memory that whoever holds the mutex manages.
unsafe impl Send for Slabs {}

static SLABS: Mutex<Slabs> = Mutex::new(Slabs {
    current: std::ptr::null_mut(),
    next: CHUNKS,
    kept: Vec::new(),
    in_use: 0,
    peak: 0,
});

/// A chunk of [`CHUNK`] bytes, aligned to [`CHUNK`]; `None` if out of memory. Free it with
/// [`free_chunk`].
pub(super) fn chunk() -> Option<NonNull<u8>> {
    let mut slabs = SLABS.lock().unwrap_or_else(PoisonError::into_inner);
    if slabs.next == CHUNKS {
        let slab = match slabs.kept.pop() {
            Some(slab) => slab,
            None => map_slab()?,
        };
        // SAFETY: a fresh or kept slab is ours alone (S3); it is aligned for the header.
        unsafe {
            slab.as_ptr().cast::<SlabHead>().write(SlabHead {
                live: AtomicUsize::new(CHUNKS),
            })
        };
        slabs.current = slab.as_ptr();
        slabs.next = 1;
        slabs.in_use += 1;
        slabs.peak = slabs.peak.max(slabs.in_use);
    }
    let index = slabs.next;
    slabs.next += 1;
    let slab = slabs.current;
    // SAFETY: `index < CHUNKS`, so the chunk lies within the current slab (S1).
    let chunk = unsafe { slab.add(index * CHUNK) };
    let used_up = slabs.next == CHUNKS;
    if used_up {
        slabs.current = std::ptr::null_mut();
    }
    drop(slabs);
    if used_up {
        // SAFETY: the slab's count for being current is taken off once, here (S2). (Outside the
        // lock: `release` may take it.)
        unsafe { release(slab) };
    }
    NonNull::new(chunk)
}

/// Frees a chunk [`chunk`] gave out.
///
/// # Safety
/// `chunk` came from [`chunk`], is freed once, and is not used afterwards.
pub(super) unsafe fn free_chunk(chunk: NonNull<u8>) {
    // The slab's start, with the chunk's provenance (a slab is one allocation).
    let slab = chunk
        .as_ptr()
        .wrapping_sub(chunk.as_ptr() as usize & (SLAB - 1));
    // SAFETY: the chunk's count is in its slab, which is therefore alive.
    unsafe { release(slab) };
}

/// Takes one off `slab`'s live count; at zero, keeps or unmaps the slab (S2).
///
/// # Safety
/// `slab` is alive and one of its count is the caller's to take off.
unsafe fn release(slab: *mut u8) {
    // SAFETY: the caller's contract; a slab starts with its header.
    let head = unsafe { &*slab.cast::<SlabHead>() };
    if head.live.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    // An acquire load rather than a fence: the same order, and visible to ThreadSanitizer (as
    // in `JobRef::drop`).
    head.live.load(Ordering::Acquire);
    #[cfg(test)]
    tests::EMPTIED.fetch_add(1, Ordering::Relaxed);
    let mut slabs = SLABS.lock().unwrap_or_else(PoisonError::into_inner);
    slabs.in_use -= 1;
    // Room first (if that fails, the slab is unmapped instead): no allocation failure can
    // strand the slab half kept.
    if slabs.kept.len() < slabs.keep() && slabs.kept.try_reserve_exact(KEEP_MAX).is_ok() {
        // SAFETY: `slab` is not null (it came from `map_slab`).
        slabs.kept.push(unsafe { NonNull::new_unchecked(slab) });
        return;
    }
    drop(slabs);
    // SAFETY: the count reached zero: no chunk of the slab is in use, nor will be (S3).
    unsafe { unmap_slab(slab) };
}

/// Unmaps the kept slabs beyond [`KEEP_MIN`] and forgets the peak (the bound on kept slabs
/// starts again from the slabs in use now).
pub(super) fn trim() {
    let mut slabs = SLABS.lock().unwrap_or_else(PoisonError::into_inner);
    slabs.peak = slabs.in_use;
    let keep = KEEP_MIN.min(slabs.kept.len());
    let excess = slabs.kept.split_off(keep);
    drop(slabs);
    for slab in excess {
        // SAFETY: a kept slab is empty and nobody uses it (S2, S3); taken out of the list, it
        // is unmapped once.
        unsafe { unmap_slab(slab.as_ptr()) };
    }
}

/// A new slab, aligned to [`SLAB`]; `None` if out of memory.
#[cfg(all(unix, not(miri)))]
fn map_slab() -> Option<NonNull<u8>> {
    // Map twice the size, then unmap the ends around an aligned slab.
    // SAFETY: an anonymous private mapping touches nothing of ours.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * SLAB,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    let base = base.cast::<u8>();
    let head = (SLAB - (base as usize & (SLAB - 1))) & (SLAB - 1);
    // SAFETY: `head < SLAB`: within the mapping.
    let slab = unsafe { base.add(head) };
    // SAFETY: the unmapped ends are ours and unused: [base, slab) and the tail past the slab.
    unsafe {
        if head > 0 {
            libc::munmap(base.cast(), head);
        }
        libc::munmap(slab.add(SLAB).cast(), SLAB - head);
    }
    // A hint: one fault and one huge page per slab where the kernel grants it.
    #[cfg(target_os = "linux")]
    // SAFETY: advice on our own mapping.
    unsafe {
        libc::madvise(slab.cast(), SLAB, libc::MADV_HUGEPAGE);
    }
    NonNull::new(slab)
}

/// Unmaps a slab of [`map_slab`].
///
/// # Safety
/// Nothing uses the slab any more.
#[cfg(all(unix, not(miri)))]
unsafe fn unmap_slab(slab: *mut u8) {
    // SAFETY: the caller's contract; the slab is a mapping of SLAB bytes of ours.
    unsafe { libc::munmap(slab.cast(), SLAB) };
}

#[cfg(not(all(unix, not(miri))))]
fn slab_layout() -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(SLAB, SLAB).expect("a power of two")
}

/// A new slab, aligned to [`SLAB`]; `None` if out of memory. (Miri cannot run `mmap`.)
#[cfg(not(all(unix, not(miri))))]
fn map_slab() -> Option<NonNull<u8>> {
    // SAFETY: the layout's size is not zero.
    NonNull::new(unsafe { std::alloc::alloc(slab_layout()) })
}

/// Frees a slab of [`map_slab`].
///
/// # Safety
/// Nothing uses the slab any more.
#[cfg(not(all(unix, not(miri))))]
unsafe fn unmap_slab(slab: *mut u8) {
    // SAFETY: the caller's contract; allocated with this layout.
    unsafe { std::alloc::dealloc(slab, slab_layout()) };
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Slabs whose count reached zero (S2).
    pub(in crate::pool) static EMPTIED: AtomicUsize = AtomicUsize::new(0);

    /// A chunk, sent to the thread that frees it.
    struct Chunk(NonNull<u8>);
    // SAFETY: a chunk is plain memory; whoever holds it owns it.
    unsafe impl Send for Chunk {}

    #[test]
    fn chunks_are_distinct_and_slabs_reused_only_once_every_chunk_is_freed() {
        // Two threads take chunks, write them whole, free half of them and send the other
        // half to the other thread to free, over many slabs, so that the last chunk of a slab
        // is freed by either; live chunks never overlap. (Also run under Miri, with slabs of
        // four chunks: a slab reused or freed before its chunks' last uses is a data race or a
        // use after free there.)
        let rounds = if cfg!(miri) { 4 } else { 64 };
        let per_round = 3 * CHUNKS;
        let emptied = EMPTIED.load(Ordering::Relaxed);
        let (to_a, from_b) = std::sync::mpsc::channel::<Vec<Chunk>>();
        let (to_b, from_a) = std::sync::mpsc::channel::<Vec<Chunk>>();
        let work = |me: u8,
                    to: std::sync::mpsc::Sender<Vec<Chunk>>,
                    from: std::sync::mpsc::Receiver<Vec<Chunk>>| {
            for _ in 0..rounds {
                let chunks: Vec<Chunk> = (0..per_round)
                    .map(|_| Chunk(chunk().expect("memory")))
                    .collect();
                let mut starts: Vec<usize> = chunks.iter().map(|c| c.0.as_ptr() as usize).collect();
                assert!(starts.iter().all(|s| s % CHUNK == 0 && s % SLAB != 0));
                starts.sort_unstable();
                starts.dedup();
                assert_eq!(starts.len(), chunks.len(), "a chunk handed out twice");
                for c in &chunks {
                    // SAFETY: a chunk of CHUNK bytes, ours until sent.
                    unsafe { c.0.as_ptr().write_bytes(me, CHUNK) };
                }
                let (mine, theirs): (Vec<_>, Vec<_>) = chunks
                    .into_iter()
                    .enumerate()
                    .partition(|(i, _)| i % 2 == 0);
                to.send(theirs.into_iter().map(|(_, c)| c).collect())
                    .unwrap();
                for (_, c) in mine {
                    // SAFETY: ours; freed once.
                    unsafe {
                        assert_eq!(c.0.as_ptr().add(CHUNK - 1).read(), me);
                        free_chunk(c.0);
                    }
                }
                for c in from.recv().unwrap() {
                    // SAFETY: the other thread wrote it before sending it (the channel orders);
                    // freed once.
                    unsafe {
                        assert_ne!(c.0.as_ptr().add(CHUNK - 1).read(), me);
                        free_chunk(c.0);
                    }
                }
                if me == 1 {
                    // Racing the other thread's chunks: only empty kept slabs may go.
                    trim();
                    assert!(SLABS.lock().unwrap().kept.len() <= KEEP_MAX);
                }
            }
        };
        std::thread::scope(|scope| {
            scope.spawn(|| work(1, to_b, from_b));
            scope.spawn(|| work(2, to_a, from_a));
        });
        // Every round's chunks span more than one slab, all freed: some slabs emptied.
        assert!(EMPTIED.load(Ordering::Relaxed) > emptied);
        assert!(SLABS.lock().unwrap().kept.len() <= KEEP_MAX);
    }

    #[test]
    fn empty_slabs_are_kept_up_to_the_peak_and_trimmed_to_the_minimum() {
        // The bound alone (other tests take and free chunks at the same time, so the list's
        // length is only checked against the bounds).
        let slabs = |in_use, peak| Slabs {
            current: std::ptr::null_mut(),
            next: CHUNKS,
            kept: Vec::new(),
            in_use,
            peak,
        };
        assert_eq!(slabs(0, 0).keep(), KEEP_MIN);
        assert_eq!(slabs(1, KEEP_MIN + 1).keep(), KEEP_MIN + 1);
        assert_eq!(slabs(1, KEEP_MAX + 1).keep(), KEEP_MAX);
        let chunks: Vec<Chunk> = (0..(KEEP_MIN + 2) * CHUNKS)
            .map(|_| Chunk(chunk().expect("memory")))
            .collect();
        assert!(SLABS.lock().unwrap().peak >= KEEP_MIN + 2);
        for c in chunks {
            // SAFETY: ours; freed once.
            unsafe { free_chunk(c.0) };
        }
        assert!(SLABS.lock().unwrap().kept.len() <= KEEP_MAX);
        trim();
        // Chunks still come (from a kept slab, the current one or a fresh one) and are whole.
        let c = chunk().expect("memory");
        // SAFETY: a chunk of CHUNK bytes, ours; freed once.
        unsafe {
            c.as_ptr().write_bytes(7, CHUNK);
            free_chunk(c);
        }
    }
}
