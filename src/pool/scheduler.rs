//! The scheduler: the pool's shared state ([`Core`]), the queues and worker slots behind one
//! lock ([`State`]), and the protocol by which tasks reach threads.
//!
//! # Shape
//!
//! - Three FIFO queues, one per [`Priority`], shared by all workers; per-key *lanes* for keyed
//!   tasks (`lanes.rs`); one broadcast queue per worker.
//! - `max_threads` worker *slots*. A slot is vacant or occupied by one thread; its index is the
//!   worker index tasks see, and the suffix of the thread's name. An occupied slot is idle
//!   (waiting for work, on the idle stack), or busy (running a task, starting, or rung).
//! - One *bell* word per slot in a [`SharedWords`]: a thread waiting for work (or a task
//!   blocked in `broadcast` from inside the pool) waits on its bell through the crate's own
//!   `atomics::wait`; ringing bumps the bell under the lock and `notify`s it after unlocking.
//! - Signal words ([`Signal`]) that other waiters block on: a thread exited, the queue shrank,
//!   a lane was released.
//!
//! - An *injector* ring (injector.rs) that plain tasks (normal priority, no key) go to without
//!   the lock while its gate is open: every slot occupied, no worker idle, the pool open and
//!   unbounded. Every [`Core::lock`] first moves what it holds to the end of the
//!   normal-priority queue, counted, so every locked section sees those tasks as queued (I4).
//!
//! All scheduling decisions are made under the one lock; blocking and waking happen through
//! the words, after the lock is released ([`Locked`] performs the wakeups it collected when it
//! is dropped, so they happen on every path, panics included).
//!
//! # Invariants
//!
//! - **I1 (no task is stranded).** When a task is queued, some thread will look at its queue:
//!   a global task rings an idle worker (taking it off the idle stack), or starts a thread if
//!   none is idle, the pool is below `max_threads`, and the *seekers* — threads starting, idle
//!   workers just rung, workers polling before they park (worker.rs), each of which looks at the
//!   queues before it runs anything or goes idle — are fewer than the queued global tasks (so
//!   a burst right after `build` does not start threads the starting ones will serve).
//!   Otherwise every occupied slot is busy or seeking, and looks at the queues before it goes
//!   idle. A keyed task rings the worker of its lane (starting it if its slot is vacant); a
//!   broadcast task rings its worker. A worker goes idle only after finding every queue it
//!   serves empty, under the lock that every push takes, so a push is either seen or rings
//!   it. A push to the injector takes no lock: it needs no decision, since every worker is
//!   busy while the gate is open, and a worker going idle shuts the gate and drains the ring
//!   in the section that puts it on the idle stack (injector.rs F1, F2).
//! - **I2 (a rung worker is never reaped).** A worker is on the idle stack exactly while
//!   `Slot::idle` is set; only `ring` takes it off (and clears the flag), and the worker itself
//!   when it wakes. A worker whose idle wait timed out exits only if it is still on the idle
//!   stack — if it was rung meanwhile, the task that rang it counts on it, so it looks for work
//!   instead. Deciding under the lock makes "rung" and "reaped" exclusive: the model
//!   `loom_pool_idle_timeout` checks this.
//! - **I3 (nothing after closing).** Tasks are accepted only while the phase is `Open`, checked
//!   under the lock that pushes them. A worker leaves a closing pool only when every queue it
//!   serves is empty, so every task accepted before `close` runs (`loom_pool_close_submit`).
//!   No thread is started unless the phase is `Open`.
//! - **I4 (counts).** `queued` is the number of tasks waiting in the global queues and lanes
//!   that are still `QUEUED`; whoever moves a task out of `QUEUED` takes it off (a worker under
//!   the lock; a cancel or an inline join right after, under the lock). Entries of tasks that
//!   left `QUEUED` some other way stay in their queue as stale entries that workers skip, and
//!   are swept out when they outnumber live ones. `destroy` zeroes the counts with every queued
//!   task in them, so a cancel or inline join that wins a task after that takes nothing off
//!   (`left_queue`; a batch claim saturates, B5). `occupied` counts occupied slots, `alive` the
//!   threads that have not finished exiting (an exiting thread runs its exit hook after it
//!   vacated its slot).
//! - **I5 (slots).** A slot with a lane bound to it (`Slot::lanes > 0`) stays occupied: its
//!   worker neither reaps itself nor leaves a closing pool, so a keyed task always has its
//!   thread.
//! - **I6 (memory).** Running out of memory refuses a task; it never aborts, and never loses
//!   an accepted one. A locked submission makes room in its queue (`try_reserve`) before it
//!   accepts the task, and is refused with `Refusal::NoMemory` if it cannot. The injector's
//!   tasks were accepted before any lock saw them, so its drain only takes as many as fit in
//!   the normal-priority queue (growing it first if it can) and leaves the rest in the ring,
//!   in order (injector.rs F5): a normal-priority submission is refused while that backlog
//!   does not fit (it would pass it by). The normal-priority queue is made at `build` with
//!   room for the whole ring besides every batch (`CAPACITY + BATCH * max_threads`), and it
//!   keeps room for the tasks lent to batches (`batched`) on top of what it holds, so an
//!   emptied queue always takes the whole backlog, and a batch handed back (B6, B7) needs no
//!   memory. A worker that found every queue empty takes the backlog before it goes idle or
//!   leaves, and `destroy` takes it out of the ring with the queues' storage (which it moves
//!   out, so destroying needs no memory either; afterwards the queues start empty and only
//!   stale pushes being taken back, F2, reach them). Lanes reserve likewise
//!   (lanes.rs). What stays infallible is bounded by the pool's shape, not by its load (the
//!   idle stack, the running lists, the wakeups of one section, a broadcast's entries).
//!
//! # Batches (worker-side batching of plain tasks; docs/semantics.md P11)
//!
//! In a long burst every task used to cost its worker one lock section (take it off its
//! running list, drain the injector, pop the next task). A worker now takes, in the section
//! that gives it a normal-priority task, a few more of them as its *batch*, and runs them one by
//! one before it locks again. The rules:
//!
//! - **B1 (what, when, how many).** Only entries of the normal-priority global queue (plain
//!   tasks, with or without a timeout; never High, Low, keyed or broadcast tasks) go into a
//!   batch, and only in the section in which the worker took a normal-priority task, only
//!   while every slot is occupied, none is idle, the pool is open and the queue is unbounded
//!   (the injector gate's conditions, injector.rs F1), and at most
//!   `min(BATCH, queued / max_threads)` of them (a share: others can keep taking the rest).
//!   They move in FIFO order from the queue's front to `Slot::batch`, which holds the counted
//!   references; the worker runs them on loans, valid because only it takes entries off its
//!   batch (B3), as for its running list.
//! - **B2 (still queued).** A batch entry stays `QUEUED` and counted in `queued` and
//!   `global_queued` until someone claims it: it is not claimed in advance, so anyone may
//!   still claim it — an inline join on any thread (P10: no task waits for a task a worker
//!   claimed but has not started), a cancel (`leave_queue`, which takes it off the counts as
//!   for any queued task), `destroy` (B5), or a *thief*: a worker that found every queue it
//!   serves empty claims, under the lock, a `QUEUED` entry of another worker's batch before
//!   it goes idle or leaves a closing pool (so I1 and I3 hold: no worker idles or exits
//!   while a batch task waits, and no batch is taken while a worker is idle).
//! - **B3 (claim right before the run).** The worker claims each entry (`QUEUED → RUNNING`)
//!   right before it runs it, without the lock; an entry someone else claimed or resolved
//!   is skipped, as a stale queue entry is. A claim it wins is counted in the slot's
//!   `batch_claims` word (only that worker writes it); the worker takes that count off
//!   `queued` / `global_queued` in its next locked section, which also takes its batch's
//!   references back (dropped after unlocking) and gives it its next task.
//! - **B4 (counts for observers).** Every reader of the count (`queue_size`, `needs_drain`,
//!   `wait_drained`, `stats`) reads `queued` less the unsettled `batch_claims` of every slot
//!   (`queued_now`), so a claimed batch task is no longer queued for any observer once its
//!   claim is counted — the same short window an inline join's claim has before it takes the
//!   lock. `wait_drained` registers in `drain_watchers`, then a `SeqCst` fence, before its
//!   first look; a worker counts its claim, a `SeqCst` fence, then reads `drain_watchers`, and
//!   if someone watches it settles the claim at once under the lock and raises `Signal::Queue`
//!   if a thread waits (loom checks this Dekker pattern only with fences, as in injector.rs).
//!   So either the watcher's look sees the claim, or the worker sees the watcher and signals
//!   under the lock after it. The queue-bound checks (`is_full`) read the raw count: bounded
//!   pools take no batches (B1). `find_taker` and `sweep` may read a count too high by the
//!   unsettled claims: a thread started for nothing, or a later sweep; never a stranded task.
//! - **B5 (destroy).** `destroy` clones (does not take) every batch entry, and moves each
//!   `QUEUED → DESTROYED`, or, if that fails because someone claimed it first,
//!   `RUNNING → DESTROYED`, as for a running task; a worker's later claims fail. The counts
//!   are zeroed with the batches in them, so settling afterwards saturates at 0.
//! - **B6 (every exit path).** The batch loop runs under a drop guard: if it unwinds, the
//!   guard settles the claims and puts the entries still `QUEUED` back at the front of the
//!   normal-priority queue in order (ringing an idle worker for each), before the thread's
//!   exit guard vacates the slot.
//! - **B7 (urgent work ends a batch).** Queuing a High, keyed or broadcast task bumps the
//!   `urgent` word (under the lock). A worker notes the word in the section that lends it its
//!   batch and reads it again before each claim; once it changed, the worker stops, and in its
//!   next section hands the entries still `QUEUED` back to the front of the normal-priority
//!   queue (as B6 does) before it looks for its next task. So such a task waits for at most
//!   the one batch task that is running when it is queued, as it waits for any running task
//!   without batches. (The word is a hint read `Relaxed`: a worker that reads it late only
//!   runs one more batch task first; nothing depends on it for correctness.)
//!
//! The price: an observer may see a task queued a moment after its claim (as for an inline
//! join), and tasks of one priority start in queue order per worker, not across workers (as
//! before: two workers already start their tasks in parallel).

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use super::config::{Config, WhenFull};
use super::injector::{Injector, LockedSide, Padded, CAPACITY};
use super::job::{Header, JobRef, Placement};
use super::options::Priority;
use super::panic::{catch_panic, drop_quietly};
use super::stats::{Counters, Recorder};
use super::task_state::Resolved;
use crate::atomics::{Interrupter, SharedWords, WaitResult, Word};
use crate::error::Error;
use crate::region::MadeIn;
use crate::shim::{
    fence, lock, thread, AtomicUsize, IdCounter, Mutex, MutexGuard, Ordering::SeqCst, LOOM,
};
use crate::view::TypedArray;
use std::sync::atomic::Ordering::Relaxed;

