//! Whether the process that owns a waiter slot still exists: how a notify tells a waiter that
//! will never wake up (its process died) from one that is about to (docs/semantics.md X5).

/// The calling process's id, as the owner field of a waiter slot records it.
pub(crate) fn current_process() -> u32 {
    std::process::id()
}

/// Whether a process with id `pid` exists and has not ended. `kill(pid, 0)` sends nothing;
/// it only asks. A pid that is not a positive `pid_t` (a peer wrote garbage) names no single
/// process: `false`. `EPERM` means it exists but belongs to someone else: `true`. A zombie
/// (killed, or exited, and not yet reaped by its parent: its id still exists) has ended:
/// `false`, when `/proc/<pid>/stat` says so (unreadable: `true`).
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
    if result != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    !matches!(state(pid), Some('Z' | 'X' | 'x'))
}

/// The state letter of process `pid` (field 3 of `/proc/<pid>/stat`, after the command
/// name, which may hold spaces and parentheses: counted from the last `)`).
#[cfg(target_os = "linux")]
fn state(pid: libc::pid_t) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text[text.rfind(')')? + 1..].trim_start().chars().next()
}

/// Without Linux there are no peers to probe.
#[cfg(not(target_os = "linux"))]
pub(crate) fn process_exists(_pid: u32) -> bool {
    true
}
