//! Where task cells live: blocks of [`BLOCK`] bytes carved in order out of a chunk of
//! [`CHUNK`] bytes that belongs to the submitting thread, instead of one `malloc` and one `free`
//! per task.
//!
//! # Why
//!
//! A bulk submitter keeps a million handles alive, then joins them all: glibc's per-thread
//! cache holds only a few freed blocks, so every task's cell cost a slow `malloc` and a slow
//! `free` (about 380 instructions of a task's 1,750 under callgrind). Carving blocks out of a
//! thread's own chunk costs a few instructions; a chunk goes back to its slab (slabs.rs) when
//! its last block is freed, so memory is held only as long as some task of the chunk is (and
//! a slab only as long as some chunk of it is, or while slabs.rs keeps it for reuse).
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
//!   never carved if it exits first. Whoever takes the count to zero frees the chunk to its
//!   slab (after an `Acquire` load of it, so every use of every block happened before).
//! - **C3 (no reuse while referenced).** A block is handed out again only after its whole
//!   chunk was freed (C2), and a chunk only after its whole slab was (slabs.rs S2, S3). A
//!   cell's address therefore stays its identity while any reference to it lives (scheduler.rs
//!   finds a task by address only while holding one).
//! - **C4 (what a chunk lends).** A chunk belongs to one pool: its header holds one counted
//!   reference to the pool's `Core` and one to a chunk of state words, with a run of words
//!   reserved for its blocks (block `i` gets the run's word `i - 1`). A cell carved from it
//!   borrows both (uncounted copies, task.rs) instead of counting references of its own: four
//!   read-modify-writes less per task. The header's references are dropped only when its
//!   chunk is freed, after every block (C2), so they outlive every cell that borrows them.
//!   A thread whose chunk belongs to another pool allocates the cell on its own instead, until
//!   [`STRANGERS`] such cells in a row make it start a chunk for the new pool (so a chunk
//!   never keeps a pool the thread no longer uses for long, and two pools used in turn do not
//!   each start a chunk per task).
//!
//! Cells larger than a block (a plain task's cell is 120 bytes, so a closure that captures
//! more than about 8 to 16 bytes makes it larger), and every cell under loom, are allocated
//! one by one as before. The cost of the scheme: a cell that stays alive keeps its chunk's
//! memory (and its chunk keeps its 2 MiB slab mapped, slabs.rs), and with it its pool's `Core`
//! (not its threads: dropping the pool still joins them); so does a thread's current chunk,
//! until the thread exits or moves to another chunk.

use std::alloc::Layout;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use super::scheduler::Core;
use super::slabs::{self, CHUNK};
use super::task_state::{self, TaskState};
use crate::atomics::SharedWords;
use crate::shim::Arc;

/// The size and alignment of a block: a plain task's whole cell, on lines of its own.
pub(super) const BLOCK: usize = 128;

/// Blocks per chunk, counting the header's.
const BLOCKS: usize = CHUNK / BLOCK;

/// Cells in a row for a pool other than the current chunk's after which a thread starts a
/// chunk for that pool (C4).
const STRANGERS: usize = BLOCKS;

/// The first block of a chunk.
struct ChunkHead {
    /// Blocks not yet freed, counting those not yet carved, plus one while the chunk is its
    /// thread's current one (C2).
    live: std::sync::atomic::AtomicUsize,
    /// What its cells borrow (C4).
    lent: Lent,
    /// Made by a thread that a test watches (the test counts its chunks).
    #[cfg(test)]
    watched: bool,
}

/// What a chunk lends the cells carved from it (C4).
struct Lent {
    core: Arc<Core>,
    words: Arc<SharedWords<u32>>,
    /// The number of block 1's state word; block `i` has `first_word + i - 1`.
    first_word: usize,
}

/// A block [`carve`] gave out, with what its chunk lends the cell made in it.
pub(super) struct Carved {
    pub(super) block: NonNull<u8>,
    lent: NonNull<Lent>,
    word: usize,
}

impl Carved {
    /// The chunk's pool: an uncounted copy of the chunk's reference.
    ///
    /// # Safety
    /// Only the cell made in this block holds it, and it is never dropped (C4).
    pub(super) unsafe fn core(&self) -> ManuallyDrop<Arc<Core>> {
        // SAFETY: the chunk is alive (this block is counted in it); a bitwise copy that is
        // never dropped takes no count, and the block's cell outlives no part of its chunk.
        ManuallyDrop::new(unsafe { std::ptr::read(&self.lent.as_ref().core) })
    }

    /// The block's own state word, borrowing the chunk's reference to its words.
    ///
    /// # Safety
    /// Called once per block, for the cell made in it (C4).
    pub(super) unsafe fn state(&self) -> TaskState {
        // SAFETY: the words outlive the block's cell (C2, C4); the word was reserved for this
        // block alone, and this is called once.
        unsafe { TaskState::lent(&self.lent.as_ref().words, self.word) }
    }
}

const _: () = assert!(std::mem::size_of::<ChunkHead>() <= BLOCK);

/// The calling thread's current chunk and the index of its next block (C1), and how many
/// cells in a row it did not carve because they were another pool's (C4).
struct Carver {
    chunk: std::cell::Cell<*mut u8>,
    next: std::cell::Cell<usize>,
    strangers: std::cell::Cell<usize>,
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
            strangers: std::cell::Cell::new(0),
        }
    };
}

