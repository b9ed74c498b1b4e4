//! sharedbuf side of the sharedbuf-vs-Node comparison: the protocols `benches/node/protocols.mjs`
//! times in Node, timed here with sharedbuf's public API. `benches/node/run` runs both and
//! prints them side by side; see `benches/node/README.md`.
//!
//! ```text
//! cargo bench --bench node_peer      # full run (cargo passes --bench): one JSON object on stdout
//! cargo test --bench node_peer       # no --bench: a few tiny samples, to check it works
//! ```
//!
//! Methodology, shared with protocols.mjs (the runner refuses figures whose plans differ):
//! `warmup` samples are run and thrown away, then `samples` samples are timed; a sample is
//! `batch` consecutive operations timed as a whole, divided by `batch`. A figure is the median
//! of the samples, in nanoseconds per operation. Partner workers are started (and `Online`)
//! before the warm-up and stopped after the last sample, so only the protocol is timed, except
//! in `spawn_to_exit`, where the spawn is the protocol.
//!
//! Not criterion: the point is the same methodology as the Node script, so both can be read
//! the same way.

#![cfg(not(loom))]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use sharedbuf::pool::{MaxQueue, WorkerPool};
use sharedbuf::process::{self, Entry, ProcessContext, ProcessEvent, ProcessWorker};
use sharedbuf::worker::{Worker, WorkerEvent};
use sharedbuf::{atomics, Error, Int32Array, SharedBuffer};

/// How one protocol is measured (the same numbers as in protocols.mjs).
#[derive(Clone, Copy)]
struct Plan {
    /// Samples run and thrown away first.
    warmup: usize,
    /// Samples timed; the figure is their median.
    samples: usize,
    /// Operations per sample.
    batch: u64,
}

impl Plan {
    /// `--quick`-style plan: enough to see the protocol work, nothing worth comparing.
    fn quick(self) -> Plan {
        Plan {
            warmup: 1,
            samples: 3,
            batch: self.batch.min(10),
        }
    }
}

/// One protocol: its JSON key, its plan, and how to measure it (returns ns per operation).
struct Protocol {
    key: &'static str,
    plan: Plan,
    run: fn(Plan) -> f64,
}

/// A group of protocols under one JSON key.
struct Section {
    name: &'static str,
    protocols: &'static [Protocol],
}

const fn plan(warmup: usize, samples: usize, batch: u64) -> Plan {
    Plan {
        warmup,
        samples,
        batch,
    }
}

/// Section → protocols, in output order; protocols.mjs has the same table (same keys, same
/// counts).
const SECTIONS: &[Section] = &[
    Section {
        name: "threads",
        protocols: &[
            Protocol {
                key: "atomics_round_trip",
                plan: plan(10, 51, 1000),
                run: atomics_round_trip,
            },
            Protocol {
                key: "post_message_round_trip",
                plan: plan(10, 51, 1000),
                run: post_message_round_trip,
            },
            Protocol {
                key: "post_message_one_way",
                plan: plan(10, 51, 1000),
                run: post_message_one_way,
            },
            Protocol {
                key: "spawn_to_exit",
                plan: plan(5, 51, 1),
                run: spawn_to_exit,
            },
        ],
    },
    Section {
        name: "process",
        protocols: &[
            Protocol {
                key: "send_round_trip",
                plan: plan(10, 51, 1000),
                run: send_round_trip,
            },
            Protocol {
                key: "fork_to_exit",
                plan: plan(3, 21, 1),
                run: fork_to_exit,
            },
        ],
    },
    Section {
        name: "pool",
        protocols: &[
            Protocol {
                key: "round_trip",
                plan: plan(5, 51, 100),
                run: pool_round_trip,
            },
            Protocol {
                key: "bulk",
                plan: plan(1, 5, 100_000),
                run: pool_bulk,
            },
        ],
    },
];

// --- measurement ----------------------------------------------------------------------------

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Runs the warm-up, then the samples; `run_batch(n)` performs n operations and returns how
/// long they took. The median, in ns per operation.
fn measure(plan: Plan, mut run_batch: impl FnMut(u64) -> Duration) -> f64 {
    for _ in 0..plan.warmup {
        run_batch(plan.batch);
    }
    let per_op = (0..plan.samples)
        .map(|_| run_batch(plan.batch).as_nanos() as f64 / plan.batch as f64)
        .collect();
    median(per_op)
}

