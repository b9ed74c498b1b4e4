//! [`TaskState`]: one task's life in one word, and where those words come from.
//!
//! # The state word
//!
//! Every task has a `u32` word in a [`SharedBuffer`]. Its low bits are the
//! task's phase; bit [`CANCEL_REQUESTED`] is the flag a running task reads through
//! [`TaskContext::is_cancelled`](super::TaskContext::is_cancelled).
//!
//! ```text
//!            claim (worker, inline join, caller)          finish (the runner)
//!   QUEUED ─────────────────────────────────────▶ RUNNING ─────────────────────▶ COMPLETED
//!     │ cancel ──▶ CANCELLED                         │ time_out (the timer) ──▶ TIMED_OUT
//!     │ destroy ─▶ DESTROYED                         │ destroy ───────────────▶ DESTROYED
//!     │ reject ──▶ REJECTED (given back to the submitter, never seen by a handle)
//! ```
//!
//! Invariants:
//! - **One way out of each phase.** Every transition is a compare-exchange from the phase it
//!   leaves, so of racing transitions exactly one wins: a task is claimed at most once (a worker
//!   and an inline join never both run it, P10), "ran" and "cancelled before it started" exclude
//!   each other (P4), and "returned" and "timed out" exclude each other (P8).
//! - **Terminal phases are final**, and the winner of the transition into one is the one that
//!   resolves the handle: it counts the task in the statistics and `notify`s the word, so every
//!   handle resolves exactly once and every task is counted once.
//! - **Who owns the cells.** The closure is taken by whoever moves the task out of `QUEUED`
//!   (to run it, or to drop or return it). The result cell is written only by the runner while
//!   the phase is `RUNNING`, and read only by the handle after it saw `COMPLETED`; a runner that
//!   loses its `finish` (the task timed out or was destroyed meanwhile) takes its value back out
//!   and drops it. The `SeqCst` read-modify-write that publishes `COMPLETED` orders the write
//!   before the handle's read.
//! - `CANCEL_REQUESTED` is only ever set, and only while `RUNNING` (a queued task is cancelled
//!   outright); it never changes the phase, so it cannot decide a race.
//! - **No lost wakeup, no needless notify** (as in `channel/ring.rs`): a handle that is about
//!   to block sets `WAITING` with a compare-exchange from the value it saw, then waits for the
//!   word to leave that flagged value; every transition keeps the flag until the task
//!   resolves, and the resolver `notify`s only if the word it replaced had the flag. Flagging
//!   and resolving are read-modify-writes of one word, so either the resolver sees the flag,
//!   or the handle's compare-exchange fails and it sees the new phase; `wait` checks the value
//!   under the waiter table's lock (docs/semantics.md A11), so a notify after the flag is never
//!   lost. When nobody waits, resolving a task costs no `notify` at all. A thread of the
//!   task's own pool waits on its worker's bell instead (handle.rs): it writes its slot into
//!   the header, then flags with a compare-exchange even if the flag is set already
//!   ([`TaskState::flag_waiting_touch`]), so a resolver that sees the flag sees the slot and
//!   rings that bell (`Core::notify_resolved`).
//!
//! # Where the words live
//!
//! A task's word must live in a `SharedBuffer` so that joining blocks and wakes through the
//! crate's own `atomics::wait` / `notify`. A buffer is page-aligned, so one buffer per task would
//! cost a page per task: instead each submitting thread carves words out of a buffer of
//! [`WORDS_PER_CHUNK`] words of its own, never reusing one (so a word always starts `QUEUED`),
//! and a chunk is freed when the last task using it is gone. A carved task cell's word comes
//! from a run [`reserve`]d for its cell chunk, which holds the one counted reference the run's
//! words borrow (cells.rs C4). Consecutive tasks get words on different cache lines ([`spread`]). Under loom every task gets a buffer
//! of its own (a chunk would be hundreds of model objects).

use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::time::Instant;

use crate::atomics::{SharedWords, WaitResult, Word};
use crate::buffer::SharedBuffer;
use crate::error::Error;
use crate::shim::{self, Arc, Ordering::SeqCst, LOOM};
use crate::view::TypedArray;

/// Waiting in a queue; nobody has taken the closure.
pub(super) const QUEUED: u32 = 0;
/// Claimed: the closure is running (or about to) on exactly one thread.
pub(super) const RUNNING: u32 = 1;
/// Terminal: the runner stored the closure's value or its panic message.
pub(super) const COMPLETED: u32 = 2;
/// Terminal: cancelled before it started; it never runs.
pub(super) const CANCELLED: u32 = 3;
/// Terminal: its timeout passed while it ran.
pub(super) const TIMED_OUT: u32 = 4;
/// Terminal: the pool was destroyed before the task finished.
pub(super) const DESTROYED: u32 = 5;
/// Terminal: the submission was refused and the closure given back (no handle ever saw it).
pub(super) const REJECTED: u32 = 6;
/// The bits that hold the phase.
const PHASE: u32 = 0b111;
/// Set on a running task by `cancel()`: the task should stop (it reads this flag).
pub(super) const CANCEL_REQUESTED: u32 = 8;
/// Set by a handle about to wait for the word: whoever resolves the task must `notify`.
const WAITING: u32 = 16;

