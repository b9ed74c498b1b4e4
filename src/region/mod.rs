//! Backing memory: where a buffer's bytes live.
//!
//! A [`Region`] is a zeroed block reserved once at its maximum size, so growing a buffer never
//! moves it (docs/semantics.md B4) and views stay valid. Small blocks come from the heap (`heap.rs`),
//! large ones from an anonymous mapping (`mmap.rs`) so the operating system commits pages only
//! when they are touched. A large block with room to grow is reserved as address space only
//! (`reservation.rs`) and made accessible up to the buffer's length by [`Region::commit`], so a
//! maximum far above the machine's memory costs nothing until it is used. A process-shared
//! region (Linux) is a memfd or a named file mapped whole (`shared_file.rs`), starting with a
//! header every process validates (`header.rs`); the region's byte 0 is the first byte after
//! the header, so everything above works on it unchanged.
//! Under `--cfg loom` the memory is an array of loom atomic cells instead (`loom_memory.rs`
//! takes the place of `native_memory.rs`), so models see every access; the rest of the crate,
//! this file included, is the same in both builds.
//!
//! Everything reaches the memory through [`RegionPtr`], whose handful of word operations (load,
//! store, read-modify-write, compare-exchange) are what each backing provides. The bulk engine
//! (`copy.rs`: copies and fills) is built on them.
//!
//! Soundness (soundness rule 1): another thread, or another process, may write any byte at any
//! time, so region memory is only ever touched through atomics: no `&[u8]`, `&mut [u8]` or `&T`
//! over it, ever. Overlapping accesses of different sizes (a `Uint8Array` and an `Int32Array`
//! over the same bytes, or the bulk engine's machine words over a view's narrower elements) are
//! allowed, as in every JavaScript engine: that is the one place the crate relies on the
//! hardware (x86 and ARM both keep such accesses single-copy atomic per byte) beyond Rust's
//! memory model.

mod bits;
mod copy;
#[cfg(not(loom))]
mod futex;
// Under loom no file is ever opened, so the header's parser is unused there.
mod fork_generation;
#[cfg_attr(loom, allow(dead_code))]
mod header;
#[cfg(not(loom))]
mod heap;
mod liveness;
#[cfg_attr(loom, path = "loom_memory.rs")]
#[cfg_attr(not(loom), path = "native_memory.rs")]
mod memory;
#[cfg(not(loom))]
mod mmap;
#[cfg(all(unix, not(loom)))]
mod reservation;
#[cfg(all(not(loom), target_os = "linux"))]
mod shared_file;
pub(crate) mod task_stat;

pub use bits::Bits;
pub(crate) use bits::RmwOp;
pub(crate) use fork_generation::{fork_generation, MadeIn};
pub(crate) use header::{Header, Layout, Slot, HEADER_LEN, SLOT_COUNT};
pub(crate) use liveness::{current_process, process_exists};
pub(crate) use memory::RegionPtr;

use crate::error::Error;
use memory::Memory;

/// The largest block a region will try to reserve: Rust allocations and pointer offsets are
/// limited to `isize::MAX` bytes.
pub(crate) const MAX_RESERVE: usize = isize::MAX as usize;

/// A zeroed block of memory reserved at a fixed size, accessed only atomically, and only within
/// its accessible (committed) bytes.
pub(crate) struct Region {
    /// Byte 0.
    base: RegionPtr,
    reserved: usize,
    memory: Memory,
    /// `Some` for a process-shared region.
    shared: Option<Shared>,
}

/// What a process-shared region has beyond its bytes: the header, and (natively) the mapped
/// file, unmapped when the region is dropped.
struct Shared {
    header: Header,
    #[cfg(all(not(loom), target_os = "linux"))]
    file: shared_file::SharedFile,
}

