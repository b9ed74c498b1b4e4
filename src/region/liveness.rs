//! Whether the process that owns a waiter slot still exists: how a notify tells a waiter that
//! will never wake up (its process died) from one that is about to (docs/semantics.md X5).

/// The calling process's id, as the owner field of a waiter slot records it.
pub(crate) fn current_process() -> u32 {
    std::process::id()
}

/// Whether a process with id `pid` exists. `kill(pid, 0)` sends nothing; it only asks.
/// A pid that is not a positive `pid_t` (a peer wrote garbage) names no single process:
/// `false`. `EPERM` means it exists but belongs to someone else: `true`.
///
/// A process that died and whose id was reused is taken for alive, and ids are only
/// meaningful within one pid namespace.
#[cfg(target_os = "linux")]
pub(crate) fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: `kill` with signal 0 performs only the existence and permission checks.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Without Linux there are no peers to probe.
#[cfg(not(target_os = "linux"))]
pub(crate) fn process_exists(_pid: u32) -> bool {
    true
}