/// Pool ids: unique in the process, never 0 (0 marks "not a pool thread").
static NEXT_POOL_ID: IdCounter = IdCounter::starting_at(1);

/// Pool thread ids: unique in the process, never 0 (0 is "not a pool thread").
static NEXT_THREAD_ID: IdCounter = IdCounter::starting_at(1);

/// Starts the OS thread of a pool slot: `(core, slot, thread id, its interrupter)`. The pool's
/// builder passes `worker::spawn`; the scheduler only decides when, so it does not import the
/// worker loop that imports it (no file-level import circle).
pub(super) type StartThread =
    fn(&crate::shim::Arc<Core>, usize, u64, Interrupter) -> Result<thread::JoinHandle<()>, String>;

/// Whether the pool accepts tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Open,
    /// `close`d: no new tasks; workers finish what is queued, then exit.
    Closing,
    /// `destroy`ed: nothing more runs; workers exit as soon as they return.
    Destroyed,
}

/// The words other than the bells that threads block on; each is bumped (and notified when
/// someone waits) when its event happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Signal {
    /// A thread finished exiting (`close` waits for `alive == 0`).
    Exited = 0,
    /// `queued` went down, or the phase changed (`WhenFull::Block`, `wait_drained`); or a
    /// broadcast was queued, which a pool thread waiting there runs its share of (P10).
    Queue = 1,
    /// A lane was released (an inline join waiting to drive a lane).
    Lane = 2,
}

/// What the pool's threads, tasks and handles share.
pub(crate) struct Core {
    pub(super) id: u64,
    /// The pool's threads are not in a fork child of this process (docs/semantics.md X7).
    pub(super) made_in: MadeIn,
    pub(super) config: Config,
    state: Mutex<State>,
    /// One per slot (see the module docs).
    bells: SharedWords<u32>,
    /// One per [`Signal`].
    signals: SharedWords<u32>,
    /// A word nobody notifies: task timeouts are `wait_async`s on it (task.rs).
    timer_word: TypedArray<i32>,
    /// One per slot, written only by that slot's thread.
    recorders: Box<[Recorder]>,
    /// For tasks run on threads outside the pool.
    foreign: Recorder,
    pub(super) counters: Counters,
    /// Tasks pushed to the global queues and lanes so far: a hint a worker about to go idle
    /// polls for a moment (worker.rs), so a steady stream of tasks does not make every
    /// submission wake a parked thread. Bumped just after the push's lock is released, and
    /// only if a worker may be polling (a seeker: a poller counts as one from the critical
    /// section in which it found nothing and read this count, so a push it did not see
    /// finds it counted); busy workers cost a push no write to this shared line. A std
    /// atomic even under loom: a hint decides nothing (the worker then takes the lock and
    /// looks), and the poll is off under loom.
    pub(super) pushes: PushCount,
    /// Where plain tasks go without the lock while every worker is busy (injector.rs); every
    /// [`Core::lock`] moves them to the normal-priority queue first.
    pub(super) injector: Injector,
    /// How a slot's thread is started (see [`StartThread`]).
    start: StartThread,
    /// One per slot: tasks of the slot's batch its worker claimed and has not yet taken off
    /// the counts (batch rules B3, B4). Written only by that worker.
    batch_claims: Box<[Padded<AtomicUsize>]>,
    /// Threads in `wait_drained` (B4): a worker that claims a batch task while one waits
    /// takes it off the counts at once, under the lock.
    drain_watchers: Padded<AtomicUsize>,
    /// B7: bumped (under the lock) whenever a High, keyed or broadcast task is queued; a
    /// worker in its batch stops when it sees it change.
    urgent: Padded<AtomicUsize>,
}

