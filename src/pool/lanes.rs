//! Lanes: how keyed tasks run on one worker, in submission order (docs/semantics.md P9).
//!
//! All tasks of one key form a lane: a FIFO bound to worker slot `key % max_threads` (so a key
//! keeps its worker — and whatever that worker keeps in thread-locals — for the pool's whole
//! life). At most one task of a lane runs at a time (`Lane::busy` names the thread running it),
//! and the next starts only after it returned, so a key's tasks run one after the other, in
//! order.
//!
//! Invariants (all under the pool lock):
//! - **L1.** A lane exists while it has queued entries or is busy; it is counted in its slot's
//!   `lanes`, which keeps the slot occupied (scheduler I5).
//! - **L2.** A lane is on its slot's `ready_lanes` exactly when `ready` is set; it is set only
//!   while the lane is not busy and has entries, and whoever sets it rings the slot.
//! - **L3.** Only the thread named in `busy` may start the lane's next task; releasing the lane
//!   (`busy = None`) makes it ready again (and rings its worker) or removes it.
//!
//! A task joined from inside the pool before it started (P10) is run by the joining thread:
//! it waits until the lane is not busy, then runs the lane's tasks up to the joined one, in
//! order ([`drive`]). Those are tasks of the same key that the joined one comes after, not
//! unrelated work. This keeps the order and never deadlocks; it gives up the affinity for the
//! tasks it runs.

use std::collections::VecDeque;

use super::job::{JobRef, Runner};
use super::scheduler::{Core, Lane, Locked, Signal};
use super::task_state::{phase, QUEUED};

impl Locked<'_> {
    /// Makes room for one more task in the lane of `key`, bound to `slot`: in the map of lanes,
    /// the lane's queue, and the slot's `ready_lanes` (for each lane bound there: L2's pushes
    /// then never need memory). `false` if memory ran out (scheduler I6). A new lane's queue
    /// is made in [`push_keyed`](Self::push_keyed), a few bytes.
    pub(super) fn reserve_keyed(&mut self, key: u64, slot: usize) -> bool {
        let state = &mut **self;
        let lanes_here = state.slots[slot].lanes + 1;
        let ready = &mut state.slots[slot].ready_lanes;
        let queue_room = match state.lanes.get_mut(&key) {
            Some(lane) => lane.queue.try_reserve(1).is_ok(),
            None => state.lanes.try_reserve(1).is_ok(),
        };
        queue_room
            && ready
                .try_reserve(lanes_here.saturating_sub(ready.len()))
                .is_ok()
    }

    /// Appends `job` to the lane of `key`, bound to `slot`, making the lane ready if it can
    /// start now (the caller rings the slot).
    pub(super) fn push_keyed(&mut self, key: u64, slot: usize, job: JobRef) {
        let state = &mut **self;
        let lane = state.lanes.entry(key).or_insert_with(|| {
            state.slots[slot].lanes += 1;
            Lane {
                slot,
                queue: VecDeque::new(),
                busy: None,
                ready: false,
            }
        });
        lane.queue.push_back(job);
        if lane.busy.is_none() && !lane.ready {
            lane.ready = true;
            state.slots[slot].ready_lanes.push_back(key);
        }
    }

    /// Starts the next task of lane `key` on thread `thread_id`: claims the first live entry
    /// and marks the lane busy. `None` if the lane had only stale entries (it is removed).
    pub(super) fn start_lane(&mut self, key: u64, thread_id: u64) -> Option<JobRef> {
        let state = &mut **self;
        let lane = state.lanes.get_mut(&key)?;
        if lane.ready {
            lane.ready = false;
            let ready = &mut state.slots[lane.slot].ready_lanes;
            if let Some(position) = ready.iter().position(|&k| k == key) {
                ready.remove(position);
            }
        }
        debug_assert!(lane.busy.is_none() || lane.busy == Some(thread_id));
        let mut stale = Vec::new();
        let mut started = None;
        while let Some(job) = lane.queue.pop_front() {
            if job.header().state.claim() {
                started = Some(job);
                break;
            }
            stale.push(job);
        }
        match &started {
            Some(_) => {
                lane.busy = Some(thread_id);
                state.queued -= 1;
            }
            None if lane.busy.is_none() => {
                let slot = lane.slot;
                state.lanes.remove(&key);
                state.slots[slot].lanes -= 1;
            }
            None => {}
        }
        for job in stale {
            self.defer_drop(job);
        }
        if started.is_some() {
            self.queue_shrank();
        }
        started
    }

    /// The lane's running task returned: the lane becomes ready again (its worker is rung) or,
    /// empty, is removed (L3). Threads waiting to drive a lane are told.
    pub(super) fn release_lane(&mut self, key: u64) {
        let state = &mut **self;
        let Some(lane) = state.lanes.get_mut(&key) else {
            return; // removed by `destroy`
        };
        lane.busy = None;
        let slot = lane.slot;
        if lane.queue.is_empty() {
            state.lanes.remove(&key);
            state.slots[slot].lanes -= 1;
        } else {
            lane.ready = true;
            state.slots[slot].ready_lanes.push_back(key);
        }
        // The worker either has the lane to run, or (lane gone) may now leave a closing pool.
        if state.slots[slot].occupied {
            self.ring(slot);
        }
        if self.lane_waiters > 0 {
            self.raise(Signal::Lane);
        }
    }
}

/// Runs keyed task `target`, not yet started, on the calling pool thread (`runner`) as an
/// inline join (P10): waits until its lane is free, then runs the lane's tasks in order up to
/// and including `target`. Returns when `target` is no longer `QUEUED` (it ran here, or another
/// thread took it, or it was cancelled or destroyed); returns early if the thread is
/// interrupted.
pub(super) fn drive(core: &Core, key: u64, target: &JobRef, runner: Runner) {
    let slot = runner.slot.expect("inline joins run on pool threads");
    loop {
        let mut locked = core.lock();
        if phase(target.header().state.load()) != QUEUED {
            return;
        }
        // A broadcast waits for this worker, perhaps from the lane's running task, which this
        // thread waits for: serve it (broadcast.rs; `broadcast` raises `Lane` for it).
        if let Some(job) = locked.claim_own_broadcast(slot, runner.thread_id) {
            drop(locked);
            core.run_here(&job, runner, false);
            continue;
        }
        let Some(lane) = locked.lanes.get(&key) else {
            return;
        };
        let ours = lane.busy == Some(runner.thread_id);
        if lane.busy.is_some() && !ours {
            let (relocked, waited) = locked.wait_for(Signal::Lane, None);
            drop(relocked);
            if !waited {
                return; // interrupted: the caller's own wait reports it
            }
            continue;
        }
        let Some(job) = locked.start_lane(key, runner.thread_id) else {
            return;
        };
        locked.slots[slot].running.push(JobRef::clone(&job));
        drop(locked);
        let _release = ReleaseAfterRun {
            core,
            key,
            slot,
            release: !ours,
        };
        job.run(runner);
    }
}

/// After an inline run of a lane's task: takes it off the running list and releases the lane
/// (unless the joining thread was already the lane's runner), however the run ends.
struct ReleaseAfterRun<'a> {
    core: &'a Core,
    key: u64,
    slot: usize,
    release: bool,
}

impl Drop for ReleaseAfterRun<'_> {
    fn drop(&mut self) {
        if crate::shim::model_is_unwinding() {
            return;
        }
        let mut locked = self.core.lock();
        locked.finished(self.slot, None);
        if self.release {
            locked.release_lane(self.key);
        }
    }
}
