//! The job queue meets data it did not write: entries added by another program (missing,
//! extra or garbled fields, binary and huge job ids), dead letters written by hand, queue keys
//! replaced by another Redis type (`WRONGTYPE`), the consumer group deleted under running
//! consumers (`NOGROUP`), the stream trimmed under held jobs, the script cache flushed. Each
//! gets a clear `Err` or a dead letter with a reason, never a panic or a hang, nothing stored
//! is lost, and the consumer keeps serving well-formed jobs (docs/semantics.md Q11).
#![cfg(feature = "redis")]

mod queue_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use queue_support::{queue_name, redis_or_skip, wait_until, Gate, RedisServer};
use sharedbuf::pool::{Priority, TaskContext, WorkerPool};
use sharedbuf::queue::{
    redis, Added, Backoff, Effects, Job, JobError, JobId, JobOptions, JobQueue,
};

fn pool(threads: usize) -> Arc<WorkerPool> {
    Arc::new(WorkerPool::builder().max_threads(threads).build().unwrap())
}

/// A handler that counts its runs in `runs` and succeeds.
fn counting(
    runs: &Arc<AtomicUsize>,
) -> impl Fn(&Job, &TaskContext<'_>) -> Result<(), JobError> + Send + Sync + 'static {
    let runs = Arc::clone(runs);
    move |_job, _ctx| {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

const CLOSE: Option<Duration> = Some(Duration::from_secs(20));

/// Longer than any test: no lease expires, so nothing is rescued by a reclaim.
const NO_RECLAIM: Duration = Duration::from_secs(3600);

/// A running server (`None`, the test skipped, without redis-server), a fresh queue on it
/// named from `label`, and a plain connection to write what the queue did not.
fn setup(label: &str) -> Option<(RedisServer, String, JobQueue, redis::Connection)> {
    let server = redis_or_skip(&format!("queue_foreign: {label}"))?;
    let name = queue_name(label);
    let queue = JobQueue::connect(&server.url(), &name).unwrap();
    let con = server.connection();
    Some((server, name, queue, con))
}

/// Writes `value` at `key` as a plain string, whatever was there (a foreign key in place of
/// one of the queue's).
fn set(con: &mut redis::Connection, key: impl redis::ToRedisArgs, value: impl redis::ToRedisArgs) {
    let _: () = redis::cmd("SET").arg(key).arg(value).query(con).unwrap();
}

fn key(name: &str, suffix: &str) -> String {
    format!("sbq:{{{name}}}:{suffix}")
}

fn xadd(con: &mut redis::Connection, stream: &str, fields: &[(&[u8], &[u8])]) {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*");
    for (name, value) in fields {
        cmd.arg(*name).arg(*value);
    }
    let _: String = cmd.query(con).unwrap();
}

/// The fields of a well-formed first attempt, as the add script writes them.
fn job_fields<'a>(id: &'a [u8], payload: &'a [u8]) -> Vec<(&'a [u8], &'a [u8])> {
    vec![
        (b"job", id),
        (b"attempt", b"1"),
        (b"attempts", b"1"),
        (b"backoff", b"n"),
        (b"timeout", b"0"),
        (b"payload", payload),
    ]
}

/// A stream entry as XRANGE answers it: its id and its fields.
type Entry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// Every payload in the streams, the delayed hashes and the dead stream of queue `name`.
fn payloads_stored(con: &mut redis::Connection, name: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for suffix in ["jobs:high", "jobs:normal", "jobs:low", "dead"] {
        let entries: Vec<Entry> = redis::cmd("XRANGE")
            .arg(key(name, suffix))
            .arg("-")
            .arg("+")
            .query(con)
            .unwrap_or_default();
        for (_, fields) in entries {
            out.extend(
                fields
                    .into_iter()
                    .filter(|(n, _)| n == b"payload")
                    .map(|(_, v)| v),
            );
        }
    }
    let hashes: Vec<String> = redis::cmd("KEYS")
        .arg(key(name, "delayed:*"))
        .query(con)
        .unwrap();
    for hash in hashes {
        let payload: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(hash)
            .arg("payload")
            .query(con)
            .unwrap();
        out.extend(payload);
    }
    out
}

// docs/semantics.md Q11, Q2: entries another program wrote — no job id, a non-numeric attempt,
// a binary or a 10 KB job id, no payload — are dead-lettered with `malformed entry: …` naming
// the field; one with extra fields runs; the well-formed jobs around them all run.
#[test]
fn q11_foreign_entries_are_dead_lettered_and_the_jobs_around_them_run() {
    let Some((_server, name, queue, mut con)) = setup("foreign") else {
        return;
    };
    let stream = key(&name, "jobs:normal");
    queue.add(b"first", JobOptions::new()).unwrap();
    let huge_id = vec![b'9'; 10_000];
    let binary_id: &[u8] = &[0xff, 0x00, 0xfe];
    let mut bad = Vec::new();
    bad.push(vec![(&b"payload"[..], &b"no id"[..])]);
    let mut garbled = job_fields(b"900", b"garbled attempt");
    garbled[1] = (b"attempt", b"many");
    bad.push(garbled);
    bad.push(job_fields(binary_id, b"binary id"));
    bad.push(job_fields(&huge_id, b"huge id"));
    bad.push(job_fields(b"901", b"x")[..5].to_vec()); // no payload
    for fields in &bad {
        xadd(&mut con, &stream, fields);
    }
    let mut extra = job_fields(b"902", b"extra fields");
    extra.push((b"from", b"a newer version"));
    extra.push((b"\x00\xff", b"\x01"));
    xadd(&mut con, &stream, &extra);
    queue.add(b"last", JobOptions::new()).unwrap();

    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ran);
    let consumer = queue
        .consumer("foreign-a")
        .run_on(&pool(1), move |job, _ctx| {
            seen.lock().unwrap().push(job.payload().to_vec());
            Ok(())
        })
        .unwrap();
    wait_until(
        "three jobs completed and five entries dead-lettered",
        || {
            let stats = queue.stats().unwrap();
            stats.completed == 3 && stats.dead_lettered == 5
        },
    );
    consumer.close(CLOSE).unwrap();
    let ran = ran.lock().unwrap().clone();
    assert_eq!(
        ran,
        [&b"first"[..], b"extra fields", b"last"].map(|p| p.to_vec()),
        "the well-formed jobs, in order"
    );
    let letters = queue.dead_letters(usize::MAX).unwrap();
    assert_eq!(letters.len(), 5, "{letters:?}");
    for letter in &letters {
        assert!(
            letter.error.starts_with("malformed entry: "),
            "{}",
            letter.error
        );
        assert_eq!(letter.consumer, "foreign-a");
    }
    let errors: Vec<&str> = letters.iter().map(|l| l.error.as_str()).collect();
    assert!(errors[0].contains("\"job\""), "{errors:?}");
    assert!(errors[1].contains("\"attempt\""), "{errors:?}");
    assert!(errors[2].contains("\"job\""), "{errors:?}");
    assert!(errors[3].contains("\"job\""), "{errors:?}");
    assert!(errors[4].contains("\"payload\""), "{errors:?}");
    assert_eq!(letters[3].job, None, "a 10 KB id is no job id");
    assert_eq!(
        letters[1].payload, b"garbled attempt",
        "the payload is kept"
    );
}

// docs/semantics.md Q11, Q8: dead letters written by hand (no fields the queue writes, a
// non-numeric attempt, a negative time, an attempt past u32) are listed, never an `Err`.
#[test]
fn q11_hand_written_dead_letters_are_listed() {
    let Some((_server, name, queue, mut con)) = setup("dead-by-hand") else {
        return;
    };
    let dead = key(&name, "dead");
    xadd(&mut con, &dead, &[(b"note", b"written by an operator")]);
    xadd(
        &mut con,
        &dead,
        &[
            (b"job", b"-3"),
            (b"attempt", b"two"),
            (b"failed", b"-5"),
            (b"payload", b"\xff\x00"),
            (b"dedupe", b"\xff"),
        ],
    );
    xadd(&mut con, &dead, &[(b"attempt", b"99999999999")]);
    let letters = queue.dead_letters(usize::MAX).unwrap();
    assert_eq!(letters.len(), 3, "{letters:?}");
    assert_eq!((letters[0].job, letters[0].attempt), (None, 0));
    assert_eq!((letters[1].job, letters[1].attempt), (None, 0));
    assert_eq!(letters[1].payload, b"\xff\x00");
    assert_eq!(letters[2].attempt, u32::MAX);
    assert_eq!(queue.stats().unwrap().dead_letter_stream, 3);
}

// docs/semantics.md Q11: a level stream replaced by a string (WRONGTYPE) makes the producer
// calls that touch it `Err` naming WRONGTYPE, and the consumer goes on serving the other
// levels; a job of that level that falls due meanwhile stays delayed until the stream is back.
// (Before: the consumer's first RECOVER, and every FETCH, failed on the broken level, so no
// job of any level ran.)
#[test]
fn q11_a_level_key_of_another_type_is_an_err_and_the_other_levels_run() {
    let Some((_server, name, queue, mut con)) = setup("wrongtype-level") else {
        return;
    };
    let low = key(&name, "jobs:low");
    // Due while its level is broken: it waits, delayed, and blocks nothing.
    queue
        .add(
            b"delayed low",
            JobOptions::new()
                .priority(Priority::Low)
                .delay(Duration::from_millis(1)),
        )
        .unwrap();
    let _: () = redis::cmd("DEL").arg(&low).query(&mut con).unwrap();
    set(&mut con, &low, "not a stream");
    let err = queue
        .add(b"low", JobOptions::new().priority(Priority::Low))
        .unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    let err = queue.stats().unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    queue.add(b"before", JobOptions::new()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let consumer = queue
        .consumer("wrongtype-a")
        .lease(NO_RECLAIM)
        .run_on(&pool(1), counting(&runs))
        .unwrap();
    wait_until("the job before ran", || runs.load(Ordering::SeqCst) == 1);
    queue
        .add(b"after", JobOptions::new().priority(Priority::High))
        .unwrap();
    wait_until("the job added later ran", || {
        runs.load(Ordering::SeqCst) == 2
    });
    assert!(consumer.is_running());
    // The operator puts the stream back: the level works again.
    // (The add makes the stream without the group; the consumer's read finds NOGROUP and
    // makes the group.)
    let _: () = redis::cmd("DEL").arg(&low).query(&mut con).unwrap();
    queue
        .add(b"low again", JobOptions::new().priority(Priority::Low))
        .unwrap();
    wait_until("both low jobs ran", || runs.load(Ordering::SeqCst) == 4);
    consumer.close(CLOSE).unwrap();
    assert_eq!(queue.stats().unwrap().completed, 4);
}

// docs/semantics.md Q11, Q1, Q2: with the `stats` hash replaced by a string, a failed attempt's
// FINISH fails when it counts; the job must still be stored (retried, and run again). (Before:
// FINISH deleted the entry, then failed to count, and the retry was never added: the job was
// lost.)
#[test]
fn q11_a_failed_attempt_is_not_lost_when_a_counter_key_has_another_type() {
    let Some((_server, name, queue, mut con)) = setup("wrongtype-stats") else {
        return;
    };
    set(&mut con, key(&name, "stats"), "not a hash");
    queue
        .add(b"fails once", JobOptions::new().attempts(2))
        .unwrap();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&attempts);
    let consumer = queue
        .consumer("wrongtype-stats-a")
        .lease(NO_RECLAIM)
        .run_on(&pool(1), move |job, _ctx| {
            seen.lock().unwrap().push(job.attempt());
            if job.attempt() == 1 {
                Err(JobError::retry("first attempt fails"))
            } else {
                Ok(())
            }
        })
        .unwrap();
    wait_until("the failed attempt was answered", || {
        !attempts.lock().unwrap().is_empty() && consumer.stats().held == 0
    });
    assert_eq!(
        payloads_stored(&mut con, &name),
        [b"fails once".to_vec()],
        "the job is still stored after its failed attempt"
    );
    wait_until("the second attempt ran", || {
        attempts.lock().unwrap().len() == 2
    });
    consumer.close(CLOSE).unwrap();
    assert_eq!(*attempts.lock().unwrap(), [1, 2]);
}

// docs/semantics.md Q11, Q2: with the dead-letter stream replaced by a string, a job whose last
// attempt fails cannot be dead-lettered; it stays in its stream (Before: FINISH deleted the
// entry first, then failed to add it to the dead stream: the job was lost.)
#[test]
fn q11_a_job_is_not_lost_when_the_dead_stream_has_another_type() {
    let Some((_server, name, queue, mut con)) = setup("wrongtype-dead") else {
        return;
    };
    set(&mut con, key(&name, "dead"), "not a stream");
    queue.add(b"fails", JobOptions::new()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&runs);
    let consumer = queue
        .consumer("wrongtype-dead-a")
        .lease(NO_RECLAIM)
        .run_on(&pool(1), move |_job, _ctx| -> Result<(), JobError> {
            count.fetch_add(1, Ordering::SeqCst);
            Err(JobError::permanent("no"))
        })
        .unwrap();
    wait_until("the failure was answered", || {
        runs.load(Ordering::SeqCst) == 1 && consumer.stats().held == 0
    });
    let stats = consumer.close(CLOSE).unwrap();
    assert!(stats.dead_letter_unavailable >= 1, "{stats:?}");
    assert_eq!(payloads_stored(&mut con, &name), [b"fails".to_vec()]);
    let err = queue.dead_letters(10).unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
}

// docs/semantics.md Q11, Q5: an `add_batch` whose dedupe key is held by a key of another type
// is refused with `Err` naming WRONGTYPE and adds nothing, so job ids are never given out
// twice. (Before: the jobs before it were added, `seq` was not advanced, and the next add
// reused their ids.)
#[test]
fn q11_a_batch_refused_by_a_wrong_type_dedupe_key_adds_nothing() {
    let Some((_server, name, queue, mut con)) = setup("wrongtype-batch") else {
        return;
    };
    let _: () = redis::cmd("HSET")
        .arg(key(&name, "dedupe:taken"))
        .arg("a")
        .arg("hash")
        .query(&mut con)
        .unwrap();
    let batch = vec![
        (&b"a"[..], JobOptions::new()),
        (b"b", JobOptions::new().delay(Duration::from_secs(60))),
        (b"c", JobOptions::new().dedupe("taken")),
    ];
    let err = queue.add_batch(batch).unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    assert_eq!(payloads_stored(&mut con, &name), Vec::<Vec<u8>>::new());
    let first = queue.add(b"d", JobOptions::new()).unwrap();
    let second = queue.add(b"e", JobOptions::new()).unwrap();
    assert_ne!(first.id(), second.id());
    let stats = queue.stats().unwrap();
    assert_eq!((stats.waiting, stats.delayed), (2, 0), "{stats:?}");
    // A dedupe key holding a value someone else wrote counts as owned, by no job of ours (id
    // 0); the jobs after it in the batch are added and answered. (Before: the answer lost its
    // pairs from there on, and the batch was an `Err` although its jobs were added.)
    set(&mut con, key(&name, "dedupe:by-hand"), "set by an operator");
    let added = queue
        .add_batch(vec![
            (&b"f"[..], JobOptions::new().dedupe("by-hand")),
            (b"g", JobOptions::new()),
        ])
        .unwrap();
    assert_eq!(added[0], Added::Duplicate(JobId(0)));
    assert!(
        added[1].is_new() && added[1].id() != second.id(),
        "{added:?}"
    );
    assert_eq!(queue.stats().unwrap().waiting, 3);
    // A `seq` that holds no job id refuses adds (rather than giving out rounded or repeated
    // ids).
    for seq in ["abc", "-1", "1.5", "9007199254740993"] {
        set(&mut con, key(&name, "seq"), seq);
        let err = queue.add(b"h", JobOptions::new()).unwrap_err();
        assert!(err.to_string().contains("seq"), "{seq}: {err}");
    }
    assert_eq!(queue.stats().unwrap().waiting, 3);
}

// docs/semantics.md Q11, Q5: an entry whose dedupe key is held by a key of another type is
// dead-lettered with the WRONGTYPE error; the jobs read and finished with it run and commit
// their effects once. (Before: the read failed as a whole, leaving the jobs it had read
// pending until their lease expired; and a finish of several jobs failed half way, its
// earlier effects committed but the jobs not acknowledged, so they ran and committed again.)
#[test]
fn q11_a_wrong_type_dedupe_key_dead_letters_its_entry_and_spares_the_others() {
    let Some((_server, name, queue, mut con)) = setup("wrongtype-dedupe") else {
        return;
    };
    let _: () = redis::cmd("HSET")
        .arg(key(&name, "dedupe:poisoned"))
        .arg("a")
        .arg("hash")
        .query(&mut con)
        .unwrap();
    for i in 0..3u8 {
        queue.add([b'0' + i], JobOptions::new()).unwrap();
    }
    let mut fields = job_fields(b"77", b"poisoned");
    fields.insert(5, (b"dedupe", b"poisoned"));
    xadd(&mut con, &key(&name, "jobs:normal"), &fields);
    for i in 3..6u8 {
        queue.add([b'0' + i], JobOptions::new()).unwrap();
    }
    let gate = Gate::new();
    let pass = gate.clone();
    let consumer = queue
        .consumer("wrongtype-dedupe-a")
        .concurrency(2)
        .prefetch(8)
        .lease(NO_RECLAIM)
        .run_on(&pool(2), move |job, _ctx| -> Result<Effects, JobError> {
            pass.pass();
            let key = format!("ran:{}", String::from_utf8_lossy(job.payload()));
            Ok(Effects::new().command(redis::cmd("INCR").arg(key)))
        })
        .unwrap();
    let _open = gate.open_at_exit();
    gate.open();
    wait_until("six completed, one dead-lettered", || {
        let stats = queue.stats().unwrap();
        stats.completed == 6 && stats.dead_lettered == 1
    });
    consumer.close(CLOSE).unwrap();
    for i in 0..6u8 {
        let n: i64 = redis::cmd("GET")
            .arg(format!("ran:{}", (b'0' + i) as char))
            .query(&mut con)
            .unwrap();
        assert_eq!(n, 1, "effects of job {i} committed once");
    }
    let letters = queue.dead_letters(10).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].payload, b"poisoned");
    assert!(
        letters[0].error.contains("WRONGTYPE"),
        "{}",
        letters[0].error
    );
}

