//! A job queue on Redis Streams whose consumers run jobs on a [`WorkerPool`] — the step from one
//! machine to many (docs/semantics.md Q1–Q8). Behind the cargo feature `redis`.
//!
//! # Beyond one machine
//!
//! A [`WorkerPool`] keeps one machine busy. When one machine is not enough — or the work must
//! survive the process that queued it, or be spread over machines that come and go — the next
//! step is not to stretch threads across machines but to put the work in a queue that many
//! machines consume. Move from a pool to this queue when:
//!
//! - the producer and the workers live in different processes or machines (a web server
//!   queues, a fleet of workers runs);
//! - a job must not be lost when a process dies (it is stored in Redis until acknowledged, and
//!   reclaimed from a dead consumer after its lease);
//! - jobs need retries with backoff, delays, priorities, a dead-letter stream, deduplication,
//!   or statistics across all workers.
//!
//! Keep using the pool alone for work that lives and dies with its process (a parallel map,
//! a request's subtasks): a queue round trip costs tens of microseconds, a pool task one.
//!
//! A fleet consumes one stream like this: every machine runs one process with a pool sized
//! to its cores and one consumer with a unique name (host and process id) and `concurrency`
//! equal to the pool's threads. All consumers join the queue's consumer group, so Redis hands
//! each job to exactly one of them; each holds only as many jobs as it has slots plus a few
//! ready to start (`prefetch`, read in batches: fewer round trips a job), so a busy machine
//! leaves the backlog to idle ones, and a new machine starts taking jobs the moment it
//! connects. For long jobs, `prefetch(0)` keeps a machine from holding jobs it cannot start
//! yet. A machine that dies leaves its jobs pending; once their lease expires
//! (30 s by default) the other consumers reclaim and run them.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use sharedbuf::pool::WorkerPool;
//! use sharedbuf::queue::{Backoff, JobOptions, JobQueue};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Thumbnail { image: String, width: u32 }
//!
//! // Producer (any process, any machine):
//! let queue = JobQueue::connect("redis://10.0.0.5:6379", "thumbnails")?;
//! queue.add_value(
//!     &Thumbnail { image: "cat.png".into(), width: 200 },
//!     JobOptions::new()
//!         .attempts(5)
//!         .backoff(Backoff::exponential(Duration::from_secs(1)).jitter())
//!         .timeout(Duration::from_secs(60))
//!         .dedupe("thumb:cat.png:200"),
//! )?;
//!
//! // Consumer (every worker machine):
//! let pool = Arc::new(WorkerPool::new()?);
//! let name = format!("{}-{}", "worker-host", std::process::id());
//! let consumer = queue.consumer(&name).concurrency(pool.max_threads()).run_on(&pool, |job, ctx| {
//!     let task: Thumbnail = job.value()?;     // malformed: dead-lettered at once
//!     let _ = (task.image, task.width, ctx);  // ... resize, checking ctx.is_cancelled() ...
//!     Ok(())
//! })?;
//! // On shutdown: finish what runs, give back what has not started.
//! consumer.close(Some(Duration::from_secs(60)))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Why this queue
//!
//! BullMQ (Node) is the model: at-least-once delivery, retries, backoff, delays, priorities,
//! stalled-job recovery. Its open-source version has no job timeout (bullmq#136), and it renews
//! job locks from the processor's own event loop, so a processor that hogs the loop is taken
//! for stalled and its job runs twice (#631, #3078). The Rust options (apalis, faktory, rsmq,
//! BullMQ's port) all need tokio. Here:
//!
//! - the client is the `redis` crate's plain synchronous one: no async runtime;
//! - a job's timeout is the pool task's timeout: it sets the task's cancel flag
//!   ([`TaskContext::is_cancelled`](crate::pool::TaskContext::is_cancelled)) and counts as a
//!   failed attempt (Q4);
//! - leases are renewed by a thread of the consumer that runs no jobs, so a busy job is never
//!   mistaken for a stalled one;
//! - every state change of a job is one Lua script, atomic in Redis and fenced by ownership,
//!   which is what the guarantees below rest on.
//!
//! # Guarantees, and why they hold
//!
//! **At least once (Q1).** A job is stored in Redis from `add` until a FINISH script moves it
//! on, and nothing else removes it (invariant J1 in `scripts.rs`). While a consumer holds it,
//! the job is a pending entry of the consumer group; if the consumer dies, hangs, or loses Redis
//! for longer than the lease, it stops renewing, and RECLAIM (`XAUTOCLAIM`) gives the entry to a
//! live consumer (J3). A failed attempt is written back (retry) or to the dead-letter stream in
//! the same script that acknowledges it (Q2). A lost connection loses nothing either: every
//! request is sent again until answered, and a read whose answer was lost left its jobs pending
//! for this consumer, which takes them back from its own pending list after every reconnect
//! (RECOVER; Q6).
//!
//! **At most one acknowledgement, effects exactly once (Q5).** FINISH acts only if the
//! consumer still owns the entry (J2) — after a lease was lost, or after a reply was lost and
//! the request sent again, it finds the entry gone and does nothing. So each entry is
//! acknowledged at most once, and the [`Effects`] a handler returns, committed inside that same
//! script, are applied at most once per entry. A job has at most one live entry at a time (J1),
//! and a successful FINISH ends it; so across its retries and redeliveries its effects are
//! committed at most once, and since it is retried until it succeeds or is dead-lettered, once
//! exactly for every completed job. The dedupe key extends this across *different* jobs with
//! the same key: `add` refuses a second job while the first is pending or done within the
//! dedupe window, and a job whose key is already done is acknowledged without running its
//! handler and without its effects. Redis records a script in its append-only file as one
//! transaction, so a restart never keeps an acknowledgement without its effects or the reverse.
//!
//! What the queue cannot do: make the handler itself run once. A consumer can die after its
//! handler changed something outside Redis and before FINISH; the job then runs again. Effects
//! outside Redis must be idempotent, keyed by [`Job::dedupe_key`] (or the job id).
//!
//! # Files
//!
//! `scripts.rs` (every protocol and its invariants), `link.rs` (reconnection), `dispatcher.rs`
//! (a job's life in a consumer), `lease.rs` (the lease keeper), `wakeup.rs` (the blocking
//! reader), `job_queue.rs` (the producer's side), `consumer.rs`, `job.rs` (entry layout),
//! `options.rs`, `backoff.rs`, `effects.rs`, `finish.rs`, `delivery.rs`, `packed.rs`, `keys.rs`
//! (the key layout), `stats.rs`, `config.rs`, `error.rs`, `reply.rs`, `shared.rs`,
//! `random.rs`.

mod backoff;
mod clock;
mod config;
mod consumer;
mod delivery;
mod dispatcher;
mod effects;
mod error;
mod event;
mod finish;
mod job;
mod job_id;
mod job_queue;
mod keys;
mod lease;
mod link;
mod options;
mod packed;
mod random;
mod reply;
mod scripts;
mod shared;
mod stats;
mod wakeup;

pub use backoff::Backoff;
pub use config::JobQueueBuilder;
pub use consumer::{Consumer, ConsumerBuilder};
pub use effects::Effects;
pub use error::{JobError, PayloadError, QueueError};
pub use job::Job;
pub use job_id::JobId;
pub use job_queue::{DeadLetter, JobQueue};
pub use options::{Added, JobOptions};
pub use stats::{ConsumerCounts, ConsumerStats, QueueStats};

/// The `redis` crate this module is built on (build [`Effects`] with its
/// [`cmd`](fn@redis::cmd)).
pub use redis;

#[allow(unused_imports)] // for the doc links above
use crate::pool::WorkerPool;
