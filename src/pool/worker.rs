//! A pool thread's life: start hook, the loop that takes and runs tasks and waits for work on
//! its bell, reaping after the idle timeout, exit hook.
//!
//! ```text
//! start ─▶ on_thread_start ─▶ ┌─ next_job ── Run ──▶ run the task ─┐
//!                             │      │ Idle ──▶ wait on the bell ───┤ (rung, or timed out but
//!                             └──────┴──────────────────────────────┘  still needed)
//!                                    │ Exit / reaped ─▶ vacate ─▶ on_thread_exit ─▶ exited
//! ```
//!
//! The exit is a drop guard ([`ThreadExit`]): however the loop ends, the slot is vacated, the
//! exit hook runs and `alive` goes down, so `close` never waits for a thread that is gone.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::context::{self, PoolThread};
use super::job::Runner;
use super::panic::catch_panic;
use super::scheduler::{Core, Locked, Next, Phase, RunningJob};
use crate::atomics::{Interrupter, WaitResult};
use crate::shim::{thread, Arc, Ordering::SeqCst, LOOM};

/// Starts the thread for `slot` (the pool's [`StartThread`](super::scheduler::StartThread)).
/// Called under the pool lock ([`Locked::start_thread`]); the
/// new thread's first step is to take that lock, so it starts once the caller is done.
pub(super) fn spawn(
    core: &Arc<Core>,
    slot: usize,
    thread_id: u64,
    interrupter: Interrupter,
) -> Result<thread::JoinHandle<()>, String> {
    let mut builder = thread::Builder::new().name(format!("{}-{slot}", core.config.name));
    if let Some(bytes) = core.config.stack_size {
        builder = builder.stack_size(bytes);
    }
    let core = Arc::clone(core);
    builder
        .spawn(move || run(core, slot, thread_id, interrupter))
        .map_err(|error| error.to_string())
}

/// The body of a pool thread.
fn run(core: Arc<Core>, slot: usize, thread_id: u64, interrupter: Interrupter) {
    let _interruptible = interrupter.install();
    let _entered = context::enter(PoolThread {
        pool: core.id,
        slot,
        thread_id,
    });
    let mut exit = ThreadExit {
        core: &core,
        slot,
        thread_id,
        vacated: None,
    };
    if let Some(hook) = core.config.on_thread_start.get() {
        if catch_panic(|| hook(slot)).is_err() {
            core.counters.hook_panics.add(1, false);
        }
    }
    let runner = Runner {
        slot: Some(slot),
        thread_id,
    };
    // The worker's batch (scheduler B1): loans of its slot's batch, and its spent references.
    let mut loans: Vec<RunningJob> = Vec::new();
    let mut spent = Vec::new();
    let mut locked = core.lock();
    let mut polled = false;
    let mut reaped = false;
    loop {
        match locked.next_job(slot, thread_id) {
            Next::Run(job, lane) => {
                polled = false;
                locked.lend_batch(slot, &mut loans);
                let urgent = core.urgent(); // B7: read under the lock that lent the batch
                drop(locked);
                // The last batch's references, unlocked (a result's `Drop` is user code).
                spent.drain(..).for_each(super::panic::drop_quietly);
                let finish = Finish {
                    core: &core,
                    slot,
                    lane,
                    armed: true,
                };
                job.run(runner);
                if !loans.is_empty() {
                    let batch = Batch {
                        core: &core,
                        slot,
                        armed: true,
                    };
                    let mut cut_short = false;
                    for task in loans.drain(..) {
                        if core.urgent() != urgent {
                            cut_short = true; // B7: a High, keyed or broadcast task waits
                            break;
                        }
                        // B3: each is claimed right before it runs; one claimed meanwhile by
                        // someone else (an inline join, a cancel, `destroy`, a thief) is skipped.
                        if task.header().state.claim() {
                            core.count_batch_claim(slot);
                            task.run(runner);
                        }
                    }
                    locked = core.lock();
                    batch.done(&mut locked, &mut spent, cut_short);
                } else {
                    locked = core.lock();
                }
                // `job` is a loan from the running list: not used past `finish.done`, which
                // gives the task back.
                finish.done(&mut locked);
            }
            Next::Idle | Next::Exit if !spent.is_empty() => {
                spent.drain(..).for_each(|job| locked.defer_drop(job));
            }
            Next::Idle if !polled && !LOOM && crate::shim::cpus() > 1 => {
                // Poll a moment before parking (see `poll_for_work`).
                polled = true;
                locked.start_seeking(slot);
                let seen = Seen {
                    pushes: core.pushes.load(Relaxed),
                    injected: core.injector.published(),
                    bell: core.bell(slot).load(SeqCst),
                };
                drop(locked);
                poll_for_work(&core, slot, seen);
                locked = core.lock();
            }
            Next::Idle => {
                polled = false;
                let leave;
                (locked, leave) = idle(&core, locked, slot);
                if leave {
                    reaped = true;
                    break;
                }
            }
            Next::Exit => break,
        }
    }
    exit.vacated = Some(locked.vacate(&core, slot));
    drop(locked);
    if reaped && !LOOM {
        // The pool shrinks after a quiet spell: the empty slabs its last burst of tasks left
        // kept for the next go back too (slabs.rs).
        super::slabs::trim();
    }
}

