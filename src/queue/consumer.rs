//! [`ConsumerBuilder`] and [`Consumer`]: a consumer of a queue that runs its jobs on a
//! [`WorkerPool`] — three threads (dispatcher, lease keeper, wake-up reader), three connections.

use std::fmt;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::Config;
use super::dispatcher::{Dispatcher, Handler};
use super::effects::Effects;
use super::error::{JobError, QueueError};
use super::event::Event;
use super::job::Job;
use super::keys;
use super::lease;
use super::link::{Link, LinkError};
use super::random;
use super::shared::{Settings, Shared};
use super::stats::ConsumerStats;
use super::wakeup::{self, WakeupControl};
use crate::pool::{TaskContext, WorkerPool};
use crate::region::MadeIn;

/// The fewest jobs a consumer holds beyond its concurrency by default (`prefetch`).
const DEFAULT_PREFETCH: usize = 8;

/// Configures a consumer: [`JobQueue::consumer`](super::JobQueue::consumer).
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use sharedbuf::pool::WorkerPool;
/// use sharedbuf::queue::{JobQueue, JobError};
///
/// let queue = JobQueue::connect("redis://127.0.0.1:6379", "thumbnails")?;
/// let pool = Arc::new(WorkerPool::builder().max_threads(8).build()?);
/// let consumer = queue
///     .consumer(&format!("{}-{}", "host-a", std::process::id()))
///     .concurrency(8)                       // jobs held at once
///     .lease(Duration::from_secs(30))       // reclaimed 30 s after this process dies
///     .run_on(&pool, |job, ctx| {
///         for chunk in job.payload().chunks(4096) {
///             if ctx.is_cancelled() {      // its timeout passed, or the consumer is closing
///                 return Err(JobError::retry("stopped"));
///             }
///             let _ = chunk; // ... work ...
///         }
///         Ok(())
///     })?;
/// consumer.close(Some(Duration::from_secs(30)))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `run_on` is called"]
pub struct ConsumerBuilder {
    config: Arc<Config>,
    name: String,
    concurrency: usize,
    prefetch: Option<usize>,
    lease: Duration,
    block: Duration,
    poll: Duration,
    max_stalls: u32,
}

impl ConsumerBuilder {
    pub(super) fn new(config: Arc<Config>, name: &str) -> ConsumerBuilder {
        ConsumerBuilder {
            config,
            name: name.to_string(),
            concurrency: 1,
            prefetch: None,
            lease: Duration::from_secs(30),
            block: Duration::from_secs(2),
            poll: Duration::from_secs(1),
            max_stalls: 5,
        }
    }

    /// How many jobs of this consumer run at once at most (default 1). Usually the pool's
    /// `max_threads`.
    pub fn concurrency(mut self, jobs: usize) -> ConsumerBuilder {
        self.concurrency = jobs;
        self
    }

    /// How many jobs the consumer holds beyond `concurrency`, ready for the next free slot
    /// (default: `concurrency`, at least 8). A slot that frees starts its next job at once,
    /// without waiting for a round trip to Redis, and the consumer reads and acknowledges
    /// jobs in batches of this many: fewer round trips and script calls a job. `0` holds
    /// no more than runs — for long jobs spread over many consumers, where a held job waits
    /// on a busy machine while another is idle (a held job is still leased, renewed and
    /// given back on close, as a running one is).
    pub fn prefetch(mut self, jobs: usize) -> ConsumerBuilder {
        self.prefetch = Some(jobs);
        self
    }

    /// How long a job stays with this consumer after it stopped renewing (default 30 s; at
    /// least 30 ms): the consumer renews every third of it, and other consumers reclaim a
    /// job whose lease expired. Shorter finds dead consumers sooner; longer tolerates longer
    /// pauses (a stop-the-world, Redis out of reach).
    pub fn lease(mut self, lease: Duration) -> ConsumerBuilder {
        self.lease = lease;
        self
    }

    /// How long one blocking read waits for new jobs before it starts again (default 2 s). Its
    /// connection's read timeout is this plus the command timeout.
    pub fn block(mut self, block: Duration) -> ConsumerBuilder {
        self.block = block;
        self
    }

    /// The longest time between two looks at the queue while the consumer waits (default
    /// 1 s): a delayed job added after the consumer's last look, due before anything it knows
    /// of, starts at most this late.
    pub fn poll_interval(mut self, poll: Duration) -> ConsumerBuilder {
        self.poll = poll;
        self
    }

