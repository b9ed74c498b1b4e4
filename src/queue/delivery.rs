//! [`Delivery`]: one entry handed to a consumer by FETCH, RECLAIM or RECOVER, parsed.

use redis::Value;

use super::job::{self, Job};
use super::keys::LEVELS;
use super::packed;
use super::reply::{self, Reply, ReplyError};
use crate::pool::Priority;

/// Where an entry lives: its level and its stream id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct EntryRef {
    pub(super) level: Priority,
    pub(super) id: String,
}

/// One entry a script handed to this consumer.
#[derive(Debug)]
pub(super) struct Delivery {
    pub(super) entry: EntryRef,
    /// Its dedupe key is already done: acknowledge it without running the handler.
    pub(super) duplicate: bool,
    /// The job, or why the entry is not one (it is then dead-lettered with that message).
    pub(super) job: Result<Job, String>,
}

/// Parses one `{level, id, fields, deliveries, done}` element of a script's answer (the fields
/// a flat list, or packed into one string: `packed.rs`).
pub(super) fn parse(value: Value) -> Reply<Delivery> {
    let mut items = reply::array(value)?.into_iter();
    let level = reply::int(reply::next(&mut items, "level")?)?;
    let level = usize::try_from(level)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .and_then(|l| LEVELS.get(l).copied())
        .ok_or_else(|| ReplyError(format!("level {level}")))?;
    let id = reply::text(reply::next(&mut items, "entry id")?)?;
    let fields = match reply::next(&mut items, "fields")? {
        Value::BulkString(packed) => packed::fields(&packed)?, // FETCH's
        list => reply::pairs(list)?,                           // RECLAIM's, RECOVER's
    };
    let deliveries = reply::int(reply::next(&mut items, "deliveries")?)?;
    let duplicate = reply::int(reply::next(&mut items, "done flag")?)? == 1;
    let deliveries = u32::try_from(deliveries.max(1)).unwrap_or(u32::MAX);
    Ok(Delivery {
        entry: EntryRef { level, id },
        duplicate,
        job: job::parse(fields, level, deliveries).map_err(|e| format!("malformed entry: {e}")),
    })
}