// docs/semantics.md Q11, Q1, Q6: the consumer group deleted (`XGROUP DESTROY`) while a
// consumer holds a job: the consumer makes the group again, the held job's finish is answered
// (`lost`: its entry is delivered again, at least once), and jobs added later run.
#[test]
fn q11_a_deleted_group_is_made_again_and_jobs_go_on() {
    let Some((_server, name, queue, mut con)) = setup("nogroup") else {
        return;
    };
    queue.add(b"held", JobOptions::new()).unwrap();
    let gate = Gate::new();
    let pass = gate.clone();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ran);
    let consumer = queue
        .consumer("nogroup-a")
        .lease(NO_RECLAIM)
        .run_on(&pool(1), move |job, _ctx| {
            seen.lock().unwrap().push(job.payload().to_vec());
            pass.pass();
            Ok(())
        })
        .unwrap();
    let _open = gate.open_at_exit();
    wait_until("the job started", || !ran.lock().unwrap().is_empty());
    let _: () = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(key(&name, "jobs:normal"))
        .arg("sharedbuf")
        .query(&mut con)
        .unwrap();
    gate.open();
    queue.add(b"later", JobOptions::new()).unwrap();
    // The held entry is delivered again before the later one: once that ran and nothing is
    // held, the held job finished in the new group.
    wait_until("the later job ran, nothing held", || {
        runs_of(&ran, b"later") == 1 && consumer.stats().held == 0
    });
    assert!(consumer.is_running());
    let stats = consumer.close(CLOSE).unwrap();
    // Its first run's finish was answered `lost` and it ran again, or the entry came back
    // while the first run held it and was `lost` at once (the first run's finish completed
    // it).
    let held_runs = runs_of(&ran, b"held");
    assert!((1..=2).contains(&held_runs), "{held_runs}");
    assert!(stats.lost >= 1, "{stats:?}");
    assert!(queue.stats().is_ok());
}

