//! Nothing left behind after many lifetimes: every resource-owning type, built and dropped many
//! times, gives back what the process holds — open descriptors (`/proc/self/fd`), threads
//! (`/proc/self/task`), mappings (`/proc/self/maps`), child processes — and leaves nothing in
//! the crate's tables that a test can see: a `notify` counts every waiter still queued at an
//! address (docs/semantics.md A8), and a `Waker` still held anywhere shows in its reference
//! count. Memory (RSS) only as "growth does not scale with the rounds", never as a time.
//!
//! What persists by design, started by a warm-up round before each baseline: the `wait_async`
//! timer thread ("sharedbuf-timer", docs/semantics.md A12), the waiter table's room, and the
//! pool's slabs of task cells (docs/semantics.md P7). The C library's own caches (freed thread
//! stacks, malloc arenas) are turned off for this binary ([`TUNABLES`]). Threads that end on
//! their own after their handle is gone (a `Worker` dropped unjoined, W3; a `wait_async`
//! doorbell thread, A12) are waited for ([`settled`]): the counts must then be exactly the
//! baseline's, with a watchdog as the hang detector.
//!
//! `harness = false`: `main` calls `process::init` first (process workers are among the
//! cases), and no other test's threads or descriptors disturb the counts. Run one case with
//! `cargo test --test soak -- <part of its name>`.
#![cfg(target_os = "linux")]

mod common;
mod process_support;
#[cfg(feature = "redis")]
mod queue_support;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use common::{current_tid, wait_until_asleep};
use process_support::{block_on, ScratchPath};
use sharedbuf::atomics::{self, Interrupter, WaitAsync};
use sharedbuf::channel::ByteRing;
use sharedbuf::pool::WorkerPool;
use sharedbuf::process::{self, Bytes, Entry, ProcessContext, ProcessWorker};
use sharedbuf::sync::Mutex;
use sharedbuf::worker::{Worker, WorkerEvent};
use sharedbuf::{Error, Int32Array, MessageChannel, MessagePort, SharedBuffer, WaitResult};

/// A hang detector, not a speed measurement.
const WATCHDOG: Duration = Duration::from_secs(30);
/// Long enough never to expire during a case.
const FOREVER: Duration = Duration::from_secs(3600);

// ---- what the process holds ------------------------------------------------------------------

/// What the process holds, each item named so a difference can be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holdings {
    descriptors: BTreeMap<String, usize>,
    threads: BTreeMap<String, usize>,
    mappings: BTreeMap<String, usize>,
    children: usize,
}

fn tally(items: impl Iterator<Item = String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_insert(0) += 1;
    }
    counts
}

fn holdings() -> Holdings {
    let descriptors = tally(
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
            .map(|target| target.to_string_lossy().into_owned()),
    );
    let mut children = 0;
    let threads = tally(
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| {
                let task = task.ok()?.path();
                children += std::fs::read_to_string(task.join("children"))
                    .map(|c| c.split_whitespace().count())
                    .unwrap_or(0);
                std::fs::read_to_string(task.join("comm")).ok()
            })
            .map(|name| name.trim().to_string()),
    );
    // A mapping by its permissions and what backs it (addresses and sizes change harmlessly).
    let mappings = tally(
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let path = fields.get(5..).map(|p| p.join(" ")).unwrap_or_default();
                format!("{} {path}", fields[1])
            }),
    );
    Holdings {
        descriptors,
        threads,
        mappings,
        children,
    }
}

fn total(counts: &BTreeMap<String, usize>) -> usize {
    counts.values().sum()
}

/// The items `now` holds more (+) or fewer (-) of than `before`.
fn difference(before: &BTreeMap<String, usize>, now: &BTreeMap<String, usize>) -> Vec<String> {
    let mut keys: Vec<&String> = before.keys().chain(now.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let (b, n) = (before.get(key).copied(), now.get(key).copied());
            let (b, n) = (b.unwrap_or(0) as isize, n.unwrap_or(0) as isize);
            (b != n).then(|| format!("{:+} {key}", n - b))
        })
        .collect()
}

impl Holdings {
    /// Whether the counts are those of `baseline` (descriptors, threads, mappings, children).
    fn same_counts(&self, baseline: &Holdings) -> bool {
        total(&self.descriptors) == total(&baseline.descriptors)
            && total(&self.threads) == total(&baseline.threads)
            && total(&self.mappings) == total(&baseline.mappings)
            && self.children == baseline.children
    }

    fn report(&self, baseline: &Holdings) -> String {
        format!(
            "descriptors {} -> {} {:?}\nthreads {} -> {} {:?}\nmappings {} -> {} {:?}\nchildren {} -> {}",
            total(&baseline.descriptors),
            total(&self.descriptors),
            difference(&baseline.descriptors, &self.descriptors),
            total(&baseline.threads),
            total(&self.threads),
            difference(&baseline.threads, &self.threads),
            total(&baseline.mappings),
            total(&self.mappings),
            difference(&baseline.mappings, &self.mappings),
            baseline.children,
            self.children,
        )
    }
}

/// Asserts the process holds exactly what it held at `baseline` once the threads that end
/// on their own have ended ([`settled`]).
fn assert_back(baseline: &Holdings, what: &str) {
    let now = settled();
    assert!(
        now.same_counts(baseline),
        "{what}: left behind\n{}",
        now.report(baseline)
    );
}

/// The threads of this binary itself: `main` and its watchdog.
const OWN_THREADS: usize = 2;

