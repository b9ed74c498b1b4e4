//! [`JobQueueBuilder`]: where the queue is and how patiently it talks to Redis.

use std::time::Duration;

use super::error::QueueError;
use super::keys::Keys;

/// Settings shared by a queue's producer and its consumers.
#[derive(Debug)]
pub(super) struct Config {
    pub(super) client: redis::Client,
    pub(super) name: String,
    pub(super) keys: Keys,
    pub(super) connect_timeout: Duration,
    pub(super) command_timeout: Duration,
    pub(super) retry_for: Duration,
    pub(super) dedupe_ttl: Duration,
    pub(super) reconnect_min: Duration,
    pub(super) reconnect_max: Duration,
}

/// Builds a [`JobQueue`](super::JobQueue) with settings other than the defaults.
///
/// ```no_run
/// use std::time::Duration;
/// use sharedbuf::queue::JobQueue;
///
/// let queue = JobQueue::builder("redis://127.0.0.1:6379", "thumbnails")
///     .command_timeout(Duration::from_secs(2))
///     .retry_for(Duration::from_secs(60))
///     .dedupe_window(Duration::from_secs(7 * 24 * 3600))
///     .connect()?;
/// # Ok::<(), sharedbuf::queue::QueueError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct JobQueueBuilder {
    url: String,
    name: String,
    connect_timeout: Duration,
    command_timeout: Duration,
    retry_for: Duration,
    dedupe_ttl: Duration,
    reconnect_min: Duration,
    reconnect_max: Duration,
}

impl JobQueueBuilder {
    pub(super) fn new(url: &str, name: &str) -> JobQueueBuilder {
        JobQueueBuilder {
            url: url.to_string(),
            name: name.to_string(),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(30),
            dedupe_ttl: Duration::from_secs(24 * 3600),
            reconnect_min: Duration::from_millis(10),
            reconnect_max: Duration::from_secs(1),
        }
    }

    /// How long opening a connection may take (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> JobQueueBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// How long a reply may take before the connection is considered lost and replaced
    /// (default 5 s). A consumer's blocking read waits for its block time, 200 ms more (a
    /// server ends a block on its timer tick), *plus* this, never less (docs/semantics.md Q6).
    pub fn command_timeout(mut self, timeout: Duration) -> JobQueueBuilder {
        self.command_timeout = timeout;
        self
    }

    /// How long the producer side ([`add`](super::JobQueue::add),
    /// [`stats`](super::JobQueue::stats), ...) keeps reconnecting before it returns
    /// [`QueueError::Unavailable`] (default 30 s). Consumers never give up; they reconnect until
    /// closed.
    pub fn retry_for(mut self, budget: Duration) -> JobQueueBuilder {
        self.retry_for = budget;
        self
    }

    /// How long a completed job's dedupe key keeps refusing duplicates (default 24 h).
    pub fn dedupe_window(mut self, window: Duration) -> JobQueueBuilder {
        self.dedupe_ttl = window;
        self
    }

    /// The first and the longest wait between reconnection attempts (default 10 ms and 1 s;
    /// the wait doubles after each failure, with jitter).
    pub fn reconnect_backoff(mut self, first: Duration, longest: Duration) -> JobQueueBuilder {
        self.reconnect_min = first;
        self.reconnect_max = longest.max(first);
        self
    }

    /// The settings, checked, with the client for the server at the URL (not connected yet).
    pub(super) fn into_config(self) -> Result<Config, QueueError> {
        let keys = Keys::new(&self.name)?;
        if self.command_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(QueueError::InvalidOption(
                "timeouts must be longer than zero".into(),
            ));
        }
        let client = redis::Client::open(self.url.as_str()).map_err(QueueError::Connect)?;
        Ok(Config {
            client,
            name: self.name,
            keys,
            connect_timeout: self.connect_timeout,
            command_timeout: self.command_timeout,
            retry_for: self.retry_for,
            dedupe_ttl: self.dedupe_ttl.max(Duration::from_millis(1)),
            reconnect_min: self.reconnect_min.max(Duration::from_millis(1)),
            reconnect_max: self.reconnect_max.max(Duration::from_millis(1)),
        })
    }
}