/// [`Core::pushes`], on cache lines of its own: pollers read it in a loop, and it should not
/// share a line with the lock every submission and every worker writes.
#[derive(Default)]
#[repr(align(128))]
pub(super) struct PushCount(std::sync::atomic::AtomicU64);

impl Deref for PushCount {
    type Target = std::sync::atomic::AtomicU64;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// Everything the lock guards.
pub(super) struct State {
    pub(super) phase: Phase,
    /// The global queues, indexed by `Priority as usize`.
    pub(super) global: [VecDeque<JobRef>; 3],
    /// Live tasks waiting in the global queues and lanes (I4).
    pub(super) queued: usize,
    /// Tasks queued by [`Core::submit`], counted under the lock that queues them (a shared
    /// counter would cost each submission a read-modify-write of its own); the few tasks
    /// submitted otherwise are counted in `Counters::submitted`.
    pub(super) submitted: u64,
    /// Of those, the ones in the global queues.
    pub(super) global_queued: usize,
    /// Workers that will look at the queues before they run anything or go idle: threads
    /// starting, and idle workers just rung (I1). A global task starts a new thread only if
    /// it would wait even after each of them took one.
    pub(super) seekers: usize,
    /// The injector's gate and drained count, as only the lock holder keeps them.
    injected: LockedSide,
    pub(super) slots: Vec<Slot>,
    /// Idle slots, most recently idle last (it is rung first: its caches are warm, and the
    /// others time out and exit).
    pub(super) idle: Vec<usize>,
    pub(super) occupied: usize,
    pub(super) alive: usize,
    pub(super) peak: usize,
    pub(super) lanes: HashMap<u64, Lane>,
    /// Threads waiting on `Signal::Queue` / `Signal::Lane`.
    pub(super) queue_waiters: usize,
    pub(super) lane_waiters: usize,
    /// Tasks running on threads outside the pool (so `destroy` reaches them).
    pub(super) foreign_running: Vec<JobRef>,
    /// Threads that vacated their slot: (thread id, handle, finished exiting).
    pub(super) exited: Vec<(u64, thread::JoinHandle<()>, bool)>,
    /// Summed lifetime of the threads that finished exiting (for utilization).
    pub(super) exited_lifetime: Duration,
    /// Slots whose batch is not empty (B2): a worker about to go idle looks into the others'
    /// batches only if some are (their lines are written by their workers).
    batches: usize,
    /// Entries in the slots' batches, all told: the normal-priority queue keeps room for them
    /// (I6), so a batch handed back (B6, B7) never needs memory.
    batched: usize,
}

/// One worker slot.
#[derive(Default)]
pub(super) struct Slot {
    pub(super) occupied: bool,
    /// On the idle stack (I2).
    pub(super) idle: bool,
    /// Counted in `State::seekers`.
    pub(super) seeking: bool,
    pub(super) thread_id: u64,
    pub(super) thread: Option<thread::JoinHandle<()>>,
    pub(super) interrupter: Option<Interrupter>,
    pub(super) started_at: Option<Instant>,
    pub(super) broadcasts: VecDeque<JobRef>,
    /// Lanes bound here whose next task may start now, oldest first.
    pub(super) ready_lanes: VecDeque<u64>,
    /// Lanes bound here (I5).
    pub(super) lanes: usize,
    /// The tasks its thread is running: the one it took, plus any it runs inline while
    /// joining (innermost last).
    pub(super) running: Vec<JobRef>,
    /// The worker's batch (B1): normal-priority tasks it took from the queue together with the
    /// one it runs, still `QUEUED` and counted, that it claims and runs one by one without the
    /// lock. Only the worker removes entries (its loans stay valid, as a [`RunningJob`]'s).
    pub(super) batch: Vec<JobRef>,
}

/// The queue of one key (lanes.rs).
pub(super) struct Lane {
    pub(super) slot: usize,
    pub(super) queue: VecDeque<JobRef>,
    /// The thread running the lane's current task, if one runs.
    pub(super) busy: Option<u64>,
    /// On the slot's `ready_lanes` (lanes.rs, L2).
    pub(super) ready: bool,
}

/// Why a submission was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    Closed,
    Full,
    /// `WhenFull::CallerRuns` and the queue is full: the submitter runs the task.
    RunHere,
    SpawnFailed(String),
    /// A queue could not grow to hold the task (I6).
    NoMemory,
}

/// The reason a [`Refusal::NoMemory`] gives (in `PoolError::SpawnFailed`).
pub(super) const NO_MEMORY: &str = "out of memory: the pool's queue could not grow to hold it";

/// What a worker does next.
pub(super) enum Next {
    /// Run this task (taken from this lane, if keyed): the last entry of the worker's running
    /// list, which keeps it alive until the worker takes it off ([`Locked::finished`]).
    Run(RunningJob, Option<u64>),
    Idle,
    Exit,
}

impl Core {
    pub(super) fn new(config: Config, start: StartThread) -> Result<Core, Error> {
        let timer = crate::buffer::SharedBuffer::new(4)?;
        // I6: room for the whole injector ring besides every batch, whatever the queue holds.
        let mut normal = VecDeque::new();
        let room = CAPACITY + BATCH * config.max_threads;
        normal
            .try_reserve(room)
            .map_err(|error| Error::AllocationFailed {
                bytes: room * std::mem::size_of::<JobRef>(),
                reason: error.to_string(),
            })?;
        Ok(Core {
            id: NEXT_POOL_ID.next(),
            made_in: MadeIn::now(),
            bells: SharedWords::new(config.max_threads)?,
            signals: SharedWords::new(3)?,
            timer_word: TypedArray::new(&timer)?,
            recorders: (0..config.max_threads)
                .map(|_| Recorder::default())
                .collect(),
            foreign: Recorder::default(),
            counters: Counters::default(),
            pushes: PushCount::default(),
            injector: Injector::new(),
            start,
            batch_claims: (0..config.max_threads)
                .map(|_| Padded(AtomicUsize::new(0)))
                .collect(),
            drain_watchers: Padded(AtomicUsize::new(0)),
            urgent: Padded(AtomicUsize::new(0)),
            state: Mutex::new(State {
                phase: Phase::Open,
                global: [VecDeque::new(), normal, VecDeque::new()],
                queued: 0,
                submitted: 0,
                global_queued: 0,
                seekers: 0,
                injected: LockedSide::default(),
                slots: (0..config.max_threads).map(|_| Slot::default()).collect(),
                idle: Vec::new(),
                occupied: 0,
                alive: 0,
                peak: 0,
                lanes: HashMap::new(),
                queue_waiters: 0,
                lane_waiters: 0,
                foreign_running: Vec::new(),
                exited: Vec::new(),
                exited_lifetime: Duration::ZERO,
                batches: 0,
                batched: 0,
            }),
            config,
        })
    }

