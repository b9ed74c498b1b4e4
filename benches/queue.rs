//! The job queue (issue 11) beside its floor, same run, same redis-server: jobs per second
//! through one consumer at concurrency 1 and 8, beside a bare `redis`-crate loop of `XADD` /
//! `XREADGROUP` / `XACK` (goal: ≥ 0.8x the floor's jobs/s).
//!
//! One iteration is one job, end to end: the bench thread adds `iters` jobs (pipelines of 100,
//! like a busy producer), and the clock stops when the consumer has acknowledged the last of
//! them. Both sides run against the same private `redis-server` (started on a free loopback
//! port, stopped at the end; the bench prints a SKIP line and does nothing without one).
//!
//! - **floor**: one consumer thread, `XREADGROUP GROUP g c COUNT <concurrency> BLOCK 100
//!   STREAMS s >`, then one `XACK` of everything it read; no pool, no leases, no retries;
//! - **sharedbuf**: `JobQueue::add_batch`, and a `Consumer` with `concurrency(n)` running an
//!   empty handler on a `WorkerPool` of n threads — the FETCH / FINISH scripts (ownership
//!   checks, counters, dedupe bookkeeping), leases renewed beside it, the wake-up reader.
//!
//! `cargo bench --features redis --bench queue -- --warm-up-time 1 --measurement-time 3`

#![cfg(not(loom))]
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

#[path = "../tests/queue_support/mod.rs"]
mod queue_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use queue_support::RedisServer;
use sharedbuf::pool::WorkerPool;
use sharedbuf::queue::{redis, Consumer, JobOptions, JobQueue};

/// Jobs per producer pipeline.
const PIPELINE: u64 = 100;
const PAYLOAD: &[u8] = b"0123456789abcdef";

/// A private redis-server, or `None` after a SKIP line when `redis-server` is not installed.
fn server() -> Option<RedisServer> {
    queue_support::redis_or_skip("benches/queue.rs")
}

/// Waits (polling) until `done` reaches `target`. A poll is at most 1/200 of the time so far
/// apart (50 µs to 1 ms): the clock overshoots by at most ~0.5 %, and the poller does not
/// take a share of the cores from what it measures (BullMQ's side waits for an event).
fn wait_for(done: impl Fn() -> u64, target: u64, started: Instant) {
    while done() < target {
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(120),
            "the consumer stalled at {} of {target}",
            done()
        );
        let poll = (elapsed / 200).clamp(Duration::from_micros(50), Duration::from_millis(1));
        std::thread::sleep(poll);
    }
}

/// The floor: a bare consumer loop on its own thread.
struct Floor {
    con: redis::Connection,
    stream: String,
    acked: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Floor {
    fn start(url: &str, stream: &str, concurrency: usize) -> Floor {
        let stream = stream.to_string();
        let mut con = connect(url);
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&stream)
            .arg("g")
            .arg("$")
            .arg("MKSTREAM")
            .query(&mut con)
            .unwrap();
        let acked = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut reader = connect(url);
        let thread = {
            let (stream, acked, stop) = (stream.clone(), Arc::clone(&acked), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let read: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
                        .arg("GROUP")
                        .arg("g")
                        .arg("c")
                        .arg("COUNT")
                        .arg(concurrency)
                        .arg("BLOCK")
                        .arg(100)
                        .arg("STREAMS")
                        .arg(&stream)
                        .arg(">")
                        .query(&mut reader)
                        .unwrap();
                    let ids: Vec<String> = read
                        .keys
                        .into_iter()
                        .flat_map(|key| key.ids)
                        .map(|entry| entry.id)
                        .collect();
                    if ids.is_empty() {
                        continue;
                    }
                    let n: u64 = redis::cmd("XACK")
                        .arg(&stream)
                        .arg("g")
                        .arg(&ids)
                        .query(&mut reader)
                        .unwrap();
                    acked.fetch_add(n, Ordering::Relaxed);
                }
            })
        };
        Floor {
            con,
            stream,
            acked,
            stop,
            thread: Some(thread),
        }
    }

    fn run(&mut self, iters: u64) -> Duration {
        let target = self.acked.load(Ordering::Relaxed) + iters;
        let start = Instant::now();
        let mut left = iters;
        while left > 0 {
            let n = left.min(PIPELINE);
            let mut pipe = redis::pipe();
            for _ in 0..n {
                pipe.cmd("XADD")
                    .arg(&self.stream)
                    .arg("*")
                    .arg("payload")
                    .arg(PAYLOAD)
                    .ignore();
            }
            pipe.query::<()>(&mut self.con).unwrap();
            left -= n;
        }
        wait_for(|| self.acked.load(Ordering::Relaxed), target, start);
        start.elapsed()
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn connect(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect to redis-server")
}

/// The queue: a producer and one consumer with an empty handler.
struct Ours {
    queue: JobQueue,
    consumer: Option<Consumer>,
}

impl Ours {
    fn start(url: &str, name: &str, concurrency: usize) -> Ours {
        let queue = JobQueue::connect(url, name).unwrap();
        let pool = Arc::new(
            WorkerPool::builder()
                .min_threads(concurrency)
                .max_threads(concurrency)
                .idle_timeout(None)
                .build()
                .unwrap(),
        );
        let mut consumer = queue.consumer("bench").concurrency(concurrency);
        if let Some(prefetch) = std::env::var("QUEUE_PREFETCH")
            .ok()
            .and_then(|n| n.parse().ok())
        {
            consumer = consumer.prefetch(prefetch);
        }
        let consumer = consumer.run_on(&pool, |_job, _ctx| Ok(())).unwrap();
        Ours {
            queue,
            consumer: Some(consumer),
        }
    }

    fn run(&mut self, iters: u64) -> Duration {
        let consumer = self.consumer.as_ref().unwrap();
        let target = consumer.stats().completed + iters;
        let start = Instant::now();
        let mut left = iters;
        while left > 0 {
            let n = left.min(PIPELINE);
            self.queue
                .add_batch((0..n).map(|_| (PAYLOAD, JobOptions::new())))
                .unwrap();
            left -= n;
        }
        wait_for(|| consumer.stats().completed, target, start);
        start.elapsed()
    }

    fn close(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            consumer.close(Some(Duration::from_secs(30))).unwrap();
        }
    }
}

