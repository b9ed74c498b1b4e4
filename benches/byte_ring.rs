//! Byte messages between two threads, in the same run: `channel::ByteRing` (the bytes cross
//! through a ring in a `SharedBuffer`, as they will between processes), the typed
//! `MessageChannel<Vec<u8>>` (the `Vec` is moved, never copied: the in-process ideal), and a
//! `std::os::unix::net::UnixStream` pair (what processes use without shared memory). Issue 10's
//! goal for the process version: a round trip at least 5x faster than through a `UnixStream`.
//!
//! - `byte_round_trip/<size>`: the bench thread sends a message, the partner sends it back;
//!   the partner is a thread, or (`processes`) this bench binary re-executed as a child process
//!   (`SHAREDBUF_BENCH_CHILD` set) on a memfd buffer or an inherited socket.
//! - `byte_one_way/<size>`: the partner sends a batch, the bench thread receives it.
//!
//! Each side does the work a real user of it does: `ByteRing` copies each message in once and
//! out once (into a reused buffer, through `recv_with`); `MessageChannel` allocates and copies
//! each message once (`to_vec`) and moves it afterwards; `UnixStream` writes and reads
//! fixed-size messages (no length prefix, which favours it). The partner of each contender is
//! spawned before and joined after its measurement.

#![cfg(not(loom))]
#![allow(missing_docs)]

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use sharedbuf::channel::{ByteReceiver, ByteRing, ByteSender};
use sharedbuf::{MessageChannel, SharedBuffer};

const SIZES: [(usize, &str); 2] = [(8, "8B"), (64 << 10, "64KiB")];

/// Set in a child process: which partner to play (`byte-echo` or `unix-echo`), the message
/// size, and the inherited descriptor (the buffer's, or the socket's).
const CHILD: &str = "SHAREDBUF_BENCH_CHILD";
const CHILD_SIZE: &str = "SHAREDBUF_BENCH_SIZE";
const CHILD_FD: &str = "SHAREDBUF_BENCH_FD";

/// Data bytes of a ring for messages of `size` bytes: at least 16 of them, at least 64 KiB.
fn capacity(size: usize) -> usize {
    ByteRing::capacity_for(size, 16).unwrap().max(64 << 10)
}

/// A ring for messages of `size` bytes, in a buffer of its own.
fn byte_pair(size: usize) -> (ByteSender, ByteReceiver) {
    let capacity = capacity(size);
    let buffer = SharedBuffer::new(ByteRing::bytes_for(capacity).unwrap()).unwrap();
    let ring = ByteRing::at(&buffer, 0, capacity).unwrap();
    (ring.sender().unwrap(), ring.receiver().unwrap())
}

/// Ring `n` of a buffer holding two rings for messages of `size` bytes.
fn ring_of(buffer: &SharedBuffer, size: usize, n: usize) -> ByteRing {
    let capacity = capacity(size);
    ByteRing::at(buffer, n * ByteRing::bytes_for(capacity).unwrap(), capacity).unwrap()
}

/// Echoes every message of `rx` on `tx` until `rx` is closed.
fn echo(mut rx: ByteReceiver, mut tx: ByteSender) {
    let mut buf = Vec::new();
    while let Some(len) = recv_into(&mut rx, &mut buf) {
        if tx.send(&buf[..len], None).is_err() {
            break;
        }
    }
}

/// Echoes fixed-size messages on `stream` until it is closed.
fn echo_stream(mut stream: UnixStream, size: usize) {
    let mut buf = vec![0; size];
    while stream.read_exact(&mut buf).is_ok() {
        if stream.write_all(&buf).is_err() {
            break;
        }
    }
}

/// The child's `main`: play the partner named by [`CHILD`].
fn child_main(role: &str) {
    let size: usize = std::env::var(CHILD_SIZE).unwrap().parse().unwrap();
    let fd: i32 = std::env::var(CHILD_FD).unwrap().parse().unwrap();
    match role {
        "byte-echo" => {
            let buffer = SharedBuffer::open(format!("/proc/self/fd/{fd}")).unwrap();
            let rx = ring_of(&buffer, size, 0).receiver().unwrap();
            let tx = ring_of(&buffer, size, 1).sender().unwrap();
            echo(rx, tx);
        }
        "unix-echo" => {
            // SAFETY: `fd` is the socket the parent duplicated for this process, inherited
            // open and owned by nothing else here.
            let stream = unsafe { UnixStream::from_raw_fd(fd) };
            echo_stream(stream, size);
        }
        other => panic!("unknown role {other}"),
    }
}

/// Starts this bench binary as a partner process playing `role` with descriptor `fd` (which
/// must not be close-on-exec).
fn spawn_partner(role: &str, size: usize, fd: i32) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env(CHILD, role)
        .env(CHILD_SIZE, size.to_string())
        .env(CHILD_FD, fd.to_string())
        .stdin(Stdio::null())
        .spawn()
        .expect("re-execute the bench as the partner process")
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
            let (mut to_partner, partner_rx) = byte_pair(size);
            let (partner_tx, mut from_partner) = byte_pair(size);
            let partner = thread::spawn(move || echo(partner_rx, partner_tx));
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
            let (mut mine, theirs) = UnixStream::pair().unwrap();
            let partner = thread::spawn(move || echo_stream(theirs, size));
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

        // The same two between processes.
        {
            let capacity = capacity(size);
            let buffer = SharedBuffer::memfd(
                "bench-byte-ring",
                2 * ByteRing::bytes_for(capacity).unwrap(),
            )
            .unwrap();
            let mut to_partner = ring_of(&buffer, size, 0).sender().unwrap();
            let mut from_partner = ring_of(&buffer, size, 1).receiver().unwrap();
            let fd = buffer.inheritable_fd().unwrap().unwrap();
            let mut child = spawn_partner("byte-echo", size, fd.as_raw_fd());
            drop(fd);
            let mut buf = Vec::new();
            group.bench_function(BenchmarkId::new("ByteRing, processes", name), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    for _ in 0..iters {
                        to_partner.send(&payload, None).unwrap();
                        assert_eq!(recv_into(&mut from_partner, &mut buf), Some(size));
                    }
                    start.elapsed()
                })
            });
            drop(to_partner); // closes ring 0: the partner's echo ends
            assert!(
                child.wait().unwrap().success(),
                "the partner process failed"
            );
        }

        {
            let (mut mine, theirs) = UnixStream::pair().unwrap();
            // SAFETY: `dup` of a live descriptor; the copy is not close-on-exec, so the child
            // inherits it, and is closed here right after the spawn.
            let fd = unsafe { libc::dup(theirs.as_raw_fd()) };
            assert!(fd >= 0);
            let mut child = spawn_partner("unix-echo", size, fd);
            // SAFETY: `fd` is the duplicate made above, owned by nothing else here.
            unsafe { libc::close(fd) };
            drop(theirs);
            let mut buf = vec![0; size];
            group.bench_function(BenchmarkId::new("UnixStream, processes", name), |b| {
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
            assert!(
                child.wait().unwrap().success(),
                "the partner process failed"
            );
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

fn main() {
    if let Ok(role) = std::env::var(CHILD) {
        child_main(&role);
        return;
    }
    let mut criterion = config().configure_from_args();
    round_trip(&mut criterion);
    one_way(&mut criterion);
    criterion.final_summary();
}
