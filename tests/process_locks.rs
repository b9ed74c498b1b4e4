//! Locks in a process-shared buffer that survive a dead holder (docs/semantics.md X3): real
//! child processes (this test binary re-executed, see `process_support`) take a lock and are
//! killed with SIGKILL while holding it.
//!
//! Each test asserts the outcome only (never how fast it came); the detection latency, from the
//! kill to the locker's return, is printed (`--nocapture`) for the record.
#![cfg(target_os = "linux")]

mod process_support;

use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use process_support::*;
use sharedbuf::atomics;
use sharedbuf::sync::{Condvar, LockError, Mutex, Once, RwLock, TryLockError};
use sharedbuf::{BigUint64Array, Error, Int32Array, SharedBuffer};

/// The locks every test uses, laid out in one buffer.
struct Locks {
    buffer: SharedBuffer,
    mutex: Mutex,
    rwlock: RwLock,
    once: Once,
    condvar: Condvar,
    /// 0: the child says it holds the lock; 1: a condition for the condvar.
    flags: Int32Array,
    /// A pair the lock guards: equal whenever nobody is inside.
    data: Int32Array,
}

const MUTEX_AT: usize = 0;
const RWLOCK_AT: usize = 16;
const ONCE_AT: usize = 40;
const CONDVAR_AT: usize = 56;
const FLAGS_AT: usize = 64;
const DATA_AT: usize = 80;
const BYTES: usize = 128;

impl Locks {
    fn new(label: &str) -> Locks {
        Locks::over(SharedBuffer::memfd(label, BYTES).unwrap())
    }

    fn over(buffer: SharedBuffer) -> Locks {
        Locks {
            mutex: Mutex::at(&buffer, MUTEX_AT).unwrap(),
            rwlock: RwLock::at(&buffer, RWLOCK_AT).unwrap(),
            once: Once::at(&buffer, ONCE_AT).unwrap(),
            condvar: Condvar::at(&buffer, CONDVAR_AT).unwrap(),
            flags: Int32Array::with_range(&buffer, FLAGS_AT, Some(4)).unwrap(),
            data: Int32Array::with_range(&buffer, DATA_AT, Some(2)).unwrap(),
            buffer,
        }
    }

    /// A child in `role`, once it said (flag 0) that it holds what it was asked to.
    fn child_holding(&self, role: &str) -> Child {
        atomics::store(&self.flags, 0, 0).unwrap();
        let child = spawn_child(ROLES, role, Some(&self.buffer), "");
        wait_until(role, || atomics::load(&self.flags, 0).unwrap() == 1);
        child
    }

    /// In a child: says it holds the lock, then waits to be killed.
    fn hold_until_killed(&self) -> ! {
        atomics::store(&self.flags, 0, 1).unwrap();
        thread::sleep(WATCHDOG);
        panic!("the parent never killed this child");
    }

    fn pair(&self) -> (i32, i32) {
        (self.data.get(0).unwrap(), self.data.get(1).unwrap())
    }
}

/// Kills `child` (SIGKILL) and returns when; the child is left unreaped (a zombie) until
/// [`reap`] — a dead holder must be recognised as dead before its parent reaps it.
fn kill(child: &mut Child) -> Instant {
    let at = Instant::now();
    child.kill().unwrap();
    at
}

/// Reaps a killed child and checks it died of SIGKILL.
fn reap(child: Child, what: &str) {
    use std::os::unix::process::ExitStatusExt;
    let status = wait_child(child, what);
    assert_eq!(status.signal(), Some(9), "{what}: {status}");
}

/// Runs a test's body on a thread of its own and fails with a clear message if it has not
/// returned within the watchdog: a lock that never comes back fails the test instead of
/// hanging the suite. (The body's children end themselves after the watchdog.)
fn watched(body: impl FnOnce() + Send + 'static) {
    let test = thread::current().name().unwrap_or("test").to_owned();
    let body = thread::spawn(body);
    wait_until(&format!("{test} (hung)"), || body.is_finished());
    if let Err(panic) = body.join() {
        std::panic::resume_unwind(panic);
    }
}

