//! A job queue on Redis Streams feeding WorkerPools in two consumer processes.
//!
//! ```sh
//! cargo run --features redis --example job_queue                      # starts a redis-server
//! cargo run --features redis --example job_queue redis://127.0.0.1:6379  # or uses yours
//! ```
//!
//! Without a URL it needs the `redis-server` binary on the `PATH` (`apt-get install
//! redis-server`); `cargo test` does not run it.
//!
//! The main process is the producer: it adds 2,000 jobs (a few of them high priority, a few
//! delayed, some that fail once and are retried after a backoff, and some that always fail and
//! end in the dead-letter stream), starts two consumer processes (this program again, with
//! `--consumer`), each running jobs on its own `WorkerPool`, prints the queue's statistics
//! while they work, and when every job is done closes the consumers (by closing their stdin),
//! prints the final counts and exits — stopping the redis-server if it started one.

use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sharedbuf::pool::{Priority, WorkerPool};
use sharedbuf::queue::{redis, Backoff, Effects, JobError, JobOptions, JobQueue, QueueStats};

const JOBS: u64 = 2_000;

#[derive(serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
    cents: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--consumer") {
        return consumer(&args[2], &args[3], &args[4]);
    }
    let mut started_server = None;
    let url = match args.get(1) {
        Some(url) => url.clone(),
        None => {
            let (url, server) = start_redis()?;
            started_server = Some(server);
            url
        }
    };
    let result = producer(&url);
    if let Some((mut server, dir)) = started_server {
        let _ = server.kill();
        let _ = server.wait();
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

/// The producer: queues the jobs, starts the consumers, reports, stops them.
fn producer(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("orders-{}", std::process::id());
    let queue = JobQueue::connect(url, &name)?;
    println!("queue {name} on {url}");
    let started = Instant::now();
    for id in 0..JOBS {
        let order = Order {
            id,
            cents: 100 + id % 900,
        };
        let mut options = JobOptions::new()
            .attempts(3)
            .backoff(Backoff::exponential(Duration::from_millis(50)).jitter())
            .timeout(Duration::from_secs(5))
            .dedupe(format!("order-{id}"));
        if id % 100 == 0 {
            options = options.priority(Priority::High);
        }
        if id % 250 == 1 {
            options = options.delay(Duration::from_millis(500));
        }
        queue.add_value(&order, options)?;
    }
    println!("added {JOBS} jobs in {:?}", started.elapsed());

    let exe = std::env::current_exe()?;
    let mut consumers: Vec<Child> = ["host-a", "host-b"]
        .iter()
        .map(|who| {
            Command::new(&exe)
                .args(["--consumer", url, &name, who])
                .stdin(Stdio::piped())
                .spawn()
        })
        .collect::<Result<_, _>>()?;

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = queue.stats()?;
        print_progress(&stats);
        if stats.completed + stats.dead_lettered >= JOBS {
            break;
        }
        if Instant::now() > deadline {
            eprintln!("giving up: the consumers did not finish within two minutes");
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    for child in &mut consumers {
        drop(child.stdin.take()); // EOF: the consumer closes and exits
    }
    for mut child in consumers {
        child.wait()?;
    }

    let stats = queue.stats()?;
    println!("\nfinal counts after {:?}:", started.elapsed());
    println!(
        "  completed {}, failed attempts {} ({} retried), dead-lettered {}, waiting {}, active {}, delayed {}",
        stats.completed,
        stats.failed,
        stats.retried,
        stats.dead_lettered,
        stats.waiting,
        stats.active,
        stats.delayed
    );
    for c in &stats.consumers {
        println!(
            "  {}: completed {}, failed {}, dead-lettered {}",
            c.name, c.completed, c.failed, c.dead_lettered
        );
    }
    for letter in queue.dead_letters(3)? {
        println!(
            "  dead letter: job {:?} after attempt {}: {}",
            letter.job, letter.attempt, letter.error
        );
    }
    let mut con = redis::Client::open(url)?.get_connection()?;
    let revenue: u64 = redis::cmd("HGET")
        .arg(format!("{name}:totals"))
        .arg("cents")
        .query(&mut con)?;
    println!("  revenue committed with the acknowledgements: {revenue} cents (once per order)");
    Ok(())
}

fn print_progress(stats: &QueueStats) {
    let per: Vec<String> = stats
        .consumers
        .iter()
        .map(|c| format!("{} {}", c.name, c.completed))
        .collect();
    println!(
        "waiting {:5} active {:3} delayed {:3} completed {:5} failed {:3} dead {:3} [{}]",
        stats.waiting,
        stats.active,
        stats.delayed,
        stats.completed,
        stats.failed,
        stats.dead_lettered,
        per.join(", ")
    );
}

/// A consumer process: a pool, a consumer on it, until stdin closes.
fn consumer(url: &str, name: &str, who: &str) -> Result<(), Box<dyn std::error::Error>> {
    let queue = JobQueue::connect(url, name)?;
    let pool = Arc::new(WorkerPool::builder().max_threads(4).build()?);
    let totals = format!("{name}:totals");
    let me = format!("{who}-{}", std::process::id());
    let consumer = queue.consumer(&me).concurrency(pool.max_threads()).run_on(
        &pool,
        move |job, ctx| -> Result<Effects, JobError> {
            let order: Order = job.value()?;
            // Some work that checks its cancel flag (set when its timeout passes).
            let until = Instant::now() + Duration::from_micros(300);
            while Instant::now() < until {
                if ctx.is_cancelled() {
                    return Err(JobError::retry("cancelled"));
                }
                std::hint::spin_loop();
            }
            if order.id % 97 == 3 && job.attempt() == 1 {
                return Err(JobError::retry("payment gateway busy"));
            }
            if order.id % 400 == 7 {
                return Err(JobError::permanent(format!(
                    "order {} has no address",
                    order.id
                )));
            }
            Ok(Effects::new().command(
                redis::cmd("HINCRBY")
                    .arg(&totals)
                    .arg("cents")
                    .arg(order.cents),
            ))
        },
    )?;
    // Wait until the producer closes our stdin.
    let mut line = String::new();
    let stdin = std::io::stdin();
    while stdin.lock().read_line(&mut line)? > 0 {
        line.clear();
    }
    let stats = consumer.close(Some(Duration::from_secs(10)))?;
    println!(
        "consumer {me}: fetched {}, completed {}, failed {}, reclaimed {}",
        stats.fetched, stats.completed, stats.failed, stats.reclaimed
    );
    std::io::stdout().flush()?;
    Ok(())
}

/// Starts `redis-server` on a free loopback port in a temporary folder.
fn start_redis() -> Result<(String, (Child, std::path::PathBuf)), Box<dyn std::error::Error>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("sharedbuf-job-queue-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let server = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot start redis-server ({e}): install it, or pass the URL of a running one")
        })?;
    let url = format!("redis://127.0.0.1:{port}");
    let client = redis::Client::open(url.as_str())?;
    let started = Instant::now();
    while client
        .get_connection_with_timeout(Duration::from_millis(100))
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(10) {
            return Err("redis-server did not start within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("started redis-server on port {port}");
    Ok((url, (server, dir)))
}
