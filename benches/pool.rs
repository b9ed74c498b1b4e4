//! WorkerPool (issue 9) beside its peers, same run, same thread count:
//! - submit → result round trip: from an idle pool (threads parked) and back to back, beside
//!   rayon `spawn` + channel and `std::thread::spawn` + `join` (goal: ≤ 1.0x rayon);
//! - 1,000,000 empty tasks submitted, then all joined, beside rayon's per-task `scope.spawn`
//!   (goal: ≤ 1.0x rayon per task);
//! - `map` over 10,000,000 `u64`s (squares, then their sum) beside rayon `par_iter`
//!   (goal: ≥ 0.8x rayon's throughput).

#![cfg(not(loom))]
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use rayon::prelude::*;
use sharedbuf::pool::{MaxQueue, WorkerPool};

/// Threads in both pools: the machine's CPUs.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn pools() -> (Arc<WorkerPool>, rayon::ThreadPool) {
    let n = threads();
    let pool = WorkerPool::builder()
        .min_threads(n)
        .max_threads(n)
        .idle_timeout(None)
        .max_queue(MaxQueue::Unbounded)
        .build()
        .unwrap();
    let pool = Arc::new(pool);
    let rayon = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap();
    (pool, rayon)
}

/// Long enough for every worker of both pools to stop spinning and park (the crate's waiters
/// spin at most 50 µs; rayon's sleep after a few dozen rounds).
const IDLE_GAP: Duration = Duration::from_micros(300);

/// Times `iters` round trips, each after an idle gap that is not timed.
fn from_idle(iters: u64, mut round_trip: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        std::thread::sleep(IDLE_GAP);
        let start = Instant::now();
        round_trip();
        total += start.elapsed();
    }
    total
}