fn report(what: &str, killed: Instant) {
    eprintln!("[X3 latency] {what}: {:?} from the kill", killed.elapsed());
}

// ---- the children ------------------------------------------------------------------------

const ROLES: &str = "child_process_roles";

/// The body of every child process of this file (a no-op in a normal test run).
#[test]
fn child_process_roles() {
    let Some(role) = child_role(ROLES) else {
        return;
    };
    let locks = Locks::over(child_buffer());
    match role.split(':').nth(1).unwrap() {
        "hold-mutex" => {
            let guard = locks.mutex.lock().unwrap();
            locks.data.set(0, locks.data.get(0).unwrap() + 1).unwrap(); // half an update
            std::mem::forget(guard);
            locks.hold_until_killed();
        }
        "hold-write" => {
            let guard = locks.rwlock.write().unwrap();
            std::mem::forget(guard);
            locks.hold_until_killed();
        }
        "hold-async" => {
            let guard = block_on(locks.mutex.lock_async()).unwrap();
            std::mem::forget(guard);
            locks.hold_until_killed();
        }
        "run-once" => {
            locks.once.call_once(|| locks.hold_until_killed()).unwrap();
        }
        "notify-then-hold" => {
            let guard = locks.mutex.lock().unwrap();
            atomics::store(&locks.flags, 1, 1).unwrap();
            locks.condvar.notify_all();
            std::mem::forget(guard);
            locks.hold_until_killed();
        }
        "expect-not-recoverable" => {
            assert!(locks
                .mutex
                .lock()
                .is_err_and(|e| e == Error::NotRecoverable));
            assert!(locks
                .mutex
                .try_lock()
                .is_err_and(|e| e == Error::NotRecoverable));
        }
        "count" => {
            for _ in 0..COUNT {
                let _guard = locks.mutex.lock().unwrap();
                let (a, b) = locks.pair();
                locks.data.set(0, a + 1).unwrap();
                locks.data.set(1, b + 1).unwrap();
            }
        }
        "hammer" => loop {
            let mut guard = match locks.mutex.lock() {
                Ok(guard) => guard,
                Err(LockError::OwnerDied(guard)) => guard,
                Err(LockError::Failed(error)) => panic!("{error}"),
            };
            guard.mark_consistent();
            let (a, b) = locks.pair();
            locks.data.set(0, a + 1).unwrap();
            locks.data.set(1, b + 1).unwrap();
            drop(guard);
            atomics::store(&locks.flags, 0, 1).unwrap();
        },
        "sleep" => {
            atomics::store(&locks.flags, 0, 1).unwrap();
            thread::sleep(WATCHDOG);
        }
        other => panic!("unknown role {other}"),
    }
}

const COUNT: i32 = 3_000;

// ---- Mutex ---------------------------------------------------------------------------------

// docs/semantics.md X3: a holder killed with SIGKILL (and not yet reaped) is detected by the
// next lock(), which takes the lock over with the news; mark_consistent makes it a normal lock
// again, in this process and in others.
#[test]
#[cfg_attr(miri, ignore)]
fn x3_a_killed_holder_hands_the_mutex_over_with_owner_died() {
    watched(|| {
        let locks = Locks::new("x3-mutex");
        let mut child = locks.child_holding("hold-mutex");
        assert!(
            locks
                .mutex
                .try_lock()
                .is_err_and(|e| e == Error::WouldBlock),
            "held by a live child"
        );
        let killed = kill(&mut child);
        let mut guard = match locks.mutex.lock() {
            Err(LockError::OwnerDied(guard)) => guard,
            other => panic!("expected OwnerDied, got {other:?}"),
        };
        report("Mutex::lock after its holder was killed (zombie)", killed);
        assert!(guard.is_inconsistent());
        assert_eq!(
            locks.pair(),
            (1, 0),
            "the dead holder's half update is there to repair"
        );
        locks.data.set(1, 1).unwrap();
        guard.mark_consistent();
        drop(guard);
        reap(child, "hold-mutex");

        // A normal lock again, for this process and for another one.
        drop(locks.mutex.lock().unwrap());
        expect_success(
            spawn_child(ROLES, "count", Some(&locks.buffer), ""),
            "a child locks the repaired mutex",
        );
        assert_eq!(locks.pair(), (1 + COUNT, 1 + COUNT));
        assert!(!locks.mutex.is_locked());
    });
}

