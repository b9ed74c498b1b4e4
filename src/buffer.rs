//! [`SharedBuffer`]: JavaScript's `SharedArrayBuffer`.
//!
//! A buffer is a handle to one block of zeroed bytes. Cloning the handle shares the block, as
//! posting a `SharedArrayBuffer` to a worker does (docs/semantics.md B6); [`SharedBuffer::slice`] is the
//! only way to copy (B5). A growable buffer reserves its maximum once, so growing never moves
//! the bytes and every view stays valid (B4); a large maximum is reserved as address space
//! only, and each grow commits the memory up to the new length before publishing it. Bytes are
//! read and written through typed views ([`crate::TypedArray`], [`crate::DataView`]) and
//! [`crate::atomics`].
//!
//! A process-shared buffer (Linux: [`SharedBuffer::memfd`], [`SharedBuffer::create`],
//! [`SharedBuffer::open`], [`SharedBuffer::from_fd`]) is a file mapped by every process that
//! uses it. Its length lives in the file's header, where any process may grow it, so a
//! growable one keeps a local copy of the largest valid length it has read there: a value
//! another process wrote is used only if it lies between that copy and this process's own
//! maximum (docs/semantics.md X5).

use std::fmt;
use std::ops::RangeBounds;
#[cfg(target_os = "linux")]
use std::os::fd::{BorrowedFd, OwnedFd};
#[cfg(target_os = "linux")]
use std::path::Path;
use std::ptr::NonNull;

use crate::error::Error;
use crate::range::{self, Unit};
use crate::region::{Header, Region};
#[cfg(target_os = "linux")]
use crate::region::{Layout, NewShared, OpenShared};
use crate::shim::{Arc, AtomicUsize, Ordering};

/// A block of shared bytes: fixed-length or growable (grow-only), shared by cloning.
///
/// ```
/// use sharedbuf::SharedBuffer;
///
/// let buf = SharedBuffer::new(16)?;
/// assert_eq!(buf.byte_length(), 16);
/// let same = buf.clone(); // shares the bytes
/// assert!(same.same_memory(&buf));
///
/// let g = SharedBuffer::growable(8, 64)?;
/// g.grow(32)?;
/// assert_eq!(g.byte_length(), 32);
/// assert!(g.grow(16).is_err()); // never shrinks
/// # Ok::<(), sharedbuf::Error>(())
/// ```
#[derive(Clone)]
pub struct SharedBuffer {
    inner: Arc<Inner>,
}

struct Inner {
    region: Region,
    /// Current length; only ever increases (B3). Never above `region.reserved()`, and every
    /// byte below it is accessible: a grow commits the bytes before publishing the length.
    /// For a growable process-shared buffer, the largest valid length this process has seen in
    /// the header (the truth, which any process may grow): see [`Inner::length`].
    byte_length: AtomicUsize,
    /// `Some(max)` for a growable buffer.
    max_byte_length: Option<usize>,
    /// Whether the length lives in a process-shared header (a growable process-shared buffer).
    length_in_header: bool,
}

impl Inner {
    /// The length now: `byte_length`, or for a growable process-shared buffer the header's
    /// length if it is a valid one (between `byte_length` and the maximum), which then raises
    /// `byte_length`. So the result never decreases and never exceeds this process's mapping,
    /// whatever another process writes.
    #[inline(always)]
    fn length(&self, order: Ordering) -> usize {
        let local = self.byte_length.load(order);
        if self.length_in_header {
            self.refresh_length(local, order)
        } else {
            local
        }
    }

    #[inline(never)]
    fn refresh_length(&self, local: usize, order: Ordering) -> usize {
        let Some(header) = self.region.header() else {
            return local;
        };
        match usize::try_from(header.length().load(order)) {
            Ok(shared) if shared > local && shared <= self.region.reserved() => {
                self.byte_length.fetch_max(shared, Ordering::Relaxed);
                shared
            }
            _ => local,
        }
    }
}

impl SharedBuffer {
    /// A fixed-length buffer of `byte_length` zero bytes (docs/semantics.md B1). A length the platform
    /// cannot provide is `Err(Error::AllocationFailed)`, never an abort.
    pub fn new(byte_length: usize) -> Result<SharedBuffer, Error> {
        Self::with_region(byte_length, None)
    }

