//! `sync` primitives beside their std peers, in the same run (issue 8 goal for the barrier:
//! ≤ 1.0x `std::sync::Barrier`). Meant to be merged into `benches/sync.rs`.
//!
//! - `barrier/*`: two threads pass 10,000 generations of a two-party barrier; one iteration is
//!   the 10,000 generations. The partner is a long-lived thread per contender (spawned before
//!   and joined after the measurement), so thread spawn is never measured.
//! - `semaphore_uncontended/*`: one `acquire(1)` + `release(1)` on one thread: the in-buffer
//!   `Semaphore` vs the usual std semaphore (a `Mutex<u32>` and a `Condvar`).

#![cfg(not(loom))]
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use sharedbuf::sync::{Barrier, Semaphore};
use sharedbuf::SharedBuffer;

const GENERATIONS: u64 = 10_000;

/// What both barriers do.
trait TwoPartyBarrier: Send + Sync + 'static {
    fn wait(&self);
}

impl TwoPartyBarrier for Barrier {
    fn wait(&self) {
        Barrier::wait(self).unwrap();
    }
}

impl TwoPartyBarrier for std::sync::Barrier {
    fn wait(&self) {
        std::sync::Barrier::wait(self);
    }
}

fn bench_barrier<B: TwoPartyBarrier>(c: &mut Criterion, name: &str, barrier: B) {
    let barrier = Arc::new(barrier);
    let stop = Arc::new(AtomicBool::new(false));
    let partner = {
        let (barrier, stop) = (barrier.clone(), stop.clone());
        thread::spawn(move || loop {
            barrier.wait();
            if stop.load(SeqCst) {
                return;
            }
        })
    };
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters * GENERATIONS {
                barrier.wait();
            }
            start.elapsed()
        })
    });
    // The partner passes one more generation, then sees the flag set before it.
    stop.store(true, SeqCst);
    barrier.wait();
    partner.join().unwrap();
}

fn barrier(c: &mut Criterion) {
    let buffer = SharedBuffer::new(Barrier::BYTES).unwrap();
    bench_barrier(c, "barrier/sharedbuf", Barrier::at(&buffer, 0, 2).unwrap());
    bench_barrier(c, "barrier/std", std::sync::Barrier::new(2));
}

/// The usual std counting semaphore.
struct StdSemaphore {
    permits: Mutex<u32>,
    available: Condvar,
}

impl StdSemaphore {
    fn acquire(&self) {
        let mut permits = self.permits.lock().unwrap();
        while *permits == 0 {
            permits = self.available.wait(permits).unwrap();
        }
        *permits -= 1;
    }

    fn release(&self) {
        *self.permits.lock().unwrap() += 1;
        self.available.notify_one();
    }
}

fn semaphore_uncontended(c: &mut Criterion) {
    let semaphore = Semaphore::at(&SharedBuffer::new(Semaphore::BYTES).unwrap(), 0).unwrap();
    semaphore.release(1).unwrap();
    c.bench_function("semaphore_uncontended/sharedbuf", |b| {
        b.iter(|| {
            semaphore.acquire(black_box(1)).unwrap();
            semaphore.release(black_box(1)).unwrap();
        })
    });
    let std_semaphore = StdSemaphore {
        permits: Mutex::new(1),
        available: Condvar::new(),
    };
    c.bench_function("semaphore_uncontended/std_mutex_condvar", |b| {
        b.iter(|| {
            std_semaphore.acquire();
            std_semaphore.release();
        })
    });
}

criterion_group!(benches, barrier, semaphore_uncontended);
criterion_main!(benches);
