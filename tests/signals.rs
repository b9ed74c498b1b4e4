//! The crate under signals, stopped peers and `fork` (docs/semantics.md X8, X7; and A7, A12,
//! X2, X3, X4 under them).
//!
//! - **EINTR storms**: a signal handler installed with `sigaction` *without* `SA_RESTART`
//!   (as profilers, SIGCHLD or SIGWINCH handlers are), and a thread that sends the signal to a
//!   blocked thread (and to the whole process) every ~50 µs while it waits in each blocking
//!   call. Every call must end exactly as it would have without the signals: an untimed wait
//!   only once it was released, a timed one not before its deadline (a wait that restarted
//!   its full timeout at every signal would never end: the watchdog catches that), no message
//!   lost, no panic.
//! - **SIGSTOP/SIGCONT**: a stopped peer process is alive (its locks are not taken over, its
//!   waiters are not reclaimed, a stopped `ProcessWorker` is not reported exited), and nothing
//!   hangs once it continues.
//! - **fork without exec**: what the child of a process that used the crate can use (X7).
//!
//! Each scenario runs in a child process (this binary again, with [`ROLE`] naming it), since
//! it changes process-wide signal state or forks; its exit status is the verdict, and a
//! watchdog kills a child that hangs. `harness = false`: `main` calls `process::init` first.
#![cfg(target_os = "linux")]

mod scenarios;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use scenarios::{fork_child, Runner, Scenario};
use sharedbuf::atomics::{self, WaitAsync};
use sharedbuf::channel::{ByteRing, PostError};
use sharedbuf::pool::{CloseError, MaxQueue, PoolError, TaskError, TaskHandle, WorkerPool};
use sharedbuf::process::{self, Entry, ProcessContext, ProcessEvent, ProcessWorker};
use sharedbuf::sync::{Barrier, Condvar, Latch, Mutex, Once, RwLock, Semaphore};
use sharedbuf::worker::WorkerEvent;
use sharedbuf::{Error, Int32Array, MessageChannel, SharedBuffer, WaitResult, Worker};

/// Set in a child: the scenario it runs.
const ROLE: &str = "SHAREDBUF_TEST_SIGNALS_ROLE";
/// A hang detector, not a speed measurement.
const WATCHDOG: Duration = Duration::from_secs(60);
/// How long a releasing thread lets the blocked call wait (under the storm) before it releases
/// it: only makes the signals likely to land during the wait; the checks hold either way.
const HOLD: Duration = Duration::from_millis(100);
/// The timeout of timed calls that must time out.
const TIMEOUT: Duration = Duration::from_millis(100);
/// A bound for something that should take microseconds: a regression fails instead of
/// hanging.
const BOUND: Duration = Duration::from_secs(10);

// ---- the storm ----

/// Signals the handler received.
static RECEIVED: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    RECEIVED.fetch_add(1, SeqCst); // async-signal-safe
}

/// Installs [`on_signal`] for SIGUSR1 without `SA_RESTART`: every slow system call a signal
/// lands in fails with `EINTR`.
fn install_handler() {
    // SAFETY: a zeroed `sigaction` is valid; the handler is async-signal-safe; the calls only
    // change this process's disposition of SIGUSR1.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = 0; // no SA_RESTART
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
}

