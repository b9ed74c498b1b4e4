//! Ending a pool (docs/semantics.md P7): `close` lets every accepted task run and then joins
//! the threads; `destroy` ends everything now; neither starts a thread again.
//!
//! - **close** moves the phase `Open → Closing` under the lock (so every later submission is
//!   refused and every earlier one is queued, scheduler I3), rings every worker, then waits
//!   on the `Exited` signal until no thread is alive. A worker leaves a closing pool only when
//!   nothing is left for it, so the wait ends exactly when every accepted task has run. If the
//!   timeout passes first with a task still queued or running, the pool is destroyed; with
//!   none, `close` returns `Ok` and leaves the exiting threads to the pool's drop.
//! - **destroy** moves the phase to `Destroyed` and, under the same lock, takes every queued
//!   task out and notes every running one; then, unlocked, moves each queued task
//!   `QUEUED → DESTROYED` and each running one `RUNNING → DESTROYED` (whichever of that and the
//!   task's own end comes first wins, so each handle resolves once), and fires every thread's
//!   interrupter, so a task blocked in `atomics::wait` returns `Err(Terminated)`. The closures
//!   of the queued tasks are dropped last, each on its own (a panicking `Drop` cannot skip the
//!   rest).
//!
//! Destroying needs no memory in proportion to the queue (scheduler I6: it is the natural
//! next step after a queue refused a task for memory): it moves the queues' own storage out
//! (`mem::take`) and takes the injector's ring (at most `CAPACITY` tasks, F4) into an array
//! on the stack, and it tells the queued tasks it won from the others by their phase, not by
//! a list (see [`Core::destroy`]). What it does allocate is bounded by the pool's shape: the
//! running tasks (threads and join nesting, plus foreign runners), the batches, the
//! interrupters, and the broadcast tasks in flight.

use std::time::{Duration, Instant};

use super::context::current_thread_of;
use super::error::CloseError;
use super::injector::CAPACITY;
use super::job::JobRef;
use super::scheduler::{Core, Phase, Signal, State};
use super::task_state::{phase, CANCELLED, COMPLETED, DESTROYED, REJECTED};
use crate::atomics::WaitResult;
use crate::shim::Ordering::SeqCst;

impl State {
    /// How many threads still have an accepted task to finish (running one, or holding a batch
    /// or a broadcast), or `None` if none is left anywhere: nothing queued, and every task
    /// taken off a queue (on a pool thread, or run inline on another) returned or never ran.
    /// The slots' lists may still name a finished task for a moment (its worker resolves the
    /// handle, then takes the lock to remove it): its state says it is done.
    fn unfinished(&self) -> Option<usize> {
        let busy = |slot: &&super::scheduler::Slot| {
            let jobs = slot.running.iter().chain(&slot.batch);
            jobs.chain(&slot.broadcasts).any(may_still_run)
        };
        let busy_threads = self.slots.iter().filter(busy).count();
        let done = busy_threads == 0
            && self.queued == 0
            && !self.foreign_running.iter().any(may_still_run);
        (!done).then_some(busy_threads)
    }
}

/// Whether a task taken into a slot's lists may still run: not if its closure returned
/// (`COMPLETED`) or it never will (`CANCELLED`, `REJECTED`). A `TIMED_OUT` or `DESTROYED` task's
/// closure may still be running: its handle resolved without it.
fn may_still_run(job: &JobRef) -> bool {
    !matches!(
        phase(job.header().state.load()),
        COMPLETED | CANCELLED | REJECTED
    )
}

impl Core {
    /// Stops accepting tasks and wakes every worker (idle ones then leave if nothing is left).
    pub(super) fn stop_accepting(&self) {
        let mut locked = self.lock();
        if locked.phase != Phase::Open {
            return;
        }
        locked.phase = Phase::Closing;
        // Tasks pushed to the injector before now are accepted: into the queue with them.
        locked.update_injector(None);
        for slot in 0..locked.slots.len() {
            if locked.slots[slot].occupied {
                locked.ring(slot);
            }
        }
        // Submitters blocked on a full queue now see the pool closed.
        locked.raise(Signal::Queue);
    }

    /// `close(timeout)`: see the module docs.
    pub(super) fn close(&self, timeout: Option<Duration>) -> Result<(), CloseError> {
        self.stop_accepting();
        if current_thread_of(self.id).is_some() {
            return Err(CloseError::FromInsidePool);
        }
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        loop {
            let locked = self.lock();
            if locked.alive == 0 {
                break;
            }
            let seen = self.signal(Signal::Exited).load(SeqCst);
            drop(locked);
            match self.signal(Signal::Exited).wait_until(seen, deadline) {
                Ok(WaitResult::TimedOut) | Err(_) => {
                    // Every accepted task finished: the threads left are only exiting, and
                    // there is nothing to destroy (the pool's drop joins them).
                    let Some(busy_threads) = self.lock().unfinished() else {
                        return Ok(());
                    };
                    self.destroy();
                    return Err(CloseError::TimedOut { busy_threads });
                }
                Ok(_) => {}
            }
        }
        self.join_finished_threads();
        Ok(())
    }

