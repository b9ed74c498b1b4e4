//! [`JobQueue`]: a queue in Redis — connect to it, add jobs, read its statistics and its
//! dead letters, and start consumers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::{Cmd, Value};
use serde::Serialize;

use super::config::{Config, JobQueueBuilder};
use super::consumer::ConsumerBuilder;
use super::error::QueueError;
use super::job;
use super::job_id::JobId;
use super::keys::{self, create_group, GROUP, LEVELS};
use super::link::{Link, LinkError};
use super::options::{Added, JobOptions};
use super::reply::{self, Reply};
use super::scripts;
use super::stats::{ConsumerCounts, QueueStats};

/// Jobs per ADD call in [`JobQueue::add_batch`]: one script call pays its fixed costs (the
/// call, `TIME`, `seq`) for all of them, and stays short enough (~100 µs of server time) not
/// to hold up other clients.
const ADDS_PER_CALL: usize = 100;

/// Jobs per round trip in [`JobQueue::add_batch`].
const ADDS_PER_TRIP: usize = 1000;

/// A job queue on Redis Streams (see the [module docs](super)): the producer's side, and where
/// consumers come from.
///
/// ```no_run
/// use std::sync::Arc;
/// use sharedbuf::pool::WorkerPool;
/// use sharedbuf::queue::{JobOptions, JobQueue};
///
/// let queue = JobQueue::connect("redis://127.0.0.1:6379", "emails")?;
/// queue.add(b"hello", JobOptions::new().attempts(3))?;
///
/// let pool = Arc::new(WorkerPool::builder().max_threads(8).build()?);
/// let consumer = queue.consumer("host-a").concurrency(8).run_on(&pool, |job, _ctx| {
///     println!("job {}: {} bytes", job.id(), job.payload().len());
///     Ok(())
/// })?;
/// // ... later
/// consumer.close(Some(std::time::Duration::from_secs(30)))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A `JobQueue` is `Send + Sync`; its producer calls share one connection (behind a lock), and
/// each consumer opens its own three.
pub struct JobQueue {
    config: Arc<Config>,
    link: Mutex<Link>,
}

impl JobQueue {
    /// Connects to the Redis server at `url` (`redis://[:password@]host:port[/db]`) and opens
    /// queue `name`, creating its streams and consumer group if they do not exist; the default
    /// settings ([`builder`](JobQueue::builder) changes them). Errors as
    /// [`JobQueueBuilder::connect`].
    pub fn connect(url: &str, name: &str) -> Result<JobQueue, QueueError> {
        JobQueue::builder(url, name).connect()
    }

    /// A builder for a queue with settings other than the defaults.
    pub fn builder(url: &str, name: &str) -> JobQueueBuilder {
        JobQueueBuilder::new(url, name)
    }

    pub(super) fn open(config: Arc<Config>) -> Result<JobQueue, QueueError> {
        let link = Link::new(
            Arc::clone(&config),
            format!("sharedbuf:{}:producer", config.name),
            Duration::ZERO,
            Arc::new(AtomicU64::new(0)),
        );
        let queue = JobQueue {
            config,
            link: Mutex::new(link),
        };
        let info = queue.request(&[redis::cmd("INFO").arg("server").clone()])?;
        let info = reply::text(info.into_iter().next().unwrap_or(Value::Nil))
            .map_err(|e| QueueError::Server(e.to_string()))?;
        check_version(&info)?;
        queue.ensure_groups()?;
        Ok(queue)
    }