/// What the process holds once every thread but [`OWN_THREADS`] and the timer thread
/// ("sharedbuf-timer", which persists once started) has ended: the baseline a case compares
/// with, taken after its warm-up round. Threads that end on their own after their handle is
/// gone (a worker dropped unjoined, a doorbell thread) are waited for, and so is the kernel,
/// which lists a thread for a moment after `pthread_join` returned; the watchdog is a hang
/// detector.
fn settled() -> Holdings {
    wait_for_own_threads();
    // The C library frees the stack of a thread that ended detached only at its next thread
    // event (with its stack cache off, [`TUNABLES`]): a joined thread is one.
    std::thread::spawn(|| ()).join().unwrap();
    wait_for_own_threads();
    // Threads were read before descriptors and mappings, and none is left to change them.
    let now = holdings();
    assert!(only_own_threads(&now), "a thread started while settling");
    now
}

/// Runs `round` once (the warm-up), takes the baseline, runs it `rounds` times more, and
/// checks that what the process holds is the baseline's again.
fn soak(what: &str, rounds: usize, mut round: impl FnMut()) {
    round();
    let baseline = settled();
    for _ in 0..rounds {
        round();
    }
    assert_back(&baseline, what);
}

fn wait_for_own_threads() {
    let start = Instant::now();
    while !only_own_threads(&holdings()) {
        assert!(
            start.elapsed() < WATCHDOG,
            "threads never ended: {:?}",
            holdings().threads
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn only_own_threads(holdings: &Holdings) -> bool {
    let timer = holdings
        .threads
        .get("sharedbuf-timer")
        .copied()
        .unwrap_or(0);
    total(&holdings.threads) - timer == OWN_THREADS
}

/// Resident memory, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

/// Runs `round` `warm_up` times, then `10 * warm_up` times more, and asserts the second part
/// added less than `bound` bytes of resident memory: growth must not scale with the rounds.
fn assert_rss_flat(what: &str, warm_up: usize, bound: usize, mut round: impl FnMut()) {
    for _ in 0..warm_up {
        round();
    }
    let before = rss();
    for _ in 0..10 * warm_up {
        round();
    }
    let grown = rss().saturating_sub(before);
    assert!(
        grown < bound,
        "{what}: {} more rounds grew RSS by {grown} bytes (bound {bound})",
        10 * warm_up
    );
}

/// Asserts no waiter is queued at any `i32` element of `view`: `notify` would count it.
fn assert_no_waiters(view: &Int32Array, what: &str) {
    for index in 0..view.len() {
        assert_eq!(
            atomics::notify(view, index, None).unwrap(),
            0,
            "{what}: a waiter is left queued at element {index}"
        );
    }
}

/// A waker that counts its wakes; its `Arc`'s count shows whether anything still holds it.
#[derive(Default)]
struct Counting(AtomicUsize);

impl Wake for Counting {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Polls `future` once with `waker`.
fn poll_once<F: Future + Unpin>(future: &mut F, waker: &Arc<Counting>) -> Poll<F::Output> {
    let waker = Waker::from(Arc::clone(waker));
    Pin::new(future).poll(&mut Context::from_waker(&waker))
}

fn assert_waker_released(waker: &Arc<Counting>, what: &str) {
    assert_eq!(
        Arc::strong_count(waker),
        1,
        "{what}: something still holds the task's waker"
    );
}

fn memfd(label: &str, bytes: usize) -> SharedBuffer {
    SharedBuffer::memfd(label, bytes).unwrap()
}

// ---- entries (process workers) ---------------------------------------------------------------

/// Echoes raw bytes until the parent disconnects.
fn echo(ctx: ProcessContext<Bytes, Bytes>) -> Result<(), Error> {
    loop {
        match ctx.recv() {
            Ok(bytes) => ctx.post_message(&bytes)?,
            Err(Error::Closed) => return Ok(()),
            Err(other) => return Err(other),
        }
    }
}
static ECHO: Entry<Bytes, Bytes> = Entry::new("soak_echo", echo);

static ENTRIES: &[&dyn process::EntryPoint] = &[&ECHO];

// ---- cases -----------------------------------------------------------------------------------

/// docs/semantics.md P7 (close, destroy, drop): a pool's threads and its tasks' captures are
/// gone when `close` or `destroy` returns, or the pool is dropped.
fn pool_build_run_close_destroy_drop() {
    fn round(ending: usize) {
        let held = memfd("soak-pool", 64);
        let pool = WorkerPool::builder()
            .min_threads(2)
            .max_threads(4)
            .build()
            .unwrap();
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let held = held.clone();
                pool.run(move |_| held.byte_length() + i).unwrap()
            })
            .collect();
        for (i, handle) in handles.into_iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(handle.join().unwrap(), 64 + i);
            } // the others are dropped unjoined
        }
        // Tasks still queued when the pool ends hold a buffer each.
        let gate = Arc::new(std::sync::Barrier::new(5));
        for _ in 0..4 {
            let gate = Arc::clone(&gate);
            drop(pool.run(move |_| {
                gate.wait();
            }));
        }
        for _ in 0..8 {
            let held = held.clone();
            drop(pool.run(move |_| held.byte_length()));
        }
        gate.wait();
        match ending {
            0 => pool.close(Some(WATCHDOG)).unwrap(),
            1 => pool.destroy(),
            _ => {}
        }
        drop(pool);
    }
    for ending in 0..3 {
        soak(&format!("WorkerPool ending {ending}"), 50, || round(ending));
    }
}

/// docs/semantics.md W3: a worker joined, dropped unjoined while blocked, or terminated while
/// blocked in `atomics::wait` leaves no thread and drops its data.
fn worker_join_drop_terminate() {
    fn round(ending: usize) {
        let data = memfd("soak-worker", 16);
        let worker: Worker<u8, ()> = Worker::builder()
            .worker_data(data)
            .spawn(|ctx| -> Result<(), Error> {
                let flag = Int32Array::new(ctx.worker_data())?;
                match ctx.recv()? {
                    0 => Ok(()),
                    _ => atomics::wait(&flag, 0, 0, None).map(drop),
                }
            })
            .unwrap();
        match ending {
            0 => {
                worker.post_message(0).unwrap();
                assert!(worker.join().unwrap().success());
            }
            1 => drop(worker),
            _ => {
                worker.post_message(1).unwrap();
                let _ = worker.terminate().unwrap();
            }
        }
    }
    for ending in 0..3 {
        let baseline = {
            round(ending);
            settled()
        };
        for _ in 0..100 {
            round(ending);
        }
        assert_back(&baseline, &format!("Worker ending {ending}"));
    }
}

