//! What a process worker's messages are made of: [`Payload`], implemented for every serde type
//! (encoded with postcard, written straight into the ring's shared bytes) and for [`Bytes`]
//! (raw bytes, no encoding: copied once into shared memory and once out).
//!
//! Why postcard: a stable, documented wire format (1.0 since 2022, with a specification),
//! compact (varint integers, no field names or type tags), `no_std`-first with few
//! dependencies, actively maintained, and a "flavor" seam that lets the encoder write into
//! any sink — here the ring's [`MessageWriter`], so a typed message is serialized in place
//! instead of into a `Vec` first. bincode 1 is frozen and its successors changed format and
//! hands; JSON or MessagePack would carry field names or type tags across a boundary where
//! both sides are the same binary and already agree on the types.

use std::cell::Cell;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::depth;
use crate::channel::{MessageReader, MessageWriter};
use crate::error::Error;

/// A value a process worker can post or receive: it knows its encoded length, writes itself
/// into the ring in place, and reads itself back from a received message.
///
/// Implemented for every `Serialize + DeserializeOwned` type (postcard) and for [`Bytes`].
/// Posting a plain `Vec<u8>` goes through serde element by element; post [`Bytes`] (or put a
/// `serde_bytes` field in a struct) to have the bytes copied in one piece.
pub trait Payload: Sized {
    /// The number of bytes [`encode`](Payload::encode) writes.
    fn encoded_len(&self) -> Result<usize, Error>;

    /// Writes the value into a reserved message of [`encoded_len`](Payload::encoded_len)
    /// bytes.
    fn encode(&self, out: &mut MessageWriter<'_>) -> Result<(), Error>;

    /// Reads a value from `message`'s bytes from `start` to its end: `Err(Codec)` if they do
    /// not hold exactly one.
    fn decode(message: &MessageReader<'_>, start: usize) -> Result<Self, Error>;
}

/// Raw bytes for a process worker: posted without any encoding (one copy from the `Vec` into
/// the shared ring) and received as they were (one copy out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(bytes: Vec<u8>) -> Bytes {
        Bytes(bytes)
    }
}

impl std::ops::Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl Payload for Bytes {
    fn encoded_len(&self) -> Result<usize, Error> {
        Ok(self.0.len())
    }

    fn encode(&self, out: &mut MessageWriter<'_>) -> Result<(), Error> {
        out.write(&self.0)
    }

    fn decode(message: &MessageReader<'_>, start: usize) -> Result<Bytes, Error> {
        let mut bytes = vec![0; message.len().saturating_sub(start)];
        message.copy_to_slice(start, &mut bytes)?;
        Ok(Bytes(bytes))
    }
}

fn codec_error(what: &str, error: postcard::Error) -> Error {
    Error::Codec {
        reason: format!("{what}: {error}"),
    }
}

impl<T: Serialize + DeserializeOwned> Payload for T {
    fn encoded_len(&self) -> Result<usize, Error> {
        postcard::serialize_with_flavor(self, postcard::ser_flavors::Size::default())
            .map_err(|e| codec_error("measuring the message", e))
    }

    fn encode(&self, out: &mut MessageWriter<'_>) -> Result<(), Error> {
        let mut sink = Staged {
            out,
            stage: [0; STAGE],
            staged: 0,
            failed: None,
        };
        let result = postcard::serialize_with_flavor(self, &mut sink);
        // A failure of the ring itself (it reports `ExceedsMax` if the value wrote more than it
        // measured) comes back as what it is, not as postcard's "buffer full".
        if let Some(error) = sink.failed.take() {
            return Err(error);
        }
        result.map_err(|e| codec_error("encoding the message", e))
    }

    fn decode(message: &MessageReader<'_>, start: usize) -> Result<T, Error> {
        let mut bytes = vec![0; message.len().saturating_sub(start)];
        message.copy_to_slice(start, &mut bytes)?;
        let mut decoder = postcard::Deserializer::from_bytes(&bytes);
        let too_deep = Cell::new(false);
        let value =
            depth::deserialize::<T, _>(&mut decoder, depth::MAX_DEPTH, &too_deep).map_err(|e| {
                if too_deep.get() {
                    Error::Codec {
                        reason: format!(
                            "decoding the message: values nest more than {} deep",
                            depth::MAX_DEPTH
                        ),
                    }
                } else {
                    codec_error("decoding the message", e)
                }
            })?;
        let rest = decoder
            .finalize()
            .map_err(|e| codec_error("decoding the message", e))?;
        if !rest.is_empty() {
            return Err(Error::Codec {
                reason: format!(
                    "decoding the message: {} bytes left over after the value",
                    rest.len()
                ),
            });
        }
        Ok(value)
    }
}

/// Bytes the encoder gathers before writing them into shared memory: serde writes a value
/// field by field (often a byte at a time), and each write into the ring is a call into the
/// copy engine, so small pieces are staged here and longer ones written straight through.
const STAGE: usize = 256;
/// Pieces at least this long skip the stage (written in one copy).
const DIRECT: usize = 64;

/// postcard's output: the ring's writer, behind a small stage.
struct Staged<'w, 'a> {
    out: &'w mut MessageWriter<'a>,
    stage: [u8; STAGE],
    staged: usize,
    /// The ring's own error, if a write into it failed.
    failed: Option<Error>,
}

impl Staged<'_, '_> {
    fn flush(&mut self) -> postcard::Result<()> {
        let staged = std::mem::take(&mut self.staged);
        if staged == 0 {
            return Ok(());
        }
        if let Err(error) = self.out.write(&self.stage[..staged]) {
            self.failed = Some(error);
            return Err(postcard::Error::SerializeBufferFull);
        }
        Ok(())
    }

    fn write_through(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.out.write(bytes).map_err(|error| {
            self.failed = Some(error);
            postcard::Error::SerializeBufferFull
        })
    }
}

impl postcard::ser_flavors::Flavor for &mut Staged<'_, '_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        if self.staged == STAGE {
            self.flush()?;
        }
        self.stage[self.staged] = byte;
        self.staged += 1;
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        if bytes.len() >= DIRECT {
            self.flush()?;
            return self.write_through(bytes);
        }
        if self.staged + bytes.len() > STAGE {
            self.flush()?;
        }
        self.stage[self.staged..self.staged + bytes.len()].copy_from_slice(bytes);
        self.staged += bytes.len();
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        self.flush()
    }
}
