//! Attaching a primitive to bytes of a [`SharedBuffer`]: the one check every `X::at` makes, and
//! parameters written exactly once (SEMANTICS S1).
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
#[allow(dead_code)] // for the primitives with a parameter (Barrier)
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
