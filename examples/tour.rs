//! A short tour of sharedbuf: run it with `cargo run --release --example tour`.
//!
//! `cargo test` runs it too (the test at the bottom): it checks what it prints, so a tour that
//! no longer works fails the test suite.
//!
//! It prints each step as it goes: a shared buffer, typed views over it, a DataView, a growable
//! buffer, the Atomics API used from several threads at once, and workers that talk through
//! message ports while they share memory, and locks that live inside the buffer itself.

use std::thread;

use sharedbuf::{atomics, DataView, Error, Float64Array, Int32Array, SharedBuffer, Uint8Array};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("== SharedBuffer: zeroed bytes, shared by clone()");
    let buf = SharedBuffer::new(16)?;
    let bytes = Uint8Array::new(&buf)?;
    let ints = Int32Array::new(&buf)?;
    println!("new SharedBuffer(16): {:?}", bytes.to_vec());

    println!("\n== Typed views over the same bytes");
    ints.set(0, 0x0403_0201)?;
    println!(
        "Int32Array[0] = 0x04030201 -> Uint8Array shows {:?}",
        &bytes.to_vec()[..4]
    );
    println!(
        "Int32Array[4] -> {:?} (out of range is None, never a panic)",
        ints.get(4)
    );
    println!("Int32Array.set(4, 1) -> {}", ints.set(4, 1).unwrap_err());
    println!(
        "Int32Array at byte offset 2 -> {}",
        Int32Array::with_range(&buf, 2, None).unwrap_err()
    );

    println!("\n== DataView: any type, any offset, either byte order");
    let dv = DataView::new(&buf)?;
    dv.set_float64(5, std::f64::consts::PI, false)?;
    println!(
        "setFloat64(5, PI, big-endian) -> bytes {:?}",
        &bytes.to_vec()[5..13]
    );
    println!("getFloat64(5, big-endian) -> {}", dv.get_float64(5, false)?);

    println!("\n== Growable buffers: reserved once, never moved");
    let g = SharedBuffer::growable(8, 64)?;
    let tracking = Float64Array::new(&g)?;
    println!(
        "growable(8, 64): a length-tracking Float64Array has {} elements",
        tracking.len()
    );
    g.grow(32)?;
    println!(
        "grow(32): now {} elements, the new ones read {:?}",
        tracking.len(),
        tracking.to_vec()
    );
    println!("grow(16) -> {}", g.grow(16).unwrap_err());
    println!("grow(128) -> {}", g.grow(128).unwrap_err());
    let copy = buf.slice(0..4)?;
    println!(
        "slice(0..4) copies: {:?}, shares memory: {}",
        Uint8Array::new(&copy)?.to_vec(),
        copy.same_memory(&buf)
    );

    println!("\n== Atomics from four threads");
    let counter = Int32Array::new(&SharedBuffer::new(4)?)?;
    thread::scope(|s| {
        for _ in 0..4 {
            let counter = counter.clone();
            s.spawn(move || {
                for _ in 0..10_000 {
                    atomics::add(&counter, 0, 1).expect("index 0 is in range");
                }
            });
        }
    });
    let total = atomics::load(&counter, 0)?;
    println!("4 threads x 10000 atomics::add -> {total}");
    assert_eq!(total, 40_000, "no increment is lost");
    println!(
        "compare_exchange(0, 40000 -> 7) returned {}",
        atomics::compare_exchange(&counter, 0, 40_000, 7)?
    );
    println!(
        "Atomics.isLockFree(4) = {}, (3) = {}",
        atomics::is_lock_free(4),
        atomics::is_lock_free(3)
    );

    println!("\n== wait / notify: a handoff between two threads");
    let cell = Int32Array::new(&SharedBuffer::new(8)?)?;
    let peer = cell.clone();
    let ponger = thread::spawn(move || -> Result<u32, sharedbuf::Error> {
        // Answer each odd number with the next even one, sleeping in between.
        let mut answered = 0;
        for round in 0..1000 {
            while atomics::load(&peer, 0)? != 2 * round + 1 {
                atomics::wait(&peer, 0, 2 * round, None)?;
            }
            atomics::store(&peer, 0, 2 * round + 2)?;
            atomics::notify(&peer, 0, None)?;
            answered += 1;
        }
        Ok(answered)
    });
    let started = std::time::Instant::now();
    for round in 0..1000 {
        atomics::store(&cell, 0, 2 * round + 1)?;
        atomics::notify(&cell, 0, None)?;
        while atomics::load(&cell, 0)? != 2 * round + 2 {
            atomics::wait(&cell, 0, 2 * round + 1, None)?;
        }
    }
    let answered = ponger.join().expect("the ponger does not panic")?;
    println!(
        "{answered} round trips through atomics::wait/notify, {:?} each",
        started.elapsed() / 1000
    );
    println!(
        "wait with a mismatched value -> {:?}; with a 10 ms timeout -> {:?}",
        atomics::wait(&cell, 1, 5, None)?,
        atomics::wait(&cell, 1, 0, Some(std::time::Duration::from_millis(10)))?
    );
    println!(
        "notify with nobody waiting woke {} (no lock taken)",
        atomics::notify(&cell, 1, None)?
    );

    workers()?;
    locks()?;
    pool()?;
    Ok(())
}