/// A thread sending SIGUSR1 to one thread, and every fourth time to the whole process (any
/// thread of the crate's: the timer, a doorbell, a pool worker), every ~50 µs.
struct Storm {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Storm {
    fn at(target: libc::pthread_t) -> Storm {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !stopping.load(SeqCst) {
                // SAFETY: `target` is a thread that outlives the storm (it stops the storm
                // before it returns); `kill` of our own pid only sends a signal.
                unsafe {
                    libc::pthread_kill(target, libc::SIGUSR1);
                    if n % 4 == 0 {
                        libc::kill(libc::getpid(), libc::SIGUSR1);
                    }
                }
                n += 1;
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        Storm {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `f` on this thread under a storm of signals.
fn stormed<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: `pthread_self` has no preconditions.
    let storm = Storm::at(unsafe { libc::pthread_self() });
    let result = f();
    drop(storm);
    result
}

/// [`stormed`], for a call that blocks (until its deadline or a release): checks signals
/// arrived meanwhile, so the test tested something.
fn stormed_blocking<R>(f: impl FnOnce() -> R) -> R {
    let before = RECEIVED.load(SeqCst);
    let result = stormed(f);
    assert!(RECEIVED.load(SeqCst) > before, "no signal arrived");
    result
}

/// A thread that, after [`HOLD`], sets the returned flag and then runs `release`: a blocked
/// call that returns while the flag is unset returned early.
fn release_later(release: impl FnOnce() + Send + 'static) -> (Arc<AtomicBool>, JoinHandle<()>) {
    let released = Arc::new(AtomicBool::new(false));
    let flag = released.clone();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(HOLD);
        flag.store(true, SeqCst);
        release();
    });
    (released, thread)
}

/// Runs `f` (a timed call that must time out) under a storm; checks it did not return before
/// its deadline ([`TIMEOUT`] from now).
fn times_out<R>(what: &str, f: impl FnOnce(Duration) -> R) -> R {
    let deadline = Instant::now() + TIMEOUT;
    let result = stormed_blocking(|| f(TIMEOUT));
    assert!(
        Instant::now() >= deadline,
        "{what} returned before its deadline"
    );
    result
}

/// Runs `call` (which blocks until released) under a storm while another thread releases it
/// with `release` after [`HOLD`]; checks it did not return before that.
fn released<R>(what: &str, release: impl FnOnce() + Send + 'static, call: impl FnOnce() -> R) -> R {
    let (flag, thread) = release_later(release);
    let result = stormed_blocking(call);
    assert!(flag.load(SeqCst), "{what} returned before it was released");
    thread.join().unwrap();
    result
}

/// Polls `future` on this thread until it is ready, or `None` after [`BOUND`].
fn block_on<F: Future>(future: F) -> Option<F::Output> {
    scenarios::block_on_within(BOUND, future)
}

fn pending(result: Result<WaitAsync, Error>) -> sharedbuf::atomics::WaitFuture {
    match result.unwrap() {
        WaitAsync::Pending(future) => future,
        WaitAsync::Ready(answer) => panic!("wait_async answered {answer:?} at once"),
    }
}

/// A file-backed buffer in a fresh temporary directory (removed with the process's files).
fn file_buffer(len: usize) -> SharedBuffer {
    let path = std::env::temp_dir().join(format!("sharedbuf-signals-{}", std::process::id()));
    let buffer = SharedBuffer::create(&path, len).unwrap();
    let _ = std::fs::remove_file(&path);
    buffer
}

// ---- EINTR scenarios (X8) ----

/// A6, A7, X2: `atomics::wait` untimed ends only when notified; timed, only at its deadline,
/// with `TimedOut`; on a private, a memfd and a file-backed buffer.
fn wait_on(buffer: SharedBuffer) {
    let view = Int32Array::new(&buffer).unwrap();
    let notifier = view.clone();
    let result = released(
        "an untimed wait",
        move || {
            while atomics::notify(&notifier, 0, None).unwrap() == 0 {
                std::thread::yield_now();
            }
        },
        || atomics::wait(&view, 0, 0, None),
    );
    assert_eq!(result.unwrap(), WaitResult::Ok);
    let result = times_out("a timed wait", |t| atomics::wait(&view, 0, 0, Some(t)));
    assert_eq!(result.unwrap(), WaitResult::TimedOut);
    // A notify after a storm still finds the waiter (nothing left it in a bad state).
    let notifier = view.clone();
    let result = released(
        "a timed wait notified",
        move || {
            while atomics::notify(&notifier, 0, None).unwrap() == 0 {
                std::thread::yield_now();
            }
        },
        || atomics::wait(&view, 0, 0, Some(BOUND)),
    );
    assert_eq!(result.unwrap(), WaitResult::Ok);
}

fn wait_private() {
    wait_on(SharedBuffer::new(64).unwrap());
}

fn wait_memfd() {
    wait_on(SharedBuffer::memfd("signals", 64).unwrap());
}

fn wait_file() {
    wait_on(file_buffer(64));
}

/// A12: a timed `wait_async` resolves `TimedOut` not before its deadline, and a notified one
/// `Ok` (the poller is stormed; the process-directed signals hit the timer and doorbell
/// threads).
fn wait_async_on(buffer: SharedBuffer) {
    let view = Int32Array::new(&buffer).unwrap();
    let result = times_out("a timed wait_async", |t| {
        block_on(pending(atomics::wait_async(&view, 0, 0, Some(t))))
    });
    assert_eq!(result, Some(WaitResult::TimedOut));
    let notifier = view.clone();
    let future = pending(atomics::wait_async(&view, 0, 0, Some(BOUND)));
    let result = released(
        "a notified wait_async",
        move || assert_eq!(atomics::notify(&notifier, 0, None).unwrap(), 1),
        || block_on(future),
    );
    assert_eq!(result, Some(WaitResult::Ok));
}

fn wait_async_private() {
    wait_async_on(SharedBuffer::new(64).unwrap());
}

fn wait_async_memfd() {
    wait_async_on(SharedBuffer::memfd("signals", 64).unwrap());
}

/// S2, S3 (and X3 on a memfd): every lock's blocking call ends only when released, and its
/// timed form not before its deadline.
fn locks_on(buffer: SharedBuffer) {
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let condvar = Condvar::at(&buffer, 16).unwrap();
    let rwlock = RwLock::at(&buffer, 24).unwrap();
    let semaphore = Semaphore::at(&buffer, 48).unwrap();
    let latch = Latch::at(&buffer, 52).unwrap();
    let barrier = Barrier::at(&buffer, 64, 2).unwrap();
    let once = Once::at(&buffer, 80).unwrap();

    // Mutex.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let unlocked = Arc::new(AtomicBool::new(false));
    let holder = {
        let (mutex, unlocked) = (mutex.clone(), unlocked.clone());
        std::thread::spawn(move || {
            let guard = mutex.lock().unwrap();
            tx.send(()).unwrap();
            std::thread::sleep(2 * HOLD);
            unlocked.store(true, SeqCst);
            drop(guard);
        })
    };
    rx.recv().unwrap();
    let timed = times_out("try_lock_for", |t| {
        mutex.try_lock_for(t).is_err_and(|e| e == Error::WouldBlock)
    });
    assert!(timed, "try_lock_for took a held mutex");
    let guard = stormed(|| mutex.lock().unwrap());
    assert!(
        unlocked.load(SeqCst),
        "lock returned while the mutex was held"
    );
    assert!(!guard.is_inconsistent());
    drop(guard);
    holder.join().unwrap();

    // RwLock: a writer holds it; a reader and a writer wait.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let unlocked = Arc::new(AtomicBool::new(false));
    let writer = {
        let (rwlock, unlocked) = (rwlock.clone(), unlocked.clone());
        std::thread::spawn(move || {
            let guard = rwlock.write().unwrap();
            tx.send(()).unwrap();
            std::thread::sleep(3 * HOLD);
            unlocked.store(true, SeqCst);
            drop(guard);
        })
    };
    rx.recv().unwrap();
    let timed = times_out("try_read_for", |t| {
        rwlock
            .try_read_for(t)
            .is_err_and(|e| e == Error::WouldBlock)
    });
    assert!(timed, "try_read_for got in beside a writer");
    let timed = times_out("try_write_for", |t| {
        rwlock
            .try_write_for(t)
            .is_err_and(|e| e == Error::WouldBlock)
    });
    assert!(timed, "try_write_for got in beside a writer");
    let read = stormed(|| rwlock.read().unwrap());
    assert!(
        unlocked.load(SeqCst),
        "read returned while a writer held the lock"
    );
    drop(read);
    writer.join().unwrap();

    // Condvar: notified, and timed out.
    let guard = mutex.lock().unwrap();
    let (waiting, notifier) = (Arc::new(AtomicBool::new(true)), condvar.clone());
    let still = waiting.clone();
    let (flag, thread) = release_later(move || {
        while still.load(SeqCst) {
            notifier.notify_all();
            std::thread::yield_now();
        }
    });
    let guard = stormed(|| condvar.wait(guard).unwrap());
    waiting.store(false, SeqCst);
    assert!(flag.load(SeqCst), "Condvar::wait returned before a notify");
    thread.join().unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let (guard, result) = stormed(|| condvar.wait_for(guard, TIMEOUT).unwrap());
    assert!(result.timed_out() && Instant::now() >= deadline);
    drop(guard);

    // Semaphore.
    let timed = times_out("acquire_for", |t| semaphore.acquire_for(1, t).unwrap());
    assert!(!timed, "acquire_for got a permit that was never released");
    let releaser = semaphore.clone();
    released(
        "acquire",
        move || releaser.release(1).unwrap(),
        || semaphore.acquire(1).unwrap(),
    );
    assert_eq!(semaphore.available(), 0);

    // Latch.
    latch.count_up(1).unwrap();
    let timed = times_out("Latch::wait_for", |t| latch.wait_for(t).unwrap());
    assert!(!timed);
    let down = latch.clone();
    released(
        "Latch::wait",
        move || down.count_down().unwrap(),
        || latch.wait().unwrap(),
    );

    // Barrier (two parties).
    let timed = times_out("Barrier::wait_for", |t| barrier.wait_for(t).unwrap());
    assert!(timed.is_none());
    let other = barrier.clone();
    released(
        "Barrier::wait",
        move || {
            other.wait().unwrap();
        },
        || barrier.wait().unwrap(),
    );

    // Once: another thread runs the closure for a while; this one waits for it.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (runner_once, ran) = (once.clone(), Arc::new(AtomicBool::new(false)));
    let ran_flag = ran.clone();
    let runner = std::thread::spawn(move || {
        runner_once
            .call_once(|| {
                tx.send(()).unwrap();
                std::thread::sleep(HOLD);
                ran_flag.store(true, SeqCst);
            })
            .unwrap();
    });
    rx.recv().unwrap();
    let timed = stormed(|| once.wait_for(Duration::from_millis(10)).unwrap());
    assert!(!timed || ran.load(SeqCst));
    stormed(|| once.call_once(|| panic!("ran twice")).unwrap());
    assert!(
        ran.load(SeqCst),
        "call_once returned before the running closure ended"
    );
    runner.join().unwrap();
}

fn locks_private() {
    locks_on(SharedBuffer::new(128).unwrap());
}

fn locks_memfd() {
    locks_on(SharedBuffer::memfd("signals", 128).unwrap());
}

/// W4, W6: a port's `recv` gets the message, `recv_timeout` times out not before its deadline.
fn ports() {
    let (a, b) = MessageChannel::<u32>::new();
    let result = times_out("recv_timeout", |t| b.recv_timeout(t));
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    let result = released("recv", move || a.post_message(7).unwrap(), || b.recv());
    assert_eq!(result.unwrap(), 7);
}

/// A byte ring on a memfd: a blocking recv gets the message, a blocking send on a full ring
/// sends once there is room, and both timed forms time out not before their deadline.
fn byte_ring() {
    let buffer = SharedBuffer::memfd("ring", ByteRing::bytes_for(64).unwrap()).unwrap();
    let ring = ByteRing::at(&buffer, 0, 64).unwrap();
    let mut tx = ring.sender().unwrap();
    let mut rx = ring.receiver().unwrap();
    let result = times_out("a timed recv", |t| rx.recv(Some(Instant::now() + t)));
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    let (tx, received) = std::thread::scope(|scope| {
        let sender = scope.spawn(move || {
            std::thread::sleep(HOLD);
            tx.send(b"hello", None).unwrap();
            tx
        });
        let received = stormed(|| rx.recv(None)).unwrap();
        (sender.join().unwrap(), received)
    });
    assert_eq!(received, b"hello");
    drop((tx, rx));
    // A fresh ring, filled by one message at position 0.
    let buffer = SharedBuffer::memfd("ring", ByteRing::bytes_for(64).unwrap()).unwrap();
    let ring = ByteRing::at(&buffer, 0, 64).unwrap();
    let mut tx = ring.sender().unwrap();
    let rx = ring.receiver().unwrap();
    let big = vec![1u8; ring.max_message_len()];
    tx.try_send(&big).unwrap(); // full now
    let result = times_out("a timed send", |t| tx.send(b"x", Some(Instant::now() + t)));
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    let ((), rx) = std::thread::scope(|scope| {
        let receiver = scope.spawn(move || {
            let mut rx = rx;
            std::thread::sleep(HOLD);
            assert_eq!(rx.recv(None).unwrap(), big);
            rx
        });
        stormed(|| tx.send(b"x", None)).unwrap();
        ((), receiver.join().unwrap())
    });
    let mut rx = rx;
    assert_eq!(rx.recv(None).unwrap(), b"x");
}

/// W1, W2: a worker's events and join arrive whole under signals.
fn workers() {
    let worker = Worker::spawn(|ctx| {
        let n: u32 = ctx.recv()?;
        std::thread::sleep(HOLD);
        ctx.post_message(n + 1)
    })
    .unwrap();
    worker.post_message(1).unwrap();
    assert_eq!(
        stormed(|| worker.recv_event()).unwrap(),
        WorkerEvent::Online
    );
    let result = times_out("recv_event_timeout", |t| {
        let started = Instant::now();
        let r = worker.recv_event_timeout(t);
        (r, started)
    });
    // The worker answers after HOLD == TIMEOUT: either outcome is fine, but not early.
    match result.0 {
        Err(Error::Timeout) => {
            assert_eq!(
                stormed(|| worker.recv_event()).unwrap(),
                WorkerEvent::Message(2)
            )
        }
        Ok(event) => assert_eq!(event, WorkerEvent::Message(2)),
        Err(other) => panic!("{other:?}"),
    }
    let status = stormed(|| worker.join()).unwrap();
    assert!(status.success());
}

/// P3, P6, P7: a task's join, `join_timeout`, `wait_drained` and `close` under signals.
fn pool() {
    let pool = WorkerPool::builder()
        .max_threads(1)
        .max_queue(MaxQueue::Unbounded)
        .build()
        .unwrap();
    let gate = Arc::new(AtomicBool::new(false));
    let open = gate.clone();
    let first = pool
        .run(move |_| {
            while !open.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            1
        })
        .unwrap();
    let second = pool.run(|_| 2).unwrap();
    let second = match times_out("join_timeout", |t| second.join_timeout(t)) {
        Err(handle) => handle,
        Ok(result) => panic!("a queued task finished while the pool was blocked: {result:?}"),
    };
    let drained = times_out("wait_drained", |t| pool.wait_drained(Some(t)));
    assert!(!drained, "wait_drained says drained while a task is queued");
    let opener = gate.clone();
    let result = released("join", move || opener.store(true, SeqCst), || first.join());
    assert_eq!(result.unwrap(), 1);
    assert_eq!(stormed(|| second.join()).unwrap(), 2);
    let gate = Arc::new(AtomicBool::new(false));
    let open = gate.clone();
    let third = pool
        .run(move |_| {
            while !open.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            3
        })
        .unwrap();
    let fourth = pool.run(|_| 4).unwrap();
    let opener = gate.clone();
    released(
        "wait_drained",
        move || opener.store(true, SeqCst),
        || assert!(pool.wait_drained(None)),
    );
    let gate = Arc::new(AtomicBool::new(false));
    let open = gate.clone();
    let fifth = pool
        .run(move |_| {
            while !open.load(SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            5
        })
        .unwrap();
    let opener = gate.clone();
    released(
        "close",
        move || opener.store(true, SeqCst),
        || pool.close(None).unwrap(),
    );
    assert_eq!(third.join().unwrap(), 3);
    assert_eq!(fourth.join().unwrap(), 4);
    assert_eq!(fifth.join().unwrap(), 5);
}

/// Answers one number with the next, after [`HOLD`].
fn slow_increment(ctx: ProcessContext<u32, u32>) -> Result<(), Error> {
    let n = ctx.recv()?;
    std::thread::sleep(HOLD);
    ctx.post_message(&(n + 1))
}
static SLOW_INCREMENT: Entry<u32, u32> = Entry::new("slow_increment", slow_increment);

/// X4: spawning a process worker, its events and its join, with the parent stormed.
fn process_worker() {
    let worker = stormed(|| ProcessWorker::builder().spawn(&SLOW_INCREMENT)).unwrap();
    worker.post_message(&1).unwrap();
    assert_eq!(
        stormed(|| worker.recv_event()).unwrap(),
        ProcessEvent::Online
    );
    let deadline = Instant::now() + Duration::from_millis(10);
    match stormed(|| worker.recv_event_timeout(Duration::from_millis(10))) {
        Err(Error::Timeout) => assert!(Instant::now() >= deadline, "timed out early"),
        Ok(event) => assert_eq!(event, ProcessEvent::Message(2)),
        Err(other) => panic!("{other:?}"),
    }
    // The message, unless the timed call above already had it; then Exit.
    let mut events = Vec::new();
    loop {
        match stormed(|| worker.recv_event()).unwrap() {
            ProcessEvent::Exit(exit) => {
                assert!(exit.success(), "{exit:?}");
                break;
            }
            event => events.push(event),
        }
    }
    assert!(events.len() <= 1);
    // join, with the child still running (it sleeps before it answers).
    let worker = stormed(|| ProcessWorker::builder().spawn(&SLOW_INCREMENT)).unwrap();
    worker.post_message(&1).unwrap();
    let exit = stormed(|| worker.join()).unwrap();
    assert!(exit.success(), "{exit:?}");
}

// ---- SIGSTOP / SIGCONT of a peer process (X8) ----

/// Sends `signal` to process `pid`.
fn send(pid: u32, signal: libc::c_int) {
    // SAFETY: `kill` only sends a signal; `pid` is our unreaped child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}

/// The state letter of process `pid` (`/proc/<pid>/stat`, field 3).
fn state_of(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.trim_start().chars().next().unwrap()
}

/// Stops process `pid` and returns once it is stopped.
fn stop(pid: u32) {
    send(pid, libc::SIGSTOP);
    let deadline = Instant::now() + BOUND;
    while state_of(pid) != 'T' {
        assert!(Instant::now() < deadline, "the child did not stop");
        std::thread::yield_now();
    }
}

/// Takes the process-shared mutex at offset 0 of its shared buffer, says so (1), holds it
/// until told to let go, lets go and says so (2).
fn lock_holder(ctx: ProcessContext<u32, u32>) -> Result<(), Error> {
    let mutex = Mutex::at(&ctx.shared_buffers()[0], 0)?;
    let guard = mutex.lock().map_err(|_| Error::Timeout)?;
    ctx.post_message(&1)?;
    ctx.recv()?;
    drop(guard);
    ctx.post_message(&2)
}
static LOCK_HOLDER: Entry<u32, u32> = Entry::new("lock_holder", lock_holder);

/// X3, X4: a stopped process holding a process-shared lock is alive: a waiter does not take
/// the lock over (a timed one times out, an untimed one keeps waiting), the stopped
/// `ProcessWorker` is not reported exited; after SIGCONT everything goes on.
fn stopped_holder() {
    let buffer = SharedBuffer::memfd("stopped", 64).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let worker = ProcessWorker::builder()
        .share(&buffer)
        .spawn(&LOCK_HOLDER)
        .unwrap();
    assert_eq!(worker.recv_event().unwrap(), ProcessEvent::Online);
    assert_eq!(worker.recv_event().unwrap(), ProcessEvent::Message(1));
    stop(worker.pid());
    // Several liveness slices (50 ms) pass while these wait.
    let deadline = Instant::now() + 3 * TIMEOUT;
    let taken = mutex.try_lock_for(3 * TIMEOUT);
    assert!(
        taken.is_err_and(|e| e == Error::WouldBlock),
        "a stopped holder's lock was taken over"
    );
    assert!(Instant::now() >= deadline);
    assert!(!worker.has_exited(), "a stopped child is reported exited");
    let event = worker.recv_event_timeout(TIMEOUT);
    assert!(matches!(event, Err(Error::Timeout)), "{event:?}");
    // An untimed locker waits across the stop and gets the lock once it is let go.
    let let_go = Arc::new(AtomicBool::new(false));
    let locker = {
        let (mutex, let_go) = (mutex.clone(), let_go.clone());
        std::thread::spawn(move || {
            let guard = mutex.lock().unwrap();
            assert!(let_go.load(SeqCst), "got the lock before the holder let go");
            assert!(
                !guard.is_inconsistent(),
                "a stopped holder was declared dead"
            );
        })
    };
    std::thread::sleep(3 * TIMEOUT); // several slices of the locker's probing
    assert!(!locker.is_finished());
    send(worker.pid(), libc::SIGCONT);
    let_go.store(true, SeqCst);
    worker.post_message(&0).unwrap();
    assert_eq!(worker.recv_event().unwrap(), ProcessEvent::Message(2));
    locker.join().unwrap();
    let exit = worker.join().unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// Says it is ready (1), waits on word 1 of its shared buffer while it holds 0 and reports the
/// result (10: Ok, 11: NotEqual, 12: TimedOut), then takes the mutex at offset 16, says so
/// (3) and lets go.
fn stopped_waiter_entry(ctx: ProcessContext<u32, u32>) -> Result<(), Error> {
    let buffer = &ctx.shared_buffers()[0];
    let view = Int32Array::new(buffer)?;
    ctx.post_message(&1)?;
    let code = match atomics::wait(&view, 1, 0, None)? {
        WaitResult::Ok => 10,
        WaitResult::NotEqual => 11,
        WaitResult::TimedOut => 12,
    };
    ctx.post_message(&code)?;
    let mutex = Mutex::at(buffer, 16)?;
    let guard = mutex.lock().map_err(|_| Error::Timeout)?;
    ctx.post_message(&3)?;
    drop(guard);
    Ok(())
}
static STOPPED_WAITER: Entry<u32, u32> = Entry::new("stopped_waiter", stopped_waiter_entry);

/// X2, X3: a stopped process waiting on a process-shared word is notified and counted (its
/// slot is not reclaimed as a dead process's), and gets the result once continued; a stopped
/// process waiting for a process-shared mutex gets it after SIGCONT, consistent.
fn stopped_waiter() {
    let buffer = SharedBuffer::memfd("stopped", 64).unwrap();
    let view = Int32Array::new(&buffer).unwrap();
    let mutex = Mutex::at(&buffer, 16).unwrap();
    let worker = ProcessWorker::builder()
        .share(&buffer)
        .spawn(&STOPPED_WAITER)
        .unwrap();
    assert_eq!(worker.recv_event().unwrap(), ProcessEvent::Online);
    assert_eq!(worker.recv_event().unwrap(), ProcessEvent::Message(1));
    std::thread::sleep(HOLD); // likely queued by now; the checks hold either way
    stop(worker.pid());
    atomics::store(&view, 1, 1).unwrap();
    let woken = atomics::notify(&view, 1, None).unwrap();
    let held = mutex.lock().unwrap();
    send(worker.pid(), libc::SIGCONT);
    let expected = if woken == 1 { 10 } else { 11 };
    assert_eq!(
        worker.recv_event().unwrap(),
        ProcessEvent::Message(expected),
        "notify counted {woken}"
    );
    // The child now waits for the mutex: stop it there, let go, continue it.
    std::thread::sleep(HOLD);
    stop(worker.pid());
    drop(held);
    let event = worker.recv_event_timeout(TIMEOUT);
    assert!(matches!(event, Err(Error::Timeout)), "{event:?}");
    send(worker.pid(), libc::SIGCONT);
    assert_eq!(worker.recv_event().unwrap(), ProcessEvent::Message(3));
    let exit = worker.join().unwrap();
    assert!(exit.success(), "{exit:?}");
    let guard = mutex.lock().unwrap();
    assert!(!guard.is_inconsistent());
}

// ---- fork without exec (X7) ----

/// [`fork_child`], panicking (naming `what`) if the child failed or hung.
fn in_fork(what: &str, f: impl FnOnce()) {
    if let Err(why) = fork_child(2 * BOUND, f) {
        panic!("{what}: {why}");
    }
}

/// The cases of a fork scenario: each runs in a forked child of its own, so every case that
/// hangs or fails is seen, and [`Cases::check`] panics naming them all.
#[derive(Default)]
struct Cases {
    failed: Vec<String>,
}

impl Cases {
    /// Runs `f` in a forked child; records `what` if it failed or hung.
    fn in_fork(&mut self, what: &str, f: impl FnOnce()) {
        if let Err(why) = fork_child(BOUND, f) {
            self.failed.push(format!("{what}: {why}"));
        }
    }

    /// Records `what` as a failure of the parent's own check.
    fn fail(&mut self, what: String) {
        self.failed.push(what);
    }

    fn check(self) {
        assert!(self.failed.is_empty(), "{:#?}", self.failed);
    }
}

/// What a call on a handle made before the fork answers in the forked child (X7).
fn forked(what: &'static str) -> Error {
    Error::ForkedHandle { what }
}

/// X7: after the parent used a timed `wait_async` (so its timer thread runs) and a pool, a
/// forked child's timed `wait_async` — one pending since before the fork, and a new one —
/// times out, a blocking wait times out, and a notify from the parent reaches the child's
/// wait on a memfd buffer.
fn fork_timer() {
    let private = Int32Array::new(&SharedBuffer::new(16).unwrap()).unwrap();
    let shared = Int32Array::new(&SharedBuffer::memfd("fork", 16).unwrap()).unwrap();
    let answer = block_on(pending(atomics::wait_async(&private, 0, 0, Some(TIMEOUT))));
    assert_eq!(answer, Some(WaitResult::TimedOut));
    let pool = WorkerPool::new().unwrap();
    assert_eq!(pool.run(|_| 5).unwrap().join().unwrap(), 5);
    let inherited = pending(atomics::wait_async(&private, 0, 0, Some(3 * TIMEOUT)));
    in_fork("a timed wait_async", move || {
        // Pending since before the fork (nothing else in the child has asked for the timer).
        assert_eq!(block_on(inherited), Some(WaitResult::TimedOut));
        let answer = block_on(pending(atomics::wait_async(&private, 0, 0, Some(TIMEOUT))));
        assert_eq!(answer, Some(WaitResult::TimedOut));
        let answer = atomics::wait(&private, 0, 0, Some(TIMEOUT)).unwrap();
        assert_eq!(answer, WaitResult::TimedOut);
    });
    // Cross-process wait/notify between parent and forked child, both ways round.
    let notifier = {
        let shared = shared.clone();
        std::thread::spawn(move || {
            while atomics::load(&shared, 1).unwrap() == 0 {
                atomics::notify(&shared, 0, None).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    in_fork("a wait on a memfd buffer notified by the parent", || {
        let answer = atomics::wait(&shared, 0, 0, Some(BOUND)).unwrap();
        atomics::store(&shared, 1, 1).unwrap();
        assert_eq!(answer, WaitResult::Ok);
    });
    notifier.join().unwrap();
    drop(pool);
}

/// X7: a forked child's `wait_async` on a memfd buffer, while the parent had one pending on
/// the same buffer (its doorbell thread serving it), is woken by a notify from the parent.
fn fork_bridge() {
    let shared = Int32Array::new(&SharedBuffer::memfd("fork", 16).unwrap()).unwrap();
    let parents = pending(atomics::wait_async(&shared, 0, 0, None));
    let notifier = {
        let shared = shared.clone();
        std::thread::spawn(move || {
            while atomics::load(&shared, 2).unwrap() == 0 {
                atomics::notify(&shared, 1, None).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    in_fork("a wait_async on a memfd buffer", || {
        let future = pending(atomics::wait_async(&shared, 1, 0, None));
        let answer = block_on(future);
        atomics::store(&shared, 2, 1).unwrap();
        assert_eq!(answer, Some(WaitResult::Ok));
    });
    atomics::store(&shared, 2, 1).unwrap();
    notifier.join().unwrap();
    assert_eq!(atomics::notify(&shared, 0, None).unwrap(), 1);
    assert_eq!(block_on(parents), Some(WaitResult::Ok));
}

/// X7: a `Worker` made before a fork, in the forked child: every blocking call (`recv_event`,
/// a `post_message` to its full port, `terminate`, `join`) returns `Err(ForkedHandle)` at once,
/// as do its `try_post_message` and `post_message_timeout` (`PostError::ForkedHandle`: the
/// message would go to a port nobody reads)
/// instead of waiting for a thread that is not there, and dropping it returns (leaking what is
/// the parent's) without touching a worker made in the child (the old drop detached its thread,
/// whose join then failed). The parent's worker is unharmed.
fn fork_worker() {
    let gate = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
    let worker: Worker<u32, u32> = Worker::builder()
        .capacity(1)
        .worker_data(gate)
        .spawn(|ctx| atomics::wait(ctx.worker_data(), 0, 0, None).map(|_| ()))
        .unwrap();
    assert_eq!(worker.recv_event().unwrap(), WorkerEvent::Online);
    while worker.try_post_message(1).is_ok() {} // it never reads: its port is full now
    let mut worker = Some(worker);
    let mut cases = Cases::default();
    cases.in_fork("recv_event", || {
        assert_eq!(worker.as_ref().unwrap().recv_event(), Err(forked("worker")));
    });
    cases.in_fork("recv_event_timeout", || {
        assert_eq!(
            worker.as_ref().unwrap().recv_event_timeout(TIMEOUT),
            Err(forked("worker"))
        );
        assert_eq!(worker.as_ref().unwrap().events().next(), None);
    });
    cases.in_fork("post_message", || {
        assert_eq!(
            worker.as_ref().unwrap().post_message(2),
            Err(forked("worker"))
        );
    });
    cases.in_fork("try_post_message", || {
        let worker = worker.as_ref().unwrap();
        let tried = worker.try_post_message(3);
        assert!(
            matches!(tried, Err(PostError::ForkedHandle(3))),
            "{tried:?}"
        );
        let timed = worker.post_message_timeout(4, TIMEOUT);
        assert!(
            matches!(timed, Err(PostError::ForkedHandle(4))),
            "{timed:?}"
        );
        assert_eq!(timed.unwrap_err().error(), forked("worker"));
    });
    cases.in_fork("terminate", || {
        assert_eq!(worker.as_ref().unwrap().terminate(), Err(forked("worker")));
        assert_eq!(
            worker.as_ref().unwrap().terminate_timeout(TIMEOUT),
            Err(forked("worker"))
        );
    });
    cases.in_fork("join", || {
        assert_eq!(
            worker.as_ref().unwrap().join_timeout(TIMEOUT),
            Err(forked("worker"))
        );
        assert_eq!(worker.take().unwrap().join(), Err(forked("worker")));
    });
    // A worker made in the child first: its thread may get the stack (and the descriptor its
    // handle names) of the parent's worker thread, which glibc's fork keeps as free, so a drop
    // that detached the parent's thread would detach it (and its join would then fail).
    cases.in_fork("drop", || {
        let mine: Worker<u32, u32> = Worker::spawn(|ctx| {
            let n: u32 = ctx.recv()?;
            ctx.post_message(n + 1)
        })
        .unwrap();
        drop(worker.take());
        mine.post_message(1).unwrap();
        let events: Vec<_> = mine.events().collect();
        assert_eq!(events[1], WorkerEvent::Message(2));
        assert!(mine.join().unwrap().success());
    });
    let worker = worker.unwrap();
    if worker.state() != sharedbuf::worker::WorkerState::Running {
        cases.fail(format!("the parent's worker is {:?}", worker.state()));
    }
    let status = worker.terminate().unwrap();
    assert!(status.terminated(), "{status:?}");
    cases.check();
}

/// A pool of two threads, one running a task that waits on `gate` (returned with its handle),
/// the other idle.
fn pool_one_busy() -> (WorkerPool, TaskHandle<i32>, Int32Array) {
    busy(
        WorkerPool::builder()
            .min_threads(2)
            .max_threads(2)
            .build()
            .unwrap(),
    )
}

/// `pool` with a task running that waits on `gate` (returned with its handle).
fn busy(pool: WorkerPool) -> (WorkerPool, TaskHandle<i32>, Int32Array) {
    let gate = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let closed = gate.clone();
    let running = pool
        .run(move |_| {
            tx.send(()).unwrap();
            atomics::wait(&closed, 0, 0, None).unwrap();
            1
        })
        .unwrap();
    rx.recv().unwrap();
    (pool, running, gate)
}

/// Opens `gate` and checks the parent's pool still works: its running task finishes and a new
/// one runs.
fn pool_still_works(
    cases: &mut Cases,
    pool: &WorkerPool,
    running: TaskHandle<i32>,
    gate: &Int32Array,
) {
    atomics::store(gate, 0, 1).unwrap();
    atomics::notify(gate, 0, None).unwrap();
    match running.join() {
        Ok(1) => {}
        other => cases.fail(format!("the parent's running task: {other:?}")),
    }
    match pool.run(|_| 2).map(|handle| handle.join()) {
        Ok(Ok(2)) => {}
        other => cases.fail(format!("the parent's pool: {other:?}")),
    }
}

/// X7: a `WorkerPool` made before a fork (a task running, a thread idle), in the forked child:
/// submitting is refused with `ForkedHandle` (before the fix it was accepted for the idle
/// thread that is not there, and its join waited for ever), and so is `broadcast`, at once;
/// joining or awaiting a task submitted before the fork resolves `Err(ForkedHandle)` at once;
/// `map` works (the calling thread runs it all). The parent's pool is unharmed.
fn fork_pool_calls() {
    let (pool, running, gate) = pool_one_busy();
    let mut running = Some(running);
    let mut cases = Cases::default();
    cases.in_fork("run, then join", || match pool.run(|_| 2) {
        Err(PoolError::ForkedHandle(_)) => {}
        Ok(handle) => panic!("accepted; its join gave {:?}", handle.join()),
        Err(other) => panic!("{other:?}"),
    });
    cases.in_fork("join a task submitted before the fork", || {
        assert_eq!(running.take().unwrap().join(), Err(TaskError::ForkedHandle));
    });
    cases.in_fork("join_timeout", || {
        let handle = running.take().unwrap();
        assert_eq!(
            handle.join_timeout(TIMEOUT).ok(),
            Some(Err(TaskError::ForkedHandle))
        );
    });
    cases.in_fork("await", || {
        let handle = running.take().unwrap();
        assert_eq!(block_on(handle), Some(Err(TaskError::ForkedHandle)));
    });
    // `map` already worked: the calling thread runs every chunk no pool thread started.
    cases.in_fork("map", || {
        assert_eq!(pool.map(0..4, |x| x), Ok(vec![0, 1, 2, 3]));
    });
    cases.in_fork("broadcast", || {
        let refused = pool
            .broadcast(|_| 1)
            .map(|_| ())
            .map_err(PoolError::without_task);
        assert_eq!(refused, Err(PoolError::ForkedHandle(())));
    });
    pool_still_works(&mut cases, &pool, running.unwrap(), &gate);
    cases.check();
}

/// X7: ending a `WorkerPool` made before a fork, in the forked child: `close` returns
/// `Err(ForkedHandle)` at once and dropping it returns (both waited for ever for the parent's
/// threads), and a pool built in the child afterwards works. The parent's pool is unharmed.
fn fork_pool_ending() {
    let (pool, running, gate) = pool_one_busy();
    let mut pool = Some(pool);
    let mut cases = Cases::default();
    cases.in_fork("close", || {
        assert_eq!(
            pool.as_ref().unwrap().close(None),
            Err(CloseError::ForkedHandle)
        );
    });
    cases.in_fork("drop", || {
        drop(pool.take());
        let mine = WorkerPool::new().unwrap();
        assert_eq!(mine.run(|_| 3).unwrap().join(), Ok(3));
    });
    let pool = pool.unwrap();
    pool_still_works(&mut cases, &pool, running, &gate);
    pool.close(None).unwrap();
    cases.check();
}

/// X7: a `WorkerPool` made before a fork with a task queued behind a running one, in the
/// forked child: `wait_drained` answers `false` at once (it waited for ever for threads that are
/// not there), and joining the queued task resolves `Err(ForkedHandle)`. The parent's pool is
/// unharmed.
fn fork_pool_queued() {
    let (pool, running, gate) = busy(WorkerPool::builder().max_threads(1).build().unwrap());
    let mut queued = Some(pool.run(|_| 2).unwrap());
    let mut cases = Cases::default();
    cases.in_fork("wait_drained", || assert!(!pool.wait_drained(None)));
    cases.in_fork("join a queued task", || {
        assert_eq!(queued.take().unwrap().join(), Err(TaskError::ForkedHandle));
    });
    atomics::store(&gate, 0, 1).unwrap();
    atomics::notify(&gate, 0, None).unwrap();
    assert_eq!(running.join(), Ok(1));
    assert_eq!(queued.unwrap().join(), Ok(2));
    assert!(pool.wait_drained(None));
    cases.check();
}

/// Answers every number with the next, until its input is closed.
fn echo(ctx: ProcessContext<u32, u32>) -> Result<(), Error> {
    loop {
        match ctx.recv() {
            Ok(n) => ctx.post_message(&(n + 1))?,
            Err(Error::Closed) => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}
static ECHO: Entry<u32, u32> = Entry::new("echo", echo);

/// X7: a `ProcessWorker` made before a fork, in the forked child: every call that waits on
/// its child process or touches its rings — `recv_event` (waited for ever), `try_recv_event`,
/// `post_message` (posted into the parent's ring), `terminate` (signalled the parent's child
/// process), `join`, `disconnect` (closed its input) — returns `Err(ForkedHandle)` (or
/// nothing) at once, and dropping it neither kills the parent's child process nor closes its
/// rings. Each case forks from a parent with a fresh worker, which must still answer the
/// parent afterwards and end as it was asked to.
fn fork_process_worker() {
    /// A case: what the forked child does with the parent's handle.
    type Case = fn(&mut Option<ProcessWorker<u32, u32>>);
    let forked_cases: [(&str, Case); 7] = [
        ("recv_event", |worker| {
            let worker = worker.as_ref().unwrap();
            assert_eq!(worker.recv_event(), Err(forked("process worker")));
        }),
        ("recv_event_timeout, try_recv_event", |worker| {
            let worker = worker.as_ref().unwrap();
            let answer = worker.recv_event_timeout(TIMEOUT);
            assert_eq!(answer, Err(forked("process worker")));
            assert_eq!(worker.try_recv_event(), None);
            assert_eq!(worker.events().next(), None);
        }),
        ("post_message", |worker| {
            let worker = worker.as_ref().unwrap();
            assert_eq!(worker.post_message(&7), Err(forked("process worker")));
            assert_eq!(worker.try_post_message(&7), Err(forked("process worker")));
        }),
        ("terminate", |worker| {
            let worker = worker.as_ref().unwrap();
            assert_eq!(worker.terminate(), Err(forked("process worker")));
        }),
        ("join", |worker| {
            assert_eq!(
                worker.as_ref().unwrap().join_timeout(TIMEOUT),
                Err(forked("process worker"))
            );
            let worker = worker.take().unwrap();
            assert_eq!(worker.join(), Err(forked("process worker")));
        }),
        ("disconnect", |worker| worker.as_ref().unwrap().disconnect()),
        ("drop", |worker| drop(worker.take())),
    ];
    let mut cases = Cases::default();
    for (what, case) in forked_cases {
        let mut worker = Some(ProcessWorker::builder().spawn(&ECHO).unwrap());
        let theirs = worker.as_ref().unwrap();
        assert_eq!(theirs.recv_event().unwrap(), ProcessEvent::Online);
        cases.in_fork(what, || case(&mut worker));
        let theirs = worker.unwrap();
        let answer = theirs
            .post_message(&100)
            .and_then(|()| theirs.recv_event_timeout(BOUND));
        if answer != Ok(ProcessEvent::Message(101)) {
            cases.fail(format!(
                "after {what}, the parent's worker answered {answer:?}"
            ));
            continue; // dropping it kills it
        }
        theirs.disconnect();
        match theirs.join() {
            Ok(exit) if exit.success() => {}
            other => cases.fail(format!("after {what}, the parent's worker ended {other:?}")),
        }
    }
    cases.check();
}

const SCENARIOS: &[Scenario] = &[
    ("eintr_wait_private", wait_private),
    ("eintr_wait_memfd", wait_memfd),
    ("eintr_wait_file", wait_file),
    ("eintr_wait_async_private", wait_async_private),
    ("eintr_wait_async_memfd", wait_async_memfd),
    ("eintr_locks_private", locks_private),
    ("eintr_locks_memfd", locks_memfd),
    ("eintr_ports", ports),
    ("eintr_byte_ring", byte_ring),
    ("eintr_workers", workers),
    ("eintr_pool", pool),
    ("eintr_process_worker", process_worker),
    ("stopped_holder", stopped_holder),
    ("stopped_waiter", stopped_waiter),
    ("fork_timer", fork_timer),
    ("fork_bridge", fork_bridge),
    ("fork_worker", fork_worker),
    ("fork_pool_calls", fork_pool_calls),
    ("fork_pool_ending", fork_pool_ending),
    ("fork_pool_queued", fork_pool_queued),
    ("fork_process_worker", fork_process_worker),
];

fn main() {
    process::init(&[&SLOW_INCREMENT, &LOCK_HOLDER, &STOPPED_WAITER, &ECHO]);
    Runner {
        role: ROLE,
        watchdog: WATCHDOG,
        env: &[],
        before: install_handler,
    }
    .main(SCENARIOS);
}
