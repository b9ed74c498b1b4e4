//! What a careless or hostile user gives the job queue: durations up to `Duration::MAX` (a
//! common way to say "forever") in every setting and job option, an empty dedupe key, a
//! payload longer than Redis takes, a count of `usize::MAX`. Each gets a working queue or a clear `Err`, never a panic of a
//! consumer's thread (docs/semantics.md Q9).
#![cfg(feature = "redis")]

mod queue_support;

use std::sync::Arc;
use std::time::Duration;

use queue_support::{queue_name, redis_or_skip, wait_until};
use sharedbuf::pool::WorkerPool;
use sharedbuf::queue::{Added, Backoff, JobError, JobOptions, JobQueue, QueueError};

const CLOSE: Option<Duration> = Some(Duration::from_secs(20));

// docs/semantics.md Q9, Q2, Q3, Q4: a consumer whose lease, block time and poll interval are
// `Duration::MAX` runs jobs whose timeout is `Duration::MAX`, retries a job whose backoff is
// `Duration::MAX` (it then waits, delayed, for ever), leaves a job delayed by `Duration::MAX`
// delayed, and keeps running. (Before: its dispatcher thread panicked on `Instant` overflow,
// the consumer ran nothing more, and `close` waited for ever for its wake-up reader.)
#[test]
fn q9_durations_of_duration_max_mean_forever_and_the_consumer_keeps_running() {
    let Some(server) = redis_or_skip("q9_durations_of_duration_max") else {
        return;
    };
    let queue = JobQueue::connect(&server.url(), &queue_name("forever")).unwrap();
    let add = |payload: &str, options: JobOptions| queue.add(payload, options).unwrap();
    add("plain", JobOptions::new());
    add("no timeout", JobOptions::new().timeout(Duration::MAX));
    add(
        "fails once",
        JobOptions::new()
            .attempts(2)
            .backoff(Backoff::fixed(Duration::MAX)),
    );
    add("never due", JobOptions::new().delay(Duration::MAX));
    let pool = Arc::new(WorkerPool::builder().max_threads(1).build().unwrap());
    let consumer = queue
        .consumer("forever-a")
        .lease(Duration::MAX)
        .block(Duration::MAX)
        .poll_interval(Duration::MAX)
        .run_on(&pool, |job, _ctx| match job.payload() {
            b"fails once" => Err(JobError::retry("once")),
            b"never due" => panic!("a job delayed by Duration::MAX ran"),
            _ => Ok(()),
        })
        .unwrap();
    wait_until("two jobs completed and one retried", || {
        let stats = queue.stats().unwrap();
        stats.completed == 2 && stats.retried == 1
    });
    assert!(consumer.is_running(), "{consumer:?}");
    // A job added now still runs: the wake-up reader (blocking for ever) sees it.
    add("late", JobOptions::new());
    wait_until("the late job completed", || {
        queue.stats().unwrap().completed == 3
    });
    let stats = queue.stats().unwrap();
    assert_eq!(
        stats.delayed, 2,
        "the retried job and the never-due one: {stats:?}"
    );
    assert!(consumer.is_running(), "{consumer:?}");
    let closed = consumer.close(CLOSE).unwrap();
    assert_eq!((closed.completed, closed.retried), (3, 1), "{closed:?}");
}

// docs/semantics.md Q9, Q5, Q6: connection settings of `Duration::MAX` (connect and command
// timeouts, the retry budget, the reconnect backoff, the dedupe window) give a queue that adds,
// deduplicates and reports. (Before: the dedupe window went to Redis as 2^64 - 1 ms, which
// Redis refuses as an expiry, so every add with a dedupe key failed.)
#[test]
fn q9_connection_settings_of_duration_max_work() {
    let Some(server) = redis_or_skip("q9_connection_settings_of_duration_max_work") else {
        return;
    };
    let queue = JobQueue::builder(&server.url(), &queue_name("settings"))
        .connect_timeout(Duration::MAX)
        .command_timeout(Duration::MAX)
        .retry_for(Duration::MAX)
        .reconnect_backoff(Duration::MAX, Duration::MAX)
        .dedupe_window(Duration::MAX)
        .connect()
        .unwrap();
    let first = queue.add("a", JobOptions::new().dedupe("key")).unwrap();
    assert!(first.is_new(), "{first:?}");
    assert_eq!(
        queue.add("b", JobOptions::new().dedupe("key")).unwrap(),
        Added::Duplicate(first.id())
    );
    let stats = queue.stats().unwrap();
    assert_eq!((stats.waiting, stats.deduplicated), (1, 0), "{stats:?}");
}