/// docs/semantics.md W6: messages left in a channel, and ports posted through ports, are dropped
/// with the channel.
fn channel_left_messages_and_ports_through_ports() {
    fn round() {
        let (a, b) = MessageChannel::<SharedBuffer>::with_capacity(8).unwrap();
        for _ in 0..4 {
            a.post_message(memfd("soak-msg", 16)).unwrap();
            b.post_message(memfd("soak-msg", 16)).unwrap();
        }
        drop(a);
        drop(b);
        // A port sent through another channel, with messages in it.
        let (outer_a, outer_b) = MessageChannel::<MessagePort<SharedBuffer>>::new();
        let (inner_a, inner_b) = MessageChannel::<SharedBuffer>::new();
        inner_a.post_message(memfd("soak-inner", 16)).unwrap();
        outer_a.post_message(inner_b).unwrap();
        outer_a.post_message(inner_a).unwrap();
        drop(outer_a);
        drop(outer_b);
    }
    soak("MessageChannel", 100, round);
    assert_rss_flat("MessageChannel", 100, 4 << 20, || {
        let (a, b) = MessageChannel::<Vec<u8>>::with_capacity(64).unwrap();
        for _ in 0..32 {
            a.post_message(vec![0; 256]).unwrap();
        }
        drop((a, b));
    });
}

/// The `wait_async` lifecycles on one view: pending then dropped (with and without a timeout),
/// resolved by a notify, timed out, answered at once.
fn wait_async_lifecycles(view: &Int32Array, waker: &Arc<Counting>) {
    // Pending, dropped, without and with a timeout (its timer entry goes too).
    for timeout in [None, Some(FOREVER)] {
        let WaitAsync::Pending(mut future) = atomics::wait_async(view, 0, 0, timeout).unwrap()
        else {
            panic!("not pending")
        };
        assert!(poll_once(&mut future, waker).is_pending());
        drop(future);
        // Dropped without a poll.
        drop(atomics::wait_async(view, 0, 0, timeout).unwrap());
    }
    // Resolved by a notify.
    let WaitAsync::Pending(mut future) = atomics::wait_async(view, 0, 0, Some(FOREVER)).unwrap()
    else {
        panic!("not pending")
    };
    assert!(poll_once(&mut future, waker).is_pending());
    assert_eq!(atomics::notify(view, 0, Some(1)).unwrap(), 1);
    assert_eq!(block_on(future), WaitResult::Ok);
    // Timed out.
    let WaitAsync::Pending(mut future) =
        atomics::wait_async(view, 0, 0, Some(Duration::from_millis(1))).unwrap()
    else {
        panic!("not pending")
    };
    if poll_once(&mut future, waker).is_pending() {
        assert_eq!(block_on(future), WaitResult::TimedOut);
    }
    // Answered at once.
    assert!(matches!(
        atomics::wait_async(view, 0, 1, None).unwrap(),
        WaitAsync::Ready(WaitResult::NotEqual)
    ));
}

/// docs/semantics.md A12: a `wait_async` future of a private buffer, in every lifecycle, leaves
/// no waiter queued, no waker held, no timer entry (RSS), no thread but the timer's.
fn wait_async_private() {
    let waker = Arc::new(Counting::default());
    let view = Int32Array::new(&SharedBuffer::new(16).unwrap()).unwrap();
    wait_async_lifecycles(&view, &waker); // starts the timer thread
    let baseline = settled();
    for _ in 0..200 {
        let view = Int32Array::new(&SharedBuffer::new(16).unwrap()).unwrap();
        wait_async_lifecycles(&view, &waker);
        assert_no_waiters(&view, "wait_async (private)");
    }
    assert_waker_released(&waker, "wait_async (private)");
    assert_back(&baseline, "wait_async (private)");
    // Futures dropped before their timeout: their timer entries must go with them.
    assert_rss_flat("wait_async timer entries", 2_000, 4 << 20, || {
        drop(atomics::wait_async(&view, 0, 0, Some(FOREVER)).unwrap());
    });
    // Futures resolved by a notify long before their timeout.
    assert_rss_flat(
        "wait_async resolved before their timeout",
        2_000,
        4 << 20,
        || {
            let WaitAsync::Pending(mut future) =
                atomics::wait_async(&view, 0, 0, Some(FOREVER)).unwrap()
            else {
                panic!("not pending")
            };
            assert!(poll_once(&mut future, &waker).is_pending());
            assert_eq!(atomics::notify(&view, 0, None).unwrap(), 1);
            assert!(poll_once(&mut future, &waker).is_ready());
        },
    );
    assert_no_waiters(&view, "wait_async (private)");
}

/// docs/semantics.md A12, X2: the same on a memfd buffer: no slot taken, the doorbell thread
/// ends and lets go of the buffer (its descriptor and mapping).
fn wait_async_memfd() {
    let waker = Arc::new(Counting::default());
    {
        let view = Int32Array::new(&memfd("soak-wait", 16)).unwrap();
        wait_async_lifecycles(&view, &waker);
    }
    let baseline = settled();
    for _ in 0..100 {
        let view = Int32Array::new(&memfd("soak-wait", 16)).unwrap();
        wait_async_lifecycles(&view, &waker);
        assert_no_waiters(&view, "wait_async (memfd)");
    }
    assert_waker_released(&waker, "wait_async (memfd)");
    assert_back(&baseline, "wait_async (memfd)");
}

