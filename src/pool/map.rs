//! `map`: a function over many items, results in input order (docs/semantics.md P9), at about
//! the cost of rayon's `par_iter` for tiny items.
//!
//! The items are cut into a few chunks (four per thread, the caller's included), each one task,
//! so a million items cost a dozen submissions, not a million. Items move out of the input
//! vector and results are written straight into the output vector, each chunk in its own
//! disjoint range: no copy of either, no vector per chunk. The calling thread takes part: it
//! runs chunks no worker has started yet (from the end, while workers take them from the
//! front), which is also what makes `map` from inside a pool task never deadlock (P10).
//!
//! # Ownership of the two buffers (the unsafe part)
//!
//! - The input buffer's items are owned by the chunks: chunk `c` owns items of its range until
//!   it reads them (each exactly once, moving it into `f`), and drops those it did not read
//!   when it is dropped — run to the end, stopped early (cancelled), unwound by a panic in
//!   `f`, or never run at all (destroyed). The buffer itself only frees memory.
//! - A chunk writes each result of its range once, and records how many it wrote; only a chunk
//!   that wrote its whole range marks itself complete. A chunk dropped incomplete drops the
//!   results it wrote.
//! - Every chunk counts the latch down as the very last thing it does. `map` frees or returns
//!   the buffers only after the latch reached zero — also when it is left by a panic — so no
//!   chunk ever touches them after. If its wait for the latch is interrupted (its own pool is
//!   being destroyed), it leaks the buffers rather than free memory a chunk may still write.

use std::mem::{ManuallyDrop, MaybeUninit};
use std::slice;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc as StdArc;

use super::context::{current_thread_of, TaskContext};
use super::error::TaskError;
use super::handle::TaskHandle;
use super::job::{Header, JobRef, Placement, Runner};
use super::options::Priority;
use super::panic::drop_in_place_quietly;
use super::scheduler::Core;
use super::task::TaskCell;
use crate::atomics::SharedWord;
use crate::shim::{Arc, Ordering::SeqCst};

/// Chunks per thread that may run them (the pool's threads and the caller).
const CHUNKS_PER_THREAD: usize = 4;
/// A running chunk checks its cancel flag every this many items.
const CHECK_EVERY: usize = 1024;

/// What the chunks of one `map` share.
struct Shared<T, R, F> {
    f: F,
    input: *mut T,
    output: *mut R,
    len: usize,
    chunk_len: usize,
    complete: Box<[AtomicBool]>,
    /// Chunks not yet dropped.
    latch: SharedWord<u32>,
}

// SAFETY: the raw pointers are only used on disjoint ranges, one chunk each (module docs); the
// items and results move between threads (`T: Send`, `R: Send`), and `f` is called from
// several threads at once (`F: Sync`).
unsafe impl<T: Send, R: Send, F: Send + Sync> Send for Shared<T, R, F> {}
// SAFETY: as above.
unsafe impl<T: Send, R: Send, F: Send + Sync> Sync for Shared<T, R, F> {}

impl<T, R, F> Shared<T, R, F> {
    fn range(&self, chunk: usize) -> (usize, usize) {
        chunk_range(chunk, self.chunk_len, self.len)
    }
}

/// The items of chunk `chunk` of `len` items cut `chunk_len` to a chunk. Saturating: a vector
/// of zero-sized items may hold up to `usize::MAX` of them, and the last chunk's end must not
/// wrap around to 0 (its items would then be neither read nor dropped).
fn chunk_range(chunk: usize, chunk_len: usize, len: usize) -> (usize, usize) {
    let start = chunk.saturating_mul(chunk_len).min(len);
    (start, start.saturating_add(chunk_len).min(len))
}

/// One chunk, owned by its task's closure: dropping it (however) cleans up its range and
/// counts the latch down.
struct Chunk<T, R, F> {
    shared: StdArc<Shared<T, R, F>>,
    index: usize,
    /// Next item to read.
    next: usize,
    /// Results written so far (from the range's start).
    written: usize,
}

impl<T, R, F: Fn(T) -> R> Chunk<T, R, F> {
    fn run(mut self, ctx: &TaskContext<'_>) {
        let shared = &*self.shared;
        let (_, end) = shared.range(self.index);
        while self.next < end {
            if ctx.is_cancelled() {
                return;
            }
            let block = (end - self.next).min(CHECK_EVERY);
            // SAFETY: the `block` items from `next` lie in this chunk's range and were not read
            // yet; the results at the same positions (a chunk's results start where its items
            // do, and `written == next - start` between items) were not written yet. No other
            // chunk touches either range, so these are the only references to them.
            let (input, output) = unsafe {
                (
                    slice::from_raw_parts_mut(shared.input.add(self.next).cast(), block),
                    slice::from_raw_parts_mut(shared.output.add(self.next).cast(), block),
                )
            };
            map_block(&shared.f, input, output, &mut self.next, &mut self.written);
        }
        shared.complete[self.index].store(true, Relaxed);
    }
}

