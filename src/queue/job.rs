//! [`Job`]: what a handler receives — its id, its attempt, its payload (bytes, or a serde value
//! in MessagePack) — and how a job is laid out in a stream entry.
//!
//! # Entry layout
//!
//! A job is a stream entry (or, while delayed, a hash) with these fields, written by the add
//! script and copied by the retry / release / dead-letter scripts:
//!
//! | field | value |
//! |---|---|
//! | `job` | the job id (decimal) |
//! | `attempt` | which attempt this entry is, from 1 |
//! | `attempts` | the most attempts the job may have |
//! | `backoff` | its [`Backoff`] in text form |
//! | `timeout` | its per-attempt timeout in ms, `0` for none |
//! | `dedupe` | its dedupe key (absent without one) |
//! | `payload` | its bytes |
//! | `error` | the error of the previous attempt (absent on the first) |
//! | `added` | when it was first added (ms since the epoch, the server's clock) |

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Cmd;
use serde::de::DeserializeOwned;

use super::backoff::Backoff;
use super::error::PayloadError;
use super::job_id::JobId;
use super::options::JobOptions;
use crate::pool::Priority;

/// What the consumer needs to finish a job whatever its handler does (the payload goes to the
/// handler).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JobMeta {
    pub(super) id: JobId,
    pub(super) attempt: u32,
    pub(super) attempts: u32,
    pub(super) backoff: Backoff,
    pub(super) timeout: Option<Duration>,
    pub(super) dedupe: Option<String>,
    pub(super) priority: Priority,
}

/// One job, as its handler sees it.
///
/// ```no_run
/// # use sharedbuf::queue::{Job, JobError};
/// #[derive(serde::Deserialize)]
/// struct Resize { image: String, width: u32 }
///
/// fn handle(job: &Job) -> Result<(), JobError> {
///     let task: Resize = job.value()?; // a payload that does not decode is dead-lettered
///     println!("job {} attempt {}/{}: {}", job.id(), job.attempt(), job.max_attempts(), task.image);
///     Ok(())
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Job {
    pub(super) meta: JobMeta,
    pub(super) payload: Vec<u8>,
    pub(super) last_error: Option<String>,
    pub(super) deliveries: u32,
    pub(super) added_ms: u64,
}

impl Job {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.meta.id
    }

    /// Which attempt this is, from 1.
    pub fn attempt(&self) -> u32 {
        self.meta.attempt
    }

    /// The most attempts the job may have.
    pub fn max_attempts(&self) -> u32 {
        self.meta.attempts
    }

    /// Whether a failure now dead-letters the job.
    pub fn is_last_attempt(&self) -> bool {
        self.meta.attempt >= self.meta.attempts
    }

    /// The job's priority level.
    pub fn priority(&self) -> Priority {
        self.meta.priority
    }

    /// The job's per-attempt timeout, if it has one.
    pub fn timeout(&self) -> Option<Duration> {
        self.meta.timeout
    }

    /// The job's dedupe key, if it has one: use it as the idempotency key of effects outside
    /// Redis (docs/semantics.md Q5).
    pub fn dedupe_key(&self) -> Option<&str> {
        self.meta.dedupe.as_deref()
    }

    /// The payload's bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload decoded as a `T` (it was added with
    /// [`add_value`](super::JobQueue::add_value)). `Err` if it does not decode; returned from a
    /// handler with `?`, that dead-letters the job at once. Arrays and maps nest fewer than 128
    /// deep (serde_json's limit): a payload nested deeper, which only a recursive `T` could
    /// ask for, is an `Err`, never a stack overflow of the thread that decodes it.
    pub fn value<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        decode_value(&self.payload)
    }

    /// The error of the previous attempt (`None` on the first).
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// How many times this attempt has been handed to a consumer: 1, plus one for each time it
    /// was reclaimed from a consumer that stopped renewing its lease.
    pub fn deliveries(&self) -> u32 {
        self.deliveries
    }

    /// When the job was first added (the Redis server's clock).
    pub fn added_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.added_ms)
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("id", &self.meta.id)
            .field("attempt", &self.meta.attempt)
            .field("attempts", &self.meta.attempts)
            .field("priority", &self.meta.priority)
            .field("dedupe", &self.meta.dedupe)
            .field("payload_len", &self.payload.len())
            .field("last_error", &self.last_error)
            .field("deliveries", &self.deliveries)
            .finish()
    }
}

/// Encodes `value` as a payload (MessagePack, struct fields by name, so a consumer built with
/// fields added or reordered still reads it).
pub(super) fn encode_value<T: serde::Serialize + ?Sized>(
    value: &T,
) -> Result<Vec<u8>, PayloadError> {
    rmp_serde::to_vec_named(value).map_err(PayloadError::new)
}

/// How deep a payload's arrays and maps may nest when decoded (fewer than this): serde_json's
/// limit. A producer (any
/// client of the Redis server) can write a payload of a million nested arrays; decoding one
/// into a recursive type recurses once per level, and rmp-serde's own limit (1,024) still
/// overflows a 2 MiB thread stack in a debug build.
const MAX_DEPTH: usize = 128;

/// Decodes a payload written by [`encode_value`] (or by any MessagePack writer).
pub(super) fn decode_value<T: DeserializeOwned>(payload: &[u8]) -> Result<T, PayloadError> {
    let mut decoder = rmp_serde::Deserializer::from_read_ref(payload);
    decoder.set_max_depth(MAX_DEPTH);
    T::deserialize(&mut decoder).map_err(PayloadError::new)
}