/// docs/semantics.md X2: more `wait_async` futures than a memfd buffer has waiter slots: the
/// ones refused leave nothing, and once all are dropped every slot can be taken again.
fn wait_async_memfd_slots_run_out() {
    let round = || {
        let view = Int32Array::new(&memfd("soak-slots", 16)).unwrap();
        let mut futures = Vec::new();
        let mut refused = 0;
        for _ in 0..2 * process_support::SLOT_COUNT {
            match atomics::wait_async(&view, 0, 0, None) {
                Ok(WaitAsync::Pending(future)) => futures.push(future),
                Ok(WaitAsync::Ready(result)) => panic!("answered at once: {result:?}"),
                Err(_) => refused += 1,
            }
        }
        assert!(refused > 0, "the slots never ran out");
        let taken = futures.len();
        drop(futures);
        // Every slot is free again: as many futures are taken as before.
        let again: Vec<_> = (0..taken)
            .map(|_| atomics::wait_async(&view, 0, 0, Some(FOREVER)).unwrap())
            .collect();
        assert_eq!(atomics::notify(&view, 0, None).unwrap(), taken);
        drop(again);
        assert_no_waiters(&view, "memfd slots");
    };
    soak("memfd slots", 5, round);
}

/// docs/semantics.md X1: buffers refused by `open` and `from_fd` (not a buffer, too short, a
/// pipe) leave no descriptor and no mapping.
fn refused_buffers() {
    use std::io::Write;
    let round = || {
        let path = ScratchPath::new("soak-garbage");
        std::fs::File::create(path.path())
            .unwrap()
            .write_all(&[0xa5; 20_000])
            .unwrap();
        assert!(SharedBuffer::open(path.path()).is_err());
        std::fs::write(path.path(), b"short").unwrap();
        assert!(SharedBuffer::open(path.path()).is_err());
        assert!(SharedBuffer::open("/dev/shm").is_err());
        let (socket, peer) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(SharedBuffer::from_fd(socket.into()).is_err());
        drop(peer);
        assert!(SharedBuffer::memfd("nul\0name", 16).is_err());
        assert!(SharedBuffer::memfd_growable("soak-refused", 32, 16).is_err());
        let growable = SharedBuffer::memfd_growable("soak-refused", 16, 4096).unwrap();
        assert!(growable.grow(1 << 20).is_err());
    };
    soak("refused buffers", 50, round);
}

/// docs/semantics.md A6 (and "Interrupting a blocked wait"): installing and dropping an
/// interrupter, and interrupting a blocked wait, leave nothing queued.
fn interrupter_install_drop() {
    fn round(view: &Int32Array) {
        for _ in 0..10 {
            drop(Interrupter::new().install());
        }
        let interrupter = Interrupter::new();
        let (view2, remote) = (view.clone(), interrupter.clone());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let waiting = std::thread::spawn(move || {
            let _guard = remote.install();
            ready_tx.send(()).unwrap();
            atomics::wait(&view2, 0, 0, None)
        });
        ready_rx.recv().unwrap();
        interrupter.interrupt();
        assert!(waiting.join().unwrap().is_err());
    }
    let view = Int32Array::new(&SharedBuffer::new(16).unwrap()).unwrap();
    round(&view);
    let baseline = settled();
    for _ in 0..50 {
        round(&view);
    }
    assert_no_waiters(&view, "Interrupter");
    assert_back(&baseline, "Interrupter");
}

/// docs/semantics.md S2: `lock_async` futures pending then dropped, or resolved, on a private and
/// a memfd buffer, leave no waiter and no waker held.
fn mutex_lock_async() {
    fn round(buffer: &SharedBuffer, waker: &Arc<Counting>) {
        let mutex = Mutex::at(buffer, 0).unwrap();
        let guard = mutex.lock().unwrap();
        let mut dropped = Box::pin(mutex.lock_async());
        let mut resolved = Box::pin(mutex.lock_async());
        for _ in 0..3 {
            assert!(poll_once(&mut dropped, waker).is_pending());
            assert!(poll_once(&mut resolved, waker).is_pending());
        }
        drop(dropped);
        drop(guard);
        drop(block_on(resolved).unwrap());
        assert!(!mutex.is_locked());
    }
    let waker = Arc::new(Counting::default());
    for shared in [false, true] {
        let buffer = if shared {
            memfd("soak-mutex", 16)
        } else {
            SharedBuffer::new(16).unwrap()
        };
        round(&buffer, &waker);
        let baseline = settled();
        for _ in 0..100 {
            round(&buffer, &waker);
        }
        assert_no_waiters(&Int32Array::new(&buffer).unwrap(), "lock_async");
        assert_waker_released(&waker, "lock_async");
        assert_back(&baseline, "lock_async");
    }
}

/// docs/semantics.md B2, B6, X1: growable, memfd and file-backed buffers give back their
/// descriptor and every mapping when the last clone drops.
fn growable_and_file_backed_buffers() {
    fn round() {
        let growable = SharedBuffer::growable(16, 1 << 30).unwrap();
        growable.grow(1 << 20).unwrap();
        let view = Int32Array::new(&growable).unwrap();
        drop(growable);
        drop(view);
        let m = SharedBuffer::memfd_growable("soak-grow", 16, 1 << 24).unwrap();
        m.grow(1 << 20).unwrap();
        let again = SharedBuffer::from_fd(m.inheritable_fd().unwrap().unwrap()).unwrap();
        assert!(again.byte_length() >= 16);
        drop((m, again));
        let path = ScratchPath::new("soak");
        let created = SharedBuffer::create_growable(path.path(), 16, 1 << 20).unwrap();
        created.grow(4096).unwrap();
        let opened = SharedBuffer::open(path.path()).unwrap();
        drop((created, opened));
        let fixed = SharedBuffer::create(path.path(), 4096);
        // The path exists already: either way nothing may stay open.
        drop(fixed);
        drop(path);
    }
    soak("buffers", 100, round);
    assert_rss_flat("growable buffers", 20, 8 << 20, round);
}