// docs/semantics.md X3: the guard that came with OwnerDied, dropped without mark_consistent,
// retires the lock for everyone: this process, and another one.
#[test]
#[cfg_attr(miri, ignore)]
fn x3_an_unrepaired_lock_is_not_recoverable_for_every_process() {
    watched(|| {
        let locks = Locks::new("x3-not-recoverable");
        let mut child = locks.child_holding("hold-mutex");
        kill(&mut child);
        reap(child, "hold-mutex");
        let guard = locks.mutex.lock().err().and_then(LockError::into_guard);
        assert!(guard.is_some(), "OwnerDied");
        drop(guard);
        assert!(locks
            .mutex
            .lock()
            .is_err_and(|e| e == Error::NotRecoverable));
        assert!(locks
            .mutex
            .try_lock()
            .is_err_and(|e| e == Error::NotRecoverable));
        assert!(locks
            .mutex
            .try_lock_for(Duration::from_millis(10))
            .is_err_and(|e| e == Error::NotRecoverable));
        assert!(locks.mutex.is_locked());
        expect_success(
            spawn_child(ROLES, "expect-not-recoverable", Some(&locks.buffer), ""),
            "another process sees it retired",
        );
    });
}

// docs/semantics.md X3: `?` on OwnerDied gives Error::OwnerDied and retires the lock (the
// unrepaired guard is dropped on the way).
#[test]
#[cfg_attr(miri, ignore)]
fn x3_question_mark_on_owner_died_retires_the_lock() {
    watched(|| {
        let locks = Locks::new("x3-question-mark");
        let mut child = locks.child_holding("hold-mutex");
        kill(&mut child);
        reap(child, "hold-mutex");
        let locked = || -> Result<(), Error> {
            let _guard = locks.mutex.lock()?;
            Ok(())
        };
        assert_eq!(locked(), Err(Error::OwnerDied));
        assert_eq!(locked(), Err(Error::NotRecoverable));
    });
}

// docs/semantics.md X3: a thread already asleep in lock() when the holder is killed is woken
// and takes the lock over (it never sleeps more than a slice without looking).
#[test]
#[cfg_attr(miri, ignore)]
fn x3_a_blocked_locker_is_woken_when_the_holder_dies() {
    watched(|| {
        let locks = Locks::new("x3-blocked");
        let mut child = locks.child_holding("hold-mutex");
        let mutex = locks.mutex.clone();
        let blocked = thread::spawn(move || match mutex.lock() {
            Err(LockError::OwnerDied(mut guard)) => {
                let returned = Instant::now();
                guard.mark_consistent();
                Ok(returned)
            }
            other => Err(format!("{other:?}")),
        });
        wait_until("the locker asleep on the lock", || {
            queued(&locks.buffer) == 1
        });
        // Let it sleep a while, so that its slices have grown to their longest (this only makes
        // the printed latency the worst case; nothing waits on it).
        thread::sleep(Duration::from_millis(200));
        let killed = kill(&mut child);
        let returned = blocked.join().unwrap().expect("OwnerDied");
        eprintln!(
            "[X3 latency] a blocked Mutex::lock woke {:?} after the kill",
            returned.duration_since(killed)
        );
        reap(child, "hold-mutex");
        drop(locks.mutex.lock().unwrap());
    });
}