    /// Creates the level streams and their consumer group where missing (`BUSYGROUP`: it
    /// exists).
    pub(super) fn ensure_groups(&self) -> Result<(), QueueError> {
        let commands: Vec<Cmd> = self
            .config
            .keys
            .streams
            .iter()
            .map(|s| create_group(s))
            .collect();
        for value in self.request(&commands)? {
            if let Some(message) = reply::server_error(&value) {
                if reply::error_code(&value) != Some("BUSYGROUP") {
                    return Err(QueueError::Server(message));
                }
            }
        }
        Ok(())
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Adds a job whose payload is `payload`'s bytes. With a dedupe key some job already owns
    /// (waiting, running, or completed within the dedupe window), adds nothing and returns
    /// [`Added::Duplicate`] with that job's id. `Err(InvalidOption)` for a payload over 512 MiB
    /// (the longest string Redis takes) or an empty dedupe key.
    ///
    /// If the connection breaks, the add is sent again once Redis is back (within
    /// [`retry_for`](JobQueueBuilder::retry_for)); without a dedupe key the job may then be
    /// queued twice (a lost reply cannot tell whether the first one arrived), with one it
    /// cannot.
    pub fn add(&self, payload: impl AsRef<[u8]>, options: JobOptions) -> Result<Added, QueueError> {
        options.check_job(payload.as_ref())?;
        let command = self.add_command(&[(payload.as_ref(), &options)]);
        let value = self.request(&[command])?.pop().unwrap_or(Value::Nil);
        let mut added = parse_added(value)?;
        match added.len() {
            1 => Ok(added.remove(0)),
            n => Err(QueueError::Server(format!(
                "ADD answered {n} results for one job"
            ))),
        }
    }

    /// Adds a job whose payload is `value` encoded with serde as MessagePack (struct fields by
    /// name); the handler reads it back with [`Job::value`](super::Job::value).
    /// `Err(QueueError::Payload)` if serde cannot encode `value`; otherwise as
    /// [`add`](JobQueue::add).
    pub fn add_value<T: Serialize + ?Sized>(
        &self,
        value: &T,
        options: JobOptions,
    ) -> Result<Added, QueueError> {
        let payload = job::encode_value(value)?;
        self.add(payload, options)
    }

    /// Adds many jobs in few round trips (up to 1,000 jobs a round trip, 100 a script call),
    /// in order; the results come in the same order. Each round trip's jobs are checked
    /// before it is sent: a job [`add`](JobQueue::add) would refuse stops the batch with the
    /// same error, and the round trips before it are added.
    pub fn add_batch<P, I>(&self, jobs: I) -> Result<Vec<Added>, QueueError>
    where
        P: AsRef<[u8]>,
        I: IntoIterator<Item = (P, JobOptions)>,
    {
        let mut out = Vec::new();
        let mut jobs = jobs.into_iter().peekable();
        let mut batch = Vec::with_capacity(ADDS_PER_TRIP / ADDS_PER_CALL);
        let mut call = Vec::with_capacity(ADDS_PER_CALL);
        while jobs.peek().is_some() {
            batch.clear();
            while batch.len() < ADDS_PER_TRIP / ADDS_PER_CALL && jobs.peek().is_some() {
                call.clear();
                call.extend(jobs.by_ref().take(ADDS_PER_CALL));
                for (payload, options) in &call {
                    options.check_job(payload.as_ref())?;
                }
                let refs: Vec<(&[u8], &JobOptions)> =
                    call.iter().map(|(p, o)| (p.as_ref(), o)).collect();
                batch.push(self.add_command(&refs));
            }
            for value in self.request(&batch)? {
                out.extend(parse_added(value)?);
            }
        }
        Ok(out)
    }

    /// One ADD call for `jobs` (see `scripts.rs`).
    fn add_command(&self, jobs: &[(&[u8], &JobOptions)]) -> Cmd {
        let keys = &self.config.keys;
        let ttl_ms = super::clock::millis(self.config.dedupe_ttl);
        let seq = format!("{}seq", keys.prefix);
        let [high, normal, low] = &keys.streams;
        let mut cmd = scripts::add().command(&[high, normal, low, &keys.delayed, &seq]);
        cmd.arg(&keys.prefix).arg(ttl_ms);
        for (payload, options) in jobs {
            let delay_ms = super::clock::millis(options.delay);
            cmd.arg(keys::level_index(options.priority) + 1)
                .arg(delay_ms)
                .arg(options.dedupe.as_deref().unwrap_or(""))
                .arg(job::new_fields_len(options));
            job::push_new_fields(&mut cmd, payload, options);
        }
        cmd
    }

    /// Reads the queue's statistics (one round trip). `Err(QueueError::Unavailable)` once Redis
    /// stayed out of reach past the retry budget, `Err(Server)` for an unexpected reply or a
    /// queue key of another type. A level whose consumer group is missing (deleted by someone
    /// else, docs/semantics.md Q11) holds no job, and every entry of its stream is waiting: the
    /// next consumer makes the group again from the start and runs them all.
    pub fn stats(&self) -> Result<QueueStats, QueueError> {
        let keys = &self.config.keys;
        let mut commands = Vec::new();
        for (stream, acked) in keys.streams.iter().zip(&keys.acked) {
            commands.push(redis::cmd("XLEN").arg(stream).clone());
            commands.push(redis::cmd("XPENDING").arg(stream).arg(GROUP).clone());
            commands.push(redis::cmd("GET").arg(acked).clone());
        }
        commands.push(redis::cmd("ZCARD").arg(&keys.delayed).clone());
        commands.push(redis::cmd("XLEN").arg(&keys.dead).clone());
        commands.push(redis::cmd("HGETALL").arg(&keys.stats).clone());
        commands.push(redis::cmd("HGETALL").arg(&keys.consumers).clone());
        let per_level = 3;
        let values = self.request_tolerating(&commands, |at, code| {
            code == "NOGROUP" && at < LEVELS.len() * per_level && at % per_level == 1
        })?;
        parse_stats(values).map_err(|e| QueueError::Server(e.to_string()))
    }

    /// The oldest `count` jobs of the dead-letter stream (`usize::MAX`: all), with their errors.
    pub fn dead_letters(&self, count: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let command = redis::cmd("XRANGE")
            .arg(&self.config.keys.dead)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            // Redis takes a signed count; any more than that is all of them.
            .arg(count.min(i64::MAX as usize))
            .clone();
        let value = self.request(&[command])?.pop().unwrap_or(Value::Nil);
        let parse = || -> Reply<Vec<DeadLetter>> {
            reply::array(value)?
                .into_iter()
                .map(DeadLetter::parse)
                .collect()
        };
        parse().map_err(|e| QueueError::Server(e.to_string()))
    }

    /// A builder for a consumer of this queue named `name` (unique among its live consumers:
    /// e.g. the host name and the process id).
    pub fn consumer(&self, name: &str) -> ConsumerBuilder {
        ConsumerBuilder::new(Arc::clone(&self.config), name)
    }

    /// Sends `commands` on the producer's connection, retrying for the retry budget; a
    /// server error answer to any of them is returned as `Err`.
    pub(super) fn request(&self, commands: &[Cmd]) -> Result<Vec<Value>, QueueError> {
        self.request_tolerating(commands, |_, _| false)
    }

    /// [`JobQueue::request`], except that a server error answer to command `at` with a `code`
    /// for which `tolerated(at, code)` holds is returned among the values.
    fn request_tolerating(
        &self,
        commands: &[Cmd],
        tolerated: impl Fn(usize, &str) -> bool,
    ) -> Result<Vec<Value>, QueueError> {
        let started = Instant::now();
        let budget = self.config.retry_for;
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        let values = link
            .request(commands, &|| started.elapsed() >= budget)
            .map_err(|error| match error {
                LinkError::GaveUp {
                    last_error,
                    tried_for,
                } => QueueError::Unavailable {
                    tried_for,
                    last_error,
                },
                LinkError::Fatal(error) => QueueError::Connect(error),
            })?;
        drop(link);
        for (at, value) in values.iter().enumerate() {
            if let (Some(message), Some(code)) =
                (reply::server_error(value), reply::error_code(value))
            {
                if code != "BUSYGROUP" && !tolerated(at, code) {
                    return Err(QueueError::Server(message));
                }
            }
        }
        Ok(values)
    }
}

impl fmt::Debug for JobQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobQueue")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl JobQueueBuilder {
    /// Connects: checks the server (Redis 6.2 or later), creates the queue's streams and
    /// consumer group if they do not exist yet.
    ///
    /// `Err(QueueError::InvalidName)` for a bad queue name, `Err(InvalidOption)` for a zero
    /// timeout, `Err(Connect)` for a URL that does not parse, `Err(Unsupported)` for a server
    /// older than 6.2, and the errors of any request (`Unavailable` once Redis stayed out of
    /// reach past the retry budget, `Server`).
    pub fn connect(self) -> Result<JobQueue, QueueError> {
        JobQueue::open(Arc::new(self.into_config()?))
    }
}

