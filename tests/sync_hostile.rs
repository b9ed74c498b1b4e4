//! The `sync` primitives used as a hostile user would (docs/semantics.md S2, S3, S4, S6): wakers
//! that panic, futures polled after they finished, closures that panic or re-enter, timeouts at
//! the edges, and many threads hammering each primitive with random timeouts. Each test names
//! the fault it was written for; the ones marked "Fault:" failed before their fix.
//!
//! No test measures time: deadlines here only end waits, and hangs are caught by a watchdog
//! that fails the test with a message.

#![cfg(not(loom))]

mod common;
mod sync_support;

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::time::Duration;

use common::{block_on, panicking_waker, poll_once, within_watchdog_of_progress, SMALL_STACK};
use sharedbuf::sync::{
    Barrier, Condvar, Latch, LockFuture, Mutex, Once, RwLock, RwLockReadGuard, RwLockWriteGuard,
    Semaphore,
};
use sharedbuf::{atomics, Error, Int32Array, SharedBuffer, Uint32Array};
use sync_support::{spawn_blocked, taken};

/// The mutex's state word (see `src/sync/mutex.rs`): hold count in bits 0–1, `HEIR` = 4,
/// `WOKEN` = 8, `ASYNC` = 16, waiters from bit 5.
fn mutex_state(mutex: &Mutex) -> u32 {
    Uint32Array::with_range(mutex.buffer(), mutex.byte_offset(), Some(1))
        .unwrap()
        .get(0)
        .unwrap()
}

const HEIR: u32 = 4;
const WOKEN: u32 = 8;
const ASYNC: u32 = 16;
const WAITER: u32 = 32;

