//! Who holds a lock: the value a lock's owner word records (docs/semantics.md S2, X3).
//!
//! Each lock keeps its owner in a 64-bit word beside the words threads sleep on. What that
//! value is depends on the buffer.
//!
//! # Private buffers: thread tokens
//!
//! In a buffer only this process sees, the owner is a per-thread token: nonzero, unique for the
//! life of the process, fixed for the life of the thread. The protocols rely on one rule: **only
//! the owner writes its own token, and it clears the word before it releases the lock**.
//! Per-location coherence then makes "I read my own token" mean "I hold it": a thread always
//! sees its own last write to the word or a later one, and no later writer ever writes this
//! thread's token. That is how a relock becomes `Err(WouldDeadlock)` instead of a hang, at no
//! cost on the uncontended path (the owner word is read only when the lock is found taken).
//!
//! # Process-shared buffers: identities another process can check
//!
//! There a lock must survive its holder's death (X3): a process killed while holding it must
//! be recognised as dead by the others, and a new process that happens to get the dead one's
//! id must not pass for it. So the owner word holds the holder's **identity**: its kernel
//! thread id and that thread's start time, which together name one thread for the whole life
//! of the machine (a reused id comes with a later start time).
//!
//! | bits | field |
//! | --- | --- |
//! | 0..22 | kernel thread id (`gettid`; Linux ids stay below 2²²) — a process id for [`PROCESS`] identities |
//! | 22..63 | start time of that thread (or process), in clock ticks since boot (`/proc/<id>/stat` field 22; 2⁴¹ ticks are centuries) |
//! | 63 | [`PROCESS`]: the identity names a whole process (an async task's hold, which may move between its threads) |
//!
//! A thread that cannot read its own start time records [`UNKNOWN_START`]; others then only
//! ask whether the id exists. The same rule as for tokens holds (only the holder writes its own
//! identity), with one addition: a thread that finds the holder dead may replace the dead
//! identity with its own by compare-exchange (a takeover, `liveness.rs`), never any other.
//! The identity is computed once per thread (a few microseconds: one read of `/proc`) and
//! cached; a process made by `fork()` gets fresh identities (the cache records its fork
//! generation, `region/fork_generation.rs`), so the child never passes for its parent.
//!
//! Under loom every model thread runs on one OS thread, so a model thread's identity is its
//! token, and the models declare threads dead through `loom_hooks` (see `liveness.rs`).

use std::cell::Cell;

use crate::region::fork_generation;
use crate::shim::{self, IdCounter, LOOM};

/// The owner word of an unlocked lock.
pub(crate) const NONE: u64 = 0;

/// The owner recorded for a lock taken by an async task (`Mutex::lock_async`) in a private
/// buffer: a task may move between threads while it holds the lock, so it has no thread token.
/// No thread's token is ever `TASK`, so a thread never mistakes a task's hold for its own.
pub(crate) const TASK: u64 = u64::MAX;

/// The owner word of a process-shared lock retired for ever: its holder died and the lock was
/// released without being marked consistent (X3). No identity is ever this value: its start
/// field is all ones, centuries after boot, and never [`UNKNOWN_START`].
pub(crate) const NOT_RECOVERABLE: u64 = u64::MAX - 1;

/// Identity bit 63: the identity names a process, not one of its threads.
pub(crate) const PROCESS: u64 = 1 << 63;
/// Width of the thread (or process) id field.
pub(crate) const ID_BITS: u32 = 22;
/// The id field.
pub(crate) const ID_MASK: u64 = (1 << ID_BITS) - 1;
/// Width of the start time field.
pub(crate) const START_BITS: u32 = 41;
/// The start time field, once shifted down.
pub(crate) const START_MASK: u64 = (1 << START_BITS) - 1;
/// The start time recorded by a thread that could not read its own: checkers then only ask
/// whether the id exists. Not `START_MASK`, so that no identity is ever [`TASK`] or
/// [`NOT_RECOVERABLE`] (both have every start bit set).
pub(crate) const UNKNOWN_START: u64 = START_MASK - 1;

/// Hands out thread tokens: 1, 2, 3, … (it would take centuries to reach `TASK`).
static NEXT: IdCounter = IdCounter::starting_at(1);

shim::thread_local_static! {
    /// This thread's token, 0 until first asked for.
    static TOKEN: Cell<u64> = Cell::new(NONE);
}

shim::thread_local_static! {
    /// This thread's process-shared identity and the fork generation it was computed in
    /// (identity 0: not computed yet).
    static IDENTITY: Cell<(u64, u64)> = Cell::new((0, NONE));
}

