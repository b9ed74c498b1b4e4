//! The queue against a real `redis-server`: a job's life — added, run on a pool, acknowledged —
//! payloads as bytes and serde values, statistics, and closing (docs/semantics.md Q1).
#![cfg(feature = "redis")]

mod queue_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use queue_support::{queue_name, redis_or_skip, wait_until, Gate};
use sharedbuf::pool::{Priority, WorkerPool};
use sharedbuf::queue::{redis, Added, Backoff, JobError, JobId, JobOptions, JobQueue};

fn pool(threads: usize) -> Arc<WorkerPool> {
    Arc::new(WorkerPool::builder().max_threads(threads).build().unwrap())
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Resize {
    image: String,
    width: u32,
}

// docs/semantics.md Q1
#[test]
fn q1_jobs_run_once_and_are_acknowledged() {
    let Some(server) = redis_or_skip("q1_jobs_run_once_and_are_acknowledged") else {
        return;
    };
    let queue = JobQueue::connect(&server.url(), &queue_name("basics")).unwrap();
    let ids: Vec<Added> = (0..50u32)
        .map(|i| queue.add(i.to_le_bytes(), JobOptions::new()).unwrap())
        .collect();
    assert!(ids.iter().all(Added::is_new));
    assert_eq!(queue.stats().unwrap().waiting, 50);

    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let consumer = queue
        .consumer("basics-a")
        .concurrency(4)
        .run_on(&pool(4), move |job, _ctx| {
            let n = u32::from_le_bytes(job.payload().try_into().unwrap());
            record.lock().unwrap().push((job.id(), n, job.attempt()));
            Ok(())
        })
        .unwrap();
    wait_until("50 jobs completed", || {
        queue.stats().unwrap().completed == 50
    });
    let stats = consumer.close(Some(Duration::from_secs(10))).unwrap();
    assert_eq!((stats.completed, stats.fetched, stats.failed), (50, 50, 0));

    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let expected: Vec<_> = ids
        .iter()
        .zip(0..50u32)
        .map(|(added, n)| (added.id(), n, 1))
        .collect();
    assert_eq!(
        seen, expected,
        "every job ran exactly once, on its first attempt"
    );
    let stats = queue.stats().unwrap();
    assert_eq!((stats.waiting, stats.active, stats.completed), (0, 0, 50));
    let consumer = stats
        .consumers
        .iter()
        .find(|c| c.name == "basics-a")
        .unwrap();
    assert_eq!((consumer.completed, consumer.active), (50, 0));
}

#[test]
fn serde_values_round_trip_as_messagepack() {
    let Some(server) = redis_or_skip("serde_values_round_trip_as_messagepack") else {
        return;
    };
    let queue = JobQueue::connect(&server.url(), &queue_name("serde")).unwrap();
    let sent = Resize {
        image: "cat.png".into(),
        width: 200,
    };
    queue.add_value(&sent, JobOptions::new()).unwrap();
    let got = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&got);
    let consumer = queue
        .consumer("serde-a")
        .run_on(&pool(1), move |job, _ctx| {
            *slot.lock().unwrap() = Some(job.value::<Resize>()?);
            Ok(())
        })
        .unwrap();
    wait_until("the job ran", || got.lock().unwrap().is_some());
    consumer.close(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(got.lock().unwrap().clone(), Some(sent));
}

#[test]
fn a_batch_is_added_in_order() {
    let Some(server) = redis_or_skip("a_batch_is_added_in_order") else {
        return;
    };
    let queue = JobQueue::connect(&server.url(), &queue_name("batch")).unwrap();
    let added = queue
        .add_batch((0..2500u32).map(|i| (i.to_le_bytes(), JobOptions::new())))
        .unwrap();
    let ids: Vec<u64> = added.iter().map(|a| a.id().0).collect();
    assert_eq!(ids, (1..=2500).collect::<Vec<_>>());
    let ran = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&ran);
    let consumer = queue
        .consumer("batch-a")
        .concurrency(8)
        .run_on(&pool(2), move |_job, _ctx| {
            count.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    wait_until("2500 jobs completed", || {
        queue.stats().unwrap().completed == 2500
    });
    consumer.close(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(ran.load(Ordering::Relaxed), 2500);
}

// docs/semantics.md Q3, Q5: one ADD call carries a whole batch; each job in it is added as a
// single `add` would add it — its level, its delay, its dedupe key checked against jobs added
// before it, in the same call too — and the new ones get consecutive ids.
#[test]
fn a_batch_mixes_levels_delays_and_dedupe_keys() {
    let Some(server) = redis_or_skip("a_batch_mixes_levels_delays_and_dedupe_keys") else {
        return;
    };
    let queue = JobQueue::connect(&server.url(), &queue_name("mixed")).unwrap();
    assert_eq!(
        queue.add(b"a", JobOptions::new().dedupe("a")).unwrap(),
        Added::New(JobId(1))
    );
    let jobs: [(&[u8], JobOptions); 6] = [
        (b"plain", JobOptions::new()),
        (b"high", JobOptions::new().priority(Priority::High)),
        (b"a again", JobOptions::new().dedupe("a")),
        (b"b", JobOptions::new().dedupe("b")),
        (b"b again", JobOptions::new().dedupe("b")),
        (
            b"later",
            JobOptions::new()
                .priority(Priority::Low)
                .delay(Duration::from_millis(50)),
        ),
    ];
    let added = queue.add_batch(jobs).unwrap();
    assert_eq!(
        added,
        [
            Added::New(JobId(2)),
            Added::New(JobId(3)),
            Added::Duplicate(JobId(1)),
            Added::New(JobId(4)),
            Added::Duplicate(JobId(4)),
            Added::New(JobId(5)),
        ]
    );
    let stats = queue.stats().unwrap();
    assert_eq!((stats.waiting, stats.delayed), (4, 1));

    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let consumer = queue
        .consumer("mixed-a")
        .run_on(&pool(1), move |job, _ctx| {
            let payload = String::from_utf8(job.payload().to_vec()).unwrap();
            record
                .lock()
                .unwrap()
                .push((job.id().0, payload, job.priority()));
            Ok(())
        })
        .unwrap();
    wait_until("5 jobs completed", || queue.stats().unwrap().completed == 5);
    consumer.close(Some(Duration::from_secs(10))).unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort();
    let expected = [
        (1, "a", Priority::Normal),
        (2, "plain", Priority::Normal),
        (3, "high", Priority::High),
        (4, "b", Priority::Normal),
        (5, "later", Priority::Low),
    ]
    .map(|(id, payload, level)| (id, payload.to_string(), level));
    assert_eq!(seen, expected);
}

// docs/semantics.md Q1 (scripts.rs, "Retention"): completed entries are acknowledged and
// trimmed away in whole stream nodes, never past a job still held (J1) — here a job held while
// 300 others complete still has its entry when it fails and is retried — and `waiting` stays
// exact while completed entries wait to be trimmed.
#[test]
fn completed_entries_are_trimmed_but_never_a_held_one() {
    let Some(server) = redis_or_skip("completed_entries_are_trimmed_but_never_a_held_one") else {
        return;
    };
    const OTHERS: usize = 300;
    let name = queue_name("trim");
    let queue = JobQueue::connect(&server.url(), &name).unwrap();
    let retry_once = JobOptions::new().attempts(2).backoff(Backoff::none());
    queue.add(b"held", retry_once).unwrap();
    queue
        .add_batch((0..OTHERS).map(|_| (b"other", JobOptions::new())))
        .unwrap();
    let others = Arc::new(AtomicUsize::new(0));
    let done = Arc::clone(&others);
    let consumer = queue
        .consumer("trim-a")
        .concurrency(2)
        .run_on(&pool(2), move |job, _ctx| {
            if job.payload() == b"other" {
                done.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            if job.attempt() == 1 {
                // Held while every other job completes, then failed: its retry reads its entry.
                wait_until("the other jobs completed", || {
                    done.load(Ordering::SeqCst) == OTHERS
                });
                return Err(JobError::retry("once"));
            }
            Ok(())
        })
        .unwrap();
    wait_until("every job completed", || {
        queue.stats().unwrap().completed == OTHERS as u64 + 1
    });
    consumer.close(Some(Duration::from_secs(10))).unwrap();
    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.waiting, stats.active, stats.retried),
        (0, 0, 1),
        "{stats:?}"
    );
    let mut con = server.connection();
    let stream = format!("sbq:{{{name}}}:jobs:normal");
    let length: usize = redis::cmd("XLEN").arg(&stream).query(&mut con).unwrap();
    let acked: usize = redis::cmd("GET")
        .arg(format!("sbq:{{{name}}}:acked:normal"))
        .query(&mut con)
        .unwrap();
    assert!(length < OTHERS, "trimmed: {length} entries left");
    assert_eq!(acked, length, "every entry left is a completed one");

    queue
        .add_batch((0..3).map(|_| (b"new", JobOptions::new())))
        .unwrap();
    assert_eq!(queue.stats().unwrap().waiting, 3);
}

/// A stream entry as XREADGROUP answers it: its id and its fields.
type Entry = (String, Vec<(String, String)>);

// scripts.rs, "Retention": a job held for long stops the trimming at its entry; once 10,000
// acknowledged entries are kept behind it, completed entries are deleted instead, so the
// stream stops growing. (The test writes 9,997 acknowledged entries behind the held job by
// hand instead of completing 10,000 jobs; the count must match the stream, which a consumer
// that finds the queue empty sets it to, docs/semantics.md Q11.)
#[test]
fn behind_a_long_held_job_completed_entries_are_deleted() {
    let Some(server) = redis_or_skip("behind_a_long_held_job_completed_entries_are_deleted") else {
        return;
    };
    let name = queue_name("held-long");
    let queue = JobQueue::connect(&server.url(), &name).unwrap();
    queue.add(b"held", JobOptions::new()).unwrap();
    let mut con = server.connection();
    let stream = format!("sbq:{{{name}}}:jobs:normal");
    let acked = format!("sbq:{{{name}}}:acked:normal");
    let mut fill = redis::pipe();
    for _ in 0..9_997 {
        fill.cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("filler")
            .arg("1")
            .ignore();
    }
    fill.query::<()>(&mut con).unwrap();
    // The consumer-to-be read them all (the held job pending for it, as after a reconnect),
    // and acknowledged the fillers.
    let read: Vec<(String, Vec<Entry>)> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("sharedbuf")
        .arg("held-long-a")
        .arg("COUNT")
        .arg(9_998)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query(&mut con)
        .unwrap();
    let fillers: Vec<&str> = read[0].1[1..].iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(fillers.len(), 9_997);
    let n: usize = redis::cmd("XACK")
        .arg(&stream)
        .arg("sharedbuf")
        .arg(&fillers)
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 9_997);
    redis::cmd("SET")
        .arg(&acked)
        .arg(9_997)
        .query::<()>(&mut con)
        .unwrap();
    queue
        .add_batch((0..3).map(|_| (b"other", JobOptions::new())))
        .unwrap();
    let others = Arc::new(AtomicUsize::new(0));
    let done = Arc::clone(&others);
    let release = Gate::new();
    let go = release.clone();
    let consumer = queue
        .consumer("held-long-a")
        .concurrency(2)
        .prefetch(0) // one job a read, so each of the others is acknowledged in its own call
        .run_on(&pool(2), move |job, _ctx| {
            if job.payload() == b"other" {
                done.fetch_add(1, Ordering::SeqCst);
            } else {
                go.pass();
            }
            Ok(())
        })
        .unwrap();
    // Declared after the consumer: a failing assert opens the gate before the consumer's drop
    // waits for the held job (no hang in the pool before the failure is reported).
    let _open = release.open_at_exit();
    wait_until("the other jobs completed", || {
        queue.stats().unwrap().completed == 3
    });
    let length: usize = redis::cmd("XLEN").arg(&stream).query(&mut con).unwrap();
    let kept: usize = redis::cmd("GET").arg(&acked).query(&mut con).unwrap();
    // The first two were kept (9,998, 9,999), the third reached 10,000 and was deleted.
    assert_eq!((length, kept), (10_000, 9_999));
    release.open();
    wait_until("the held job completed", || {
        queue.stats().unwrap().completed == 4
    });
    consumer.close(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(others.load(Ordering::SeqCst), 3);
}
