//! Process workers beside what processes use without shared memory (issue 10 goals):
//!
//! - `process_round_trip`: a message to a child process and its echo back — through a
//!   `ProcessWorker` (two byte rings in a memfd) and through a `UnixStream` between the *same*
//!   two processes (the child serves both at once: its entry echoes the rings, a thread of it
//!   echoes the socket). Goal: the worker ≥ 5x faster. Beside them, a bare `ByteRing` pair
//!   between the same processes: what the worker's framing, encoding and liveness checks cost.
//! - `process_spawn_exit`: `ProcessWorker` spawn → `Exit` of an entry that returns at once,
//!   beside `std::process::Command` spawn + wait of the same binary that exits at once. Goal:
//!   ≤ 1.3x.
//!
//! This bench's own `main` calls `process::init` first (the children are this binary).

#![cfg(not(loom))]
#![allow(missing_docs)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use sharedbuf::channel::ByteRing;
use sharedbuf::process::{self, Bytes, Entry, ProcessContext, ProcessEvent, ProcessWorker};
use sharedbuf::{Error, SharedBuffer};

/// Set in a `Command` child: exit at once.
const NOOP: &str = "SHAREDBUF_BENCH_NOOP";

const SIZES: [usize; 2] = [8, 4096];

/// Data bytes of each bare ring.
const RAW_CAPACITY: usize = 1 << 16;

/// The bare rings in the shared buffer: (to the child, to the parent).
fn raw_rings(buffer: &SharedBuffer) -> (ByteRing, ByteRing) {
    let bytes = ByteRing::bytes_for(RAW_CAPACITY).unwrap();
    (
        ByteRing::at(buffer, 0, RAW_CAPACITY).unwrap(),
        ByteRing::at(buffer, bytes, RAW_CAPACITY).unwrap(),
    )
}

/// Echoes the worker's rings; one thread echoes the socket at `args[1]` (messages of
/// `args[2]` bytes), another the bare byte rings in the shared buffer.
fn echo(ctx: ProcessContext<Bytes, Bytes>) -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let size: usize = args[2].parse().unwrap();
    let (to_child, to_parent) = raw_rings(&ctx.shared_buffers()[0]);
    let (mut rx, mut tx) = (to_child.receiver()?, to_parent.sender()?);
    std::thread::spawn(move || {
        while let Ok(message) = rx.recv(None) {
            if tx.send(&message, None).is_err() {
                break;
            }
        }
    });
    let mut stream = UnixStream::connect(&args[1]).unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0; size];
        while stream.read_exact(&mut buf).is_ok() {
            if stream.write_all(&buf).is_err() {
                break;
            }
        }
    });
    loop {
        match ctx.recv() {
            Ok(message) => ctx.post_message(&message)?,
            Err(Error::Closed) => return Ok(()),
            Err(other) => return Err(other),
        }
    }
}
static ECHO: Entry<Bytes, Bytes> = Entry::new("echo", echo);

/// Echoes typed values.
fn echo_typed(ctx: ProcessContext<(u64, String), (u64, String)>) -> Result<(), Error> {
    loop {
        match ctx.recv() {
            Ok(message) => ctx.post_message(&message)?,
            Err(Error::Closed) => return Ok(()),
            Err(other) => return Err(other),
        }
    }
}
static ECHO_TYPED: Entry<(u64, String), (u64, String)> = Entry::new("echo_typed", echo_typed);

fn noop(_: ProcessContext<(), ()>) {}
static NOOP_ENTRY: Entry<(), (), ()> = Entry::new("noop", noop);

fn reply<T: process::Payload + std::fmt::Debug>(
    worker: &ProcessWorker<impl process::Payload, T>,
) -> T {
    match worker.recv_event().unwrap() {
        ProcessEvent::Message(message) => message,
        other => panic!("{other:?}"),
    }
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("process_round_trip");
    for size in SIZES {
        let path = std::env::temp_dir().join(format!(
            "sharedbuf-bench-{}-{size}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let raw =
            SharedBuffer::memfd("raw", 2 * ByteRing::bytes_for(RAW_CAPACITY).unwrap()).unwrap();
        let (to_child, to_parent) = raw_rings(&raw);
        let (mut raw_tx, mut raw_rx) = (to_child.sender().unwrap(), to_parent.receiver().unwrap());
        let worker = ProcessWorker::builder()
            .share(&raw)
            .args([path.to_str().unwrap(), &size.to_string()])
            .spawn(&ECHO)
            .unwrap();
        let (mut stream, _) = listener.accept().unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(worker.recv_event().unwrap(), ProcessEvent::Online);
        let payload = Bytes(vec![0x5a; size]);

        group.bench_function(BenchmarkId::new("ProcessWorker", size), |b| {
            b.iter(|| {
                worker.post_message(&payload).unwrap();
                assert_eq!(reply(&worker).len(), size);
            })
        });
        group.bench_function(
            BenchmarkId::new("bare ByteRing, same processes", size),
            |b| {
                b.iter(|| {
                    raw_tx.send(&payload, None).unwrap();
                    assert_eq!(raw_rx.recv(None).unwrap().len(), size);
                })
            },
        );
        drop(raw_tx);
        let mut buf = vec![0; size];
        group.bench_function(BenchmarkId::new("UnixStream, same processes", size), |b| {
            b.iter(|| {
                stream.write_all(&payload).unwrap();
                stream.read_exact(&mut buf).unwrap();
            })
        });
        drop(stream);
        worker.disconnect();
        assert!(worker.join().unwrap().success());
    }

    let worker = ProcessWorker::spawn(&ECHO_TYPED).unwrap();
    assert_eq!(worker.recv_event().unwrap(), ProcessEvent::Online);
    let value = (42u64, "a typed message".to_string());
    group.bench_function("ProcessWorker, typed (u64, String)", |b| {
        b.iter(|| {
            worker.post_message(&value).unwrap();
            assert_eq!(reply(&worker).0, 42);
        })
    });
    worker.disconnect();
    assert!(worker.join().unwrap().success());
    group.finish();
}

fn spawn_exit(c: &mut Criterion) {
    let mut group = c.benchmark_group("process_spawn_exit");
    group.sample_size(30);
    group.bench_function("ProcessWorker spawn -> Exit", |b| {
        b.iter(|| {
            let worker = ProcessWorker::spawn(&NOOP_ENTRY).unwrap();
            assert!(worker.join().unwrap().success());
        })
    });
    let exe = std::env::current_exe().unwrap();
    group.bench_function("Command spawn + wait", |b| {
        b.iter(|| {
            let status = Command::new(&exe)
                .env(NOOP, "1")
                .stdin(Stdio::null())
                .spawn()
                .unwrap()
                .wait()
                .unwrap();
            assert!(status.success());
        })
    });
    // What the worker's spawn pays for its `pre_exec` hook alone: std then forks instead of
    // using posix_spawn (a vfork-like clone).
    group.bench_function("Command spawn + wait, with a pre_exec hook", |b| {
        b.iter(|| {
            let mut command = Command::new(&exe);
            command.env(NOOP, "1").stdin(Stdio::null());
            // SAFETY: the hook does nothing.
            unsafe { command.pre_exec(|| Ok(())) };
            let status = command.spawn().unwrap().wait().unwrap();
            assert!(status.success());
        })
    });
    group.finish();
}

fn main() {
    process::init(&[&ECHO, &ECHO_TYPED, &NOOP_ENTRY]);
    if std::env::var_os(NOOP).is_some() {
        return;
    }
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    round_trip(&mut criterion);
    spawn_exit(&mut criterion);
    criterion.final_summary();
}