/// Where a new process-shared region lives.
#[cfg(target_os = "linux")]
#[cfg_attr(loom, allow(dead_code))] // a model ignores the name and has no files
pub(crate) enum NewShared<'a> {
    /// An anonymous memfd with this name (shown in `/proc/<pid>/fd`).
    Memfd(&'a str),
    /// A new file at this path, which must not exist yet.
    File(&'a std::path::Path),
}

/// An existing process-shared region to map.
#[cfg(target_os = "linux")]
#[cfg_attr(loom, allow(dead_code))] // a model has no files
pub(crate) enum OpenShared<'a> {
    /// The file at this path.
    File(&'a std::path::Path),
    /// The file (or memfd) behind this descriptor.
    Fd(std::os::fd::OwnedFd),
}

impl Region {
    /// Reserves `reserved` zeroed bytes of which the first `accessible` may be accessed now
    /// (the rest after [`Region::commit`]), or explains why the platform refused (docs/semantics.md
    /// B1). A fixed buffer asks for all of its bytes; a growable one for its length.
    pub(crate) fn new(reserved: usize, accessible: usize) -> Result<Region, Error> {
        debug_assert!(accessible <= reserved);
        if reserved > MAX_RESERVE {
            return Err(Error::AllocationFailed {
                bytes: reserved,
                reason: format!("larger than the platform limit of {MAX_RESERVE} bytes"),
            });
        }
        let (memory, base) = Memory::new(reserved, accessible)?;
        Ok(Region {
            base,
            reserved,
            memory,
            shared: None,
        })
    }

    /// `len` accessible bytes whose contents are unspecified until written: for a copy that
    /// overwrites them all before anyone reads them (a buffer's `slice`), so making it costs no
    /// zeroing pass.
    ///
    /// # Safety
    /// Every byte is written before any is read, and before the region is shared.
    pub(crate) unsafe fn uninit(len: usize) -> Result<Region, Error> {
        if len > MAX_RESERVE {
            return Err(Error::AllocationFailed {
                bytes: len,
                reason: format!("larger than the platform limit of {MAX_RESERVE} bytes"),
            });
        }
        let (memory, base) = Memory::uninit(len)?;
        Ok(Region {
            base,
            reserved: len,
            memory,
            shared: None,
        })
    }

    /// A new process-shared region for `layout`, its header written (docs/semantics.md X1).
    #[cfg(all(not(loom), target_os = "linux"))]
    pub(crate) fn new_shared(source: NewShared<'_>, layout: Layout) -> Result<Region, Error> {
        let file = match source {
            NewShared::Memfd(name) => shared_file::SharedFile::memfd(name, &layout)?,
            NewShared::File(path) => shared_file::SharedFile::create(path, &layout)?,
        };
        let region = Self::over_file(file, layout)?;
        region.header().map(Header::write);
        Ok(region)
    }

    /// Maps an existing process-shared region, validating its header first (docs/semantics.md X1).
    #[cfg(all(not(loom), target_os = "linux"))]
    pub(crate) fn open_shared(source: OpenShared) -> Result<Region, Error> {
        let (file, layout) = match source {
            OpenShared::File(path) => shared_file::SharedFile::open(path)?,
            OpenShared::Fd(fd) => shared_file::SharedFile::from_fd(fd)?,
        };
        Self::over_file(file, layout)
    }

    /// The region over a mapped file: the header at byte 0 of the mapping, the data after.
    #[cfg(all(not(loom), target_os = "linux"))]
    fn over_file(file: shared_file::SharedFile, layout: Layout) -> Result<Region, Error> {
        let all = RegionPtr::from_base(file.base());
        // SAFETY: the mapping holds the header and `max_byte_length` bytes after it (the file
        // was sized, or checked by `fstat`, to exactly that), is page-aligned, accessed only
        // atomically, and lives in `shared.file` as long as the header does.
        let header = unsafe { Header::new(all, layout) };
        // SAFETY: the header's bytes are within the mapping (see above).
        let base = unsafe { all.add(HEADER_LEN) };
        let (memory, _) = Memory::new(0, 0)?;
        Ok(Region {
            base,
            reserved: layout.max_byte_length,
            memory,
            shared: Some(Shared { header, file }),
        })
    }

    /// Under loom a "memfd" is model memory with a header: threads of the model stand in for
    /// processes. Named files do not exist in a model.
    #[cfg(all(loom, target_os = "linux"))]
    pub(crate) fn new_shared(source: NewShared<'_>, layout: Layout) -> Result<Region, Error> {
        if let NewShared::File(_) = source {
            return Err(Self::not_in_loom());
        }
        let (memory, all) = Memory::new(layout.file_len(), layout.file_len())?;
        // SAFETY: the cells hold the header and the maximum, and live in `memory`.
        let header = unsafe { Header::new(all, layout) };
        header.write();
        Ok(Region {
            // SAFETY: within the cells (see above).
            base: unsafe { all.add(HEADER_LEN) },
            reserved: layout.max_byte_length,
            memory,
            shared: Some(Shared { header }),
        })
    }

    /// Under loom there are no files to open.
    #[cfg(all(loom, target_os = "linux"))]
    pub(crate) fn open_shared(_source: OpenShared) -> Result<Region, Error> {
        Err(Self::not_in_loom())
    }

    #[cfg(all(loom, target_os = "linux"))]
    fn not_in_loom() -> Error {
        Error::Io {
            operation: "use a file in a loom model".into(),
            reason: "loom models only have memfd buffers, in model memory".into(),
        }
    }

    /// A new descriptor of a process-shared region's file that child processes inherit across
    /// `exec` (no close-on-exec flag); `None` for a private region.
    #[cfg(target_os = "linux")]
    pub(crate) fn inheritable_fd(&self) -> Option<Result<std::os::fd::OwnedFd, Error>> {
        #[cfg(not(loom))]
        return self
            .shared
            .as_ref()
            .map(|shared| shared.file.inheritable_fd());
        #[cfg(loom)]
        return None;
    }

    /// The header of a process-shared region; `None` for a private one.
    #[inline]
    pub(crate) fn header(&self) -> Option<&Header> {
        self.shared.as_ref().map(|shared| &shared.header)
    }

    /// The descriptor of a process-shared region's file; `None` for a private region (and
    /// under loom).
    #[cfg(target_os = "linux")]
    pub(crate) fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        #[cfg(not(loom))]
        return self.shared.as_ref().map(|shared| shared.file.fd());
        #[cfg(loom)]
        return None;
    }

    /// Makes the first `len` (at most [`Region::reserved`]) bytes accessible to every thread
    /// once this returns `Ok`; `Err(AllocationFailed)` if the system refuses to commit the
    /// memory, with nothing changed that was accessible before. Thread-safe and never undone:
    /// a byte once accessible stays so for the region's life.
    ///
    /// This is the contract the buffer's length relies on: a length is published only after
    /// the bytes below it were committed, so every byte below a length anyone has seen is
    /// accessible.
    pub(crate) fn commit(&self, len: usize) -> Result<(), Error> {
        debug_assert!(len <= self.reserved);
        #[cfg(all(not(loom), target_os = "linux"))]
        if let Some(shared) = &self.shared {
            // A process-shared region is mapped whole from the start; a named file reserves
            // the filesystem's pages (see `shared_file.rs`).
            return shared.file.reserve(len);
        }
        self.memory.commit(len)
    }

    /// The number of bytes reserved.
    pub(crate) fn reserved(&self) -> usize {
        self.reserved
    }

    /// A pointer to byte `offset`, for hot paths; see [`RegionPtr`].
    ///
    /// # Safety
    /// `offset <= self.reserved()`.
    #[inline]
    pub(crate) unsafe fn ptr_at(&self, offset: usize) -> RegionPtr {
        debug_assert!(offset <= self.reserved());
        // SAFETY: `offset <= reserved` per the caller: the result points into the block or one
        // past its end.
        unsafe { self.base.add(offset) }
    }

    /// Copies `len` bytes starting at `offset` out to `dst` (byte-wise atomic; see `copy.rs`).
    ///
    /// # Safety
    /// `offset + len` bytes are accessible (see [`Region::commit`]); `dst` is valid for `len` byte writes and is not
    /// region memory.
    #[inline]
    pub(crate) unsafe fn copy_out(&self, offset: usize, dst: *mut u8, len: usize) {
        // SAFETY: in bounds per the caller; `self` keeps the memory alive.
        unsafe { copy::copy_out(self.ptr_at(offset), dst, len) }
    }

    /// Copies `len` bytes from `src` into the region at `offset` (byte-wise atomic).
    ///
    /// # Safety
    /// `offset + len` bytes are accessible (see [`Region::commit`]); `src` is valid for `len` byte reads and is not
    /// region memory.
    #[inline]
    pub(crate) unsafe fn copy_in(&self, offset: usize, src: *const u8, len: usize) {
        // SAFETY: in bounds per the caller; `self` keeps the memory alive.
        unsafe { copy::copy_in(src, self.ptr_at(offset), len) }
    }

    /// Writes `value` into the `count` elements of `B` from byte `offset` (each element whole;
    /// see `copy.rs`).
    ///
    /// # Safety
    /// `offset` is a multiple of `B::SIZE` and the `count * B::SIZE` bytes from it are
    /// accessible (see [`Region::commit`]).
    #[inline]
    pub(crate) unsafe fn fill<B: Bits>(&self, offset: usize, count: usize, value: B) {
        // SAFETY: in bounds and aligned per the caller (a region's base is aligned to at least
        // 8 bytes, the largest element size); `self` keeps the memory alive.
        unsafe { copy::fill(self.ptr_at(offset), count, value) }
    }

    /// Copies `len` bytes from `self` at `src_offset` to `dst` at `dst_offset`.
    ///
    /// # Safety
    /// The first `src_offset + len` bytes of `self` and `dst_offset + len` bytes of `dst` are
    /// accessible (see [`Region::commit`]); `dst` is another region.
    pub(crate) unsafe fn copy_to_region(
        &self,
        src_offset: usize,
        dst: &Region,
        dst_offset: usize,
        len: usize,
    ) {
        // SAFETY: both ranges in bounds per the caller; both regions are borrowed, so alive.
        unsafe { copy::copy_between(self.ptr_at(src_offset), dst.ptr_at(dst_offset), len) }
    }
}

// SAFETY: the region's memory is only accessed through atomic operations (see the module docs),
// and the memory owners are plain allocations with no thread affinity, so sharing and sending
// a `Region` between threads is sound.
unsafe impl Send for Region {}
// SAFETY: as for `Send`: every access through `&Region` is atomic.
unsafe impl Sync for Region {}
