//! What can go wrong: using the queue ([`QueueError`]), one attempt of a job ([`JobError`], what
//! a handler returns), and decoding a payload ([`PayloadError`]).

use std::fmt;
use std::time::Duration;

/// Why a queue operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum QueueError {
    /// A queue or consumer name that is empty, longer than 200 bytes, or has braces, `|`,
    /// whitespace or control characters.
    InvalidName {
        /// "queue" or "consumer".
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// An option out of range (zero concurrency, a zero lease, ...).
    InvalidOption(String),
    /// The URL could not be parsed, or the server refused the connection's setup (wrong
    /// password, ...).
    Connect(redis::RedisError),
    /// Redis could not be reached (or kept failing) for longer than the retry budget
    /// ([`JobQueueBuilder::retry_for`](super::JobQueueBuilder::retry_for)); the last error.
    Unavailable {
        /// How long the queue kept trying.
        tried_for: Duration,
        /// The last failure.
        last_error: String,
    },
    /// The server is older than Redis 6.2 (the queue needs `XAUTOCLAIM`).
    Unsupported {
        /// The server's `redis_version`.
        version: String,
    },
    /// The server answered a command with an error, or with a reply of an unexpected shape
    /// (another program wrote the queue's keys?).
    Server(String),
    /// The system refused a thread the consumer needs (docs/semantics.md Q10): nothing was
    /// left running, and the consumer's name is free again, so a later start may succeed.
    SpawnFailed {
        /// The system's reason.
        reason: String,
    },
    /// Another live consumer of this queue already uses this name: consumer names must be
    /// unique among live consumers (the name is what owns leased jobs).
    NameInUse {
        /// The name.
        consumer: String,
    },
    /// A value could not be encoded as a payload.
    Payload(PayloadError),
    /// The pool refused the consumer's jobs because it was closed or destroyed; the consumer
    /// stopped and gave its unfinished jobs back to the queue.
    PoolClosed,
    /// The consumer's name was taken over by another consumer while this one could not reach
    /// Redis for longer than its lease: it stopped without finishing its jobs (their new owner
    /// runs them).
    Fenced {
        /// The name.
        consumer: String,
    },
    /// [`Consumer::close`](super::Consumer::close) ran out of time: the jobs still running were
    /// asked to stop (their cancel flag) and handed back to the queue without counting an
    /// attempt (`released`), or left to their lease if Redis could not be reached
    /// (`abandoned`).
    CloseTimedOut {
        /// Jobs handed back to the queue.
        released: usize,
        /// Jobs left to their lease (another consumer reclaims them once it expires).
        abandoned: usize,
    },
    /// [`Consumer::close`](super::Consumer::close) in the child of a `fork()`, on a consumer
    /// made before the fork: its threads (and their connections) are the parent's, so closing
    /// would wait for ever; nothing was changed, and the parent's consumer runs on
    /// (docs/semantics.md X7).
    ForkedHandle,
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::InvalidName { what, name } => write!(
                f,
                "invalid {what} name {name:?}: 1 to 200 bytes, without braces, '|', whitespace or control characters"
            ),
            QueueError::InvalidOption(what) => write!(f, "invalid option: {what}"),
            QueueError::Connect(error) => write!(f, "cannot connect to Redis: {error}"),
            QueueError::Unavailable {
                tried_for,
                last_error,
            } => write!(
                f,
                "Redis unavailable for {tried_for:?} (last error: {last_error})"
            ),
            QueueError::Unsupported { version } => write!(
                f,
                "Redis {version} is too old: the job queue needs Redis 6.2 or later (XAUTOCLAIM)"
            ),
            QueueError::Server(message) => write!(f, "Redis error: {message}"),
            QueueError::SpawnFailed { reason } => {
                write!(f, "could not start a thread of the consumer: {reason}")
            }
            QueueError::NameInUse { consumer } => write!(
                f,
                "another live consumer of this queue is named {consumer:?}; consumer names must be unique"
            ),
            QueueError::Payload(error) => write!(f, "{error}"),
            QueueError::PoolClosed => f.write_str(
                "the pool was closed: the consumer stopped and gave its jobs back to the queue",
            ),
            QueueError::Fenced { consumer } => write!(
                f,
                "consumer {consumer:?} lost its name to another consumer while Redis was out of reach; it stopped"
            ),
            QueueError::CloseTimedOut {
                released,
                abandoned,
            } => write!(
                f,
                "close timed out: {released} running jobs handed back to the queue, {abandoned} left to their lease"
            ),
            QueueError::ForkedHandle => f.write_str(
                "this consumer was made before a fork: its threads belong to the parent process, so this forked child cannot close it (leave it alone or drop it; the parent's consumer runs on)",
            ),
        }
    }
}