/// Fault: an unlock that found both a queued blocking waiter and a pending `lock_async` future
/// set the `WOKEN` baton, then woke the future's side word first; a waker that panicked there
/// unwound out of the unlock before it woke the blocking waiter, leaving the baton set with
/// nobody holding it: every later unlock saw `WOKEN` and woke nobody, and the blocked `lock`
/// slept for ever. Decided: the panic still propagates to the unlocking thread (the waiter
/// table's rule: every waiter taken is woken, then the first panic continues), but the queued
/// waiter is woken first, and gets the lock (S2: released means the next locker gets in).
// docs/semantics.md S2
#[test]
fn s2_a_panicking_lock_async_waker_does_not_strand_a_blocked_locker() {
    let buffer = SharedBuffer::new(16).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    // The blocked locker must be an ordinary queued waiter, not the heir (S5), which the
    // handoff serves whatever the side word's wake does: start over in the rare run where it
    // waited long enough to ask for the handoff before it slept.
    let (guard, waiter) = loop {
        let guard = mutex.lock().unwrap();
        let remote = mutex.clone();
        let waiter = spawn_blocked(move || remote.lock().map(drop).map_err(|e| e.to_string()));
        let state = mutex_state(&mutex);
        if state & HEIR == 0 {
            assert_eq!(state & !ASYNC, 1 + WAITER, "held, one queued waiter");
            break (guard, waiter);
        }
        drop(guard);
        waiter.join("the heir").unwrap();
    };
    let (woken_tx, woken_rx) = mpsc::channel();
    let waker = panicking_waker(woken_tx);
    let mut future = Box::pin(mutex.lock_async());
    assert!(future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    drop(waker);
    assert_ne!(
        mutex_state(&mutex) & ASYNC,
        0,
        "the future announced itself"
    );

    // The unlock wakes the future, whose waker panics on this thread.
    let unlocked = panic::catch_unwind(AssertUnwindSafe(move || drop(guard)));
    assert!(unlocked.is_err(), "the waker's panic reaches the unlocker");
    woken_rx.try_recv().expect("the future's waker was called");

    // The blocked locker gets the lock, and the future still resolves once it is free.
    waiter
        .join("the blocked locker after a panicking waker")
        .unwrap();
    let guard = match poll_once(&mut future) {
        Poll::Ready(guard) => guard.unwrap(),
        Poll::Pending => panic!("the free mutex was not taken by the woken future"),
    };
    drop(guard);
    assert_eq!(mutex_state(&mutex) & !WOKEN, 0);
    assert_eq!(mutex_state(&mutex), 0, "no baton left behind");
}

/// The environment variable that makes this binary run one scenario as a child process (for a
/// fault that aborts the process, which no in-process test can observe).
const CHILD: &str = "SHAREDBUF_SYNC_HOSTILE_CHILD";

/// Runs test `name` of this binary in a child process with [`CHILD`] set to `name`; returns
/// whether the child exited successfully, and its stderr.
fn run_as_child(name: &str) -> (bool, String) {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, name)
        .output()
        .expect("run this test binary as a child");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Fault: a thread that panicked while holding the mutex unlocked it from its guard's drop
/// during the unwind, and the unlock woke a pending `lock_async` future whose waker panicked:
/// a panic escaping a destructor during unwinding aborts the process. Decided: while the
/// unlocking thread is already unwinding, a waker's panic is caught and dropped (its message
/// has been printed by the panic hook); the future is woken all the same and gets the lock.
// docs/semantics.md S2
#[test]
fn s2_a_panicking_waker_does_not_abort_a_holder_that_is_unwinding() {
    const NAME: &str = "s2_a_panicking_waker_does_not_abort_a_holder_that_is_unwinding";
    if std::env::var(CHILD).as_deref() != Ok(NAME) {
        let (ok, stderr) = run_as_child(NAME);
        assert!(ok, "the child process failed (aborted?):\n{stderr}");
        return;
    }
    let buffer = SharedBuffer::new(16).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let (locked_tx, locked_rx) = mpsc::channel();
    let (pending_tx, pending_rx) = mpsc::channel::<()>();
    let holder = {
        let mutex = mutex.clone();
        std::thread::spawn(move || {
            panic::catch_unwind(AssertUnwindSafe(|| {
                let _guard = mutex.lock().unwrap();
                locked_tx.send(()).unwrap();
                pending_rx.recv().unwrap();
                panic!("the holder panics with the guard alive (as the test wants)");
            }))
            .is_err()
        })
    };
    locked_rx.recv().unwrap();
    let (woken_tx, woken_rx) = mpsc::channel();
    let waker = panicking_waker(woken_tx);
    let mut future = Box::pin(mutex.lock_async());
    assert!(future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    drop(waker);
    pending_tx.send(()).unwrap();
    assert!(holder.join().unwrap(), "the holder's own panic was caught");
    woken_rx.try_recv().expect("the future's waker was called");
    let guard = match poll_once(&mut future) {
        Poll::Ready(guard) => guard.unwrap(),
        Poll::Pending => panic!("the released mutex was not taken by the woken future"),
    };
    drop(guard);
    assert_eq!(mutex_state(&mutex), 0);
}

/// A small deterministic generator (xorshift), one per hammering thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    /// A timeout of 0 to 60 µs, zero one time in four.
    fn timeout(&mut self) -> Duration {
        match self.below(4) {
            0 => Duration::ZERO,
            _ => Duration::from_micros(self.below(60)),
        }
    }
}

/// Threads hammering a primitive at once: far more than the machine's cores, so that waits,
/// timeouts and wakes interleave in every way the scheduler finds.
const HAMMERS: usize = 64;

/// Runs `body(thread index, progress)` on [`HAMMERS`] threads started together and joins them,
/// failing the test if none of them makes progress for the watchdog's period (a lost wakeup),
/// not on slowness.
fn hammer(what: &'static str, body: impl Fn(usize, &AtomicU64) + Send + Sync + 'static) {
    let body = Arc::new(body);
    within_watchdog_of_progress(what, move |progress| {
        let start = std::sync::Barrier::new(HAMMERS);
        std::thread::scope(|scope| {
            for t in 0..HAMMERS {
                let (body, start) = (Arc::clone(&body), &start);
                std::thread::Builder::new()
                    .stack_size(SMALL_STACK)
                    .spawn_scoped(scope, move || {
                        start.wait();
                        body(t, progress)
                    })
                    .unwrap();
            }
        });
    });
}

/// Inside a critical section: give up the core now and then, so that on a machine with few
/// cores the other threads contend for the held primitive (a thread would otherwise often
/// finish its whole round within one time slice).
fn linger(rng: &mut Rng) {
    if rng.below(8) == 0 {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// Adds one to both cells of `pair`, a plain read and write each, checking they were equal: a
/// second thread inside the critical section at the same moment shows as a mismatch or a lost
/// update (S2).
fn bump(pair: &Int32Array, rng: &mut Rng) {
    let a = pair.get(0).unwrap();
    assert_eq!(pair.get(1).unwrap(), a, "two holders at once");
    linger(rng);
    pair.set(0, a + 1).unwrap();
    pair.set(1, a + 1).unwrap();
}

/// 64 threads lock one mutex every way there is — blocking, `try_lock`, timed with zero and
/// short timeouts, `lock_async` run to completion or dropped after its first poll (pending or
/// not), `lock_async` futures whose waker panics in whichever thread's release wakes them
/// (about 3,000 such panics a run, each caught where it lands), and condition-variable waits
/// with short timeouts racing `notify_one` / `notify_all`. (With the release waking the futures
/// before it passes the baton, as before the fix above, this hangs.)
/// Checks: mutual exclusion (a plain counter pair, every successful hold counted exactly
/// once), a notify never counts a waiter that then reports a timeout (S3, S4: the notifies'
/// counts are at most the waits that ended not timed out), and afterwards the mutex and the
/// condition variable are back to all-zero state words (no waiter left counted, no baton, no
/// stale flag).
// docs/semantics.md S2, S3 and S4
#[test]
fn s2_s3_s4_hammering_a_mutex_and_condvar_with_timeouts_and_dropped_futures() {
    const ROUNDS: u64 = 3_000;
    let buffer = SharedBuffer::new(64).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let condvar = Condvar::at(&buffer, 16).unwrap();
    let pair = Int32Array::with_range(&buffer, 32, Some(2)).unwrap();
    let holds = Arc::new(AtomicU64::new(0));
    let notified = Arc::new(AtomicU64::new(0));
    let not_timed_out = Arc::new(AtomicU64::new(0));
    let waker_panics = Arc::new(AtomicU64::new(0));
    {
        let (mutex, condvar, pair) = (mutex.clone(), condvar.clone(), pair.clone());
        let (holds, notified, not_timed_out) =
            (holds.clone(), notified.clone(), not_timed_out.clone());
        let waker_panics = waker_panics.clone();
        hammer("the mutex hammer", move |t, progress| {
            let mut rng = Rng::new(t as u64 + 1);
            let mut held = 0;
            for _ in 0..ROUNDS {
                // A hostile future's waker (below) panics in whichever thread's release wakes
                // it: any round may end in that panic, after its hold was counted.
                let round = panic::catch_unwind(AssertUnwindSafe(|| match rng.below(10) {
                    0 | 1 => {
                        let _guard = mutex.lock().unwrap();
                        bump(&pair, &mut rng);
                        held += 1;
                    }
                    2 => {
                        if let Some(_guard) = taken(mutex.try_lock()) {
                            bump(&pair, &mut rng);
                            held += 1;
                        }
                    }
                    3 => {
                        if let Some(_guard) = taken(mutex.try_lock_for(rng.timeout())) {
                            bump(&pair, &mut rng);
                            held += 1;
                        }
                    }
                    4 => {
                        let (guard, _) = block_on(mutex.lock_async());
                        let _guard = guard.unwrap();
                        bump(&pair, &mut rng);
                        held += 1;
                    }
                    5 => {
                        // Dropped after one poll: never registered, registered, or holding.
                        let mut future = Box::pin(mutex.lock_async());
                        if let Poll::Ready(guard) = poll_once(&mut future) {
                            let _guard = guard.unwrap();
                            bump(&pair, &mut rng);
                            held += 1;
                        }
                    }
                    6 => {
                        let guard = mutex.lock().unwrap();
                        let (guard, result) = condvar.wait_for(guard, rng.timeout()).unwrap();
                        if !result.timed_out() {
                            not_timed_out.fetch_add(1, SeqCst);
                        }
                        bump(&pair, &mut rng);
                        held += 1;
                        drop(guard);
                    }
                    7 => {
                        // Under the mutex (the waiters are moved onto it) or not (woken).
                        let guard = (rng.below(2) == 0).then(|| mutex.lock().unwrap());
                        let woke = if rng.below(2) == 0 {
                            condvar.notify_one()
                        } else {
                            condvar.notify_all()
                        };
                        notified.fetch_add(woke as u64, SeqCst);
                        drop(guard);
                    }
                    8 => {
                        // A future whose waker panics, left pending while this thread queues
                        // for the lock: the release that wakes both panics in its own thread
                        // (never stranding this one), and this thread gets the lock.
                        let (woken, _) = mpsc::channel();
                        let waker = panicking_waker(woken);
                        let mut future = Box::pin(mutex.lock_async());
                        let polled = future
                            .as_mut()
                            .poll(&mut std::task::Context::from_waker(&waker));
                        drop(polled); // a guard taken at once is released here
                        let _guard = mutex.lock().unwrap();
                        bump(&pair, &mut rng);
                        held += 1;
                    }
                    _ => std::thread::yield_now(),
                }));
                if let Err(payload) = round {
                    let message = payload.downcast_ref::<&str>().copied().unwrap_or_default();
                    if !message.starts_with("this waker panics") {
                        panic::resume_unwind(payload);
                    }
                    waker_panics.fetch_add(1, SeqCst);
                }
                progress.fetch_add(1, SeqCst);
            }
            holds.fetch_add(held, SeqCst);
        });
    }
    let holds = holds.load(SeqCst) as i32;
    assert_eq!(pair.to_vec(), [holds, holds], "every hold counted once");
    let (notified, not_timed_out) = (notified.load(SeqCst), not_timed_out.load(SeqCst));
    assert!(
        notified <= not_timed_out,
        "notifies counted {notified} waiters, but only {not_timed_out} waits ended not timed out"
    );
    assert_eq!(mutex_state(&mutex), 0, "mutex state word after the hammer");
    let condvar_words = Uint32Array::with_range(&buffer, 16, Some(2)).unwrap();
    assert_eq!(
        condvar_words.get(1),
        Some(0),
        "condvar waiters left counted"
    );
}

/// 64 threads read and write one `RwLock` with blocking, `try_` and timed calls (zero and
/// short timeouts): writers bump a plain counter pair, readers check it is never half done and
/// count themselves in and out beside the lock. Checks: no reader beside a writer, every write
/// counted once, and afterwards the state word is all zero (no waiter left counted, no read
/// phase left open, no writer).
// docs/semantics.md S2 and S3
#[test]
fn s2_s3_hammering_an_rwlock_with_timeouts() {
    const ROUNDS: u64 = 3_000;
    let buffer = SharedBuffer::new(64).unwrap();
    let lock = RwLock::at(&buffer, 0).unwrap();
    let pair = Int32Array::with_range(&buffer, 32, Some(2)).unwrap();
    let writes = Arc::new(AtomicU64::new(0));
    {
        let (lock, pair, writes) = (lock.clone(), pair.clone(), writes.clone());
        hammer("the rwlock hammer", move |t, progress| {
            let mut rng = Rng::new(t as u64 + 101);
            let mut written = 0;
            for _ in 0..ROUNDS {
                let timeout = rng.timeout();
                match rng.below(7) {
                    choice @ 0..=3 => {
                        let guard: Option<RwLockReadGuard<'_>> = match choice {
                            0 | 1 => Some(lock.read().unwrap()),
                            2 => taken(lock.try_read()),
                            _ => taken(lock.try_read_for(timeout)),
                        };
                        if let Some(_guard) = guard {
                            let a = pair.get(0).unwrap();
                            linger(&mut rng);
                            assert_eq!(pair.get(1).unwrap(), a, "a reader beside a writer");
                            assert_eq!(pair.get(0).unwrap(), a, "a writer beside a reader");
                        }
                    }
                    choice => {
                        let guard: Option<RwLockWriteGuard<'_>> = match choice {
                            4 => Some(lock.write().unwrap()),
                            5 => taken(lock.try_write()),
                            _ => taken(lock.try_write_for(timeout)),
                        };
                        if let Some(_guard) = guard {
                            bump(&pair, &mut rng);
                            written += 1;
                        }
                    }
                }
                progress.fetch_add(1, SeqCst);
            }
            writes.fetch_add(written, SeqCst);
        });
    }
    let writes = writes.load(SeqCst) as i32;
    assert_eq!(pair.to_vec(), [writes, writes], "every write counted once");
    let state = Uint32Array::with_range(&buffer, 0, Some(2))
        .unwrap()
        .to_vec();
    assert_eq!(state, [0, 0], "rwlock state word after the hammer");
}

/// 64 threads take 1–4 of 8 permits with `acquire`, `try_acquire` and timed acquires (zero
/// and short timeouts), several of them asking for all 8 at once so that a starving acquire
/// becomes the heir (S5) while others time out around it. Checks: never more than 8 permits
/// held at once, all 8 back afterwards, and no reservation left set.
// docs/semantics.md S3 and S5
#[test]
fn s3_s5_hammering_a_semaphore_with_timeouts_and_large_acquires() {
    const PERMITS: u32 = 8;
    // Fewer than the other hammers: the all-8 acquires serialize the semaphore behind them.
    const ROUNDS: u64 = 1_500;
    let buffer = SharedBuffer::new(4).unwrap();
    let semaphore = Semaphore::at(&buffer, 0).unwrap();
    semaphore.release(PERMITS).unwrap();
    let held = Arc::new(AtomicU64::new(0));
    {
        let (semaphore, held) = (semaphore.clone(), held.clone());
        hammer("the semaphore hammer", move |t, progress| {
            let mut rng = Rng::new(t as u64 + 201);
            for _ in 0..ROUNDS {
                let n = if t % 16 == 0 {
                    PERMITS
                } else {
                    1 + rng.below(4) as u32
                };
                let taken = match rng.below(4) {
                    0 | 1 => semaphore.acquire(n).map(|()| true),
                    2 => semaphore.try_acquire(n),
                    _ => semaphore.acquire_for(n, rng.timeout()),
                }
                .unwrap();
                if taken {
                    let now = held.fetch_add(u64::from(n), SeqCst) + u64::from(n);
                    assert!(now <= u64::from(PERMITS), "{now} permits held at once");
                    linger(&mut rng);
                    held.fetch_sub(u64::from(n), SeqCst);
                    semaphore.release(n).unwrap();
                }
                progress.fetch_add(1, SeqCst);
            }
        });
    }
    assert_eq!(semaphore.available(), PERMITS);
    let word = Uint32Array::with_range(&buffer, 0, Some(1)).unwrap().get(0);
    assert_eq!(
        word,
        Some(PERMITS << 2),
        "no reservation or waiter flag left set"
    );
}

/// One condition variable used with two mutexes at once (legal, if unusual): a notify under
/// both mutexes moves the waiters whose mutex is the oldest waiter's onto that mutex and wakes
/// the other, which then waits for its own mutex; both count, and each waiter returns holding
/// its own mutex once it is released (S4).
// docs/semantics.md S4
#[test]
fn s4_one_condvar_with_two_mutexes_notifies_both_waiters_each_onto_its_own_mutex() {
    let _serial = common::serial();
    let buffer = SharedBuffer::new(64).unwrap();
    let mutexes = [
        Mutex::at(&buffer, 0).unwrap(),
        Mutex::at(&buffer, 16).unwrap(),
    ];
    let condvar = Condvar::at(&buffer, 32).unwrap();
    let flag = Int32Array::with_range(&buffer, 40, Some(1)).unwrap();
    let waiters: Vec<_> = mutexes
        .iter()
        .map(|mutex| {
            let (mutex, condvar, flag) = (mutex.clone(), condvar.clone(), flag.clone());
            let (waiter, _) = common::spawn_asleep(move || {
                let guard = mutex.lock().unwrap();
                let guard = condvar
                    .wait_while(guard, |_| atomics::load(&flag, 0).unwrap() == 0)
                    .unwrap();
                // Held again, by this thread: its own mutex, not the other.
                assert_eq!(
                    guard.mutex().try_lock().unwrap_err(),
                    sharedbuf::Error::WouldDeadlock
                );
                guard.mutex().byte_offset()
            });
            waiter
        })
        .collect();
    let guards: Vec<_> = mutexes.iter().map(|m| m.lock().unwrap()).collect();
    atomics::store(&flag, 0, 1).unwrap();
    assert_eq!(condvar.notify_all(), 2, "both waiters counted");
    drop(guards);
    let offsets: Vec<_> = waiters
        .into_iter()
        .map(|w| common::join_within(w, "a waiter of the shared condvar"))
        .collect();
    assert_eq!(offsets, [0, 16]);
    for mutex in &mutexes {
        assert_eq!(mutex_state(mutex), 0, "mutex at {}", mutex.byte_offset());
    }
    assert_eq!(
        Uint32Array::with_range(&buffer, 36, Some(1))
            .unwrap()
            .get(0),
        Some(0)
    );
}

/// A waker that counts its wakes (by `wake` or `wake_by_ref`).
struct CountingWaker(AtomicU64);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn counting_waker() -> (Arc<CountingWaker>, std::task::Waker) {
    let counter = Arc::new(CountingWaker(AtomicU64::new(0)));
    (counter.clone(), std::task::Waker::from(counter))
}

/// `lock_async` futures polled with a different waker each time, and dropped after being woken
/// but before being polled again: a release wakes the latest waker only, and a woken future
/// that is dropped strands nobody — the other future, and a blocked locker queued behind them,
/// still get the lock (S2). Async waiters hold no baton, so there is nothing to pass on.
// docs/semantics.md S2
#[test]
fn s2_lock_async_futures_repolled_with_new_wakers_or_dropped_when_woken_strand_nobody() {
    let buffer = SharedBuffer::new(16).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let guard = mutex.lock().unwrap();
    let (old, old_waker) = counting_waker();
    let (new, new_waker) = counting_waker();
    let mut first = Box::pin(mutex.lock_async());
    let mut second = Box::pin(mutex.lock_async());
    let poll = |future: &mut Pin<Box<LockFuture<'_>>>, waker: &std::task::Waker| {
        future
            .as_mut()
            .poll(&mut std::task::Context::from_waker(waker))
            .map(|guard| guard.map(drop).map_err(|e| e.to_string()))
    };
    assert!(poll(&mut first, &old_waker).is_pending());
    assert!(
        poll(&mut first, &new_waker).is_pending(),
        "the same future, a new waker"
    );
    assert!(poll(&mut second, &old_waker).is_pending());
    let remote = mutex.clone();
    let blocked = spawn_blocked(move || remote.lock().map(drop).map_err(|e| e.to_string()));

    drop(guard); // wakes the blocked locker (the baton) and both futures
    blocked.join("the blocked locker").unwrap();
    assert_eq!(
        new.0.load(SeqCst),
        1,
        "the first future's latest waker was woken"
    );
    assert_eq!(
        old.0.load(SeqCst),
        1,
        "the second future's waker was woken, once"
    );
    drop(first); // woken, never polled again: it held nothing to hand on
    match poll(&mut second, &old_waker) {
        Poll::Ready(result) => result.unwrap(), // took the free lock and dropped its guard
        Poll::Pending => panic!("the free mutex was not taken by the woken future"),
    }
    assert_eq!(mutex_state(&mutex), 0);
}

