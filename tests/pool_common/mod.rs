//! Helpers shared by the pool tests: a gate that holds tasks until the test opens it, a
//! watchdog for joins (a hang fails with a message instead of stalling the suite), and a
//! small deterministic random generator.

#![allow(dead_code)]

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use sharedbuf::pool::{PoolStats, TaskError, TaskHandle, WorkerPool};

/// How long a join may take before the test calls it a hang. It detects a hang; it does not
/// measure speed.
/// Under Miri, which interprets every thread on one core about a thousand times slower, a
/// correct test's wait can take minutes of real time (a hang still fails on the run's time limit).
pub const WATCHDOG: Duration = Duration::from_secs(if cfg!(miri) { 900 } else { 20 });

/// Joins `handle`, failing the test if it does not resolve within the watchdog.
pub fn join<R: Send + 'static>(handle: TaskHandle<R>) -> Result<R, TaskError> {
    match handle.join_timeout(WATCHDOG) {
        Ok(result) => result,
        Err(_) => panic!("a task handle did not resolve within {WATCHDOG:?}: hang"),
    }
}

/// A one-way gate: tasks `wait()` until the test `open()`s it; `entered()` tells how many
/// are waiting or went through.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<(bool, usize)>, Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Blocks until the gate is open. After the watchdog it gives up and returns anyway, so
    /// a test that failed before opening it does not hang in the pool's drop.
    pub fn wait(&self) {
        let (lock, changed) = &*self.0;
        let mut state = lock.lock().unwrap();
        state.1 += 1;
        changed.notify_all();
        while !state.0 {
            let (next, timeout) = changed.wait_timeout(state, WATCHDOG).unwrap();
            state = next;
            if timeout.timed_out() {
                eprintln!("a gate was never opened (the test failed first?)");
                return;
            }
        }
    }

    pub fn open(&self) {
        let (lock, changed) = &*self.0;
        lock.lock().unwrap().0 = true;
        changed.notify_all();
    }

    /// Blocks until `n` threads reached `wait` (watchdog-bounded).
    pub fn until_entered(&self, n: usize) {
        let (lock, changed) = &*self.0;
        let mut state = lock.lock().unwrap();
        while state.1 < n {
            let (next, timeout) = changed.wait_timeout(state, WATCHDOG).unwrap();
            assert!(
                !timeout.timed_out(),
                "{n} tasks never reached the gate: hang"
            );
            state = next;
        }
    }
}

/// Polls `condition` until it holds, failing after the watchdog (for conditions the pool
/// reaches on its own, like a thread exiting after its idle timeout).
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < WATCHDOG, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(1)); // polls a condition; no timing depends on it
    }
}

/// The pool's stats once nothing runs. A worker counts a task a moment after its handle
/// resolves, so right after the last join the count may trail by one; the counts add up once
/// nothing runs (src/pool/stats.rs).
pub fn settled_stats(pool: &WorkerPool) -> PoolStats {
    eventually("the last task is counted", || pool.stats().running == 0);
    pool.stats()
}

/// xorshift64*: deterministic, seeded, good enough to shuffle a test.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `true` with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Silences the default panic message of panics whose message starts with `prefix` (a test
/// that panics on purpose thousands of times); every other panic is reported as usual.
pub fn quiet_panics(prefix: &'static str) {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if !message.starts_with(prefix) {
            default(info);
        }
    }));
}