/// Puts a job (id 500, `payload`) at entry `1-1` of the high stream of queue `name`, held by a
/// consumer `ghost` gone for two hours after `deliveries` deliveries: stale, for the next
/// reclaim scan. One transaction, `first` (if any) at its start, so a running consumer cannot
/// read the job itself. Returns the entry id.
fn hold_stale_job(
    con: &mut redis::Connection,
    name: &str,
    payload: &[u8],
    deliveries: u32,
    first: Option<redis::Cmd>,
) -> &'static str {
    const ENTRY: &str = "1-1";
    let high = key(name, "jobs:high");
    let mut add = redis::cmd("XADD");
    add.arg(&high).arg(ENTRY);
    for (field, value) in job_fields(b"500", payload) {
        add.arg(field).arg(value);
    }
    let mut read = redis::cmd("XREADGROUP");
    read.arg(&["GROUP", "sharedbuf", "ghost", "COUNT", "1", "STREAMS"][..])
        .arg(&high)
        .arg(">");
    let mut age = redis::cmd("XCLAIM");
    age.arg(&high)
        .arg(
            &[
                "sharedbuf",
                "ghost",
                "0",
                ENTRY,
                "IDLE",
                "7200000",
                "RETRYCOUNT",
            ][..],
        )
        .arg(deliveries)
        .arg("JUSTID");
    let mut steps = redis::pipe();
    steps.atomic();
    for cmd in first.into_iter().chain([add, read, age]) {
        steps.add_command(cmd).ignore();
    }
    let _: () = steps.query(con).unwrap();
    ENTRY
}

// docs/semantics.md Q11, Q1: a reclaim scan that finds one level's group gone (here the low
// one) still hands out the stale job it claimed from another level, at once, with one more
// delivery. (Before: the scan failed with NOGROUP after claiming it, so the job sat pending,
// unrun, for another lease, and ran with its deliveries counted twice over: 3.)
#[test]
fn q11_a_reclaim_scan_goes_on_past_a_level_without_its_group() {
    let Some((_server, name, queue, mut con)) = setup("nogroup-reclaim") else {
        return;
    };
    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&deliveries);
    let consumer = queue
        .consumer("nogroup-reclaim-a")
        .lease(Duration::from_secs(2))
        .run_on(&pool(1), move |job, _ctx| {
            seen.lock().unwrap().push(job.deliveries());
            Ok(())
        })
        .unwrap();
    wait_until("the consumer's first reclaim scan", || {
        consumer.stats().reclaim_scans >= 1
    });
    // With the job, in one transaction: the low level's group goes.
    let mut destroy = redis::cmd("XGROUP");
    destroy
        .arg("DESTROY")
        .arg(key(&name, "jobs:low"))
        .arg("sharedbuf");
    hold_stale_job(&mut con, &name, b"stale", 1, Some(destroy));
    wait_until("the stale job ran", || {
        !deliveries.lock().unwrap().is_empty()
    });
    consumer.close(CLOSE).unwrap();
    assert_eq!(
        *deliveries.lock().unwrap(),
        [2],
        "claimed once, run at once"
    );
}

