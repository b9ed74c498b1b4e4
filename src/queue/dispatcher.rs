//! The dispatcher: the thread of each consumer that reads jobs, runs them on the pool, and
//! finishes them — the job life cycle on the consumer's side (docs/semantics.md Q1–Q6).
//!
//! # Life of a job in a consumer
//!
//! 1. **Read.** FETCH (or RECLAIM, or RECOVER after a reconnect) hands the consumer an entry;
//!    from then on it is *held*: in the shared set the lease keeper renews, until its FINISH
//!    is answered.
//! 2. **Run.** The job becomes a pool task (`run_with`, with the job's priority and its timeout
//!    as the task's timeout) whose handle the dispatcher polls as a future: the handle's waker
//!    sends [`Event::Resolved`] to this thread, so one thread follows any number of running
//!    jobs without blocking on any of them. A pool that is full keeps the task in a local
//!    backlog until a slot frees.
//! 3. **Finish.** The handle resolves with the handler's value, its error, a panic, or
//!    `TimedOut` (the pool set the task's cancel flag when the timeout passed: Q4); each
//!    becomes a FINISH (ok / retry / dead) queued in the outbox.
//! 4. **Exchange.** Each turn of the loop sends the outbox and, when the consumer has free
//!    slots, the next FETCH in one pipeline: one round trip acknowledges what finished and
//!    reads what comes next (BullMQ's "fetch next on completion", for any number of jobs).
//!    The round's successful jobs ride inside the FETCH itself (one script, one fence check,
//!    one `XACK` per stream); failures, retries and releases go as FINISHes before
//!    it, and successes without a FETCH to ride in as one FINISH_OKS.
//!
//! Slots: the consumer holds at most `concurrency + prefetch` jobs running or waiting to
//! start (its *window*); jobs being finished do not count (their FETCH for the freed slots
//! travels in the same round trip). The waiting ones sit in the pool's queue when the pool
//! has no more threads than `concurrency` (so still no more than `concurrency` run at once),
//! else in the local backlog: either way a thread that finishes a job takes the next one
//! without a round trip to Redis or a wake-up of its own.
//!
//! Batches: while the queue has more, the dispatcher reads only once `prefetch` (at least
//! one) slots of the window are free, and keeps the successful finishes meanwhile, so one
//! FETCH acknowledges and reads a batch. A finish waits at most until the poll timer's
//! FETCH; failures, retries and releases are sent at once, and so are successes once the
//! queue looked empty. A FETCH that came back short means the queue is empty: the
//! dispatcher arms the wake-up reader
//! (`wakeup.rs`) and waits for events — a task that resolved, the reader's wake-up, the
//! poll timer (promotes delayed jobs; at most `poll` apart), the next due delayed job, the
//! reclaim timer (half a lease), a lease the keeper found lost, or `close`.
//!
//! # Closing
//!
//! `close(timeout)`: stop reading; jobs not started yet (backlog, or cancelled in the pool
//! before they started) are released — given back to the queue unchanged; running ones finish
//! and are acknowledged (or retried) as usual. If the timeout passes first, the ones still
//! running get their cancel flag and are released too (their later result is dropped). Every
//! message to Redis after the deadline is tried once: if Redis is out of reach then, the jobs
//! stay pending for this consumer and are reclaimed by others once their lease expires.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use redis::{Cmd, Value};

use super::clock::{later, millis};
use super::delivery::{self, Delivery, EntryRef};
use super::effects::Effects;
use super::error::{JobError, QueueError};
use super::event::Event;
use super::finish::{self, Finish, Mode};
use super::job::{Job, JobMeta};
use super::keys::{create_group, GROUP};
use super::link::{Link, LinkError};
use super::reply::{self, Reply};
use super::scripts;
use super::shared::Shared;
use super::stats::bump;
use super::wakeup::WakeupControl;
use crate::pool::{PoolError, TaskContext, TaskError, TaskHandle, TaskOptions, WorkerPool};

/// What a handler's attempt gives.
pub(super) type Outcome = Result<Effects, JobError>;

/// A consumer's handler, type-erased.
pub(super) type Handler = dyn Fn(&Job, &TaskContext<'_>) -> Outcome + Send + Sync;

/// The pool task of one job.
type Task = Box<dyn for<'a, 'b> FnOnce(&'a TaskContext<'b>) -> Outcome + Send>;

/// Sends [`Event::Resolved`] for one task.
struct TaskWaker {
    key: u64,
    events: Sender<Event>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        let _ = self.events.send(Event::Resolved(self.key));
    }
}

