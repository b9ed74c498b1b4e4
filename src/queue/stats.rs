//! Statistics: [`QueueStats`] (the whole queue, read from Redis), [`ConsumerCounts`] (one
//! consumer's share of it) and [`ConsumerStats`] (what one running consumer counted itself).

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a queue (docs/semantics.md Q1–Q6), from [`JobQueue::stats`].
///
/// `completed`, `failed`, `retried`, `dead_lettered`, `deduplicated`, `reclaimed` and
/// `released` are counted by the scripts that make those moves, in the same atomic step, so
/// they survive consumer crashes and Redis restarts (with an append-only file) and are never
/// counted twice. `waiting`, `active` and `delayed` are read from the streams and the delayed
/// set in one round trip (not one atomic step: a job moving meanwhile may be seen in two places
/// or none).
///
/// [`JobQueue::stats`]: super::JobQueue::stats
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStats {
    /// Jobs ready to run that no consumer holds yet.
    pub waiting: u64,
    /// Jobs a consumer holds (running, or fetched and about to run): the consumer group's
    /// pending entries.
    pub active: u64,
    /// Jobs waiting for their delay or for the backoff before their next attempt.
    pub delayed: u64,
    /// Jobs whose handler succeeded (acknowledged), including duplicates acknowledged
    /// without running.
    pub completed: u64,
    /// Failed attempts (an error, a panic, a timeout), retried or not.
    pub failed: u64,
    /// Failed attempts followed by another attempt.
    pub retried: u64,
    /// Jobs moved to the dead-letter stream (the last attempt failed, a permanent error, a
    /// malformed entry, or too many stalls).
    pub dead_lettered: u64,
    /// Jobs acknowledged without running their handler because their dedupe key was done.
    pub deduplicated: u64,
    /// Entries taken from consumers whose lease expired.
    pub reclaimed: u64,
    /// Jobs handed back unfinished by closing consumers.
    pub released: u64,
    /// Entries in the dead-letter stream now (they stay until you trim or read them away).
    pub dead_letter_stream: u64,
    /// Per consumer, by name, every consumer that ever counted something or holds a job now.
    pub consumers: Vec<ConsumerCounts>,
}

/// One consumer's counts in [`QueueStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerCounts {
    /// The consumer's name.
    pub name: String,
    /// Jobs it holds now.
    pub active: u64,
    /// Jobs it completed.
    pub completed: u64,
    /// Its failed attempts.
    pub failed: u64,
    /// Its failed attempts that were retried.
    pub retried: u64,
    /// Jobs it dead-lettered.
    pub dead_lettered: u64,
    /// Duplicates it acknowledged without running.
    pub deduplicated: u64,
    /// Entries it reclaimed from others.
    pub reclaimed: u64,
    /// Jobs it handed back when closing.
    pub released: u64,
}

impl ConsumerCounts {
    /// Sets the counter a script named `name`.
    pub(super) fn set(&mut self, name: &str, value: u64) {
        match name {
            "completed" => self.completed = value,
            "failed" => self.failed = value,
            "retried" => self.retried = value,
            "dead" => self.dead_lettered = value,
            "deduplicated" => self.deduplicated = value,
            "reclaimed" => self.reclaimed = value,
            "released" => self.released = value,
            _ => {}
        }
    }
}

impl QueueStats {
    /// Sets the queue-wide counter a script named `name`.
    pub(super) fn set(&mut self, name: &str, value: u64) {
        match name {
            "completed" => self.completed = value,
            "failed" => self.failed = value,
            "retried" => self.retried = value,
            "dead" => self.dead_lettered = value,
            "deduplicated" => self.deduplicated = value,
            "reclaimed" => self.reclaimed = value,
            "released" => self.released = value,
            _ => {}
        }
    }
}