/// docs/semantics.md X4: process workers joined, terminated or dropped leave no child, no
/// descriptor, no thread, no mapping.
fn process_worker_join_terminate_drop() {
    fn round(ending: usize) {
        let shared = memfd("soak-process", 64);
        let worker: ProcessWorker<Bytes, Bytes> = ProcessWorker::builder()
            .share(&shared)
            .spawn(&ECHO)
            .unwrap();
        worker.post_message(&Bytes(vec![1, 2, 3])).unwrap();
        match ending {
            0 => {
                worker.disconnect();
                assert!(worker.join().unwrap().success());
            }
            1 => {
                let _ = worker.terminate().unwrap();
            }
            _ => drop(worker),
        }
    }
    for ending in 0..3 {
        soak(&format!("ProcessWorker ending {ending}"), 30, || {
            round(ending)
        });
    }
}

/// docs/semantics.md W4, X4 (the byte ring under process workers): senders and receivers made
/// and dropped, a receiver blocked when the ring closes, on a private and a memfd buffer.
fn byte_ring_lifecycles() {
    fn round(make: &dyn Fn() -> SharedBuffer) {
        let buffer = make();
        let ring = ByteRing::at(&buffer, 0, 256).unwrap();
        {
            let mut tx = ring.sender().unwrap();
            let mut rx = ring.receiver().unwrap();
            tx.send(b"left behind", None).unwrap();
            tx.send(b"taken", None).unwrap();
            assert_eq!(rx.try_recv().unwrap().unwrap(), b"left behind");
        }
        assert_no_waiters(&Int32Array::new(&buffer).unwrap(), "byte ring");
        // A receiver blocked in recv when the ring closes (each ring takes one receiver, ever).
        let buffer = make();
        let ring = ByteRing::at(&buffer, 0, 256).unwrap();
        let mut rx = ring.receiver().unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let blocked = std::thread::spawn(move || {
            tid_tx.send(current_tid()).unwrap();
            loop {
                match rx.recv(None) {
                    Ok(_) => continue,
                    Err(error) => return error,
                }
            }
        });
        wait_until_asleep(tid_rx.recv().unwrap()); // blocked in recv
        ring.close();
        assert_eq!(blocked.join().unwrap(), Error::Closed);
        assert_no_waiters(&Int32Array::new(&buffer).unwrap(), "byte ring");
    }
    for shared in [false, true] {
        let bytes = ByteRing::bytes_for(256).unwrap();
        let make = move || {
            if shared {
                memfd("soak-ring", bytes)
            } else {
                SharedBuffer::new(bytes).unwrap()
            }
        };
        soak("byte ring", 200, || round(&make));
    }
}

/// docs/semantics.md P3–P9: what a task captures, returns or panics with is dropped by the time
/// the pool is gone, whether the task ran, was cancelled, timed out, or its handle was dropped;
/// keyed tasks, broadcasts and maps too; idle threads reaped by the idle timeout are gone.
fn pool_task_captures_and_results() {
    fn round(marker: &Arc<()>) {
        let pool = WorkerPool::builder()
            .min_threads(0)
            .max_threads(3)
            .idle_timeout(Duration::from_millis(1))
            .max_queue(sharedbuf::pool::MaxQueue::Unbounded)
            .build()
            .unwrap();
        let mut handles = Vec::new();
        for i in 0..24u64 {
            let held = Arc::clone(marker);
            let options = sharedbuf::pool::TaskOptions::new().key(&(i % 5));
            let options = if i % 4 == 0 {
                options.timeout(Duration::from_millis(1))
            } else {
                options
            };
            let handle = pool
                .run_with(options, move |ctx| {
                    if i % 4 == 0 {
                        while !ctx.is_cancelled() {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                    if i % 6 == 1 {
                        panic!("a deliberate panic holding {held:?}");
                    }
                    held // returned: the handle owns it until joined or dropped
                })
                .unwrap();
            if i % 3 == 2 {
                handle.cancel();
            }
            handles.push(handle);
        }
        for (i, handle) in handles.into_iter().enumerate() {
            if i % 2 == 0 {
                let _ = handle.join();
            }
        }
        let held = Arc::clone(marker);
        let _ = pool.broadcast(move |_| Arc::strong_count(&held)).unwrap();
        let held = Arc::clone(marker);
        let _ = pool.map(0..10, move |x| (x, Arc::clone(&held)));
        drop(pool);
    }
    let marker = Arc::new(());
    let hook = std::sync::Arc::new(std::panic::take_hook());
    let quiet = Arc::clone(&hook);
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("a deliberate panic") {
            quiet(info);
        }
    }));
    round(&marker);
    let baseline = settled();
    for _ in 0..50 {
        round(&marker);
    }
    let _ = std::panic::take_hook();
    assert_eq!(
        Arc::strong_count(&marker),
        1,
        "a task's capture or result is left"
    );
    assert_back(&baseline, "WorkerPool tasks");
    let pool = WorkerPool::builder()
        .max_threads(2)
        .max_queue(sharedbuf::pool::MaxQueue::Unbounded)
        .build()
        .unwrap();
    let mut key = 0u64;
    // The bound allows for the pool's kept empty slabs (16 MiB at least, slabs.rs).
    assert_rss_flat("keyed tasks of distinct keys", 5_000, 20 << 20, || {
        key += 1;
        pool.run_keyed(&key, |_| ()).unwrap().join().unwrap();
    });
}

