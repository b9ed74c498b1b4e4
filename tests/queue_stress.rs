//! Many jobs through three consumer processes that are SIGKILLed at random and replaced: every
//! job completes, and the effect each handler commits, keyed by the job's dedupe key, happens
//! exactly once (docs/semantics.md Q1, Q5).
//!
//! CI pushes 10,000 jobs (about 3 s in debug on a 2-core machine, with 5 to 10 kills). The
//! 100,000-job variant the issue asks for (about 25 s in debug, 50 to 60 kills) is `#[ignore]`d
//! to keep CI short; run it with
//! `cargo test --features redis --test queue_stress -- --ignored`.
#![cfg(feature = "redis")]

mod queue_support;

use std::cell::RefCell;
use std::process::Child;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use queue_support::{
    child_arg, child_role, orphaned, queue_name, redis_or_skip, spawn_child, wait_until, Children,
    WATCHDOG,
};
use sharedbuf::pool::WorkerPool;
use sharedbuf::queue::{redis, Effects, JobError, JobOptions, JobQueue};

/// Short, so jobs of killed consumers come back quickly.
const LEASE: Duration = Duration::from_millis(400);
const CONSUMERS: usize = 3;

#[test]
fn q5_10k_jobs_three_killed_consumers_effects_exactly_once() {
    run(
        "q5_10k_jobs_three_killed_consumers_effects_exactly_once",
        10_000,
    );
}

#[test]
#[ignore = "100,000 jobs, about 25 s in debug: run with --ignored"]
fn q5_100k_jobs_three_killed_consumers_effects_exactly_once() {
    run(
        "q5_100k_jobs_three_killed_consumers_effects_exactly_once",
        100_000,
    );
}

fn run(test: &str, jobs: usize) {
    if child_role(test).as_deref() == Some("consumer") {
        consumer_process();
        return;
    }
    let Some(server) = redis_or_skip(test) else {
        return;
    };
    let name = queue_name("stress");
    let queue = JobQueue::connect(&server.url(), &name).unwrap();
    let added = queue
        .add_batch((0..jobs).map(|i| {
            let key = format!("k{i}");
            (key.clone().into_bytes(), JobOptions::new().dedupe(key))
        }))
        .unwrap();
    assert!(added.iter().all(|a| a.is_new()));

    let parent = std::process::id();
    let mut generation = 0usize;
    let spawn = |generation: &mut usize| -> Child {
        *generation += 1;
        let arg = format!("{}|{}|{}|c{}", server.url(), name, parent, generation);
        spawn_child(test, "consumer", &arg)
    };
    let mut children = Children((0..CONSUMERS).map(|_| spawn(&mut generation)).collect());

    // Kill a random consumer every 100..400 ms, and start a new one in its place, until the
    // queue is done. The first kill comes once a tenth of the jobs completed, so there is at
    // least one kill in the middle of the run.
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("{test}: random seed {seed}");
    let mut random = seed;
    let mut next = move || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        random
    };
    wait_until("a tenth of the jobs completed", || {
        queue.stats().unwrap().completed >= (jobs / 10) as u64
    });
    let started = Instant::now();
    let mut kills = 0;
    let mut next_kill = Instant::now();
    loop {
        let stats = queue.stats().unwrap();
        if stats.completed >= jobs as u64 {
            break;
        }
        assert!(
            started.elapsed() < WATCHDOG * 5,
            "not done after {:?}: {stats:?}",
            WATCHDOG * 5
        );
        if Instant::now() >= next_kill {
            let victim = (next() % CONSUMERS as u64) as usize;
            let child = &mut children.0[victim];
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            children.0[victim] = spawn(&mut generation);
            kills += 1;
            next_kill = Instant::now() + Duration::from_millis(100 + next() % 300);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(children); // kills the consumers still running
    assert!(kills >= 1);
    println!("{test}: {jobs} jobs, {kills} consumers killed");

    let stats = queue.stats().unwrap();
    assert_eq!(
        (stats.completed, stats.failed, stats.dead_lettered),
        (jobs as u64, 0, 0),
        "every job acknowledged exactly once ({stats:?})"
    );
    let mut con = server.connection();
    let done: Vec<(String, i64)> = redis::cmd("HGETALL")
        .arg(format!("{name}:done"))
        .query(&mut con)
        .unwrap();
    assert_eq!(done.len(), jobs, "an effect for every job");
    let twice: Vec<_> = done.iter().filter(|(_, n)| *n != 1).take(10).collect();
    assert!(
        twice.is_empty(),
        "effects committed more than once: {twice:?}"
    );
    let runs: i64 = redis::cmd("GET")
        .arg(format!("{name}:runs"))
        .query(&mut con)
        .unwrap();
    assert!(runs >= jobs as i64);
    println!(
        "{test}: {runs} handler runs for {jobs} jobs ({} reclaimed)",
        stats.reclaimed
    );
}

/// A consumer process: runs jobs until its parent is gone (or it is killed). The handler counts
/// its runs outside the acknowledgement (at least once) and commits the job's effect with it
/// (exactly once).
fn consumer_process() {
    let arg = child_arg();
    let mut parts = arg.split('|');
    let (url, name) = (parts.next().unwrap(), parts.next().unwrap());
    let parent: u32 = parts.next().unwrap().parse().unwrap();
    let me = parts.next().unwrap();
    let queue = JobQueue::connect(url, name).unwrap();
    let pool = std::sync::Arc::new(WorkerPool::builder().max_threads(2).build().unwrap());
    let client = redis::Client::open(url).unwrap();
    let runs_key = format!("{name}:runs");
    let done_key = format!("{name}:done");
    let _consumer = queue
        .consumer(me)
        .concurrency(8)
        .lease(LEASE)
        .max_stalls(1000)
        .run_on(&pool, move |job, _ctx| -> Result<Effects, JobError> {
            thread_local! {
                static CON: RefCell<Option<redis::Connection>> = const { RefCell::new(None) };
            }
            CON.with(|con| -> Result<(), redis::RedisError> {
                let mut con = con.borrow_mut();
                if con.is_none() {
                    *con = Some(client.get_connection()?);
                }
                redis::cmd("INCR")
                    .arg(&runs_key)
                    .query::<i64>(con.as_mut().unwrap())
                    .map(drop)
            })
            .map_err(|e| JobError::retry(e.to_string()))?;
            let key = job.dedupe_key().unwrap_or("missing").to_string();
            Ok(Effects::new().command(redis::cmd("HINCRBY").arg(&done_key).arg(key).arg(1)))
        })
        .unwrap();
    while !orphaned(parent) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::exit(0);
}