/// What one running [`Consumer`](super::Consumer) counted itself, from
/// [`Consumer::stats`](super::Consumer::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// The consumer's name.
    pub name: String,
    /// Entries it read as new jobs (FETCH).
    pub fetched: u64,
    /// Entries it took from consumers whose lease expired.
    pub reclaimed: u64,
    /// Entries it found pending for itself after a reconnect, delivered by a read whose reply
    /// was lost.
    pub recovered: u64,
    /// Jobs it acknowledged as done.
    pub completed: u64,
    /// Of those, duplicates acknowledged without running the handler.
    pub deduplicated: u64,
    /// Its failed attempts.
    pub failed: u64,
    /// Failed attempts it scheduled again.
    pub retried: u64,
    /// Jobs it dead-lettered.
    pub dead_lettered: u64,
    /// Jobs it handed back unfinished when closing.
    pub released: u64,
    /// Jobs it lost to another consumer (its lease had expired); their results were dropped.
    /// Also counts an entry delivered again while it still held it (the group deleted and made
    /// again): that delivery is not run, the run it holds finishes the entry
    /// (docs/semantics.md Q11).
    pub lost: u64,
    /// Jobs it holds now (running, queued in the pool, or being finished).
    pub held: u64,
    /// Connections it had to open again (across its threads).
    pub reconnects: u64,
    /// Lease renewals it sent.
    pub renewals: u64,
    /// Looks for jobs whose lease expired (RECLAIM calls answered).
    pub reclaim_scans: u64,
    /// Blocking reads that ended because something arrived.
    pub wakeups: u64,
    /// Blocking reads that ended empty after their block time (never because of a client-side
    /// timeout: see docs/semantics.md Q6).
    pub idle_blocks: u64,
    /// Its calls whose queue-wide counts ([`QueueStats`]) could not be written, the `stats`,
    /// `consumers` or a level's `acked` key holding another Redis type (docs/semantics.md Q11):
    /// the jobs moved as usual, and this consumer's own counts above are right; only the
    /// queue's missed them.
    pub stats_unavailable: u64,
    /// Times a move of a job to the dead-letter stream failed, as when the `dead` key holds
    /// another Redis type (docs/semantics.md Q11): the job stayed where it was and is tried
    /// again — a failed or stalled job pending in its stream, reclaimed once its lease
    /// expires; a malformed delayed job in the delayed set, a second later.
    pub dead_letter_unavailable: u64,
}

/// The live counters behind [`ConsumerStats`], shared by the consumer's threads.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) fetched: AtomicU64,
    pub(super) reclaimed: AtomicU64,
    pub(super) recovered: AtomicU64,
    pub(super) completed: AtomicU64,
    pub(super) deduplicated: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) retried: AtomicU64,
    pub(super) dead_lettered: AtomicU64,
    pub(super) released: AtomicU64,
    pub(super) lost: AtomicU64,
    /// Shared with every [`Link`](super::link::Link) of the consumer.
    pub(super) reconnects: std::sync::Arc<AtomicU64>,
    pub(super) renewals: AtomicU64,
    pub(super) reclaim_scans: AtomicU64,
    pub(super) wakeups: AtomicU64,
    pub(super) idle_blocks: AtomicU64,
    pub(super) stats_unavailable: AtomicU64,
    pub(super) dead_letter_unavailable: AtomicU64,
}

/// Adds one.
pub(super) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(super) fn snapshot(&self, name: &str) -> ConsumerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ConsumerStats {
            name: name.to_string(),
            fetched: get(&self.fetched),
            reclaimed: get(&self.reclaimed),
            recovered: get(&self.recovered),
            completed: get(&self.completed),
            deduplicated: get(&self.deduplicated),
            failed: get(&self.failed),
            retried: get(&self.retried),
            dead_lettered: get(&self.dead_lettered),
            released: get(&self.released),
            lost: get(&self.lost),
            held: 0,
            reconnects: get(&self.reconnects),
            renewals: get(&self.renewals),
            reclaim_scans: get(&self.reclaim_scans),
            wakeups: get(&self.wakeups),
            idle_blocks: get(&self.idle_blocks),
            stats_unavailable: get(&self.stats_unavailable),
            dead_letter_unavailable: get(&self.dead_letter_unavailable),
        }
    }
}
