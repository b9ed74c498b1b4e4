//! Real faults against a real `redis-server`: a consumer process SIGKILLed in the middle of a
//! job, `redis-server` killed and restarted under load, and blocking reads that outlive the
//! command timeout (docs/semantics.md Q1, Q5, Q6).
#![cfg(feature = "redis")]

mod queue_support;
mod scenarios;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use queue_support::{
    child_arg, child_role, orphaned, queue_name, redis_or_skip, redis_with_aof_or_skip,
    spawn_child, wait_until, Children,
};
use sharedbuf::pool::WorkerPool;
use sharedbuf::queue::{redis, Effects, JobError, JobOptions, JobQueue, QueueError};

fn pool(threads: usize) -> Arc<WorkerPool> {
    Arc::new(WorkerPool::builder().max_threads(threads).build().unwrap())
}

const CLOSE: Option<Duration> = Some(Duration::from_secs(20));
const LEASE: Duration = Duration::from_millis(300);

// docs/semantics.md Q1: a consumer process SIGKILLed while it runs a job leaves the job pending;
// once its lease expires another consumer reclaims it and completes it, and the job's effects
// are committed once.
#[test]
fn q1_a_job_of_a_killed_consumer_is_reclaimed_and_completed() {
    const TEST: &str = "q1_a_job_of_a_killed_consumer_is_reclaimed_and_completed";
    if child_role(TEST).as_deref() == Some("victim") {
        // The child: takes the job, says so, and works on it forever (until SIGKILLed).
        let arg = child_arg();
        let (url, name, parent) = split3(&arg);
        let queue = JobQueue::connect(url, name).unwrap();
        let marker_url = url.to_string();
        let _consumer = queue
            .consumer("victim")
            .lease(LEASE)
            .run_on(&pool(1), move |job, _ctx| -> Result<(), JobError> {
                let client = redis::Client::open(marker_url.as_str()).unwrap();
                let mut con = client.get_connection().unwrap();
                let _: () = redis::cmd("SET")
                    .arg("victim-started")
                    .arg(job.id().0)
                    .query(&mut con)
                    .unwrap();
                loop {
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
            .unwrap();
        while !orphaned(parent) {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::process::exit(0); // the parent is gone: do not wait for a job that never ends
    }
    let Some(server) = redis_or_skip(TEST) else {
        return;
    };
    let name = queue_name("killed");
    let queue = JobQueue::connect(&server.url(), &name).unwrap();
    let added = queue
        .add(b"survive", JobOptions::new().dedupe("survivor"))
        .unwrap();
    let arg = format!("{}|{}|{}", server.url(), name, std::process::id());
    let mut children = Children(vec![spawn_child(TEST, "victim", &arg)]);
    let mut con = server.connection();
    wait_until("the victim started the job", || {
        redis::cmd("GET")
            .arg("victim-started")
            .query::<Option<u64>>(&mut con)
            .unwrap()
            .is_some()
    });
    let started: u64 = redis::cmd("GET")
        .arg("victim-started")
        .query(&mut con)
        .unwrap();
    assert_eq!(started, added.id().0);
    let mut victim = children.0.pop().unwrap();
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    assert_eq!(
        queue.stats().unwrap().active,
        1,
        "the dead consumer still holds the job"
    );

    let deliveries = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&deliveries);
    let rescuer = queue
        .consumer("rescuer")
        .lease(LEASE)
        .run_on(&pool(1), move |job, _ctx| -> Result<Effects, JobError> {
            log.lock()
                .unwrap()
                .push((job.id(), job.attempt(), job.deliveries()));
            Ok(Effects::new().command(redis::cmd("HINCRBY").arg("done").arg("survivor").arg(1)))
        })
        .unwrap();
    wait_until("the job was completed", || {
        queue.stats().unwrap().completed == 1
    });
    let stats = rescuer.close(CLOSE).unwrap();
    assert_eq!((stats.reclaimed, stats.completed), (1, 1));
    assert_eq!(
        *deliveries.lock().unwrap(),
        [(added.id(), 1, 2)],
        "run once more, on the same attempt (a stall is not a failure), second delivery"
    );
    let done: i64 = redis::cmd("HGET")
        .arg("done")
        .arg("survivor")
        .query(&mut con)
        .unwrap();
    assert_eq!(done, 1);
    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.reclaimed, stats.completed, stats.failed, stats.active),
        (1, 1, 0, 0)
    );
}

// docs/semantics.md Q5, Q6: redis-server SIGKILLed and restarted (append-only file on) while
// consumers work: they reconnect by themselves, every job completes, and none is acknowledged
// twice (each job's effect, keyed by its dedupe key, is committed exactly once).
#[test]
fn q6_consumers_survive_a_redis_restart_and_nothing_is_lost() {
    const TEST: &str = "q6_consumers_survive_a_redis_restart_and_nothing_is_lost";
    const JOBS: usize = 3000;
    let Some(mut server) = redis_with_aof_or_skip(TEST) else {
        return;
    };
    let name = queue_name("restart");
    let queue = JobQueue::builder(&server.url(), &name)
        .retry_for(Duration::from_secs(60))
        .connect()
        .unwrap();
    queue
        .add_batch((0..JOBS).map(|i| {
            let key = format!("k{i}");
            (key.clone().into_bytes(), JobOptions::new().dedupe(key))
        }))
        .unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..2)
        .map(|c| {
            let runs = Arc::clone(&runs);
            queue
                .consumer(&format!("restart-{c}"))
                .concurrency(4)
                .lease(Duration::from_secs(2))
                .run_on(&pool(2), move |job, _ctx| -> Result<Effects, JobError> {
                    runs.fetch_add(1, Ordering::Relaxed);
                    let key = job.dedupe_key().unwrap().to_string();
                    Ok(Effects::new().command(redis::cmd("HINCRBY").arg("done").arg(key).arg(1)))
                })
                .unwrap()
        })
        .collect();
    wait_until("a third of the jobs completed", || {
        queue.stats().unwrap().completed >= (JOBS / 3) as u64
    });
    server.kill();
    // Down for a moment while the consumers keep trying.
    std::thread::sleep(Duration::from_millis(200));
    server.restart();
    wait_until("every job completed after the restart", || {
        queue.stats().unwrap().completed >= JOBS as u64
    });
    let mut reconnects = 0;
    for consumer in consumers {
        reconnects += consumer.close(CLOSE).unwrap().reconnects;
    }
    assert!(reconnects >= 2, "both consumers reconnected ({reconnects})");
    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.completed, stats.failed, stats.dead_lettered),
        (JOBS as u64, 0, 0),
        "every job acknowledged exactly once"
    );
    assert_eq!((stats.waiting, stats.active, stats.delayed), (0, 0, 0));
    let mut con = server.connection();
    let done: Vec<(String, i64)> = redis::cmd("HGETALL").arg("done").query(&mut con).unwrap();
    assert_eq!(done.len(), JOBS, "an effect for every job");
    let twice: Vec<_> = done.iter().filter(|(_, n)| *n != 1).collect();
    assert!(
        twice.is_empty(),
        "effects committed more than once: {twice:?}"
    );
    assert!(runs.load(Ordering::Relaxed) >= JOBS);
}