/// Words carved out of one buffer (a page of `u32`s); one under loom.
const WORDS_PER_CHUNK: usize = if LOOM { 1 } else { 1024 };

/// Words per 128 bytes (two cache lines, which CPUs often fetch together).
const WORDS_PER_LINE: usize = 128 / std::mem::size_of::<u32>();

/// Where the `n`th word handed out from a chunk lies: consecutive tasks get words
/// [`WORDS_PER_LINE`] apart, so the workers running neighbouring tasks at the same time do not
/// write one line (each task's word takes two read-modify-writes on its runner's core); the
/// words that do share a line were handed out a chunk's stride apart. A bijection on
/// `0..WORDS_PER_CHUNK`.
// Under loom a chunk holds one word (and is returned early): the modulos are then by 1.
#[allow(clippy::modulo_one)]
const fn spread(n: usize) -> usize {
    if WORDS_PER_CHUNK % WORDS_PER_LINE != 0 {
        return n; // loom: one word per chunk
    }
    let stride = WORDS_PER_CHUNK / WORDS_PER_LINE;
    (n % stride) * WORDS_PER_LINE + n / stride
}

/// The phase bits of a state word.
pub(super) fn phase(word: u32) -> u32 {
    word & PHASE
}

/// Whether a state word is terminal (the handle can be resolved from it).
pub(super) fn is_terminal(word: u32) -> bool {
    phase(word) >= COMPLETED
}

/// A task's state word (see the module docs).
pub(super) struct TaskState {
    /// The words chunk: a counted reference if `owned`, else a copy that was never counted,
    /// lent by the chunk of the task's cell, which outlives the cell (cells.rs C4).
    chunk: ManuallyDrop<Arc<SharedWords<u32>>>,
    index: u32,
    owned: bool,
}

impl Drop for TaskState {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: an owned reference is dropped once, here.
            unsafe { ManuallyDrop::drop(&mut self.chunk) }
        }
    }
}

impl TaskState {
    /// A fresh word, `QUEUED`, that holds its own reference to its chunk.
    pub(super) fn new() -> Result<TaskState, Error> {
        if LOOM {
            return Ok(TaskState {
                chunk: ManuallyDrop::new(Arc::new(SharedWords::new(1)?)),
                index: 0,
                owned: true,
            });
        }
        let (chunk, number) = reserve(1)?;
        Ok(TaskState {
            chunk: ManuallyDrop::new(chunk),
            index: spread(number) as u32,
            owned: true,
        })
    }

    /// The fresh word number `number` of `chunk` (a number [`reserve`] handed out), borrowing
    /// the chunk instead of counting a reference.
    ///
    /// # Safety
    /// `chunk` stays alive as long as the returned state, and `number` was reserved by the
    /// caller and is used once.
    pub(super) unsafe fn lent(chunk: &Arc<SharedWords<u32>>, number: usize) -> TaskState {
        debug_assert!(number < WORDS_PER_CHUNK);
        TaskState {
            // SAFETY: a bitwise copy that is never dropped (`owned` is false) and never
            // outlives the original (the caller's contract): it takes no count.
            chunk: ManuallyDrop::new(unsafe { std::ptr::read(chunk) }),
            index: spread(number) as u32,
            owned: false,
        }
    }