    /// Joins the threads that finished exiting.
    pub(super) fn join_finished_threads(&self) {
        let finished = self.lock().take_finished_threads();
        for thread in finished {
            let _ = thread.join();
        }
    }

    /// `destroy()`: see the module docs.
    pub(super) fn destroy(&self) {
        // Room for what the injector's ring holds, on the stack (at most `CAPACITY`, F4).
        let mut ring: [Option<JobRef>; CAPACITY] = [const { None }; CAPACITY];
        let (global, lanes, broadcasts, mut running, mut batched, interrupters) = {
            let mut locked = self.lock();
            if locked.phase == Phase::Destroyed {
                return;
            }
            locked.phase = Phase::Destroyed;
            // Shut the injector's gate and take what it holds, before taking the queues
            // (injector.rs F1): a push after this sees the gate shut and takes its task back.
            locked.update_injector(None);
            // The queues' own storage, moved out (no allocation: I6 may have no memory left),
            // and what a drain short of memory left in the ring (injector.rs F5).
            let global = std::mem::take(&mut locked.global);
            locked.take_ring(&mut ring);
            let lanes = std::mem::take(&mut locked.lanes);
            locked.queued = 0;
            locked.global_queued = 0;
            // The rest is bounded by the pool's shape (threads, join nesting, batches,
            // broadcasts in flight), not by its queue.
            let mut broadcasts = Vec::new();
            let mut running = locked.foreign_running.clone();
            // Batch tasks (scheduler B5): only their worker takes them off its batch, so they
            // are cloned; each is destroyed as queued if still `QUEUED`, else as running.
            let mut batched = Vec::new();
            let mut interrupters = Vec::new();
            for slot in 0..locked.slots.len() {
                let state = &mut locked.slots[slot];
                broadcasts.extend(state.broadcasts.drain(..));
                state.ready_lanes.clear();
                state.lanes = 0;
                running.extend(state.running.iter().cloned());
                batched.extend(state.batch.iter().cloned());
                interrupters.extend(state.interrupter.clone());
                if state.occupied {
                    locked.ring(slot);
                }
            }
            locked.raise(Signal::Queue);
            locked.raise(Signal::Lane);
            (global, lanes, broadcasts, running, batched, interrupters)
        };
        // Every queued task, where it waited (a task's entry may be stale: it left `QUEUED`
        // some other way, I4).
        let queued = || {
            let lanes = lanes.values().flat_map(|lane| &lane.queue);
            global
                .iter()
                .flatten()
                .chain(ring.iter().flatten())
                .chain(lanes)
                .chain(&broadcasts)
        };
        // `QUEUED → DESTROYED`: `true` if this call won the task (its closure is then ours to
        // discard).
        let destroy_queued = |job: &JobRef| {
            let header = job.header();
            let resolved = header.state.leave_queue(DESTROYED);
            if let Some(resolved) = resolved {
                self.counters.destroyed.add(1, false);
                self.notify_resolved(header, resolved);
            }
            resolved.is_some()
        };
        // `RUNNING → DESTROYED`: the thread stays busy until the task returns (overdue).
        let destroy_running = |job: &JobRef| {
            let header = job.header();
            if let Some(resolved) = header.state.leave_running(DESTROYED) {
                self.counters.destroyed.add(1, false);
                self.counters.overdue_added.add(1, false);
                self.notify_resolved(header, resolved);
            }
        };
        queued().for_each(|job| {
            destroy_queued(job);
        });
        // Batch tasks (B5): as queued, or if their worker (or a joiner, or a thief) claimed one
        // first, as running: the claim is then older than this. Those won come first.
        let mut batch_won = 0;
        for index in 0..batched.len() {
            if destroy_queued(&batched[index]) {
                batched.swap(batch_won, index);
                batch_won += 1;
            } else {
                destroy_running(&batched[index]);
            }
        }
        running.iter().for_each(destroy_running);
        for interrupter in interrupters {
            interrupter.interrupt();
        }
        // Which queued tasks this call won, without a list of them: `DESTROYED` is written
        // only here, once per pool; so a queued task that is `DESTROYED` now was won above,
        // unless it is one of the running ones (its stale queue entry, I4), destroyed as
        // running. (Batch tasks are in no queue.)
        running.sort_unstable_by_key(|job| job.as_ptr());
        let won = |job: &&JobRef| {
            phase(job.header().state.load()) == DESTROYED
                && running
                    .binary_search_by_key(&job.as_ptr(), |running| running.as_ptr())
                    .is_err()
        };
        queued()
            .filter(won)
            .chain(&batched[..batch_won])
            .for_each(JobRef::discard);
        let lanes = lanes.into_values().flat_map(|lane| lane.queue);
        let queued = global
            .into_iter()
            .flatten()
            .chain(ring.into_iter().flatten());
        for job in queued
            .chain(lanes)
            .chain(broadcasts)
            .chain(running)
            .chain(batched)
        {
            super::panic::drop_quietly(job);
        }
    }
}
