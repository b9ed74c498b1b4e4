//! Cross-process wait/notify ping-pong beside the same ping-pong between threads (issue 10
//! goal: the cross-process round trip ≤ 1.5x the one between threads).
//!
//! Every contender plays the game of `benches/wait_notify.rs`: a turn word in an
//! `Int32Array`, 0 = the bench's turn, 1 = the partner's, 2 = quit; one round trip hands the
//! turn to the partner and waits for it to come back, with `atomics::wait` / `notify`.
//!
//! - `threads, private buffer`: the partner is a thread, the buffer a `SharedBuffer::new` (the
//!   in-process waiter table): the peer the goal is measured against;
//! - `threads, memfd buffer`: the same two threads on a process-shared buffer (the waiter slots
//!   in its header and their futexes, within one process);
//! - `processes, memfd buffer`: the partner is this bench binary re-executed as a child process
//!   (`SHAREDBUF_BENCH_CHILD` set), which maps the buffer from an inherited descriptor;
//! - `processes, raw shared futex`: the same game with a bare futex on the turn word (no
//!   spinning, no slots): the floor of a cross-process handoff through the kernel.
//!
//! The partner is started before and stopped after the measurement; `iter_custom` times only
//! the rounds.

#![cfg(not(loom))]
#![allow(missing_docs)]

use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use criterion::{BenchmarkGroup, Criterion};
use sharedbuf::{atomics, Int32Array, SharedBuffer};

const BENCH: i32 = 0;
const PARTNER: i32 = 1;
const QUIT: i32 = 2;

/// Set in the child: which partner to play, and the inherited descriptor of the buffer.
const CHILD: &str = "SHAREDBUF_BENCH_CHILD";
const CHILD_FD: &str = "SHAREDBUF_BENCH_FD";

/// The partner's side with `atomics::wait` / `notify`, until told to quit.
fn serve(view: &Int32Array) {
    loop {
        let turn = atomics::load(view, 0).unwrap();
        match turn {
            QUIT => return,
            PARTNER => {
                atomics::store(view, 0, BENCH).unwrap();
                atomics::notify(view, 0, Some(1)).unwrap();
            }
            _ => {
                atomics::wait(view, 0, turn, None).unwrap();
            }
        }
    }
}

/// One round trip on the bench's side.
fn round_trip(view: &Int32Array) {
    atomics::store(view, 0, PARTNER).unwrap();
    atomics::notify(view, 0, Some(1)).unwrap();
    while atomics::load(view, 0).unwrap() != BENCH {
        atomics::wait(view, 0, PARTNER, None).unwrap();
    }
}

fn quit(view: &Int32Array) {
    atomics::store(view, 0, QUIT).unwrap();
    atomics::notify(view, 0, None).unwrap();
}

fn spawn_child(buffer: &SharedBuffer, role: &str) -> Child {
    let fd = buffer.inheritable_fd().unwrap().unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, role)
        .env(CHILD_FD, fd.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .spawn()
        .expect("re-execute the bench as the partner process");
    drop(fd);
    child
}

/// The child's `main`: map the inherited buffer and play the partner.
fn child_main(role: &str) {
    let fd = std::env::var(CHILD_FD).unwrap();
    let buffer = SharedBuffer::open(format!("/proc/self/fd/{fd}")).unwrap();
    let view = Int32Array::new(&buffer).unwrap();
    match role {
        "pong" => serve(&view),
        "raw" => RawTurn::over(&buffer).serve(),
        other => panic!("unknown role {other}"),
    }
}

/// The raw-futex contender's turn word: element 0 of the buffer, reached through a mapping of
/// the buffer's file made here (the crate never exposes a raw pointer to buffer memory).
struct RawTurn {
    map: memmap::Map,
}

mod memmap {
    //! A bare shared mapping of a memfd, for the raw-futex contender only.
    pub struct Map {
        pub base: *mut u8,
        pub len: usize,
    }

