//! The blocking half of [`Word`]: `wait_until` and `notify` (and a condition variable's
//! requeueable wait), through the same [`wait`](super::wait()) / [`notify`](super::notify)
//! users call.
//!
//! Apart from `word.rs` so the words themselves sit below the wait machinery: a waiter's
//! [`RequeueTarget`] is a word, and `wait` depends on the waiter, so `word.rs` must not depend
//! on `wait`. Only these methods do.

use std::time::Instant;

use super::deadline::Deadline;
use super::outcome::WaitResult;
use super::requeue::RequeueTarget;
use super::wait::{notify_in, wait_in, wait_requeueable};
use super::word::Word;
use crate::element::Waitable;
use crate::error::Error;

impl<T: Waitable> Word<'_, T> {
    /// `atomics::wait` on this word until `deadline` (`None`: forever): `NotEqual` at once
    /// unless it holds `expected`; `Err(Terminated)` if the thread's interrupter fires. In a
    /// process-shared buffer, also `Err(TooManyWaiters)` or `Err(BadHeader)` (see
    /// [`super::wait()`]); a protocol that waits on a peer process must pass a deadline and
    /// check that the peer is alive when it passes (docs/semantics.md X5).
    pub(crate) fn wait_until(
        self,
        expected: T,
        deadline: Option<Instant>,
    ) -> Result<WaitResult, Error> {
        wait_in(
            self.memory(),
            self.element(),
            expected,
            Deadline::until(deadline),
        )
    }

    /// `atomics::notify` on this word: wakes up to `count` waiters (`None`: all), oldest first;
    /// returns how many it woke (in every process, for a process-shared buffer).
    pub(crate) fn notify(self, count: Option<usize>) -> usize {
        notify_in(self.memory(), self.element(), count.unwrap_or(usize::MAX))
    }
}

impl Word<'_, u32> {
    /// [`wait_until`](Word::wait_until) for a condition variable's waiter, which a `notify` may
    /// move onto `target`'s waiters (its mutex) instead of waking it; the `bool` says whether it
    /// did (see `wait::wait_requeueable`).
    pub(crate) fn wait_requeueable(
        self,
        expected: u32,
        deadline: Option<Instant>,
        target: RequeueTarget,
    ) -> (Result<WaitResult, Error>, bool) {
        wait_requeueable(
            self.memory(),
            self.element(),
            expected,
            Deadline::until(deadline),
            target,
        )
    }
}
