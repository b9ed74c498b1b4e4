//! Linux futexes on process-shared memory.
//!
//! The futex calls leave out `FUTEX_PRIVATE_FLAG`: on a shared file mapping the kernel then
//! keys the futex by (file, offset) instead of by address, so a thread of another process
//! waiting on the same word of the same file is woken. They are used on header words only
//! (`header.rs`), never on user data.
//!
//! Under loom, `loom_memory.rs` emulates these calls with the model's own primitives; on other
//! systems there are no process-shared buffers, so nothing calls them.

use std::time::Instant;

use crate::shim::Parked;

/// Sleeps while `*word == expected` until a [`wake`] on the word (from any process), a signal
/// or `deadline`. Returns `DeadlinePassed` only when the deadline has passed; `Woken` for
/// everything else (callers re-check what they wait for).
///
/// # Safety
/// `word` is aligned, points into live memory, and is only accessed atomically.
#[cfg(target_os = "linux")]
pub(super) unsafe fn wait(word: *const u32, expected: u32, deadline: Option<Instant>) -> Parked {
    let timeout = match deadline {
        None => None,
        Some(at) => {
            let now = Instant::now();
            if now >= at {
                return Parked::DeadlinePassed;
            }
            let left = at - now;
            Some(libc::timespec {
                tv_sec: left.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            })
        }
    };
    let timeout_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned futex word per the caller; the kernel only reads it
    // (comparing it with `expected` atomically with queueing us), and `timeout_ptr` is null or
    // points to a timespec that outlives the call. A relative timeout: FUTEX_WAIT.
    let result = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word,
            libc::FUTEX_WAIT,
            expected,
            timeout_ptr,
        )
    };
    if result != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT) {
        return Parked::DeadlinePassed;
    }
    Parked::Woken
}

/// Wakes up to `count` threads sleeping in [`wait`] on `word`, in any process; returns how
/// many it woke.
///
/// # Safety
/// As for [`wait`].
#[cfg(target_os = "linux")]
pub(super) unsafe fn wake(word: *const u32, count: u32) -> usize {
    let count = count.min(i32::MAX as u32) as libc::c_int;
    // SAFETY: as for `wait`; FUTEX_WAKE does not even read the word.
    let woken = unsafe { libc::syscall(libc::SYS_futex, word, libc::FUTEX_WAKE, count) };
    usize::try_from(woken).unwrap_or(0)
}

/// Without Linux there are no process-shared buffers: never called.
///
/// # Safety
/// None needed.
#[cfg(not(target_os = "linux"))]
pub(super) unsafe fn wait(_word: *const u32, _expected: u32, _deadline: Option<Instant>) -> Parked {
    Parked::Woken
}

/// Without Linux there are no process-shared buffers: never called.
///
/// # Safety
/// None needed.
#[cfg(not(target_os = "linux"))]
pub(super) unsafe fn wake(_word: *const u32, _count: u32) -> usize {
    0
}
