//! Where task cells live: blocks of [`BLOCK`] bytes carved in order out of a chunk of
//! [`CHUNK`] bytes that belongs to the submitting thread, instead of one `malloc` and one `free`
//! per task.
//!
//! # Why
//!
//! A bulk submitter keeps a million handles alive, then joins them all: glibc's per-thread
//! cache holds only a few freed blocks, so every task's cell cost a slow `malloc` and a slow
//! `free` (about 380 instructions of a task's 1,750 under callgrind). Carving blocks out of a
//! thread's own chunk costs a few instructions; a chunk goes back to the allocator when its
//! last block is freed, so memory is held only as long as some task of the chunk is.
//!
//! # Protocol
//!
//! - **C1 (carving).** Each thread carves blocks out of its current chunk in order, never
//!   twice, and starts a new chunk when it is used up. Only that thread carves, so carving
//!   needs no atomics. The chunk's first block holds its header.
//! - **C2 (freeing).** The chunk's `live` count starts at the number of blocks it has to give,
//!   plus one for the carving thread, which holds that count while the chunk is its current
//!   one (so its pointer to the chunk stays valid). Freeing a block takes one off (`Release`);
//!   the carving thread takes off its own when it moves to a new chunk, plus the blocks it
//!   never carved if it exits first. Whoever takes the count to zero frees the chunk (after an
//!   `Acquire` fence, so every use of every block happened before).
//! - **C3 (no reuse).** A block is never handed out twice: a freed block's memory returns to
//!   the allocator only with its whole chunk. A cell's address therefore stays its identity
//!   while any reference to it lives (scheduler.rs finds a task by address only while holding
//!   one).
//!
//! Cells larger than a block (a plain task's cell is 120 bytes, so a closure that captures
//! more than about 8 to 16 bytes makes it larger), and every cell under loom, are allocated
//! one by one as before. The cost of the scheme: a cell that stays alive keeps its chunk's memory.

use std::alloc::Layout;
use std::ptr::NonNull;

/// The size and alignment of a block: a plain task's whole cell, on lines of its own.
pub(super) const BLOCK: usize = 128;

/// The size and alignment of a chunk: 64 blocks, the first of which is the chunk's header.
const CHUNK: usize = 8192;

/// Blocks per chunk, counting the header's.
const BLOCKS: usize = CHUNK / BLOCK;

/// The first block of a chunk.
struct ChunkHead {
    /// Blocks not yet freed, counting those not yet carved, plus one while the chunk is its
    /// thread's current one (C2).
    live: std::sync::atomic::AtomicUsize,
    /// Made by a thread that a test watches (the test counts its chunks).
    #[cfg(test)]
    watched: bool,
}

const _: () = assert!(std::mem::size_of::<ChunkHead>() <= BLOCK);

fn chunk_layout() -> Layout {
    Layout::from_size_align(CHUNK, CHUNK).expect("a power of two")
}

/// The calling thread's current chunk and the index of its next block (C1).
struct Carver {
    chunk: std::cell::Cell<*mut u8>,
    next: std::cell::Cell<usize>,
}

impl Drop for Carver {
    fn drop(&mut self) {
        let chunk = self.chunk.get();
        if !chunk.is_null() {
            // C2: the thread's own count, and the blocks it will never carve.
            // SAFETY: the chunk is alive: this thread's count is still in `live`.
            unsafe { release(chunk, 1 + BLOCKS - self.next.get()) };
        }
    }
}

std::thread_local! {
    static CARVER: Carver = const {
        Carver {
            chunk: std::cell::Cell::new(std::ptr::null_mut()),
            next: std::cell::Cell::new(BLOCKS),
        }
    };
}

/// A block for a value of `layout`, or `None` if it does not fit one (or this thread can no
/// longer carve: it is exiting; or this is a loom model): allocate it on its own then.
pub(super) fn carve(layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() > BLOCK || layout.align() > BLOCK || crate::shim::LOOM {
        return None;
    }
    // (Under loom `LOOM` returned above: a std thread-local is not a loom thread's own.)
    CARVER
        .try_with(|carver| {
            let mut next = carver.next.get();
            let mut chunk = carver.chunk.get();
            if next == BLOCKS {
                let fresh = new_chunk()?;
                if !chunk.is_null() {
                    // SAFETY: the old chunk is used up and this thread's count is still
                    // in it (C2): it gives that up.
                    unsafe { release(chunk, 1) };
                }
                chunk = fresh;
                carver.chunk.set(chunk);
                next = 1;
            }
            carver.next.set(next + 1);
            // SAFETY: `next < BLOCKS`, so the block lies within the chunk (C1).
            NonNull::new(unsafe { chunk.add(next * BLOCK) })
        })
        .ok()
        .flatten()
}

