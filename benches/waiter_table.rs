//! The waiter table's cost with many waiters pending (hardening issue, fault 8; goal: 200,000
//! pending `wait_async` futures dropped in any order in under 50 ms).
//!
//! - `drop_200k`: dropping 200,000 pending `wait_async` futures on one address, newest first
//!   and in a random order, beside dropping 200,000 boxed futures of about a waiter's size in
//!   the same two orders (the cost of freeing that many futures at all: in a random order the
//!   allocator alone is much slower, so compare each order with its own peer).
//! - `notify_one_crowded_bucket`: `notify(Some(1))` on an address with one waiter while
//!   100,000 waiters for other addresses of the same bucket are pending, beside the same
//!   `notify` with no other waiter in the table. A notify should cost what it wakes.
//!
//! Building the futures is not measured (`iter_batched`), nor is re-enqueuing the one waiter
//! between notifies (each notify is timed alone, in both figures of the pair).

#![cfg(not(loom))]
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode};
use sharedbuf::atomics::{self, WaitAsync, WaitFuture};
use sharedbuf::{Int32Array, SharedBuffer};

const FUTURES: usize = 200_000;
/// Waiters for other addresses piled into the notified address's bucket.
const CROWD: usize = 100_000;
/// How many other addresses the crowd is spread over (waiters per address: `CROWD / ADDRESSES`).
const ADDRESSES: usize = 1_000;

fn int32s(len: usize) -> Int32Array {
    Int32Array::new(&SharedBuffer::new(len * 4).unwrap()).unwrap()
}

fn pending(view: &Int32Array, index: usize) -> WaitFuture {
    match atomics::wait_async(view, index, 0, None).unwrap() {
        WaitAsync::Pending(future) => future,
        WaitAsync::Ready(result) => panic!("expected a pending wait, got {result:?}"),
    }
}

/// A small xorshift generator: a reproducible shuffle without another dependency.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// Drops the futures one by one, last first (the order the vector holds them in).
fn drop_newest_first<T>(mut futures: Vec<T>) {
    while let Some(future) = futures.pop() {
        drop(future);
    }
}

fn drop_200k(c: &mut Criterion) {
    let mut group = c.benchmark_group("drop_200k");
    // One drop of 200,000 per sample: the slow case takes seconds.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let view = int32s(1);
    group.bench_function("wait_async futures, newest first", |b| {
        b.iter_batched(
            || (0..FUTURES).map(|_| pending(&view, 0)).collect::<Vec<_>>(),
            drop_newest_first,
            BatchSize::PerIteration,
        )
    });
    group.bench_function("wait_async futures, random order", |b| {
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        b.iter_batched(
            || {
                let mut futures = (0..FUTURES).map(|_| pending(&view, 0)).collect::<Vec<_>>();
                seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                shuffle(&mut futures, seed | 1);
                futures
            },
            drop_newest_first,
            BatchSize::PerIteration,
        )
    });
    // The peer: boxed futures of about a waiter's size (a ZST future would not allocate),
    // freed in the same two orders, so the allocator's share of the cost is in both figures.
    let boxed = || {
        (0..FUTURES)
            .map(|_| Box::pin(std::future::ready([0u64; 8])) as Pin<Box<dyn Future<Output = _>>>)
            .collect::<Vec<_>>()
    };
    group.bench_function("boxed futures, newest first (peer)", |b| {
        b.iter_batched(boxed, drop_newest_first, BatchSize::PerIteration)
    });
    group.bench_function("boxed futures, random order (peer)", |b| {
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        b.iter_batched(
            || {
                let mut futures = boxed();
                seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                shuffle(&mut futures, seed | 1);
                futures
            },
            drop_newest_first,
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// Times `notify(Some(1))` on element `target`, which has exactly one waiter each time.
fn notify_one(view: &Int32Array, target: usize, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let future = pending(view, target);
        let start = Instant::now();
        let woken = atomics::notify(black_box(view), black_box(target), Some(1)).unwrap();
        total += start.elapsed();
        assert_eq!(woken, 1);
        drop(future);
    }
    total
}

fn notify_one_crowded_bucket(c: &mut Criterion) {
    let mut group = c.benchmark_group("notify_one_crowded_bucket");
    // Element 0 is notified; the crowd waits on other elements that share its bucket. Which
    // elements those are depends on where the buffer landed, so ask the table (the hash is
    // `bucket_index` in src/atomics/waiter_table.rs). Buckets are picked by the address's hash,
    // so about one element in 256 shares it: 2^20 elements give some 4,000 candidates.
    let view = int32s(1 << 20);
    let bucket = atomics::waiter_bucket(&view, 0).unwrap();
    let others: Vec<usize> = (1..view.len())
        .filter(|&i| atomics::waiter_bucket(&view, i).unwrap() == bucket)
        .take(ADDRESSES)
        .collect();
    assert_eq!(others.len(), ADDRESSES, "not enough colliding elements");
    let crowd: Vec<WaitFuture> = (0..CROWD)
        .map(|k| pending(&view, others[k % ADDRESSES]))
        .collect();
    group.bench_function("100k other waiters in the bucket", |b| {
        b.iter_custom(|iters| notify_one(&view, 0, iters))
    });
    drop(crowd);
    group.bench_function("no other waiter (peer)", |b| {
        b.iter_custom(|iters| notify_one(&view, 0, iters))
    });
    group.finish();
}

criterion_group!(benches, drop_200k, notify_one_crowded_bucket);
criterion_main!(benches);
