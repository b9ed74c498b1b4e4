//! In-place access to one message of a [`ByteRing`](super::ByteRing): the [`MessageWriter`] a
//! [`ByteSender::send_with`](super::ByteSender::send_with) closure writes through, and the
//! [`MessageReader`] a [`ByteReceiver::recv_with`](super::ByteReceiver::recv_with) closure reads
//! through. Both copy between private memory and the ring's shared bytes with the region's
//! copy engine (byte-wise atomic): no reference into shared memory is ever handed out, so a
//! peer writing the bytes meanwhile makes garbage, never undefined behaviour. Both are bounded
//! by the record the ring checked for them.

use std::fmt;
use std::io;

use super::byte_ring::Core;
use crate::error::Error;
use crate::range;

/// Writes a message in place in the ring, for
/// [`ByteSender::send_with`](super::ByteSender::send_with): bytes appended with
/// [`write`](MessageWriter::write) (or [`io::Write`]) go straight into shared memory.
pub struct MessageWriter<'a> {
    core: &'a Core,
    /// Data offset of the payload.
    at: usize,
    /// The `max_len` reserved.
    capacity: usize,
    len: usize,
}

impl<'a> MessageWriter<'a> {
    /// A writer of at most `capacity` bytes from data offset `at` (room the ring reserved).
    pub(super) fn new(core: &'a Core, at: usize, capacity: usize) -> Self {
        MessageWriter {
            core,
            at,
            capacity,
            len: 0,
        }
    }

    /// Appends `bytes`: `Err(ExceedsMax)` (and nothing written) if the message would exceed
    /// the `max_len` reserved.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.len() > self.remaining() {
            return Err(Error::ExceedsMax {
                requested: self.len.saturating_add(bytes.len()),
                max: self.capacity,
            });
        }
        self.core.copy_in(self.at + self.len, bytes)?;
        self.len += bytes.len();
        Ok(())
    }

    /// Bytes written so far: the message's length if the closure returns now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes that may still be written.
    pub fn remaining(&self) -> usize {
        self.capacity - self.len
    }
}

impl io::Write for MessageWriter<'_> {
    /// Writes as much of `buf` as fits in the reservation (`Ok(0)` once it is full, which
    /// `write_all` reports as `WriteZero`).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(self.remaining());
        MessageWriter::write(self, &buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for MessageWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageWriter")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// A received message, read in place in the ring, for
/// [`ByteReceiver::recv_with`](super::ByteReceiver::recv_with). Its bytes are copied out
/// (byte-wise atomic) by [`copy_to_slice`](MessageReader::copy_to_slice),
/// [`to_vec`](MessageReader::to_vec) or [`io::Read`]; no reference into shared memory is
/// handed out.
pub struct MessageReader<'a> {
    core: &'a Core,
    /// Data offset of the payload.
    at: usize,
    len: usize,
    /// Bytes consumed by `io::Read`.
    read: usize,
}

impl<'a> MessageReader<'a> {
    /// A reader of the `len` bytes from data offset `at` (a record the ring checked).
    pub(super) fn new(core: &'a Core, at: usize, len: usize) -> Self {
        MessageReader {
            core,
            at,
            len,
            read: 0,
        }
    }

    /// The message's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `dst.len()` bytes of the message from byte `start` into `dst`: `Err` if they are
    /// not all in the message.
    pub fn copy_to_slice(&self, start: usize, dst: &mut [u8]) -> Result<(), Error> {
        range::fit(start, dst.len(), self.len)?;
        // SAFETY: `dst` is private memory valid for `dst.len()` writes.
        unsafe {
            self.core
                .copy_out(self.at + start, dst.as_mut_ptr(), dst.len())
        }
    }

    /// A copy of the whole message (one copy out of shared memory, into a new `Vec`).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        // SAFETY: the spare capacity is private memory valid for `len` writes; `copy_out` either
        // writes all `len` bytes (then they are initialized) or none (then the length stays 0).
        unsafe {
            if self
                .core
                .copy_out(self.at, out.as_mut_ptr(), self.len)
                .is_ok()
            {
                out.set_len(self.len);
            }
        }
        out
    }
}

impl io::Read for MessageReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.len - self.read);
        self.copy_to_slice(self.read, &mut buf[..n])?;
        self.read += n;
        Ok(n)
    }
}

impl fmt::Debug for MessageReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageReader")
            .field("len", &self.len)
            .finish()
    }
}