// docs/semantics.md Q6: a blocking read waits its whole BLOCK time even when that is longer
// than the command timeout — the connection's read timeout is BLOCK plus the command timeout —
// and a job added later still wakes it.
#[test]
fn q6_blocking_reads_outlive_the_command_timeout() {
    let Some(server) = redis_or_skip("q6_blocking_reads_outlive_the_command_timeout") else {
        return;
    };
    // Block three times the command timeout. The margin, the command timeout itself, must
    // cover more than Redis's own lateness: the server ends a BLOCK on its timer tick (hz 10:
    // up to 100 ms after the block time; `BLOCK 100` measured 201 ms here), and a loaded host
    // delays its reply further. With 100 ms against a 600 ms block, a healthy read tripped the
    // client's timeout in the flake hunt (reconnects: 1), before the client allowed 200 ms for
    // that lateness (link::BLOCK_LATENESS); the wide margin keeps a loaded CI host from failing.
    let queue = JobQueue::builder(&server.url(), &queue_name("block"))
        .command_timeout(Duration::from_millis(500))
        .connect()
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&ran);
    let consumer = queue
        .consumer("block-a")
        .block(Duration::from_millis(1500))
        .poll_interval(Duration::from_secs(30))
        .run_on(&pool(1), move |_job, _ctx| {
            count.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    // Each read ends either empty after its block time (idle_blocks) or, if the client timed
    // out first, with a broken connection (reconnects).
    wait_until("two blocking reads ended", || {
        let s = consumer.stats();
        s.idle_blocks + s.reconnects >= 2
    });
    let stats = consumer.stats();
    assert_eq!(
        stats.reconnects, 0,
        "a blocking read tripped a client-side timeout: {stats:?}"
    );
    queue.add(b"wake up", JobOptions::new()).unwrap();
    wait_until("the job ran", || ran.load(Ordering::SeqCst) == 1);
    let stats = consumer.close(CLOSE).unwrap();
    assert_eq!((stats.completed, stats.reconnects), (1, 0));
    assert!(stats.wakeups >= 1, "{stats:?}");
}

/// `a|b|pid`.
fn split3(arg: &str) -> (&str, &str, u32) {
    let mut parts = arg.split('|');
    let a = parts.next().unwrap();
    let b = parts.next().unwrap();
    let pid = parts.next().unwrap().parse().unwrap();
    (a, b, pid)
}

// docs/semantics.md Q1: a job that keeps its pool thread busy for many leases is not taken for
// a stalled one — its lease is renewed by a thread that runs no jobs — so a second consumer,
// looking for expired leases all along, never reclaims it and it runs once.
#[test]
fn q1_a_busy_job_keeps_its_lease() {
    let Some(server) = redis_or_skip("q1_a_busy_job_keeps_its_lease") else {
        return;
    };
    let queue = JobQueue::connect(&server.url(), &queue_name("busy")).unwrap();
    queue.add(b"long", JobOptions::new()).unwrap();
    // Long enough that a loaded CI box does not starve the renewing thread for a whole lease
    // (60 ms failed 2 runs in 12 at a load average of 12).
    let lease = Duration::from_millis(250);
    let runs = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&runs);
    let busy = queue
        .consumer("busy-a")
        .lease(lease)
        .run_on(&pool(1), move |_job, _ctx| {
            count.fetch_add(1, Ordering::SeqCst);
            // A CPU loop that never yields, for eight leases.
            let until = std::time::Instant::now() + lease * 8;
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
            Ok(())
        })
        .unwrap();
    wait_until("the job started", || runs.load(Ordering::SeqCst) == 1);
    let idle = queue
        .consumer("busy-b")
        .lease(lease)
        .run_on(&pool(1), |_job, _ctx| Ok(()))
        .unwrap();
    wait_until("the job completed", || {
        queue.stats().unwrap().completed == 1
    });
    let other = idle.close(CLOSE).unwrap();
    let stats = busy.close(CLOSE).unwrap();
    assert!(
        other.reclaim_scans >= 1,
        "the idle consumer looked for expired leases: {other:?}"
    );
    assert_eq!((other.reclaimed, other.completed), (0, 0));
    assert_eq!((stats.completed, stats.lost), (1, 0));
    assert!(stats.renewals >= 3, "{stats:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(queue.stats().unwrap().reclaimed, 0);
}

// docs/semantics.md Q5 (scripts.rs, "Ownership and fencing"): a consumer whose name another
// consumer took over (its `live:` key holds another token) acknowledges nothing more. Here the
// take-over happens while its job runs, so the script that finds it fenced is the FETCH that
// carries that job's acknowledgement: the job stays pending, and the consumer stops.
#[test]
fn a_fenced_consumer_acknowledges_nothing_more() {
    let Some(server) = redis_or_skip("a_fenced_consumer_acknowledges_nothing_more") else {
        return;
    };
    let name = queue_name("fenced");
    let queue = JobQueue::connect(&server.url(), &name).unwrap();
    queue.add(b"one", JobOptions::new()).unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let consumer = queue
        .consumer("fenced-a")
        .run_on(&pool(1), move |_job, _ctx| {
            started_tx.send(()).unwrap();
            let go = go_rx.lock().unwrap().recv_timeout(queue_support::WATCHDOG);
            go.expect("the test lets the job finish");
            Ok(())
        })
        .unwrap();
    started_rx
        .recv_timeout(queue_support::WATCHDOG)
        .expect("the job started");
    let mut con = server.connection();
    redis::cmd("SET")
        .arg(format!("sbq:{{{name}}}:live:fenced-a"))
        .arg("another consumer's token")
        .query::<()>(&mut con)
        .unwrap();
    go_tx.send(()).unwrap();
    wait_until("the consumer stopped", || !consumer.is_running());
    let closed = consumer.close(CLOSE);
    assert!(
        matches!(closed, Err(QueueError::Fenced { .. })),
        "{closed:?}"
    );
    let stats = queue.stats().unwrap();
    assert_eq!((stats.completed, stats.active), (0, 1));
}

// docs/semantics.md Q5 (scripts.rs, J2): a consumer whose job was reclaimed by another
// (its lease expired) acknowledges nothing when the job ends after all: its finish — here
// inside its next FETCH — answers `lost`, commits no effects, and leaves the entry pending for
// its new owner.
#[test]
fn a_finish_after_the_job_was_reclaimed_acknowledges_nothing() {
    let Some(server) = redis_or_skip("a_finish_after_the_job_was_reclaimed_acknowledges_nothing")
    else {
        return;
    };
    let name = queue_name("reclaimed");
    let queue = JobQueue::connect(&server.url(), &name).unwrap();
    queue.add(b"one", JobOptions::new()).unwrap();
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let consumer = queue
        .consumer("slow-a")
        .run_on(&pool(1), move |_job, _ctx| -> Result<Effects, JobError> {
            started_tx.send(()).unwrap();
            let go = go_rx.lock().unwrap().recv_timeout(queue_support::WATCHDOG);
            go.expect("the test lets the job finish");
            Ok(Effects::new().command(redis::cmd("INCR").arg("effect")))
        })
        .unwrap();
    started_rx
        .recv_timeout(queue_support::WATCHDOG)
        .expect("the job started");
    // What RECLAIM does once a lease expired: another consumer takes the entry.
    let mut con = server.connection();
    let stream = format!("sbq:{{{name}}}:jobs:normal");
    redis::cmd("XAUTOCLAIM")
        .arg(&stream)
        .arg("sharedbuf")
        .arg("thief")
        .arg(0)
        .arg("0-0")
        .arg("JUSTID")
        .query::<redis::Value>(&mut con)
        .unwrap();
    go_tx.send(()).unwrap();
    wait_until("the finish was answered", || {
        let stats = consumer.stats();
        stats.lost + stats.completed == 1
    });
    let stats = consumer.close(CLOSE).unwrap();
    assert_eq!((stats.completed, stats.lost), (0, 1));
    let effect: Option<i64> = redis::cmd("GET").arg("effect").query(&mut con).unwrap();
    assert_eq!(effect, None, "no effects committed");
    let held: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(&stream)
        .arg("sharedbuf")
        .arg("-")
        .arg("+")
        .arg(10)
        .arg("thief")
        .query(&mut con)
        .unwrap();
    assert_eq!(held.len(), 1, "still pending for its new owner");
    assert_eq!(queue.stats().unwrap().completed, 0);
}

// docs/semantics.md X7: a consumer made before a `fork()`, in the forked child: `close` returns
// `Err(ForkedHandle)` at once and dropping it returns at once (both went to join threads that
// are not there); the parent's consumer runs jobs on.
#[test]
fn x7_a_consumer_made_before_a_fork_is_left_to_the_parent() {
    let Some(server) = redis_or_skip("x7_a_consumer_made_before_a_fork_is_left_to_the_parent")
    else {
        return;
    };
    let queue = JobQueue::connect(&server.url(), &queue_name("fork")).unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&done);
    let consumer = queue
        .consumer("forked")
        .run_on(&pool(2), move |_, _| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    queue.add(1u32.to_le_bytes(), JobOptions::new()).unwrap();
    wait_until("the first job ran", || done.load(Ordering::SeqCst) == 1);
    let mut consumer = Some(consumer);
    let bound = Duration::from_secs(20); // a hang detector
    let closed = scenarios::fork_child(bound, || {
        let answer = consumer.take().unwrap().close(CLOSE);
        assert!(
            matches!(answer, Err(QueueError::ForkedHandle)),
            "{answer:?}"
        );
    });
    let dropped = scenarios::fork_child(bound, || drop(consumer.take()));
    queue.add(2u32.to_le_bytes(), JobOptions::new()).unwrap();
    wait_until("a job added after the forks ran", || {
        done.load(Ordering::SeqCst) == 2
    });
    let consumer = consumer.unwrap();
    assert!(consumer.is_running());
    consumer.close(CLOSE).unwrap();
    assert_eq!((closed, dropped), (Ok(()), Ok(())));
}

/// X7: a `JobQueue` made before a fork and used in both processes at once. Before, the child
/// sent its commands on the parent's connection (one socket, two readers): replies went to the
/// wrong process, which misread them or timed out and sent its batch again. Now the child's
/// first request opens a connection of its own (the parent's stays the parent's).
#[test]
fn x7_a_job_queue_made_before_a_fork_has_a_connection_of_its_own_in_the_child() {
    let Some(server) =
        redis_or_skip("x7_a_job_queue_made_before_a_fork_has_a_connection_of_its_own_in_the_child")
    else {
        return;
    };
    let queue = JobQueue::connect(&server.url(), &queue_name("fork-queue")).unwrap();
    queue.stats().unwrap(); // the parent's connection is open before the fork
    const ROUNDS: usize = 300;
    let bound = Duration::from_secs(60); // a hang detector
    let (child, parent) = scenarios::fork_child_alongside(
        bound,
        || {
            for i in 0..ROUNDS {
                queue
                    .add((i as u32).to_le_bytes(), JobOptions::new())
                    .unwrap();
            }
        },
        || {
            (0..ROUNDS)
                .map(|_| queue.stats())
                .collect::<Result<Vec<_>, _>>()
        },
    );
    assert_eq!(child, Ok(()), "the child's adds");
    let parent = parent.expect("the parent's reads");
    assert!(parent.iter().all(|stats| stats.waiting <= ROUNDS as u64));
    // Every add was answered on the first try: none was sent twice.
    assert_eq!(queue.stats().unwrap().waiting, ROUNDS as u64);
}
