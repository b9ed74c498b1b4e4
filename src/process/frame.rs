//! The frames a process worker's two rings carry. Each ring message is one frame: a kind byte,
//! then the body.
//!
//! ```text
//!  parent → child   MESSAGE  payload (Payload::encode)
//!  child → parent   ONLINE   (empty)                  first, once the child is set up
//!                   MESSAGE  payload
//!                   ERROR    panicked: u8, then the message as UTF-8
//! ```
//!
//! `Exit` is not a frame: it is what `waitpid` says once the ring is drained (a killed child
//! sends nothing). A frame of an unknown kind, or a body that does not decode, is
//! `Err(Codec)` for the reader; the ring itself stays usable.

use std::time::Instant;

use super::payload::Payload;
use crate::channel::{ByteReceiver, ByteSender, MessageReader};
use crate::error::Error;
use crate::worker::WorkerError;

const MESSAGE: u8 = 1;
const ONLINE: u8 = 2;
const ERROR: u8 = 3;

/// One received frame.
pub(super) enum Frame<T> {
    Online,
    Message(T),
    Error(WorkerError),
}

/// Sends `value` as a `MESSAGE` frame: encoded in place in the ring (one copy of its bytes
/// into shared memory). `until`: `None` for a try (`Err(Full)` at once), else the deadline.
pub(super) fn send_message<T: Payload>(
    tx: &mut ByteSender,
    value: &T,
    until: Option<Option<Instant>>,
) -> Result<(), Error> {
    let len = value
        .encoded_len()?
        .checked_add(1)
        .ok_or(Error::ExceedsMax {
            requested: usize::MAX,
            max: tx.max_message_len(),
        })?;
    let write = |w: &mut crate::channel::MessageWriter<'_>| -> Result<(), Error> {
        w.write(&[MESSAGE])?;
        value.encode(w)
    };
    match until {
        None => tx.try_send_with(len, write),
        Some(deadline) => tx.send_with(len, deadline, write),
    }
}

/// Sends the `ONLINE` frame.
pub(super) fn send_online(tx: &mut ByteSender) -> Result<(), Error> {
    tx.send(&[ONLINE], None)
}

/// Sends an `ERROR` frame (cut to what the ring can hold).
pub(super) fn send_error(tx: &mut ByteSender, error: &WorkerError) -> Result<(), Error> {
    let mut text = error.message().as_bytes();
    let room = tx.max_message_len().saturating_sub(2);
    if text.len() > room {
        text = &text[..room];
    }
    tx.send_with(2 + text.len(), None, |w| -> Result<(), Error> {
        w.write(&[ERROR, u8::from(error.is_panic())])?;
        w.write(text)
    })
}

/// Decodes one frame.
fn decode<T: Payload>(message: &MessageReader<'_>) -> Result<Frame<T>, Error> {
    let mut head = [0u8; 2];
    let head = &mut head[..message.len().min(2)];
    message.copy_to_slice(0, head)?;
    match head.first() {
        Some(&MESSAGE) => Ok(Frame::Message(T::decode(message, 1)?)),
        Some(&ONLINE) if message.len() == 1 => Ok(Frame::Online),
        Some(&ERROR) if message.len() >= 2 => {
            let mut text = vec![0; message.len() - 2];
            message.copy_to_slice(2, &mut text)?;
            let text = String::from_utf8_lossy(&text).into_owned();
            Ok(Frame::Error(if head[1] != 0 {
                WorkerError::panic(text)
            } else {
                WorkerError::returned(text)
            }))
        }
        _ => Err(Error::Codec {
            reason: "a frame of unknown kind or length".into(),
        }),
    }
}

/// Receives one frame: `Ok(None)` if there is none now (`until == None`) or by the deadline
/// (`until == Some(deadline)`: then `Err(Timeout)`, as the ring says).
pub(super) fn recv_frame<T: Payload>(
    rx: &mut ByteReceiver,
    until: Option<Option<Instant>>,
) -> Result<Option<Frame<T>>, Error> {
    match until {
        None => rx.try_recv_with(|m| decode(m))?.transpose(),
        Some(deadline) => rx.recv_with(deadline, |m| decode(m))?.map(Some),
    }
}