    /// A growable buffer of `byte_length` zero bytes that may grow up to `max_byte_length`
    /// (docs/semantics.md B2). The maximum is reserved now, so growing never moves memory; only the
    /// first `byte_length` bytes are committed, so a maximum far above the machine's memory
    /// (a TiB, as JavaScript engines allow) costs address space only.
    /// `Err(Error::ExceedsMax)` if `byte_length` is above `max_byte_length`,
    /// `Err(Error::AllocationFailed)` if the platform cannot provide the reservation.
    pub fn growable(byte_length: usize, max_byte_length: usize) -> Result<SharedBuffer, Error> {
        if byte_length > max_byte_length {
            return Err(Error::ExceedsMax {
                requested: byte_length,
                max: max_byte_length,
            });
        }
        Self::with_region(byte_length, Some(max_byte_length))
    }

    fn with_region(byte_length: usize, max: Option<usize>) -> Result<SharedBuffer, Error> {
        let region = Region::new(max.unwrap_or(byte_length), byte_length)?;
        Ok(Self::from_region(region, byte_length, max))
    }

    /// A buffer over `region`, whose first `byte_length` bytes are accessible.
    fn from_region(region: Region, byte_length: usize, max: Option<usize>) -> SharedBuffer {
        // A process-shared buffer's region is mapped whole: its length may come from the header.
        let length_in_header = max.is_some() && region.header().is_some();
        SharedBuffer {
            inner: Arc::new(Inner {
                region,
                byte_length: AtomicUsize::new(byte_length),
                max_byte_length: max,
                length_in_header,
            }),
        }
    }

    /// The current length in bytes. Never decreases.
    ///
    /// For a growable process-shared buffer this reads the length in the file's header, so a
    /// grow by any process is seen.
    #[inline]
    pub fn byte_length(&self) -> usize {
        self.inner.length(Ordering::Acquire)
    }

    /// A pointer to the length, for views that cache it (so a length-tracking view's bound is
    /// one relaxed load, not a walk through the handle).
    #[inline]
    pub(crate) fn length_word(&self) -> LengthWord {
        LengthWord(NonNull::from(&*self.inner))
    }

    /// The most this buffer can grow to; a fixed buffer's own length (docs/semantics.md B2).
    pub fn max_byte_length(&self) -> usize {
        self.inner
            .max_byte_length
            .unwrap_or_else(|| self.byte_length())
    }

    /// Whether the buffer was made with [`SharedBuffer::growable`], even when its length
    /// already equals its maximum (docs/semantics.md B2).
    pub fn is_growable(&self) -> bool {
        self.inner.max_byte_length.is_some()
    }

    /// Grows the buffer to `new_byte_length` bytes; the new bytes read as zero (docs/semantics.md B3,
    /// B4). Growing to the current length is a no-op. Racing grows are ordered by a
    /// compare-and-swap: a grow that finds the length already larger fails with
    /// `Error::Shrink`, so the length never decreases.
    ///
    /// Errors: `NotGrowable` on a fixed buffer, `ExceedsMax` past the maximum, `Shrink` below
    /// the current length, `AllocationFailed` if the system refuses to commit the memory (the
    /// buffer is then unchanged).
    ///
    /// A process-shared buffer grows for every process that maps it: the new length is
    /// compare-exchanged into the file's header. If the header holds a length no process of
    /// this crate wrote (above this process's maximum, or below a length it already saw), the
    /// grow is refused with `Err(BadHeader)` and nothing changes (docs/semantics.md X5).
    pub fn grow(&self, new_byte_length: usize) -> Result<(), Error> {
        let Some(max) = self.inner.max_byte_length else {
            return Err(Error::NotGrowable {
                byte_length: self.byte_length(),
            });
        };
        if new_byte_length > max {
            return Err(Error::ExceedsMax {
                requested: new_byte_length,
                max,
            });
        }
        let mut current = self.byte_length();
        if new_byte_length > current {
            // Commit first, publish after: readers bound their accesses by the published length
            // (often read relaxed), so every byte below it must already be accessible. The new
            // bytes were zeroed when the region was reserved (or read zero when first touched)
            // and nothing writes past `byte_length`.
            //
            // Why a relaxed read of the length suffices on the reader's side: `commit` returns
            // only once the system changed the mapping's protection for the whole process
            // (`mprotect` does so under the kernel's lock of the address space, before it
            // returns), and the length is stored after that. A reader that sees the new length and touches a
            // fresh page either finds it mapped, or faults into the kernel, which takes the same
            // lock and finds the page accessible. Racing grows may commit overlapping ranges:
            // committing is idempotent and never undone, and each grow commits everything below
            // its own length, so whichever length wins the compare-and-swap below is covered.
            self.inner.region.commit(new_byte_length)?;
        }
        if self.inner.length_in_header {
            if let Some(header) = self.inner.region.header() {
                return self.grow_shared(header, new_byte_length, max);
            }
        }
        loop {
            if new_byte_length < current {
                return Err(Error::Shrink {
                    requested: new_byte_length,
                    current,
                });
            }
            if new_byte_length == current {
                return Ok(());
            }
            match self.inner.byte_length.compare_exchange_weak(
                current,
                new_byte_length,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => current = actual,
            }
        }
    }