// docs/semantics.md Q9, Q5: an empty dedupe key is refused, by `add` and by `add_batch` (the
// scripts read an empty key as none: the job would have been queued without one, and a
// second one beside it). A batch stops before the round trip that holds it.
#[test]
fn q9_an_empty_dedupe_key_is_refused() {
    let Some(server) = redis_or_skip("q9_an_empty_dedupe_key_is_refused") else {
        return;
    };
    let queue = JobQueue::connect(&server.url(), &queue_name("empty-key")).unwrap();
    fn refused<T>(result: Result<T, QueueError>) -> bool {
        matches!(result, Err(QueueError::InvalidOption(ref what)) if what.contains("dedupe"))
    }
    assert!(refused(queue.add("a", JobOptions::new().dedupe(""))));
    let batch = vec![
        ("b", JobOptions::new()),
        ("c", JobOptions::new().dedupe("")),
    ];
    assert!(refused(queue.add_batch(batch)));
    assert_eq!(queue.stats().unwrap().waiting, 0);
    // A key of one character is a key.
    assert!(queue
        .add("d", JobOptions::new().dedupe("k"))
        .unwrap()
        .is_new());
    assert!(!queue
        .add("e", JobOptions::new().dedupe("k"))
        .unwrap()
        .is_new());
}

// docs/semantics.md Q9: a payload longer than Redis takes (512 MiB) is refused at once, in
// `add` and in `add_batch`, and the queue goes on. (Before: Redis dropped the connection, and
// the add sent the payload again until its retry budget ran out: `Err(Unavailable)` with
// "connection reset" after seconds.)
#[test]
fn q9_a_payload_over_512_mib_is_refused_at_once() {
    let Some(server) = redis_or_skip("q9_a_payload_over_512_mib_is_refused_at_once") else {
        return;
    };
    let queue = JobQueue::builder(&server.url(), &queue_name("huge"))
        .retry_for(Duration::from_secs(2))
        .connect()
        .unwrap();
    // Zeroed on demand: the test touches none of it.
    let huge = vec![0u8; (512 << 20) + 1];
    let refused = |result: Result<_, QueueError>| matches!(result, Err(QueueError::InvalidOption(ref what)) if what.contains("512 MiB"));
    assert!(refused(queue.add(&huge, JobOptions::new()).map(|_| ())));
    assert!(refused(
        queue
            .add_batch([(&huge[..], JobOptions::new())])
            .map(|_| ())
    ));
    assert!(queue.add("small", JobOptions::new()).unwrap().is_new());
    assert_eq!(queue.stats().unwrap().waiting, 1);
}

// docs/semantics.md Q9, Q2: `dead_letters(usize::MAX)` reads them all (Redis takes a signed
// count; before, it answered "value is not an integer or out of range").
#[test]
fn q9_dead_letters_of_usize_max_reads_them_all() {
    let Some(server) = redis_or_skip("q9_dead_letters_of_usize_max_reads_them_all") else {
        return;
    };
    let queue = JobQueue::connect(&server.url(), &queue_name("all-dead")).unwrap();
    for n in 0..3 {
        queue.add(format!("{n}"), JobOptions::new()).unwrap();
    }
    let pool = Arc::new(WorkerPool::builder().max_threads(1).build().unwrap());
    let consumer = queue
        .consumer("all-dead-a")
        .run_on(&pool, |_job, _ctx| Err::<(), _>(JobError::permanent("no")))
        .unwrap();
    wait_until("three dead letters", || {
        queue.stats().unwrap().dead_lettered == 3
    });
    consumer.close(CLOSE).unwrap();
    assert_eq!(queue.dead_letters(usize::MAX).unwrap().len(), 3);
    assert_eq!(queue.dead_letters(2).unwrap().len(), 2);
    assert_eq!(queue.dead_letters(0).unwrap().len(), 0);
}
