//! Ping-pong round trip between two threads: `atomics::wait`/`notify` on an `Int32Array` vs
//! the usual ways two threads hand a turn back and forth (issue 3 goals: ≤ 1.0x crossbeam's
//! `bounded(1)` round trip, ≥ 20x faster than a raw futex round trip).
//!
//! Every contender plays the same game: a turn word, 0 = the bench thread's turn, 1 = the
//! partner's, 2 = quit. One round trip hands the turn to the partner and waits for it to come
//! back. The partner is a long-lived thread per contender (spawned before and joined after the
//! measurement, so thread spawn is never measured); `iter_custom` times only the rounds.
//!
//! A last contender, `pure spin (floor)`, uses no wait/notify at all: each side busy-waits on
//! the other's word, which is what two cache-line transfers cost here, the floor of any handoff.
//!
//! Two groups: `ping_pong_round_trip` on an otherwise idle process, and
//! `ping_pong_round_trip_loaded`, where the bench first starts one busy thread per CPU
//! (spinning until the group ends, at the lowest `nice`; the measured threads keep theirs), so
//! the two players are oversubscribed: there the goal is never slower than the raw futex.

#![cfg(not(loom))]
// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU32, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
    Ordering::SeqCst,
};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, JoinHandle, Thread};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use sharedbuf::{atomics, Int32Array, SharedBuffer};

const BENCH: i32 = 0;
const PARTNER: i32 = 1;
const QUIT: i32 = 2;

/// One contender: how the partner serves, how the bench thread does a round, how to stop.
trait PingPong: Send + Sync + 'static {
    /// Runs on the partner thread until told to quit.
    fn serve(&self);
    /// One round trip, on the bench thread.
    fn round_trip(&self);
    /// Tells the partner to return from `serve`.
    fn quit(&self);
}

fn bench_contender<P: PingPong>(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    contender: P,
) {
    let contender = Arc::new(contender);
    let partner = {
        let contender = Arc::clone(&contender);
        thread::spawn(move || contender.serve())
    };
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                contender.round_trip();
            }
            start.elapsed()
        })
    });
    contender.quit();
    partner.join().unwrap();
}

/// The crate: the turn lives in an `Int32Array`; each side waits on "still the other's turn".
struct Sharedbuf(Int32Array);

impl PingPong for Sharedbuf {
    fn serve(&self) {
        loop {
            let turn = atomics::load(&self.0, 0).unwrap();
            match turn {
                QUIT => return,
                PARTNER => {
                    atomics::store(&self.0, 0, BENCH).unwrap();
                    atomics::notify(&self.0, 0, Some(1)).unwrap();
                }
                _ => {
                    atomics::wait(&self.0, 0, turn, None).unwrap();
                }
            }
        }
    }
    fn round_trip(&self) {
        atomics::store(&self.0, 0, PARTNER).unwrap();
        atomics::notify(&self.0, 0, Some(1)).unwrap();
        while atomics::load(&self.0, 0).unwrap() != BENCH {
            atomics::wait(&self.0, 0, PARTNER, None).unwrap();
        }
    }
    fn quit(&self) {
        atomics::store(&self.0, 0, QUIT).unwrap();
        atomics::notify(&self.0, 0, None).unwrap();
    }
}

/// The floor: no wait/notify at all. Each side busy-waits on the other's word, so a round trip
/// costs two cache-line transfers and nothing else (what this machine's cores charge for a
/// handoff). The bench thread numbers its pings from 1; the partner echoes each one;
/// `u32::MAX` quits.
#[derive(Default)]
struct PureSpin {
    ping: OwnLine,
    pong: OwnLine,
}

/// An `AtomicU32` alone in its cache line (and the adjacent-line prefetch pair).
#[derive(Default)]
#[repr(align(128))]
struct OwnLine(AtomicU32);

impl PingPong for PureSpin {
    fn serve(&self) {
        let mut answered = 0;
        loop {
            match self.ping.0.load(Acquire) {
                u32::MAX => return,
                ping if ping != answered => {
                    self.pong.0.store(ping, Release);
                    answered = ping;
                }
                _ => std::hint::spin_loop(),
            }
        }
    }
    fn round_trip(&self) {
        // Only this thread writes `ping`: reading it back is a hit in its own cache.
        let ping = match self.ping.0.load(Relaxed) {
            last if last >= u32::MAX - 1 => 1,
            last => last + 1,
        };
        self.ping.0.store(ping, Release);
        while self.pong.0.load(Acquire) != ping {
            std::hint::spin_loop();
        }
    }
    fn quit(&self) {
        self.ping.0.store(u32::MAX, Release);
    }
}