/// How many arguments [`push_new_fields`] appends for a job with `options`.
pub(super) fn new_fields_len(options: &JobOptions) -> usize {
    if options.dedupe.is_some() {
        12
    } else {
        10
    }
}

/// Appends the fields of a new job's first attempt to `cmd`, in entry order (the add script
/// puts `job` first and appends `added`): [`new_fields_len`] arguments, written straight
/// into the command (no allocation per field).
pub(super) fn push_new_fields(cmd: &mut Cmd, payload: &[u8], options: &JobOptions) {
    let timeout_ms = options
        .timeout
        .map_or(0, |t| super::clock::millis(t).max(1));
    cmd.arg("attempt")
        .arg(1)
        .arg("attempts")
        .arg(options.attempts.max(1))
        .arg("backoff")
        .arg(options.backoff.encode())
        .arg("timeout")
        .arg(timeout_ms);
    if let Some(key) = &options.dedupe {
        cmd.arg("dedupe").arg(key.as_bytes());
    }
    cmd.arg("payload").arg(payload);
}

/// The fields [`parse`] reads.
const READ_FIELDS: [&str; 9] = [
    "job", "attempt", "attempts", "backoff", "timeout", "dedupe", "payload", "error", "added",
];
// [`parse`] marks them in a `u16`.
const _: () = assert!(READ_FIELDS.len() <= 16);

/// Parses an entry's fields into a job; `Err` says what is wrong (the entry is then
/// dead-lettered with that message).
pub(super) fn parse(
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    priority: Priority,
    deliveries: u32,
) -> Result<Job, String> {
    let mut id = None;
    let mut attempt = None;
    let mut attempts = None;
    let mut backoff = None;
    let mut timeout = None;
    let mut dedupe = None;
    let mut payload = None;
    let mut last_error = None;
    let mut added_ms = 0;
    let number = |name: &str, value: &[u8]| -> Result<u64, String> {
        std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("field {name:?} is not a number"))
    };
    // A field the queue reads, named twice: the scripts' Lua takes the first, a map the last;
    // rather than pick, the entry is malformed (docs/semantics.md Q11).
    // One bit per field of READ_FIELDS: no allocation per job.
    let mut seen = 0u16;
    for (name, value) in fields {
        if let Some(index) = READ_FIELDS
            .iter()
            .position(|f| f.as_bytes() == name.as_slice())
        {
            if seen & (1 << index) != 0 {
                return Err(format!("field {:?} appears twice", READ_FIELDS[index]));
            }
            seen |= 1 << index;
        }
        match name.as_slice() {
            b"job" => id = Some(JobId(number("job", &value)?)),
            b"attempt" => attempt = Some(number("attempt", &value)?),
            b"attempts" => attempts = Some(number("attempts", &value)?),
            b"backoff" => {
                let code = String::from_utf8_lossy(&value);
                backoff =
                    Some(Backoff::decode(&code).ok_or_else(|| format!("bad backoff {code:?}"))?);
            }
            b"timeout" => timeout = Some(number("timeout", &value)?),
            b"dedupe" => {
                dedupe = Some(String::from_utf8(value).map_err(|_| "dedupe key is not UTF-8")?)
            }
            b"payload" => payload = Some(value),
            b"error" => last_error = Some(String::from_utf8_lossy(&value).into_owned()),
            b"added" => added_ms = number("added", &value)?,
            _ => {} // fields of a newer version, or the dead-letter script's
        }
    }
    let missing = |name: &str| format!("no {name:?} field");
    let narrow =
        |name: &str, n: u64| u32::try_from(n).map_err(|_| format!("field {name:?} out of range"));
    let id = id.ok_or_else(|| missing("job"))?;
    let attempt = narrow("attempt", attempt.ok_or_else(|| missing("attempt"))?)?;
    let attempts = narrow("attempts", attempts.unwrap_or(1))?.max(1);
    Ok(Job {
        meta: JobMeta {
            id,
            attempt: attempt.max(1),
            attempts,
            backoff: backoff.unwrap_or_default(),
            timeout: timeout.filter(|&ms| ms > 0).map(Duration::from_millis),
            dedupe,
            priority,
        },
        payload: payload.ok_or_else(|| missing("payload"))?,
        last_error,
        deliveries: deliveries.max(1),
        added_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recursive value: what a deep payload needs in order to recurse at all.
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Tree(Vec<Tree>);

    fn nested(depth: usize) -> Vec<u8> {
        // 0x91: an array of one; 0x90: an empty array.
        let mut bytes = vec![0x91; depth];
        bytes.push(0x90);
        bytes
    }

    // docs/semantics.md Q9.
    #[test]
    fn values_nest_up_to_the_limit_and_deeper_is_an_error_not_a_stack_overflow() {
        // `nested(n)` is n + 1 arrays deep.
        let tree: Tree = decode_value(&nested(MAX_DEPTH - 2)).unwrap();
        assert_eq!(encode_value(&tree).unwrap(), nested(MAX_DEPTH - 2));
        for depth in [MAX_DEPTH - 1, 1_000_000] {
            let error = decode_value::<Tree>(&nested(depth)).unwrap_err();
            assert!(error.to_string().contains("depth"), "{error}");
        }
    }
}