/// `benches/node/queue-run`'s side: with `QUEUE_PEER_URL` set, pushes `QUEUE_PEER_JOBS` jobs
/// (default 20,000) through the floor and the queue at concurrency 1 and 8 against that
/// server, after a warm-up of a tenth as many, and prints one JSON object of jobs/s.
/// `QUEUE_PEER_CONCURRENCY` (e.g. `8`) runs one concurrency only, and `QUEUE_PEER_NO_FLOOR`
/// skips the floor: so `redis-cli INFO commandstats` around a run counts the queue's calls
/// alone.
fn peer(url: &str) {
    let jobs: u64 = std::env::var("QUEUE_PEER_JOBS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let levels: Vec<usize> = match std::env::var("QUEUE_PEER_CONCURRENCY") {
        Ok(n) => vec![n.parse().expect("QUEUE_PEER_CONCURRENCY: a number")],
        Err(_) => vec![1, 8],
    };
    let with_floor = std::env::var_os("QUEUE_PEER_NO_FLOOR").is_none();
    let tag = std::process::id();
    let mut figures = Vec::new();
    for concurrency in levels {
        let rate = |elapsed: Duration| jobs as f64 / elapsed.as_secs_f64();
        if with_floor {
            let mut floor =
                Floor::start(url, &format!("peer-floor-{tag}-{concurrency}"), concurrency);
            floor.run(jobs / 10);
            figures.push((format!("floor_c{concurrency}"), rate(floor.run(jobs))));
        }
        let mut ours = Ours::start(url, &format!("peer-{tag}-{concurrency}"), concurrency);
        ours.run(jobs / 10);
        figures.push((format!("sharedbuf_c{concurrency}"), rate(ours.run(jobs))));
        ours.close();
    }
    let fields: Vec<String> = figures
        .iter()
        .map(|(key, value)| format!("\"{key}\": {value:.0}"))
        .collect();
    println!("{{\"jobs\": {jobs}, {}}}", fields.join(", "));
}

fn throughput(c: &mut Criterion) {
    let Some(server) = server() else {
        return;
    };
    for concurrency in [1usize, 8] {
        let mut group = c.benchmark_group(format!("queue_jobs_concurrency_{concurrency}"));
        group.throughput(Throughput::Elements(1));
        group.sample_size(20);

        let mut floor = Floor::start(&server.url(), &format!("floor-{concurrency}"), concurrency);
        group.bench_function("floor_xadd_xreadgroup_xack", |b| {
            b.iter_custom(|iters| floor.run(iters))
        });
        drop(floor);

        let mut ours = Ours::start(&server.url(), &format!("bench-{concurrency}"), concurrency);
        group.bench_function("sharedbuf_queue", |b| {
            b.iter_custom(|iters| ours.run(iters))
        });
        ours.close();
        group.finish();
    }
}

criterion_group!(benches, throughput);

fn main() {
    if let Ok(url) = std::env::var("QUEUE_PEER_URL") {
        peer(&url);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
