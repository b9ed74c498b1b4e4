//! Garbage in the sync primitives' words (docs/semantics.md S7): a buggy or hostile peer, or a
//! stray write through a view, scribbles over a primitive's bytes — before it is attached,
//! while it is idle, or while another thread holds it or waits on it. Every call must then
//! return (timed ones by their deadline) without a panic of ours, an untimed call may wait
//! while the garbage looks held but must sleep, not spin a core, and the primitive works
//! again once well-formed bytes are written back. Tests marked "Fault:" failed before their fix.
//!
//! No test measures time: deadlines only end waits, and hangs are caught by a watchdog.

#![cfg(all(not(loom), target_os = "linux"))]

mod common;
mod sync_support;

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{current_tid, thread_state};
use sharedbuf::sync::{Barrier, Condvar, Latch, Mutex, Once, RwLock, Semaphore};
use sharedbuf::{atomics, Error, Int32Array, SharedBuffer, Uint32Array};
use sync_support::{spawn, spawn_blocked, terminate_while_blocked, WATCHDOG};

/// A short deadline for timed calls on garbage.
const SHORT: Duration = Duration::from_millis(5);
/// How long a waiter in the "while held or waited on" cases waits.
const WAITER: Duration = Duration::from_millis(30);
/// Every buffer here holds one primitive at offset 0 and a mutex at 16 (the condvar's).
const BYTES: usize = 32;

/// Writes `value` into 32-bit word `slot` of `buffer` (a 64-bit word is two slots, low first).
fn write(buffer: &SharedBuffer, slot: usize, value: u32) {
    let words = Uint32Array::with_range(buffer, 0, Some(BYTES / 4)).unwrap();
    words.set(slot, value).unwrap();
}

/// Garbage to write: (slot, value) pairs.
type Pattern = Vec<(usize, u32)>;

fn scribble(buffer: &SharedBuffer, pattern: &Pattern) {
    for &(slot, value) in pattern {
        write(buffer, slot, value);
    }
}

fn zero(buffer: &SharedBuffer, slots: usize) {
    for slot in 0..slots {
        write(buffer, slot, 0);
    }
}

/// xorshift64 with a fixed seed: the same "random" garbage every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as u32
    }
}

/// All ones everywhere; in each slot alone: all ones, all ones but the low bits (the flags of
/// most words), the top bit, values just past the fields' maxima (a 20- and 22-bit count, a
/// 27-bit waiter count), random values; and random values in every slot at once.
fn patterns(slots: usize) -> Vec<Pattern> {
    let mut random = Random(0x5eed_1234_5678_9abc);
    let mut all = vec![(0..slots).map(|slot| (slot, u32::MAX)).collect::<Pattern>()];
    let values = [
        u32::MAX,
        u32::MAX - 1,
        0xffff_ffe0,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_0000,
        0x0000_ffff,
        0x0010_0000,
        0x0040_0000,
        0x0080_0000,
        0x0800_0000,
    ];
    for slot in 0..slots {
        all.extend(values.iter().map(|&value| vec![(slot, value)]));
        all.extend((0..4).map(|_| vec![(slot, random.next())]));
    }
    all.extend((0..12).map(|_| (0..slots).map(|slot| (slot, random.next())).collect()));
    all
}

fn buffer(shared: bool) -> SharedBuffer {
    if shared {
        SharedBuffer::memfd("sync-garbage", BYTES).unwrap()
    } else {
        SharedBuffer::new(BYTES).unwrap()
    }
}

/// Runs `call` on a thread of its own: `Err` naming the case if it panicked or did not return
/// within the watchdog.
fn returns(case: &str, call: impl FnOnce() + Send + 'static) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let outcome = panic::catch_unwind(AssertUnwindSafe(call));
        let _ = tx.send(outcome.err().map(|payload| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        }));
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(None) => Ok(()),
        Ok(Some(message)) => Err(format!("{case}: panicked: {message}")),
        Err(_) => Err(format!("{case}: no return within {WATCHDOG:?}")),
    }
}