// docs/semantics.md X3: the takeover is one compare-exchange — of several threads racing to
// take over a dead holder's lock, exactly one gets OwnerDied.
#[test]
#[cfg_attr(miri, ignore)]
fn x3_exactly_one_contender_gets_owner_died() {
    watched(|| {
        let locks = Locks::new("x3-race");
        let mut child = locks.child_holding("hold-mutex");
        let contenders: Vec<_> = (0..4)
            .map(|_| {
                let mutex = locks.mutex.clone();
                thread::spawn(move || match mutex.lock() {
                    Ok(_) => false,
                    Err(LockError::OwnerDied(mut guard)) => {
                        guard.mark_consistent();
                        true
                    }
                    Err(LockError::Failed(error)) => panic!("{error}"),
                })
            })
            .collect();
        wait_until("four lockers asleep", || queued(&locks.buffer) == 4);
        kill(&mut child);
        let died: usize = contenders
            .into_iter()
            .map(|c| usize::from(c.join().unwrap()))
            .sum();
        assert_eq!(died, 1);
        reap(child, "hold-mutex");
    });
}

// docs/semantics.md X3 (the hole a separate owner store would leave): a child killed at random
// moments of a lock/unlock loop never strands the lock. The next lock is Ok with the pair
// intact (killed outside the lock), or OwnerDied (killed inside it).
#[test]
#[cfg_attr(miri, ignore)]
fn x3_a_holder_killed_at_any_moment_never_strands_the_lock() {
    watched(|| {
        let locks = Locks::new("x3-hammer");
        let (mut clean, mut died) = (0, 0);
        for round in 0..12u64 {
            let mut child = locks.child_holding("hammer");
            // Let it run a varying while (randomizing the kill point; no synchronization rests on it).
            thread::sleep(Duration::from_micros(500 + 1_700 * (round % 7)));
            kill(&mut child);
            match locks.mutex.try_lock_for(WATCHDOG) {
                Ok(guard) => {
                    let (a, b) = locks.pair();
                    assert_eq!(a, b, "Ok means nobody died inside the lock");
                    clean += 1;
                    drop(guard);
                }
                Err(TryLockError::OwnerDied(mut guard)) => {
                    let (a, _) = locks.pair();
                    locks.data.set(1, a).unwrap(); // the repair
                    guard.mark_consistent();
                    died += 1;
                }
                other => panic!("round {round}: {other:?}"),
            }
            reap(child, "hammer");
        }
        eprintln!("[X3] hammer: {clean} kills outside the lock, {died} inside");
    });
}

// docs/semantics.md X3: mutual exclusion between processes (the process-shared protocol).
#[test]
#[cfg_attr(miri, ignore)]
fn x3_processes_exclude_each_other() {
    watched(|| {
        let locks = Locks::new("x3-count");
        let children: Vec<_> = (0..2)
            .map(|_| spawn_child(ROLES, "count", Some(&locks.buffer), ""))
            .collect();
        for _ in 0..COUNT {
            let _guard = locks.mutex.lock().unwrap();
            let (a, b) = locks.pair();
            locks.data.set(0, a + 1).unwrap();
            locks.data.set(1, b + 1).unwrap();
        }
        for child in children {
            expect_success(child, "count");
        }
        assert_eq!(locks.pair(), (3 * COUNT, 3 * COUNT));
    });
}

// docs/semantics.md X3: a lock_async holder is its process; the process killed, the next
// lock_async takes the lock over.
#[test]
#[cfg_attr(miri, ignore)]
fn x3_lock_async_takes_over_from_a_killed_process() {
    watched(|| {
        let locks = Locks::new("x3-async");
        let mut child = locks.child_holding("hold-async");
        let killed = kill(&mut child);
        match block_on(locks.mutex.lock_async()) {
            Err(LockError::OwnerDied(mut guard)) => guard.mark_consistent(),
            other => panic!("expected OwnerDied, got {other:?}"),
        }
        report("lock_async after its holder process was killed", killed);
        reap(child, "hold-async");
        drop(block_on(locks.mutex.lock_async()).unwrap());
    });
}