/// A guard leaked with `mem::forget` in a private buffer is a lock held for ever (documented on
/// `Mutex`), never undefined behaviour: other threads' timed locks time out and leave no trace,
/// and the leaking thread's own relock is still refused as `WouldDeadlock`. A leaked pending
/// `lock_async` future only leaks its wait: the next release clears its flag.
// docs/semantics.md S2 and S3
#[test]
fn s2_s3_a_leaked_guard_keeps_the_lock_held_and_a_leaked_future_leaves_no_flag() {
    let buffer = SharedBuffer::new(32).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let guard = mutex.lock().unwrap();
    let mut future = Box::pin(mutex.lock_async());
    assert!(poll_once(&mut future).is_pending());
    std::mem::forget(future);
    assert_ne!(mutex_state(&mutex) & ASYNC, 0);
    drop(guard);
    assert_eq!(
        mutex_state(&mutex),
        0,
        "the release cleared the leaked future's flag"
    );

    std::mem::forget(mutex.lock().unwrap());
    assert_eq!(mutex.lock().unwrap_err(), sharedbuf::Error::WouldDeadlock);
    let remote = mutex.clone();
    let timed = std::thread::spawn(move || {
        remote
            .try_lock_for(Duration::from_millis(1))
            .map(|_guard| ())
            .map_err(|e| e.to_string())
    });
    assert_eq!(
        timed.join().unwrap(),
        Err(Error::WouldBlock.to_string()),
        "not taken in time"
    );
    assert_eq!(mutex_state(&mutex), 1, "held once, nobody left counted");
}