    /// Locks the state, with every task pushed to the injector so far moved to the end of
    /// the normal-priority queue and counted (injector.rs F3); wakeups collected while locked
    /// happen when the guard is dropped.
    pub(super) fn lock(&self) -> Locked<'_> {
        let mut locked = Locked {
            core: self,
            guard: Some(lock(&self.state)),
            wake: Wakeups::default(),
        };
        locked.take_injected();
        locked
    }

    pub(super) fn bell(&self, slot: usize) -> Word<'_, u32> {
        self.bells.get(slot)
    }

    pub(super) fn signal(&self, signal: Signal) -> Word<'_, u32> {
        self.signals.get(signal as usize)
    }

    pub(super) fn timer_word(&self) -> &TypedArray<i32> {
        &self.timer_word
    }

    /// The recorder for a task run by `slot` (`None`: outside the pool), and whether the
    /// calling thread owns it.
    pub(super) fn recorder(&self, slot: Option<usize>) -> (&Recorder, bool) {
        match slot {
            Some(slot) => (&self.recorders[slot], true),
            None => (&self.foreign, false),
        }
    }

    pub(super) fn recorders(&self) -> impl Iterator<Item = &Recorder> + Clone {
        self.recorders.iter().chain(std::iter::once(&self.foreign))
    }

    /// Queues `entry`, the queue's reference to a task (I1, I3); if the task is refused,
    /// `entry` is dropped after unlocking. `bounded`: whether the queue bound and the
    /// `WhenFull` policy apply (not for `map`'s chunks and `broadcast`).
    pub(super) fn submit(
        core: &crate::shim::Arc<Core>,
        entry: JobRef,
        bounded: bool,
    ) -> Result<(), Refusal> {
        let this: &Core = core;
        let placement = entry.header().placement;
        let mut entry = entry;
        if bounded && placement == Placement::Global(Priority::Normal) && this.injector.is_open() {
            // Identity only (never dereferenced): to find the task again if it must come back.
            let address = entry.as_ptr();
            match this.injector.push(entry) {
                Ok(true) => return Ok(()),
                Ok(false) => return Core::settle_injected(core, address),
                Err(full) => entry = full,
            }
        }
        let mut locked = this.lock();
        let mut deadline = None;
        loop {
            if locked.phase != Phase::Open {
                return Err(Refusal::Closed);
            }
            if !bounded || !locked.is_full(placement, &this.config) {
                break;
            }
            match this.config.when_full {
                WhenFull::Reject => return Err(Refusal::Full),
                WhenFull::CallerRuns => return Err(Refusal::RunHere),
                WhenFull::Block(timeout) => {
                    let until =
                        *deadline.get_or_insert_with(|| Instant::now().checked_add(timeout));
                    let waited;
                    // A pool thread serves its worker's broadcasts meanwhile (P10).
                    (locked, waited) = locked.wait_for_queue_serving(this, until);
                    if !waited {
                        // Timed out or interrupted: one last look, then give up.
                        if locked.phase == Phase::Open && !locked.is_full(placement, &this.config) {
                            break;
                        }
                        return Err(if locked.phase == Phase::Open {
                            Refusal::Full
                        } else {
                            Refusal::Closed
                        });
                    }
                }
            }
        }
        locked.enqueue(core, entry)?;
        locked.submitted += 1;
        Ok(())
    }

    /// A task pushed to the injector found the gate shut after its push (injector.rs F2).
    /// Under the lock (which drained it) this makes sure a thread takes it, as a locked
    /// submission would; if the pool no longer accepts tasks, or no thread could be started
    /// for it, it takes the task back out of the queue (if nobody took it meanwhile) and
    /// refuses it.
    fn settle_injected(core: &crate::shim::Arc<Core>, address: *const ()) -> Result<(), Refusal> {
        let mut locked = core.lock();
        let refusal = if locked.phase != Phase::Open {
            Refusal::Closed
        } else {
            let waiting = locked.global_queued;
            match locked.find_taker(core, waiting) {
                Ok(()) => return Ok(()),
                Err(reason) => Refusal::SpawnFailed(reason),
            }
        };
        if locked.take_back(address) {
            Err(refusal)
        } else {
            Ok(())
        }
    }

    /// Wakes everyone waiting for the task of `header`, whose transition into a terminal
    /// phase this caller won (`resolved`), and rings its `wake_slot`. A panicking waker (user
    /// code: an async runtime's) is swallowed, so the thread resolving the task — a worker,
    /// the timer, a `destroy` in the middle of its loop — goes on.
    pub(super) fn notify_resolved(&self, header: &Header, resolved: Resolved) {
        // A pool thread that joins the task waits on its bell (handle.rs), noted before it
        // flagged the word: ring it too.
        let joiner = if resolved.has_waiters() {
            let _ = catch_panic(|| header.state.notify(resolved));
            header.joiner()
        } else {
            None
        };
        let wake = header.wake_slot();
        if wake.is_none() && joiner.is_none() {
            return;
        }
        let mut locked = self.lock();
        for slot in [wake, joiner].into_iter().flatten() {
            locked.ring(slot);
        }
    }

    /// Worker `slot` claimed a task of its batch, outside the lock (B3, B4): counts the claim,
    /// and if a thread waits in `wait_drained` takes it off the counts now, under the lock.
    pub(super) fn count_batch_claim(&self, slot: usize) {
        // Only this worker writes its word: a load and a store, no read-modify-write.
        let claims = &self.batch_claims[slot].0;
        claims.store(claims.load(Relaxed) + 1, Relaxed);
        // B4 against the watcher's fence in `watch_drain`: either this load sees the watcher,
        // or the watcher's later reads of the claims see this count. (Fences, not `SeqCst`
        // accesses: loom checks this pattern only with fences, as in injector.rs.)
        fence(SeqCst);
        if self.drain_watchers.0.load(Relaxed) > 0 {
            self.lock().settle_claims(slot);
        }
    }

    /// The `urgent` word (B7): a worker running its batch stops once this differs from what
    /// it read when the batch was lent.
    pub(super) fn urgent(&self) -> usize {
        self.urgent.0.load(Relaxed)
    }

    /// A thread waits in `wait_drained` (B4) until the returned guard is dropped.
    pub(super) fn watch_drain(&self) -> DrainWatch<'_> {
        self.drain_watchers.0.fetch_add(1, Relaxed);
        // B4, against the fence in `count_batch_claim`.
        fence(SeqCst);
        DrainWatch(self)
    }

    /// Takes a task that a cancel moved out of `QUEUED` off the counts (I4).
    pub(super) fn left_queue(&self, placement: Placement) {
        self.lock().left_queue(placement);
    }

    /// Runs `job`, already claimed, on the calling thread outside any worker loop (an inline
    /// join, `CallerRuns`, `map`'s own chunks), registered as running so `destroy` reaches it.
    /// `was_queued`: the caller claimed it from a queue (it comes off the counts, I4).
    pub(super) fn run_here(&self, job: &JobRef, runner: super::job::Runner, was_queued: bool) {
        {
            let mut locked = self.lock();
            if was_queued {
                locked.left_queue(job.header().placement);
            }
            match runner.slot {
                Some(slot) => locked.slots[slot].running.push(JobRef::clone(job)),
                None => locked.foreign_running.push(JobRef::clone(job)),
            }
        }
        let _registered = Registered {
            core: self,
            job,
            slot: runner.slot,
        };
        job.run(runner);
    }
}

/// Takes a task run by [`Core::run_here`] off the running lists, however the run ends.
struct Registered<'a> {
    core: &'a Core,
    job: &'a JobRef,
    slot: Option<usize>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if crate::shim::model_is_unwinding() {
            return;
        }
        let mut locked = self.core.lock();
        let list = match self.slot {
            Some(slot) => &mut locked.slots[slot].running,
            None => &mut locked.foreign_running,
        };
        if let Some(position) = list.iter().rposition(|j| JobRef::ptr_eq(j, self.job)) {
            let entry = list.remove(position);
            locked.defer_drop(entry);
        }
    }
}