// docs/semantics.md X3 with S4: a condition variable's wait takes the mutex again; a holder
// that died meanwhile comes back as OwnerDied with the guard.
#[test]
#[cfg_attr(miri, ignore)]
fn x3_condvar_wait_reports_a_holder_that_died() {
    watched(|| {
        let locks = Locks::new("x3-condvar");
        let guard = locks.mutex.lock().unwrap();
        atomics::store(&locks.flags, 0, 0).unwrap();
        let mut child = spawn_child(ROLES, "notify-then-hold", Some(&locks.buffer), "");
        // The child takes the mutex when this wait releases it, notifies, and holds it on; a
        // helper kills it then, while this wait tries to take the mutex back.
        let flags = locks.flags.clone();
        let killer = thread::spawn(move || {
            wait_until("the child holds the mutex", || {
                atomics::load(&flags, 0).unwrap() == 1
            });
            kill(&mut child);
            child
        });
        let waited = locks
            .condvar
            .wait_while(guard, |_| atomics::load(&locks.flags, 1).unwrap() == 0);
        match waited {
            Err(LockError::OwnerDied(mut guard)) => guard.mark_consistent(),
            other => panic!("expected OwnerDied, got {other:?}"),
        }
        reap(killer.join().unwrap(), "notify-then-hold");
        drop(locks.mutex.lock().unwrap());
    });
}

// ---- RwLock ------------------------------------------------------------------------------

// docs/semantics.md X3: a writer killed holding the write lock: the next write() takes it over.
#[test]
#[cfg_attr(miri, ignore)]
fn x3_a_killed_writer_hands_the_write_lock_over() {
    watched(|| {
        let locks = Locks::new("x3-write");
        let mut child = locks.child_holding("hold-write");
        assert!(locks
            .rwlock
            .try_read()
            .is_err_and(|e| e == Error::WouldBlock));
        assert!(locks
            .rwlock
            .try_write()
            .is_err_and(|e| e == Error::WouldBlock));
        let killed = kill(&mut child);
        match locks.rwlock.write() {
            Err(LockError::OwnerDied(mut guard)) => guard.mark_consistent(),
            other => panic!("expected OwnerDied, got {other:?}"),
        }
        report("RwLock::write after its writer was killed (zombie)", killed);
        reap(child, "hold-write");
        let first = locks.rwlock.read().unwrap();
        let second = locks.rwlock.read().unwrap();
        drop((first, second));
        drop(locks.rwlock.write().unwrap());
    });
}

// docs/semantics.md X3: a reader asleep behind a writer that is killed takes the write lock
// over (it is the one that must repair the data): OwnerDied with a write guard.
#[test]
#[cfg_attr(miri, ignore)]
fn x3_a_blocked_reader_takes_over_a_killed_writer() {
    watched(|| {
        let locks = Locks::new("x3-reader");
        let mut child = locks.child_holding("hold-write");
        let rwlock = locks.rwlock.clone();
        let reader = thread::spawn(move || match rwlock.read() {
            Err(LockError::OwnerDied(guard)) => {
                let returned = Instant::now();
                // Unrepaired: the lock is retired.
                drop(guard);
                Ok(returned)
            }
            other => Err(format!("{other:?}")),
        });
        wait_until("the reader asleep", || queued(&locks.buffer) == 1);
        let killed = kill(&mut child);
        let returned = reader.join().unwrap().expect("OwnerDied");
        eprintln!(
            "[X3 latency] a blocked RwLock::read woke {:?} after the kill",
            returned.duration_since(killed)
        );
        reap(child, "hold-write");
        assert!(locks
            .rwlock
            .read()
            .is_err_and(|e| e == Error::NotRecoverable));
        assert!(locks
            .rwlock
            .write()
            .is_err_and(|e| e == Error::NotRecoverable));
        assert!(locks
            .rwlock
            .try_read()
            .is_err_and(|e| e == Error::NotRecoverable));
    });
}

