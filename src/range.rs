//! The one range checker: every "does this fit?" question a buffer, a typed view or a
//! `DataView` asks is answered here, with overflow checked and the refusal naming what was
//! asked and what was available.

use std::ops::{Bound, RangeBounds};

use crate::error::Error;

/// Checks that `count` bytes starting at `start` fit within `len`; returns the end.
/// `Err(RangeOutOfBounds)` otherwise, with an end that overflowed reported as `usize::MAX`.
#[inline]
pub(crate) fn fit(start: usize, count: usize, len: usize) -> Result<usize, Error> {
    match start.checked_add(count) {
        Some(end) if end <= len => Ok(end),
        end => Err(Error::RangeOutOfBounds {
            start,
            end: end.unwrap_or(usize::MAX),
            len,
        }),
    }
}

/// Resolves `range` against `len`: `Ok((start, end))` with `start <= end <= len`;
/// `Err(InvertedRange)` if the start lies after the end, `Err(RangeOutOfBounds)` past `len`.
pub(crate) fn resolve(
    range: &impl RangeBounds<usize>,
    len: usize,
) -> Result<(usize, usize), Error> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => len,
    };
    if start > end {
        return Err(Error::InvertedRange { start, end });
    }
    if end > len {
        return Err(Error::RangeOutOfBounds { start, end, len });
    }
    Ok((start, end))
}
