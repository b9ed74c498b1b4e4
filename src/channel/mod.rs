//! Message ports: Node's `MessageChannel` / `MessagePort` for any `T: Send` (docs/semantics.md W4, W6).
//!
//! [`MessageChannel::new`] gives two entangled ports; each posts to the other and receives what
//! the other posts, in order. Messages are moved, never copied or serialized: a `Vec<u8>` in a
//! message is Node's transfer list, a [`SharedBuffer`](crate::SharedBuffer) in a message is
//! shared (W5; see [`crate::worker`] for examples).
//!
//! ```
//! use sharedbuf::MessageChannel;
//!
//! let (main, worker) = MessageChannel::<u64>::new();
//! let t = std::thread::spawn(move || {
//!     for n in &worker {           // ends when the channel is closed and drained
//!         worker.post_message(n * n).ok();
//!     }
//! });
//! for n in 1..=3 {
//!     main.post_message(n)?;
//! }
//! let squares: Vec<u64> = (0..3).map(|_| main.recv()).collect::<Result<_, _>>()?;
//! assert_eq!(squares, [1, 4, 9]);
//! main.close();                    // closes both directions: the worker's loop ends
//! t.join().unwrap();
//! # Ok::<(), sharedbuf::Error>(())
//! ```
//!
//! # Bounded, on purpose
//!
//! Each direction is a ring of [`DEFAULT_CAPACITY`] slots (or
//! [`MessageChannel::with_capacity`]). A full ring makes
//! [`post_message`](MessagePort::post_message) wait for room; nothing is ever dropped, and
//! [`post_message_timeout`](MessagePort::post_message_timeout) /
//! [`try_post_message`](MessagePort::try_post_message) give the message back instead of
//! waiting. Node's ports are unbounded, but an unbounded queue turns a fast producer and a slow
//! consumer into unbounded memory growth; a bound turns it into backpressure. A bounded ring also
//! allocates once, keeps its head and tail in a [`SharedBuffer`](crate::SharedBuffer) (so it
//! blocks and wakes through the crate's own [`atomics::wait`](crate::atomics::wait) /
//! [`notify`](crate::atomics::notify), which the loom models check), and never frees memory
//! while another thread might look at it.
//!
//! # Dropping a port
//!
//! Dropping a port closes the channel (as [`close`](MessagePort::close) does) and drops the
//! messages queued for it, which nothing can receive any more; the other port still receives
//! what was posted to it. A port posted into the very queue it receives from keeps itself, its
//! queues and their messages alive for ever, as a `Sender` sent through its own `mpsc` channel
//! does: see [`MessagePort`].
//!
//! # Cost
//!
//! A post or receive that does not block is one atomic read-modify-write (its claim of the
//! tail or the head), a store and a few loads (no lock, no allocation, no `notify`): a thread
//! about to block flags the word it waits on, and only a claim that finds the flag calls
//! `notify`. Each message sits beside its slot's stamp, on one cache line. See `ring.rs` for
//! the protocol.
//!
//! # Byte rings: messages that can cross processes
//!
//! A port moves any `T`, which lives in process memory. A [`ByteRing`] moves bytes only, and
//! keeps everything — positions, record headers, payloads — in a byte range of a
//! [`SharedBuffer`](crate::SharedBuffer), so a sender and a receiver in two processes mapping
//! the same buffer can use it; it trusts nothing it reads back from the range (a peer writing
//! garbage gets `Err(Error::Corrupted)`, never undefined behaviour). One sender and one
//! receiver per ring: one ring per direction. Messages are copied into the ring once and out
//! once, or written and read in place ([`ByteSender::send_with`], [`ByteReceiver::recv_with`])
//! by a serializer. See `byte_ring.rs` for the layout, the protocol and the hostile-peer rules.

use crate::error::Error;

mod byte_data;
mod byte_message;
mod byte_ring;
mod port;
mod ring;

pub use byte_message::{MessageReader, MessageWriter};
pub use byte_ring::{ByteReceiver, ByteRing, ByteSender};
pub use port::{IntoIter, Iter, MessagePort, PostError, TryIter};

pub(crate) use port::{Closer, NoMessage};

/// Slots per direction of a channel made by [`MessageChannel::new`].
pub const DEFAULT_CAPACITY: usize = 1024;

/// Makes pairs of entangled [`MessagePort`]s (JavaScript's `new MessageChannel()`).
///
/// The type only names the message type; it is never made: `MessageChannel::<T>::new()`.
/// Each port receives, in order, what the other posts (docs/semantics.md W6):
///
/// ```
/// use sharedbuf::{Error, MessageChannel};
///
/// let (port1, port2) = MessageChannel::<String>::new();
/// port1.post_message("ping".to_string())?;
/// assert_eq!(port2.recv()?, "ping");
/// port2.close(); // closes both ends
/// assert_eq!(port1.post_message("late".to_string()), Err(Error::Closed));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug)]
pub struct MessageChannel<T> {
    _message: std::marker::PhantomData<fn() -> T>,
}

impl<T: Send> MessageChannel<T> {
    /// Two entangled ports with [`DEFAULT_CAPACITY`] slots each way (docs/semantics.md W6).
    ///
    /// # Panics
    ///
    /// If the system refuses the memory (where `Vec::with_capacity` would abort the process):
    /// `2 × DEFAULT_CAPACITY` slots of a `T` and an 8-byte stamp each (32 KiB for `u64`
    /// messages). For large messages use
    /// [`with_capacity`](Self::with_capacity), which returns `Err` instead. A constructor that
    /// cannot fail keeps `MessageChannel::new()` as simple as JavaScript's `new MessageChannel()`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> (MessagePort<T>, MessagePort<T>) {
        match MessagePort::entangled(DEFAULT_CAPACITY) {
            Ok(pair) => pair,
            Err(error) => panic!("could not allocate a message channel: {error}"),
        }
    }

    /// Two entangled ports holding at least `capacity` messages each way (rounded up to a power
    /// of two, at least 2). `Err(Error::InvalidParameter)` above 2^24 messages,
    /// `Err(Error::AllocationFailed)` if the system refuses the memory (never an abort).
    pub fn with_capacity(capacity: usize) -> Result<(MessagePort<T>, MessagePort<T>), Error> {
        MessagePort::entangled(capacity)
    }
}