    /// `grow` of a process-shared buffer: compare-exchanges the header's length word, each
    /// value read from it checked first.
    fn grow_shared(
        &self,
        header: &Header,
        new_byte_length: usize,
        max: usize,
    ) -> Result<(), Error> {
        let word = header.length();
        let mut shared = word.load(Ordering::Acquire);
        loop {
            let local = self.inner.byte_length.load(Ordering::Acquire);
            let current = match usize::try_from(shared) {
                Ok(current) if current >= local && current <= max => current,
                _ => {
                    return Err(Error::BadHeader {
                        reason: format!(
                            "the length word holds {shared}, outside the {local}..={max} bytes this process can accept"
                        ),
                    })
                }
            };
            if new_byte_length < current {
                return Err(Error::Shrink {
                    requested: new_byte_length,
                    current,
                });
            }
            if new_byte_length > current {
                if let Err(actual) =
                    word.compare_exchange(shared, new_byte_length as u64, Ordering::AcqRel)
                {
                    shared = actual;
                    continue;
                }
            }
            self.inner
                .byte_length
                .fetch_max(new_byte_length, Ordering::AcqRel);
            return Ok(());
        }
    }

    /// Copies the bytes in `range` (of the current length) into a new fixed-length buffer that
    /// shares nothing with this one (docs/semantics.md B5). A start after the end is
    /// `Err(InvertedRange)`; a range past the length is `Err(RangeOutOfBounds)`.
    ///
    /// ```
    /// use sharedbuf::{SharedBuffer, Uint8Array};
    /// let buf = SharedBuffer::new(8)?;
    /// Uint8Array::new(&buf)?.set(2, 7)?;
    /// let copy = buf.slice(2..4)?;
    /// assert_eq!(Uint8Array::new(&copy)?.to_vec(), [7, 0]);
    /// # Ok::<(), sharedbuf::Error>(())
    /// ```
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Result<SharedBuffer, Error> {
        let (start, end) = range::resolve(&range, self.byte_length(), Unit::Bytes)?;
        let len = end - start;
        // SAFETY: the copy below writes all `len` bytes before the region is read or shared
        // (it is wrapped in a buffer only after that).
        let copy = unsafe { Region::uninit(len)? };
        // SAFETY: `start..end` lies within this buffer's current length (checked by
        // `range::resolve`), whose bytes are accessible; `copy` is another region of exactly
        // `len` accessible bytes.
        unsafe { self.region().copy_to_region(start, &copy, 0, len) };
        Ok(SharedBuffer::from_region(copy, len, None))
    }

    /// Whether `self` and `other` are handles to the same memory.
    pub fn same_memory(&self, other: &SharedBuffer) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    #[inline]
    pub(crate) fn region(&self) -> &Region {
        &self.inner.region
    }

    /// Whether other processes may map this buffer's memory (it was made by
    /// [`SharedBuffer::memfd`], [`SharedBuffer::create`] or one of their siblings, or opened
    /// with [`SharedBuffer::open`] or [`SharedBuffer::from_fd`]). `wait` and `notify` on such a
    /// buffer reach every process (docs/semantics.md X2).
    pub fn is_process_shared(&self) -> bool {
        self.inner.region.header().is_some()
    }