/// 64 threads pass one barrier of 24 parties with zero and short timeouts, so parties keep
/// withdrawing while generations complete around them (more threads than parties: any 24
/// arrivals make a generation). Checks: every generation lets exactly its 24 parties through
/// with one leader (passes = 24 × leaders: a withdrawn arrival is never counted, and a party
/// counted by a completed generation is never told it timed out), and afterwards no arrival is
/// left in the state word.
// docs/semantics.md S3
#[test]
fn s3_hammering_a_barrier_with_timeouts_counts_each_generation_exactly() {
    const PARTIES: u32 = 24;
    const ROUNDS: u64 = 1_000;
    let buffer = SharedBuffer::new(16).unwrap();
    let barrier = Barrier::at(&buffer, 0, PARTIES).unwrap();
    let passes = Arc::new(AtomicU64::new(0));
    let leaders = Arc::new(AtomicU64::new(0));
    {
        let (barrier, passes, leaders) = (barrier.clone(), passes.clone(), leaders.clone());
        hammer("the barrier hammer", move |t, progress| {
            let mut rng = Rng::new(t as u64 + 301);
            for _ in 0..ROUNDS {
                if let Some(result) = barrier.wait_for(rng.timeout()).unwrap() {
                    passes.fetch_add(1, SeqCst);
                    if result.is_leader() {
                        leaders.fetch_add(1, SeqCst);
                    }
                }
                progress.fetch_add(1, SeqCst);
            }
        });
    }
    let (passes, leaders) = (passes.load(SeqCst), leaders.load(SeqCst));
    assert_eq!(
        passes,
        u64::from(PARTIES) * leaders,
        "{passes} passes, {leaders} leaders"
    );
    let state = Uint32Array::with_range(&buffer, 0, Some(1))
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(state & 0xF_FFFF, 0, "arrivals left in the state word");
}