fn round_trip(c: &mut Criterion) {
    let (pool, rayon) = pools();
    let mut group = c.benchmark_group("pool_round_trip_from_idle");
    group.sample_size(20);
    group.measurement_time(Duration::from_millis(500));
    group.bench_function("sharedbuf pool.run + join", |b| {
        b.iter_custom(|iters| {
            from_idle(iters, || assert_eq!(pool.run(|_| 1).unwrap().join(), Ok(1)))
        })
    });
    group.bench_function("rayon spawn + channel", |b| {
        b.iter_custom(|iters| {
            from_idle(iters, || {
                let (tx, rx) = mpsc::sync_channel(1);
                rayon.spawn(move || tx.send(1).unwrap());
                assert_eq!(rx.recv(), Ok(1));
            })
        })
    });
    group.bench_function("std thread::spawn + join", |b| {
        b.iter_custom(|iters| {
            from_idle(iters, || {
                assert_eq!(std::thread::spawn(|| 1).join().unwrap(), 1)
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("pool_round_trip_back_to_back");
    group.bench_function("sharedbuf pool.run + join", |b| {
        b.iter(|| pool.run(|_| 1).unwrap().join().unwrap())
    });
    group.bench_function("rayon spawn + channel", |b| {
        b.iter(|| {
            let (tx, rx) = mpsc::sync_channel(1);
            rayon.spawn(move || tx.send(1).unwrap());
            rx.recv().unwrap()
        })
    });
    group.finish();
}

const BULK: u64 = 1_000_000;

fn bulk(c: &mut Criterion) {
    let (pool, rayon) = pools();
    let mut group = c.benchmark_group("pool_1m_empty_tasks");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BULK));
    group.bench_function("sharedbuf run all, then join all", |b| {
        b.iter(|| {
            let handles: Vec<_> = (0..BULK).map(|_| pool.run(|_| ()).unwrap()).collect();
            for handle in handles {
                handle.join().unwrap();
            }
        })
    });
    group.bench_function("sharedbuf run all, then join all, from a pool task", |b| {
        b.iter(|| {
            // The submitter is a pool thread, as in rayon's `scope` (whose body runs on a
            // worker): the same number of busy threads. Joins run unstarted tasks inline.
            let inner = Arc::clone(&pool);
            pool.run(move |_| {
                let handles: Vec<_> = (0..BULK).map(|_| inner.run(|_| ()).unwrap()).collect();
                for handle in handles {
                    handle.join().unwrap();
                }
            })
            .unwrap()
            .join()
            .unwrap();
        })
    });
    group.bench_function("rayon spawn + channel each, then recv all", |b| {
        // rayon's nearest thing to a handle per task: a one-shot channel.
        b.iter(|| {
            let receivers: Vec<_> = (0..BULK)
                .map(|_| {
                    let (tx, rx) = mpsc::sync_channel(1);
                    rayon.spawn(move || tx.send(()).unwrap());
                    rx
                })
                .collect();
            for rx in receivers {
                rx.recv().unwrap();
            }
        })
    });
    group.bench_function("rayon scope.spawn each", |b| {
        b.iter(|| {
            rayon.scope(|scope| {
                for _ in 0..BULK {
                    scope.spawn(|_| ());
                }
            })
        })
    });
    group.finish();
}

const ITEMS: u64 = 10_000_000;

fn map(c: &mut Criterion) {
    let (pool, rayon) = pools();
    let input: Vec<u64> = (0..ITEMS).collect();
    let expected: u64 = input
        .iter()
        .map(|x| x.wrapping_mul(*x))
        .fold(0, u64::wrapping_add);
    let mut group = c.benchmark_group("pool_map_10m_squares");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ITEMS));
    group.bench_function("sharedbuf map -> Vec, sum", |b| {
        b.iter_batched(
            || input.clone(),
            |items| {
                let squares = pool.map(items, |x| x.wrapping_mul(x)).unwrap();
                assert_eq!(
                    squares.iter().fold(0, |a, &b| u64::wrapping_add(a, b)),
                    expected
                );
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("rayon into_par_iter map -> Vec, sum", |b| {
        b.iter_batched(
            || input.clone(),
            |items| {
                let squares: Vec<u64> =
                    rayon.install(|| items.into_par_iter().map(|x| x.wrapping_mul(x)).collect());
                assert_eq!(
                    squares.iter().fold(0, |a, &b| u64::wrapping_add(a, b)),
                    expected
                );
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("rayon par_iter map sum (no Vec)", |b| {
        b.iter(|| {
            let sum = rayon.install(|| {
                input
                    .par_iter()
                    .map(|x| x.wrapping_mul(*x))
                    .reduce(|| 0, u64::wrapping_add)
            });
            assert_eq!(sum, expected);
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = round_trip, bulk, map
}

/// Not timed: runs one scenario `n` times and exits, for an instruction count under
/// `valgrind --tool=callgrind` (noise-free on a shared machine, unlike time). Run each with two
/// `n`s; the difference of the counts over the difference of the `n`s is the cost per task
/// (or per item), setup and teardown cancelling out:
///
/// ```text
/// POOL_PROFILE=bulk-sharedbuf POOL_PROFILE_N=100000 valgrind --tool=callgrind <pool bench>
/// ```
///
/// Scenarios: `bulk-sharedbuf`, `bulk-sharedbuf-inside` (from a pool task), `round-trip-sharedbuf`
/// (`run` + `join`, one at a time, back to back), `bulk-rayon`
/// (`scope.spawn`), `map-sharedbuf`, `map-rayon` (`into_par_iter().map().collect()`).
///
/// `POOL_PROFILE_ROUNDS=<r>` (default 1) runs the scenario `r` times in the same pools: the
/// difference between `r` and `r - 1` rounds is one round in the steady state a timed bench
/// measures (the allocator reusing what the round before freed, the threads' caches warm).
fn profile(scenario: &str, n: u64, rounds: u64) {
    let (pool, rayon) = pools();
    for _ in 0..rounds {
        profile_round(scenario, n, &pool, &rayon);
    }
}

/// One round of [`profile`].
fn profile_round(scenario: &str, n: u64, pool: &Arc<WorkerPool>, rayon: &rayon::ThreadPool) {
    match scenario {
        "bulk-sharedbuf" => {
            let handles: Vec<_> = (0..n).map(|_| pool.run(|_| ()).unwrap()).collect();
            for handle in handles {
                handle.join().unwrap();
            }
        }
        "bulk-sharedbuf-inside" => {
            let inner = Arc::clone(pool);
            pool.run(move |_| {
                let handles: Vec<_> = (0..n).map(|_| inner.run(|_| ()).unwrap()).collect();
                for handle in handles {
                    handle.join().unwrap();
                }
            })
            .unwrap()
            .join()
            .unwrap();
        }
        "round-trip-sharedbuf" => {
            for _ in 0..n {
                assert_eq!(pool.run(|_| 1).unwrap().join(), Ok(1));
            }
        }
        "bulk-rayon" => rayon.scope(|scope| {
            for _ in 0..n {
                scope.spawn(|_| ());
            }
        }),
        "map-sharedbuf" => {
            let input: Vec<u64> = (0..n).collect();
            let squares = pool.map(input, |x| x.wrapping_mul(x)).unwrap();
            assert_eq!(squares.len() as u64, n);
        }
        "map-rayon" => {
            let input: Vec<u64> = (0..n).collect();
            let squares: Vec<u64> =
                rayon.install(|| input.into_par_iter().map(|x| x.wrapping_mul(x)).collect());
            assert_eq!(squares.len() as u64, n);
        }
        other => panic!("POOL_PROFILE: unknown scenario {other:?}"),
    }
}

/// Not part of the criterion run: `POOL_AB=<rounds>` times the three bulk scenarios of
/// `pool_1m_empty_tasks` (1,000,000 tasks; `POOL_PROFILE_N` to change) in turn, round after
/// round in one process, and prints each round, the medians, the minima and the ratios to
/// rayon's. On a noisy host criterion times each row in its own stretch of seconds, so a slow
/// stretch lands on one row only; here every round of ours sits beside a round of rayon's
/// taken a moment earlier.
///
/// ```text
/// POOL_AB=15 target/release/deps/pool-<hash>
/// ```
fn alternate(rounds: usize, n: u64) {
    let (pool, rayon) = pools();
    let scenarios = ["bulk-sharedbuf", "bulk-sharedbuf-inside", "bulk-rayon"];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    profile_round("bulk-sharedbuf", n, &pool, &rayon); // warm-up: slabs, threads, caches
    profile_round("bulk-rayon", n, &pool, &rayon);
    for round in 0..rounds {
        let mut line = format!("round {round:>3}:");
        for (scenario, times) in scenarios.iter().zip(&mut times) {
            let start = Instant::now();
            profile_round(scenario, n, &pool, &rayon);
            let ms = start.elapsed().as_secs_f64() * 1e3;
            times.push(ms);
            line += &format!("  {scenario} {ms:7.1} ms");
        }
        println!("{line}");
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let rayon_times = &times[scenarios.len() - 1];
    for (scenario, times) in scenarios.iter().zip(&times) {
        let per_round: Vec<f64> = times.iter().zip(rayon_times).map(|(a, b)| a / b).collect();
        println!(
            "{scenario:>22}: median {:7.1} ms, min {:7.1} ms; / rayon: medians {:.2}x, minima {:.2}x, median of per-round ratios {:.2}x",
            median(times),
            min(times),
            median(times) / median(rayon_times),
            min(times) / min(rayon_times),
            median(&per_round),
        );
    }
}

/// `getrusage` of `who`: user and system seconds, minor faults, voluntary and involuntary
/// context switches.
fn usage(who: libc::c_int) -> [f64; 5] {
    // SAFETY: `getrusage` writes one `rusage` into the zeroed struct it is given.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(who, &mut r) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    [
        secs(r.ru_utime),
        secs(r.ru_stime),
        r.ru_minflt as f64,
        r.ru_nvcsw as f64,
        r.ru_nivcsw as f64,
    ]
}

/// `CLOCK_MONOTONIC` in seconds (what `perf record -k CLOCK_MONOTONIC` stamps samples with).
fn monotonic() -> f64 {
    // SAFETY: `clock_gettime` writes one `timespec` into the zeroed struct it is given.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// Not part of the criterion run: `POOL_DIAG=<rounds>` runs the plain bulk scenario and rayon's
/// in turn and prints, per round of ours: submit and join times, the queue left when the
/// submitter finished, how many joins found their task unfinished, and `getrusage` deltas of the
/// process and of the submitting thread (user/sys ms, minor faults, context switches).
fn diagnose(rounds: usize, n: u64) {
    let (pool, rayon) = pools();
    profile_round("bulk-sharedbuf", n, &pool, &rayon);
    profile_round("bulk-rayon", n, &pool, &rayon);
    for round in 0..rounds {
        let (p0, t0) = (usage(libc::RUSAGE_SELF), usage(libc::RUSAGE_THREAD));
        let mono0 = monotonic();
        let start = Instant::now();
        let handles: Vec<_> = (0..n).map(|_| pool.run(|_| ()).unwrap()).collect();
        let submitted = start.elapsed();
        let queued = pool.queue_size();
        let mut unfinished = 0u64;
        for handle in handles {
            unfinished += u64::from(!handle.is_finished());
            handle.join().unwrap();
        }
        let total = start.elapsed();
        let mono1 = monotonic();
        let (p1, t1) = (usage(libc::RUSAGE_SELF), usage(libc::RUSAGE_THREAD));
        let r0 = p1; // rayon's round starts where ours ended
        let rstart = Instant::now();
        profile_round("bulk-rayon", n, &pool, &rayon);
        let rayon_ms = rstart.elapsed().as_secs_f64() * 1e3;
        let r1 = usage(libc::RUSAGE_SELF);
        let d = |a: [f64; 5], b: [f64; 5], i: usize| b[i] - a[i];
        println!(
            "round {round:>3} [{mono0:.6},{mono1:.6}]: ours {:6.1} ms (submit {:6.1}, join {:6.1}) queued {:7} unfinished {:7} | proc usr {:5.0} sys {:4.0} flt {:6.0} vcsw {:5.0} ivcsw {:4.0} | submitter usr {:5.0} sys {:4.0} vcsw {:5.0} | rayon {:6.1} ms usr {:5.0} sys {:4.0} flt {:6.0}",
            total.as_secs_f64() * 1e3,
            submitted.as_secs_f64() * 1e3,
            (total - submitted).as_secs_f64() * 1e3,
            queued,
            unfinished,
            d(p0, p1, 0) * 1e3,
            d(p0, p1, 1) * 1e3,
            d(p0, p1, 2),
            d(p0, p1, 3),
            d(p0, p1, 4),
            d(t0, t1, 0) * 1e3,
            d(t0, t1, 1) * 1e3,
            d(t0, t1, 3),
            rayon_ms,
            d(r0, r1, 0) * 1e3,
            d(r0, r1, 1) * 1e3,
            d(r0, r1, 2),
        );
    }
}

/// The number in the environment variable `name`, or `default` if it is unset or not a number.
fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::var("POOL_DIAG").is_ok() {
        diagnose(
            env_number("POOL_DIAG", 15),
            env_number("POOL_PROFILE_N", 1_000_000),
        );
        return;
    }
    if std::env::var("POOL_AB").is_ok() {
        alternate(
            env_number("POOL_AB", 15).max(1),
            env_number("POOL_PROFILE_N", 1_000_000),
        );
        return;
    }
    if let Ok(scenario) = std::env::var("POOL_PROFILE") {
        profile(
            &scenario,
            env_number("POOL_PROFILE_N", 100_000),
            env_number("POOL_PROFILE_ROUNDS", 1),
        );
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
