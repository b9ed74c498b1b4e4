//! [`Event`]: what the dispatcher's thread is told by the threads around it — the wakers of its
//! pool tasks, the wake-up reader, the lease keeper and `close`. Its own file because all of
//! them send it and only the dispatcher reads it.

use super::delivery::EntryRef;

/// What wakes the dispatcher.
#[derive(Debug)]
pub(super) enum Event {
    /// The task with this key resolved (its handle's waker fired).
    Resolved(u64),
    /// The wake-up reader saw a new entry (or reconnected).
    Wake,
    /// The lease keeper found these entries owned by another consumer now.
    LeaseLost(Vec<EntryRef>),
    /// Another consumer holds this consumer's name.
    Fenced,
    /// `close` was called (its deadline is in [`Shared`](super::shared::Shared)).
    Close,
}
