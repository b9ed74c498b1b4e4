//! Durations at the queue's edges. A user's duration may be anything up to `Duration::MAX`
//! (a common way to say "forever"), but `Instant + Duration` panics past the clock's range,
//! Redis refuses an expiry or block time that overflows its own clock, and the scripts add
//! milliseconds in Lua's doubles. So every duration the queue adds to an instant or sends to
//! Redis is first capped at [`LONGEST`]: a century, which no queue tells apart from forever.

use std::time::{Duration, Instant};

/// The longest duration the queue works with: 100 years (36,525 days).
pub(super) const LONGEST: Duration = Duration::from_secs(36_525 * 24 * 60 * 60);

/// `duration` in whole milliseconds, at most [`LONGEST`]'s (about 3.2e12: an integer Redis
/// adds to its clock and Lua's doubles hold exactly).
pub(super) fn millis(duration: Duration) -> u64 {
    duration.min(LONGEST).as_millis() as u64
}

/// The instant `duration` after `from`, with `duration` capped at [`LONGEST`]: never a panic.
pub(super) fn later(from: Instant, duration: Duration) -> Instant {
    let duration = duration.min(LONGEST);
    from.checked_add(duration)
        // A monotonic clock a century from overflow; should one not be, the far end of the
        // clock's range is as good as forever.
        .unwrap_or_else(|| far_end(from, duration))
}

/// The latest instant reachable from `from` by at most `duration`, halving the step until
/// it fits (at most 64 halvings of a duration the clock cannot add).
fn far_end(mut from: Instant, mut duration: Duration) -> Instant {
    while !duration.is_zero() {
        match from.checked_add(duration) {
            Some(end) => from = end,
            None => duration /= 2,
        }
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_caps_at_a_century() {
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::from_micros(1999)), 1);
        assert_eq!(millis(LONGEST), 3_155_760_000_000);
        assert_eq!(millis(Duration::MAX), 3_155_760_000_000);
        // Lua's doubles hold it exactly.
        assert_eq!(millis(Duration::MAX) as f64 as u64, millis(Duration::MAX));
    }

    #[test]
    fn later_never_panics_and_caps_at_a_century() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert_eq!(later(now, Duration::MAX), now + LONGEST);
        // From an instant within a second of the end of the clock's range: the far end, no
        // panic.
        let edge = far_end(now, Duration::MAX);
        assert!(edge.checked_add(Duration::from_secs(1)).is_none());
        assert_eq!(later(edge, Duration::MAX), edge);
        let near = edge - Duration::from_secs(10);
        assert_eq!(
            later(near, Duration::from_secs(4)),
            near + Duration::from_secs(4)
        );
        assert_eq!(later(near, LONGEST), edge);
    }
}