/// No variant names a `source`: each message already includes the inner error's own, and a
/// chain reporter (anyhow, eyre, `Report`) that printed both would say it twice. The inner
/// error is still there to match on (`QueueError::Connect(redis_error)`).
impl std::error::Error for QueueError {}

impl From<PayloadError> for QueueError {
    fn from(error: PayloadError) -> QueueError {
        QueueError::Payload(error)
    }
}

/// A payload that could not be encoded or decoded as the type asked for (MessagePack through
/// serde). A handler that returns it with `?` dead-letters the job at once: no later attempt
/// could decode it either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    message: String,
}

impl PayloadError {
    pub(super) fn new(message: impl fmt::Display) -> PayloadError {
        PayloadError {
            message: message.to_string(),
        }
    }
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed payload: {}", self.message)
    }
}

impl std::error::Error for PayloadError {}

/// Why one attempt of a job failed: what a handler returns in `Err`.
///
/// A *retryable* error (the default: [`JobError::retry`], and every `From` conversion except
/// the one from [`PayloadError`]) lets the job run again after its backoff while it has
/// attempts left; a *permanent* one ([`JobError::permanent`]) dead-letters it at once. Either
/// way the message is kept: the next attempt sees it as [`Job::last_error`], the dead-letter
/// stream stores it.
///
/// [`Job::last_error`]: super::Job::last_error
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError {
    message: String,
    permanent: bool,
}

impl JobError {
    /// A failure worth retrying (a timeout upstream, a busy resource).
    pub fn retry(message: impl fmt::Display) -> JobError {
        JobError {
            message: message.to_string(),
            permanent: false,
        }
    }

    /// A failure no retry can fix (bad input): the job is dead-lettered at once.
    pub fn permanent(message: impl fmt::Display) -> JobError {
        JobError {
            message: message.to_string(),
            permanent: true,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the job is dead-lettered without its remaining attempts.
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for JobError {}

impl From<PayloadError> for JobError {
    fn from(error: PayloadError) -> JobError {
        JobError::permanent(error)
    }
}

impl From<String> for JobError {
    fn from(message: String) -> JobError {
        JobError::retry(message)
    }
}

impl From<&str> for JobError {
    fn from(message: &str) -> JobError {
        JobError::retry(message)
    }
}

impl From<std::io::Error> for JobError {
    fn from(error: std::io::Error) -> JobError {
        JobError::retry(error)
    }
}

impl From<redis::RedisError> for JobError {
    fn from(error: redis::RedisError) -> JobError {
        JobError::retry(error)
    }
}

impl From<crate::pool::Cancelled> for JobError {
    fn from(error: crate::pool::Cancelled) -> JobError {
        JobError::retry(error)
    }
}

/// `?` on the crate's own calls inside a handler (a view, a buffer, a lock, a port): retryable.
impl From<crate::error::Error> for JobError {
    fn from(error: crate::error::Error) -> JobError {
        JobError::retry(error)
    }
}

/// `?` on a pool task the handler joined (`handle.join()?`): retryable.
impl From<crate::pool::TaskError> for JobError {
    fn from(error: crate::pool::TaskError) -> JobError {
        JobError::retry(error)
    }
}

impl From<Box<dyn std::error::Error + Send + Sync>> for JobError {
    fn from(error: Box<dyn std::error::Error + Send + Sync>) -> JobError {
        JobError::retry(error)
    }
}
