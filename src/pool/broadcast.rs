//! `broadcast`: one run of a closure on every live worker (docs/semantics.md P9) — to warm a
//! cache, reload a model, or read per-thread state on each thread.
//!
//! Each live worker gets a task in its own broadcast queue, which it serves before anything
//! else. A caller outside the pool joins them one by one. A caller that is itself a pool
//! thread cannot wait like that: its own worker is the one blocked, and two pool threads
//! broadcasting at once would each wait for the other. So it waits on its own bell instead,
//! and runs every broadcast task addressed to its worker (its own, and other broadcasts') as
//! they arrive; each of its tasks rings that bell when it resolves. It never runs anything
//! else while it waits.
//!
//! The same holds for a pool thread blocked in any other wait of the pool's own: a join
//! (handle.rs, which waits on the bell too), a keyed join driving a lane (lanes.rs, woken
//! on `Lane`), or a `WhenFull::Block` submission or `wait_drained` (own_broadcasts.rs, woken
//! on `Queue`) runs the broadcast tasks addressed to its worker as they arrive. Otherwise a
//! broadcast from a task that another worker joins would wait for that worker, which waits
//! for the broadcast: a deadlock. Broadcast runs are the only work such a wait takes on,
//! never a queued task (P10).

use std::sync::Arc as StdArc;

use super::context::{current_thread_of, PoolThread, TaskContext};
use super::error::{PoolError, TaskError};
use super::handle::TaskHandle;
use super::job::{Header, Placement, Runner};
use super::scheduler::{Core, Phase};
use super::task::TaskCell;
use crate::shim::{Arc, Ordering::SeqCst};

/// Runs `f` once on every live worker; the results in worker-index order.
pub(super) fn broadcast<F, R>(
    core: &Arc<Core>,
    f: F,
) -> Result<Vec<Result<R, TaskError>>, PoolError<F>>
where
    F: Fn(&TaskContext<'_>) -> R + Send + Sync + 'static,
    R: Send + 'static,
{
    let me = current_thread_of(core.id);
    // One header per possible worker, made before locking (they may allocate).
    let mut headers = Vec::with_capacity(core.config.max_threads);
    for slot in 0..core.config.max_threads {
        match Header::new(Placement::Broadcast(slot), None) {
            Ok(mut header) => {
                if let Some(thread) = me {
                    header.set_wake_slot(thread.slot);
                }
                headers.push(Some(header));
            }
            Err(error) => {
                return Err(PoolError::SpawnFailed {
                    task: f,
                    reason: error.to_string(),
                })
            }
        }
    }
    let f = StdArc::new(f);
    let mut handles = Vec::new();
    {
        let mut locked = core.lock();
        if locked.phase != Phase::Open {
            drop(locked);
            return Err(PoolError::Closed(
                StdArc::try_unwrap(f).unwrap_or_else(|_| unreachable!("no task was made")),
            ));
        }
        for (slot, header) in headers.iter_mut().enumerate() {
            if !locked.slots[slot].occupied {
                continue;
            }
            let header = header.take().expect("one header per slot");
            let f = StdArc::clone(&f);
            let mut cell = TaskCell::make(core, header, move |ctx: &TaskContext<'_>| f(ctx));
            locked.push_broadcast(slot, cell.job());
            core.counters.submitted.add(1, false);
            handles.push(TaskHandle::new(cell.into_task()));
        }
        // Workers blocked in a wait of the pool's own serve their share meanwhile (P10).
        locked.broadcast_queued();
    }
    if let Some(thread) = me {
        serve_until_done(core, thread, &handles);
    }
    Ok(handles.into_iter().map(TaskHandle::join).collect())
}

/// A pool thread blocked in `broadcast`: runs the broadcast tasks addressed to its worker until
/// all of `handles` resolved (or the thread is interrupted: the pool is being destroyed).
fn serve_until_done<R: Send + 'static>(
    core: &Arc<Core>,
    thread: PoolThread,
    handles: &[TaskHandle<R>],
) {
    let runner = Runner {
        slot: Some(thread.slot),
        thread_id: thread.thread_id,
    };
    loop {
        let mut locked = core.lock();
        if let Some(job) = locked.claim_own_broadcast(thread.slot, thread.thread_id) {
            drop(locked);
            core.run_here(&job, runner, false);
            continue;
        }
        if handles.iter().all(TaskHandle::is_finished) {
            return;
        }
        let seen = core.bell(thread.slot).load(SeqCst);
        drop(locked);
        if core.bell(thread.slot).wait_until(seen, None).is_err() {
            return;
        }
    }
}