    /// The header of a process-shared buffer, for the cross-process `wait` / `notify`.
    #[inline]
    pub(crate) fn process_shared(&self) -> Option<&Header> {
        self.inner.region.header()
    }
}

/// Process-shared buffers (Linux): memory other processes map too (docs/semantics.md X1, X2, X5).
///
/// The buffer lives in a file: an anonymous memfd, passed to a child process as an inherited
/// descriptor, or a named file (e.g. under `/dev/shm`) that any process allowed to open it can
/// map. The file starts with a small header (magic number, layout version, lengths, and the
/// waiter slots cross-process `wait` / `notify` use), written when the buffer is made and
/// validated by every process that opens it before anything else is used: a file that is too
/// short, belongs to something else, comes from a newer layout version or whose lengths do not
/// match its size is refused with `Err(Error::BadHeader)`. The buffer's byte 0 is the first
/// byte after the header, so views and atomics work exactly as on any buffer; `slice` copies
/// into a private buffer.
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use sharedbuf::{atomics, Int32Array, SharedBuffer};
///
/// let buf = SharedBuffer::memfd("counters", 64)?;
/// assert!(buf.is_process_shared());
/// atomics::add(&Int32Array::new(&buf)?, 0, 1)?;
///
/// // Another process would receive the descriptor (see `inheritable_fd`) and map it:
/// let fd = buf.as_fd().unwrap().try_clone_to_owned().unwrap();
/// let same = SharedBuffer::from_fd(fd)?;
/// assert_eq!(atomics::load(&Int32Array::new(&same)?, 0)?, 1);
/// # }
/// # Ok::<(), sharedbuf::Error>(())
/// ```
#[cfg(target_os = "linux")]
impl SharedBuffer {
    /// A fixed-length process-shared buffer of `byte_length` zero bytes in a new memfd named
    /// `name` (the name is only a label, shown in `/proc/<pid>/fd`, of which the kernel keeps
    /// the first 249 bytes; `Err(Io)` only if it holds a NUL byte). The memfd is sealed: its
    /// size can never change, so no process can shrink it under another's mapping.
    pub fn memfd(name: &str, byte_length: usize) -> Result<SharedBuffer, Error> {
        Self::new_shared(NewShared::Memfd(name), Layout::new(byte_length, None)?)
    }

    /// A growable process-shared buffer in a new memfd: `byte_length` bytes now, up to
    /// `max_byte_length`. A grow by any process is seen by every process.
    pub fn memfd_growable(
        name: &str,
        byte_length: usize,
        max_byte_length: usize,
    ) -> Result<SharedBuffer, Error> {
        let layout = Layout::new(byte_length, Some(max_byte_length))?;
        Self::new_shared(NewShared::Memfd(name), layout)
    }

    /// A fixed-length process-shared buffer in a new file at `path` (mode 0600), which must
    /// not exist yet (`Err(Io)` if it does). Remove the file when no process needs it any more.
    ///
    /// A process that opens the path while this call is still writing the header gets
    /// `Err(BadHeader)` and may retry. Unlike a memfd, a named file cannot be sealed: a
    /// process that truncates it while others map it makes their next access to the lost
    /// pages a `SIGBUS`, which no library can prevent; keep such files away from untrusted
    /// processes.
    pub fn create(path: impl AsRef<Path>, byte_length: usize) -> Result<SharedBuffer, Error> {
        Self::new_shared(
            NewShared::File(path.as_ref()),
            Layout::new(byte_length, None)?,
        )
    }

    /// A growable process-shared buffer in a new file at `path`; see [`SharedBuffer::create`].
    pub fn create_growable(
        path: impl AsRef<Path>,
        byte_length: usize,
        max_byte_length: usize,
    ) -> Result<SharedBuffer, Error> {
        let layout = Layout::new(byte_length, Some(max_byte_length))?;
        Self::new_shared(NewShared::File(path.as_ref()), layout)
    }

    /// Maps the process-shared buffer in the file at `path`, after validating its header
    /// (docs/semantics.md X1). Works for the path of a memfd too (`/proc/<pid>/fd/<n>`).
    pub fn open(path: impl AsRef<Path>) -> Result<SharedBuffer, Error> {
        Self::open_shared(OpenShared::File(path.as_ref()))
    }

