//! Attaching a primitive to bytes of a [`SharedBuffer`]: the one check every `X::at` makes, and
//! parameters written exactly once (docs/semantics.md S1).
//!
//! Attaching never writes the primitive's state: all-zero bytes are every primitive's initial
//! state, so a handle made before, after or at the same moment as another one at the same offset
//! sees the same primitive. A setting fixed at creation (a barrier's number of parties) lives in
//! a word of its own that is zero until set; [`set_once`] writes it with one compare-exchange, so
//! of several threads attaching at once exactly one writes it and the others compare.

use std::num::NonZeroU32;

use crate::atomics::Word;
use crate::buffer::SharedBuffer;
use crate::error::Error;
use crate::range;
use crate::shim::Ordering;

/// Checks that a primitive of `bytes` bytes, aligned to `align`, fits at `byte_offset` of
/// `buffer`: `Err(Misaligned)` unless the offset is a multiple of `align`, `Err(RangeOutOfBounds)`
/// unless all its bytes lie within the buffer's current length (which never shrinks).
pub(crate) fn check(
    buffer: &SharedBuffer,
    byte_offset: usize,
    bytes: usize,
    align: usize,
) -> Result<(), Error> {
    if byte_offset % align != 0 {
        return Err(Error::Misaligned { byte_offset, align });
    }
    range::fit(byte_offset, bytes, buffer.byte_length()).map(|_| ())
}

/// Sets the parameter held in `word` (zero while unset) to `value`, or checks it: `Ok` if this
/// call wrote it or it already holds `value`, `Err(ParameterMismatch)` if it holds another value.
/// Safe against any number of threads (or processes) attaching at the same moment: the write is
/// one compare-exchange from zero, so exactly one attach writes and every other one compares.
#[allow(dead_code)] // for the primitives with a parameter (a barrier's parties)
pub(crate) fn set_once(
    word: Word<'_, u32>,
    parameter: &'static str,
    value: NonZeroU32,
) -> Result<(), Error> {
    match word.compare_exchange(0, value.get(), Ordering::AcqRel) {
        Ok(_) => Ok(()),
        Err(existing) if existing == value.get() => Ok(()),
        Err(existing) => Err(Error::ParameterMismatch {
            parameter,
            existing: u64::from(existing),
            requested: u64::from(value.get()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomics::SharedWord;

    #[test]
    fn set_once_writes_exactly_once_under_racing_attaches() {
        let word = std::sync::Arc::new(SharedWord::<u32>::new().unwrap());
        let parties = NonZeroU32::new(3).unwrap();
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let word = word.clone();
                std::thread::spawn(move || set_once(word.get(), "parties", parties))
            })
            .collect();
        for racer in racers {
            assert_eq!(racer.join().unwrap(), Ok(()));
        }
        assert_eq!(word.get().load(Ordering::SeqCst), 3);
        assert_eq!(
            set_once(word.get(), "parties", NonZeroU32::new(4).unwrap()),
            Err(Error::ParameterMismatch {
                parameter: "parties",
                existing: 3,
                requested: 4
            })
        );
        assert_eq!(word.get().load(Ordering::SeqCst), 3, "never silently reset");
    }

    #[test]
    fn check_refuses_misaligned_and_out_of_range_places() {
        let buffer = SharedBuffer::new(32).unwrap();
        assert_eq!(check(&buffer, 16, 16, 8), Ok(()));
        assert_eq!(
            check(&buffer, 4, 16, 8),
            Err(Error::Misaligned {
                byte_offset: 4,
                align: 8
            })
        );
        assert_eq!(
            check(&buffer, 24, 16, 8),
            Err(Error::RangeOutOfBounds {
                start: 24,
                end: 40,
                len: 32
            })
        );
    }
}