/// docs/semantics.md P7: a pool's thread hooks, and what they capture, are dropped with the pool,
/// even though the thread that submitted its tasks lives on (and keeps carving task cells for
/// a while from a chunk that belonged to that pool, cells.rs).
fn pool_hooks_dropped_with_the_pool() {
    let round = || {
        let (start, exit) = (memfd("soak-hook", 16), memfd("soak-hook", 16));
        let pool = WorkerPool::builder()
            .max_threads(2)
            .on_thread_start(move |_| assert_eq!(start.byte_length(), 16))
            .on_thread_exit(move |_| assert_eq!(exit.byte_length(), 16))
            .build()
            .unwrap();
        // More than enough for this thread to carve the cells from a chunk of this pool.
        for _ in 0..200 {
            pool.run(|_| ()).unwrap().join().unwrap();
        }
        drop(pool);
    };
    // No warm-up: the pools of the cases before started what persists (the slabs).
    let baseline = settled();
    for _ in 0..10 {
        round();
    }
    assert_back(&baseline, "pool hooks");
}

/// docs/semantics.md P3, P7, W2: a task handle polled as a future and dropped (before or
/// after its task ran) lets go of the task's waker; a task blocked in `atomics::wait` when the
/// pool is destroyed, and a worker whose closure panics with a payload holding a descriptor,
/// leave nothing.
fn task_futures_destroyed_waits_and_panics() {
    let waker = Arc::new(Counting::default());
    let round = || {
        let pool = WorkerPool::builder().max_threads(2).build().unwrap();
        let gate = Arc::new(std::sync::Barrier::new(2));
        let opened = Arc::clone(&gate);
        let mut early = pool.run(move |_| opened.wait()).unwrap();
        let mut late = pool.run(|_| 7).unwrap();
        assert!(poll_once(&mut early, &waker).is_pending());
        let late_now = poll_once(&mut late, &waker);
        drop(early); // before its task ran to the end
        gate.wait();
        match late_now {
            Poll::Ready(result) => assert_eq!(result, Ok(7)),
            Poll::Pending => assert_eq!(block_on(late), Ok(7)), // polled again only if pending
        }
        // A task blocked in `wait` on a memfd buffer, then the pool destroyed.
        let flag = Int32Array::new(&memfd("soak-destroy", 16)).unwrap();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let blocked = pool
            .run(move |_| {
                started_tx.send(current_tid()).unwrap();
                atomics::wait(&flag, 0, 0, None)
            })
            .unwrap();
        wait_until_asleep(started_rx.recv().unwrap()); // blocked in wait
        pool.destroy();
        drop(blocked);
        drop(pool);
        // A worker panicking with a payload that holds a descriptor.
        let held = memfd("soak-payload", 16);
        let worker: Worker<(), ()> = Worker::spawn(move |_ctx| -> Result<(), Error> {
            std::panic::panic_any(held);
        })
        .unwrap();
        assert!(!worker.join().unwrap().success());
    };
    let hook = std::sync::Arc::new(std::panic::take_hook());
    let quiet = Arc::clone(&hook);
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<SharedBuffer>().is_none() {
            quiet(info);
        }
    }));
    round();
    let baseline = settled();
    for _ in 0..20 {
        round();
    }
    let _ = std::panic::take_hook();
    assert_waker_released(&waker, "task handles as futures");
    assert_back(&baseline, "task futures, destroyed waits, panics");
}

/// docs/semantics.md W6 (its caveat): a port posted into its own channel is a reference cycle,
/// kept alive with every message in it, as `std::sync::mpsc` keeps a `Receiver` sent through
/// its own channel. Documented, not fixed: this case shows how much it keeps.
fn channel_port_in_its_own_queue() {
    type Any = Box<dyn std::any::Any + Send>;
    fn round() {
        let (a, b) = MessageChannel::<Any>::new();
        a.post_message(Box::new(memfd("soak-cycle", 16))).unwrap();
        a.post_message(Box::new(b)).unwrap();
        drop(a);
    }
    round();
    let baseline = settled();
    for _ in 0..10 {
        round();
    }
    // Each round keeps its channel and the buffer in it: the caveat W6 documents. If this
    // ever fails because nothing is kept any more, drop the caveat from W6.
    let now = settled();
    assert_eq!(
        total(&now.descriptors),
        total(&baseline.descriptors) + 10,
        "a port in its own queue: not the cycle W6 documents"
    );
}

/// docs/semantics.md W6: messages a worker posted and nobody read are dropped with its handle.
fn worker_unread_messages() {
    fn round(ending: usize) {
        let worker: Worker<(), SharedBuffer> = Worker::builder()
            .spawn(|ctx| -> Result<(), Error> {
                for _ in 0..4 {
                    ctx.post_message(memfd("soak-out", 16))?;
                }
                Ok(())
            })
            .unwrap();
        if ending == 0 {
            assert!(worker.join().unwrap().success());
        } else {
            drop(worker);
        }
    }
    for ending in 0..2 {
        let baseline = {
            round(ending);
            settled()
        };
        for _ in 0..100 {
            round(ending);
        }
        assert_back(
            &baseline,
            &format!("Worker unread messages, ending {ending}"),
        );
    }
}

/// docs/semantics.md S3, X2: blocking waits of the sync primitives that time out, on a memfd
/// buffer, leave no slot taken (a notify would count it) and nothing else behind.
fn sync_timed_waits() {
    use sharedbuf::sync::{Condvar, RwLock, Semaphore};
    fn round(buffer: &SharedBuffer) {
        let mutex = Mutex::at(buffer, 0).unwrap();
        let condvar = Condvar::at(buffer, 16).unwrap();
        let guard = mutex.lock().unwrap();
        let (guard, _) = condvar.wait_for(guard, Duration::from_millis(1)).unwrap();
        let holder = std::thread::scope(|scope| {
            scope
                .spawn(|| mutex.try_lock_for(Duration::from_millis(1)).is_err())
                .join()
                .unwrap()
        });
        assert!(holder);
        drop(guard);
        let semaphore = Semaphore::at(buffer, 32).unwrap();
        assert!(!semaphore.acquire_for(1, Duration::from_millis(1)).unwrap());
        let rwlock = RwLock::at(buffer, 48).unwrap();
        let read = rwlock.read().unwrap();
        assert!(rwlock.try_write_for(Duration::from_millis(1)).is_err());
        drop(read);
    }
    round(&memfd("soak-sync", 128));
    let baseline = settled();
    for _ in 0..100 {
        let buffer = memfd("soak-sync", 128);
        round(&buffer);
        assert_no_waiters(&Int32Array::new(&buffer).unwrap(), "sync timed waits");
    }
    assert_back(&baseline, "sync timed waits");
}