/// `Err(Unsupported)` for servers older than 6.2.
fn check_version(info: &str) -> Result<(), QueueError> {
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(str::trim)
        .unwrap_or("unknown");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (6, 2) {
        return Err(QueueError::Unsupported {
            version: version.to_string(),
        });
    }
    Ok(())
}

/// ADD's answer: a flag (1 new, 0 duplicate) and an id per job.
fn parse_added(value: Value) -> Result<Vec<Added>, QueueError> {
    let parse = || -> Reply<Vec<Added>> {
        let mut items = reply::array(value)?.into_iter();
        let mut out = Vec::new();
        while let Some(flag) = items.next() {
            let new = reply::int(flag)?;
            let id = JobId(reply::int(reply::next(&mut items, "id")?)?.max(0) as u64);
            out.push(if new == 1 {
                Added::New(id)
            } else {
                Added::Duplicate(id)
            });
        }
        Ok(out)
    };
    parse().map_err(|e| QueueError::Server(e.to_string()))
}

fn parse_stats(values: Vec<Value>) -> Reply<QueueStats> {
    let mut stats = QueueStats::default();
    let mut consumers: BTreeMap<String, ConsumerCounts> = BTreeMap::new();
    let mut values = values.into_iter();
    for _ in LEVELS {
        let length = reply::int(reply::next(&mut values, "XLEN")?)?.max(0) as u64;
        let pending = reply::next(&mut values, "XPENDING")?;
        // Acknowledged entries not trimmed yet (see `scripts.rs`, "Retention").
        let acked = reply::int(reply::next(&mut values, "GET")?)?.max(0) as u64;
        if reply::error_code(&pending).is_some() {
            // No group (NOGROUP, Q11): whoever makes it again starts from the first entry.
            stats.waiting += length;
            continue;
        }
        let mut summary = reply::array(pending)?.into_iter();
        let held = reply::int(summary.next().unwrap_or(Value::Nil))?.max(0) as u64;
        let per_consumer = summary.nth(2).unwrap_or(Value::Nil);
        for pair in reply::array(per_consumer)? {
            let mut pair = reply::array(pair)?.into_iter();
            let name = reply::text(reply::next(&mut pair, "consumer")?)?;
            let count = reply::int(reply::next(&mut pair, "count")?)?.max(0) as u64;
            let entry = consumers.entry(name.clone()).or_default();
            entry.name = name;
            entry.active += count;
        }
        stats.active += held;
        stats.waiting += length.saturating_sub(held).saturating_sub(acked);
    }
    stats.delayed = reply::int(reply::next(&mut values, "ZCARD")?)?.max(0) as u64;
    stats.dead_letter_stream = reply::int(reply::next(&mut values, "XLEN")?)?.max(0) as u64;
    for (name, value) in reply::pairs(reply::next(&mut values, "stats")?)? {
        let value = String::from_utf8_lossy(&value).parse().unwrap_or(0);
        stats.set(&String::from_utf8_lossy(&name), value);
    }
    for (name, value) in reply::pairs(reply::next(&mut values, "consumers")?)? {
        let name = String::from_utf8_lossy(&name).into_owned();
        let Some((consumer, counter)) = name.rsplit_once('|') else {
            continue;
        };
        let value = String::from_utf8_lossy(&value).parse().unwrap_or(0);
        let entry = consumers.entry(consumer.to_string()).or_default();
        entry.name = consumer.to_string();
        entry.set(counter, value);
    }
    stats.consumers = consumers.into_values().collect();
    Ok(stats)
}