/// Runs `use_it` on every pattern, private and process-shared, (a) written before the attach,
/// (b) written while idle after a first use, and `busy` on every pattern, which writes it while
/// another thread holds or waits; collects every panic or hang.
fn sweep(name: &str, slots: usize, use_it: fn(&SharedBuffer), busy: fn(&SharedBuffer, &Pattern)) {
    let mut faults = Vec::new();
    for shared in [false, true] {
        for (index, pattern) in patterns(slots).into_iter().enumerate() {
            let case = format!("{name}, shared {shared}, pattern {index} {pattern:x?}");
            let before = buffer(shared);
            scribble(&before, &pattern);
            faults.extend(returns(&format!("{case}, before at"), move || use_it(&before)).err());
            let idle = buffer(shared);
            use_it(&idle);
            scribble(&idle, &pattern);
            faults.extend(returns(&format!("{case}, idle"), move || use_it(&idle)).err());
            let held = buffer(shared);
            faults.extend(returns(&format!("{case}, busy"), move || busy(&held, &pattern)).err());
        }
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}

/// Lets a thread just started reach its wait (only makes the race likely; correct either way).
fn settle() {
    thread::sleep(Duration::from_millis(2));
}

fn mutex_use(buffer: &SharedBuffer) {
    let mutex = Mutex::at(buffer, 0).unwrap();
    let _ = mutex.is_locked();
    let _ = mutex.try_lock().map(drop);
    let _ = mutex.try_lock_for(SHORT).map(drop);
    drop(mutex.lock_async());
    zero(buffer, 4);
    drop(
        mutex
            .try_lock()
            .expect("a mutex written back to zero is free"),
    );
}

fn mutex_busy(buffer: &SharedBuffer, pattern: &Pattern) {
    let mutex = Mutex::at(buffer, 0).unwrap();
    let guard = mutex.lock().unwrap();
    let other = mutex.clone();
    let waiter = spawn(move || drop(other.try_lock_for(WAITER).map(drop)));
    settle();
    scribble(buffer, pattern);
    drop(guard);
    waiter.join("a mutex waiter on garbage");
    zero(buffer, 4);
    drop(
        mutex
            .try_lock()
            .expect("a mutex written back to zero is free"),
    );
}

fn rwlock_use(buffer: &SharedBuffer) {
    let lock = RwLock::at(buffer, 0).unwrap();
    let _ = (lock.reader_count(), lock.is_write_locked());
    let _ = lock.try_read().map(drop);
    let _ = lock.try_read_for(SHORT).map(drop);
    let _ = lock.try_write().map(drop);
    let _ = lock.try_write_for(SHORT).map(drop);
    zero(buffer, 6);
    assert!(lock.try_write().is_ok(), "zeroed: free to write");
    assert!(lock.try_read().is_ok(), "zeroed: free to read");
}

fn rwlock_busy(buffer: &SharedBuffer, pattern: &Pattern) {
    let lock = RwLock::at(buffer, 0).unwrap();
    let reader = lock.read().unwrap();
    let other = lock.clone();
    let writer = spawn(move || drop(other.try_write_for(WAITER).map(drop)));
    settle();
    scribble(buffer, pattern);
    drop(reader);
    writer.join("a writer waiting on garbage");
    zero(buffer, 6);
    let guard = lock.write().unwrap();
    let other = lock.clone();
    let reader = spawn(move || drop(other.try_read_for(WAITER).map(drop)));
    settle();
    scribble(buffer, pattern);
    drop(guard);
    reader.join("a reader waiting on garbage");
    zero(buffer, 6);
    assert!(lock.try_write().is_ok(), "zeroed: free to write");
}

fn semaphore_use(buffer: &SharedBuffer) {
    let semaphore = Semaphore::at(buffer, 0).unwrap();
    let _ = semaphore.available();
    let _ = semaphore.try_acquire(1);
    let _ = semaphore.acquire_for(1, SHORT);
    let _ = semaphore.acquire_for(u32::MAX, SHORT);
    let _ = semaphore.release(1);
    let _ = semaphore.release(u32::MAX);
    zero(buffer, 1);
    semaphore.release(1).unwrap();
    assert!(semaphore.try_acquire(1).unwrap(), "zeroed, then released");
}

fn semaphore_busy(buffer: &SharedBuffer, pattern: &Pattern) {
    let semaphore = Semaphore::at(buffer, 0).unwrap();
    let other = semaphore.clone();
    let waiter = spawn(move || drop(other.acquire_for(1, WAITER)));
    settle();
    scribble(buffer, pattern);
    let _ = semaphore.release(1);
    waiter.join("an acquire waiting on garbage");
    semaphore_use(buffer);
}

fn barrier_use(buffer: &SharedBuffer) {
    // Garbage parties refuse the attach (ParameterMismatch); the state is used as it is.
    let barrier = Barrier::at(buffer, 0, 2).or_else(|_| {
        write(buffer, 2, 0);
        Barrier::at(buffer, 0, 2)
    });
    let barrier = barrier.unwrap();
    let _ = (barrier.parties(), barrier.expected());
    let _ = barrier.wait_for(SHORT);
    let _ = barrier.arrive_and_drop();
    let _ = barrier.wait_for(SHORT);
    zero(buffer, 4);
    let single = Barrier::at(buffer, 0, 1).unwrap();
    assert!(
        single.wait_for(WATCHDOG).unwrap().is_some(),
        "zeroed: passes"
    );
}

fn barrier_busy(buffer: &SharedBuffer, pattern: &Pattern) {
    let barrier = Barrier::at(buffer, 0, 3).unwrap();
    let other = barrier.clone();
    let waiter = spawn(move || drop(other.wait_for(WAITER)));
    settle();
    let state_only: Pattern = pattern.iter().copied().filter(|&(s, _)| s != 2).collect();
    scribble(buffer, &state_only);
    let _ = barrier.arrive_and_drop();
    let _ = barrier.wait_for(SHORT);
    waiter.join("a party waiting on garbage");
    zero(buffer, 4);
    let single = Barrier::at(buffer, 0, 1).unwrap();
    assert!(
        single.wait_for(WATCHDOG).unwrap().is_some(),
        "zeroed: passes"
    );
}

fn latch_use(buffer: &SharedBuffer) {
    let latch = Latch::at(buffer, 0).unwrap();
    let _ = latch.count();
    let _ = latch.wait_for(SHORT);
    let _ = latch.count_up(1);
    let _ = latch.count_down();
    let _ = latch.count_down();
    let _ = latch.count_up(u32::MAX);
    let _ = latch.wait_for(SHORT);
    zero(buffer, 2);
    latch.count_up(1).unwrap();
    latch.count_down().unwrap();
    assert!(latch.wait_for(SHORT).unwrap(), "zeroed, up, down: open");
}

fn latch_busy(buffer: &SharedBuffer, pattern: &Pattern) {
    let latch = Latch::at(buffer, 0).unwrap();
    latch.count_up(1).unwrap();
    let other = latch.clone();
    let waiter = spawn(move || drop(other.wait_for(WAITER)));
    settle();
    scribble(buffer, pattern);
    let _ = latch.count_down();
    waiter.join("a latch waiter on garbage");
    latch_use(buffer);
}

fn once_use(buffer: &SharedBuffer) {
    let once = Once::at(buffer, 0).unwrap();
    let _ = (once.is_completed(), once.is_poisoned());
    let _ = once.wait_for(SHORT);
    let _ = once.call_once_for(SHORT, || {});
    let _ = once.call_once_force_for(SHORT, |_| {});
    let _ = once.wait_for(SHORT);
    zero(buffer, 4);
    let mut ran = false;
    once.call_once_for(SHORT, || ran = true).unwrap();
    assert!(ran, "zeroed: runs");
}

fn once_busy(buffer: &SharedBuffer, pattern: &Pattern) {
    let once = Once::at(buffer, 0).unwrap();
    let (other, bytes, garbage) = (once.clone(), buffer.clone(), pattern.clone());
    let _ = once.call_once_for(SHORT, move || {
        let waiter = spawn(move || drop(other.wait_for(WAITER)));
        settle();
        scribble(&bytes, &garbage);
        waiter.join("a once waiter on garbage");
    });
    let _ = once.wait_for(SHORT);
    zero(buffer, 4);
    let mut ran = false;
    once.call_once_for(SHORT, || ran = true).unwrap();
    assert!(ran, "zeroed: runs");
}

fn condvar_use(buffer: &SharedBuffer) {
    let condvar = Condvar::at(buffer, 0).unwrap();
    let mutex = Mutex::at(buffer, 16).unwrap();
    let _ = (
        condvar.notify_one(),
        condvar.notify_all(),
        condvar.notify(usize::MAX),
    );
    let guard = mutex.lock().unwrap();
    drop(condvar.wait_for(guard, SHORT).unwrap());
    zero(buffer, 2);
    let guard = mutex.lock().unwrap();
    let (_guard, result) = condvar.wait_for(guard, SHORT).unwrap();
    assert!(result.timed_out(), "nobody notified");
}

fn condvar_busy(buffer: &SharedBuffer, pattern: &Pattern) {
    let condvar = Condvar::at(buffer, 0).unwrap();
    let mutex = Mutex::at(buffer, 16).unwrap();
    let (other, lock) = (condvar.clone(), mutex.clone());
    let waiter = spawn(move || drop(other.wait_for(lock.lock().unwrap(), WAITER)));
    settle();
    scribble(buffer, pattern);
    let _ = condvar.notify_all();
    waiter.join("a condvar waiter on garbage");
    condvar_use(buffer);
}

// docs/semantics.md S7
#[test]
fn s7_garbage_in_a_mutex() {
    sweep("Mutex", 4, mutex_use, mutex_busy);
}

// docs/semantics.md S7
#[test]
fn s7_garbage_in_an_rwlock() {
    sweep("RwLock", 6, rwlock_use, rwlock_busy);
}

// docs/semantics.md S7
#[test]
fn s7_garbage_in_a_semaphore() {
    sweep("Semaphore", 1, semaphore_use, semaphore_busy);
}

// docs/semantics.md S7
#[test]
fn s7_garbage_in_a_barrier() {
    sweep("Barrier", 4, barrier_use, barrier_busy);
}

// docs/semantics.md S7
#[test]
fn s7_garbage_in_a_latch() {
    sweep("Latch", 2, latch_use, latch_busy);
}

// docs/semantics.md S7
#[test]
fn s7_garbage_in_a_once() {
    sweep("Once", 4, once_use, once_busy);
}

// docs/semantics.md S7
#[test]
fn s7_garbage_in_a_condvar() {
    sweep("Condvar", 2, condvar_use, condvar_busy);
}

/// Whether thread `tid` is seen asleep before the watchdog runs out. A thread that polls with
/// `yield_now` is always runnable, never asleep.
fn asleep_within_watchdog(tid: libc::pid_t) -> bool {
    let end = Instant::now() + WATCHDOG;
    while Instant::now() < end {
        match thread_state(tid) {
            Some(b'S') | None => return true,
            _ => thread::yield_now(),
        }
    }
    false
}

/// Starts `block` (an untimed call on garbage that looks held) on a thread of its own, checks
/// that it sleeps rather than spins, writes zeros back, and checks that it then returns.
fn sleeps_on_garbage_then_returns_once_zeroed(
    what: &str,
    shared: bool,
    slots: usize,
    pattern: Pattern,
    block: fn(&SharedBuffer) -> bool,
) {
    let buffer = buffer(shared);
    scribble(&buffer, &pattern);
    let (tid_tx, tid_rx) = mpsc::channel();
    let bytes = buffer.clone();
    let blocked = spawn(move || {
        tid_tx.send(current_tid()).unwrap();
        block(&bytes)
    });
    let tid = tid_rx.recv().unwrap();
    let asleep = asleep_within_watchdog(tid);
    zero(&buffer, slots);
    let returned = blocked.join(what);
    assert!(
        asleep,
        "{what} (shared: {shared}) spun on garbage instead of sleeping"
    );
    assert!(returned, "{what} (shared: {shared}) got it once zeroed");
}

/// Fault: a `Mutex` waiter that could not be counted (state above the 2^27-waiter limit —
/// garbage such as all ones) polled the word with `yield_now` and nothing else: an untimed
/// `lock` on such garbage spun a core for as long as the garbage stayed.
// docs/semantics.md S7
#[test]
fn s7_an_untimed_mutex_lock_on_garbage_sleeps_and_takes_it_once_zeroed() {
    for shared in [false, true] {
        sleeps_on_garbage_then_returns_once_zeroed(
            "Mutex::lock on an all-ones state",
            shared,
            4,
            vec![(0, u32::MAX)],
            |buffer| Mutex::at(buffer, 0).unwrap().lock().is_ok(),
        );
    }
}

/// Fault: `RwLock` readers that could not be counted (all waiting-reader bits set, or all
/// reader bits) polled with `yield_now` only: an untimed `read` spun a core.
// docs/semantics.md S7
#[test]
fn s7_an_untimed_read_on_garbage_sleeps_and_reads_once_zeroed() {
    for shared in [false, true] {
        sleeps_on_garbage_then_returns_once_zeroed(
            "RwLock::read on an all-ones state",
            shared,
            6,
            vec![(0, u32::MAX), (1, u32::MAX)],
            |buffer| RwLock::at(buffer, 0).unwrap().read().is_ok(),
        );
    }
}

/// Fault: `RwLock` writers that could not be counted (all waiting-writer bits set) polled
/// with `yield_now` only: an untimed `write` spun a core.
// docs/semantics.md S7
#[test]
fn s7_an_untimed_write_on_garbage_sleeps_and_writes_once_zeroed() {
    for shared in [false, true] {
        sleeps_on_garbage_then_returns_once_zeroed(
            "RwLock::write on an all-ones state",
            shared,
            6,
            vec![(0, u32::MAX), (1, u32::MAX)],
            |buffer| RwLock::at(buffer, 0).unwrap().write().is_ok(),
        );
    }
}

/// An owner word that names a live thread (this process's main thread, with no recorded start
/// time: `src/sync/owner.rs`), as low and high 32-bit halves: garbage that looks held by a
/// live holder in a process-shared buffer (X3 never takes over from the living).
fn live_looking_identity() -> (u32, u32) {
    const UNKNOWN_START: u64 = (1 << 41) - 2;
    let pid = u64::from(std::process::id());
    let identity = (UNKNOWN_START << 22) | pid;
    (identity as u32, (identity >> 32) as u32)
}

/// Garbage owner words that look held by a live holder, for a primitive whose owner word is
/// at slots 2 and 3, beside a state `state` at slot 0.
fn held_by_the_living(state: u32) -> Pattern {
    let (low, high) = live_looking_identity();
    vec![(0, state), (2, low), (3, high)]
}

/// Fault: a process-shared `Once` whose owner word named a live thread while its state said
/// nobody runs the closure (garbage, or a claim whose holder was stopped) made `call_once`
/// loop on `yield_now` without looking at its deadline: `call_once_for` never returned (and
/// the untimed form spun a core).
// docs/semantics.md S7, S3
#[test]
fn s7_a_timed_call_once_on_a_live_looking_claim_returns_by_its_deadline() {
    let buffer = buffer(true);
    scribble(&buffer, &held_by_the_living(0));
    let once = Once::at(&buffer, 0).unwrap();
    let timed = spawn(move || once.call_once_for(SHORT, || {}));
    assert_eq!(
        timed.join("Once::call_once_for on a claimed owner word"),
        Ok(false)
    );
}

// docs/semantics.md S7
#[test]
fn s7_an_untimed_call_once_on_a_live_looking_claim_sleeps_and_runs_once_zeroed() {
    sleeps_on_garbage_then_returns_once_zeroed(
        "Once::call_once on a claimed owner word",
        true,
        4,
        held_by_the_living(0),
        |buffer| Once::at(buffer, 0).unwrap().call_once(|| {}).is_ok(),
    );
}

/// Fault: an untimed call polling on garbage (above) slept between looks in a plain
/// `thread::sleep`, which no interrupter reaches: inside a worker it ignored `terminate()`
/// (S6), and `terminate()` itself never returned. Each poll case, private and process-shared,
/// must return `Err(Terminated)` instead.
// docs/semantics.md S6, S7
#[test]
fn s6_a_worker_polling_on_garbage_is_terminated() {
    type Block = fn(&SharedBuffer) -> Result<(), Error>;
    fn lock(b: &SharedBuffer) -> Result<(), Error> {
        Mutex::at(b, 0)?.lock().map(drop)?;
        Ok(())
    }
    fn read(b: &SharedBuffer) -> Result<(), Error> {
        RwLock::at(b, 0)?.read().map(drop)?;
        Ok(())
    }
    fn write(b: &SharedBuffer) -> Result<(), Error> {
        RwLock::at(b, 0)?.write().map(drop)?;
        Ok(())
    }
    let all_ones = vec![(0, u32::MAX), (1, u32::MAX)];
    // (what, in which buffers, the garbage, the call). A process-shared `Mutex` does not
    // poll: it sleeps in slices (X3).
    let cases: [(&str, &[bool], Pattern, Block); 5] = [
        ("Mutex::lock, all ones", &[false], all_ones.clone(), lock),
        (
            "RwLock::read, all ones",
            &[false, true],
            all_ones.clone(),
            read,
        ),
        ("RwLock::write, all ones", &[false, true], all_ones, write),
        (
            "RwLock::write, a live-looking claim",
            &[true],
            held_by_the_living(0),
            write,
        ),
        (
            "Once::call_once, a live-looking claim",
            &[true],
            held_by_the_living(0),
            |b| Once::at(b, 0)?.call_once(|| {}),
        ),
    ];
    for (what, buffers, pattern, block) in cases {
        for &shared in buffers {
            let buffer = buffer(shared);
            scribble(&buffer, &pattern);
            let bytes = buffer.clone();
            let result = terminate_while_blocked(move || block(&bytes));
            assert_eq!(result, Err(Error::Terminated), "{what} (shared: {shared})");
        }
    }
}

/// Already right (checked here): a process-shared `Mutex` or `RwLock` whose owner word names a
/// live thread waits for it as for a real holder, asleep in slices (X3), and its timed forms
/// return by their deadline.
// docs/semantics.md S7, X3
#[test]
fn s7_live_looking_holders_of_a_mutex_and_an_rwlock_are_waited_for_asleep() {
    let (low, high) = live_looking_identity();
    let mutex = buffer(true);
    scribble(&mutex, &vec![(2, low), (3, high)]);
    let timed = Mutex::at(&mutex, 0).unwrap();
    let timed = spawn(move || timed.try_lock_for(SHORT).is_ok());
    assert!(!timed.join("Mutex::try_lock_for on a live-looking holder"));
    sleeps_on_garbage_then_returns_once_zeroed(
        "Mutex::lock on a live-looking holder",
        true,
        4,
        vec![(2, low), (3, high)],
        |buffer| Mutex::at(buffer, 0).unwrap().lock().is_ok(),
    );
    // RwLock: `WRITER` (bit 22 of the state) and the writer's owner word at slots 2 and 3.
    let writer = vec![(0, 1 << 22), (2, low), (3, high)];
    let rwlock = buffer(true);
    scribble(&rwlock, &writer);
    let timed = RwLock::at(&rwlock, 0).unwrap();
    let timed = spawn(move || {
        (
            timed.try_read_for(SHORT).is_ok(),
            timed.try_write_for(SHORT).is_ok(),
        )
    });
    assert_eq!(
        timed.join("RwLock timed forms on a live-looking writer"),
        (false, false)
    );
    sleeps_on_garbage_then_returns_once_zeroed(
        "RwLock::read on a live-looking writer",
        true,
        6,
        writer.clone(),
        |buffer| RwLock::at(buffer, 0).unwrap().read().is_ok(),
    );
    sleeps_on_garbage_then_returns_once_zeroed(
        "RwLock::write on a live-looking writer",
        true,
        6,
        writer,
        |buffer| RwLock::at(buffer, 0).unwrap().write().is_ok(),
    );
}

/// Fault: a process-shared `RwLock` whose owner word named a live thread while its state said
/// no writer holds it (garbage, or a writer's claim whose holder was stopped: invariant 6 of
/// `shared_rwlock.rs`) made a writer pause and look again without looking at its deadline:
/// `try_write_for` never returned.
// docs/semantics.md S7, S3
#[test]
fn s7_a_timed_write_on_a_live_looking_claim_returns_by_its_deadline() {
    let buffer = buffer(true);
    scribble(&buffer, &held_by_the_living(0));
    let rwlock = RwLock::at(&buffer, 0).unwrap();
    let timed = spawn(move || rwlock.try_write_for(SHORT).is_ok());
    assert!(!timed.join("RwLock::try_write_for on a claimed owner word"));
}

/// Fault: a `Semaphore` acquire that had become the heir (S5) and then timed out asserted, in
/// debug builds, that `HEIR` was still set ("only the heir clears HEIR"): a peer that wrote
/// the word meanwhile (here: zeros, the initial state) made the timed-out acquire panic.
// docs/semantics.md S7, S5
#[test]
fn s7_an_heir_whose_flag_was_overwritten_times_out_without_a_panic() {
    const HEIR: i32 = 2;
    for shared in [false, true] {
        let buffer = buffer(shared);
        let semaphore = Semaphore::at(&buffer, 0).unwrap();
        let word = Int32Array::with_range(&buffer, 0, Some(1)).unwrap();
        let waiter = semaphore.clone();
        let heir = spawn_blocked(move || waiter.acquire_for(1, Duration::from_millis(200)));
        // Past the starvation threshold (1 ms) since the acquire began: the spurious wake-up
        // below makes it the heir (S5) when it sleeps again.
        thread::sleep(Duration::from_millis(2));
        atomics::notify(&word, 0, None).unwrap();
        while atomics::load(&word, 0).unwrap() & HEIR == 0 {
            assert!(
                heir.try_result().is_none(),
                "the acquire returned before it became heir"
            );
            thread::yield_now();
        }
        atomics::store(&word, 0, 0).unwrap();
        assert_eq!(heir.join("the heir's timed acquire"), Ok(false));
        semaphore.release(1).unwrap();
        assert!(semaphore.try_acquire(1).unwrap(), "works after");
    }
}