    impl Drop for Map {
        fn drop(&mut self) {
            // SAFETY: `base`/`len` are exactly the mapping made in `RawTurn::over`.
            unsafe { libc::munmap(self.base.cast(), self.len) };
        }
    }
}

/// Bytes before a process-shared buffer's data (docs: `src/region/header.rs`).
const HEADER_LEN: usize = 16384;

impl RawTurn {
    fn over(buffer: &SharedBuffer) -> RawTurn {
        let len = HEADER_LEN + buffer.max_byte_length();
        let fd = buffer.as_fd().unwrap().as_raw_fd();
        // SAFETY: a fresh shared mapping of the whole file, chosen by the system.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        RawTurn {
            map: memmap::Map {
                base: base.cast(),
                len,
            },
        }
    }

    fn turn(&self) -> &std::sync::atomic::AtomicI32 {
        // SAFETY: byte HEADER_LEN of the mapping is the buffer's element 0: aligned, live while
        // `self` is, and only accessed atomically (by this contender's two sides).
        unsafe { std::sync::atomic::AtomicI32::from_ptr(self.map.base.add(HEADER_LEN).cast()) }
    }

    fn futex(&self, op: i32, value: i32) {
        // SAFETY: the live, aligned turn word; FUTEX_WAIT only reads it.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.turn().as_ptr(),
                op,
                value,
                std::ptr::null::<libc::timespec>(),
            );
        }
    }

    fn serve(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        loop {
            match self.turn().load(SeqCst) {
                QUIT => return,
                PARTNER => {
                    self.turn().store(BENCH, SeqCst);
                    self.futex(libc::FUTEX_WAKE, 1);
                }
                turn => self.futex(libc::FUTEX_WAIT, turn),
            }
        }
    }

    fn round_trip(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.turn().store(PARTNER, SeqCst);
        self.futex(libc::FUTEX_WAKE, 1);
        while self.turn().load(SeqCst) != BENCH {
            self.futex(libc::FUTEX_WAIT, PARTNER);
        }
    }

    fn quit(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.turn().store(QUIT, SeqCst);
        self.futex(libc::FUTEX_WAKE, 1);
    }
}

fn measure(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    round: impl Fn(),
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                round();
            }
            start.elapsed()
        })
    });
}

fn with_thread_partner(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    buffer: SharedBuffer,
) {
    let view = Int32Array::new(&buffer).unwrap();
    let partner: JoinHandle<()> = {
        let view = view.clone();
        thread::spawn(move || serve(&view))
    };
    measure(group, name, || round_trip(&view));
    quit(&view);
    partner.join().unwrap();
}

fn ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("cross_process_round_trip");
    with_thread_partner(
        &mut group,
        "threads, private buffer",
        SharedBuffer::new(64).unwrap(),
    );
    with_thread_partner(
        &mut group,
        "threads, memfd buffer",
        SharedBuffer::memfd("bench-threads", 64).unwrap(),
    );

    let buffer = SharedBuffer::memfd("bench-processes", 64).unwrap();
    let view = Int32Array::new(&buffer).unwrap();
    let mut child = spawn_child(&buffer, "pong");
    measure(&mut group, "processes, memfd buffer", || round_trip(&view));
    quit(&view);
    assert!(
        child.wait().unwrap().success(),
        "the partner process failed"
    );

    let buffer = SharedBuffer::memfd("bench-raw", 64).unwrap();
    let raw = RawTurn::over(&buffer);
    let mut child = spawn_child(&buffer, "raw");
    measure(&mut group, "processes, raw shared futex", || {
        raw.round_trip()
    });
    raw.quit();
    assert!(
        child.wait().unwrap().success(),
        "the raw partner process failed"
    );
    group.finish();
}

fn main() {
    if let Ok(role) = std::env::var(CHILD) {
        child_main(&role);
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    ping_pong(&mut criterion);
    criterion.final_summary();
}
