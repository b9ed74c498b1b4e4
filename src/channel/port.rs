//! [`MessagePort`]: one end of a [`MessageChannel`](super::MessageChannel).

use std::fmt;
use std::time::{Duration, Instant};

use super::ring::{Blocked, Ring};
use crate::error::Error;
use crate::shim::{self, Arc};

/// One end of an entangled pair: posts `Tx` to the other end and receives the `Rx` it posts
/// (both `T` for a [`MessageChannel`](super::MessageChannel)).
///
/// Messages arrive in the order they were posted (docs/semantics.md W4). [`close`](Self::close) (or
/// dropping either port) closes both directions: later posts return `Err(Error::Closed)`, and
/// what was posted before is still delivered to a port that still exists (W6). Dropping a port
/// also drops the messages queued for it at once, since nothing can receive them any more (as
/// Node discards messages to a closed port); the other port keeps what was posted to it.
///
/// # A port posted into its own channel is never freed
///
/// A port keeps its channel's queues alive, and a queue keeps the messages in it alive. A port
/// posted into the queue it receives from (for instance `a.post_message(Msg::Port(b))`, where
/// `b` receives what `a` posts) and never received keeps itself alive: neither the port, nor
/// its queues, nor the messages in them are ever dropped. Dropping `a` still closes the
/// channel, but nothing can drop `b`: only `b` could receive it, and it is inside. std's `mpsc`
/// has the same cycle (a `Receiver` sent through its own channel). So never post a port into
/// the queue it receives from: send it over another channel.
///
/// ```
/// use sharedbuf::MessageChannel;
///
/// let (a, b) = MessageChannel::new();
/// a.post_message("hello")?;
/// a.post_message("world")?;
/// assert_eq!(b.recv()?, "hello");
/// assert_eq!(b.try_recv(), Some("world")); // receiveMessageOnPort
/// assert_eq!(b.try_recv(), None);
/// # Ok::<(), sharedbuf::Error>(())
/// ```
#[must_use = "dropping a MessagePort closes the channel both ways"]
pub struct MessagePort<Tx, Rx = Tx> {
    link: Link<Tx, Rx>,
}

/// The two rings a port posts to and receives from. Closing a link closes both directions;
/// the worker runtime keeps one (a [`Closer`]) to close the worker's port when the worker ends.
/// Only the port receives from its `rx` (a `Closer` never receives), which is what lets the
/// port's `Drop` discard what is left there.
pub(crate) struct Link<Tx, Rx> {
    tx: Arc<Ring<Tx>>,
    rx: Arc<Ring<Rx>>,
}

/// What the worker runtime holds to close a channel after its port has moved on.
pub(crate) type Closer<Tx, Rx> = Link<Tx, Rx>;

impl<Tx, Rx> Link<Tx, Rx> {
    /// Closes both directions. Idempotent.
    pub(crate) fn close(&self) {
        self.tx.close();
        self.rx.close();
    }
}

/// Why a non-blocking receive found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoMessage {
    /// Nothing is queued now.
    Empty,
    /// The channel is closed and every message posted before the close was received.
    Closed,
}

/// A port and its entangled twin.
pub(crate) type Entangled<Tx, Rx> = (MessagePort<Tx, Rx>, MessagePort<Rx, Tx>);

/// A post that did not happen, with the message given back (nothing is ever dropped).
///
/// Non-exhaustive, as the crate's other error enums: a later reason to refuse a post gets a
/// variant of its own; [`into_message`](PostError::into_message) and
/// [`error`](PostError::error) cover every variant.
#[non_exhaustive]
pub enum PostError<T> {
    /// The port's queue is full ([`MessagePort::try_post_message`]).
    Full(T),
    /// The port is closed (docs/semantics.md W4, W6).
    Closed(T),
    /// The queue stayed full for the whole timeout ([`MessagePort::post_message_timeout`]).
    Timeout(T),
    /// The posting thread is a worker that was asked to terminate while it waited (W3).
    Terminated(T),
    /// A [`Worker`](crate::worker::Worker)'s post in the child of a `fork()`, on a worker made
    /// before the fork: its thread is the parent's, so nobody here would read the message
    /// (docs/semantics.md X7).
    ForkedHandle(T),
}

impl<Tx, Rx> MessagePort<Tx, Rx> {
    pub(crate) fn entangled(capacity: usize) -> Result<Entangled<Tx, Rx>, Error> {
        let forth = Arc::new(Ring::new(capacity)?);
        let back = Arc::new(Ring::new(capacity)?);
        Ok((
            MessagePort {
                link: Link {
                    tx: Arc::clone(&forth),
                    rx: Arc::clone(&back),
                },
            },
            MessagePort {
                link: Link {
                    tx: back,
                    rx: forth,
                },
            },
        ))
    }

    /// Posts `message` to the other port (JavaScript's `port.postMessage`). Waits while the
    /// queue is full (never drops a message); `Err(Error::Closed)` once the channel is closed,
    /// `Err(Error::Terminated)` if this thread is a worker asked to terminate while it waited.
    /// On an error the message is dropped; use [`post_message_timeout`](Self::post_message_timeout)
    /// or [`try_post_message`](Self::try_post_message) to get it back.
    pub fn post_message(&self, message: Tx) -> Result<(), Error> {
        self.link.tx.push(message, None).map_err(|(_, error)| error)
    }