/// The calling thread's owner token (nonzero, never [`TASK`]).
#[inline]
pub(crate) fn thread_token() -> u64 {
    TOKEN
        .try_with(|token| match token.get() {
            NONE => {
                let fresh = NEXT.next();
                token.set(fresh);
                fresh
            }
            known => known,
        })
        // During thread teardown the slot may be gone: a fresh token still never matches any
        // other thread's, it only cannot recognise a relock.
        .unwrap_or_else(|_| NEXT.next())
}

/// The identity of `id` (a thread id, or with `process` a process id) started at `start`
/// ticks after boot.
pub(crate) fn identity(id: u64, start: u64, process: bool) -> u64 {
    let flag = if process { PROCESS } else { 0 };
    flag | ((start & START_MASK) << ID_BITS) | (id & ID_MASK)
}

/// The id field of an identity.
pub(crate) fn id_of(identity: u64) -> u64 {
    identity & ID_MASK
}

/// The start time field of an identity.
pub(crate) fn start_of(identity: u64) -> u64 {
    (identity >> ID_BITS) & START_MASK
}

/// Whether an identity names a process rather than a thread.
pub(crate) fn is_process(identity: u64) -> bool {
    identity & PROCESS != 0
}

/// The calling thread's identity for process-shared locks (see the module docs): cached, and
/// recomputed in the child of a `fork()`.
#[inline]
pub(crate) fn shared_thread_identity() -> u64 {
    if LOOM {
        return thread_token();
    }
    let generation = fork_generation();
    IDENTITY
        .try_with(|cached| {
            let (computed_in, identity) = cached.get();
            if identity != NONE && computed_in == generation {
                return identity;
            }
            let fresh = forks::this_thread();
            cached.set((generation, fresh));
            fresh
        })
        .unwrap_or_else(|_| forks::this_thread())
}

/// The calling process's identity: the owner an async task's hold records in a process-shared
/// lock (any thread of the process may drop its guard).
pub(crate) fn shared_process_identity() -> u64 {
    if LOOM {
        return PROCESS | 1; // one process in a model
    }
    forks::this_process()
}

/// Computing identities.
mod forks {
    use super::{identity, UNKNOWN_START};
    use crate::region::task_stat;

    /// The calling thread's identity, computed now.
    pub(super) fn this_thread() -> u64 {
        let tid = current_thread_id();
        let start = task_stat::start_time(tid).unwrap_or(UNKNOWN_START);
        identity(tid, start, false)
    }

    /// The calling process's identity, computed now.
    pub(super) fn this_process() -> u64 {
        let pid = u64::from(std::process::id());
        let start = task_stat::start_time(pid).unwrap_or(UNKNOWN_START);
        identity(pid, start, true)
    }

    #[cfg(target_os = "linux")]
    fn current_thread_id() -> u64 {
        // SAFETY: `gettid` has no preconditions and cannot fail.
        let tid = unsafe { libc::gettid() };
        u64::try_from(tid).unwrap_or(0)
    }

    #[cfg(not(target_os = "linux"))]
    fn current_thread_id() -> u64 {
        u64::from(std::process::id())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore)] // `kill`, `gettid`, `pthread_atfork`: foreign to Miri
    fn identities_pack_and_unpack() {
        let me = shared_thread_identity();
        assert_ne!(me, NONE);
        assert!(!is_process(me));
        // SAFETY: `gettid` has no preconditions.
        let tid = unsafe { libc::gettid() } as u64;
        assert_eq!(id_of(me), tid);
        assert_ne!(start_of(me), UNKNOWN_START, "/proc is readable here");
        assert_eq!(shared_thread_identity(), me, "cached");
        let other = std::thread::spawn(shared_thread_identity).join().unwrap();
        assert_ne!(other, me);
        let process = shared_process_identity();
        assert!(is_process(process));
        assert_eq!(id_of(process), u64::from(std::process::id()));
        assert_ne!(process, me);
        for value in [me, other, process] {
            assert!(value != NOT_RECOVERABLE && value != TASK);
        }
        // Not even a process that could not read its start time and got the highest ids.
        for id in [ID_MASK, ID_MASK - 1] {
            let unknown = identity(id, UNKNOWN_START, true);
            assert!(unknown != NOT_RECOVERABLE && unknown != TASK);
        }
        let packed = identity(ID_MASK, START_MASK, true);
        assert_eq!((id_of(packed), start_of(packed)), (ID_MASK, START_MASK));
    }
}
