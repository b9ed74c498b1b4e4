//! Whether the holder a process-shared lock's owner word names is still alive, and how often
//! waiters ask (docs/semantics.md X3).
//!
//! glibc owns each thread's kernel robust list, so the kernel cannot tell us that a lock's
//! holder died; the waiters find out themselves. A locker that finds a process-shared lock
//! held asks whether the holder's identity (`owner.rs`: thread id + start time) still names a
//! living thread, before it first sleeps and again whenever a sleep [`SLICE`] ends, so a
//! waiter never sleeps for ever on a dead holder and notices one within a slice. Private
//! buffers never ask: nothing there can die holding a lock but the whole process.
//!
//! # The probe
//!
//! `/proc/<id>/stat` names the thread's state (field 3), its process's thread count (field 20)
//! and its start time (field 22). The holder is **dead** when:
//! - no task has that id (`kill(id, 0)` fails with `ESRCH`);
//! - the task with that id started at another time: the id was reused;
//! - the task is a zombie (`Z`, `X`): killed, and not yet reaped by its parent. For a process
//!   identity, a zombie leader counts as dead only if no other thread of it is left.
//!
//! Anything else — alive, or unknowable (no `/proc`, another user's task hidden by `hidepid`,
//! a holder that recorded no start time) — counts as **alive**: a holder is never declared dead
//! on a guess, because a takeover from a live holder would break mutual exclusion. Ids are
//! those of this process's pid namespace; processes in different pid namespaces cannot check
//! each other.
//!
//! A probe costs a few microseconds (open and read a `/proc` file), so each thread remembers
//! the identities it found alive for [`MEMO`] and does not ask again meanwhile; slices are
//! longer than that, so a sleeping waiter always asks afresh.
//!
//! Under loom there is no `/proc` and every model thread is one OS thread: a model declares a
//! thread dead through `loom_hooks::owner_dies` (a process killed), and ends the sleeps'
//! slices through `loom_hooks::fire_timeouts` (time does not pass in a model).

use std::time::{Duration, Instant};

use super::owner;
use crate::region::task_stat::{exists, stat};
use crate::shim::LOOM;

/// The longest a waiter on a process-shared lock sleeps before it checks the holder again.
/// Detection of a dead holder by a sleeping waiter takes at most this long (plus a probe).
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// A waiter's first slice; each next one is twice as long, up to [`SLICE`]. A holder killed
/// just before a locker came (still exiting when first probed) is noticed within milliseconds,
/// and a live holder that keeps the lock long costs its waiters a wakeup per [`SLICE`].
const FIRST_SLICE: Duration = Duration::from_millis(1);

/// How long a thread trusts that an identity it probed is alive.
const MEMO: Duration = Duration::from_millis(2);

/// The sleeps of one waiter on a process-shared lock: each ends at the caller's deadline or
/// at the end of a slice, whichever comes first.
#[derive(Debug)]
pub(crate) struct Slices {
    next: Duration,
}

impl Slices {
    pub(crate) fn new() -> Slices {
        Slices { next: FIRST_SLICE }
    }

    /// The deadline of the next sleep: `deadline`, but at most the next slice from now. (Under
    /// loom a model ends every finite sleep at once with `loom_hooks::fire_timeouts`: playing
    /// the timer there is ending the slices.)
    pub(crate) fn until(&mut self, deadline: Option<Instant>) -> Option<Instant> {
        let slice = Instant::now() + self.next_slice();
        Some(deadline.map_or(slice, |at| at.min(slice)))
    }

    /// Whether a sleep from [`until`](Slices::until) that timed out reached the caller's
    /// `deadline`, rather than only the end of a slice. Under loom, where a timeout fires only
    /// when the model says so, whenever there is a deadline (the models of `try_lock_for`).
    pub(crate) fn deadline_passed(deadline: Option<Instant>) -> bool {
        if LOOM {
            deadline.is_some()
        } else {
            super::expired(deadline)
        }
    }

    /// The timeout of the next sleep of a `lock_async` future (no deadline of its own); under
    /// loom none.
    pub(crate) fn timeout(&mut self) -> Option<Duration> {
        (!LOOM).then(|| self.next_slice())
    }

    fn next_slice(&mut self) -> Duration {
        let slice = self.next;
        self.next = (self.next * 2).min(SLICE);
        slice
    }
}