    /// Posts `message` if the queue has room now; otherwise gives it back:
    /// `Err(PostError::Full(message))` while the other side has `capacity()` unread messages,
    /// `Err(PostError::Closed(message))` once the channel is closed (W4). Never waits.
    pub fn try_post_message(&self, message: Tx) -> Result<(), PostError<Tx>> {
        self.link
            .tx
            .try_push(message)
            .map_err(|(message, blocked)| match blocked {
                Blocked::Closed => PostError::Closed(message),
                Blocked::Slot { .. } => PostError::Full(message),
            })
    }

    /// Posts `message`, waiting at most `timeout` for room; gives it back on failure:
    /// `Err(PostError::Timeout(message))` if no room appeared in time,
    /// `Err(PostError::Closed(message))` once the channel is closed,
    /// `Err(PostError::Terminated(message))` if this thread is a worker asked to terminate
    /// while it waited (W3, W4).
    pub fn post_message_timeout(
        &self,
        message: Tx,
        timeout: Duration,
    ) -> Result<(), PostError<Tx>> {
        let deadline = Instant::now().checked_add(timeout);
        self.link
            .tx
            .push(message, deadline)
            .map_err(|(message, error)| match error {
                Error::Closed => PostError::Closed(message),
                Error::Terminated => PostError::Terminated(message),
                _ => PostError::Timeout(message),
            })
    }

    /// Receives the oldest message, waiting until one arrives. `Err(Error::Closed)` once the
    /// channel is closed and every message posted before the close was received;
    /// `Err(Error::Terminated)` if this thread is a worker asked to terminate (W3).
    pub fn recv(&self) -> Result<Rx, Error> {
        self.link.rx.pop(None)
    }

    /// As [`recv`](Self::recv), giving up with `Err(Error::Timeout)` after `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Rx, Error> {
        self.link.rx.pop(Instant::now().checked_add(timeout))
    }

    /// The oldest message if one is there, without waiting for a post: Node's
    /// `receiveMessageOnPort` (docs/semantics.md W6). `None` only when no message is queued (empty, or
    /// closed and drained): a post that has claimed the oldest place but is still writing its
    /// message is waited for (it never blocks), so a message whose post returned before this
    /// call is always found unless another receive took it.
    pub fn try_recv(&self) -> Option<Rx> {
        self.link.rx.try_pop().ok()
    }

    /// A blocking iterator over received messages; it ends when the channel is closed and
    /// drained (or this worker thread is terminated).
    pub fn iter(&self) -> Iter<'_, Tx, Rx> {
        Iter { port: self }
    }

    /// An iterator over the messages that are there now, each taken as by
    /// [`try_recv`](Self::try_recv); it never waits for a post.
    pub fn try_iter(&self) -> TryIter<'_, Tx, Rx> {
        TryIter { port: self }
    }

    /// Closes both directions of the channel (JavaScript's `port.close()`): posts from either
    /// side fail from now on, messages posted before are still delivered (to a port that still
    /// exists), and threads blocked in `recv` or in a full `post_message` wake up. Idempotent;
    /// dropping a port does it too, and also drops the messages queued for that port.
    pub fn close(&self) {
        self.link.close();
    }

    /// Whether the channel was closed (by either port).
    pub fn is_closed(&self) -> bool {
        self.link.tx.is_closed()
    }

    /// How many messages each direction holds before a post waits.
    pub fn capacity(&self) -> usize {
        self.link.tx.capacity()
    }

    /// How many messages wait for this port to receive them (at most
    /// [`capacity`](Self::capacity)). A snapshot: the other port may post, or another thread
    /// receive, at once; to take a message use [`try_recv`](Self::try_recv), not `len` first.
    ///
    /// ```
    /// use sharedbuf::MessageChannel;
    ///
    /// let (a, b) = MessageChannel::new();
    /// a.post_message(1)?;
    /// a.post_message(2)?;
    /// assert_eq!((b.len(), a.len()), (2, 0)); // b receives what a posts
    /// b.recv()?;
    /// assert_eq!(b.len(), 1);
    /// # Ok::<(), sharedbuf::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.link.rx.len()
    }

    /// Whether no message waits for this port: [`len`](Self::len) is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `recv` with an optional deadline (for the worker's event stream).
    pub(crate) fn recv_until(&self, deadline: Option<Instant>) -> Result<Rx, Error> {
        self.link.rx.pop(deadline)
    }

    /// `try_recv` that says why nothing came.
    pub(crate) fn try_recv_or_why(&self) -> Result<Rx, NoMessage> {
        self.link.rx.try_pop().map_err(|blocked| match blocked {
            Blocked::Closed => NoMessage::Closed,
            Blocked::Slot { .. } => NoMessage::Empty,
        })
    }

    /// Something that can close this port's channel after the port itself has moved on (the
    /// worker runtime closes the worker's port when the worker ends).
    pub(crate) fn closer(&self) -> Closer<Tx, Rx> {
        Link {
            tx: Arc::clone(&self.link.tx),
            rx: Arc::clone(&self.link.rx),
        }
    }
}