/// 64 threads race through a row of `Once`s with `call_once` / `call_once_force`, untimed or
/// with zero or short timeouts, their closures panicking one time in three. Checks, per `Once`:
/// never two closures running at once, exactly one closure that returned, none run after it,
/// and a call that returns `Ok(true)` finds the `Once` completed (S2's exactly-once, S3, S6's
/// poisoning: a plain call on a poisoned `Once` is `Err(Poisoned)`, a forced one may run).
// docs/semantics.md S3 and S6
#[test]
fn s3_s6_hammering_onces_with_timeouts_and_panicking_closures() {
    const ONCES: usize = 64;
    let buffer = SharedBuffer::new(ONCES * Once::BYTES).unwrap();
    let onces: Arc<Vec<Once>> = Arc::new(
        (0..ONCES)
            .map(|k| Once::at(&buffer, k * Once::BYTES).unwrap())
            .collect(),
    );
    let running: Arc<Vec<AtomicU64>> = Arc::new((0..ONCES).map(|_| AtomicU64::new(0)).collect());
    let completed: Arc<Vec<AtomicU64>> = Arc::new((0..ONCES).map(|_| AtomicU64::new(0)).collect());
    let violations = Arc::new(AtomicU64::new(0));
    {
        let (onces, running, completed) = (onces.clone(), running.clone(), completed.clone());
        let violations = violations.clone();
        hammer("the once hammer", move |t, progress| {
            let mut rng = Rng::new(t as u64 + 401);
            for (k, once) in onces.iter().enumerate() {
                let panics = rng.below(3) == 0;
                let body = || {
                    // Recorded, not asserted: the closure's own panic is caught below.
                    if running[k].fetch_add(1, SeqCst) != 0 {
                        violations.fetch_add(1, SeqCst); // two closures at once
                    }
                    if completed[k].load(SeqCst) != 0 {
                        violations.fetch_add(1, SeqCst); // a closure after completion
                    }
                    std::thread::yield_now();
                    running[k].fetch_sub(1, SeqCst);
                    if panics {
                        panic!("a closure that panics (as the test wants)");
                    }
                    completed[k].fetch_add(1, SeqCst);
                };
                let force = rng.below(2) == 0;
                // One call in three without a deadline: a run that ended without waking its
                // sleepers would leave those hanging (the watchdog).
                let timeout = (rng.below(3) != 0).then(|| rng.timeout());
                let outcome = panic::catch_unwind(AssertUnwindSafe(|| match (force, timeout) {
                    (true, Some(timeout)) => once.call_once_force_for(timeout, |_| body()),
                    (true, None) => once.call_once_force(|_| body()).map(|()| true),
                    (false, Some(timeout)) => once.call_once_for(timeout, body),
                    (false, None) => once.call_once(body).map(|()| true),
                }));
                match outcome {
                    Ok(Ok(true)) => assert!(once.is_completed()),
                    Ok(Ok(false)) => {}
                    Ok(Err(sharedbuf::Error::Poisoned)) => assert!(!force),
                    Ok(Err(error)) => panic!("unexpected {error:?}"),
                    Err(_) => assert!(panics, "only a panicking closure unwinds"),
                }
                progress.fetch_add(1, SeqCst);
            }
        });
    }
    assert_eq!(
        violations.load(SeqCst),
        0,
        "closures overlapped or ran after completion"
    );
    // Those left poisoned or unrun are completed by one more forced call each.
    for (k, once) in onces.iter().enumerate() {
        once.call_once_force(|_| {
            completed[k].fetch_add(1, SeqCst);
        })
        .unwrap();
        assert_eq!(
            completed[k].load(SeqCst),
            1,
            "Once {k} completed {} times",
            completed[k].load(SeqCst)
        );
    }
}