/// Moves each item of `input` through `f` into the same position of `output`, counting items
/// read in `next` and results written in `written` as it goes (so a panic in `f` leaves both
/// exact for the chunk's `Drop`). A function of its own so that the compiler knows none of the
/// references alias: the counters then live in registers, and the loop costs what rayon's does.
#[inline]
fn map_block<T, R>(
    f: &impl Fn(T) -> R,
    input: &mut [MaybeUninit<T>],
    output: &mut [MaybeUninit<R>],
    next: &mut usize,
    written: &mut usize,
) {
    for (item, slot) in input.iter_mut().zip(output.iter_mut()) {
        // SAFETY: every item of `input` is initialized and read here once; `next` moves past it
        // before `f` can panic, so the chunk's `Drop` never drops it again.
        let item = unsafe { item.assume_init_read() };
        *next += 1;
        slot.write(f(item));
        *written += 1;
    }
}

impl<T, R, F> Drop for Chunk<T, R, F> {
    fn drop(&mut self) {
        let shared = &self.shared;
        let (start, end) = shared.range(self.index);
        // Items not read, then (if incomplete) results written, each dropped once. Each drop
        // is caught on its own: a panic in one `Drop` neither skips the others (they would
        // leak) nor keeps the latch from counting down.
        for i in self.next..end {
            // SAFETY: in this chunk's range and never read; dropped once, here.
            unsafe { drop_in_place_quietly(shared.input.add(i)) };
        }
        if !shared.complete[self.index].load(Relaxed) {
            for i in start..start + self.written {
                // SAFETY: written by this chunk, and the map will not return it; dropped once.
                unsafe { drop_in_place_quietly(shared.output.add(i)) };
            }
        }
        let latch = shared.latch.get();
        if latch.fetch_sub(1, SeqCst) == 1 {
            latch.notify(None);
        }
    }
}

/// The buffers, freed (or leaked) only once every chunk is gone.
struct Buffers<T, R> {
    input: (*mut T, usize),
    output: (*mut R, usize),
}

impl<T, R> Drop for Buffers<T, R> {
    fn drop(&mut self) {
        // SAFETY: both came from vectors with these capacities; every item was moved out or
        // dropped by its chunk, and no result is left (taken or dropped), so freeing the
        // memory is all that is left to do.
        unsafe {
            drop(Vec::from_raw_parts(self.input.0, 0, self.input.1));
            drop(Vec::from_raw_parts(self.output.0, 0, self.output.1));
        }
    }
}

/// Collects `map`'s items, refusing with `Err` what memory cannot hold instead of panicking
/// ("capacity overflow", from an endless iterator's honest `size_hint`) or aborting (a failed
/// allocation).
pub(super) fn collect<I: Iterator>(items: I) -> Result<Vec<I::Item>, TaskError> {
    let no_room = |error: std::collections::TryReserveError| {
        TaskError::Panicked(format!("map: no room for the items: {error}"))
    };
    let mut collected = Vec::new();
    collected
        .try_reserve(items.size_hint().0)
        .map_err(no_room)?;
    for item in items {
        if collected.len() == collected.capacity() {
            collected.try_reserve(1).map_err(no_room)?;
        }
        collected.push(item);
    }
    Ok(collected)
}

