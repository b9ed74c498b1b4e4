//! Whether the process that owns a waiter slot still exists: how a notify tells a waiter that
//! will never wake up (its process died) from one that is about to (docs/semantics.md X5).

use super::task_stat;

/// The calling process's id, as the owner field of a waiter slot records it.
pub(crate) fn current_process() -> u32 {
    std::process::id()
}

/// Whether a process with id `pid` exists and has not ended ([`task_stat`]: `kill(pid, 0)`,
/// which sends nothing, then the state in `/proc/<pid>/stat`). An id that is not a positive
/// `pid_t` (a peer wrote garbage) names no single process: `false`. One that exists but belongs
/// to someone else (`EPERM`): `true`. A zombie (killed, or exited, and not yet reaped by its
/// parent: its id still exists) has ended: `false` (an unreadable `stat`: `true`).
///
/// A process that died and whose id was reused is taken for alive, and ids are only
/// meaningful within one pid namespace. Without Linux there are no peers to probe: `true`.
pub(crate) fn process_exists(pid: u32) -> bool {
    if pid == 0 || i32::try_from(pid).is_err() {
        return false;
    }
    let id = u64::from(pid);
    task_stat::exists(id) && !task_stat::stat(id).is_some_and(|stat| stat.has_ended())
}
