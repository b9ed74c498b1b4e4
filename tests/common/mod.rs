//! Helpers shared by the tests: knowing for sure that a thread is blocked in `atomics::wait`
//! (so that enqueue order and exact notify counts are deterministic), spawning many small-stack
//! threads, a minimal executor for `wait_async` futures, and a watchdog that turns a hang into
//! a test failure instead of a suite that never ends.
//!
//! There is no read-only probe of the waiter list, and polling `notify` would wake the waiters,
//! so "blocked" is established from outside: a waiter thread reports its kernel thread id just
//! before it calls `wait`, and the test then polls `/proc/self/task/<tid>/stat` until the
//! thread is asleep (state `S`). After its report the thread does nothing that can sleep but
//! `wait` itself, whose check-and-enqueue comes before its spin and its park: asleep means
//! enqueued. (An allocator or table lock contended at the wrong instant could put it to sleep
//! too; callers start waiters one at a time so there is nothing to contend with.)

#![allow(dead_code)]

use std::future::Future;
#[cfg(target_os = "linux")]
use std::io::Read;
use std::panic;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

#[cfg(target_os = "linux")]
use sharedbuf::{atomics, Error, TypedArray, WaitResult, Waitable};

/// How long a test waits for something that should take microseconds before it calls it a
/// hang. It detects a hang; it does not measure speed (the machine is shared and noisy).
/// Under Miri, which interprets every thread on one core about a thousand times slower, a
/// correct test's wait can take minutes of real time (a hang still fails on the run's time limit).
pub const WATCHDOG: Duration = Duration::from_secs(if cfg!(miri) { 900 } else { 20 });

/// Runs `f` on a helper thread and returns what it returns, or fails the test with "`what`
/// hung" if it has not finished within [`WATCHDOG`]. A panic in `f` is the test's panic. A hung
/// helper is left behind, detached: it ends with the test binary.
pub fn within_watchdog<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let helper = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(value) => {
            let _ = helper.join();
            value
        }
        Err(RecvTimeoutError::Timeout) => {
            panic!("{what} hung: not done after {WATCHDOG:?}")
        }
        Err(RecvTimeoutError::Disconnected) => match helper.join() {
            Err(payload) => panic::resume_unwind(payload),
            Ok(()) => unreachable!("the helper sends before it returns"),
        },
    }
}

/// As [`within_watchdog`], for long work that counts its progress in the counter `f` is given:
/// the test fails with "`what` hung" only when the counter has not moved for a whole
/// [`WATCHDOG`]. A loaded machine makes such work slow, not stuck (a million ring messages took
/// 27 s on an oversubscribed 2-core host, over the plain watchdog), while a lost wakeup still
/// stops the count and fails the test.
pub fn within_watchdog_of_progress<T: Send + 'static>(
    what: &str,
    f: impl FnOnce(&AtomicU64) -> T + Send + 'static,
) -> T {
    let progress = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::channel();
    let helper = {
        let progress = Arc::clone(&progress);
        thread::spawn(move || {
            let _ = tx.send(f(&progress));
        })
    };
    let mut seen = progress.load(Ordering::SeqCst);
    loop {
        match rx.recv_timeout(WATCHDOG) {
            Ok(value) => {
                let _ = helper.join();
                return value;
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = progress.load(Ordering::SeqCst);
                assert!(
                    now != seen,
                    "{what} hung: no progress for {WATCHDOG:?} (stuck at {now})"
                );
                seen = now;
            }
            Err(RecvTimeoutError::Disconnected) => match helper.join() {
                Err(payload) => panic::resume_unwind(payload),
                Ok(()) => unreachable!("the helper sends before it returns"),
            },
        }
    }
}

/// The next value on `rx`, or a test failure saying `what` hung if none comes within
/// [`WATCHDOG`] (or the sender is gone without sending).
pub fn recv_within<T>(rx: &mpsc::Receiver<T>, what: &str) -> T {
    match rx.recv_timeout(WATCHDOG) {
        Ok(value) => value,
        Err(RecvTimeoutError::Timeout) => panic!("{what} hung: not done after {WATCHDOG:?}"),
        Err(RecvTimeoutError::Disconnected) => {
            panic!("{what}: the thread that should report it is gone (did it panic?)")
        }
    }
}