impl State {
    /// Whether a task with this placement would have to wait beyond the queue bound: the bound
    /// is reached and no worker could take the task now (none idle, no seeker left over for
    /// it, no room for another thread).
    fn is_full(&self, placement: Placement, config: &Config) -> bool {
        let Some(bound) = config.queue_bound else {
            return false;
        };
        if self.queued < bound {
            return false;
        }
        match placement {
            Placement::Global(_) => {
                self.idle.is_empty()
                    && self.global_queued >= self.seekers
                    && self.occupied >= config.max_threads
            }
            Placement::Keyed(key) => {
                let slot = &self.slots[lane_slot(key, config.max_threads)];
                slot.occupied && !slot.idle
            }
            Placement::Broadcast(_) => false,
        }
    }

    /// Sweeps stale entries out of a global queue once they outnumber live ones (I4).
    pub(super) fn sweep(&mut self, priority: Priority) {
        let entries: usize = self.global.iter().map(VecDeque::len).sum();
        if entries > 2 * self.global_queued + 64 {
            self.global[priority as usize].retain(|job| job.header().state.is_queued());
        }
    }

    /// The vacant slot with the lowest index.
    fn vacant_slot(&self) -> Option<usize> {
        self.slots.iter().position(|slot| !slot.occupied)
    }
}

/// A task a worker runs, lent by its running list without a reference count of its own (one
/// less read-modify-write on the task's line per task, inside the lock).
///
/// The running list's reference keeps the task alive: only the worker itself takes that entry
/// off ([`Locked::finished`], after the run; `destroy` only clones entries), so the loan is
/// valid until the worker gives it back.
pub(super) struct RunningJob(std::mem::ManuallyDrop<JobRef>);

impl RunningJob {
    fn lend(job: &JobRef) -> RunningJob {
        // SAFETY: the list's reference outlives the loan (see the type's docs).
        RunningJob(unsafe { job.lend() })
    }
}

impl Deref for RunningJob {
    type Target = JobRef;

    fn deref(&self) -> &JobRef {
        &self.0
    }
}

/// A `wait_drained` in progress (B4), from [`Core::watch_drain`]: ends the watch however the
/// wait returns.
pub(super) struct DrainWatch<'a>(&'a Core);

impl Drop for DrainWatch<'_> {
    fn drop(&mut self) {
        self.0.drain_watchers.0.fetch_sub(1, SeqCst);
    }
}

/// The most tasks a worker takes into its batch besides the one it runs (B1). Two under loom,
/// so that the models see a batch with a task after the one being claimed.
const BATCH: usize = if LOOM { 2 } else { 16 };

/// I6: makes room in `queue` for `wanted` more entries besides `keep` (growing it if it can:
/// `try_reserve`, which fails where `push_back` would abort); returns how many of the `wanted`
/// fit.
fn make_room(queue: &mut VecDeque<JobRef>, keep: usize, wanted: usize) -> usize {
    let spare = |queue: &VecDeque<JobRef>| {
        let capacity = if LOOM {
            queue.capacity().min(LOOM_QUEUE_LIMIT.with(Cell::get))
        } else {
            queue.capacity()
        };
        capacity.saturating_sub(queue.len())
    };
    if spare(queue) < keep + wanted {
        let _ = queue.try_reserve(keep + wanted);
    }
    spare(queue).saturating_sub(keep).min(wanted)
}

std::thread_local! {
    /// Under loom: the entries a queue may hold, as if memory ran out beyond (unlimited unless
    /// a model sets it through `loom_hooks::pool_queue_limit`). A std thread-local: loom runs
    /// all of a model's threads on the test's own thread, and the setting belongs to the test.
    static LOOM_QUEUE_LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Sets [`LOOM_QUEUE_LIMIT`] for the calling test.
#[allow(dead_code)] // used by the loom hooks only
pub(crate) fn set_loom_queue_limit(entries: usize) {
    LOOM_QUEUE_LIMIT.with(|limit| limit.set(entries));
}

/// The slot every task with key `key` runs on.
pub(super) fn lane_slot(key: u64, max_threads: usize) -> usize {
    (key % max_threads as u64) as usize
}

/// The locked state, plus the wakeups to perform once it is unlocked.
pub(super) struct Locked<'a> {
    core: &'a Core,
    guard: Option<MutexGuard<'a, State>>,
    wake: Wakeups,
}

/// Wakeups collected under the lock.
#[derive(Default)]
struct Wakeups {
    bells: Few<usize>,
    /// Bit `Signal as u8` set: notify that signal.
    signals: u8,
    /// Task references whose drop may run user code (a result's `Drop`): dropped after
    /// unlocking.
    drops: Few<JobRef>,
    /// A task was pushed: bump `Core::pushes` (outside the lock: pollers read that line).
    pushed: bool,
}

/// A list that holds its first element inline: one task's lock section rings at most one bell
/// and drops at most one task reference, and should not allocate for that.
struct Few<T> {
    first: Option<T>,
    rest: Vec<T>,
}

impl<T> Default for Few<T> {
    fn default() -> Few<T> {
        Few {
            first: None,
            rest: Vec::new(),
        }
    }
}

impl<T: PartialEq> Few<T> {
    fn push(&mut self, value: T) {
        match self.first {
            None => self.first = Some(value),
            Some(_) => self.rest.push(value),
        }
    }

    fn contains(&self, value: &T) -> bool {
        self.first.as_ref() == Some(value) || self.rest.contains(value)
    }
}

impl<T> Few<T> {
    /// Empties the list into `f`, first element first (the usual one-element list costs no
    /// iterator over the empty rest).
    fn drain(&mut self, mut f: impl FnMut(T)) {
        if let Some(first) = self.first.take() {
            f(first);
        }
        if !self.rest.is_empty() {
            std::mem::take(&mut self.rest).into_iter().for_each(f);
        }
    }
}

impl Deref for Locked<'_> {
    type Target = State;

    fn deref(&self) -> &State {
        self.guard.as_ref().expect("locked until dropped")
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.guard.as_mut().expect("locked until dropped")
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if crate::shim::model_is_unwinding() {
            drop(self.guard.take());
            return;
        }
        self.update_injector(None);
        drop(self.guard.take());
        if self.wake.pushed {
            self.core.pushes.fetch_add(1, Relaxed);
        }
        let core = self.core;
        self.wake.bells.drain(|slot| {
            core.bell(slot).notify(None);
        });
        for signal in [Signal::Exited, Signal::Queue, Signal::Lane] {
            if self.wake.signals & (1 << signal as u8) != 0 {
                self.core.signal(signal).notify(None);
            }
        }
        self.wake.drops.drain(drop_quietly);
    }
}

impl<'a> Locked<'a> {
    /// Wakes `slot`'s thread: takes it off the idle stack if it is there (I2), bumps its bell
    /// now and notifies it after unlocking.
    pub(super) fn ring(&mut self, slot: usize) {
        let state = self.guard.as_mut().expect("locked until dropped");
        if state.slots[slot].idle {
            state.slots[slot].idle = false;
            if let Some(position) = state.idle.iter().rposition(|&s| s == slot) {
                state.idle.remove(position);
            }
            state.slots[slot].seeking = true;
            state.seekers += 1;
        }
        self.core.bell(slot).fetch_add(1, SeqCst);
        if !self.wake.bells.contains(&slot) {
            self.wake.bells.push(slot);
        }
    }

