//! The crate's one error type.
//!
//! Every refusal that JavaScript reports with a `RangeError` (an index out of range, a misaligned
//! view, a grow past the maximum, …) comes back as an [`Error`] value: sharedbuf never panics on
//! bad input and never lets it reach memory. Each variant carries what was asked and what the
//! limit was, so the message alone explains the refusal.

use std::fmt;

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An element index was not below the view's length (docs/semantics.md V4, A4).
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The view's length in elements at the time of the call.
        len: usize,
    },
    /// A byte range `[start, end)` did not fit inside `len` bytes (V2, V5, B5). Element
    /// ranges have their own variant, [`Error::ElementRangeOutOfBounds`].
    RangeOutOfBounds {
        /// First byte asked for.
        start: usize,
        /// One past the last byte asked for (saturated at `usize::MAX`).
        end: usize,
        /// The number of bytes available.
        len: usize,
    },
    /// A byte range whose start lies after its end (B5).
    InvertedRange {
        /// The range's first byte.
        start: usize,
        /// One past the range's last byte.
        end: usize,
    },
    /// An element range `[start, end)` of a typed view (`subarray`, `fill_range`) did not fit
    /// inside the view's `len` elements.
    ElementRangeOutOfBounds {
        /// First element asked for.
        start: usize,
        /// One past the last element asked for (saturated at `usize::MAX`).
        end: usize,
        /// The view's length in elements at the time of the call.
        len: usize,
    },
    /// An element range of a typed view whose start lies after its end.
    InvertedElementRange {
        /// The range's first element.
        start: usize,
        /// One past the range's last element.
        end: usize,
    },
    /// A view's byte offset was not a multiple of its element size (V2).
    Misaligned {
        /// The byte offset asked for.
        byte_offset: usize,
        /// The element size the offset must be a multiple of.
        align: usize,
    },
    /// A view over a fixed buffer without an explicit length covers a byte count that is not a
    /// multiple of the element size (V3).
    LengthNotMultiple {
        /// The bytes from the view's offset to the end of the buffer.
        byte_length: usize,
        /// The element size.
        element_size: usize,
    },
    /// `grow` on a buffer that was not created growable (B3).
    NotGrowable {
        /// The buffer's fixed length.
        byte_length: usize,
    },
    /// `grow` to a length smaller than the current one (B3); buffers never shrink.
    Shrink {
        /// The length asked for.
        requested: usize,
        /// The buffer's length when the grow was decided.
        current: usize,
    },
    /// A length above the buffer's maximum (B2, B3).
    ExceedsMax {
        /// The length asked for.
        requested: usize,
        /// The maximum byte length.
        max: usize,
    },
    /// The platform could not provide the memory (B1): the size is absurd or the system refused.
    AllocationFailed {
        /// The number of bytes asked for.
        bytes: usize,
        /// What refused it.
        reason: String,
    },
    /// A copy between a view and a slice whose lengths do not match.
    LengthMismatch {
        /// Elements the destination or source slice holds.
        slice_len: usize,
        /// Elements available in the view from the given start.
        available: usize,
    },
    /// The waiting or receiving thread was asked to terminate (W3): a blocked `wait` or `recv`
    /// returns this so that `?` unwinds the worker.
    Terminated,
    /// The message port or channel is closed (W4, W6).
    Closed,
    /// An operation with a timeout ran out of time.
    Timeout,
    /// A thread or process the operation needs could not be started: the operating system
    /// refused it, or (process workers) the entry was not registered with `process::init`.
    SpawnFailed {
        /// What was being started, and the system's reason.
        reason: String,
    },
    /// Waiting would never end, so the call refuses instead: a `sync` lock was taken by the
    /// thread that already holds it (S2), or a worker waits for its own exit or events through
    /// its own handle (W1).
    WouldDeadlock,
    /// A `sync` lock's `try_` form did not take it: it was held elsewhere (and, for the timed
    /// forms, still at the deadline). What `?` makes of `TryLockError::WouldBlock` (S3).
    WouldBlock,
    /// A `sync` primitive was left inconsistent by a panic (a `Once` whose closure panicked).
    Poisoned,
    /// A `sync` primitive was attached with a parameter that differs from the one its bytes
    /// already hold (S1): the setting is fixed by whoever attached first, never silently reset.
    ParameterMismatch {
        /// Which parameter (e.g. `"parties"`).
        parameter: &'static str,
        /// The value the bytes already hold.
        existing: u64,
        /// The value this attach asked for.
        requested: u64,
    },
    /// A `sync` count asked for, or the count an operation would produce, lies outside what the
    /// primitive can hold: a latch counted down below zero, a semaphore released past its
    /// maximum, a barrier of zero parties. Nothing was changed.
    CountOutOfRange {
        /// Which count (e.g. `"latch count"`).
        count: &'static str,
        /// The value asked for or that would have resulted.
        value: i64,
        /// The smallest value allowed.
        min: i64,
        /// The largest value allowed.
        max: i64,
    },
    /// The header of a process-shared buffer is not one this crate can use (X1, X5): the file
    /// is too short, belongs to something else, was written by a newer layout version, or its
    /// lengths do not match the file; or, after opening, another process wrote a value there
    /// that no process of this crate writes.
    BadHeader {
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system refused a file or memory operation a process-shared buffer needs
    /// (opening or creating the file, mapping it, sealing a memfd).
    Io {
        /// What was being done.
        operation: String,
        /// The system's reason.
        reason: String,
    },
    /// Every waiter slot of a process-shared buffer is taken by a waiting thread or future (of
    /// any process that shares it), so one more cannot wait on it (X2).
    TooManyWaiters {
        /// The number of waiter slots the buffer has.
        slots: usize,
    },
    /// A lock's previous holder died holding it (X3), and the guard that came with the news
    /// ([`LockError::OwnerDied`](crate::sync::LockError::OwnerDied)) was dropped without
    /// `mark_consistent()` — typically by `?` converting that error into this one. The lock is
    /// now [`NotRecoverable`](Error::NotRecoverable).
    OwnerDied,
    /// A lock whose holder died was released without being marked consistent (X3): it can
    /// never be taken again, by any thread or process.
    NotRecoverable,
    /// A parameter that is not one of the values the operation accepts (a byte ring's capacity
    /// that is not a power of two in its range). Nothing was changed.
    InvalidParameter {
        /// Which parameter (e.g. `"byte ring capacity"`).
        parameter: &'static str,
        /// The value asked for.
        value: u64,
        /// What it must be.
        expected: &'static str,
    },
    /// A non-blocking send found no room for the message now.
    Full,
    /// A role that exists once per primitive (a byte ring's sender or receiver) was already
    /// taken by another handle, in this process or another one.
    AlreadyAttached {
        /// Which role (e.g. `"sender"`).
        role: &'static str,
    },
    /// Bytes of a structure in shared memory (a byte ring's positions or records) hold values
    /// the protocol can never produce: another process (or a stray write through a view)
    /// wrote over them (X5). Nothing was read from or written to memory outside the
    /// structure; the structure may stay unusable.
    Corrupted {
        /// What was found inconsistent.
        what: &'static str,
    },
    /// A process worker's message could not be encoded into, or decoded from, its bytes (the
    /// serde data model and postcard's format): a type serde cannot write without knowing its
    /// length first, bytes that do not hold a value of the expected type (the peer posted
    /// another type, or garbage), or bytes left over after the value. Nothing was sent; a
    /// message that failed to decode was consumed.
    Codec {
        /// What failed, and why.
        reason: String,
    },
    /// A call on a [`Worker`](crate::worker::Worker) or a
    /// [`ProcessWorker`](crate::process::ProcessWorker) made before a `fork()`, in the forked
    /// child (docs/semantics.md X7): the worker's thread, or the process worker's child process
    /// and rings, belong to the parent, so the call would wait for ever (or disturb the
    /// parent's worker); it is refused at once instead, and touches nothing the parent uses.
    /// (A pool's and a queue consumer's errors have a `ForkedHandle` variant of their own.)
    ForkedHandle {
        /// What the handle is (e.g. `"worker"`).
        what: &'static str,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::IndexOutOfRange { index, len } => {
                write!(f, "index {index} is out of range for a view of {len} elements")
            }
            Error::RangeOutOfBounds { start, end, len } => {
                write!(f, "byte range {start}..{end} does not fit in {len} bytes")
            }
            Error::InvertedRange { start, end } => {
                write!(f, "byte range {start}..{end} starts after its end")
            }
            Error::ElementRangeOutOfBounds { start, end, len } => write!(
                f,
                "element range {start}..{end} does not fit in a view of {len} elements"
            ),
            Error::InvertedElementRange { start, end } => {
                write!(f, "element range {start}..{end} starts after its end")
            }
            Error::Misaligned { byte_offset, align } => write!(
                f,
                "byte offset {byte_offset} is not a multiple of the element size of {align} bytes"
            ),
            Error::LengthNotMultiple { byte_length, element_size } => write!(
                f,
                "{byte_length} bytes to the end of the buffer is not a multiple of the element size of {element_size} bytes; give the view a length (with_range) to cover less"
            ),
            Error::NotGrowable { byte_length } => {
                write!(f, "the buffer is fixed at {byte_length} bytes and cannot grow (make it with SharedBuffer::growable(length, max) to grow it)")
            }
            Error::Shrink { requested, current } => {
                write!(f, "cannot shrink the buffer from {current} to {requested} bytes")
            }
            Error::ExceedsMax { requested, max } => {
                write!(f, "{requested} bytes exceeds the maximum of {max} bytes")
            }
            Error::AllocationFailed { bytes, reason } => {
                write!(f, "could not allocate {bytes} bytes: {reason}")
            }
            Error::LengthMismatch { slice_len, available } => write!(
                f,
                "the slice holds {slice_len} elements but the view has {available} elements from that start"
            ),
            Error::Terminated => write!(f, "the worker was asked to terminate"),
            Error::Closed => write!(
                f,
                "the channel is closed: its other end closed it or was dropped (a worker's channel closes when the worker exits)"
            ),
            Error::Timeout => write!(f, "the operation timed out"),
            Error::SpawnFailed { reason } => {
                write!(f, "could not start a thread or process: {reason}")
            }
            Error::WouldDeadlock => {
                write!(f, "waiting would never end: the calling thread holds this lock, or is the worker it would wait for")
            }
            Error::WouldBlock => write!(
                f,
                "the lock was held elsewhere, so the try was given up (a timed try: still held at its deadline)"
            ),
            Error::Poisoned => write!(f, "a panic left the primitive poisoned"),
            Error::ParameterMismatch { parameter, existing, requested } => write!(
                f,
                "the primitive's {parameter} is already {existing}; attaching with {requested} is refused"
            ),
            Error::CountOutOfRange { count, value, min, max } => {
                write!(f, "{count} {value} is outside {min}..={max}; nothing was changed")
            }
            Error::BadHeader { reason } => {
                write!(f, "not a usable process-shared buffer: {reason}")
            }
            Error::Io { operation, reason } => write!(f, "could not {operation}: {reason}"),
            Error::TooManyWaiters { slots } => write!(
                f,
                "all {slots} waiter slots of the process-shared buffer are in use"
            ),
            Error::OwnerDied => write!(
                f,
                "the lock's holder died holding it, and the lock was released without being marked consistent"
            ),
            Error::NotRecoverable => write!(
                f,
                "the lock's holder died and the lock was never marked consistent: it cannot be taken again"
            ),
            Error::InvalidParameter { parameter, value, expected } => {
                write!(f, "{parameter} {value} is invalid: expected {expected}")
            }
            Error::Full => write!(f, "there is no room for the message now"),
            Error::AlreadyAttached { role } => {
                write!(f, "the {role} is already attached to another handle")
            }
            Error::Corrupted { what } => write!(f, "corrupted shared memory: {what}"),
            Error::Codec { reason } => write!(f, "message encoding: {reason}"),
            Error::ForkedHandle { what } => write!(
                f,
                "this {what} handle was made before a fork: its threads and processes belong to the parent process, so this forked child cannot wait on it (leave it alone or drop it; make a new one in the child)"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// For closures that write through [`std::io::Write`] and return `io::Result` (a byte ring's
/// `send_with`): the `io::Error` carries the `Error` as its inner error (`into_inner()` and
/// `downcast`), and its kind says what a reader of the `io::Error` most needs: `TimedOut`,
/// `WouldBlock` for [`Error::Full`] and [`Error::WouldBlock`], `BrokenPipe` for
/// [`Error::Closed`], `InvalidData` for [`Error::Corrupted`], `Unsupported` for
/// [`Error::ForkedHandle`], `Other` otherwise (never `Interrupted`, which std's `io` helpers
/// retry).
impl From<Error> for std::io::Error {
    fn from(error: Error) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match error {
            Error::Timeout => ErrorKind::TimedOut,
            Error::Full | Error::WouldBlock => ErrorKind::WouldBlock,
            Error::Closed => ErrorKind::BrokenPipe,
            Error::Corrupted { .. } | Error::Codec { .. } => ErrorKind::InvalidData,
            Error::ForkedHandle { .. } => ErrorKind::Unsupported,
            _ => ErrorKind::Other,
        };
        std::io::Error::new(kind, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every refusal that counts something says what it counts, once: element indices are never
    /// called bytes and byte offsets never elements.
    #[test]
    fn every_message_names_its_unit() {
        let bytes_only = [
            Error::RangeOutOfBounds {
                start: 2,
                end: 9,
                len: 4,
            },
            Error::InvertedRange { start: 5, end: 4 },
            Error::NotGrowable { byte_length: 8 },
            Error::Shrink {
                requested: 4,
                current: 8,
            },
            Error::ExceedsMax {
                requested: 9,
                max: 8,
            },
            Error::AllocationFailed {
                bytes: 9,
                reason: "refused".into(),
            },
        ];
        let elements_only = [
            Error::IndexOutOfRange { index: 4, len: 4 },
            Error::ElementRangeOutOfBounds {
                start: 2,
                end: 9,
                len: 4,
            },
            Error::InvertedElementRange { start: 5, end: 4 },
            Error::LengthMismatch {
                slice_len: 5,
                available: 3,
            },
        ];
        for error in bytes_only {
            let message = error.to_string();
            assert!(message.contains("byte"), "{message}");
            assert!(!message.contains("element"), "{message}");
        }
        for error in elements_only {
            let message = error.to_string();
            assert!(message.contains("element"), "{message}");
            assert!(!message.contains("byte"), "{message}");
        }
        // Byte counts checked against an element size: both units, each named.
        for error in [
            Error::Misaligned {
                byte_offset: 3,
                align: 4,
            },
            Error::LengthNotMultiple {
                byte_length: 6,
                element_size: 4,
            },
        ] {
            let message = error.to_string();
            assert!(message.contains("byte"), "{message}");
            assert!(message.contains("element size of 4 bytes"), "{message}");
        }
        assert_eq!(
            Error::ElementRangeOutOfBounds {
                start: 2,
                end: 9,
                len: 4
            }
            .to_string(),
            "element range 2..9 does not fit in a view of 4 elements"
        );
        assert_eq!(
            Error::RangeOutOfBounds {
                start: 2,
                end: 9,
                len: 4
            }
            .to_string(),
            "byte range 2..9 does not fit in 4 bytes"
        );
    }
}