/// A job in the dead-letter stream: [`JobQueue::dead_letters`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Its id in the dead-letter stream (`XDEL` it there once handled).
    pub entry_id: String,
    /// The job's id (`None` for an entry that was not a job at all).
    pub job: Option<JobId>,
    /// The attempt that failed last (0 in a dead letter without a number there: one written
    /// by hand, docs/semantics.md Q11).
    pub attempt: u32,
    /// Why: the last attempt's error, `timed out after …`, `panicked: …`, `malformed payload:
    /// …`, `malformed entry: …`, `effects failed: …`, or `stalled: …`.
    pub error: String,
    /// The job's payload.
    pub payload: Vec<u8>,
    /// Its dedupe key.
    pub dedupe_key: Option<String>,
    /// The consumer that dead-lettered it.
    pub consumer: String,
    /// When (the Redis server's clock).
    pub failed_at: SystemTime,
}

impl DeadLetter {
    fn parse(value: Value) -> Reply<DeadLetter> {
        let mut items = reply::array(value)?.into_iter();
        let entry_id = reply::text(reply::next(&mut items, "entry id")?)?;
        let mut letter = DeadLetter {
            entry_id,
            job: None,
            attempt: 0,
            error: String::new(),
            payload: Vec::new(),
            dedupe_key: None,
            consumer: String::new(),
            failed_at: UNIX_EPOCH,
        };
        let number = |v: &[u8]| {
            std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
        };
        for (name, value) in reply::pairs(reply::next(&mut items, "fields")?)? {
            match name.as_slice() {
                b"job" => letter.job = number(&value).map(JobId),
                b"attempt" => {
                    letter.attempt =
                        number(&value).map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
                }
                b"error" => letter.error = String::from_utf8_lossy(&value).into_owned(),
                b"payload" => letter.payload = value,
                b"dedupe" => letter.dedupe_key = Some(String::from_utf8_lossy(&value).into_owned()),
                b"consumer" => letter.consumer = String::from_utf8_lossy(&value).into_owned(),
                b"failed" => {
                    letter.failed_at =
                        UNIX_EPOCH + Duration::from_millis(number(&value).unwrap_or(0))
                }
                _ => {}
            }
        }
        Ok(letter)
    }
}