/// docs/semantics.md S6, W3: workers terminated while blocked in every sync primitive (and in
/// a condvar wait requeued onto its mutex), on a private and a memfd buffer, leave no waiter.
fn sync_blocked_workers_terminated() {
    use sharedbuf::sync::{Barrier, Condvar, Latch, RwLock, Semaphore};
    fn round(buffer: &SharedBuffer) {
        let mutex = Mutex::at(buffer, 0).unwrap();
        let held = mutex.lock().unwrap();
        let rwlock = RwLock::at(buffer, 48).unwrap();
        let read = rwlock.read().unwrap();
        let mut workers: Vec<Worker<(), libc::pid_t>> = Vec::new();
        for kind in 0..7 {
            let buffer = buffer.clone();
            workers.push(
                Worker::builder()
                    .spawn(move |ctx| -> Result<(), Error> {
                        ctx.post_message(current_tid())?;
                        match kind {
                            0 => drop(Mutex::at(&buffer, 0)?.lock()),
                            1 => {
                                // Waits on the condvar with its own mutex (offset 64), then
                                // is notified (requeued onto the mutex, which is held).
                                let own = Mutex::at(&buffer, 64)?;
                                let guard = own.lock().map_err(Error::from)?;
                                drop(Condvar::at(&buffer, 16)?.wait(guard));
                            }
                            2 => drop(Semaphore::at(&buffer, 32)?.acquire(1)),
                            3 => drop(RwLock::at(&buffer, 48)?.write()),
                            4 => drop(Barrier::at(&buffer, 80, 8)?.wait()),
                            5 => drop(Latch::at(&buffer, 96)?.wait()),
                            _ => drop(Mutex::at(&buffer, 64)?.lock()),
                        }
                        Ok(())
                    })
                    .unwrap(),
            );
        }
        // Each blocked in its primitive (or done: the last takes the condvar waiter's mutex
        // once that one waits).
        let tids: Vec<libc::pid_t> = workers
            .iter()
            .map(|worker| {
                assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
                let Ok(WorkerEvent::Message(tid)) = worker.recv_event() else {
                    panic!("a worker did not report its thread id");
                };
                wait_until_asleep(tid);
                tid
            })
            .collect();
        // The condvar's waiter is moved onto its mutex, held now (a requeue, if it waited).
        let own = Mutex::at(buffer, 64).unwrap();
        let own_held = own.lock().unwrap();
        Condvar::at(buffer, 16).unwrap().notify_all();
        wait_until_asleep(tids[1]); // on the mutex now
        for worker in &workers {
            let _ = worker.terminate().unwrap();
        }
        drop(workers);
        drop((held, read, own_held));
    }
    for shared in [false, true] {
        let make = || {
            let buffer = if shared {
                memfd("soak-blocked", 128)
            } else {
                SharedBuffer::new(128).unwrap()
            };
            sharedbuf::sync::Latch::at(&buffer, 96)
                .unwrap()
                .count_up(1)
                .unwrap();
            buffer
        };
        round(&make());
        let baseline = settled();
        for _ in 0..50 {
            let buffer = make();
            round(&buffer);
            assert_no_waiters(&Int32Array::new(&buffer).unwrap(), "blocked sync waits");
        }
        assert_back(&baseline, "blocked sync waits");
    }
}

/// docs/semantics.md A12: a memfd buffer dropped while a future on it is pending (the future
/// keeps the memory), then the future dropped: everything goes.
fn wait_async_outlives_its_buffer() {
    let waker = Arc::new(Counting::default());
    let round = || {
        let view = Int32Array::new(&memfd("soak-outlive", 16)).unwrap();
        let WaitAsync::Pending(mut future) =
            atomics::wait_async(&view, 0, 0, Some(FOREVER)).unwrap()
        else {
            panic!("not pending")
        };
        assert!(poll_once(&mut future, &waker).is_pending());
        drop(view);
        drop(future);
    };
    round();
    let baseline = settled();
    for _ in 0..50 {
        round();
    }
    assert_waker_released(&waker, "wait_async outliving its buffer");
    assert_back(&baseline, "wait_async outliving its buffer");
}

/// docs/semantics.md X4: a child's messages nobody read, and buffers shared with it, are gone
/// with the worker.
fn process_worker_unread_messages() {
    let round = || {
        let shared = memfd("soak-process", 64);
        let worker: ProcessWorker<Bytes, Bytes> = ProcessWorker::builder()
            .share(&shared)
            .share(&shared)
            .spawn(&ECHO)
            .unwrap();
        for _ in 0..8 {
            worker.post_message(&Bytes(vec![7; 100])).unwrap();
        }
        worker.disconnect();
        drop(worker);
    };
    soak("ProcessWorker unread messages", 30, round);
}