    /// Bumps `signal` now and notifies it after unlocking.
    pub(super) fn raise(&mut self, signal: Signal) {
        self.core.signal(signal).fetch_add(1, SeqCst);
        self.wake.signals |= 1 << signal as u8;
    }

    /// Raises `Signal::Queue` if anyone waits for it: the queue shrank, or a worker became
    /// free (blocked submitters and `wait_drained` look again).
    pub(super) fn queue_shrank(&mut self) {
        if self.queue_waiters > 0 {
            self.raise(Signal::Queue);
        }
    }

    /// A task moved out of `QUEUED` by someone other than a worker taking it (I4). Not once
    /// the pool is destroyed: `destroy` zeroed the counts with the task in them (a cancel or
    /// an inline join can win the task while `destroy` is still resolving the queue), and
    /// nothing counted since can be cancelled or joined (only stale pushes being taken back).
    pub(super) fn left_queue(&mut self, placement: Placement) {
        if self.phase == Phase::Destroyed {
            return;
        }
        match placement {
            Placement::Global(priority) => {
                self.queued -= 1;
                self.global_queued -= 1;
                self.sweep(priority);
            }
            Placement::Keyed(_) => self.queued -= 1,
            Placement::Broadcast(_) => return,
        }
        self.queue_shrank();
    }

    /// Drops `job` after unlocking.
    pub(super) fn defer_drop(&mut self, job: JobRef) {
        match self.wake.drops.first {
            None => self.wake.drops.first = Some(job),
            Some(_) => self.wake.drops.rest.push(job),
        }
    }

    /// Unlocks, waits until `signal` changes or `deadline` passes (`None`: no limit), and
    /// locks again. `false` if it timed out or the thread was interrupted.
    pub(super) fn wait_for(self, signal: Signal, deadline: Option<Instant>) -> (Locked<'a>, bool) {
        let core = self.core;
        let (waiters, seen) = match signal {
            Signal::Queue => (true, core.signal(signal).load(SeqCst)),
            Signal::Lane => (false, core.signal(signal).load(SeqCst)),
            Signal::Exited => unreachable!("nobody waits for Exited while holding the lock"),
        };
        let mut this = self;
        if waiters {
            this.queue_waiters += 1;
        } else {
            this.lane_waiters += 1;
        }
        drop(this);
        let woke = core.signal(signal).wait_until(seen, deadline);
        let mut locked = core.lock();
        if waiters {
            locked.queue_waiters -= 1;
        } else {
            locked.lane_waiters -= 1;
        }
        (
            locked,
            matches!(woke, Ok(WaitResult::Ok | WaitResult::NotEqual)),
        )
    }

    /// Puts `job` where its placement says and makes sure a thread will take it (I1). `Err`
    /// if it needed a new thread and none could be started (the task was not queued).
    fn enqueue(&mut self, core: &crate::shim::Arc<Core>, job: JobRef) -> Result<(), Refusal> {
        let max = core.config.max_threads;
        self.wake.pushed = self.seekers > 0;
        match job.header().placement {
            Placement::Global(priority) => {
                self.room_for(priority)?;
                let waiting = self.global_queued + 1;
                self.find_taker(core, waiting)
                    .map_err(Refusal::SpawnFailed)?;
                self.global[priority as usize].push_back(job);
                self.queued += 1;
                self.global_queued += 1;
                if priority == Priority::High {
                    self.queued_urgent();
                }
            }
            Placement::Keyed(key) => {
                let slot = lane_slot(key, max);
                if !self.reserve_keyed(key, slot) {
                    return Err(Refusal::NoMemory);
                }
                if !self.slots[slot].occupied {
                    self.start_thread(core, slot)
                        .map_err(Refusal::SpawnFailed)?;
                }
                self.push_keyed(key, slot, job);
                self.queued += 1;
                self.queued_urgent();
                self.ring(slot);
            }
            Placement::Broadcast(slot) => {
                self.push_broadcast(slot, job);
                self.broadcast_queued();
            }
        }
        Ok(())
    }

    /// Makes sure a thread will take a global task, with `waiting` global tasks queued
    /// counting it (I1): rings the most recently idle worker, or starts a thread if none is
    /// idle and the seekers are fewer than the waiting tasks. `Err` only if a thread was
    /// needed, none could start, and no thread is left to take it. The pool is open.
    fn find_taker(&mut self, core: &crate::shim::Arc<Core>, waiting: usize) -> Result<(), String> {
        if let Some(&slot) = self.idle.last() {
            self.ring(slot);
        } else if waiting > self.seekers && self.occupied < core.config.max_threads {
            let slot = self.vacant_slot().expect("occupied < max");
            if let Err(reason) = self.start_thread(core, slot) {
                if self.occupied == 0 {
                    return Err(reason);
                }
                // Busy threads will take it (I1).
            }
        }
        Ok(())
    }

    /// I6: makes room for one more task in the queue of `priority` (besides the room the
    /// normal-priority queue keeps for the batches), or `Err(NoMemory)`. A normal-priority
    /// task also waits for the injector's backlog to fit first (F5), to stay behind it (F3).
    fn room_for(&mut self, priority: Priority) -> Result<(), Refusal> {
        let mut keep = 0;
        if priority == Priority::Normal {
            if self.injected.backlog() {
                self.take_injected();
                if self.injected.backlog() {
                    return Err(Refusal::NoMemory);
                }
            }
            keep = self.batched;
        }
        match make_room(&mut self.global[priority as usize], keep, 1) {
            0 => Err(Refusal::NoMemory),
            _ => Ok(()),
        }
    }

    /// Moves the tasks pushed to the injector to the end of the normal-priority queue, as many
    /// as it has room for besides the batches' (I6; the rest stay in the ring, injector.rs F5),
    /// and counts them as queued and submitted (F3); returns how many.
    fn take_injected(&mut self) -> usize {
        let core = self.core;
        let state: &mut State = self.guard.as_mut().expect("locked until dropped");
        let queue = &mut state.global[Priority::Normal as usize];
        let keep = state.batched;
        let taken = core
            .injector
            .drain(&mut state.injected, queue, |queue, waiting| {
                make_room(queue, keep, waiting)
            });
        state.queued += taken;
        state.global_queued += taken;
        state.submitted += taken as u64;
        taken
    }

    /// Takes what the injector's backlog holds (injector.rs F5) into the normal-priority queue,
    /// as far as it fits; returns how many.
    pub(super) fn take_backlog(&mut self) -> usize {
        if self.injected.backlog() {
            self.take_injected()
        } else {
            0
        }
    }

    /// `destroy`: takes every task left in the injector's ring (its backlog, F5, and pushes
    /// published since the last drain) into `out`, without the queue, counting them as
    /// submitted (F3: they are accepted) but not as queued (the caller zeroes that count).
    pub(super) fn take_ring(&mut self, out: &mut [Option<JobRef>; CAPACITY]) {
        let core = self.core;
        let taken = core.injector.take_all(&mut self.injected, out);
        self.submitted += taken as u64;
    }

