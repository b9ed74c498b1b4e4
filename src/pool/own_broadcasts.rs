//! The broadcasts a pool thread runs while it waits: a thread blocked in one of the pool's own
//! waits — `broadcast` (broadcast.rs), a join (handle.rs), a keyed join driving a lane
//! (lanes.rs) — runs the broadcast tasks addressed to its worker as they arrive, and nothing
//! else. Otherwise a broadcast from a task that the waiting worker waits for would wait for that
//! worker: a deadlock (P9, P10). Its own file, so those three can share it without importing
//! one another.

use super::job::JobRef;
use super::scheduler::Locked;

impl Locked<'_> {
    /// The next broadcast task addressed to worker `slot`, claimed for the calling thread
    /// `thread_id` (that worker's, blocked in a pool wait); stale entries are dropped after
    /// unlocking. `None` if the thread no longer holds the slot (its exit hook runs after it
    /// vacated it, and a new thread may hold it: the broadcast is that one's to run).
    pub(super) fn claim_own_broadcast(&mut self, slot: usize, thread_id: u64) -> Option<JobRef> {
        if !self.slots[slot].occupied || self.slots[slot].thread_id != thread_id {
            return None;
        }
        while let Some(job) = self.slots[slot].broadcasts.pop_front() {
            if job.header().state.claim() {
                return Some(job);
            }
            self.defer_drop(job);
        }
        None
    }
}
