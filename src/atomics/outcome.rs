//! How a wait ends: [`Outcome`], how a waiter left the queue (internal), and [`WaitResult`],
//! what `wait` reports (public).
//!
//! Both sit below every other file of the wait machinery, which all speak them: the waiter,
//! the in-process table, the process-shared slots, the interrupters and the timer.

/// How a [`wait`](super::wait()) ended (JavaScript's `"ok"`, `"not-equal"`, `"timed-out"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitResult {
    /// Woken by [`notify`](super::notify), which counted this waiter.
    Ok,
    /// The element did not hold the expected value; the call did not wait.
    NotEqual,
    /// The timeout passed before any `notify` reached this waiter.
    TimedOut,
}

/// JavaScript's string for the result: `"ok"`, `"not-equal"` or `"timed-out"`, what
/// `Atomics.wait` returns (docs/semantics.md A6).
///
/// ```
/// use sharedbuf::WaitResult;
/// assert_eq!(WaitResult::NotEqual.to_string(), "not-equal");
/// ```
impl std::fmt::Display for WaitResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WaitResult::Ok => "ok",
            WaitResult::NotEqual => "not-equal",
            WaitResult::TimedOut => "timed-out",
        })
    }
}

/// How a waiter left the waiter table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Outcome {
    /// Removed by `notify` and counted by it.
    Notified = 2,
    /// Removed because its timeout passed.
    TimedOut = 3,
    /// Removed because its thread's [`Interrupter`](super::Interrupter) fired.
    Interrupted = 4,
    /// Removed because its future was dropped.
    Cancelled = 5,
}

impl Outcome {
    /// The outcome a waiter's state word holds (its `repr` value), or `None` for any other
    /// value (the waiter is still in the table).
    pub(super) fn of_state(state: u32) -> Option<Outcome> {
        match state {
            2 => Some(Outcome::Notified),
            3 => Some(Outcome::TimedOut),
            4 => Some(Outcome::Interrupted),
            5 => Some(Outcome::Cancelled),
            _ => None,
        }
    }
}
