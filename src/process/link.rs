//! The channel between a parent and one process worker: one memfd [`SharedBuffer`] holding two
//! [`ByteRing`]s of the same capacity, the parent's (parent → child) at offset 0 and the
//! child's (child → parent) right after it. Each side attaches as the sender of its own ring
//! and the receiver of the other's; the byte ring checks everything it reads back, so a child
//! that scribbles over the buffer makes errors, not undefined behaviour.

use crate::buffer::SharedBuffer;
use crate::channel::{ByteReceiver, ByteRing, ByteSender};
use crate::error::Error;

/// Default data bytes of each ring.
pub(super) const DEFAULT_CAPACITY: usize = 256 * 1024;

/// One side's ends of the link, and the rings (to close them from anywhere; each ring handle
/// keeps the link's buffer mapped).
pub(super) struct LinkEnds {
    pub(super) tx: ByteSender,
    pub(super) rx: ByteReceiver,
    /// The ring this side sends on, then the one it receives on.
    pub(super) rings: [ByteRing; 2],
}

/// Which side attaches.
#[derive(Clone, Copy)]
pub(super) enum Side {
    Parent,
    Child,
}

/// The buffer for a link of two rings of `capacity` data bytes each.
pub(super) fn create(label: &str, capacity: usize) -> Result<SharedBuffer, Error> {
    let bytes = ByteRing::bytes_for(capacity)?;
    SharedBuffer::memfd(label, 2 * bytes)
}

/// Attaches `side`'s ends of the link in `buffer`.
pub(super) fn attach(
    buffer: &SharedBuffer,
    capacity: usize,
    side: Side,
) -> Result<LinkEnds, Error> {
    let bytes = ByteRing::bytes_for(capacity)?;
    let to_child = ByteRing::at(buffer, 0, capacity)?;
    let to_parent = ByteRing::at(buffer, bytes, capacity)?;
    let (out, inbound) = match side {
        Side::Parent => (to_child, to_parent),
        Side::Child => (to_parent, to_child),
    };
    Ok(LinkEnds {
        tx: out.sender()?,
        rx: inbound.receiver()?,
        rings: [out, inbound],
    })
}