/// A new chunk, every block but the header's counted live, plus the carving thread (C2);
/// `None` if out of memory.
fn new_chunk() -> Option<*mut u8> {
    // SAFETY: the layout's size is not zero.
    let chunk = unsafe { std::alloc::alloc(chunk_layout()) };
    if chunk.is_null() {
        return None;
    }
    #[cfg(test)]
    let watched = tests::WATCHED.with(|w| w.get());
    #[cfg(test)]
    if watched {
        tests::CHUNKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    // SAFETY: the chunk is fresh, aligned for the header, and large enough.
    unsafe {
        chunk.cast::<ChunkHead>().write(ChunkHead {
            live: std::sync::atomic::AtomicUsize::new(BLOCKS),
            #[cfg(test)]
            watched,
        })
    };
    Some(chunk)
}

/// Frees a block [`carve`] gave out (C2). Its contents were dropped already.
///
/// # Safety
/// `block` came from [`carve`], is freed once, and is not used afterwards.
pub(super) unsafe fn free(block: NonNull<u8>) {
    // The chunk's start, with the block's provenance (the chunk is one allocation).
    let chunk = block
        .as_ptr()
        .wrapping_sub(block.as_ptr() as usize & (CHUNK - 1));
    // SAFETY: a carved block lies in a live chunk aligned to `CHUNK` (its block is counted).
    unsafe { release(chunk, 1) };
}

/// Takes `blocks` off `chunk`'s live count, freeing the chunk if that was the last (C2).
///
/// # Safety
/// `chunk` is a live chunk, and `blocks` of its count are the caller's to take off.
unsafe fn release(chunk: *mut u8, blocks: usize) {
    // SAFETY: the chunk is live (the caller's contract).
    let head = unsafe { &*chunk.cast::<ChunkHead>() };
    if head
        .live
        .fetch_sub(blocks, std::sync::atomic::Ordering::Release)
        == blocks
    {
        std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
        #[cfg(test)]
        if head.watched {
            tests::CHUNKS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        // SAFETY: the count reached zero: every block was freed and nobody carves from it.
        unsafe { std::alloc::dealloc(chunk, chunk_layout()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

    /// Chunks made by watched threads and not yet freed.
    pub(super) static CHUNKS: AtomicIsize = AtomicIsize::new(0);

    std::thread_local! {
        /// Whether this thread's chunks are counted in `CHUNKS`.
        pub(super) static WATCHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    fn block_layout() -> Layout {
        Layout::from_size_align(BLOCK, BLOCK).unwrap()
    }

    /// A carved block, sent to the thread that frees it.
    struct Block(NonNull<u8>);
    // SAFETY: a block is plain memory; whoever holds it owns it.
    unsafe impl Send for Block {}

    #[test]
    fn blocks_are_distinct_aligned_and_their_chunks_freed_by_whichever_thread_frees_last() {
        // Carve on one thread (several chunks' worth), free half here and half on another
        // thread, interleaved; when the carving thread exits, every chunk must be gone. (Also
        // run under Miri: a chunk freed too early is a use after free there.)
        let kept = std::thread::spawn(|| {
            WATCHED.with(|w| w.set(true));
            let blocks: Vec<Block> = (0..5 * BLOCKS)
                .map(|_| Block(carve(block_layout()).expect("fits")))
                .collect();
            let mut addresses: Vec<usize> = blocks.iter().map(|b| b.0.as_ptr() as usize).collect();
            assert!(addresses.iter().all(|a| a % BLOCK == 0 && a % CHUNK != 0));
            addresses.sort_unstable();
            addresses.dedup();
            assert_eq!(addresses.len(), blocks.len(), "a block handed out twice");
            for (i, block) in blocks.iter().enumerate() {
                // SAFETY: a fresh block of BLOCK bytes.
                unsafe { block.0.as_ptr().write_bytes(i as u8, BLOCK) };
            }
            let mut mine = Vec::new();
            let mut theirs = Vec::new();
            for (i, block) in blocks.into_iter().enumerate() {
                if i % 2 == 0 {
                    mine.push(block)
                } else {
                    theirs.push(block)
                }
            }
            let other = std::thread::spawn(move || {
                for block in theirs {
                    // SAFETY: carved, freed once.
                    unsafe { free(block.0) };
                }
            });
            for block in mine {
                // SAFETY: carved, freed once.
                unsafe { free(block.0) };
            }
            other.join().unwrap();
            // Only the current chunk is left, held by this thread's count.
            assert_eq!(CHUNKS.load(Relaxed), 1);
            // Keep a block of the current chunk alive past the thread's exit.
            Block(carve(block_layout()).unwrap())
        })
        .join()
        .unwrap();
        // The exited thread gave up its current chunk; the one block left keeps it.
        assert_eq!(CHUNKS.load(Relaxed), 1);
        // SAFETY: carved, freed once.
        unsafe { free(kept.0) };
        assert_eq!(CHUNKS.load(Relaxed), 0, "a chunk outlived its blocks");
    }

    #[test]
    fn too_large_or_aligned_values_are_not_carved() {
        assert!(carve(Layout::from_size_align(BLOCK + 1, 8).unwrap()).is_none());
        assert!(carve(Layout::from_size_align(8, 2 * BLOCK).unwrap()).is_none());
    }
}