/// What the parent asks the summing worker to do.
#[derive(Debug)]
enum Command {
    /// Add every number in the range into the shared total.
    Sum(std::ops::Range<i32>),
    /// Finish.
    Stop,
}

/// Workers: one computes into a `SharedBuffer` with atomics while the parent talks to it
/// through messages; a second, blocked in `atomics::wait`, is terminated.
fn workers() -> Result<(), Error> {
    use sharedbuf::worker::{self, Worker};

    println!("\n== Workers: messages for control, a SharedBuffer for the data");
    // [0] = the running total, [1] = how many numbers were added so far.
    let shared = Int32Array::new(&SharedBuffer::new(8)?)?;
    let summer: Worker<Command, String> = Worker::builder()
        .name("summer")
        .worker_data(shared.clone())
        .spawn(|ctx| -> Result<(), Error> {
            let view = ctx.worker_data();
            for command in ctx.port() {
                match command {
                    Command::Sum(range) => {
                        let (from, to) = (range.start, range.end);
                        for n in range {
                            atomics::add(view, 0, n)?;
                            atomics::add(view, 1, 1)?;
                        }
                        ctx.post_message(format!("summed {from}..{to}"))?;
                    }
                    Command::Stop => break,
                }
            }
            Ok(())
        })?;
    println!(
        "spawned worker {} (isMainThread here: {})",
        summer.thread_id(),
        worker::is_main_thread()
    );
    println!("  event {:?}", summer.recv_event()?);
    for range in [1..101, 101..201, 201..301] {
        println!("postMessage(Sum({range:?}))");
        summer.post_message(Command::Sum(range))?;
        println!(
            "  event {:?}; the shared buffer now holds total {} after {} numbers",
            summer.recv_event()?,
            atomics::load(&shared, 0)?,
            atomics::load(&shared, 1)?
        );
    }
    println!("postMessage(Stop)");
    summer.post_message(Command::Stop)?;
    for event in summer.events() {
        println!("  event {event:?}");
    }
    let total = atomics::load(&shared, 0)?;
    println!(
        "total read from the SharedBuffer: {total} (1 + 2 + ... + 300 = {})",
        300 * 301 / 2
    );
    assert_eq!(total, 300 * 301 / 2);

    println!("\n== terminate(): interrupting a worker blocked in atomics::wait");
    let sleeper: Worker<(), &str> = Worker::builder()
        .name("sleeper")
        .worker_data(Int32Array::new(&SharedBuffer::new(4)?)?)
        .spawn(|ctx| -> Result<(), Error> {
            ctx.post_message("about to wait for a notify that never comes")?;
            atomics::wait(ctx.worker_data(), 0, 0, None)?; // `?` unwinds on Terminated
            ctx.post_message("never printed")?;
            Ok(())
        })?;
    println!("  event {:?}", sleeper.recv_event()?);
    println!("  event {:?}", sleeper.recv_event()?);
    let status = sleeper.terminate()?;
    println!("terminate() -> {status}");
    for event in sleeper.events() {
        println!("  event {event:?}");
    }
    println!(
        "posting to the exited worker -> {}",
        sleeper.post_message(()).unwrap_err()
    );
    Ok(())
}

/// Locks inside the buffer: two workers update a pair of counters under a `sync::Mutex` that
/// lives in the same `SharedBuffer` as the counters, with a `sync::Barrier` between phases.
fn locks() -> Result<(), Error> {
    use sharedbuf::sync::{Barrier, Mutex};
    use sharedbuf::worker::Worker;

    println!("\n== Locks inside the buffer: a Mutex and a Barrier next to the data they guard");
    // Bytes 0..16: the mutex; 16..32: the barrier; 32..40: two i32 counters that must stay equal.
    let buf = SharedBuffer::new(40)?;
    let _mutex = Mutex::at(&buf, 0)?; // all-zero bytes: an unlocked mutex, nothing to initialize
    let _barrier = Barrier::at(&buf, Mutex::BYTES, 2)?; // two parties, set once
    let spawn_incrementer = |name: &str| -> Result<Worker<(), String>, Error> {
        Worker::builder()
            .name(name)
            .worker_data(buf.clone())
            .spawn(|ctx| -> Result<(), Error> {
                let buf = ctx.worker_data();
                let mutex = Mutex::at(buf, 0)?; // another handle on the same bytes
                let barrier = Barrier::at(buf, Mutex::BYTES, 2)?;
                let pair = Int32Array::with_range(buf, 32, Some(2))?;
                for phase in 0..2 {
                    for _ in 0..10_000 {
                        let _guard = mutex.lock()?; // unlocks when dropped
                                                    // Plain (relaxed) reads and writes: the mutex orders them.
                        let a = pair.get(0).unwrap_or_default();
                        let b = pair.get(1).unwrap_or_default();
                        pair.set(0, a + 1)?;
                        pair.set(1, b + 1)?;
                    }
                    let leader = barrier.wait()?.is_leader(); // both finish the phase first
                    let _guard = mutex.lock()?;
                    ctx.post_message(format!(
                        "phase {phase} done (leader: {leader}), pair = ({}, {})",
                        pair.get(0).unwrap_or_default(),
                        pair.get(1).unwrap_or_default()
                    ))?;
                }
                Ok(())
            })
    };
    let first = spawn_incrementer("incrementer-1")?;
    let second = spawn_incrementer("incrementer-2")?;
    for worker in [&first, &second] {
        for event in worker.events() {
            println!("  {event:?}");
        }
    }
    let pair = Int32Array::with_range(&buf, 32, Some(2))?;
    println!(
        "2 workers x 2 phases x 10000 locked increments -> pair = {:?} (always equal)",
        pair.to_vec()
    );
    assert_eq!(pair.to_vec(), [40_000, 40_000]);
    Ok(())
}