    /// How many times a job may be reclaimed from consumers that died holding it before it is
    /// dead-lettered as `stalled` (default 5). Reclaims do not use up attempts.
    pub fn max_stalls(mut self, stalls: u32) -> ConsumerBuilder {
        self.max_stalls = stalls;
        self
    }

    /// Starts the consumer: its jobs run on `pool`, each as `handler(&job, &ctx)`.
    ///
    /// The handler returns `Ok` with nothing (`()`) or with [`Effects`] to commit with the
    /// acknowledgement, or a [`JobError`] (retried after the job's backoff while it has
    /// attempts left, unless permanent). A panic, or a timeout, is a failed attempt too.
    ///
    /// `Err(NameInUse)` if a live consumer of the queue already has this name; `Err(SpawnFailed)`
    /// if the system refuses one of its threads (docs/semantics.md Q10).
    pub fn run_on<F, R>(self, pool: &Arc<WorkerPool>, handler: F) -> Result<Consumer, QueueError>
    where
        F: Fn(&Job, &TaskContext<'_>) -> Result<R, JobError> + Send + Sync + 'static,
        R: Into<Effects>,
    {
        keys::validate("consumer", &self.name)?;
        if self.concurrency == 0 {
            return Err(QueueError::InvalidOption(
                "concurrency must be at least 1".into(),
            ));
        }
        if self.lease < Duration::from_millis(30) {
            return Err(QueueError::InvalidOption(
                "the lease must be at least 30 ms".into(),
            ));
        }
        if self.block.is_zero() || self.poll.is_zero() {
            return Err(QueueError::InvalidOption(
                "block and poll_interval must be longer than zero".into(),
            ));
        }
        let settings = Settings {
            name: self.name.clone(),
            token: format!("{:016x}{:016x}", random::next_u64(), random::next_u64()),
            concurrency: self.concurrency,
            prefetch: self
                .prefetch
                .unwrap_or(self.concurrency.max(DEFAULT_PREFETCH)),
            lease: self.lease,
            block: self.block,
            poll: self.poll,
            max_deliveries: self.max_stalls.saturating_add(1),
            promote_limit: 1000,
        };
        let shared = Arc::new(Shared::new(Arc::clone(&self.config), settings));
        let reconnects = Arc::clone(&shared.counters.reconnects);
        let link = |role: &str, longest: Duration| {
            Link::new(
                Arc::clone(&self.config),
                format!("sharedbuf:{}:{}:{role}", self.config.name, self.name),
                longest,
                Arc::clone(&reconnects),
            )
        };
        let mut keeper_link = link("lease", Duration::ZERO);
        match lease::acquire_name(&mut keeper_link, &shared) {
            Ok(true) => {}
            Ok(false) => {
                return Err(QueueError::NameInUse {
                    consumer: self.name,
                })
            }
            Err(LinkError::Fatal(error)) => return Err(QueueError::Connect(error)),
            Err(LinkError::GaveUp {
                last_error,
                tried_for,
            }) => {
                return Err(QueueError::Unavailable {
                    tried_for,
                    last_error,
                })
            }
        }
        let reader_link =
            link("wakeup", self.block).publish_client_id(Arc::clone(&shared.reader_client));
        let dispatcher_link = link("dispatch", Duration::ZERO);

        let (events_tx, events) = mpsc::channel();
        let control = Arc::new(WakeupControl::default());
        let handler: Arc<Handler> =
            Arc::new(move |job: &Job, ctx: &TaskContext<'_>| handler(job, ctx).map(Into::into));
        let thread_name = |role: &str| format!("sbq-{role}-{}", self.name);
        let spawn_error = |role: &str, error: std::io::Error| QueueError::SpawnFailed {
            reason: format!("the {role} thread: {error}"),
        };

        let keeper = {
            let (shared, events) = (Arc::clone(&shared), events_tx.clone());
            std::thread::Builder::new()
                .name(thread_name("lease"))
                .spawn(move || lease::run(keeper_link, shared, events))
        };
        let keeper = match keeper {
            Ok(keeper) => keeper,
            Err(error) => {
                // The name is ours in Redis, and the keeper that would give it back never ran.
                lease::release_name(&mut link("lease", Duration::ZERO), &shared);
                return Err(spawn_error("lease keeper", error));
            }
        };
        let stop_keeper = |shared: &Shared, keeper: JoinHandle<()>| {
            shared.stop_helpers();
            let _ = keeper.join();
        };
        let reader = {
            let (for_reader, control, events) =
                (Arc::clone(&shared), Arc::clone(&control), events_tx.clone());
            match std::thread::Builder::new()
                .name(thread_name("wakeup"))
                .spawn(move || wakeup::run(reader_link, for_reader, control, events))
            {
                Ok(reader) => reader,
                Err(error) => {
                    stop_keeper(&shared, keeper);
                    return Err(spawn_error("wake-up reader", error));
                }
            }
        };
        // Made only once its helpers run: a dispatcher's drop waits (up to a blocking read's
        // timeout) for the wake-up reader to exit, which a reader that never started never
        // does (fault: a consumer whose keeper or reader could not start took 7 s to say so).
        let dispatcher = Dispatcher::new(
            Arc::clone(&shared),
            dispatcher_link,
            Arc::clone(pool),
            handler,
            events_tx.clone(),
            events,
            Arc::clone(&control),
        );
        let dispatcher = match std::thread::Builder::new()
            .name(thread_name("dispatch"))
            .spawn(move || dispatcher.run())
        {
            Ok(dispatcher) => dispatcher,
            Err(error) => {
                control.stop();
                stop_keeper(&shared, keeper);
                let _ = reader.join();
                return Err(spawn_error("dispatcher", error));
            }
        };
        Ok(Consumer {
            shared,
            events: events_tx,
            threads: Some(Threads {
                dispatcher,
                keeper,
                reader,
            }),
            made_in: MadeIn::now(),
        })
    }
}

struct Threads {
    dispatcher: JoinHandle<Result<(), QueueError>>,
    keeper: JoinHandle<()>,
    reader: JoinHandle<()>,
}

/// A running consumer (see [`ConsumerBuilder::run_on`]).
///
/// Dropping it closes it without a time limit (like [`close(None)`](Consumer::close)): it
/// waits for the running jobs, as a [`WorkerPool`]'s drop does.
///
/// A consumer does not cross a `fork` (docs/semantics.md X7): its threads and their
/// connections are the parent's. In the forked child `close` returns
/// `Err(QueueError::ForkedHandle)` at once and dropping it returns at once (it leaks what is
/// the parent's); the parent's consumer runs on undisturbed.
#[must_use = "dropping a Consumer stops it (as `close` does)"]
pub struct Consumer {
    shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
    threads: Option<Threads>,
    /// Its threads are not in a fork child of this process.
    made_in: MadeIn,
}

impl Consumer {
    /// The consumer's name.
    pub fn name(&self) -> &str {
        &self.shared.settings.name
    }

    /// What the consumer counted so far.
    ///
    /// A finish is counted here when the script's answer arrives, a moment after the script
    /// counted it in Redis: [`JobQueue::stats`](super::JobQueue::stats) may be one round trip
    /// ahead of this snapshot.
    pub fn stats(&self) -> ConsumerStats {
        let mut stats = self.shared.counters.snapshot(&self.shared.settings.name);
        stats.held = self.shared.held().len() as u64;
        stats
    }

    /// Whether the consumer still runs (it stops on its own only when fenced or when its pool
    /// was closed).
    pub fn is_running(&self) -> bool {
        self.threads
            .as_ref()
            .is_some_and(|threads| !threads.dispatcher.is_finished())
    }

    /// Stops reading, gives back the jobs that have not started, lets the running ones finish
    /// and acknowledges them, gives the consumer's name back, and joins its threads
    /// (docs/semantics.md Q1). If `timeout` (`None`: no limit) passes first, the jobs still
    /// running get their cancel flag and are given back to the queue without counting an
    /// attempt: `Err(CloseTimedOut)`. `Err(Fenced)` or `Err(PoolClosed)` if the consumer had
    /// stopped on its own.
    pub fn close(mut self, timeout: Option<Duration>) -> Result<ConsumerStats, QueueError> {
        self.shutdown(timeout)?;
        Ok(self.stats())
    }

    fn shutdown(&mut self, timeout: Option<Duration>) -> Result<(), QueueError> {
        let Some(threads) = self.threads.take() else {
            return Ok(());
        };
        if self.made_in.forked() {
            // A fork child: the threads are the parent's; joining them is undefined here
            // (their handles may name threads this process starts later). Leak them.
            std::mem::forget(threads);
            return Err(QueueError::ForkedHandle);
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        self.shared.request_close(deadline);
        let _ = self.events.send(Event::Close);
        let result = threads
            .dispatcher
            .join()
            .unwrap_or_else(|_| Err(QueueError::Server("the dispatcher thread panicked".into())));
        self.shared.stop_helpers();
        let _ = threads.reader.join();
        let _ = threads.keeper.join();
        result
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.shutdown(None);
    }
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.shared.settings.name)
            .field("running", &self.is_running())
            .finish_non_exhaustive()
    }
}