/// A raw Linux futex on an `AtomicI32`: every handoff is a FUTEX_WAKE, every wait a FUTEX_WAIT.
struct RawFutex(AtomicI32);

impl RawFutex {
    fn wait(&self, expected: i32) {
        // SAFETY: the address is a live, aligned AtomicI32; FUTEX_WAIT_PRIVATE only reads it
        // and sleeps while it equals `expected` (spurious returns are re-checked by callers).
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.0.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                expected,
                std::ptr::null::<libc::timespec>(),
            );
        }
    }
    fn wake(&self) {
        // SAFETY: as above; FUTEX_WAKE_PRIVATE wakes at most one waiter on the address.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                self.0.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                1,
            );
        }
    }
}

impl PingPong for RawFutex {
    fn serve(&self) {
        loop {
            match self.0.load(SeqCst) {
                QUIT => return,
                PARTNER => {
                    self.0.store(BENCH, SeqCst);
                    self.wake();
                }
                turn => self.wait(turn),
            }
        }
    }
    fn round_trip(&self) {
        self.0.store(PARTNER, SeqCst);
        self.wake();
        while self.0.load(SeqCst) != BENCH {
            self.wait(PARTNER);
        }
    }
    fn quit(&self) {
        self.0.store(QUIT, SeqCst);
        self.wake();
    }
}

/// `std::thread::park`/`unpark` with the turn in an atomic.
struct ParkUnpark {
    turn: AtomicI32,
    bench: OnceLock<Thread>,
    partner: OnceLock<Thread>,
}

impl PingPong for ParkUnpark {
    fn serve(&self) {
        self.partner.set(thread::current()).unwrap();
        loop {
            match self.turn.load(SeqCst) {
                QUIT => return,
                PARTNER => {
                    self.turn.store(BENCH, SeqCst);
                    self.bench.get().unwrap().unpark();
                }
                _ => thread::park(),
            }
        }
    }
    fn round_trip(&self) {
        // Registered before the first handoff, so the partner can always unpark us.
        let _ = self.bench.set(thread::current());
        self.turn.store(PARTNER, SeqCst);
        // The partner registers before it first reads the turn; if it has not yet, it will
        // see PARTNER when it does and never park.
        if let Some(partner) = self.partner.get() {
            partner.unpark();
        }
        while self.turn.load(SeqCst) != BENCH {
            thread::park();
        }
    }
    fn quit(&self) {
        self.turn.store(QUIT, SeqCst);
        if let Some(partner) = self.partner.get() {
            partner.unpark();
        }
    }
}

/// `std::sync::Mutex` + `Condvar`.
#[derive(Default)]
struct StdCondvar {
    turn: Mutex<i32>,
    changed: Condvar,
}

impl PingPong for StdCondvar {
    fn serve(&self) {
        let mut turn = self.turn.lock().unwrap();
        loop {
            match *turn {
                QUIT => return,
                PARTNER => {
                    *turn = BENCH;
                    self.changed.notify_one();
                }
                _ => turn = self.changed.wait(turn).unwrap(),
            }
        }
    }
    fn round_trip(&self) {
        let mut turn = self.turn.lock().unwrap();
        *turn = PARTNER;
        self.changed.notify_one();
        while *turn != BENCH {
            turn = self.changed.wait(turn).unwrap();
        }
    }
    fn quit(&self) {
        *self.turn.lock().unwrap() = QUIT;
        self.changed.notify_one();
    }
}

/// `parking_lot::Mutex` + `Condvar`.
#[derive(Default)]
struct ParkingLotCondvar {
    turn: parking_lot::Mutex<i32>,
    changed: parking_lot::Condvar,
}

impl PingPong for ParkingLotCondvar {
    fn serve(&self) {
        let mut turn = self.turn.lock();
        loop {
            match *turn {
                QUIT => return,
                PARTNER => {
                    *turn = BENCH;
                    self.changed.notify_one();
                }
                _ => self.changed.wait(&mut turn),
            }
        }
    }
    fn round_trip(&self) {
        let mut turn = self.turn.lock();
        *turn = PARTNER;
        self.changed.notify_one();
        while *turn != BENCH {
            self.changed.wait(&mut turn);
        }
    }
    fn quit(&self) {
        *self.turn.lock() = QUIT;
        self.changed.notify_one();
    }
}