/// A worker pool: a batch of CPU tasks, one cancelled while queued, one timed out, one
/// panicking, and the statistics at the end.
fn pool() -> Result<(), Box<dyn std::error::Error>> {
    use sharedbuf::pool::{MaxQueue, TaskError, TaskOptions, WorkerPool};
    use std::time::Duration;

    println!("\n== WorkerPool: a batch with a cancel, a timeout and a panic");
    let pool = WorkerPool::builder()
        .name("tour")
        .max_threads(2)
        .max_queue(MaxQueue::Bounded(64))
        .build()?;
    // The first two tasks hold both threads until the rest are queued, so the cancel finds
    // its target still waiting (a worker takes the oldest task first, docs/semantics.md P11).
    let go = Int32Array::new(&SharedBuffer::new(4)?)?;
    let gates = (0..2)
        .map(|_| {
            let gate = go.clone();
            pool.run(move |_| atomics::wait(&gate, 0, 0, None))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sums = (1..=4u64)
        .map(|n| pool.run(move |_| (1..=n * 1_000_000).map(|i| i % 7).sum::<u64>()))
        .collect::<Result<Vec<_>, _>>()?;
    let doomed = pool.run(|_| 0u64)?;
    let slow = pool.run_with(
        TaskOptions::new().timeout(Duration::from_millis(20)),
        |ctx| {
            let mut spins = 0u64;
            while !ctx.is_cancelled() {
                spins += 1; // a loop that checks its flag: stops when its time is up
            }
            spins
        },
    )?;
    // Rust prints every panic through the panic hook; keep it to one line for the tour.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| println!("  (panic hook: {info})")));
    let broken = pool.run(|_| -> u64 { panic!("bad input") })?;
    let cancelled = doomed.cancel();
    println!("cancel() on a queued task -> {cancelled}");
    assert!(
        cancelled,
        "both threads are held at the gate: the task is still queued"
    );
    atomics::store(&go, 0, 1)?;
    atomics::notify(&go, 0, None)?; // open the gate
    for gate in gates {
        println!("gate task -> {:?}", gate.join()??);
    }
    for (n, handle) in (1..).zip(sums) {
        println!("sum task {n} -> {}", handle.join()?);
    }
    let (doomed, slow) = (doomed.join(), slow.join());
    println!("cancelled task -> {doomed:?}");
    println!("timed-out task -> {slow:?}");
    assert_eq!(
        (doomed, slow),
        (Err(TaskError::Cancelled), Err(TaskError::TimedOut))
    );
    let panicked = broken.join();
    std::panic::set_hook(default_hook);
    println!("panicking task -> {panicked:?} (the pool is unharmed)");
    assert_eq!(panicked, Err(TaskError::Panicked("bad input".into())));
    pool.close(Some(Duration::from_secs(10)))?;
    let stats = pool.stats();
    println!(
        "stats: submitted {}, completed {}, cancelled {}, timed out {}, failed {}",
        stats.submitted, stats.completed, stats.cancelled, stats.timed_out, stats.failed
    );
    let counts = (stats.submitted, stats.completed, stats.cancelled);
    assert_eq!(
        counts,
        (9, 6, 1),
        "P6: the statistics count every task exactly"
    );
    assert_eq!((stats.timed_out, stats.failed), (1, 1));
    Ok(())
}

/// `cargo test` runs the tour (Cargo.toml: `[[example]] test = true`), so a broken tour fails
/// the suite, not only a user's first command.
#[cfg(test)]
mod tests {
    #[test]
    fn the_tour_runs() {
        super::main().expect("the tour returned an error");
    }
}