// docs/semantics.md Q11, Q6: a stalled job that RECLAIM could not dead-letter (the dead stream
// is a key of another type) stays pending for the consumer, unrun; a reconnect's RECOVER does
// not run it either (it was delivered more often than allowed). (Before: RECOVER handed it
// out, and the job its consumers kept dying on ran once more.)
#[test]
fn q11_recover_does_not_run_a_stalled_job_the_dead_stream_refused() {
    let Some((_server, name, queue, mut con)) = setup("recover-stalled") else {
        return;
    };
    set(&mut con, key(&name, "dead"), "not a stream");
    let stale = hold_stale_job(&mut con, &name, b"stale", 2, None);
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ran);
    let consumer = queue
        .consumer("recover-stalled-a")
        .lease(NO_RECLAIM)
        .max_stalls(1) // more than 2 deliveries: stalled
        .run_on(&pool(1), move |job, _ctx| {
            seen.lock().unwrap().push(job.payload().to_vec());
            Ok(())
        })
        .unwrap();
    wait_until("the stalled job's move was refused", || {
        consumer.stats().dead_letter_unavailable >= 1
    });
    // A job delivered to the consumer whose reply it never got (read here in its name, in one
    // transaction with the add, so it cannot read the job itself): its RECOVER takes it back.
    let high = key(&name, "jobs:high");
    let mut add = redis::cmd("XADD");
    add.arg(&high).arg("*");
    for (field, value) in job_fields(b"501", b"lost reply") {
        add.arg(field).arg(value);
    }
    let mut read = redis::cmd("XREADGROUP");
    read.arg(
        &[
            "GROUP",
            "sharedbuf",
            "recover-stalled-a",
            "COUNT",
            "1",
            "STREAMS",
        ][..],
    )
    .arg(&high)
    .arg(">");
    let _: () = redis::pipe()
        .atomic()
        .add_command(add)
        .ignore()
        .add_command(read)
        .ignore()
        .query(&mut con)
        .unwrap();
    // The consumer's connection drops: it reconnects and recovers its pending entries, in
    // order, the stalled one (entry 1-1) first.
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    let client = format!("name=sharedbuf:{name}:recover-stalled-a:dispatch ");
    let id = list
        .lines()
        .find(|line| line.contains(&client))
        .and_then(|line| line.strip_prefix("id="))
        .and_then(|rest| rest.split(' ').next())
        .expect("the dispatcher's connection")
        .to_string();
    let _: () = redis::cmd("CLIENT")
        .arg(&["KILL", "ID", &id][..])
        .query(&mut con)
        .unwrap();
    // One worker runs what the recovery took back in order: once the second ran, the first
    // would have run before it.
    wait_until("the recovered job ran", || {
        runs_of(&ran, b"lost reply") == 1
    });
    let stats = consumer.close(CLOSE).unwrap();
    assert!(stats.reconnects >= 1 && stats.recovered == 1, "{stats:?}");
    assert_eq!(runs_of(&ran, b"stale"), 0, "the stalled job never ran");
    let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(key(&name, "jobs:high"))
        .arg(&["sharedbuf", "-", "+", "10"][..])
        .query(&mut con)
        .unwrap();
    assert_eq!(
        pending.len(),
        1,
        "still pending, for a later dead-lettering"
    );
    assert_eq!(pending[0].0, stale);
}

// docs/semantics.md Q11, Q6: `SCRIPT FLUSH` under a running consumer and a producer: both load
// the scripts again (NOSCRIPT) and go on.
#[test]
fn q11_a_flushed_script_cache_is_reloaded() {
    let Some(server) = redis_or_skip("q11_a_flushed_script_cache_is_reloaded") else {
        return;
    };
    let queue = JobQueue::connect(&server.url(), &queue_name("flush")).unwrap();
    let mut con = server.connection();
    let runs = Arc::new(AtomicUsize::new(0));
    let consumer = queue
        .consumer("flush-a")
        .run_on(&pool(1), counting(&runs))
        .unwrap();
    for i in 1..=3 {
        let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut con).unwrap();
        queue.add(b"x", JobOptions::new()).unwrap();
        wait_until("the job ran", || runs.load(Ordering::SeqCst) == i);
    }
    wait_until("all completed", || queue.stats().unwrap().completed == 3);
    consumer.close(CLOSE).unwrap();
}

// docs/semantics.md Q11, Q1: the stream trimmed to nothing (`XTRIM MAXLEN 0`) while a consumer
// holds a job and another waits, with retries configured: the held job's finish is answered
// (its entry is gone), no consumer thread stops, and jobs added later run.
#[test]
fn q11_a_stream_trimmed_under_held_jobs_does_not_stop_the_consumer() {
    let Some((_server, name, queue, mut con)) = setup("trim") else {
        return;
    };
    let retry = JobOptions::new()
        .attempts(3)
        .backoff(Backoff::fixed(Duration::from_millis(1)));
    queue.add(b"held", retry.clone()).unwrap();
    queue.add(b"waiting", retry.clone()).unwrap();
    let gate = Gate::new();
    let pass = gate.clone();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ran);
    let consumer = queue
        .consumer("trim-a")
        .prefetch(0)
        .lease(NO_RECLAIM)
        .run_on(&pool(1), move |job, _ctx| -> Result<(), JobError> {
            seen.lock().unwrap().push(job.payload().to_vec());
            pass.pass();
            Err(JobError::retry("once more"))
        })
        .unwrap();
    let _open = gate.open_at_exit();
    wait_until("the job started", || !ran.lock().unwrap().is_empty());
    let _: i64 = redis::cmd("XTRIM")
        .arg(key(&name, "jobs:normal"))
        .arg("MAXLEN")
        .arg(0)
        .query(&mut con)
        .unwrap();
    gate.open();
    wait_until("nothing held", || consumer.stats().held == 0);
    queue.add(b"later", JobOptions::new()).unwrap();
    wait_until("the later job ran", || {
        ran.lock().unwrap().iter().any(|p| p == b"later")
    });
    assert!(consumer.is_running());
    consumer.close(CLOSE).unwrap();
    assert_eq!(
        ran.lock().unwrap()[0],
        b"held",
        "the trimmed jobs are the operator's to lose"
    );
}

