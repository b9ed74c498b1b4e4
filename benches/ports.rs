//! Message ports: a ping-pong round trip beside crossbeam-channel `bounded(1)` and std `mpsc`
//! round trips (goal ≤ 1.0x crossbeam's time), and one-way throughput of small messages through
//! the default bounded ring beside crossbeam-channel `unbounded` (goal ≥ 1.0x crossbeam's
//! throughput, hardening issue).
//!
//! The partner thread of each contender is spawned before and joined after its measurement, so
//! thread spawn is never timed; `iter_custom` times only the messages.

#![cfg(not(loom))]
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sharedbuf::MessageChannel;

/// Messages per timed iteration of the throughput benches.
const BATCH: u64 = 1000;

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("port_round_trip");

    // sharedbuf: the partner echoes every message back on the same entangled pair.
    {
        let (mine, theirs) = MessageChannel::<u64>::new();
        let partner = thread::spawn(move || {
            for n in &theirs {
                if theirs.post_message(n).is_err() {
                    break;
                }
            }
        });
        group.bench_function("sharedbuf MessagePort", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    mine.post_message(i).unwrap();
                    assert_eq!(mine.recv().unwrap(), i);
                }
                start.elapsed()
            })
        });
        mine.close();
        partner.join().unwrap();
    }

    // crossbeam-channel bounded(1), one channel each way.
    {
        let (to_partner, from_bench) = crossbeam_channel::bounded::<u64>(1);
        let (to_bench, from_partner) = crossbeam_channel::bounded::<u64>(1);
        let partner = thread::spawn(move || {
            for n in from_bench {
                if to_bench.send(n).is_err() {
                    break;
                }
            }
        });
        group.bench_function("crossbeam bounded(1)", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    to_partner.send(i).unwrap();
                    assert_eq!(from_partner.recv().unwrap(), i);
                }
                start.elapsed()
            })
        });
        drop(to_partner);
        partner.join().unwrap();
    }

    // std mpsc, one channel each way.
    {
        let (to_partner, from_bench) = mpsc::channel::<u64>();
        let (to_bench, from_partner) = mpsc::channel::<u64>();
        let partner = thread::spawn(move || {
            for n in from_bench {
                if to_bench.send(n).is_err() {
                    break;
                }
            }
        });
        group.bench_function("std mpsc", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for i in 0..iters {
                    to_partner.send(i).unwrap();
                    assert_eq!(from_partner.recv().unwrap(), i);
                }
                start.elapsed()
            })
        });
        drop(to_partner);
        partner.join().unwrap();
    }
    group.finish();
}

fn one_way(c: &mut Criterion) {
    let mut group = c.benchmark_group("port_one_way");
    group.throughput(Throughput::Elements(BATCH));

    // sharedbuf: the partner sends `n` messages each time the bench thread asks for them.
    {
        let (control, partner_control) = MessageChannel::<u64>::new();
        let (data, partner_data) = MessageChannel::<u64>::new();
        let partner = thread::spawn(move || {
            for n in &partner_control {
                for i in 0..n {
                    partner_data.post_message(i).unwrap();
                }
            }
        });
        group.bench_function("sharedbuf MessagePort", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                control.post_message(iters * BATCH).unwrap();
                let mut sum = 0u64;
                for _ in 0..iters * BATCH {
                    sum = sum.wrapping_add(data.recv().unwrap());
                }
                let elapsed = start.elapsed();
                assert!(sum > 0 || iters * BATCH <= 1);
                elapsed
            })
        });
        control.close();
        partner.join().unwrap();
    }

    // crossbeam-channel unbounded.
    {
        let (control, partner_control) = crossbeam_channel::unbounded::<u64>();
        let (partner_data, data) = crossbeam_channel::unbounded::<u64>();
        let partner = thread::spawn(move || {
            for n in partner_control {
                for i in 0..n {
                    partner_data.send(i).unwrap();
                }
            }
        });
        group.bench_function("crossbeam unbounded", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                control.send(iters * BATCH).unwrap();
                let mut sum = 0u64;
                for _ in 0..iters * BATCH {
                    sum = sum.wrapping_add(data.recv().unwrap());
                }
                let elapsed = start.elapsed();
                assert!(sum > 0 || iters * BATCH <= 1);
                elapsed
            })
        });
        drop(control);
        partner.join().unwrap();
    }
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
    targets = round_trip, one_way
}
criterion_main!(benches);