    /// Whether a plain task needs no scheduling decision now (injector.rs F1; batches, B1):
    /// the pool is open, every slot occupied, none idle, and the queue unbounded.
    fn needs_no_decision(&self) -> bool {
        self.phase == Phase::Open
            && self.occupied == self.core.config.max_threads
            && self.idle.is_empty()
            && self.core.config.queue_bound.is_none()
    }

    /// Shuts the injector's gate if the state no longer allows a push without a decision, or
    /// opens it if it does (injector.rs F1). Shutting drains the ring, and each task drained
    /// then (pushed while the gate was open) gets a taker: an idle worker is rung; a thread is
    /// started only with `core` (the callers that can make the pool lose a thread pass it).
    pub(super) fn update_injector(&mut self, core: Option<&crate::shim::Arc<Core>>) {
        let open = self.needs_no_decision();
        let core_ref = self.core;
        if !core_ref.injector.set_open(&mut self.injected, open) || open {
            return;
        }
        let taken = self.take_injected();
        if self.phase != Phase::Open {
            return; // closing: every worker was rung; destroyed: the caller sweeps the queues
        }
        for _ in 0..taken {
            match core {
                Some(core) => {
                    let waiting = self.global_queued;
                    // `Err`: no thread is left and none can start; the next submission tries
                    // again (as for a task whose worker died).
                    let _ = self.find_taker(core, waiting);
                }
                None => match self.idle.last() {
                    Some(&slot) => self.ring(slot),
                    None => break, // every worker is busy and looks before it goes idle (I1)
                },
            }
        }
    }

    /// Takes the task at `address` (a [`JobRef::as_ptr`]) back out of the injector's backlog
    /// (injector.rs F5) or the normal-priority queue (uncounting it), if it is still there: a
    /// submission refused after its push ([`Core::settle_injected`]). `false` if someone took
    /// it meanwhile (it is accepted).
    fn take_back(&mut self, address: *const ()) -> bool {
        let core = self.core;
        if let Some(job) = core.injector.take_back(&self.injected, address) {
            // Still in the backlog (injector.rs F5): never counted.
            self.defer_drop(job);
            return true;
        }
        let queue = &mut self.global[Priority::Normal as usize];
        let Some(position) = queue.iter().rposition(|job| job.as_ptr() == address) else {
            return false;
        };
        let job = queue.remove(position).expect("found just now");
        self.queued -= 1;
        self.global_queued -= 1;
        self.submitted -= 1;
        self.defer_drop(job);
        true
    }

    /// Starts a thread for vacant `slot` (only while the pool is open, I3), under the lock:
    /// growth is rare, and deciding and starting in one critical section means nobody ever
    /// counts on a thread that failed to start.
    pub(super) fn start_thread(
        &mut self,
        core: &crate::shim::Arc<Core>,
        slot: usize,
    ) -> Result<(), String> {
        debug_assert!(self.phase == Phase::Open && !self.slots[slot].occupied);
        let thread_id = NEXT_THREAD_ID.next();
        let interrupter = Interrupter::new();
        let handle = (core.start)(core, slot, thread_id, interrupter.clone())?;
        let overdue = core.counters.overdue() > 0;
        let state = &mut **self;
        state.slots[slot] = Slot {
            occupied: true,
            idle: false,
            seeking: true,
            thread_id,
            thread: Some(handle),
            interrupter: Some(interrupter),
            started_at: Some(Instant::now()),
            broadcasts: std::mem::take(&mut state.slots[slot].broadcasts),
            ready_lanes: std::mem::take(&mut state.slots[slot].ready_lanes),
            lanes: state.slots[slot].lanes,
            running: Vec::new(),
            batch: std::mem::take(&mut state.slots[slot].batch),
        };
        state.occupied += 1;
        state.seekers += 1;
        state.alive += 1;
        state.peak = state.peak.max(state.alive);
        core.counters.threads_started.add(1, false);
        if overdue {
            core.counters.replacements.add(1, false);
        }
        Ok(())
    }

    /// What worker `slot` (thread `thread_id`) does next: a broadcast task, then the next task
    /// of a ready lane, then the oldest global task of the highest priority; else idle, or exit
    /// if the pool is destroyed, or closing with nothing left for it (I3, I5).
    pub(super) fn next_job(&mut self, slot: usize, thread_id: u64) -> Next {
        self.stop_seeking(slot);
        if self.phase == Phase::Destroyed {
            return Next::Exit;
        }
        while let Some(job) = self.slots[slot].broadcasts.pop_front() {
            if job.header().state.claim() {
                return Next::Run(self.start_running(slot, job), None);
            }
            self.defer_drop(job);
        }
        while let Some(key) = self.slots[slot].ready_lanes.pop_front() {
            if let Some(job) = self.start_lane(key, thread_id) {
                return Next::Run(self.start_running(slot, job), Some(key));
            }
        }
        for priority in Priority::HIGHEST_FIRST {
            while let Some(job) = self.global[priority as usize].pop_front() {
                if job.header().state.claim() {
                    self.queued -= 1;
                    self.global_queued -= 1;
                    self.queue_shrank();
                    // Cheap tests first: a share needs a queue of `max_threads` or more.
                    if priority == Priority::Normal && self.global_queued >= self.slots.len() {
                        self.take_batch(slot);
                    }
                    return Next::Run(self.start_running(slot, job), None);
                }
                self.defer_drop(job);
            }
        }
        if self.take_backlog() > 0 {
            // I6: the injector's backlog fits in the queue just emptied (injector.rs F5).
            return self.next_job(slot, thread_id);
        }
        if self.batches > 0 {
            if let Some(job) = self.steal_batched(slot) {
                return Next::Run(self.start_running(slot, job), None);
            }
        }
        if self.phase == Phase::Closing && self.slots[slot].lanes == 0 {
            return Next::Exit;
        }
        Next::Idle
    }

    /// B1, B2: after worker `slot` took a normal-priority task, moves its share of the
    /// normal-priority queue (at most [`BATCH`], and at most the queue over the threads) into
    /// its batch, still `QUEUED` and counted; only while the injector's gate may be open
    /// (every slot occupied, none idle, the pool open, the queue unbounded: nobody waits on
    /// the counts for room, B4).
    #[inline(never)]
    fn take_batch(&mut self, slot: usize) {
        if !self.needs_no_decision() {
            return;
        }
        let share = BATCH.min(self.global_queued / self.core.config.max_threads);
        let state = &mut **self;
        let queue = &mut state.global[Priority::Normal as usize];
        let batch = &mut state.slots[slot].batch;
        debug_assert!(batch.is_empty());
        if batch.try_reserve(share).is_err() {
            return; // no memory for a batch: the tasks wait in the queue, as without batches
        }
        for _ in 0..share {
            match queue.pop_front() {
                Some(job) => batch.push(job),
                None => break,
            }
        }
        if !batch.is_empty() {
            state.batches += 1;
            state.batched += batch.len();
        }
    }

    /// B7: a High, keyed or broadcast task was queued; workers in a batch stop after their
    /// running task. Only lock holders write the word.
    pub(super) fn queued_urgent(&self) {
        let urgent = &self.core.urgent.0;
        urgent.store(urgent.load(Relaxed).wrapping_add(1), Relaxed);
    }

    /// Lends worker `slot` its batch's tasks (B1): valid until [`Locked::settle_batch`].
    pub(super) fn lend_batch(&self, slot: usize, loans: &mut Vec<RunningJob>) {
        loans.extend(self.slots[slot].batch.iter().map(RunningJob::lend));
    }