// docs/semantics.md Q11, Q1: a level stream replaced by another type while a consumer holds a
// job of it and one of another level: the first is lost to it (its entry is gone), the other
// keeps its lease and is never reclaimed by another consumer. (Before: every lease renewal
// failed on the broken level, so the job of the healthy level was reclaimed and ran twice.)
#[test]
fn q11_a_broken_level_does_not_stop_the_leases_of_the_others() {
    let Some((_server, name, queue, mut con)) = setup("wrongtype-renew") else {
        return;
    };
    queue
        .add(b"low", JobOptions::new().priority(Priority::Low))
        .unwrap();
    queue.add(b"normal", JobOptions::new()).unwrap();
    let gate = Gate::new();
    let pass = gate.clone();
    let started = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&started);
    let lease = Duration::from_secs(1);
    let holder = queue
        .consumer("renew-a")
        .concurrency(2)
        .lease(lease)
        .run_on(&pool(2), move |_job, _ctx| {
            count.fetch_add(1, Ordering::SeqCst);
            pass.pass();
            Ok(())
        })
        .unwrap();
    let _open = gate.open_at_exit();
    wait_until("both jobs started", || started.load(Ordering::SeqCst) == 2);
    let low = key(&name, "jobs:low");
    let _: () = redis::cmd("DEL").arg(&low).query(&mut con).unwrap();
    set(&mut con, &low, "not a stream");
    let other_runs = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&other_runs);
    let other = queue
        .consumer("renew-b")
        .lease(lease)
        .run_on(&pool(1), move |_job, _ctx| {
            count.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    // Two leases' worth of renewals, and the other consumer looking for expired leases
    // meanwhile (it looks every half lease).
    let renewals = holder.stats().renewals;
    wait_until("two leases of renewals and reclaim scans", || {
        holder.stats().renewals >= renewals + 6 && other.stats().reclaim_scans >= 4
    });
    wait_until("the low job was found lost", || holder.stats().lost == 1);
    gate.open();
    wait_until("the normal job completed", || {
        queue.stats().map(|s| s.completed).unwrap_or(0) == 1 || holder.stats().completed == 1
    });
    let other_stats = other.close(CLOSE).unwrap();
    holder.close(CLOSE).unwrap();
    assert_eq!(other_runs.load(Ordering::SeqCst), 0, "{other_stats:?}");
    assert_eq!(other_stats.reclaimed, 0, "{other_stats:?}");
}

/// Adds a job due in 1 ms and puts a string in place of its `delayed:<id>` hash: its id and
/// that key.
fn add_malformed_delayed(
    queue: &JobQueue,
    con: &mut redis::Connection,
    name: &str,
) -> (JobId, String) {
    let delay = JobOptions::new().delay(Duration::from_millis(1));
    let id = queue.add(b"delayed", delay).unwrap().id();
    let hash = key(name, &format!("delayed:{}", id.0));
    set(con, &hash, "x");
    (id, hash)
}

// docs/semantics.md Q11, Q3: a delayed job whose hash was replaced by another type is
// dead-lettered, with why, once due; the jobs around it run. (Before: every read failed on it
// while it was due, so no job ran.)
#[test]
fn q11_a_delayed_job_whose_hash_has_another_type_is_dead_lettered() {
    let Some((_server, name, queue, mut con)) = setup("wrongtype-delayed") else {
        return;
    };
    let (delayed, hash) = add_malformed_delayed(&queue, &mut con, &name);
    queue.add(b"plain", JobOptions::new()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let consumer = queue
        .consumer("wrongtype-delayed-a")
        .lease(NO_RECLAIM)
        .run_on(&pool(1), counting(&runs))
        .unwrap();
    wait_until(
        "the plain job ran and the delayed one was dead-lettered",
        || {
            let stats = queue.stats().unwrap();
            stats.completed == 1 && stats.dead_lettered == 1 && stats.delayed == 0
        },
    );
    consumer.close(CLOSE).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let letters = queue.dead_letters(10).unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].job, Some(delayed));
    assert!(letters[0].error.contains(&hash), "{}", letters[0].error);
    let left: String = redis::cmd("GET").arg(&hash).query(&mut con).unwrap();
    assert_eq!(left, "x", "someone else's key is left alone");
}

// docs/semantics.md Q11: a malformed delayed job that the dead stream refuses (a key of
// another type) stays delayed, and the consumer counts the failed move; once the dead key is
// gone, the job is dead-lettered. (Before: FETCH re-delayed it without a word, and
// `dead_letter_unavailable` stayed 0.)
#[test]
fn q11_a_malformed_delayed_job_the_dead_stream_refuses_is_counted() {
    let Some((_server, name, queue, mut con)) = setup("wrongtype-delayed-dead") else {
        return;
    };
    let (delayed, hash) = add_malformed_delayed(&queue, &mut con, &name);
    let dead = key(&name, "dead");
    set(&mut con, &dead, "x");
    let consumer = queue
        .consumer("wrongtype-delayed-dead-a")
        .lease(NO_RECLAIM)
        .run_on(&pool(1), |_job, _ctx| Ok(()))
        .unwrap();
    wait_until("the refused move was counted", || {
        consumer.stats().dead_letter_unavailable >= 1
    });
    let still: Option<f64> = redis::cmd("ZSCORE")
        .arg(key(&name, "delayed"))
        .arg(delayed.0)
        .query(&mut con)
        .unwrap();
    assert!(
        still.is_some(),
        "the job stays delayed while the dead stream refuses it"
    );
    let _: () = redis::cmd("DEL").arg(&dead).query(&mut con).unwrap();
    wait_until(
        "the job was dead-lettered once the dead key was gone",
        || {
            queue
                .dead_letters(10)
                .is_ok_and(|letters| letters.len() == 1)
        },
    );
    consumer.close(CLOSE).unwrap();
    let letters = queue.dead_letters(10).unwrap();
    assert_eq!(letters[0].job, Some(delayed));
    assert!(letters[0].error.contains(&hash), "{}", letters[0].error);
}

// docs/semantics.md Q11, Q9: a foreign entry whose timeout and fixed backoff are u64::MAX ms
// (past the century the queue itself stores) runs, fails, is retried into the delayed set for
// ever, and the consumer goes on.
#[test]
fn q11_foreign_durations_of_u64_max_ms_are_accepted() {
    let Some((_server, name, queue, mut con)) = setup("foreign-durations") else {
        return;
    };
    let max = u64::MAX.to_string();
    let backoff = format!("f{max}j");
    let mut fields = job_fields(b"500", b"forever");
    fields[2] = (b"attempts", b"2");
    fields[3] = (b"backoff", backoff.as_bytes());
    fields[4] = (b"timeout", max.as_bytes());
    xadd(&mut con, &key(&name, "jobs:normal"), &fields);
    let runs = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&runs);
    let consumer = queue
        .consumer("foreign-durations-a")
        .run_on(&pool(1), move |job, _ctx| {
            count.fetch_add(1, Ordering::SeqCst);
            match job.payload() {
                b"forever" => Err(JobError::retry("once")),
                _ => Ok(()),
            }
        })
        .unwrap();
    wait_until("retried into the delayed set", || {
        let stats = queue.stats().unwrap();
        stats.retried == 1 && stats.delayed == 1
    });
    queue.add(b"next", JobOptions::new()).unwrap();
    wait_until("the next job ran", || queue.stats().unwrap().completed == 1);
    assert!(consumer.is_running());
    consumer.close(CLOSE).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

/// The number of entries pending in the group of stream `stream` (0 while the group is
/// missing).
fn pending(con: &mut redis::Connection, stream: &str) -> i64 {
    let summary: redis::RedisResult<(i64, redis::Value, redis::Value, redis::Value)> =
        redis::cmd("XPENDING")
            .arg(stream)
            .arg("sharedbuf")
            .query(con);
    summary.map(|(n, ..)| n).unwrap_or(0)
}

/// Counts runs per payload.
fn runs_of(runs: &Mutex<Vec<Vec<u8>>>, payload: &[u8]) -> usize {
    runs.lock()
        .unwrap()
        .iter()
        .filter(|p| *p == payload)
        .count()
}