/// docs/semantics.md Q1, Q7: a queue and consumers started and closed give back their connections
/// and threads.
#[cfg(feature = "redis")]
fn queue_consumer_start_close() {
    use sharedbuf::queue::{JobError, JobOptions, JobQueue, QueueError};
    let Some(server) = queue_support::redis_or_skip("queue_consumer_start_close") else {
        return;
    };
    let name = queue_support::queue_name("soak");
    // Connections as the server counts them: a leaked client shows there too.
    let mut admin = server.connection();
    let mut clients = move || -> usize {
        let list: String = sharedbuf::queue::redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut admin)
            .unwrap();
        list.lines().count()
    };
    // One queue handle that outlives the consumers, as in a service: what a closed consumer
    // leaves in it (its pool above all) would show.
    let long_lived = JobQueue::connect(&server.url(), &name).unwrap();
    let round = |i: usize| {
        let pool = Arc::new(WorkerPool::builder().max_threads(2).build().unwrap());
        let own_queue = (i % 3 != 0).then(|| JobQueue::connect(&server.url(), &name).unwrap());
        let queue = own_queue.as_ref().unwrap_or(&long_lived);
        let done = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&done);
        let consumer = queue
            .consumer(&format!("soak-{i}"))
            .lease(Duration::from_millis(100))
            .run_on(&pool, move |job, _| {
                seen.fetch_add(1, Ordering::SeqCst);
                match job.payload() {
                    b"retry" if job.attempt() < 2 => Err(JobError::retry("once more")),
                    b"fail" => Err(JobError::permanent("no")),
                    _ => Ok(()),
                }
            })
            .unwrap();
        // A second consumer of the same name is refused, and leaves nothing behind.
        let refused = queue
            .consumer(&format!("soak-{i}"))
            .run_on(&pool, |_, _| Ok(()));
        assert!(matches!(refused, Err(QueueError::NameInUse { .. })));
        queue.add(b"retry", JobOptions::new().attempts(3)).unwrap();
        queue.add(b"fail", JobOptions::new()).unwrap();
        for _ in 0..3 {
            queue.add(b"x", JobOptions::new()).unwrap();
        }
        queue_support::wait_until("the jobs ran", || done.load(Ordering::SeqCst) >= 6);
        if i % 2 == 0 {
            consumer.close(Some(WATCHDOG)).unwrap();
        } else {
            drop(consumer); // closes it too
        }
        drop(own_queue);
        assert_eq!(
            Arc::strong_count(&pool),
            1,
            "something keeps the consumer's pool"
        );
        drop(pool);
    };
    round(0);
    let baseline = settled();
    let connected = clients();
    for i in 1..10 {
        round(i);
    }
    assert_back(&baseline, "JobQueue and Consumer");
    assert_eq!(clients(), connected, "a Redis connection is left open");
}

/// docs/semantics.md Q6, Q7: a consumer that lived through Redis restarts (its connections
/// re-established) gives back every connection and thread when closed.
#[cfg(feature = "redis")]
fn queue_consumer_across_restarts() {
    use sharedbuf::queue::{JobOptions, JobQueue};
    let Some(mut server) = queue_support::redis_with_aof_or_skip("queue_consumer_across_restarts")
    else {
        return;
    };
    let name = queue_support::queue_name("soak-restart");
    let mut round = |i: usize| {
        let pool = Arc::new(WorkerPool::builder().max_threads(2).build().unwrap());
        let queue = JobQueue::connect(&server.url(), &name).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&done);
        let consumer = queue
            .consumer(&format!("soak-restart-{i}"))
            .run_on(&pool, move |_, _| {
                seen.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .unwrap();
        for restarts in 1..=2 {
            server.restart();
            queue_support::wait_until("a job added after the restart", || {
                queue.add(b"x", JobOptions::new()).is_ok()
            });
            queue_support::wait_until("the job ran", || done.load(Ordering::SeqCst) >= restarts);
        }
        consumer.close(Some(WATCHDOG)).unwrap();
        drop(queue);
        drop(pool);
    };
    round(0);
    let baseline = settled();
    for i in 1..4 {
        round(i);
    }
    assert_back(&baseline, "a consumer across Redis restarts");
}

/// The C library's settings that keep the counts exact: no cache of freed thread stacks (a
/// thread that ends unmaps its stack at once) and one malloc arena (glibc otherwise maps a new
/// arena, kept for the process's life, whenever threads happen to contend). Both are read at
/// startup, so the first run re-executes itself with them and exits with the re-run's status.
const TUNABLES: &str = "glibc.pthread.stack_cache_size=0:glibc.malloc.arena_max=1";

fn run_without_libc_caches() {
    if std::env::var("GLIBC_TUNABLES").as_deref() == Ok(TUNABLES) {
        return;
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", TUNABLES)
        .status()
        .expect("re-running the soak tests");
    std::process::exit(status.code().unwrap_or(1));
}

type Test = (&'static str, fn());

/// A case: its name (for the command line's filter) and its body.
macro_rules! case {
    ($name:ident) => {
        (stringify!($name), $name as fn())
    };
}

static TESTS: &[Test] = &[
    case!(pool_build_run_close_destroy_drop),
    case!(pool_task_captures_and_results),
    case!(pool_hooks_dropped_with_the_pool),
    case!(task_futures_destroyed_waits_and_panics),
    case!(worker_join_drop_terminate),
    case!(worker_unread_messages),
    case!(channel_left_messages_and_ports_through_ports),
    case!(wait_async_private),
    case!(wait_async_memfd),
    case!(wait_async_memfd_slots_run_out),
    case!(wait_async_outlives_its_buffer),
    case!(interrupter_install_drop),
    case!(mutex_lock_async),
    case!(sync_timed_waits),
    case!(sync_blocked_workers_terminated),
    case!(growable_and_file_backed_buffers),
    case!(refused_buffers),
    case!(process_worker_join_terminate_drop),
    case!(process_worker_unread_messages),
    case!(byte_ring_lifecycles),
    #[cfg(feature = "redis")]
    case!(queue_consumer_start_close),
    #[cfg(feature = "redis")]
    case!(queue_consumer_across_restarts),
    // Last: what it keeps (by design) would be in the baselines of the cases after it.
    case!(channel_port_in_its_own_queue),
];

fn main() {
    process::init(ENTRIES); // children run their entry here and exit

    run_without_libc_caches();

    // The run's own watchdog: a hang fails it instead of stalling the suite. It is a thread of
    // the baseline of every case.
    std::thread::spawn(|| {
        std::thread::sleep(10 * WATCHDOG);
        eprintln!("soak: the run hung; aborting");
        std::process::exit(1);
    });
    process_support::run_tests(TESTS);
}
