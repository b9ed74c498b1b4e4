//! Who holds a lock: the value a lock's owner word records (docs/semantics.md S2).
//!
//! Each lock keeps its owner in a 64-bit word beside the words threads sleep on. In this process
//! the owner is a per-thread token: nonzero, unique for the life of the process, fixed for the
//! life of the thread. The protocols rely on one rule: **only the owner writes its own token, and
//! it clears the word before it releases the lock**. Per-location coherence then makes "I read my
//! own token" mean "I hold it": a thread always sees its own last write to the word or a later
//! one, and no later writer ever writes this thread's token. That is how a relock becomes
//! `Err(WouldDeadlock)` instead of a hang, at no cost on the uncontended path (the owner word is
//! read only when the lock is found taken).
//!
//! The process issue will store a process-qualified identity here (and detect a dead owner); the
//! locks only ever compare the word with the caller's token and write it, so that change stays
//! in this file.

use std::cell::Cell;

use crate::shim::{self, IdCounter};

/// The owner word of an unlocked lock.
pub(crate) const NONE: u64 = 0;

/// The owner recorded for a lock taken by an async task (`Mutex::lock_async`): a task may move
/// between threads while it holds the lock, so it has no thread token. No thread's token is ever
/// `TASK`, so a thread never mistakes a task's hold for its own.
pub(crate) const TASK: u64 = u64::MAX;

/// Hands out thread tokens: 1, 2, 3, … (it would take centuries to reach `TASK`).
static NEXT: IdCounter = IdCounter::starting_at(1);

shim::thread_local_static! {
    /// This thread's token, 0 until first asked for.
    static TOKEN: Cell<u64> = Cell::new(NONE);
}

/// The calling thread's owner token (nonzero, never [`TASK`]).
#[inline]
pub(crate) fn thread_token() -> u64 {
    TOKEN
        .try_with(|token| match token.get() {
            NONE => {
                let fresh = NEXT.next();
                token.set(fresh);
                fresh
            }
            known => known,
        })
        // During thread teardown the slot may be gone: a fresh token still never matches any
        // other thread's, it only cannot recognise a relock.
        .unwrap_or_else(|_| NEXT.next())
}
