//! Helpers shared by the wait/notify tests: knowing for sure that a thread is blocked in
//! `atomics::wait` (so that enqueue order and exact notify counts are deterministic), spawning
//! many small-stack threads, and a minimal executor for `wait_async` futures.
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
use std::io::Read;
use std::pin::pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use sharedbuf::{atomics, Error, TypedArray, WaitResult, Waitable};

/// Stack size for waiter threads: the storm runs 1,000 of them on a 2-core machine.
pub const SMALL_STACK: usize = 128 * 1024;

/// The calling thread's kernel thread id.
pub fn current_tid() -> libc::pid_t {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// The scheduler state letter of thread `tid` of this process (`R` running, `S` sleeping, …),
/// or `None` once the thread has exited.
pub fn thread_state(tid: libc::pid_t) -> Option<u8> {
    let path = format!("/proc/self/task/{tid}/stat");
    let mut stat = [0u8; 512];
    let n = std::fs::File::open(&path).ok()?.read(&mut stat).ok()?;
    // "tid (comm) S ...": the state follows the last ')' (comm may itself contain parens).
    let close = stat[..n].iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).copied()
}

/// Returns once thread `tid` is asleep (polling; the thread must be about to block), or gone
/// (its wait already returned, e.g. timed out on a very slow machine: callers check results).
pub fn wait_until_asleep(tid: libc::pid_t) {
    loop {
        match thread_state(tid) {
            Some(b'S') | None => return,
            Some(_) => thread::yield_now(),
        }
    }
}

/// A thread blocked in `atomics::wait` (or about to return from it).
pub struct Waiter {
    pub tid: libc::pid_t,
    pub handle: JoinHandle<Result<WaitResult, Error>>,
}

impl Waiter {
    pub fn join(self) -> Result<WaitResult, Error> {
        self.handle.join().expect("waiter thread panicked")
    }
}

/// Spawns a thread that calls `wait(view, index, expected, timeout)` and returns once that
/// thread is asleep, i.e. enqueued. Waiters started one after another with this helper are
/// therefore enqueued in that order.
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
pub fn spawn_blocked<T: Waitable>(
    view: &TypedArray<T>,
    index: usize,
    expected: T,
    timeout: Option<Duration>,
    then: impl FnOnce(Result<WaitResult, Error>) -> Result<WaitResult, Error> + Send + 'static,
) -> Waiter {
    let view = view.clone();
    let (tid_tx, tid_rx) = mpsc::sync_channel(1);
    let handle = thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            tid_tx.send(current_tid()).unwrap();
            then(atomics::wait(&view, index, expected, timeout))
        })
        .expect("spawn waiter");
    let tid = tid_rx.recv().unwrap();
    wait_until_asleep(tid);
    Waiter { tid, handle }
}

/// A `then` for [`spawn_blocked`] that sends `k` on `woken` as soon as the wait returns, so a
/// test can see which waiter a `notify` reached, and in what order.
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