/// Whether the holder `identity` (an identity from `owner.rs`, not a special owner value) is
/// dead, by the rules in the module docs.
pub(crate) fn is_dead(identity: u64) -> bool {
    if LOOM {
        return model::is_dead(identity);
    }
    if memo::recently_alive(identity) {
        return false;
    }
    let dead = probe(identity);
    if !dead {
        memo::remember_alive(identity);
    }
    dead
}

fn probe(identity: u64) -> bool {
    let id = owner::id_of(identity);
    if id == 0 {
        return true; // names no thread: written by no process of this crate
    }
    match stat(id) {
        Some(stat) => {
            let zombie = stat.has_ended() && (!owner::is_process(identity) || stat.threads <= 1);
            let recorded = owner::start_of(identity);
            let reused =
                recorded != owner::UNKNOWN_START && stat.start & owner::START_MASK != recorded;
            zombie || reused
        }
        None => !exists(id),
    }
}

/// The identities this thread recently found alive.
mod memo {
    use std::cell::RefCell;
    use std::time::Instant;

    use super::MEMO;

    const ENTRIES: usize = 4;

    std::thread_local! {
        static ALIVE: RefCell<[(u64, Option<Instant>); ENTRIES]> =
            const { RefCell::new([(0, None); ENTRIES]) };
    }

    pub(super) fn recently_alive(identity: u64) -> bool {
        ALIVE
            .try_with(|alive| {
                alive.borrow().iter().any(|&(known, at)| {
                    known == identity && at.is_some_and(|at| at.elapsed() < MEMO)
                })
            })
            .unwrap_or(false)
    }

    pub(super) fn remember_alive(identity: u64) {
        let _ = ALIVE.try_with(|alive| {
            let mut alive = alive.borrow_mut();
            // Replace the entry for this identity, else the oldest.
            let slot = alive
                .iter()
                .position(|&(known, _)| known == identity)
                .unwrap_or_else(|| {
                    (0..ENTRIES)
                        .min_by_key(|&i| alive[i].1)
                        .expect("ENTRIES > 0")
                });
            alive[slot] = (identity, Some(Instant::now()));
        });
    }
}

/// Under loom: the identities a model declared dead.
pub(crate) mod model {
    use std::cell::RefCell;
    use std::collections::HashSet;

    std::thread_local! {
        /// A std thread-local, not a loom one: loom runs all of a model's threads on the
        /// test's own thread. Identities are tokens, never reused, so the set needs no reset
        /// between executions.
        static DEAD: RefCell<HashSet<u64>> = RefCell::new(HashSet::new());
    }

    pub(crate) fn is_dead(identity: u64) -> bool {
        DEAD.with(|dead| dead.borrow().contains(&identity))
    }

    /// Declares the calling model thread dead (used in loom builds only).
    #[allow(dead_code)]
    pub(crate) fn this_thread_dies() {
        let me = super::owner::shared_thread_identity();
        DEAD.with(|dead| dead.borrow_mut().insert(me));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore)] // `kill`, `gettid`, `pthread_atfork`: foreign to Miri
    #[cfg(target_os = "linux")]
    fn the_caller_is_alive_and_a_wrong_start_time_is_dead() {
        let me = owner::shared_thread_identity();
        assert!(!probe(me));
        let reused = owner::identity(owner::id_of(me), owner::start_of(me) + 1, false);
        assert!(
            probe(reused),
            "same id, other start time: the id was reused"
        );
        let unknown = owner::identity(owner::id_of(me), owner::UNKNOWN_START, false);
        assert!(
            !probe(unknown),
            "no start time recorded: only existence counts"
        );
        assert!(probe(owner::identity(0, 5, false)));
        let process = owner::shared_process_identity();
        assert!(!probe(process));
        assert!(!is_dead(me));
        assert!(!is_dead(me), "remembered");
    }

    #[test]
    #[cfg_attr(miri, ignore)] // `kill`, `gettid`, `pthread_atfork`: foreign to Miri
    #[cfg(target_os = "linux")]
    fn an_exited_thread_is_dead() {
        let gone = std::thread::spawn(owner::shared_thread_identity)
            .join()
            .unwrap();
        // Its id may be reused by now, but then with another start time. `join` returns once
        // the kernel has cleared the thread's id word, a moment before the task leaves
        // `/proc` (it is still exiting, not yet a zombie): poll that kernel state, which sends
        // no notification, up to a generous bound (asked only once, it failed in one run).
        let bound = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !probe(gone) {
            assert!(
                std::time::Instant::now() < bound,
                "a joined thread still looks alive after 10 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
