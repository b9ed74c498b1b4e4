//! Where a queue lives in Redis: every key of queue `name` starts with `sbq:{name}:` (the braces
//! are a hash tag, so all of them would sit in one slot of a cluster).
//!
//! | key | type | holds |
//! |---|---|---|
//! | `jobs:high`, `jobs:normal`, `jobs:low` | stream + consumer group `sharedbuf` | jobs ready to run (waiting), those a consumer holds (pending, leased), and completed ones not trimmed yet (acknowledged) |
//! | `acked:high`, `acked:normal`, `acked:low` | string | how many acknowledged entries its stream still holds (`waiting` = length − pending − this) |
//! | `delayed` | sorted set | ids of jobs waiting for their delay or backoff, scored by their due time (ms, the server's clock) |
//! | `delayed:<id>` | hash | the fields of delayed job `<id>` |
//! | `dead` | stream | jobs that failed their last attempt, with their error |
//! | `seq` | string | the last job id given out |
//! | `stats` | hash | counters: completed, failed, retried, dead, deduplicated, reclaimed, released |
//! | `consumers` | hash | the same per consumer: `<consumer>\|completed`, ... |
//! | `dedupe:<key>` | string | `pending:<id>` or `done:<id>`: the job that owns a dedupe key |
//! | `live:<consumer>` | string | the token of the live consumer with that name (its fencing token) |

use redis::Cmd;

use super::error::QueueError;
use crate::pool::Priority;

/// The consumer group every consumer of a queue joins.
pub(super) const GROUP: &str = "sharedbuf";

/// `XGROUP CREATE <stream> sharedbuf 0 MKSTREAM`: from the start, so jobs added before the
/// group existed are served too.
pub(super) fn create_group(stream: &str) -> Cmd {
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .clone()
}

/// The priority levels in the order consumers serve them, highest first.
pub(super) const LEVELS: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

/// The index of `priority` in [`LEVELS`].
pub(super) fn level_index(priority: Priority) -> usize {
    match priority {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
    }
}

/// The name of a level inside keys and fields.
pub(super) fn level_name(priority: Priority) -> &'static str {
    match priority {
        Priority::High => "high",
        Priority::Normal => "normal",
        Priority::Low => "low",
    }
}

/// The key names of one queue.
#[derive(Debug, Clone)]
pub(super) struct Keys {
    /// `sbq:{name}:`, the prefix every key starts with (scripts build per-job keys from it).
    pub(super) prefix: String,
    /// The level streams, highest first.
    pub(super) streams: [String; 3],
    /// Per level stream: how many acknowledged entries it still holds (see `scripts.rs`).
    pub(super) acked: [String; 3],
    pub(super) delayed: String,
    pub(super) dead: String,
    pub(super) stats: String,
    pub(super) consumers: String,
}

impl Keys {
    /// The keys of queue `name`; `Err(InvalidName)` for an empty name, one longer than 200
    /// bytes, or one with braces, whitespace or control characters.
    pub(super) fn new(name: &str) -> Result<Keys, QueueError> {
        validate("queue", name)?;
        let prefix = format!("sbq:{{{name}}}:");
        let key = |suffix: &str| format!("{prefix}{suffix}");
        Ok(Keys {
            streams: LEVELS.map(|level| key(&format!("jobs:{}", level_name(level)))),
            acked: LEVELS.map(|level| key(&format!("acked:{}", level_name(level)))),
            delayed: key("delayed"),
            dead: key("dead"),
            stats: key("stats"),
            consumers: key("consumers"),
            prefix,
        })
    }

    /// The stream of priority `level`.
    pub(super) fn stream(&self, level: Priority) -> &str {
        &self.streams[level_index(level)]
    }

    /// The acknowledged-entry count of the stream of priority `level`.
    pub(super) fn acked(&self, level: Priority) -> &str {
        &self.acked[level_index(level)]
    }

    /// The liveness (fencing) key of consumer `consumer`.
    pub(super) fn live(&self, consumer: &str) -> String {
        format!("{}live:{consumer}", self.prefix)
    }
}

/// Checks a queue or consumer name: 1 to 200 bytes, no braces (they would break the hash tag),
/// no `|` (the per-consumer counters use it), no whitespace or control characters.
pub(super) fn validate(what: &'static str, name: &str) -> Result<(), QueueError> {
    let bad = name.is_empty()
        || name.len() > 200
        || name
            .chars()
            .any(|c| c == '{' || c == '}' || c == '|' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(QueueError::InvalidName {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}