/// `map` (see the module docs).
pub(super) fn map<T, R, F>(core: &Arc<Core>, items: Vec<T>, f: F) -> Result<Vec<R>, TaskError>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> R + Send + Sync + 'static,
{
    let len = items.len();
    if len == 0 {
        return Ok(Vec::new());
    }
    let threads = core.config.max_threads + 1;
    let chunk_len = len.div_ceil(len.min(threads * CHUNKS_PER_THREAD));
    let chunks = len.div_ceil(chunk_len);
    // Everything that may fail to allocate comes first, before any item changes hands.
    let alloc_failed = |error: crate::error::Error| TaskError::Panicked(error.to_string());
    let latch = SharedWord::new().map_err(alloc_failed)?;
    let mut headers = Vec::with_capacity(chunks);
    for _ in 0..chunks {
        let header = Header::new(Placement::Global(Priority::Normal), None);
        headers.push(header.map_err(alloc_failed)?);
    }
    // The results' buffer too: more results than memory holds (a huge `R`) is an `Err`, with
    // the items still the caller's (dropped on return), not an abort or a panic.
    let mut results = Vec::<R>::new();
    results.try_reserve_exact(len).map_err(|error| {
        TaskError::Panicked(format!(
            "map: no room for the results of {len} items: {error}"
        ))
    })?;
    latch.get().store(chunks as u32, SeqCst);
    let mut input = ManuallyDrop::new(items);
    let mut output = ManuallyDrop::new(results);
    let shared = StdArc::new(Shared {
        f,
        input: input.as_mut_ptr(),
        output: output.as_mut_ptr(),
        len,
        chunk_len,
        complete: (0..chunks).map(|_| AtomicBool::new(false)).collect(),
        latch,
    });
    // From here on every path waits for the latch before the buffers are freed.
    let mut waiter = LatchWait {
        shared: StdArc::clone(&shared),
        buffers: Some(Buffers {
            input: (input.as_mut_ptr(), input.capacity()),
            output: (output.as_mut_ptr(), output.capacity()),
        }),
    };

    let me = current_thread_of(core.id);
    let runner = Runner {
        slot: me.map(|thread| thread.slot),
        thread_id: me.map_or(0, |thread| thread.thread_id),
    };
    let mut tasks: Vec<(JobRef, TaskHandle<()>, bool)> = Vec::with_capacity(chunks);
    for (index, header) in headers.into_iter().enumerate() {
        let (start, _) = shared.range(index);
        let chunk = Chunk {
            shared: StdArc::clone(&shared),
            index,
            next: start,
            written: 0,
        };
        let mut cell = TaskCell::make(core, header, move |ctx: &TaskContext<'_>| chunk.run(ctx));
        let job: JobRef = cell.job();
        // The caller keeps chunk 0 for itself; a chunk the pool refuses is run here too.
        let queued = index > 0 && Core::submit(core, JobRef::clone(&job), false).is_ok();
        if !queued {
            core.counters.submitted.add(1, false);
        }
        tasks.push((job, TaskHandle::new(cell.into_task()), queued));
    }
    // Help: run every chunk no worker has started, newest first.
    for (job, _, queued) in tasks.iter().rev() {
        if job.header().state.claim() {
            core.run_here(job, runner, *queued);
        }
    }
    let mut failure = None;
    for (job, handle, _) in tasks {
        drop(job);
        if let Err(error) = handle.join() {
            failure.get_or_insert(error);
        }
    }
    if !waiter.wait() {
        return Err(failure.unwrap_or(TaskError::Interrupted));
    }
    let all_complete = shared.complete.iter().all(|c| c.load(Relaxed));
    if !all_complete {
        for index in 0..chunks {
            if shared.complete[index].load(Relaxed) {
                let (start, end) = shared.range(index);
                for i in start..end {
                    // SAFETY: a complete chunk wrote its whole range, and the latch says it
                    // is gone; nobody else drops these results (each once, here). Quietly,
                    // each on its own: a panicking `Drop` must not leak the rest or hide the
                    // task's own error.
                    unsafe { drop_in_place_quietly(shared.output.add(i)) };
                }
            }
        }
        return Err(failure.unwrap_or(TaskError::PoolDestroyed));
    }
    // Every result is written: hand the output vector over, and free only the input buffer.
    let buffers = waiter.buffers.take().expect("not freed yet");
    let output = buffers.output;
    let input = buffers.input;
    std::mem::forget(buffers);
    // SAFETY: every chunk is gone and complete, so all `len` results are initialized; the
    // input buffer's items were all moved out.
    unsafe {
        drop(Vec::from_raw_parts(input.0, 0, input.1));
        Ok(Vec::from_raw_parts(output.0, len, output.1))
    }
}

/// Waits for the latch before the buffers go, on every path out of `map`.
struct LatchWait<T, R, F> {
    shared: StdArc<Shared<T, R, F>>,
    buffers: Option<Buffers<T, R>>,
}

impl<T, R, F> LatchWait<T, R, F> {
    /// Waits until every chunk is gone: `false` if interrupted first (the buffers are then
    /// leaked, never freed under a chunk).
    fn wait(&mut self) -> bool {
        let latch = self.shared.latch.get();
        loop {
            let left = latch.load(SeqCst);
            if left == 0 {
                return true;
            }
            if latch.wait_until(left, None).is_err() {
                if let Some(buffers) = self.buffers.take() {
                    std::mem::forget(buffers);
                }
                return false;
            }
        }
    }
}

impl<T, R, F> Drop for LatchWait<T, R, F> {
    fn drop(&mut self) {
        if self.buffers.is_some() {
            self.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::chunk_range;

    #[test]
    fn the_last_chunk_of_usize_max_items_ends_at_the_end() {
        // Zero-sized items: a vector may hold `usize::MAX` of them. Eight chunks of 2^61
        // items: the last one's end, 2^64, must not wrap around to 0 (before the fix it
        // overflowed: a panic in a debug build, an empty last chunk in a release one).
        let len = usize::MAX;
        let chunk_len = len.div_ceil(8);
        assert_eq!(chunk_range(7, chunk_len, len), (7 * chunk_len, len));
        assert_eq!(chunk_range(0, chunk_len, len), (0, chunk_len));
        assert_eq!(chunk_range(2, 5, 12), (10, 12));
    }
}