/// A job waiting for the pool to accept it.
struct Prepared {
    entry: EntryRef,
    meta: JobMeta,
    task: Task,
}

/// A job in the pool.
struct Running {
    handle: TaskHandle<Outcome>,
    waker: Waker,
    entry: EntryRef,
    meta: JobMeta,
    /// Another consumer owns it now: its result is dropped.
    lost: bool,
}

/// Successful finishes a call carries at most: the script unpacks a call's ids into one
/// command.
const OKS_PER_CALL: usize = 500;

/// What one command of an exchange was.
enum Ask {
    /// Create the consumer group of level stream `n` (after `NOGROUP`: the server lost it).
    Group(usize),
    Recover,
    Finish(Finish),
    /// Two or more successful finishes, in one FINISH_OKS.
    FinishOks(Vec<Finish>),
    /// A read of up to `count` entries, after finishing `oks` (successful finishes).
    Fetch {
        count: usize,
        oks: Vec<Finish>,
    },
    Reclaim(usize),
}

impl Ask {
    /// The finishes this ask carries.
    fn into_finishes(self) -> Vec<Finish> {
        match self {
            Ask::Finish(finish) => vec![finish],
            Ask::FinishOks(finishes) => finishes,
            Ask::Fetch { oks, .. } => oks,
            _ => Vec::new(),
        }
    }
}

/// Why the consumer stops on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Fenced,
    PoolClosed,
}

/// The dispatcher's state (see the module docs).
pub(super) struct Dispatcher {
    shared: Arc<Shared>,
    link: Link,
    pool: Arc<WorkerPool>,
    handler: Arc<Handler>,
    events_tx: Sender<Event>,
    events: Receiver<Event>,
    wakeup: Arc<WakeupControl>,
    /// Whether the lease keeper and the wake-up reader were told to stop (see
    /// [`stop_helpers`](Dispatcher::stop_helpers)).
    helpers_stopped: bool,
    running: HashMap<u64, Running>,
    next_key: u64,
    backlog: VecDeque<Prepared>,
    outbox: Vec<Finish>,
    cursors: [String; 3],
    last_ids: [String; 3],
    /// The last FETCH filled every slot it asked for: the queue may hold more.
    more: bool,
    armed: bool,
    need_recover: bool,
    need_groups: bool,
    next_poll: Instant,
    next_reclaim: Instant,
    next_due: Option<Instant>,
    /// The pool refused a task (full): try again at this time, or when a task resolves.
    pool_retry_at: Option<Instant>,
    closing: bool,
    stop: Option<Stop>,
    released_at_deadline: usize,
    abandoned: usize,
}