/// Stack size for waiter threads: the storm runs 1,000 of them on a 2-core machine.
pub const SMALL_STACK: usize = 128 * 1024;

/// The calling thread's kernel thread id.
#[cfg(target_os = "linux")]
pub fn current_tid() -> libc::pid_t {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// The scheduler state letter of thread `tid` of this process (`R` running, `S` sleeping, …),
/// or `None` once the thread has exited.
#[cfg(target_os = "linux")]
pub fn thread_state(tid: libc::pid_t) -> Option<u8> {
    // Miri's interpreted threads have no `/proc` entry (the ids it gives are its own): a test
    // that needs this would read some other thread's state, or none.
    if cfg!(miri) {
        panic!("reads /proc: mark the test #[cfg_attr(miri, ignore = ...)]");
    }
    let path = format!("/proc/self/task/{tid}/stat");
    let mut stat = [0u8; 512];
    let n = std::fs::File::open(&path).ok()?.read(&mut stat).ok()?;
    // "tid (comm) S ...": the state follows the last ')' (comm may itself contain parens).
    let close = stat[..n].iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).copied()
}

/// Returns once thread `tid` is asleep (polling; the thread must be about to block), or gone
/// (its wait already returned, e.g. timed out on a very slow machine: callers check results).
#[cfg(target_os = "linux")]
pub fn wait_until_asleep(tid: libc::pid_t) {
    loop {
        match thread_state(tid) {
            Some(b'S') | None => return,
            Some(_) => thread::yield_now(),
        }
    }
}

/// Runs the tests of one binary one at a time: take it first thing in every test that learns
/// "this waiter is enqueued" from `/proc` ([`wait_until_asleep`]). Tests running in parallel
/// share the process's waiter table, so a waiter can sleep on a bucket lock another test holds
/// *before* it enqueues, look asleep, and be overtaken by the next waiter the test starts
/// (seen once: `a10_i32_and_i64_waiters_at_one_address` woke the i32 waiter first). Alone, a
/// test's waiter sleeps only where it waits.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Spawns a thread that reports its kernel thread id and then runs `f`; returns the handle and
/// the id once the thread is asleep (blocked in `f`) or finished.
#[cfg(target_os = "linux")]
pub fn spawn_asleep<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> (JoinHandle<T>, libc::pid_t) {
    let (tid_tx, tid_rx) = mpsc::sync_channel(1);
    let handle = thread::spawn(move || {
        tid_tx.send(current_tid()).unwrap();
        f()
    });
    let tid = tid_rx.recv().unwrap();
    wait_until_asleep(tid);
    (handle, tid)
}

/// Joins `handle`, failing the test if the thread has not finished within [`WATCHDOG`].
pub fn join_within<T: Send + 'static>(handle: JoinHandle<T>, what: &str) -> T {
    let start = std::time::Instant::now();
    while !handle.is_finished() {
        assert!(
            start.elapsed() < WATCHDOG,
            "{what} did not finish within {WATCHDOG:?}"
        );
        thread::sleep(Duration::from_millis(1)); // a watchdog's poll: no timing depends on it
    }
    handle.join().unwrap()
}

/// Waits (yielding) until `condition` holds; fails after [`WATCHDOG`] instead of hanging.
pub fn until(condition: impl Fn() -> bool, what: &str) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < WATCHDOG,
            "{what}: not within {WATCHDOG:?}"
        );
        thread::yield_now();
    }
}

/// A thread blocked in `atomics::wait` (or about to return from it).
#[cfg(target_os = "linux")]
pub struct Waiter {
    pub tid: libc::pid_t,
    pub handle: JoinHandle<Result<WaitResult, Error>>,
}

#[cfg(target_os = "linux")]
impl Waiter {
    pub fn join(self) -> Result<WaitResult, Error> {
        self.handle.join().expect("waiter thread panicked")
    }
}