    fn word(&self) -> Word<'_, u32> {
        self.chunk.get(self.index as usize)
    }

    /// The whole word (phase and flag).
    pub(super) fn load(&self) -> u32 {
        self.word().load(SeqCst)
    }

    /// Moves the word from phase `from` to `to`, keeping the flags in `keep`: the word it
    /// replaced, or `None` if the phase was not `from` (another transition won).
    fn transition(&self, from: u32, to: u32, keep: u32) -> Option<u32> {
        let word = self.word();
        let mut current = word.load(SeqCst);
        while phase(current) == from {
            match word.compare_exchange(current, to | (current & keep), SeqCst) {
                Ok(replaced) => return Some(replaced),
                Err(actual) => current = actual,
            }
        }
        None
    }

    /// Whether the phase is `QUEUED`, whatever the flags: a handle that waits for the task sets
    /// [`WAITING`] on a queued task's word too, so the whole word is not `QUEUED` then.
    pub(super) fn is_queued(&self) -> bool {
        phase(self.load()) == QUEUED
    }

    /// `QUEUED → RUNNING`: `true` if this caller won the task and must run it.
    pub(super) fn claim(&self) -> bool {
        self.transition(QUEUED, RUNNING, WAITING).is_some()
    }

    /// `QUEUED → to` (`CANCELLED`, `DESTROYED` or `REJECTED`): `Some` if this caller won the
    /// task, and so owns its closure and resolves its handle; the [`Resolved`] says whether to
    /// `notify`.
    pub(super) fn leave_queue(&self, to: u32) -> Option<Resolved> {
        debug_assert!(matches!(to, CANCELLED | DESTROYED | REJECTED));
        self.transition(QUEUED, to, 0).map(Resolved)
    }

    /// `RUNNING → to` (`COMPLETED` by the runner; `TIMED_OUT` or `DESTROYED` by others),
    /// whatever flags are set: `Some` if this caller made the transition.
    pub(super) fn leave_running(&self, to: u32) -> Option<Resolved> {
        debug_assert!(matches!(to, COMPLETED | TIMED_OUT | DESTROYED));
        self.transition(RUNNING, to, 0).map(Resolved)
    }

    /// Sets [`CANCEL_REQUESTED`] if the task is running (a no-op in any other phase).
    pub(super) fn request_cancel(&self) {
        let word = self.word();
        let mut current = word.load(SeqCst);
        while phase(current) == RUNNING && current & CANCEL_REQUESTED == 0 {
            match word.compare_exchange(current, current | CANCEL_REQUESTED, SeqCst) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Wakes every thread and future waiting for the word, if one flagged that it waits; called
    /// by the winner of a transition into a terminal phase.
    pub(super) fn notify(&self, resolved: Resolved) {
        if resolved.has_waiters() {
            self.word().notify(None);
        }
    }

    /// Flags that a waiter is about to wait for the word to leave `seen`: the value to wait on,
    /// or `None` if the word already changed.
    pub(super) fn flag_waiting(&self, seen: u32) -> Option<u32> {
        if seen & WAITING != 0 {
            return Some(seen);
        }
        self.word()
            .compare_exchange(seen, seen | WAITING, SeqCst)
            .ok()
            .map(|_| seen | WAITING)
    }

    /// Flags that a waiter is about to wait for the word to leave `seen`, always with a
    /// compare-exchange (also when `seen` is flagged already): `true` if the word was still
    /// `seen`. A pool thread that waits on its bell (handle.rs) wrote its slot into the header
    /// just before: whoever resolves the task later reads the word this wrote (or one after
    /// it), so it sees the slot as well as the flag.
    pub(super) fn flag_waiting_touch(&self, seen: u32) -> bool {
        self.word()
            .compare_exchange(seen, seen | WAITING, SeqCst)
            .is_ok()
    }

    /// Blocks until the word leaves `seen` (or a spurious return), flagging it first:
    /// `Ok(false)` if `deadline` passed, `Err` if the calling thread's interrupter fired.
    pub(super) fn wait_change(&self, seen: u32, deadline: Option<Instant>) -> Result<bool, Error> {
        let Some(flagged) = self.flag_waiting(seen) else {
            return Ok(true);
        };
        Ok(self.word().wait_until(flagged, deadline)? != WaitResult::TimedOut)
    }

    /// A one-element view of the word, for `atomics::wait_async` (the handle's `Future`).
    pub(super) fn view(&self) -> TypedArray<u32> {
        let buffer: &SharedBuffer = self.chunk.buffer();
        TypedArray::with_range(buffer, self.index as usize * 4, Some(1))
            .expect("the word was checked to lie within its buffer when it was made")
    }
}

/// The word a transition into a terminal phase replaced: whether its winner must `notify`.
#[derive(Clone, Copy, Debug)]
#[must_use = "the winner of a transition resolves the handle (notify)"]
pub(super) struct Resolved(u32);

impl Resolved {
    /// Whether a waiter flagged the word, so the winner must `notify` it.
    pub(super) fn has_waiters(self) -> bool {
        self.0 & WAITING != 0
    }
}

/// Reserves `count` fresh words (at most [`WORDS_PER_CHUNK`]) of one chunk of the calling
/// thread's: a counted reference to the chunk and the number of the first (the word of number
/// `n` is at index `spread(n)`); they are handed out to nobody else.
pub(super) fn reserve(count: usize) -> Result<(Arc<SharedWords<u32>>, usize), Error> {
    debug_assert!((1..=WORDS_PER_CHUNK).contains(&count));
    ARENA.with(|arena| {
        let mut arena = arena.borrow_mut();
        if arena
            .as_ref()
            .map_or(true, |(_, next)| WORDS_PER_CHUNK - *next < count)
        {
            *arena = Some((Arc::new(SharedWords::new(WORDS_PER_CHUNK)?), 0));
        }
        let (chunk, next) = arena.as_mut().expect("just filled");
        let first = *next;
        *next += count;
        Ok((Arc::clone(chunk), first))
    })
}

shim::thread_local_static! {
    /// The calling thread's current chunk and the number of its next unused word.
    static ARENA: RefCell<Option<(Arc<SharedWords<u32>>, usize)>> = RefCell::new(None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_hands_out_every_word_of_a_chunk_once_and_neighbours_a_line_apart() {
        let mut seen = vec![false; WORDS_PER_CHUNK];
        for n in 0..WORDS_PER_CHUNK {
            let index = spread(n);
            assert!(
                !std::mem::replace(&mut seen[index], true),
                "word {index} twice"
            );
            if n > 0 && !LOOM {
                assert!(spread(n).abs_diff(spread(n - 1)) >= WORDS_PER_LINE);
            }
        }
    }
}
