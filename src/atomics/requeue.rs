//! [`RequeueTarget`]: where a `notify` may move a condition variable's waiter instead of waking
//! it (FUTEX_CMP_REQUEUE; see `waiter_table::notify`).
//!
//! Its own file because a target is a protocol word ([`SharedWord`]), and the waiter that
//! carries one sits below `wait`, which the words' blocking half (`word_wait.rs`) calls.

use super::word::{SharedWord, Word};

/// Where a `notify` may move a condition variable's waiter instead of waking it: onto the
/// waiters of the mutex it will lock next, whose unlock then wakes it (see
/// `waiter_table::notify`). Private buffers only: a process-shared wait never carries one.
pub(crate) struct RequeueTarget {
    /// The word whose waiters a moved waiter joins (a mutex's state word), kept alive here.
    word: SharedWord<u32>,
    /// Called by the waiter table with both buckets locked, before it moves `n` waiters onto
    /// `word`: counts them in the word and returns `true` if they may move (the mutex is held,
    /// so its unlock will wake one), else returns `false` and they are woken instead.
    accept: fn(Word<'_, u32>, u32) -> bool,
}

impl RequeueTarget {
    /// Waiters may move onto `word` when `accept` says so.
    pub(crate) fn new(word: SharedWord<u32>, accept: fn(Word<'_, u32>, u32) -> bool) -> Self {
        RequeueTarget { word, accept }
    }

    /// The key of the target word's waiter list.
    pub(crate) fn key(&self) -> usize {
        self.word.get().address()
    }

    /// Asks the target to count `n` waiters moving onto it (see [`RequeueTarget::accept`]).
    pub(crate) fn accept(&self, n: u32) -> bool {
        (self.accept)(self.word.get(), n)
    }
}