impl<Tx, Rx> Drop for MessagePort<Tx, Rx> {
    /// Closes the channel, then drops the messages queued for this port: it is their only
    /// receiver (see `Link`), so nothing could take them any more. A panic in a message's
    /// `Drop` propagates after the rest were dropped. The other direction is left intact.
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // a failed loom model: see `shim::model_is_unwinding`
        }
        self.close();
        self.link.rx.discard_all();
    }
}

impl<Tx, Rx> fmt::Debug for MessagePort<Tx, Rx> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessagePort")
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> PostError<T> {
    /// The message that was not posted.
    pub fn into_message(self) -> T {
        match self {
            PostError::Full(m)
            | PostError::Closed(m)
            | PostError::Timeout(m)
            | PostError::Terminated(m)
            | PostError::ForkedHandle(m) => m,
        }
    }

    /// The same failure as an [`Error`], without giving up the message: [`Error::Full`],
    /// [`Error::Closed`], [`Error::Timeout`], [`Error::Terminated`] or [`Error::ForkedHandle`]
    /// (what a process worker's and a byte ring's `try_` forms return for the same failures).
    pub fn error(&self) -> Error {
        match self {
            PostError::Full(_) => Error::Full,
            PostError::Closed(_) => Error::Closed,
            PostError::Timeout(_) => Error::Timeout,
            PostError::Terminated(_) => Error::Terminated,
            PostError::ForkedHandle(_) => Error::ForkedHandle { what: "worker" },
        }
    }
}

/// `?` on a `try_post_message` or `post_message_timeout` in a function returning
/// `Result<_, sharedbuf::Error>` (as [`PostError::error`]): the message is dropped; take it back
/// with [`PostError::into_message`] first to keep it.
impl<T> From<PostError<T>> for Error {
    fn from(error: PostError<T>) -> Error {
        error.error()
    }
}

impl<T> fmt::Debug for PostError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            PostError::Full(_) => "Full",
            PostError::Closed(_) => "Closed",
            PostError::Timeout(_) => "Timeout",
            PostError::Terminated(_) => "Terminated",
            PostError::ForkedHandle(_) => "ForkedHandle",
        };
        write!(f, "{name}(..)")
    }
}

impl<T> fmt::Display for PostError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Full(_) => write!(f, "the port's queue is full"),
            PostError::Closed(_) => write!(f, "{}", Error::Closed),
            PostError::Timeout(_) => write!(f, "the port's queue stayed full until the timeout"),
            PostError::Terminated(_) => write!(f, "the worker was asked to terminate"),
            PostError::ForkedHandle(_) => write!(f, "{}", self.error()),
        }
    }
}

impl<T> std::error::Error for PostError<T> {}

impl<T> PartialEq for PostError<T> {
    /// Compares the kind of failure, not the messages.
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// Blocking iterator over a port's messages ([`MessagePort::iter`]).
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Iter<'a, Tx, Rx> {
    port: &'a MessagePort<Tx, Rx>,
}

impl<Tx, Rx> fmt::Debug for Iter<'_, Tx, Rx> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").field("port", &self.port).finish()
    }
}

impl<Tx, Rx> Iterator for Iter<'_, Tx, Rx> {
    type Item = Rx;
    fn next(&mut self) -> Option<Rx> {
        self.port.recv().ok()
    }
}

/// Non-blocking iterator over the messages there now ([`MessagePort::try_iter`]).
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct TryIter<'a, Tx, Rx> {
    port: &'a MessagePort<Tx, Rx>,
}

impl<Tx, Rx> fmt::Debug for TryIter<'_, Tx, Rx> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryIter").field("port", &self.port).finish()
    }
}

impl<Tx, Rx> Iterator for TryIter<'_, Tx, Rx> {
    type Item = Rx;
    fn next(&mut self) -> Option<Rx> {
        self.port.try_recv()
    }
}

/// Owning blocking iterator over a port's messages; the port closes when it is dropped.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct IntoIter<Tx, Rx> {
    port: MessagePort<Tx, Rx>,
}

impl<Tx, Rx> fmt::Debug for IntoIter<Tx, Rx> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter")
            .field("port", &self.port)
            .finish()
    }
}

impl<Tx, Rx> Iterator for IntoIter<Tx, Rx> {
    type Item = Rx;
    fn next(&mut self) -> Option<Rx> {
        self.port.recv().ok()
    }
}

impl<'a, Tx, Rx> IntoIterator for &'a MessagePort<Tx, Rx> {
    type Item = Rx;
    type IntoIter = Iter<'a, Tx, Rx>;
    fn into_iter(self) -> Iter<'a, Tx, Rx> {
        self.iter()
    }
}

impl<Tx, Rx> IntoIterator for MessagePort<Tx, Rx> {
    type Item = Rx;
    type IntoIter = IntoIter<Tx, Rx>;
    fn into_iter(self) -> IntoIter<Tx, Rx> {
        IntoIter { port: self }
    }
}