// docs/semantics.md Q11, Q1: with the `stats` hash replaced by a string, successful jobs are
// still acknowledged and counted `completed` by their consumer, never `lost`; the consumer
// counts the calls whose counting failed (`stats_unavailable`). (Before: every finish of a
// success failed when it counted, after acknowledging: the consumer counted the jobs `lost`.)
#[test]
fn q11_a_counter_key_of_another_type_does_not_turn_successes_into_lost() {
    let Some((_server, name, queue, mut con)) = setup("wrongtype-stats-ok") else {
        return;
    };
    set(&mut con, key(&name, "stats"), "not a hash");
    for i in 0..4u8 {
        queue.add([b'0' + i], JobOptions::new()).unwrap();
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let consumer = queue
        .consumer("wrongtype-stats-ok-a")
        .concurrency(2)
        .lease(NO_RECLAIM)
        .run_on(&pool(2), counting(&runs))
        .unwrap();
    let stream = key(&name, "jobs:normal");
    wait_until("four jobs ran and were answered", || {
        runs.load(Ordering::SeqCst) == 4 && consumer.stats().held == 0
    });
    let stats = consumer.close(CLOSE).unwrap();
    assert_eq!(pending(&mut con, &stream), 0, "every job acknowledged");
    assert_eq!(runs.load(Ordering::SeqCst), 4, "each ran once");
    assert_eq!((stats.completed, stats.lost), (4, 0), "{stats:?}");
    assert!(stats.stats_unavailable >= 1, "{stats:?}");
}

// docs/semantics.md Q11, Q1: with the `consumers` hash replaced by a string, a job whose
// consumer stopped renewing its lease is still reclaimed and run. (Before: RECLAIM counted
// `reclaimed` before it moved anything, failed, and no stalled job was ever reclaimed.)
#[test]
fn q11_a_counter_key_of_another_type_does_not_stop_reclaims() {
    let Some((_server, name, queue, mut con)) = setup("wrongtype-reclaim") else {
        return;
    };
    set(&mut con, key(&name, "consumers"), "not a hash");
    queue.add(b"stalled", JobOptions::new()).unwrap();
    let stream = key(&name, "jobs:normal");
    // A consumer that read the job and died: it never renews.
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("sharedbuf")
        .arg("ghost")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query(&mut con)
        .unwrap();
    assert_eq!(pending(&mut con, &stream), 1);
    let runs = Arc::new(AtomicUsize::new(0));
    let consumer = queue
        .consumer("wrongtype-reclaim-a")
        .lease(Duration::from_millis(300))
        .run_on(&pool(1), counting(&runs))
        .unwrap();
    wait_until("the stalled job was reclaimed and ran", || {
        runs.load(Ordering::SeqCst) == 1
    });
    wait_until("and was acknowledged", || pending(&mut con, &stream) == 0);
    let stats = consumer.close(CLOSE).unwrap();
    assert_eq!((stats.reclaimed, stats.completed), (1, 1), "{stats:?}");
    assert!(stats.stats_unavailable >= 1, "{stats:?}");
}

// docs/semantics.md Q11, Q1: the group deleted and made again while a job runs: its entry,
// delivered again to the consumer that runs it, is not run a second time beside the first run
// (that second run's lease would end with the first run's finish, and another consumer could
// reclaim it: a third run); it counts `lost` at once, and the first run's finish completes
// it. (Before: the consumer ran it twice.)
#[test]
fn q11_an_entry_delivered_again_to_the_consumer_running_it_is_not_run_twice() {
    let Some((_server, name, queue, mut con)) = setup("nogroup-twice") else {
        return;
    };
    let stream = key(&name, "jobs:normal");
    queue.add(b"held", JobOptions::new()).unwrap();
    let gate = Gate::new();
    let pass = gate.clone();
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ran);
    // One pool thread: a second run of `held` would queue in the pool before `marker`.
    let consumer = queue
        .consumer("nogroup-twice-a")
        .concurrency(1)
        .prefetch(1)
        .lease(NO_RECLAIM)
        .poll_interval(Duration::from_millis(20))
        .run_on(&pool(1), move |job, _ctx| {
            let first = {
                let mut ran = seen.lock().unwrap();
                ran.push(job.payload().to_vec());
                ran.len() == 1
            };
            if first {
                pass.pass();
            }
            Ok(())
        })
        .unwrap();
    let _open = gate.open_at_exit();
    wait_until("the job started", || runs_of(&ran, b"held") == 1);
    let _: () = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(&stream)
        .arg("sharedbuf")
        .query(&mut con)
        .unwrap();
    wait_until("the group made again and the entry delivered again", || {
        pending(&mut con, &stream) == 1
    });
    gate.open();
    wait_until("the first run's finish acknowledged it", || {
        pending(&mut con, &stream) == 0
    });
    queue.add(b"marker", JobOptions::new()).unwrap();
    wait_until("the marker ran", || runs_of(&ran, b"marker") == 1);
    let stats = consumer.close(CLOSE).unwrap();
    assert_eq!(runs_of(&ran, b"held"), 1, "{:?}", ran.lock().unwrap());
    assert_eq!((stats.completed, stats.lost), (2, 1), "{stats:?}");
}

// docs/semantics.md Q11, Q5: a malformed entry holding its dedupe key as `pending:<its job>`
// frees the key when it is dead-lettered, so the key can be used again at once. (Before: the
// key stayed taken until its TTL.)
#[test]
fn q11_a_malformed_entry_frees_its_dedupe_key_when_dead_lettered() {
    let Some((_server, name, queue, mut con)) = setup("malformed-dedupe") else {
        return;
    };
    let dkey = key(&name, "dedupe:once");
    let _: () = redis::cmd("SET")
        .arg(&dkey)
        .arg("pending:77")
        .arg("PX")
        .arg(3_600_000)
        .query(&mut con)
        .unwrap();
    let mut fields = job_fields(b"77", b"garbled");
    fields[1] = (b"attempt", b"many");
    fields.push((b"dedupe", b"once"));
    xadd(&mut con, &key(&name, "jobs:normal"), &fields);
    let consumer = queue
        .consumer("malformed-dedupe-a")
        .lease(NO_RECLAIM)
        .run_on(&pool(1), move |_job, _ctx| Ok(()))
        .unwrap();
    wait_until("the entry was dead-lettered", || {
        queue.stats().unwrap().dead_lettered == 1
    });
    consumer.close(CLOSE).unwrap();
    let left: Option<String> = redis::cmd("GET").arg(&dkey).query(&mut con).unwrap();
    assert_eq!(left, None, "the dedupe key is free");
    assert!(queue
        .add(b"again", JobOptions::new().dedupe("once"))
        .unwrap()
        .is_new());
}

/// The field names of hash `key`.
fn hash_fields(con: &mut redis::Connection, key: &str) -> Vec<String> {
    let mut names: Vec<String> = redis::cmd("HKEYS").arg(key).query(con).unwrap();
    names.sort();
    names
}

// docs/semantics.md Q11, Q3: a `delayed:<id>` hash someone else left where a new delayed job
// goes is replaced, not merged into (its fields would become the job's: here a dedupe key
// and a previous error it never had); one that holds a delayed job of that id (`seq` set
// back) refuses the add, and that job is kept. (Before: HSET merged both.)
#[test]
fn q11_an_add_does_not_merge_into_a_foreign_delayed_hash() {
    let Some((_server, name, queue, mut con)) = setup("foreign-delayed-add") else {
        return;
    };
    let first = queue.add(b"first", JobOptions::new()).unwrap().id().0;
    let next = key(&name, &format!("delayed:{}", first + 1));
    let _: () = redis::cmd("HSET")
        .arg(&next)
        .arg("dedupe")
        .arg("foreign")
        .arg("error")
        .arg("foreign")
        .query(&mut con)
        .unwrap();
    let later = JobOptions::new().delay(Duration::from_secs(3600));
    let added = queue.add(b"delayed", later.clone()).unwrap();
    assert_eq!(added.id().0, first + 1);
    let fields = hash_fields(&mut con, &next);
    assert!(
        !fields.contains(&"dedupe".to_string()) && !fields.contains(&"error".to_string()),
        "{fields:?}"
    );
    // `seq` set back by one: the next id is that of the delayed job.
    set(&mut con, key(&name, "seq"), first);
    let err = queue.add(b"clash", later).unwrap_err();
    assert!(err.to_string().contains("delayed"), "{err}");
    let payload: Vec<u8> = redis::cmd("HGET")
        .arg(&next)
        .arg("payload")
        .query(&mut con)
        .unwrap();
    assert_eq!(payload, b"delayed", "the delayed job is kept");
    assert_eq!(queue.stats().unwrap().delayed, 1);
    // A string where the second job of a batch goes: replaced too. (Before: HSET failed after
    // the first job was stored, `seq` not advanced: the next add gave its id out again.)
    set(&mut con, key(&name, "seq"), first + 1);
    let string = key(&name, &format!("delayed:{}", first + 3));
    set(&mut con, &string, "x");
    let batch = vec![
        (&b"plain"[..], JobOptions::new()),
        (
            b"delayed too",
            JobOptions::new().delay(Duration::from_secs(3600)),
        ),
    ];
    let added = queue.add_batch(batch).unwrap();
    assert_eq!(
        added.iter().map(|a| a.id().0).collect::<Vec<_>>(),
        [first + 2, first + 3]
    );
    let next = queue.add(b"next", JobOptions::new()).unwrap();
    assert_eq!(next.id().0, first + 4);
    assert_eq!(queue.stats().unwrap().delayed, 2);
}

