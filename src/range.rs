//! The one range checker: every "does this fit?" question a buffer, a typed view or a
//! `DataView` asks is answered here, with overflow checked and the refusal naming what was
//! asked, what was available, and the unit both are counted in (bytes or elements).

use std::ops::{Bound, RangeBounds};

use crate::error::Error;

/// What a range counts: a buffer's or a `DataView`'s bytes, or a typed view's elements. The
/// refusal names it, so a message never gives element indices as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Bytes,
    Elements,
}

impl Unit {
    /// `start..end` does not fit in `len` of this unit.
    fn out_of_bounds(self, start: usize, end: usize, len: usize) -> Error {
        match self {
            Unit::Bytes => Error::RangeOutOfBounds { start, end, len },
            Unit::Elements => Error::ElementRangeOutOfBounds { start, end, len },
        }
    }

    /// `start..end` starts after its end.
    fn inverted(self, start: usize, end: usize) -> Error {
        match self {
            Unit::Bytes => Error::InvertedRange { start, end },
            Unit::Elements => Error::InvertedElementRange { start, end },
        }
    }
}

/// Checks that `count` bytes starting at `start` fit within `len` bytes; returns the end.
/// `Err(RangeOutOfBounds)` otherwise, with an end that overflowed reported as `usize::MAX`.
#[inline]
pub(crate) fn fit(start: usize, count: usize, len: usize) -> Result<usize, Error> {
    match start.checked_add(count) {
        Some(end) if end <= len => Ok(end),
        end => Err(Unit::Bytes.out_of_bounds(start, end.unwrap_or(usize::MAX), len)),
    }
}

/// Resolves `range` against `len` (both counted in `unit`): `Ok((start, end))` with
/// `start <= end <= len`; otherwise the unit's refusal: inverted if the start lies after the
/// end (`InvertedRange` / `InvertedElementRange`), out of bounds past `len`
/// (`RangeOutOfBounds` / `ElementRangeOutOfBounds`).
pub(crate) fn resolve(
    range: &impl RangeBounds<usize>,
    len: usize,
    unit: Unit,
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
        return Err(unit.inverted(start, end));
    }
    if end > len {
        return Err(unit.out_of_bounds(start, end, len));
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_refuses_in_the_unit_it_is_given() {
        assert_eq!(resolve(&(1..3), 4, Unit::Bytes), Ok((1, 3)));
        assert_eq!(resolve(&(1..3), 4, Unit::Elements), Ok((1, 3)));
        assert_eq!(
            resolve(&(2..9), 4, Unit::Bytes),
            Err(Error::RangeOutOfBounds {
                start: 2,
                end: 9,
                len: 4
            })
        );
        assert_eq!(
            resolve(&(2..9), 4, Unit::Elements),
            Err(Error::ElementRangeOutOfBounds {
                start: 2,
                end: 9,
                len: 4
            })
        );
        #[allow(clippy::reversed_empty_ranges)]
        let inverted = 3..1;
        assert_eq!(
            resolve(&inverted, 4, Unit::Bytes),
            Err(Error::InvertedRange { start: 3, end: 1 })
        );
        assert_eq!(
            resolve(&inverted, 4, Unit::Elements),
            Err(Error::InvertedElementRange { start: 3, end: 1 })
        );
    }
}