    /// Maps the process-shared buffer behind `fd` (a memfd or an open file, read-write), after
    /// validating its header (docs/semantics.md X1). The buffer keeps the descriptor open.
    ///
    /// This is how a child process takes a buffer its parent handed over: the parent passes an
    /// [`inheritable_fd`](SharedBuffer::inheritable_fd) and its number, the child turns the
    /// number into an `OwnedFd` (`unsafe`: it asserts the descriptor is open and its own) or
    /// simply opens `/proc/self/fd/<n>` with [`SharedBuffer::open`].
    pub fn from_fd(fd: OwnedFd) -> Result<SharedBuffer, Error> {
        Self::open_shared(OpenShared::Fd(fd))
    }

    /// The descriptor of a process-shared buffer's file (close-on-exec); `None` for a private
    /// buffer.
    pub fn as_fd(&self) -> Option<BorrowedFd<'_>> {
        self.inner.region.fd()
    }

    /// A new descriptor of a process-shared buffer's file that child processes inherit across
    /// `exec` (it lacks the close-on-exec flag); `None` for a private buffer.
    ///
    /// Pass its number to the child (an argument or an environment variable) and drop it in
    /// the parent once the child is spawned. Every child spawned while it is open inherits it,
    /// including those other threads spawn meanwhile.
    pub fn inheritable_fd(&self) -> Option<Result<OwnedFd, Error>> {
        self.inner.region.inheritable_fd()
    }

    fn new_shared(source: NewShared<'_>, layout: Layout) -> Result<SharedBuffer, Error> {
        Ok(Self::over_shared(Region::new_shared(source, layout)?))
    }

    fn open_shared(source: OpenShared<'_>) -> Result<SharedBuffer, Error> {
        Ok(Self::over_shared(Region::open_shared(source)?))
    }

    fn over_shared(region: Region) -> SharedBuffer {
        let layout = region.header().map(Header::layout);
        let layout = layout.expect("a process-shared region has a header");
        let max = layout.growable.then_some(layout.max_byte_length);
        Self::from_region(region, layout.byte_length, max)
    }
}

/// A pointer to a buffer's length ([`SharedBuffer::length_word`]). It points into the buffer's
/// shared allocation, so it is valid while any clone of that buffer lives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LengthWord(NonNull<Inner>);

// SAFETY: the pointee is shared by the buffer's clones on every thread (`Inner` is `Sync`: a
// region and atomics); the pointer is only used to read the length.
unsafe impl Send for LengthWord {}
// SAFETY: as for `Send`.
unsafe impl Sync for LengthWord {}

impl LengthWord {
    /// The buffer's length, read without ordering: enough for bounds checks, since every byte
    /// up to the maximum was reserved and zeroed before the buffer could be shared (B4), and
    /// every byte below a published length was made accessible before it was published (see
    /// [`SharedBuffer::grow`] for why no ordering is needed for that either).
    ///
    /// # Safety
    /// A clone of the buffer this word came from is alive.
    #[inline(always)]
    pub(crate) unsafe fn load_relaxed(self) -> usize {
        // SAFETY: the buffer, which owns the word, is alive per the caller.
        unsafe { self.0.as_ref() }.length(Ordering::Relaxed)
    }

    /// The length this process has seen so far, without looking at a process-shared header:
    /// never above [`load_relaxed`](Self::load_relaxed)'s answer, and enough for every index
    /// below it. A bounds check that fails against it asks `load_relaxed` before saying no.
    ///
    /// # Safety
    /// A clone of the buffer this word came from is alive.
    #[inline(always)]
    pub(crate) unsafe fn load_local_relaxed(self) -> usize {
        // SAFETY: the buffer, which owns the word, is alive per the caller.
        unsafe { self.0.as_ref() }
            .byte_length
            .load(Ordering::Relaxed)
    }
}

impl fmt::Debug for SharedBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBuffer")
            .field("byte_length", &self.byte_length())
            .field("max_byte_length", &self.max_byte_length())
            .field("growable", &self.is_growable())
            .field("process_shared", &self.is_process_shared())
            .finish()
    }
}