/// Starts a partner worker and waits for its `Online` event, as protocols.mjs waits for
/// `'online'`.
fn partner<In, Out, D>(
    worker_data: D,
    f: impl FnOnce(sharedbuf::worker::WorkerContext<In, Out, D>) -> Result<(), Error> + Send + 'static,
) -> Worker<In, Out>
where
    In: Send + 'static,
    Out: Send + std::fmt::Debug + 'static,
    D: Send + 'static,
{
    let worker = Worker::builder()
        .worker_data(worker_data)
        .spawn(f)
        .expect("spawn a partner worker");
    match worker.recv_event() {
        Ok(WorkerEvent::Online) => worker,
        other => panic!("expected Online from the partner, got {other:?}"),
    }
}

// --- section "threads": Worker protocols ----------------------------------------------------

/// The Atomics ping-pong turn word: whose turn it is.
const BENCH: i32 = 0;
const PARTNER: i32 = 1;
const QUIT: i32 = 2;

/// The main thread and one worker hand a turn back and forth through `atomics::wait` /
/// `notify` on an `Int32Array`.
fn atomics_round_trip(plan: Plan) -> f64 {
    let turn = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
    let worker: Worker<(), ()> = partner(turn.clone(), |ctx| {
        let turn = ctx.worker_data();
        loop {
            match atomics::load(turn, 0)? {
                QUIT => return Ok(()),
                PARTNER => {
                    atomics::store(turn, 0, BENCH)?;
                    atomics::notify(turn, 0, Some(1))?;
                }
                now => {
                    atomics::wait(turn, 0, now, None)?;
                }
            }
        }
    });
    let figure = measure(plan, |n| {
        let start = Instant::now();
        for _ in 0..n {
            atomics::store(&turn, 0, PARTNER).unwrap();
            atomics::notify(&turn, 0, Some(1)).unwrap();
            while atomics::load(&turn, 0).unwrap() != BENCH {
                atomics::wait(&turn, 0, PARTNER, None).unwrap();
            }
        }
        start.elapsed()
    });
    atomics::store(&turn, 0, QUIT).unwrap();
    atomics::notify(&turn, 0, None).unwrap();
    let status = worker.join().unwrap();
    assert_eq!(status.code(), 0, "the ping-pong partner failed");
    figure
}

/// Main posts a number, the worker posts it back, main receives it.
fn post_message_round_trip(plan: Plan) -> f64 {
    let worker: Worker<u64, u64> = partner((), |ctx| loop {
        ctx.post_message(ctx.recv()?)?;
    });
    let figure = measure(plan, |n| {
        let start = Instant::now();
        for sent in 0..n {
            worker.post_message(sent).unwrap();
            match worker.recv_event() {
                Ok(WorkerEvent::Message(echoed)) if echoed == sent => {}
                other => panic!("echo: sent {sent}, got {other:?}"),
            }
        }
        start.elapsed()
    });
    worker.terminate().unwrap();
    figure
}

/// Main posts `batch` numbers without waiting; the worker acknowledges once, with their sum.
fn post_message_one_way(plan: Plan) -> f64 {
    let worker: Worker<u64, u64> = partner(plan.batch, |ctx| loop {
        let mut sum = 0u64;
        for _ in 0..*ctx.worker_data() {
            sum += ctx.recv()?;
        }
        ctx.post_message(sum)?;
    });
    let figure = measure(plan, |n| {
        let start = Instant::now();
        for i in 0..n {
            worker.post_message(i).unwrap();
        }
        let ack = worker.recv_event();
        let elapsed = start.elapsed();
        match ack {
            Ok(WorkerEvent::Message(sum)) if sum == n * (n - 1) / 2 => elapsed,
            other => panic!("one-way: {other:?} for {n} messages"),
        }
    });
    worker.terminate().unwrap();
    figure
}

/// `Worker::spawn` of a closure that does nothing, until its `Exit` event, then `join` (Node's
/// `'exit'` comes after the worker's thread is gone).
fn spawn_to_exit(plan: Plan) -> f64 {
    measure(plan, |n| {
        let start = Instant::now();
        for _ in 0..n {
            let worker: Worker<(), ()> = Worker::spawn(|_ctx| ()).unwrap();
            let last = worker.events().last();
            assert!(
                matches!(last, Some(WorkerEvent::Exit(status)) if status.code() == 0),
                "empty worker ended with {last:?}"
            );
            worker.join().unwrap();
        }
        start.elapsed()
    })
}

// --- section "process": ProcessWorker protocols (Node: cluster workers) ----------------------

/// A child process echoing every number (Node: a `cluster` worker doing `process.send(n)`).
fn echo_process(ctx: ProcessContext<u64, u64>) -> Result<(), Error> {
    loop {
        match ctx.recv() {
            Ok(n) => ctx.post_message(&n)?,
            Err(Error::Closed) => return Ok(()),
            Err(other) => return Err(other),
        }
    }
}
static ECHO_PROCESS: Entry<u64, u64> = Entry::new("echo", echo_process);