/// Spawns a thread that calls `wait(view, index, expected, timeout)` and returns once that
/// thread is asleep, i.e. enqueued. Waiters started one after another with this helper are
/// therefore enqueued in that order.
#[cfg(target_os = "linux")]
pub fn spawn_blocked_waiter<T: Waitable>(
    view: &TypedArray<T>,
    index: usize,
    expected: T,
    timeout: Option<Duration>,
) -> Waiter {
    spawn_blocked(view, index, expected, timeout, |result| result)
}

/// As [`spawn_blocked_waiter`], with `then` run on the waiter thread as soon as `wait` returns
/// (e.g. to report wake order) and its result returned from the join.
#[cfg(target_os = "linux")]
pub fn spawn_blocked<T: Waitable>(
    view: &TypedArray<T>,
    index: usize,
    expected: T,
    timeout: Option<Duration>,
    then: impl FnOnce(Result<WaitResult, Error>) -> Result<WaitResult, Error> + Send + 'static,
) -> Waiter {
    spawn_blocked_after(view, index, expected, timeout, || (), then)
}

/// As [`spawn_blocked`], with `setup` run on the waiter thread before it waits (e.g. installing
/// interrupters); what `setup` returns (e.g. the guards) is kept until `wait` has returned.
/// `setup` must not block: the waiter counts as enqueued once its thread is asleep.
#[cfg(target_os = "linux")]
pub fn spawn_blocked_after<T: Waitable, S>(
    view: &TypedArray<T>,
    index: usize,
    expected: T,
    timeout: Option<Duration>,
    setup: impl FnOnce() -> S + Send + 'static,
    then: impl FnOnce(Result<WaitResult, Error>) -> Result<WaitResult, Error> + Send + 'static,
) -> Waiter {
    let view = view.clone();
    let (tid_tx, tid_rx) = mpsc::sync_channel(1);
    let handle = thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let kept = setup();
            tid_tx.send(current_tid()).unwrap();
            let result = then(atomics::wait(&view, index, expected, timeout));
            drop(kept);
            result
        })
        .expect("spawn waiter");
    let tid = tid_rx.recv().unwrap();
    wait_until_asleep(tid);
    Waiter { tid, handle }
}

/// A `then` for [`spawn_blocked`] that sends the result of `wait` on `results` as soon as it
/// returns, so a test can wait for it with [`recv_within`] instead of a join that could hang.
#[cfg(target_os = "linux")]
pub fn report_result(
    results: &mpsc::Sender<Result<WaitResult, Error>>,
) -> impl FnOnce(Result<WaitResult, Error>) -> Result<WaitResult, Error> + Send + 'static {
    let results = results.clone();
    move |result| {
        let _ = results.send(result.clone());
        result
    }
}

/// A `then` for [`spawn_blocked`] that sends `k` on `woken` as soon as the wait returns, so a
/// test can see which waiter a `notify` reached, and in what order.
#[cfg(target_os = "linux")]
pub fn report_woken(
    woken: &mpsc::Sender<usize>,
    k: usize,
) -> impl FnOnce(Result<WaitResult, Error>) -> Result<WaitResult, Error> + Send + 'static {
    let woken = woken.clone();
    move |result| {
        woken.send(k).unwrap();
        result
    }
}

/// Wakes the thread that is blocked in [`block_on`].
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// The smallest executor: polls `future` on this thread, parking between polls until its
/// waker is called. Returns the output and how many times the future was polled.
pub fn block_on<F: Future>(future: F) -> (F::Output, usize) {
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return (output, polls);
        }
        // A spurious unpark only costs an extra poll.
        thread::park();
    }
}

/// A waker that does nothing, for polling a future once by hand.
struct NoopWaker;

impl Wake for NoopWaker {
    fn wake(self: Arc<Self>) {}
}

/// Polls `future` once with a waker that does nothing.
pub fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(NoopWaker));
    std::pin::Pin::new(future).poll(&mut Context::from_waker(&waker))
}

/// Panics when woken, after reporting on `woken` that it was: a misbehaving executor.
struct PanickingWaker(mpsc::Sender<()>);

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        let _ = self.0.send(());
        panic!("this waker panics when woken (as the test wants)");
    }
}

/// A waker whose `wake` reports on `woken` and then panics.
pub fn panicking_waker(woken: mpsc::Sender<()>) -> Waker {
    Waker::from(Arc::new(PanickingWaker(woken)))
}