/// crossbeam-channel: a `bounded(1)` channel each way; a round trip is a send and a receive.
/// The ping carries `true`, and `false` means quit.
struct Crossbeam {
    ping: crossbeam_channel::Sender<bool>,
    ping_rx: crossbeam_channel::Receiver<bool>,
    pong: crossbeam_channel::Sender<()>,
    pong_rx: crossbeam_channel::Receiver<()>,
}

impl Crossbeam {
    fn new() -> Crossbeam {
        let (ping, ping_rx) = crossbeam_channel::bounded(1);
        let (pong, pong_rx) = crossbeam_channel::bounded(1);
        Crossbeam {
            ping,
            ping_rx,
            pong,
            pong_rx,
        }
    }
}

impl PingPong for Crossbeam {
    fn serve(&self) {
        while self.ping_rx.recv() == Ok(true) {
            self.pong.send(()).unwrap();
        }
    }
    fn round_trip(&self) {
        self.ping.send(true).unwrap();
        self.pong_rx.recv().unwrap();
    }
    fn quit(&self) {
        self.ping.send(false).unwrap();
    }
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("ping_pong_round_trip");
    let view = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
    bench_contender(&mut group, "sharedbuf::wait/notify", Sharedbuf(view));
    bench_contender(&mut group, "raw futex", RawFutex(AtomicI32::new(BENCH)));
    bench_contender(
        &mut group,
        "thread::park/unpark",
        ParkUnpark {
            turn: AtomicI32::new(BENCH),
            bench: OnceLock::new(),
            partner: OnceLock::new(),
        },
    );
    bench_contender(&mut group, "std Mutex+Condvar", StdCondvar::default());
    bench_contender(
        &mut group,
        "parking_lot Mutex+Condvar",
        ParkingLotCondvar::default(),
    );
    bench_contender(&mut group, "crossbeam bounded(1)", Crossbeam::new());
    bench_contender(&mut group, "pure spin (floor)", PureSpin::default());
    group.finish();
}

/// One busy thread per CPU, each spinning until dropped: oversubscribes the machine so the
/// ping-pong players compete for cores with threads that never sleep.
struct BusyThreads {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl BusyThreads {
    fn start() -> BusyThreads {
        let stop = Arc::new(AtomicBool::new(false));
        let cpus = thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cpus)
            .map(|_| {
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    lowest_effort();
                    while !stop.load(Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        BusyThreads { stop, threads }
    }
}

impl Drop for BusyThreads {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        for thread in self.threads.drain(..) {
            thread.join().unwrap();
        }
    }
}

/// Gives the calling thread (only: Linux's `setpriority` on a thread id) the normal policy and
/// the lowest `nice`, so the busy threads load the machine without starving the rest of it.
/// The policy matters when the bench runs under `chrt -r`: a spawned thread inherits the
/// real-time policy, which ignores `nice`, and two real-time spinners would take whole 100 ms
/// round-robin slices from the players.
fn lowest_effort() {
    // SAFETY: gettid has no preconditions; sched_setscheduler (pid 0: this thread) and
    // setpriority on our own thread id only lower this thread's priority, with a valid
    // `sched_param`; their failure (the thread keeps its policy or nice) is harmless here.
    unsafe {
        let normal = libc::sched_param { sched_priority: 0 };
        libc::sched_setscheduler(0, libc::SCHED_OTHER, &normal);
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19);
    }
}

/// The same ping-pong with every CPU kept busy by [`BusyThreads`]: the crate beside the raw
/// futex (which sleeps at once, what an oversubscribed machine favours) and crossbeam.
fn loaded_round_trip(c: &mut Criterion) {
    let busy = BusyThreads::start();
    let mut group = c.benchmark_group("ping_pong_round_trip_loaded");
    let view = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
    bench_contender(&mut group, "sharedbuf::wait/notify", Sharedbuf(view));
    bench_contender(&mut group, "raw futex", RawFutex(AtomicI32::new(BENCH)));
    bench_contender(&mut group, "crossbeam bounded(1)", Crossbeam::new());
    group.finish();
    drop(busy);
}

criterion_group!(benches, round_trip, loaded_round_trip);
criterion_main!(benches);
