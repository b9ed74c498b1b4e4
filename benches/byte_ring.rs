//! Byte messages between two threads, in the same run: `channel::ByteRing` (the bytes cross
//! through a ring in a `SharedBuffer`, as they will between processes), the typed
//! `MessageChannel<Vec<u8>>` (the `Vec` is moved, never copied: the in-process ideal), and a
//! `std::os::unix::net::UnixStream` pair (what processes use without shared memory). Issue 10's
//! goal for the process version: a round trip at least 5x faster than through a `UnixStream`.
//!
//! - `byte_round_trip/<size>`: the bench thread sends a message, the partner sends it back.
//! - `byte_one_way/<size>`: the partner sends a batch, the bench thread receives it.
//!
//! Each side does the work a real user of it does: `ByteRing` copies each message in once and
//! out once (into a reused buffer, through `recv_with`); `MessageChannel` allocates and copies
//! each message once (`to_vec`) and moves it afterwards; `UnixStream` writes and reads
//! fixed-size messages (no length prefix, which favours it). The partner of each contender is
//! spawned before and joined after its measurement.

#![cfg(not(loom))]
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sharedbuf::channel::{ByteReceiver, ByteRing, ByteSender};
use sharedbuf::{MessageChannel, SharedBuffer};

const SIZES: [(usize, &str); 2] = [(8, "8B"), (64 << 10, "64KiB")];

/// A ring holding at least 16 messages of `size` bytes (and at least 64 KiB).
fn byte_pair(size: usize) -> (ByteSender, ByteReceiver) {
    let capacity = ByteRing::capacity_for(size, 16).unwrap().max(64 << 10);
    let buffer = SharedBuffer::new(ByteRing::bytes_for(capacity).unwrap()).unwrap();
    let ring = ByteRing::at(&buffer, 0, capacity).unwrap();
    (ring.sender().unwrap(), ring.receiver().unwrap())
}

/// Receives one message into `buf` (reused), returning its length.
fn recv_into(rx: &mut ByteReceiver, buf: &mut Vec<u8>) -> Option<usize> {
    rx.recv_with(None, |m| {
        buf.resize(m.len(), 0);
        m.copy_to_slice(0, buf).unwrap();
        m.len()
    })
    .ok()
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("byte_round_trip");
    for (size, name) in SIZES {
        let payload = vec![0x5a; size];

        {
            let (mut to_partner, mut partner_rx) = byte_pair(size);
            let (mut partner_tx, mut from_partner) = byte_pair(size);
            let partner = thread::spawn(move || {
                let mut buf = Vec::new();
                while let Some(len) = recv_into(&mut partner_rx, &mut buf) {
                    if partner_tx.send(&buf[..len], None).is_err() {
                        break;
                    }
                }
            });
            let mut buf = Vec::new();
            group.bench_function(BenchmarkId::new("ByteRing", name), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        to_partner.send(&payload, None).unwrap();
                        assert_eq!(recv_into(&mut from_partner, &mut buf), Some(size));
                    }
                    start.elapsed()
                })
            });
            drop(to_partner);
            partner.join().unwrap();
        }

        {
            let (mine, theirs) = MessageChannel::<Vec<u8>>::new();
            let partner = thread::spawn(move || {
                for message in &theirs {
                    if theirs.post_message(message).is_err() {
                        break;
                    }
                }
            });
            group.bench_function(BenchmarkId::new("MessageChannel<Vec<u8>>", name), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        mine.post_message(payload.to_vec()).unwrap();
                        assert_eq!(mine.recv().unwrap().len(), size);
                    }
                    start.elapsed()
                })
            });
            mine.close();
            partner.join().unwrap();
        }

        {
            let (mut mine, mut theirs) = UnixStream::pair().unwrap();
            let partner = thread::spawn(move || {
                let mut buf = vec![0; size];
                while theirs.read_exact(&mut buf).is_ok() {
                    if theirs.write_all(&buf).is_err() {
                        break;
                    }
                }
            });
            let mut buf = vec![0; size];
            group.bench_function(BenchmarkId::new("UnixStream", name), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        mine.write_all(&payload).unwrap();
                        mine.read_exact(&mut buf).unwrap();
                    }
                    start.elapsed()
                })
            });
            drop(mine);
            partner.join().unwrap();
        }
    }
    group.finish();
}

/// Messages per timed iteration of the one-way benches.
fn batch(size: usize) -> u64 {
    if size <= 64 {
        1000
    } else {
        16
    }
}

fn one_way(c: &mut Criterion) {
    let mut group = c.benchmark_group("byte_one_way");
    for (size, name) in SIZES {
        let batch = batch(size);
        group.throughput(Throughput::Bytes(batch * size as u64));
        let payload = vec![0x5a; size];

        {
            let (control, partner_control) = MessageChannel::<u64>::new();
            let (mut tx, mut rx) = byte_pair(size);
            let partner_payload = payload.clone();
            let partner = thread::spawn(move || {
                for n in &partner_control {
                    for _ in 0..n {
                        tx.send(&partner_payload, None).unwrap();
                    }
                }
            });
            let mut buf = Vec::new();
            group.bench_function(BenchmarkId::new("ByteRing", name), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    control.post_message(iters * batch).unwrap();
                    for _ in 0..iters * batch {
                        assert_eq!(recv_into(&mut rx, &mut buf), Some(size));
                    }
                    start.elapsed()
                })
            });
            control.close();
            partner.join().unwrap();
        }

        {
            let (control, partner_control) = MessageChannel::<u64>::new();
            let (data, partner_data) = MessageChannel::<Vec<u8>>::new();
            let partner_payload = payload.clone();
            let partner = thread::spawn(move || {
                for n in &partner_control {
                    for _ in 0..n {
                        partner_data.post_message(partner_payload.to_vec()).unwrap();
                    }
                }
            });
            group.bench_function(BenchmarkId::new("MessageChannel<Vec<u8>>", name), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    control.post_message(iters * batch).unwrap();
                    for _ in 0..iters * batch {
                        assert_eq!(data.recv().unwrap().len(), size);
                    }
                    start.elapsed()
                })
            });
            control.close();
            partner.join().unwrap();
        }

        {
            let (control, partner_control) = MessageChannel::<u64>::new();
            let (mut mine, mut theirs) = UnixStream::pair().unwrap();
            let partner_payload = payload.clone();
            let partner = thread::spawn(move || {
                for n in &partner_control {
                    for _ in 0..n {
                        theirs.write_all(&partner_payload).unwrap();
                    }
                }
            });
            let mut buf = vec![0; size];
            group.bench_function(BenchmarkId::new("UnixStream", name), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    control.post_message(iters * batch).unwrap();
                    for _ in 0..iters * batch {
                        mine.read_exact(&mut buf).unwrap();
                    }
                    start.elapsed()
                })
            });
            control.close();
            partner.join().unwrap();
        }
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
