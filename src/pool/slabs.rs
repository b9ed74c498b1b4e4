//! Where the chunks of `cells.rs` come from: chunks of [`CHUNK`] bytes handed out in order from
//! slabs of [`SLAB`] bytes (2 MiB, mapped and advised to use a transparent huge page), and a
//! slab whose chunks were all freed is kept for reuse, up to [`KEEP`] slabs, or unmapped.
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
//!   takes the count to zero (after an `Acquire` fence, so every use of every chunk happened
//!   before) keeps the slab, if fewer than [`KEEP`] are kept, or unmaps it.
//! - **S3 (reuse).** A kept slab becomes current again only after S2's zero: no chunk of it,
//!   and so no block or cell in it (cells.rs C2), is referenced any more. A cell's address
//!   stays its identity while any reference to it lives (cells.rs C3).
//!
//! The cost: memory is held in slabs. One live chunk keeps its whole slab mapped (so a few
//! long-lived tasks spread over many slabs can hold 2 MiB each), the current slab stays mapped
//! for the life of the process once a pool has run a task, and up to [`KEEP`] empty slabs
//! (16 MiB) stay mapped for the next burst.

use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// The size and alignment of a chunk (cells.rs).
pub(super) const CHUNK: usize = 8192;

/// The size and alignment of a slab: a huge page on x86-64 and aarch64. (Under Miri, four
/// chunks, so that tests go through many slabs.)
const SLAB: usize = if cfg!(miri) { 4 * CHUNK } else { 2 << 20 };

/// Chunks per slab, counting the header's.
const CHUNKS: usize = SLAB / CHUNK;

/// Empty slabs kept mapped for reuse (S2): 16 MiB. (Under Miri, one.)
const KEEP: usize = if cfg!(miri) { 1 } else { 8 };

/// The first chunk of a slab.
struct SlabHead {
    /// Chunks not yet freed, counting those not yet handed out, plus one while the slab is
    /// current (S2).
    live: AtomicUsize,
}

/// The current slab and its next chunk (S1), and the empty slabs kept (S2).
struct Slabs {
    current: *mut u8,
    next: usize,
    kept: Vec<NonNull<u8>>,
}

// SAFETY: the pointers are to slabs, plain memory that whoever holds the mutex manages.
unsafe impl Send for Slabs {}

static SLABS: Mutex<Slabs> = Mutex::new(Slabs {
    current: std::ptr::null_mut(),
    next: CHUNKS,
    kept: Vec::new(),
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
    fence(Ordering::Acquire);
    #[cfg(test)]
    tests::EMPTIED.fetch_add(1, Ordering::Relaxed);
    let mut slabs = SLABS.lock().unwrap_or_else(PoisonError::into_inner);
    if slabs.kept.len() < KEEP {
        // `reserve` first: no allocation failure can strand the slab half kept.
        slabs.kept.reserve_exact(KEEP);
        // SAFETY: `slab` is not null (it came from `map_slab`).
        slabs.kept.push(unsafe { NonNull::new_unchecked(slab) });
        return;
    }
    drop(slabs);
    // SAFETY: the count reached zero: no chunk of the slab is in use, nor will be (S3).
    unsafe { unmap_slab(slab) };
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
            }
        };
        std::thread::scope(|scope| {
            scope.spawn(|| work(1, to_b, from_b));
            scope.spawn(|| work(2, to_a, from_a));
        });
        // Every round's chunks span more than one slab, all freed: some slabs emptied.
        assert!(EMPTIED.load(Ordering::Relaxed) > emptied);
        assert!(SLABS.lock().unwrap().kept.len() <= KEEP);
    }
}