    /// Worker `slot` is done with its batch (B3): takes its claims off the counts and its
    /// batch's references into `spent` (empty; the caller drops them after unlocking: a
    /// result's `Drop` is user code), leaving the slot `spent`'s capacity for the next batch.
    pub(super) fn settle_batch(&mut self, slot: usize, spent: &mut Vec<JobRef>) {
        self.settle_claims(slot);
        std::mem::swap(&mut self.slots[slot].batch, spent);
        if !spent.is_empty() {
            self.batches -= 1;
            self.batched -= spent.len();
        }
    }

    /// Takes worker `slot`'s batch claims off the counts (B3, B4).
    pub(super) fn settle_claims(&mut self, slot: usize) {
        let claimed = self.core.batch_claims[slot].0.swap(0, SeqCst);
        if claimed == 0 {
            return;
        }
        // `destroy` zeroed the counts with every batch task in them (B5).
        self.queued = self.queued.saturating_sub(claimed);
        self.global_queued = self.global_queued.saturating_sub(claimed);
        self.queue_shrank();
    }

    /// Worker `slot`'s batch loop ended before its end: urgent work was queued (B7), or it
    /// unwound (B6). Settles its claims and puts the tasks still `QUEUED` back at the front of
    /// the normal-priority queue, in order, ringing an idle worker for each if one is idle.
    /// The queue kept room for them (I6): this allocates nothing.
    pub(super) fn hand_back_batch(&mut self, slot: usize) {
        let mut batch = Vec::new();
        self.settle_batch(slot, &mut batch);
        for job in batch.into_iter().rev() {
            if job.header().state.is_queued() && self.phase != Phase::Destroyed {
                self.global[Priority::Normal as usize].push_front(job);
                if let Some(&idle) = self.idle.last() {
                    self.ring(idle);
                }
            } else {
                self.defer_drop(job);
            }
        }
    }

    /// B2: a task still `QUEUED` in another worker's batch, claimed for worker `slot` and
    /// taken off the counts (the batch's owner will find it claimed and skip it): a worker
    /// about to go idle or leave takes it rather than let it wait behind another's run.
    #[cold]
    fn steal_batched(&mut self, slot: usize) -> Option<JobRef> {
        let state = &mut **self;
        let job = state.slots.iter().enumerate().find_map(|(other, s)| {
            if other == slot {
                return None;
            }
            // `claim` wins only a task whose phase is still `QUEUED`, whatever its flags.
            s.batch
                .iter()
                .find_map(|job| job.header().state.claim().then(|| job.clone()))
        })?;
        state.queued -= 1;
        state.global_queued -= 1;
        self.queue_shrank();
        Some(job)
    }

    /// Tasks waiting to start (I4, B4): the count, less the batch tasks claimed and not yet
    /// settled.
    pub(super) fn queued_now(&self) -> usize {
        let claimed: usize = self
            .core
            .batch_claims
            .iter()
            .map(|claims| claims.0.load(Relaxed))
            .sum();
        self.queued.saturating_sub(claimed)
    }

    /// Worker `slot` polls for work before it goes idle (worker.rs): it counts as a seeker
    /// meanwhile, since it will look at the queues in a moment.
    pub(super) fn start_seeking(&mut self, slot: usize) {
        if !self.slots[slot].seeking {
            self.slots[slot].seeking = true;
            self.seekers += 1;
        }
    }

    /// Worker `slot` is about to look at the queues: it no longer counts as a seeker.
    fn stop_seeking(&mut self, slot: usize) {
        if self.slots[slot].seeking {
            self.slots[slot].seeking = false;
            self.seekers -= 1;
        }
    }

    /// Moves `job` onto worker `slot`'s running list and lends it to the worker.
    fn start_running(&mut self, slot: usize, job: JobRef) -> RunningJob {
        let running = RunningJob::lend(&job);
        self.slots[slot].running.push(job);
        running
    }

    /// Worker `slot` finished running `job` (from lane `lane`): takes it off its running list
    /// and releases the lane.
    pub(super) fn finished(&mut self, slot: usize, lane: Option<u64>) {
        if let Some(job) = self.slots[slot].running.pop() {
            self.defer_drop(job);
        }
        if let Some(key) = lane {
            self.release_lane(key);
        }
    }

    /// Puts worker `slot` on the idle stack (I2); returns its bell's value to wait on.
    pub(super) fn go_idle(&mut self, slot: usize) -> u32 {
        self.slots[slot].idle = true;
        self.idle.push(slot);
        // An idle worker is room for a task (`is_full`): tell blocked submitters.
        self.queue_shrank();
        self.core.bell(slot).load(SeqCst)
    }

    /// Worker `slot` woke from its idle wait: `true` if it was rung (someone counts on it,
    /// I2). Takes it off the idle stack if it was not.
    pub(super) fn woke(&mut self, slot: usize) -> bool {
        if !self.slots[slot].idle {
            return true;
        }
        self.slots[slot].idle = false;
        if let Some(position) = self.idle.iter().rposition(|&s| s == slot) {
            self.idle.remove(position);
        }
        false
    }

    /// Worker `slot` leaves: its slot becomes vacant (its thread goes on to its exit hook,
    /// then [`Locked::exited`]). Returns when the thread started.
    pub(super) fn vacate(&mut self, core: &crate::shim::Arc<Core>, slot: usize) -> Option<Instant> {
        let state = &mut **self;
        if state.slots[slot].seeking {
            state.slots[slot].seeking = false;
            state.seekers -= 1;
        }
        let vacated = &mut state.slots[slot];
        debug_assert!(vacated.occupied && !vacated.idle);
        vacated.occupied = false;
        vacated.interrupter = None;
        let started_at = vacated.started_at.take();
        if let Some(handle) = vacated.thread.take() {
            state.exited.push((vacated.thread_id, handle, false));
        }
        // Anything still addressed to it can only be stale (or the pool is destroyed).
        let broadcasts = std::mem::take(&mut vacated.broadcasts);
        state.occupied -= 1;
        for job in broadcasts {
            self.defer_drop(job);
        }
        // Below `max_threads` again: room for a task (`is_full`); and the injector's gate
        // shuts, with a thread found for what it holds (injector.rs F1).
        self.queue_shrank();
        self.update_injector(Some(core));
        started_at
    }

    /// Thread `thread_id` (started at `started_at`) finished exiting.
    pub(super) fn exited(&mut self, thread_id: u64, started_at: Option<Instant>) {
        self.alive -= 1;
        if let Some(at) = started_at {
            self.exited_lifetime += at.elapsed();
        }
        for entry in self.exited.iter_mut() {
            if entry.0 == thread_id {
                entry.2 = true;
            }
        }
        self.raise(Signal::Exited);
    }

    /// Takes the handles of threads that finished exiting (to join after unlocking).
    pub(super) fn take_finished_threads(&mut self) -> Vec<thread::JoinHandle<()>> {
        let mut finished = Vec::new();
        let mut index = 0;
        while index < self.exited.len() {
            if self.exited[index].2 {
                finished.push(self.exited.swap_remove(index).1);
            } else {
                index += 1;
            }
        }
        finished
    }

    /// Whether lanes are bound to worker `slot`, which must then stay (I5).
    pub(super) fn has_lanes(&self, slot: usize) -> bool {
        self.slots[slot].lanes > 0
    }
}