/// Fault: `Barrier`'s `clone` re-attached through `Barrier::at`, which checks the parties word
/// against the handle's parties and panicked ("a checked barrier stays valid") once that word
/// had been overwritten through a view. Overwritten bytes may break a primitive, never make our
/// code panic: a clone is the same handle again, with the parties it was made with, and only a
/// new attach reports the mismatch (S1).
// docs/semantics.md S1
#[test]
fn s1_cloning_a_barrier_whose_parties_word_was_overwritten_does_not_panic() {
    let buffer = SharedBuffer::new(16).unwrap();
    let barrier = Barrier::at(&buffer, 0, 1).unwrap();
    let parties = Uint32Array::with_range(&buffer, 8, Some(1)).unwrap();
    assert_eq!(parties.get(0), Some(1));
    parties.set(0, 7).unwrap(); // a hostile write into the barrier's bytes
    let clone = panic::catch_unwind(AssertUnwindSafe(|| barrier.clone()))
        .expect("cloning a handle panicked");
    assert_eq!(clone.parties(), 1);
    assert!(
        clone.wait().unwrap().is_leader(),
        "one party: always the leader"
    );
    assert!(matches!(
        Barrier::at(&buffer, 0, 1),
        Err(sharedbuf::Error::ParameterMismatch { .. })
    ));
}

