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
    /// Queues `job`, a broadcast task for worker `slot`, and rings that worker. Once all of a
    /// broadcast's tasks are queued, [`Locked::broadcast_queued`] wakes the waits that serve them.
    pub(super) fn push_broadcast(&mut self, slot: usize, job: JobRef) {
        self.slots[slot].broadcasts.push_back(job);
        self.queued_urgent();
        self.ring(slot);
    }

    /// Wakes the pool threads blocked in a wait of the pool's own, so that they serve the
    /// broadcast tasks just queued (P10): one joining a keyed task waits on `Lane` (lanes.rs);
    /// one submitting to a full queue (`WhenFull::Block`) or in `wait_drained` waits on `Queue`
    /// ([`Locked::wait_for_queue_serving`]). The other threads waiting there look at the queue
    /// again and wait on. (A join waits on its worker's bell, which `push_broadcast` rang.)
    pub(super) fn broadcast_queued(&mut self) {
        if self.lane_waiters > 0 {
            self.raise(Signal::Lane);
        }
        if self.queue_waiters > 0 {
            self.raise(Signal::Queue);
        }
    }

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
        mut self,
        core: &'a Core,
        deadline: Option<Instant>,
    ) -> (Locked<'a>, bool) {
        let Some(thread) = current_thread_of(core.id) else {
            return self.wait_for(Signal::Queue, deadline);
        };
        let Some(job) = self.claim_own_broadcast(thread.slot, thread.thread_id) else {
            return self.wait_for(Signal::Queue, deadline);
        };
        drop(self);
        let runner = Runner {
            slot: Some(thread.slot),
            thread_id: thread.thread_id,
        };
        core.run_here(&job, runner, false);
        (core.lock(), true)
    }
}