/// A block for a cell of `layout` submitted to `core`, or `None` if it does not fit one (or
/// this thread's chunk is another pool's, C4; or it can no longer carve: it is exiting, or out
/// of memory; or this is a loom model): allocate it on its own then.
pub(super) fn carve(layout: Layout, core: &Arc<Core>) -> Option<Carved> {
    if layout.size() > BLOCK || layout.align() > BLOCK || crate::shim::LOOM {
        return None;
    }
    // (Under loom `LOOM` returned above: a std thread-local is not a loom thread's own.)
    CARVER
        .try_with(|carver| {
            let mut next = carver.next.get();
            let mut chunk = carver.chunk.get();
            // SAFETY: a current chunk is alive: this thread's count is in it (C2).
            if !chunk.is_null() && !std::ptr::eq(&*unsafe { head(chunk) }.lent.core, &**core) {
                let strangers = carver.strangers.get() + 1;
                if strangers < STRANGERS {
                    carver.strangers.set(strangers);
                    return None;
                }
                next = BLOCKS; // start a chunk for this pool (C4)
            }
            carver.strangers.set(0);
            if next == BLOCKS {
                let fresh = new_chunk(core)?;
                if !chunk.is_null() {
                    // SAFETY: this thread's count is still in the old chunk (C2): it gives
                    // that up, with the blocks it will never carve.
                    unsafe { release(chunk, 1 + BLOCKS - carver.next.get()) };
                }
                chunk = fresh;
                carver.chunk.set(chunk);
                next = 1;
            }
            carver.next.set(next + 1);
            // SAFETY: the chunk is alive (as above).
            let lent = &unsafe { head(chunk) }.lent;
            Some(Carved {
                // SAFETY: `next < BLOCKS`, so the block lies within the chunk (C1).
                block: NonNull::new(unsafe { chunk.add(next * BLOCK) })?,
                word: lent.first_word + next - 1,
                lent: NonNull::from(lent),
            })
        })
        .ok()
        .flatten()
}

/// The header of a live `chunk`.
///
/// # Safety
/// The chunk is alive: some count of it is the caller's.
unsafe fn head<'a>(chunk: *mut u8) -> &'a ChunkHead {
    // SAFETY: the caller's contract; a chunk starts with its header.
    unsafe { &*chunk.cast::<ChunkHead>() }
}

/// A new chunk for `core`'s cells, every block but the header's counted live, plus the carving
/// thread (C2), with a run of state words for its blocks (C4); `None` if out of memory.
fn new_chunk(core: &Arc<Core>) -> Option<*mut u8> {
    let (words, first_word) = task_state::reserve(BLOCKS - 1).ok()?;
    let chunk = slabs::chunk()?.as_ptr();
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
            lent: Lent {
                core: Arc::clone(core),
                words,
                first_word,
            },
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
    let head = unsafe { head(chunk) };
    if head
        .live
        .fetch_sub(blocks, std::sync::atomic::Ordering::Release)
        == blocks
    {
        // An acquire load rather than a fence: the same order, and visible to ThreadSanitizer
        // (as in `JobRef::drop`).
        head.live.load(std::sync::atomic::Ordering::Acquire);
        #[cfg(test)]
        if head.watched {
            tests::CHUNKS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        // SAFETY: the count reached zero: every block was freed (with every cell that borrowed
        // what the header lends, C4) and nobody carves from it. The lent references are moved
        // out first and dropped after the memory went back (their drop may run user code).
        let lent = unsafe { std::ptr::read(&head.lent) };
        // SAFETY: as above; the header is not used again.
        unsafe { slabs::free_chunk(NonNull::new_unchecked(chunk)) };
        drop(lent);
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
        let pool = crate::pool::WorkerPool::builder()
            .min_threads(0)
            .build()
            .unwrap();
        let core = Arc::clone(pool.core());
        let kept = std::thread::spawn(move || {
            WATCHED.with(|w| w.set(true));
            let blocks: Vec<Block> = (0..5 * BLOCKS)
                .map(|_| Block(carve(block_layout(), &core).expect("fits").block))
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
            Block(carve(block_layout(), &core).unwrap().block)
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
        let pool = crate::pool::WorkerPool::builder()
            .min_threads(0)
            .build()
            .unwrap();
        let core = pool.core();
        assert!(carve(Layout::from_size_align(BLOCK + 1, 8).unwrap(), core).is_none());
        assert!(carve(Layout::from_size_align(8, 2 * BLOCK).unwrap(), core).is_none());
    }

    #[test]
    fn a_thread_switches_its_chunk_to_another_pool_only_after_strangers_in_a_row() {
        let pools: Vec<_> = (0..2)
            .map(|_| {
                crate::pool::WorkerPool::builder()
                    .min_threads(0)
                    .build()
                    .unwrap()
            })
            .collect();
        let (a, b) = (pools[0].core(), pools[1].core());
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut blocks = vec![carve(block_layout(), a).expect("a's chunk").block];
                // Alternating: `b`'s cells go on their own, `a` keeps its chunk.
                for _ in 0..2 * STRANGERS {
                    assert!(carve(block_layout(), b).is_none());
                    blocks.push(carve(block_layout(), a).expect("a's chunk").block);
                }
                // `b` in a row: after STRANGERS - 1 refusals the chunk becomes `b`'s.
                for _ in 1..STRANGERS {
                    assert!(carve(block_layout(), b).is_none());
                }
                blocks.push(carve(block_layout(), b).expect("b's chunk").block);
                assert!(carve(block_layout(), a).is_none());
                for block in blocks {
                    // SAFETY: carved, freed once.
                    unsafe { free(block) };
                }
            });
        });
    }
}
