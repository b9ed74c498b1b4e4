//! What `/proc/<id>/stat` says about a task (thread or process): its state, its process's
//! thread count and its start time, and whether a task with an id exists at all.
//!
//! Both halves of the locks' owner-died detection read it (`sync/owner.rs` records a holder's
//! start time in its identity, `sync/liveness.rs` compares it later), and so does the check
//! that a waiter slot's process still lives (`liveness.rs`). It sits in the region layer, the
//! lowest of its readers, so that none of them depends on another for it.

/// The start time (ticks since boot) of the task `id`, from `/proc/<id>/stat`.
pub(crate) fn start_time(id: u64) -> Option<u64> {
    stat(id).map(|stat| stat.start)
}

/// What the probe reads from `/proc/<id>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) state: char,
    pub(crate) threads: u64,
    pub(crate) start: u64,
}

impl Stat {
    /// Whether the task has ended: a zombie (not yet reaped) or dead.
    pub(crate) fn has_ended(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

pub(crate) fn stat(id: u64) -> Option<Stat> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{id}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a `/proc/<id>/stat` line. The command name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so the fields are counted from the *last* `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // After the state (field 3): field 20 is the 17th further on, field 22 the 19th.
    let mut after = fields.skip(16);
    let threads = after.next()?.parse().ok()?;
    let start = after.nth(1)?.parse().ok()?;
    Some(Stat {
        state,
        threads,
        start,
    })
}

/// Whether some task has id `id` (`kill(id, 0)` works with thread ids too).
#[cfg(target_os = "linux")]
pub(crate) fn exists(id: u64) -> bool {
    let Ok(id) = libc::pid_t::try_from(id) else {
        return false;
    };
    // SAFETY: `kill` with signal 0 performs only the existence and permission checks.
    let result = unsafe { libc::kill(id, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn exists(_id: u64) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_from_the_last_parenthesis() {
        let line = "4242 (odd) name (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    5 3 0 0 20 0 7 0 123456 1000 200";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                threads: 7,
                start: 123456
            })
        );
        assert_eq!(parse_stat("12 (short) R 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }
}
