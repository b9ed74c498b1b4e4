//! The broadcasts a pool thread runs while it waits: a thread blocked in one of the pool's own
//! waits — `broadcast` (broadcast.rs), a join (handle.rs), a keyed join driving a lane
//! (lanes.rs), a `WhenFull::Block` submission waiting for room (scheduler.rs) or
//! `wait_drained` (worker_pool.rs) — runs the broadcast tasks addressed to its worker as they
//! arrive, and nothing else. Otherwise a broadcast from a task that the waiting worker waits
//! for (directly, or for the room or the drain that task's worker would make once it returns)
//! would wait for that worker: a deadlock (P9, P10). Its own file, so those waits can share it
//! without importing one another.

use std::time::Instant;

use super::context::current_thread_of;
use super::job::{JobRef, Runner};
use super::scheduler::{Core, Locked, Signal};

impl<'a> Locked<'a> {
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

    /// [`Locked::wait_for`]`(Signal::Queue, deadline)` (room in a full queue, a drain) for a
    /// caller that may be a thread of `core`'s pool. On such a thread, a broadcast task
    /// addressed to its worker runs instead of the wait (unlocked meanwhile), and one queued
    /// while it waits wakes it: `broadcast` raises `Queue` while anyone waits on it, after
    /// queuing its tasks under the lock in which this thread looked for them and read the
    /// signal. `true`: woken, or a broadcast ran (the caller looks again either way); `false`:
    /// timed out or interrupted.
    pub(super) fn wait_for_queue_serving(
        self,
        core: &'a Core,
        deadline: Option<Instant>,
    ) -> (Locked<'a>, bool) {
        let Some(thread) = current_thread_of(core.id) else {
            return self.wait_for(Signal::Queue, deadline);
        };
        let mut locked = self;
        let Some(job) = locked.claim_own_broadcast(thread.slot, thread.thread_id) else {
            return locked.wait_for(Signal::Queue, deadline);
        };
        drop(locked);
        let runner = Runner {
            slot: Some(thread.slot),
            thread_id: thread.thread_id,
        };
        core.run_here(&job, runner, false);
        (core.lock(), true)
    }
}
