//! [`Deadline`]: when a waiter gives up, in the form every blocking loop of the crate uses.

use std::time::{Duration, Instant};

/// When a waiter gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// No timeout (also for durations too large to represent: `Duration::MAX` is "forever").
    Never,
    /// A zero timeout: enqueue, then time out at once unless already notified (docs/semantics.md A6).
    Expired,
    /// A monotonic instant.
    At(Instant),
}

impl Deadline {
    /// The deadline of a wait with `timeout` starting now (`None`: forever).
    pub(crate) fn after(timeout: Option<Duration>) -> Deadline {
        match timeout {
            None => Deadline::Never,
            Some(t) if t.is_zero() => Deadline::Expired,
            Some(t) => Instant::now()
                .checked_add(t)
                .map_or(Deadline::Never, Deadline::At),
        }
    }

    /// The deadline `until` (`None`: forever), for loops that retry until one deadline.
    pub(crate) fn until(until: Option<Instant>) -> Deadline {
        until.map_or(Deadline::Never, Deadline::At)
    }

    /// Whether the deadline has passed (never for `Never`).
    pub(crate) fn has_passed(self) -> bool {
        match self {
            Deadline::Never => false,
            Deadline::Expired => true,
            Deadline::At(at) => Instant::now() >= at,
        }
    }

    /// The instant to sleep until (`None`: no limit; `Expired` has already passed).
    pub(crate) fn instant(self) -> Option<Instant> {
        match self {
            Deadline::Never => None,
            Deadline::Expired => Some(Instant::now()),
            Deadline::At(at) => Some(at),
        }
    }
}