/// How long a worker that found nothing to do polls for new work before it goes idle.
const POLL: Duration = Duration::from_micros(10);

/// What a polling worker saw when it found nothing to do.
struct Seen {
    pushes: u64,
    /// Tasks published to the injector (injector.rs).
    injected: usize,
    bell: u32,
}

/// Polls, for up to [`POLL`], whether a task was pushed (under the lock or to the injector) or
/// the worker's bell rang since the worker found nothing to do. A task submitted meanwhile is
/// then taken without the submitter ringing (a `notify`) or the worker parking and being woken
/// (two syscalls and a context switch each): under a steady stream of tasks a worker rarely
/// parks. It counts as a seeker
/// while it polls, so the pool starts no thread for a task it is about to take (scheduler I1).
fn poll_for_work(core: &Core, slot: usize, seen: Seen) -> bool {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if core.pushes.load(Relaxed) != seen.pushes
                || core.injector.published() != seen.injected
                || core.bell(slot).load(SeqCst) != seen.bell
            {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() >= POLL {
            return false;
        }
        // On a busy machine the submitter may be waiting for this very core.
        thread::yield_now();
    }
}

/// Waits on the bell of idle worker `slot`, with the idle timeout if the pool is above
/// `min_threads` (scheduler I2). Returns the relocked state and whether the worker must leave
/// (reaped: it timed out, nobody rang it, and the pool may shrink).
fn idle<'a>(core: &'a Core, mut locked: Locked<'a>, slot: usize) -> (Locked<'a>, bool) {
    let config = &core.config;
    let shrinkable = |locked: &Locked<'_>| {
        locked.phase == Phase::Open
            && locked.occupied > config.min_threads
            && !locked.has_lanes(slot)
    };
    let deadline = if shrinkable(&locked) {
        config
            .idle_timeout
            .and_then(|timeout| Instant::now().checked_add(timeout))
    } else {
        None
    };
    let seen = locked.go_idle(slot);
    drop(locked);
    let woke = core.bell(slot).wait_until(seen, deadline);
    let mut locked = core.lock();
    let rung = locked.woke(slot);
    let timed_out = matches!(woke, Ok(WaitResult::TimedOut));
    let reaped = !rung && timed_out && shrinkable(&locked);
    (locked, reaped)
}

/// After a worker ran a task: takes it off the running list and releases its lane, however
/// the run ended (an unwinding run relocks to do it).
struct Finish<'a> {
    core: &'a Core,
    slot: usize,
    lane: Option<u64>,
    armed: bool,
}

impl Finish<'_> {
    fn done(mut self, locked: &mut Locked<'_>) {
        self.armed = false;
        locked.finished(self.slot, self.lane);
    }
}

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        if self.armed && !crate::shim::model_is_unwinding() {
            self.core.lock().finished(self.slot, self.lane);
        }
    }
}

/// After a worker ran its batch (scheduler B1): settles its claims and takes back the batch's
/// references; if the batch loop unwound, hands the tasks it did not start back to the queue
/// (B6).
struct Batch<'a> {
    core: &'a Core,
    slot: usize,
    armed: bool,
}