// docs/semantics.md Q11, Q2: a retry with a backoff meets `delayed:<id>` already there: a hash
// someone else left is replaced (not merged into); one holding another delayed job of that id
// is kept, and the retry goes to the end of its stream at once. (Before: HSET merged the retry
// into it: the other job's payload was overwritten, that job lost.)
#[test]
fn q11_a_retry_does_not_merge_into_a_foreign_delayed_hash() {
    let Some((_server, name, queue, mut con)) = setup("foreign-delayed-retry") else {
        return;
    };
    let retry = JobOptions::new()
        .attempts(2)
        .backoff(Backoff::fixed(Duration::from_secs(3600)));
    let leftover = queue.add(b"leftover", retry).unwrap().id().0;
    let leftover_hash = key(&name, &format!("delayed:{leftover}"));
    let _: () = redis::cmd("HSET")
        .arg(&leftover_hash)
        .arg("dedupe")
        .arg("foreign")
        .query(&mut con)
        .unwrap();
    // A delayed job, and a foreign entry with its id (written by another program).
    let kept = queue
        .add(b"kept", JobOptions::new().delay(Duration::from_secs(3600)))
        .unwrap()
        .id()
        .0;
    let kept_id = kept.to_string();
    let mut fields = job_fields(kept_id.as_bytes(), b"same id");
    fields[2] = (b"attempts", b"2");
    fields[3] = (b"backoff", b"f3600000");
    xadd(&mut con, &key(&name, "jobs:normal"), &fields);
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ran);
    let consumer = queue
        .consumer("foreign-delayed-retry-a")
        .lease(NO_RECLAIM)
        .run_on(&pool(1), move |job, _ctx| -> Result<(), JobError> {
            seen.lock()
                .unwrap()
                .push((job.payload().to_vec(), job.attempt()));
            if job.attempt() == 1 {
                Err(JobError::retry("first attempt fails"))
            } else {
                Ok(())
            }
        })
        .unwrap();
    wait_until(
        "both retried, the one with the clashing id ran again",
        || {
            let stats = queue.stats().unwrap();
            stats.retried == 2 && stats.completed == 1
        },
    );
    consumer.close(CLOSE).unwrap();
    assert_eq!(
        *ran.lock().unwrap(),
        [
            (b"leftover".to_vec(), 1),
            (b"same id".to_vec(), 1),
            (b"same id".to_vec(), 2)
        ]
    );
    let fields = hash_fields(&mut con, &leftover_hash);
    assert!(!fields.contains(&"dedupe".to_string()), "{fields:?}");
    let kept_hash = key(&name, &format!("delayed:{kept}"));
    let payload: Vec<u8> = redis::cmd("HGET")
        .arg(&kept_hash)
        .arg("payload")
        .query(&mut con)
        .unwrap();
    assert_eq!(payload, b"kept", "the delayed job is kept");
    assert_eq!(queue.stats().unwrap().delayed, 2);
}

// docs/semantics.md Q11: an entry naming a field the queue reads twice (two `dedupe` keys) is
// dead-lettered as malformed, naming the field: the scripts and the consumer would each read
// another one. (Before: it ran, with the consumer's dedupe key the second, the scripts' the
// first.)
#[test]
fn q11_an_entry_with_a_field_twice_is_malformed() {
    let Some((_server, name, queue, mut con)) = setup("field-twice") else {
        return;
    };
    let mut fields = job_fields(b"88", b"two keys");
    fields.push((b"dedupe", b"one"));
    fields.push((b"dedupe", b"two"));
    xadd(&mut con, &key(&name, "jobs:normal"), &fields);
    let mut unknown = job_fields(b"89", b"unknown twice");
    unknown.push((b"from", b"a"));
    unknown.push((b"from", b"b"));
    xadd(&mut con, &key(&name, "jobs:normal"), &unknown);
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ran);
    let consumer = queue
        .consumer("field-twice-a")
        .lease(NO_RECLAIM)
        .run_on(&pool(1), move |job, _ctx| {
            seen.lock().unwrap().push(job.payload().to_vec());
            Ok(())
        })
        .unwrap();
    wait_until("both entries finished", || {
        let stats = queue.stats().unwrap();
        stats.completed + stats.dead_lettered == 2
    });
    consumer.close(CLOSE).unwrap();
    assert_eq!(*ran.lock().unwrap(), [b"unknown twice".to_vec()]);
    let letters = queue.dead_letters(10).unwrap();
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].error.starts_with("malformed entry: ") && letters[0].error.contains("dedupe"),
        "{}",
        letters[0].error
    );
}

/// Runs a consumer of `queue` (one job at a time) while `during` runs, then closes it;
/// answers how many jobs it ran.
fn run_all(queue: &JobQueue, consumer: &str, during: impl FnOnce()) -> usize {
    let runs = Arc::new(AtomicUsize::new(0));
    let consumer = queue
        .consumer(consumer)
        .lease(NO_RECLAIM)
        .run_on(&pool(1), counting(&runs))
        .unwrap();
    during();
    consumer.close(CLOSE).unwrap();
    runs.load(Ordering::SeqCst)
}

// docs/semantics.md Q11, Q8: the stream trimmed by hand (`XTRIM`) under acknowledged entries:
// once a consumer finds the queue empty again, `stats().waiting` is right again by itself.
// (Before: the acknowledged entries trimmed away stayed counted, and `waiting` was understated
// for good: here 0 for 2 waiting jobs.)
#[test]
fn q11_waiting_is_right_again_after_the_stream_was_trimmed() {
    let Some(server) = redis_or_skip("q11_waiting_is_right_again_after_the_stream_was_trimmed")
    else {
        return;
    };
    let name = queue_name("trim-waiting");
    let queue = JobQueue::connect(&server.url(), &name).unwrap();
    let mut con = server.connection();
    run_all(&queue, "trim-waiting-a", || {
        for _ in 0..3 {
            queue.add(b"x", JobOptions::new()).unwrap();
        }
        wait_until("three completed", || queue.stats().unwrap().completed == 3);
        let _: i64 = redis::cmd("XTRIM")
            .arg(key(&name, "jobs:normal"))
            .arg("MAXLEN")
            .arg(0)
            .query(&mut con)
            .unwrap();
        queue.add(b"probe", JobOptions::new()).unwrap();
        wait_until("the probe completed", || {
            queue.stats().unwrap().completed == 4
        });
    });
    for _ in 0..2 {
        queue.add(b"y", JobOptions::new()).unwrap();
    }
    let stats = queue.stats().unwrap();
    assert_eq!((stats.waiting, stats.active), (2, 0), "{stats:?}");
}