// ---- Once --------------------------------------------------------------------------------

// docs/semantics.md X3 with S6: a process killed while running a Once's closure poisons it,
// as a panic would; call_once_force runs again.
#[test]
#[cfg_attr(miri, ignore)]
fn x3_a_runner_killed_poisons_the_once() {
    watched(|| {
        let locks = Locks::new("x3-once");
        let mut child = locks.child_holding("run-once");
        assert_eq!(
            locks.once.call_once_for(Duration::from_millis(20), || {}),
            Ok(false),
            "running in the child"
        );
        let killed = kill(&mut child);
        assert_eq!(locks.once.call_once(|| {}), Err(Error::Poisoned));
        report("Once::call_once after its runner was killed", killed);
        reap(child, "run-once");
        assert!(locks.once.is_poisoned());
        let mut ran = false;
        locks
            .once
            .call_once_force(|state| ran = state.is_poisoned())
            .unwrap();
        assert!(ran && locks.once.is_completed());
    });
}

// ---- identities: PID reuse ---------------------------------------------------------------

/// The owner word a process-shared lock records for the thread (or process) `id` started at
/// `start` ticks after boot (`src/sync/owner.rs`).
fn identity(id: u32, start: u64) -> u64 {
    ((start & ((1 << 41) - 1)) << 22) | u64::from(id)
}

/// Field 22 of `/proc/<pid>/stat`: the start time in clock ticks since boot.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

fn set_mutex_owner(locks: &Locks, owner: u64) {
    let word = BigUint64Array::with_range(&locks.buffer, MUTEX_AT + 8, Some(1)).unwrap();
    atomics::store(&word, 0, owner).unwrap();
}

// docs/semantics.md X3: a process id is not an identity. An owner word naming a live process's
// id with another start time (the dead owner's id, reused) is a dead owner; with the live
// process's own start time it is a live one, never taken over.
#[test]
#[cfg_attr(miri, ignore)]
fn x3_a_reused_process_id_is_not_mistaken_for_the_owner() {
    watched(|| {
        let locks = Locks::new("x3-pid-reuse");
        let mut child = locks.child_holding("sleep");
        let pid = child.id();
        let start = start_time(pid);

        // The child's own identity: alive, so the lock stays its.
        set_mutex_owner(&locks, identity(pid, start));
        assert!(locks
            .mutex
            .try_lock_for(Duration::from_millis(150))
            .is_err_and(|e| e == Error::WouldBlock));
        assert!(locks
            .mutex
            .try_lock()
            .is_err_and(|e| e == Error::WouldBlock));

        // The same id with an earlier start time: a dead process whose id the child reused.
        set_mutex_owner(&locks, identity(pid, start - 1));
        match locks.mutex.lock() {
            Err(LockError::OwnerDied(mut guard)) => guard.mark_consistent(),
            other => panic!("expected OwnerDied, got {other:?}"),
        }

        // And once the child is gone, its own identity is dead too.
        set_mutex_owner(&locks, identity(pid, start));
        kill(&mut child);
        reap(child, "sleep");
        match locks.mutex.lock() {
            Err(LockError::OwnerDied(mut guard)) => guard.mark_consistent(),
            other => panic!("expected OwnerDied, got {other:?}"),
        };
    });
}

// ---- within one process ------------------------------------------------------------------