impl Batch<'_> {
    /// Settles the batch; `cut_short` (B7): hands the tasks it did not start back to the queue.
    fn done(
        mut self,
        locked: &mut Locked<'_>,
        spent: &mut Vec<super::job::JobRef>,
        cut_short: bool,
    ) {
        self.armed = false;
        if cut_short {
            locked.hand_back_batch(self.slot);
        } else {
            locked.settle_batch(self.slot, spent);
        }
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if self.armed && !crate::shim::model_is_unwinding() {
            self.core.lock().hand_back_batch(self.slot);
        }
    }
}

/// The end of a pool thread, on every path: vacate the slot (if the loop did not), run the
/// exit hook, then count the thread out and wake `close`.
struct ThreadExit<'a> {
    core: &'a Arc<Core>,
    slot: usize,
    thread_id: u64,
    /// `Some(started_at)` once the loop vacated the slot.
    vacated: Option<Option<Instant>>,
}

impl Drop for ThreadExit<'_> {
    fn drop(&mut self) {
        if crate::shim::model_is_unwinding() {
            return;
        }
        let started_at = match self.vacated {
            Some(started_at) => started_at,
            None => {
                let mut locked = self.core.lock();
                locked.woke(self.slot);
                locked.vacate(self.core, self.slot)
            }
        };
        if let Some(hook) = self.core.config.on_thread_exit.get() {
            if catch_panic(|| hook(self.slot)).is_err() {
                self.core.counters.hook_panics.add(1, false);
            }
        }
        let last = {
            let mut locked = self.core.lock();
            locked.exited(self.thread_id, started_at);
            locked.alive == 0 && locked.phase != Phase::Open
        };
        if last {
            // The pool's last thread, and no thread starts again (`start_thread` needs an open
            // pool): nothing calls the hooks any more. Drop them now, with what they captured
            // — also for a pool dropped from inside its own task, whose drop could not join
            // (config.rs `ThreadHook`; docs/semantics.md P7).
            for hook in [
                &self.core.config.on_thread_start,
                &self.core.config.on_thread_exit,
            ] {
                // Its captures' `Drop` is user code: a panic there is counted, like a hook's.
                if catch_panic(|| hook.release()).is_err() {
                    self.core.counters.hook_panics.add(1, false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::pool::job::JobRef;
    use crate::pool::task_state::{phase, QUEUED};
    use crate::pool::{MaxQueue, Priority, TaskOptions, WorkerPool};
    use std::sync::{mpsc, Arc, Barrier, Mutex};
    use std::time::Duration;

    /// Whether some entry of `entries` is a queued task whose handle flagged its word (a
    /// thread waits in `join`): the whole word is then not `QUEUED`, its phase is.
    fn has_joined_queued_task<'a>(entries: impl IntoIterator<Item = &'a JobRef>) -> bool {
        entries.into_iter().any(|job| {
            let word = job.header().state.load();
            phase(word) == QUEUED && word != QUEUED
        })
    }

    /// A pool of `threads` workers that never idle out, with an unbounded queue (bounded pools
    /// take no batches, B1).
    fn pool_of(threads: usize) -> WorkerPool {
        WorkerPool::builder()
            .min_threads(threads)
            .max_threads(threads)
            .idle_timeout(None)
            .max_queue(MaxQueue::Unbounded)
            .build()
            .unwrap()
    }

    /// Occupies one worker of `pool` with a task that returns once the sender gets a message
    /// (or is dropped); returns once that task runs.
    fn hold(pool: &WorkerPool) -> (mpsc::Sender<()>, crate::pool::TaskHandle<()>) {
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let handle = pool
            .run(move |_| {
                started_tx.send(()).unwrap();
                let _ = release_rx.recv();
            })
            .unwrap();
        started_rx.recv().unwrap();
        (release_tx, handle)
    }

    /// The pool's stats once nothing runs: a worker counts a task a moment after its handle
    /// resolves (stats.rs), so the counts add up only then.
    fn settled_stats(pool: &WorkerPool) -> crate::pool::PoolStats {
        let watchdog = std::time::Instant::now();
        loop {
            let stats = pool.stats();
            if stats.running == 0 {
                return stats;
            }
            assert!(
                watchdog.elapsed() < Duration::from_secs(20),
                "a task never stopped running: {stats:?}"
            );
            std::thread::yield_now();
        }
    }

    /// Yields until `ready` holds on the pool's locked state (a thread blocked in `join` is
    /// seen through its task's word: there is nothing else to wait on).
    fn until_locked(pool: &WorkerPool, ready: impl Fn(&crate::pool::scheduler::State) -> bool) {
        while !ready(&pool.core().lock()) {
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_high_task_queued_during_a_batch_runs_after_the_running_task_not_after_the_batch() {
        // One worker, held by a gate task while `n1`..`n5` are queued. Released, it takes `n1`
        // with `n2`..`n5` as its batch (scheduler B1: a share of 4 over 1 thread), and `n1`
        // waits until the test has queued `high`. Then the worker must stop its batch and run
        // `high` next (B7), not after `n5`.
        let pool = pool_of(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        let (gate_tx, gate) = hold(&pool);
        let (n1_tx, n1_rx) = mpsc::channel::<()>();
        let (n1_started_tx, n1_started_rx) = mpsc::channel();
        let mut handles = Vec::new();
        let log = Arc::clone(&order);
        handles.push(
            pool.run(move |_| {
                log.lock().unwrap().push("n1");
                n1_started_tx.send(()).unwrap();
                n1_rx.recv().unwrap();
            })
            .unwrap(),
        );
        for name in ["n2", "n3", "n4", "n5"] {
            let log = Arc::clone(&order);
            handles.push(pool.run(move |_| log.lock().unwrap().push(name)).unwrap());
        }
        gate_tx.send(()).unwrap();
        n1_started_rx.recv().unwrap();
        let log = Arc::clone(&order);
        let high = pool
            .run_with(TaskOptions::new().priority(Priority::High), move |_| {
                log.lock().unwrap().push("high")
            })
            .unwrap();
        n1_tx.send(()).unwrap();
        assert_eq!(high.join(), Ok(()));
        for handle in handles {
            assert_eq!(handle.join(), Ok(()));
        }
        assert_eq!(gate.join(), Ok(()));
        assert_eq!(
            *order.lock().unwrap(),
            ["n1", "high", "n2", "n3", "n4", "n5"]
        );
        assert_eq!(pool.queue_size(), 0);
        assert_eq!(settled_stats(&pool).completed, 7);
    }

    /// The regression test of a handed-back batch task that a thread was joining: the hand-back
    /// compared the whole state word with `QUEUED`, so the join's `WAITING` flag made it drop
    /// the task, still counted, from every queue (the join never returned).
    #[test]
    fn a_batch_handed_back_keeps_a_task_a_thread_is_joining() {
        // One worker held by a gate while `n1`, `n2`, `n3` are queued; released, it takes `n1`
        // with `n2`, `n3` as its batch (B1), and `n1` waits. A thread joins `n2`, still
        // `QUEUED` in the batch; then a High task ends the batch (B7), and the hand-back must
        // put `n2` back in the queue.
        let pool = pool_of(1);
        let (gate_tx, gate) = hold(&pool);
        let (n1_tx, n1_rx) = mpsc::channel::<()>();
        let (n1_started_tx, n1_started_rx) = mpsc::channel();
        let n1 = pool
            .run(move |_| {
                n1_started_tx.send(()).unwrap();
                n1_rx.recv().unwrap();
            })
            .unwrap();
        let n2 = pool.run(|_| 2).unwrap();
        let n3 = pool.run(|_| 3).unwrap();
        gate_tx.send(()).unwrap();
        n1_started_rx.recv().unwrap();
        // A hang guard, not a measurement: the task runs within moments once it is queued.
        let joiner = std::thread::spawn(move || n2.join_timeout(Duration::from_secs(10)).ok());
        until_locked(&pool, |state| has_joined_queued_task(&state.slots[0].batch));
        let high = pool
            .run_with(TaskOptions::new().priority(Priority::High), |_| 0)
            .unwrap();
        n1_tx.send(()).unwrap();
        assert_eq!(high.join(), Ok(0));
        assert_eq!(
            joiner.join().unwrap(),
            Some(Ok(2)),
            "the joined batch task was lost by the hand-back"
        );
        assert_eq!((n1.join(), n3.join(), gate.join()), (Ok(()), Ok(3), Ok(())));
        assert_eq!(pool.queue_size(), 0);
        assert_eq!(settled_stats(&pool).completed, 5);
    }

    /// Two workers, each held by a gate task; then four plain tasks queued, `a` to `d`. The
    /// first worker back takes `a` with `b` in its batch (scheduler B1: a share of the three
    /// left over two threads), and `a` waits for `b`. The other worker runs `c` and `d`, then
    /// must take `b` out of that batch (B2) instead of going idle: otherwise `b` waits behind
    /// `a`, which waits for `b` (here `a` gives up after 10 s and the test fails). With
    /// `join_b_first`, a thread joins `b` before the gates open, so `b`'s word carries the
    /// join's `WAITING` flag.
    fn a_worker_about_to_go_idle_takes_b_out_of_the_other_workers_batch(join_b_first: bool) {
        let pool = pool_of(2);
        let release = Arc::new(Barrier::new(3));
        let (started_tx, started_rx) = mpsc::channel();
        let gates: Vec<_> = (0..2)
            .map(|_| {
                let (release, started) = (Arc::clone(&release), started_tx.clone());
                pool.run(move |_| {
                    started.send(()).unwrap();
                    release.wait();
                })
                .unwrap()
            })
            .collect();
        for _ in 0..2 {
            started_rx.recv().unwrap();
        }
        let (b_ran, b_seen) = mpsc::channel();
        let a = pool
            .run(move |_| b_seen.recv_timeout(Duration::from_secs(10)).is_ok())
            .unwrap();
        let b = pool.run(move |_| b_ran.send(()).unwrap()).unwrap();
        let c = pool.run(|_| 3).unwrap();
        let d = pool.run(|_| 4).unwrap();
        let b = if join_b_first {
            let joiner = std::thread::spawn(move || b.join());
            until_locked(&pool, |state| {
                has_joined_queued_task(&state.global[Priority::Normal as usize])
            });
            Err(joiner)
        } else {
            Ok(b)
        };
        release.wait();
        assert_eq!(
            a.join(),
            Ok(true),
            "b waited behind a in a's worker's batch"
        );
        let b = match b {
            Ok(b) => b.join(),
            Err(joiner) => joiner.join().unwrap(),
        };
        assert_eq!(b, Ok(()));
        assert_eq!((c.join(), d.join()), (Ok(3), Ok(4)));
        for gate in gates {
            assert_eq!(gate.join(), Ok(()));
        }
        assert_eq!(pool.queue_size(), 0);
        let stats = settled_stats(&pool);
        assert_eq!(stats.completed, 6, "{stats:?}");
    }

    #[test]
    fn a_worker_about_to_go_idle_takes_a_task_waiting_in_another_workers_batch() {
        a_worker_about_to_go_idle_takes_b_out_of_the_other_workers_batch(false);
    }

    /// The regression test of a thief that skipped a batch task a thread was joining (B2): it
    /// compared the whole state word with `QUEUED` and went idle instead.
    #[test]
    fn a_worker_about_to_go_idle_takes_a_batch_task_a_thread_is_joining() {
        a_worker_about_to_go_idle_takes_b_out_of_the_other_workers_batch(true);
    }

    /// The regression test of a sweep (I4) that dropped a queued task a thread was joining: it
    /// kept only entries whose whole state word was `QUEUED`, so the join's flag made it
    /// remove a live task, still counted (the join never returned).
    #[test]
    fn a_sweep_keeps_a_queued_task_a_thread_is_joining() {
        // One worker held by a gate; `t` queued and joined by a thread; then enough tasks
        // queued and cancelled that their stale entries outnumber the live one and a cancel
        // sweeps the queue.
        let pool = pool_of(1);
        let (gate_tx, gate) = hold(&pool);
        let t = pool.run(|_| 7).unwrap();
        // A hang guard, not a measurement: the task runs within moments once the gate opens.
        let joiner = std::thread::spawn(move || t.join_timeout(Duration::from_secs(10)).ok());
        until_locked(&pool, |state| {
            has_joined_queued_task(&state.global[Priority::Normal as usize])
        });
        for _ in 0..100 {
            assert!(pool.run(|_| 0).unwrap().cancel());
        }
        let entries = pool.core().lock().global[Priority::Normal as usize].len();
        assert!(entries < 100, "no sweep: {entries} entries");
        assert_eq!(pool.queue_size(), 1);
        gate_tx.send(()).unwrap();
        assert_eq!(
            joiner.join().unwrap(),
            Some(Ok(7)),
            "the joined task was swept out of the queue"
        );
        assert_eq!(gate.join(), Ok(()));
        assert_eq!(pool.queue_size(), 0);
        let stats = settled_stats(&pool);
        assert_eq!((stats.completed, stats.cancelled), (2, 100), "{stats:?}");
    }
}