/// Timeouts at the edges, on every primitive: `Duration::MAX` (no representable deadline:
/// waits as an untimed call, never an overflow panic), a deadline far in the future, and a
/// deadline already past (gives up at once, `Ok(None)` / `Ok(false)`, having taken nothing and
/// left nothing counted) (S3).
// docs/semantics.md S3
#[test]
fn s3_timeouts_at_the_edges_neither_panic_nor_leave_a_trace() {
    let buffer = SharedBuffer::new(128).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let condvar = Condvar::at(&buffer, 16).unwrap();
    let rwlock = RwLock::at(&buffer, 24).unwrap();
    let semaphore = Semaphore::at(&buffer, 48).unwrap();
    let latch = Latch::at(&buffer, 52).unwrap();
    let barrier = Barrier::at(&buffer, 64, 2).unwrap();
    let once = Once::at(&buffer, 80).unwrap();
    let past = std::time::Instant::now() - Duration::from_millis(1);
    let far = std::time::Instant::now()
        .checked_add(Duration::from_secs(1 << 32))
        .unwrap_or_else(|| std::time::Instant::now() + Duration::from_secs(1 << 20));

    // Free, available or done: every form succeeds at once.
    for timeout in [Duration::ZERO, Duration::MAX] {
        drop(mutex.try_lock_for(timeout).expect("free"));
        drop(rwlock.try_write_for(timeout).expect("free"));
        drop(rwlock.try_read_for(timeout).expect("free"));
        assert!(semaphore.acquire_for(0, timeout).unwrap());
        assert!(latch.wait_for(timeout).unwrap());
    }
    drop(mutex.try_lock_until(far).expect("free"));
    drop(rwlock.try_write_until(far).expect("free"));

    // Taken, empty or not done: a past deadline gives up at once and leaves no trace.
    let held = mutex.lock().unwrap();
    let written = rwlock.write().unwrap();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            assert!(mutex
                .try_lock_until(past)
                .is_err_and(|e| e == Error::WouldBlock));
            assert!(rwlock
                .try_read_until(past)
                .is_err_and(|e| e == Error::WouldBlock));
            assert!(rwlock
                .try_write_until(past)
                .is_err_and(|e| e == Error::WouldBlock));
        });
    });
    drop(written);
    drop(held);
    assert_eq!(mutex_state(&mutex), 0);
    let rwlock_state = Uint32Array::with_range(&buffer, 24, Some(2))
        .unwrap()
        .to_vec();
    assert_eq!(rwlock_state, [0, 0]);
    assert!(!semaphore.acquire_until(1, past).unwrap());
    let semaphore_word = Uint32Array::with_range(&buffer, 48, Some(1))
        .unwrap()
        .get(0);
    // No permits, no reservation; the waiting flag (bit 0) may be left stale (by design).
    assert_eq!(semaphore_word.map(|w| w & !1), Some(0));
    latch.count_up(1).unwrap();
    assert!(!latch.wait_until(past).unwrap());
    assert!(barrier.wait_until(past).unwrap().is_none(), "withdrawn");
    assert_eq!(
        Uint32Array::with_range(&buffer, 64, Some(1))
            .unwrap()
            .get(0),
        Some(0),
        "no arrival left"
    );
    assert!(!once.wait_until(past).unwrap());
    let guard = mutex.lock().unwrap();
    let (guard, result) = condvar.wait_until(guard, past).unwrap();
    assert!(result.timed_out());
    drop(guard);

    // Duration::MAX on a call that must wait: it waits for its partner, as an untimed call.
    let partner = {
        let (semaphore, latch, barrier) = (semaphore.clone(), latch.clone(), barrier.clone());
        spawn_blocked(move || {
            assert!(semaphore.acquire_for(1, Duration::MAX).unwrap());
            assert!(latch.wait_for(Duration::MAX).unwrap());
            barrier.wait_for(Duration::MAX).unwrap().is_some()
        })
    };
    semaphore.release(1).unwrap();
    latch.count_down().unwrap();
    assert!(barrier.wait().is_ok());
    assert!(partner.join("the Duration::MAX waiter"));
    assert!(once.call_once_for(Duration::MAX, || ()).unwrap());
    assert!(once.wait_for(Duration::MAX).unwrap());
}