impl Dispatcher {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        shared: Arc<Shared>,
        link: Link,
        pool: Arc<WorkerPool>,
        handler: Arc<Handler>,
        events_tx: Sender<Event>,
        events: Receiver<Event>,
        wakeup: Arc<WakeupControl>,
    ) -> Dispatcher {
        let now = Instant::now();
        Dispatcher {
            next_reclaim: now,
            shared,
            link,
            pool,
            handler,
            events_tx,
            events,
            wakeup,
            helpers_stopped: false,
            running: HashMap::new(),
            next_key: 0,
            backlog: VecDeque::new(),
            outbox: Vec::new(),
            cursors: ["0-0".into(), "0-0".into(), "0-0".into()],
            last_ids: ["0-0".into(), "0-0".into(), "0-0".into()],
            more: true,
            armed: false,
            need_recover: true,
            need_groups: false,
            next_poll: now,
            next_due: None,
            pool_retry_at: None,
            closing: false,
            stop: None,
            released_at_deadline: 0,
            abandoned: 0,
        }
    }

    /// The loop; returns when the consumer has closed (or stopped on its own).
    pub(super) fn run(mut self) -> Result<(), QueueError> {
        loop {
            self.take_events(Duration::ZERO);
            if self.stop == Some(Stop::Fenced) {
                self.drop_everything();
                break;
            }
            if self.stop == Some(Stop::PoolClosed) && !self.closing {
                self.begin_close();
            }
            self.enforce_close_deadline();
            self.start_backlog();
            if self.exchange().is_err() {
                break; // closing, deadline passed, Redis out of reach
            }
            if self.closing
                && self.running.is_empty()
                && self.backlog.is_empty()
                && self.outbox.is_empty()
            {
                break;
            }
            self.arm_reader();
            let wait = self.until_next_timer();
            self.take_events(wait);
        }
        self.wind_down()
    }

    /// Free slots: the window (`concurrency + prefetch`) minus the jobs running or waiting
    /// to start.
    fn free(&self) -> usize {
        let settings = &self.shared.settings;
        (settings.concurrency + settings.prefetch)
            .saturating_sub(self.running.len() + self.backlog.len())
    }

    /// The free slots a read waits for while the queue has more: a batch.
    fn refill(&self) -> usize {
        self.shared.settings.prefetch.max(1)
    }

    /// Whether the queue may have more for a consumer that still reads.
    fn more_to_read(&self) -> bool {
        self.more && !self.closing && self.stop.is_none()
    }

    /// Whether the next exchange reads: the queue may have more and a batch of slots is free.
    fn wants_read(&self) -> bool {
        self.more_to_read() && self.free() >= self.refill()
    }

    /// Whether successful finishes wait for the next read to ride in: it is coming, because
    /// the queue has more and jobs are running (their slots fill the batch), or the poll
    /// timer's read at the latest.
    fn oks_wait(&self) -> bool {
        self.more_to_read()
            && !self.need_recover
            && self.free() < self.refill()
            && !self.running.is_empty()
    }

    /// How many of this consumer's jobs the pool may hold (running or queued): all of the
    /// window when the pool cannot run more than `concurrency` at once anyway, else
    /// `concurrency` (the rest waits in the backlog).
    fn pool_depth(&self) -> usize {
        let settings = &self.shared.settings;
        if self.pool.max_threads() <= settings.concurrency {
            settings.concurrency + settings.prefetch
        } else {
            settings.concurrency
        }
    }

    fn take_events(&mut self, wait: Duration) {
        let first = if wait.is_zero() {
            self.events.try_recv().ok()
        } else {
            self.events.recv_timeout(wait).ok()
        };
        if let Some(event) = first {
            self.on_event(event);
            while let Ok(event) = self.events.try_recv() {
                self.on_event(event);
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Resolved(key) => {
                self.pool_retry_at = None; // a slot may have freed
                self.poll_task(key);
            }
            Event::Wake => {
                self.armed = false;
                self.more = true;
            }
            Event::LeaseLost(entries) => self.lease_lost(entries),
            Event::Fenced => self.stop = Some(Stop::Fenced),
            Event::Close => {
                if !self.closing {
                    self.begin_close();
                }
            }
        }
    }

    /// Polls task `key`'s handle with its waker; finishes it if it resolved.
    fn poll_task(&mut self, key: u64) {
        let Some(running) = self.running.get_mut(&key) else {
            return;
        };
        let mut context = Context::from_waker(&running.waker);
        if let Poll::Ready(result) = Pin::new(&mut running.handle).poll(&mut context) {
            let running = self.running.remove(&key).expect("found above");
            self.resolved(running, result);
        }
    }

    /// Turns a resolved task into its FINISH.
    fn resolved(&mut self, running: Running, result: Result<Outcome, TaskError>) {
        if running.lost {
            return; // counted when the lease was found lost; the new owner finishes it
        }
        let Running { entry, meta, .. } = running;
        let finish = match result {
            Ok(Ok(effects)) => Finish::ok(entry, meta, effects),
            Ok(Err(error)) => {
                let permanent = error.is_permanent();
                Finish::failed(entry, meta, error.message().to_string(), permanent)
            }
            Err(TaskError::TimedOut) => {
                let timeout = meta.timeout.unwrap_or_default();
                Finish::failed(entry, meta, format!("timed out after {timeout:?}"), false)
            }
            Err(TaskError::Panicked(message)) => {
                Finish::failed(entry, meta, format!("panicked: {message}"), false)
            }
            Err(TaskError::PoolDestroyed) => {
                self.stop.get_or_insert(Stop::PoolClosed);
                Finish::release(entry, Some(meta))
            }
            // Cancelled (by close, before it started), Interrupted: not the job's failure.
            Err(_) => Finish::release(entry, Some(meta)),
        };
        self.outbox.push(finish);
    }

    /// Takes an entry a script handed out: held from now on, then run (or finished at once).
    fn accept(&mut self, delivery: Delivery) {
        let Delivery {
            entry,
            duplicate,
            job,
        } = delivery;
        if !self.shared.held().insert(entry.clone()) {
            // Delivered again while this consumer holds it (the group was deleted and made
            // again, or RECLAIM found its lease lapsed): the run it holds finishes it. A second
            // run would share that run's lease, unrenewed once the first finish is answered,
            // so it counts `lost` at once instead (docs/semantics.md Q11).
            bump(&self.shared.counters.lost);
            return;
        }
        if self.closing {
            let meta = job.ok().map(|job| job.meta);
            self.outbox.push(Finish::release(entry, meta));
            return;
        }
        match job {
            Err(message) => self.outbox.push(Finish::malformed(entry, message)),
            // Its dedupe key is done: acknowledge without running (FINISH skips the effects).
            Ok(job) if duplicate => self
                .outbox
                .push(Finish::ok(entry, job.meta, Effects::new())),
            Ok(job) => {
                let meta = job.meta.clone();
                let handler = Arc::clone(&self.handler);
                let task: Task = Box::new(move |ctx| handler(&job, ctx));
                self.backlog.push_back(Prepared { entry, meta, task });
            }
        }
    }

    /// Submits the backlog to the pool, in order, until the pool refuses or holds
    /// `pool_depth` of our jobs.
    fn start_backlog(&mut self) {
        if self.pool_retry_at.is_some_and(|at| Instant::now() < at) {
            return;
        }
        self.pool_retry_at = None;
        while self.running.len() < self.pool_depth() {
            let Some(prepared) = self.backlog.pop_front() else {
                return;
            };
            let Prepared { entry, meta, task } = prepared;
            let mut options = TaskOptions::new().priority(meta.priority);
            if let Some(timeout) = meta.timeout {
                options = options.timeout(timeout);
            }
            match self.pool.run_with(options, task) {
                Ok(handle) => self.track(handle, entry, meta),
                Err(PoolError::QueueFull(task)) | Err(PoolError::SpawnFailed { task, .. }) => {
                    self.backlog.push_front(Prepared { entry, meta, task });
                    self.pool_retry_at = Some(Instant::now() + Duration::from_millis(10));
                    return;
                }
                // A pool made before a fork, used by a consumer made in the forked child: as
                // good as closed there (docs/semantics.md X7).
                Err(PoolError::Closed(task) | PoolError::ForkedHandle(task)) => {
                    drop(task);
                    self.outbox.push(Finish::release(entry, Some(meta)));
                    self.stop.get_or_insert(Stop::PoolClosed);
                }
            }
        }
    }

    /// Follows a submitted task: polls it once (registering its waker).
    fn track(&mut self, handle: TaskHandle<Outcome>, entry: EntryRef, meta: JobMeta) {
        let key = self.next_key;
        self.next_key += 1;
        let waker = Waker::from(Arc::new(TaskWaker {
            key,
            events: self.events_tx.clone(),
        }));
        self.running.insert(
            key,
            Running {
                handle,
                waker,
                entry,
                meta,
                lost: false,
            },
        );
        self.poll_task(key);
    }

    /// The keeper found `entries` owned by someone else: cancel and forget them.
    fn lease_lost(&mut self, entries: Vec<EntryRef>) {
        for entry in entries {
            if !self.shared.held().remove(&entry) {
                continue; // finished meanwhile
            }
            bump(&self.shared.counters.lost);
            for running in self.running.values_mut() {
                if running.entry == entry {
                    running.lost = true;
                    running.handle.cancel();
                }
            }
            self.backlog.retain(|p| p.entry != entry);
            self.outbox.retain(|f| f.entry != entry);
        }
    }

    /// `close` began: stop reading, release what has not started.
    fn begin_close(&mut self) {
        self.closing = true;
        self.wakeup.stop();
        for prepared in std::mem::take(&mut self.backlog) {
            self.outbox
                .push(Finish::release(prepared.entry, Some(prepared.meta)));
        }
        // Queued in the pool: taken back before it starts, it resolves `Cancelled` and is
        // released then. One that runs already is left alone (no cancel flag) to finish.
        for running in self.running.values() {
            running.handle.cancel_if_queued();
        }
    }

    /// After `close`'s deadline: running jobs get their cancel flag and are released.
    fn enforce_close_deadline(&mut self) {
        if !self.closing || self.running.is_empty() || !self.shared.close_deadline_passed() {
            return;
        }
        for (_, running) in self.running.drain() {
            running.handle.cancel();
            if !running.lost {
                self.released_at_deadline += 1;
                self.outbox
                    .push(Finish::release(running.entry, Some(running.meta)));
            }
        }
    }

    /// Fenced: another consumer owns the name, so none of these jobs are ours to finish.
    fn drop_everything(&mut self) {
        for running in self.running.values() {
            running.handle.cancel();
        }
        self.running.clear();
        self.backlog.clear();
        self.outbox.clear();
        self.shared.held().clear();
    }

    /// Arms the wake-up reader when the queue looked empty and a slot is free.
    fn arm_reader(&mut self) {
        if !self.closing && self.stop.is_none() && !self.more && !self.armed && self.free() > 0 {
            self.armed = true;
            self.wakeup.arm(self.last_ids.clone());
        }
    }

    /// How long to wait for events before the next timer.
    fn until_next_timer(&self) -> Duration {
        let now = Instant::now();
        if self.outbox_due() || self.wants_read() {
            return Duration::ZERO;
        }
        let mut next = now + Duration::from_secs(1);
        if !self.closing {
            next = next.min(self.next_poll).min(self.next_reclaim);
            if let Some(due) = self.next_due {
                next = next.min(due);
            }
        } else if let Some(Some(deadline)) = self.shared.closing() {
            next = next.min(deadline);
        }
        if !self.backlog.is_empty() && self.running.len() < self.pool_depth() {
            next = next.min(self.pool_retry_at.unwrap_or(now));
        }
        next.saturating_duration_since(now)
    }

    /// Whether the outbox has finishes to send now (successful ones may wait: `oks_wait`).
    fn outbox_due(&self) -> bool {
        if self.oks_wait() {
            self.outbox.iter().any(|f| !Self::rides_fetch(f))
        } else {
            !self.outbox.is_empty()
        }
    }

    /// A successful finish: FETCH can carry it.
    fn rides_fetch(finish: &Finish) -> bool {
        finish.mode == Mode::Ok && finish.meta.is_some()
    }

    /// One round trip: groups / recovery / finishes / one read, as needed. `Err` once closing's
    /// deadline passed with Redis out of reach (what was not sent is abandoned).
    fn exchange(&mut self) -> Result<(), ()> {
        let now = Instant::now();
        let mut asks = Vec::new();
        if self.need_groups {
            asks.extend((0..3).map(Ask::Group));
        }
        if self.need_recover && self.stop.is_none() {
            asks.push(Ask::Recover);
        }
        let oks_wait = self.oks_wait();
        let wants_read = self.wants_read();
        let (mut oks, others): (Vec<Finish>, Vec<Finish>) =
            self.outbox.drain(..).partition(Self::rides_fetch);
        let mut fetch = None;
        if !self.closing && self.stop.is_none() && !self.need_recover {
            let free = self.free();
            let settings = &self.shared.settings;
            if now >= self.next_reclaim && free > 0 {
                asks.push(Ask::Reclaim(free));
                self.next_reclaim = later(now, settings.lease / 2);
            } else if wants_read
                || now >= self.next_poll
                || self.next_due.is_some_and(|due| now >= due)
            {
                // The round's successful jobs ride with the read: one script, one fence check.
                let rest = oks.split_off(oks.len().min(OKS_PER_CALL));
                fetch = Some(Ask::Fetch {
                    count: free,
                    oks: std::mem::replace(&mut oks, rest),
                });
                self.next_poll = later(now, settings.poll);
                self.next_due = None;
            }
        }
        if oks_wait && fetch.is_none() && asks.is_empty() && others.is_empty() {
            // The next read carries them (module docs, "Batches").
            self.outbox = oks;
            return Ok(());
        }
        if oks.len() >= 2 {
            let mut oks = oks.into_iter().peekable();
            while oks.peek().is_some() {
                asks.push(Ask::FinishOks(oks.by_ref().take(OKS_PER_CALL).collect()));
            }
        } else {
            asks.extend(oks.into_iter().map(Ask::Finish));
        }
        asks.extend(others.into_iter().map(Ask::Finish));
        asks.extend(fetch);
        if asks.is_empty() {
            return Ok(());
        }
        let commands: Vec<Cmd> = asks.iter().map(|ask| self.command(ask)).collect();
        let shared = Arc::clone(&self.shared);
        let answer = self
            .link
            .request(&commands, &|| shared.close_deadline_passed());
        if self.link.take_fresh() {
            self.need_recover = true;
        }
        let values = match answer {
            Ok(values) => values,
            Err(LinkError::GaveUp { .. }) => {
                for finish in asks.into_iter().flat_map(Ask::into_finishes) {
                    self.shared.held().remove(&finish.entry);
                    self.abandoned += 1;
                }
                return Err(());
            }
            Err(LinkError::Fatal(_)) => {
                // Refused by the server (credentials changed?): keep the finishes, try later.
                let finishes: Vec<Finish> = asks.into_iter().flat_map(Ask::into_finishes).collect();
                self.outbox.extend(finishes);
                self.link.disconnect();
                std::thread::sleep(self.shared.config.reconnect_max);
                return Ok(());
            }
        };
        for (ask, value) in asks.into_iter().zip(values) {
            if reply::error_code(&value) == Some("NOGROUP") {
                self.need_groups = true;
            }
            match ask {
                Ask::Group(_) => self.need_groups = false,
                Ask::Recover => {
                    if reply::server_error(&value).is_none() {
                        self.need_recover = false;
                    }
                    let _ = self.on_recovered(value);
                }
                Ask::Finish(finish) => self.on_finished(finish, value),
                Ask::FinishOks(finishes) => self.on_finished_oks(finishes, value),
                Ask::Fetch { count, oks } => self.on_fetched(count, oks, value),
                Ask::Reclaim(count) => {
                    let _ = self.on_reclaimed(count, value);
                }
            }
        }
        Ok(())
    }

    fn command(&self, ask: &Ask) -> Cmd {
        let shared = &self.shared;
        let keys = &shared.config.keys;
        let settings = &shared.settings;
        let live = keys.live(&settings.name);
        let [high, normal, low] = &keys.streams;
        let who = [
            keys.prefix.as_str(),
            GROUP,
            settings.name.as_str(),
            settings.token.as_str(),
        ];
        match ask {
            Ask::Group(level) => create_group(&keys.streams[*level]),
            Ask::Recover => {
                let most = settings.max_deliveries.to_string();
                let args = [who[0], who[1], who[2], who[3], most.as_str()];
                scripts::recover().call(&[high, normal, low, &live], &args[..])
            }
            Ask::Finish(finish) => finish.command(shared),
            Ask::FinishOks(finishes) => finish::oks_command(finishes, shared),
            Ask::Fetch { count, oks } => {
                let mut args: Vec<Vec<u8>> = who.iter().map(|s| s.as_bytes().to_vec()).collect();
                args.push(count.to_string().into_bytes());
                args.push(settings.promote_limit.to_string().into_bytes());
                args.push(millis(shared.config.dedupe_ttl).to_string().into_bytes());
                finish::push_oks(oks, &mut args);
                let [acked_high, acked_normal, acked_low] = &keys.acked;
                scripts::fetch().call(
                    &[
                        high,
                        normal,
                        low,
                        &keys.delayed,
                        &live,
                        &keys.stats,
                        &keys.consumers,
                        acked_high,
                        acked_normal,
                        acked_low,
                        &keys.dead,
                    ],
                    args,
                )
            }
            Ask::Reclaim(count) => {
                let mut args: Vec<String> = who.iter().map(|s| s.to_string()).collect();
                args.push(millis(settings.lease).to_string());
                args.push(count.to_string());
                args.push(settings.max_deliveries.to_string());
                args.extend(self.cursors.iter().cloned());
                scripts::reclaim().call(
                    &[
                        high,
                        normal,
                        low,
                        &live,
                        &keys.dead,
                        &keys.stats,
                        &keys.consumers,
                    ],
                    args,
                )
            }
        }
    }

    fn status(items: &mut std::vec::IntoIter<Value>) -> Reply<String> {
        reply::text(reply::next(items, "status")?)
    }

    /// The answer to a FETCH: the statuses of the finishes it carried, then what it read.
    fn on_fetched(&mut self, count: usize, oks: Vec<Finish>, value: Value) {
        if reply::server_error(&value).is_some() {
            // Nothing ran (e.g. NOGROUP): each finish as if alone; the read found nothing.
            for finish in oks {
                self.on_finished(finish, value.clone());
            }
            self.more = false;
            return;
        }
        if self.read_fetched(count, oks, value).is_err() {
            self.more = false;
        }
    }

    fn read_fetched(&mut self, count: usize, oks: Vec<Finish>, value: Value) -> Reply<()> {
        let mut items = reply::array(value)?.into_iter();
        if Self::status(&mut items)? == "fenced" {
            self.stop = Some(Stop::Fenced);
            self.forget(oks);
            return Ok(());
        }
        let next_due = reply::int(reply::next(&mut items, "next due")?)?;
        let mut last_ids: [String; 3] = Default::default();
        for id in &mut last_ids {
            *id = reply::text(reply::next(&mut items, "last id")?)?;
        }
        let statuses = reply::array(reply::next(&mut items, "statuses")?)?;
        self.counting_failed(reply::next(&mut items, "counting error")?);
        self.dead_letter_failed(reply::next(&mut items, "dead-letter error")?);
        self.finished_oks(oks, statuses);
        let mut got = 0;
        for item in items {
            let delivery = delivery::parse(item)?;
            got += 1;
            bump(&self.shared.counters.fetched);
            self.accept(delivery);
        }
        // A FETCH of 0 (a poll while every slot is busy: it promotes due jobs) says nothing
        // about what is waiting: `more` stays as it was. Only a short FETCH emptied the queue
        // and answered the last ids the wake-up reader waits after.
        if count > 0 {
            self.more = got == count;
            if got < count {
                self.last_ids = last_ids;
            }
        }
        if next_due >= 0 {
            let due = later(Instant::now(), Duration::from_millis(next_due as u64));
            self.next_due = Some(self.next_due.map_or(due, |d| d.min(due)));
        }
        Ok(())
    }

    fn on_reclaimed(&mut self, count: usize, value: Value) -> Reply<()> {
        let mut items = reply::array(value)?.into_iter();
        if Self::status(&mut items)? == "fenced" {
            self.stop = Some(Stop::Fenced);
            return Ok(());
        }
        bump(&self.shared.counters.reclaim_scans);
        for cursor in &mut self.cursors {
            *cursor = reply::text(reply::next(&mut items, "cursor")?)?;
        }
        self.counting_failed(reply::next(&mut items, "counting error")?);
        self.dead_letter_failed(reply::next(&mut items, "dead-letter error")?);
        if reply::names_an_error(reply::next(&mut items, "missing-group error")?) {
            self.need_groups = true; // a level's group is gone: make it again (Q11)
        }
        let mut got = 0;
        for item in items {
            let delivery = delivery::parse(item)?;
            got += 1;
            bump(&self.shared.counters.reclaimed);
            self.accept(delivery);
        }
        if got == count {
            self.next_reclaim = Instant::now(); // maybe more stalled entries: look again soon
        }
        Ok(())
    }

    fn on_recovered(&mut self, value: Value) -> Reply<()> {
        let mut items = reply::array(value)?.into_iter();
        if Self::status(&mut items)? == "fenced" {
            self.stop = Some(Stop::Fenced);
            return Ok(());
        }
        for item in items {
            let delivery = delivery::parse(item)?;
            if self.shared.held().contains(&delivery.entry) {
                continue;
            }
            bump(&self.shared.counters.recovered);
            self.accept(delivery);
        }
        Ok(())
    }

    /// The answer to a FINISH_OKS: one status per finish, handled as FINISH's would be.
    fn on_finished_oks(&mut self, finishes: Vec<Finish>, value: Value) {
        if reply::server_error(&value).is_some() {
            // Not an effect (those are caught per entry): e.g. NOGROUP. Each as if alone.
            for finish in finishes {
                self.on_finished(finish, value.clone());
            }
            return;
        }
        let mut items = reply::array(value).unwrap_or_default().into_iter();
        let status = items.next().and_then(|s| reply::text(s).ok());
        if status.as_deref() == Some("fenced") {
            // Nothing of ours to finish any more.
            self.stop = Some(Stop::Fenced);
            self.forget(finishes);
            return;
        }
        if let Some(error) = items.next() {
            self.counting_failed(error);
        }
        let statuses = items
            .next()
            .and_then(|s| reply::array(s).ok())
            .unwrap_or_default();
        self.finished_oks(finishes, statuses);
    }

    /// A script's counting error (`''`, or absent, if none): its move was made, the queue's
    /// counts missed it (docs/semantics.md Q11).
    fn counting_failed(&self, error: Value) {
        if reply::names_an_error(error) {
            bump(&self.shared.counters.stats_unavailable);
        }
    }

    /// A script's dead-letter error (`''` if none): the dead stream refused a job, which
    /// stayed where it was, to be tried again (docs/semantics.md Q11).
    fn dead_letter_failed(&self, error: Value) {
        if reply::names_an_error(error) {
            bump(&self.shared.counters.dead_letter_unavailable);
        }
    }

    /// Stops holding the entries of `finishes`: their leases expire and others reclaim them.
    fn forget(&mut self, finishes: Vec<Finish>) {
        for finish in finishes {
            self.shared.held().remove(&finish.entry);
        }
    }

    /// One status per successful finish (FINISH_OKS's or FETCH's answer), each handled as
    /// FINISH's would be.
    fn finished_oks(&mut self, finishes: Vec<Finish>, statuses: Vec<Value>) {
        if statuses.len() != finishes.len() {
            // An answer we cannot read: leave the entries to expire and be reclaimed.
            self.forget(finishes);
            return;
        }
        for (finish, item) in finishes.into_iter().zip(statuses) {
            let mut parts = reply::array(item.clone()).unwrap_or_default().into_iter();
            let status = parts.next().and_then(|s| reply::text(s).ok());
            if status.as_deref() == Some("failed") {
                let message = parts
                    .next()
                    .and_then(|m| reply::text(m).ok())
                    .unwrap_or_default();
                if let Some(meta) = finish.meta {
                    // An effect failed (Redis ran the ones before it): a failed attempt.
                    let error = format!("effects failed: {message}");
                    self.outbox
                        .push(Finish::failed(finish.entry, meta, error, false));
                }
                continue;
            }
            self.on_finished(finish, item);
        }
    }

    fn on_finished(&mut self, finish: Finish, value: Value) {
        let counters = &self.shared.counters;
        if let Some(message) = reply::server_error(&value) {
            if reply::error_code(&value) == Some("NOGROUP") {
                self.outbox.push(finish); // the stream was recreated: try again
                return;
            }
            if finish.mode == Mode::Ok {
                if let Some(meta) = finish.meta {
                    // An effect failed (Redis ran the ones before it): a failed attempt.
                    let error = format!("effects failed: {message}");
                    self.outbox
                        .push(Finish::failed(finish.entry, meta, error, false));
                    return;
                }
            }
            if finish.mode == Mode::Dead {
                // The job stays in its stream (the dead stream refused it, Q11).
                bump(&counters.dead_letter_unavailable);
            }
            // Cannot be finished: stop renewing it; its lease expires and RECLAIM takes it
            // (and dead-letters it once it stalled too often).
            self.shared.held().remove(&finish.entry);
            return;
        }
        let mut items = reply::array(value).unwrap_or_default().into_iter();
        let status = items
            .next()
            .and_then(|status| reply::text(status).ok())
            .unwrap_or_default();
        if let Some(error) = items.next() {
            self.counting_failed(error);
        }
        match status.as_str() {
            "ok" => bump(&counters.completed),
            "duplicate" => {
                bump(&counters.completed);
                bump(&counters.deduplicated);
            }
            "retried" => {
                bump(&counters.failed);
                bump(&counters.retried);
                if finish.delay.is_zero() {
                    self.more = true;
                } else {
                    let due = later(Instant::now(), finish.delay);
                    self.next_due = Some(self.next_due.map_or(due, |d| d.min(due)));
                }
            }
            "dead" => {
                bump(&counters.failed);
                bump(&counters.dead_lettered);
            }
            "released" => bump(&counters.released),
            "lost" => bump(&counters.lost),
            "fenced" => {
                self.stop = Some(Stop::Fenced);
                return;
            }
            _ => {} // "gone": the entry was deleted by someone else
        }
        self.shared.held().remove(&finish.entry);
    }

    /// Stops the helpers and reports how the consumer ended.
    fn wind_down(mut self) -> Result<(), QueueError> {
        self.stop_helpers();
        match self.stop {
            Some(Stop::Fenced) => {
                return Err(QueueError::Fenced {
                    consumer: self.shared.settings.name.clone(),
                })
            }
            Some(Stop::PoolClosed) => return Err(QueueError::PoolClosed),
            None => {}
        }
        if self.released_at_deadline > 0 || self.abandoned > 0 {
            return Err(QueueError::CloseTimedOut {
                released: self.released_at_deadline,
                abandoned: self.abandoned,
            });
        }
        Ok(())
    }

    /// Tells the lease keeper and the wake-up reader to stop, and unblocks the reader's XREAD
    /// (it may be in the middle of its block time), waiting at most one blocking read's
    /// timeout for it to leave. Once only; also on the way out of a dispatcher that panicked
    /// (see `Drop`), so that `close` and `drop` of the consumer, which join those threads,
    /// never wait for ever.
    fn stop_helpers(&mut self) {
        if std::mem::replace(&mut self.helpers_stopped, true) {
            return;
        }
        self.wakeup.stop();
        self.shared.stop_helpers();
        let started = Instant::now();
        let limit = super::link::read_timeout(
            self.shared.settings.block,
            self.shared.config.command_timeout,
        );
        while !self
            .shared
            .reader_exited
            .load(std::sync::atomic::Ordering::SeqCst)
            && started.elapsed() < limit
        {
            let id = self
                .shared
                .reader_client
                .load(std::sync::atomic::Ordering::SeqCst);
            if id != 0 {
                let unblock = redis::cmd("CLIENT").arg("UNBLOCK").arg(id).clone();
                let _ = self.link.request(&[unblock], &|| true);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Dispatcher {
    /// A dispatcher that returns has stopped the helpers already; one that panicked has not.
    fn drop(&mut self) {
        self.stop_helpers();
    }
}