// docs/semantics.md X3: identities are per thread. A thread that ends while holding a
// process-shared lock (its guard leaked) is a dead holder like a killed process.
#[test]
#[cfg_attr(miri, ignore)]
fn x3_a_thread_that_ended_holding_the_lock_is_a_dead_holder() {
    watched(|| {
        let locks = Locks::new("x3-thread");
        let mutex = locks.mutex.clone();
        thread::spawn(move || std::mem::forget(mutex.lock().unwrap()))
            .join()
            .unwrap();
        match locks.mutex.lock() {
            Err(LockError::OwnerDied(mut guard)) => guard.mark_consistent(),
            other => panic!("expected OwnerDied, got {other:?}"),
        };
        // The same for a write lock.
        let rwlock = locks.rwlock.clone();
        thread::spawn(move || std::mem::forget(rwlock.write().unwrap()))
            .join()
            .unwrap();
        // `join` can return while the kernel still shows the thread's task, exiting: a probe
        // then finds its holder alive (src/sync/liveness.rs), and `try_read`, which does not
        // wait, finds the lock held. It sees the holder dead once the task is gone.
        let seen = loop {
            match locks.rwlock.try_read() {
                Err(TryLockError::WouldBlock) => thread::yield_now(),
                other => break other,
            }
        };
        assert!(seen.is_err_and(|e| e == Error::OwnerDied));
        assert!(locks
            .rwlock
            .try_write()
            .is_err_and(|e| e == Error::NotRecoverable));
    });
}

// docs/semantics.md S2 on a process-shared buffer: relocks are refused, live holders waited
// for, timeouts hold.
#[test]
#[cfg_attr(miri, ignore)]
fn s2_the_shared_protocol_keeps_the_lock_contract() {
    watched(|| {
        let locks = Locks::new("x3-s2");
        let guard = locks.mutex.lock().unwrap();
        assert!(locks.mutex.lock().is_err_and(|e| e == Error::WouldDeadlock));
        assert!(locks
            .mutex
            .try_lock()
            .is_err_and(|e| e == Error::WouldDeadlock));
        let mutex = locks.mutex.clone();
        let (timed_out_tx, timed_out) = std::sync::mpsc::channel();
        let other = thread::spawn(move || {
            let timed_out = mutex
                .try_lock_for(Duration::from_millis(30))
                .is_err_and(|e| e == Error::WouldBlock);
            timed_out_tx.send(timed_out).unwrap();
            mutex.try_lock_for(WATCHDOG).is_ok()
        });
        // Released only once the other thread's timed attempt has returned.
        assert!(timed_out.recv().unwrap(), "a live holder: timed out");
        drop(guard);
        assert!(other.join().unwrap(), "taken once released");

        let write = locks.rwlock.write().unwrap();
        assert!(locks
            .rwlock
            .write()
            .is_err_and(|e| e == Error::WouldDeadlock));
        assert!(locks
            .rwlock
            .read()
            .is_err_and(|e| e == Error::WouldDeadlock));
        drop(write);
        let read = locks.rwlock.read().unwrap();
        assert!(locks
            .rwlock
            .try_write()
            .is_err_and(|e| e == Error::WouldBlock));
        drop(read);

        assert_eq!(
            locks
                .once
                .call_once(|| assert_eq!(locks.once.call_once(|| {}), Err(Error::WouldDeadlock))),
            Ok(())
        );
        assert!(locks.once.is_completed());
    });
}

// docs/semantics.md S2, S4 on a process-shared buffer: threads contending for the mutex and
// the rwlock keep their data consistent.
#[test]
#[cfg_attr(miri, ignore)]
fn s2_threads_exclude_each_other_on_a_process_shared_buffer() {
    watched(|| {
        let locks = Locks::new("x3-threads");
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let (mutex, rwlock, data) = (
                    locks.mutex.clone(),
                    locks.rwlock.clone(),
                    locks.data.clone(),
                );
                thread::spawn(move || {
                    for n in 0..2_000 {
                        if i % 2 == 0 || n % 3 == 0 {
                            let _guard = mutex.lock().unwrap();
                            let (a, b) = (data.get(0).unwrap(), data.get(1).unwrap());
                            data.set(0, a + 1).unwrap();
                            data.set(1, b + 1).unwrap();
                        } else {
                            let _guard = rwlock.read().unwrap();
                        }
                        if n % 7 == 0 {
                            let _guard = rwlock.write().unwrap();
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let (a, b) = locks.pair();
        assert_eq!(a, b);
        assert!(!locks.mutex.is_locked() && !locks.rwlock.is_write_locked());
    });
}