/// A waker whose `clone` panics (the future stores a clone of the waker it is polled with):
/// the panic propagates out of `poll`, and the future is left in a state it can be polled from
/// again with another waker, or dropped; the mutex's other lockers never notice (S2).
// docs/semantics.md S2
#[test]
fn s2_a_waker_whose_clone_panics_leaves_the_lock_future_usable() {
    use std::task::{RawWaker, RawWakerVTable, Waker};
    fn clone(_: *const ()) -> RawWaker {
        panic!("this waker panics when cloned (as the test wants)");
    }
    fn noop(_: *const ()) {}
    static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, noop, noop, noop);
    // SAFETY: the vtable's functions ignore the data pointer, which is never dereferenced.
    let hostile = unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &VTABLE)) };

    let buffer = SharedBuffer::new(16).unwrap();
    let mutex = Mutex::at(&buffer, 0).unwrap();
    let guard = mutex.lock().unwrap();
    let mut future = Box::pin(mutex.lock_async());
    let mut dropped = Box::pin(mutex.lock_async());
    for future in [&mut future, &mut dropped] {
        let polled = panic::catch_unwind(AssertUnwindSafe(|| {
            future
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&hostile))
                .is_pending()
        }));
        assert!(polled.is_err(), "the clone's panic propagates");
    }
    drop(dropped);
    let (counter, good) = counting_waker();
    assert!(future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&good))
        .is_pending());
    let remote = mutex.clone();
    let blocked = spawn_blocked(move || remote.lock().map(drop).map_err(|e| e.to_string()));
    drop(guard);
    blocked
        .join("a blocked locker beside the hostile future")
        .unwrap();
    common::until(|| counter.0.load(SeqCst) > 0, "the good waker's wake");
    let result = future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(&good));
    assert!(matches!(result, Poll::Ready(Ok(_))), "the free mutex taken");
    drop(result);
    assert_eq!(mutex_state(&mutex), 0);
}

/// A leaked `RwLock` read guard keeps a reader counted: a timed writer gives up and leaves
/// nothing counted, and readers still share the lock; a leaked write guard shuts everyone out
/// and its thread's relock is `WouldDeadlock` (documented on `RwLock`; no undefined behaviour).
// docs/semantics.md S2 and S3
#[test]
fn s2_s3_leaked_rwlock_guards_keep_their_locks_and_timed_callers_give_up_cleanly() {
    let buffer = SharedBuffer::new(48).unwrap();
    let lock = RwLock::at(&buffer, 0).unwrap();
    std::mem::forget(lock.read().unwrap());
    assert_eq!(lock.reader_count(), 1);
    assert!(lock
        .try_write_for(Duration::from_millis(1))
        .is_err_and(|e| e == Error::WouldBlock));
    drop(lock.try_read().expect("readers still share it"));
    let state = Uint32Array::with_range(&buffer, 0, Some(2))
        .unwrap()
        .to_vec();
    assert_eq!(state, [1, 0], "one reader, nobody waiting");

    let other = RwLock::at(&buffer, 24).unwrap();
    std::mem::forget(other.write().unwrap());
    assert_eq!(other.read().unwrap_err(), sharedbuf::Error::WouldDeadlock);
    assert!(matches!(other.try_write(), Err(e) if e == sharedbuf::Error::WouldDeadlock));
    let remote = other.clone();
    let timed = std::thread::spawn(move || {
        let read = remote
            .try_read_for(Duration::from_millis(1))
            .is_err_and(|e| e == Error::WouldBlock);
        let write = remote
            .try_write_for(Duration::from_millis(1))
            .is_err_and(|e| e == Error::WouldBlock);
        read && write
    });
    assert!(timed.join().unwrap(), "both timed out");
    assert!(other.is_write_locked());
}

/// A party that panics before it arrives: with a timed wait the others give up and leave the
/// barrier and the latch as they were; with the arrival (`arrive_and_drop`, `count_down`) in a
/// drop guard, the unwind arrives for it and the others pass (the pattern the docs advise).
// docs/semantics.md S3
#[test]
fn s3_a_party_that_panics_before_arriving_is_only_missing() {
    let buffer = SharedBuffer::new(32).unwrap();
    let barrier = Barrier::at(&buffer, 0, 2).unwrap();
    let latch = Latch::at(&buffer, 16).unwrap();
    latch.count_up(1).unwrap();

    let panicked =
        std::thread::spawn(|| panic!("a party panics before arriving (as the test wants)"));
    assert!(panicked.join().is_err());
    assert!(barrier
        .wait_for(Duration::from_millis(1))
        .unwrap()
        .is_none());
    assert!(!latch.wait_for(Duration::from_millis(1)).unwrap());
    assert_eq!(
        Uint32Array::with_range(&buffer, 0, Some(1)).unwrap().get(0),
        Some(0)
    );
    assert_eq!(latch.count(), 1);

    struct Arrives(Barrier, Latch);
    impl Drop for Arrives {
        fn drop(&mut self) {
            self.0.arrive_and_drop().unwrap();
            self.1.count_down().unwrap();
        }
    }
    let guarded = Arrives(barrier.clone(), latch.clone());
    let waiter = {
        let (barrier, latch) = (barrier.clone(), latch.clone());
        spawn_blocked(move || (barrier.wait().unwrap().is_leader(), latch.wait().is_ok()))
    };
    let panicked = std::thread::spawn(move || {
        let _arrives = guarded;
        panic!("a guarded party panics before arriving (as the test wants)");
    });
    assert!(panicked.join().is_err());
    assert_eq!(waiter.join("the other party"), (false, true));
    assert_eq!(barrier.expected(), 1, "the panicked party left the barrier");
}
