//! [`JobOptions`]: how one job is run — attempts, backoff, delay, priority, timeout, dedupe key —
//! and [`Added`], what adding it did.

use std::time::Duration;

use super::backoff::Backoff;
use super::error::QueueError;
use super::job_id::JobId;
use crate::pool::Priority;

/// How to run one job: [`JobQueue::add`](super::JobQueue::add).
///
/// ```
/// use std::time::Duration;
/// use sharedbuf::pool::Priority;
/// use sharedbuf::queue::{Backoff, JobOptions};
///
/// let options = JobOptions::new()
///     .attempts(5)                                        // run at most 5 times (Q2)
///     .backoff(Backoff::exponential(Duration::from_millis(200)).jitter())
///     .delay(Duration::from_secs(10))                     // not before 10 s from now (Q3)
///     .priority(Priority::High)                           // served before Normal and Low (Q3)
///     .timeout(Duration::from_secs(30))                   // each attempt, from its start (Q4)
///     .dedupe("invoice-7781");                            // effects once per key (Q5)
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[must_use = "options do nothing until given to `JobQueue::add`"]
pub struct JobOptions {
    pub(super) attempts: u32,
    pub(super) backoff: Backoff,
    pub(super) delay: Duration,
    pub(super) priority: Priority,
    pub(super) timeout: Option<Duration>,
    pub(super) dedupe: Option<String>,
}

impl JobOptions {
    /// One attempt, no backoff, no delay, `Normal` priority, no timeout, no dedupe key.
    pub fn new() -> JobOptions {
        JobOptions {
            attempts: 1,
            ..JobOptions::default()
        }
    }

    /// How many times the job may run before it is dead-lettered (at least 1; 0 counts as 1).
    pub fn attempts(mut self, attempts: u32) -> JobOptions {
        self.attempts = attempts.max(1);
        self
    }

    /// The wait between a failed attempt and the next.
    pub fn backoff(mut self, backoff: Backoff) -> JobOptions {
        self.backoff = backoff;
        self
    }

    /// The job becomes ready to run `delay` after it is added, measured by the Redis server's
    /// clock (so producers and consumers on machines whose clocks differ agree). Whole
    /// milliseconds.
    pub fn delay(mut self, delay: Duration) -> JobOptions {
        self.delay = delay;
        self
    }

    /// The job's priority level: consumers take `High` jobs before `Normal` ones, and those
    /// before `Low` ones; the pool runs it at the same priority.
    pub fn priority(mut self, priority: Priority) -> JobOptions {
        self.priority = priority;
        self
    }

    /// Time each attempt may run, counted from its start on a pool thread: once it passes, the
    /// task's cancel flag is set ([`TaskContext::is_cancelled`]) and the attempt counts as
    /// failed. Whole milliseconds (at least 1).
    ///
    /// [`TaskContext::is_cancelled`]: crate::pool::TaskContext::is_cancelled
    pub fn timeout(mut self, timeout: Duration) -> JobOptions {
        self.timeout = Some(timeout.max(Duration::from_millis(1)));
        self
    }

    /// A dedupe key: while a job with this key is waiting, running, or completed within the
    /// queue's dedupe window, adding another is refused ([`Added::Duplicate`]), and a job whose
    /// key is already completed is acknowledged without running. Effects returned by the
    /// handler ([`Effects`](super::Effects)) are committed once per key (docs/semantics.md Q5).
    /// An empty key is refused when the job is added (`Err(InvalidOption)`).
    pub fn dedupe(mut self, key: impl Into<String>) -> JobOptions {
        self.dedupe = Some(key.into());
        self
    }

    /// `Err(InvalidOption)` for a job Redis cannot take or that no job can be: a payload
    /// over [`MAX_PAYLOAD`] (Redis refuses a longer string and drops the connection, so the
    /// add would only be sent again until the retry budget ran out), or an empty dedupe key
    /// (the scripts read an empty key as none, so the job would be queued without one).
    pub(super) fn check_job(&self, payload: &[u8]) -> Result<(), QueueError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(QueueError::InvalidOption(format!(
                "a payload of {} bytes is over the 512 MiB Redis stores in one string",
                payload.len()
            )));
        }
        match self.dedupe.as_deref() {
            Some("") => Err(QueueError::InvalidOption(
                "a dedupe key must not be empty".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// The largest payload a job can have: 512 MiB, the longest string Redis takes in a command
/// by default (`proto-max-bulk-len`).
pub(super) const MAX_PAYLOAD: usize = 512 << 20;

/// What [`JobQueue::add`](super::JobQueue::add) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Added {
    /// A new job with this id was queued.
    New(JobId),
    /// A job with the same dedupe key is waiting, running or completed: nothing was queued;
    /// this is that job's id.
    Duplicate(JobId),
}

impl Added {
    /// The id of the new job, or of the job that has the dedupe key.
    pub fn id(&self) -> JobId {
        match *self {
            Added::New(id) | Added::Duplicate(id) => id,
        }
    }

    /// Whether a new job was queued.
    pub fn is_new(&self) -> bool {
        matches!(self, Added::New(_))
    }
}