/// A child process that exits at once.
fn empty_process(_: ProcessContext<(), ()>) {}
static EMPTY_PROCESS: Entry<(), (), ()> = Entry::new("empty", empty_process);

/// Main posts a number to a process worker, which posts it back (Node: `worker.send(n)`,
/// `process.send(n)` in the cluster worker).
fn send_round_trip(plan: Plan) -> f64 {
    let worker = ProcessWorker::spawn(&ECHO_PROCESS).expect("spawn the echo process");
    assert_eq!(worker.recv_event(), Ok(ProcessEvent::Online));
    let figure = measure(plan, |n| {
        let start = Instant::now();
        for sent in 0..n {
            worker.post_message(&sent).unwrap();
            match worker.recv_event() {
                Ok(ProcessEvent::Message(echoed)) if echoed == sent => {}
                other => panic!("echo: sent {sent}, got {other:?}"),
            }
        }
        start.elapsed()
    });
    worker.disconnect();
    assert!(worker.join().unwrap().success(), "the echo process failed");
    figure
}

/// `ProcessWorker::spawn` of an entry that does nothing, until its `Exit` event (Node:
/// `cluster.fork()` of a worker that exits at once, until `'exit'`).
fn fork_to_exit(plan: Plan) -> f64 {
    measure(plan, |n| {
        let start = Instant::now();
        for _ in 0..n {
            let worker = ProcessWorker::spawn(&EMPTY_PROCESS).unwrap();
            let last = worker.events().last();
            assert!(
                matches!(last, Some(ProcessEvent::Exit(exit)) if exit.success()),
                "empty process ended with {last:?}"
            );
        }
        start.elapsed()
    })
}

// --- section "pool": WorkerPool (Piscina on the Node side) -----------------------------------

/// A pool like the Node side's Piscina: every CPU's thread started up front and kept.
fn worker_pool() -> WorkerPool {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    WorkerPool::builder()
        .min_threads(threads)
        .max_threads(threads)
        .idle_timeout(None)
        .max_queue(MaxQueue::Unbounded)
        .build()
        .expect("build the pool")
}

/// One task, its result joined, then the next (Piscina: `await pool.run(i)`).
fn pool_round_trip(plan: Plan) -> f64 {
    let pool = worker_pool();
    measure(plan, |n| {
        let start = Instant::now();
        for i in 0..n {
            let echoed = pool.run(move |_| i).unwrap().join().unwrap();
            assert_eq!(echoed, i, "pool.run({i})");
        }
        start.elapsed()
    })
}

/// `batch` tasks submitted, then all joined; per task (Piscina: `Promise.all` of `pool.run`s).
fn pool_bulk(plan: Plan) -> f64 {
    let pool = worker_pool();
    measure(plan, |n| {
        let start = Instant::now();
        let handles: Vec<_> = (0..n).map(|i| pool.run(move |_| i).unwrap()).collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let elapsed = start.elapsed();
        assert_eq!(sum, n * (n - 1) / 2, "bulk: sum for {n} tasks");
        elapsed
    })
}

// --- output ---------------------------------------------------------------------------------

/// The figures as one JSON object, in the shape protocols.mjs prints.
fn report(quick: bool) -> String {
    let mut json = format!(
        r#"{{"runtime":"sharedbuf {}","mode":"{}","sections":{{"#,
        env!("CARGO_PKG_VERSION"),
        if quick { "quick" } else { "bench" },
    );
    for (s, section) in SECTIONS.iter().enumerate() {
        let comma = if s == 0 { "" } else { "," };
        write!(json, r#"{comma}"{}":{{"#, section.name).unwrap();
        for (p, protocol) in section.protocols.iter().enumerate() {
            let plan = if quick {
                protocol.plan.quick()
            } else {
                protocol.plan
            };
            let median_ns = (protocol.run)(plan);
            let comma = if p == 0 { "" } else { "," };
            write!(
                json,
                r#"{comma}"{}":{{"median_ns":{median_ns:.3},"warmup":{},"samples":{},"batch":{}}}"#,
                protocol.key, plan.warmup, plan.samples, plan.batch,
            )
            .unwrap();
        }
        json.push('}');
    }
    json.push_str("}}");
    json
}

fn main() {
    process::init(&[&ECHO_PROCESS, &EMPTY_PROCESS]); // the process partners run here
                                                     // `cargo bench` passes `--bench`; `cargo test --benches` does not, and gets the quick run.
    let quick = !std::env::args().any(|arg| arg == "--bench");
    println!("{}", report(quick));
}