// docs/semantics.md Q11, Q8: the group deleted and made again: the acknowledged entries still
// in the stream run again and are acknowledged again; once a consumer finds the queue empty,
// `stats().waiting` is right again by itself. (Before: they were counted twice, and `waiting`
// understated for good.)
#[test]
fn q11_waiting_is_right_again_after_the_group_was_made_again() {
    let Some((_server, name, queue, mut con)) = setup("nogroup-waiting") else {
        return;
    };
    let runs = run_all(&queue, "nogroup-waiting-a", || {
        for _ in 0..2 {
            queue.add(b"x", JobOptions::new()).unwrap();
        }
        wait_until("two completed", || queue.stats().unwrap().completed == 2);
        let _: () = redis::cmd("XGROUP")
            .arg("DESTROY")
            .arg(key(&name, "jobs:normal"))
            .arg("sharedbuf")
            .query(&mut con)
            .unwrap();
        queue.add(b"probe", JobOptions::new()).unwrap();
        wait_until("the probe and the two again completed", || {
            queue.stats().unwrap().completed == 5
        });
    });
    assert_eq!(runs, 5);
    for _ in 0..2 {
        queue.add(b"y", JobOptions::new()).unwrap();
    }
    let stats = queue.stats().unwrap();
    assert_eq!((stats.waiting, stats.active), (2, 0), "{stats:?}");
}

// docs/semantics.md Q11, Q8: with a level's `acked` count replaced by a hash, successful jobs
// are still acknowledged and counted `completed` by their consumer, never `lost`, and their
// stream is still trimmed; the consumer counts the calls whose count failed
// (`stats_unavailable`). (Before: `retire`'s INCRBY failed the finish after it had
// acknowledged the entries; the consumer took it for a failed effect, its retry found the
// entry gone from its pending list, and counted every job `lost`.)
#[test]
fn q11_an_acked_count_of_another_type_does_not_turn_successes_into_lost() {
    let Some((_server, name, queue, mut con)) = setup("wrongtype-acked") else {
        return;
    };
    let _: () = redis::cmd("HSET")
        .arg(key(&name, "acked:normal"))
        .arg("not")
        .arg("a count")
        .query(&mut con)
        .unwrap();
    queue
        .add_batch((0..150).map(|_| (b"x", JobOptions::new())))
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let consumer = queue
        .consumer("wrongtype-acked-a")
        .concurrency(2)
        .lease(NO_RECLAIM)
        .run_on(&pool(2), counting(&runs))
        .unwrap();
    let stream = key(&name, "jobs:normal");
    let answered = |n: usize| runs.load(Ordering::SeqCst) == n && consumer.stats().held == 0;
    wait_until("150 jobs ran and were answered", || answered(150));
    // One more, acknowledged alone after every other: its trim bound is past the first node.
    queue.add(b"last", JobOptions::new()).unwrap();
    wait_until("the last job ran and was answered", || answered(151));
    let stats = consumer.close(CLOSE).unwrap();
    assert_eq!(pending(&mut con, &stream), 0, "every job acknowledged");
    assert_eq!(runs.load(Ordering::SeqCst), 151, "each ran once");
    assert_eq!((stats.completed, stats.lost), (151, 0), "{stats:?}");
    assert!(stats.stats_unavailable >= 1, "{stats:?}");
    let length: usize = redis::cmd("XLEN").arg(&stream).query(&mut con).unwrap();
    assert!(
        length < 151,
        "the stream was trimmed all the same: {length}"
    );
    let kind: String = redis::cmd("TYPE")
        .arg(key(&name, "acked:normal"))
        .query(&mut con)
        .unwrap();
    assert_eq!(kind, "hash", "someone else's key is left alone");
    let err = queue.stats().unwrap_err();
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
}

// docs/semantics.md Q11, Q1: with the dead-letter stream replaced by a string, a stalled job
// that RECLAIM would dead-letter stays stored (pending, tried again after a lease), and the
// stalled jobs after it are still reclaimed and run; the consumer counts the failed move
// (`dead_letter_unavailable`). (Before: the dead XADD stopped RECLAIM with an error after it
// had moved both entries to the consumer: neither ran, at every scan.)
#[test]
fn q11_a_dead_stream_of_another_type_does_not_stop_reclaims() {
    let Some((_server, name, queue, mut con)) = setup("wrongtype-dead-reclaim") else {
        return;
    };
    set(&mut con, key(&name, "dead"), "not a stream");
    queue.add(b"poison", JobOptions::new()).unwrap();
    queue.add(b"stalled once", JobOptions::new()).unwrap();
    let stream = key(&name, "jobs:normal");
    // A consumer that read both and died; the first had killed consumers many times before.
    let read: Vec<(String, Vec<Entry>)> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("sharedbuf")
        .arg("ghost")
        .arg("COUNT")
        .arg(2)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query(&mut con)
        .unwrap();
    let poison = read[0].1[0].0.clone();
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(&stream)
        .arg("sharedbuf")
        .arg("ghost")
        .arg(0)
        .arg(&poison)
        .arg("RETRYCOUNT")
        .arg(10)
        .arg("JUSTID")
        .query(&mut con)
        .unwrap();
    assert_eq!(pending(&mut con, &stream), 2);
    let ran = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&ran);
    let consumer = queue
        .consumer("wrongtype-dead-reclaim-a")
        .lease(Duration::from_millis(300))
        .max_stalls(2)
        .run_on(&pool(1), move |job, _ctx| {
            seen.lock().unwrap().push(job.payload().to_vec());
            Ok(())
        })
        .unwrap();
    wait_until("the job stalled once was reclaimed and ran", || {
        runs_of(&ran, b"stalled once") == 1
    });
    wait_until("the poison's move to the dead stream failed twice", || {
        consumer.stats().dead_letter_unavailable >= 2
    });
    let stats = consumer.close(CLOSE).unwrap();
    assert_eq!(runs_of(&ran, b"poison"), 0, "the stalled job is not run");
    assert_eq!(stats.completed, 1, "{stats:?}");
    assert_eq!(pending(&mut con, &stream), 1, "the poison is still pending");
    let kept: Vec<Entry> = redis::cmd("XRANGE")
        .arg(&stream)
        .arg(&poison)
        .arg(&poison)
        .query(&mut con)
        .unwrap();
    assert_eq!(kept.len(), 1, "the poison is still stored");
}

// docs/semantics.md Q11, Q8: while a level's consumer group is missing, `stats` answers: that
// level holds nothing (its entries all run again once a consumer makes the group again, from
// the start), and every entry of its stream is waiting. (Before: `Err(Server("NOGROUP …"))`.)
#[test]
fn q11_stats_answer_while_the_group_is_missing() {
    let Some((_server, name, queue, mut con)) = setup("nogroup-stats") else {
        return;
    };
    let runs = run_all(&queue, "nogroup-stats-a", || {
        for _ in 0..2 {
            queue.add(b"x", JobOptions::new()).unwrap();
        }
        wait_until("two completed", || queue.stats().unwrap().completed == 2);
    });
    assert_eq!(runs, 2);
    queue.add(b"y", JobOptions::new()).unwrap();
    queue
        .add(b"high", JobOptions::new().priority(Priority::High))
        .unwrap();
    let _: () = redis::cmd("XGROUP")
        .arg("DESTROY")
        .arg(key(&name, "jobs:normal"))
        .arg("sharedbuf")
        .query(&mut con)
        .unwrap();
    let stats = queue.stats().unwrap();
    assert_eq!((stats.waiting, stats.active), (4, 0), "{stats:?}");
    assert_eq!(stats.completed, 2, "{stats:?}");
}
