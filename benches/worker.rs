//! Worker start-up (issue 4 goal ≤ 1.3x): spawning a `Worker` and reading its events up to
//! `Exit` (then joining its thread), beside `std::thread::spawn` + `join` of an empty closure.

#![cfg(not(loom))]
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use sharedbuf::worker::{Worker, WorkerEvent};

fn spawn_to_exit(c: &mut Criterion) {
    let mut group = c.benchmark_group("worker_spawn_to_exit");
    group.bench_function("sharedbuf Worker spawn -> Exit + join", |b| {
        b.iter(|| {
            let worker: Worker<(), ()> = Worker::spawn(|_ctx| ()).unwrap();
            let mut exited = false;
            for event in worker.events() {
                exited = matches!(event, WorkerEvent::Exit(_));
            }
            assert!(exited);
            worker.join().unwrap()
        })
    });
    group.bench_function("sharedbuf Worker spawn -> Exit (detached)", |b| {
        b.iter(|| {
            let worker: Worker<(), ()> = Worker::spawn(|_ctx| ()).unwrap();
            let mut exited = false;
            for event in worker.events() {
                exited = matches!(event, WorkerEvent::Exit(_));
            }
            assert!(exited);
        })
    });
    group.bench_function("std thread::spawn + join", |b| {
        b.iter(|| std::thread::spawn(|| ()).join().unwrap())
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
    targets = spawn_to_exit
}
criterion_main!(benches);
