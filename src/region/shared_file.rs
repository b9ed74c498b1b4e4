//! Files shared with other processes: the backing of process-shared buffers (Linux).
//!
//! A buffer's file is a memfd (anonymous; passed to a child as an inherited descriptor) or a
//! named file (any process that can open the path), mapped whole with `MAP_SHARED` through
//! memmap2's `MmapRaw`, which never hands out a slice (docs/architecture.md, soundness rule 1). The file is sized to
//! the header plus the buffer's maximum when it is made and never changes size after, so every
//! byte up to the maximum is backed in every process's mapping, and growing the buffer is one
//! compare-exchange of the header's length word (`header.rs`).
//!
//! The one thing Rust cannot defend against is a file that becomes shorter than a mapping of
//! it: touching a mapped page past the end of the file raises `SIGBUS`. So:
//! - a memfd is sealed (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`) before anyone else can see
//!   it: its size is fixed for good, whatever another process does;
//! - a file is opened only if its size is exactly what its header says, checked with `fstat`
//!   before it is mapped;
//! - a named file cannot be sealed. A process that truncates it while others have it mapped
//!   makes their next access to the lost pages a `SIGBUS`: that is outside what this crate can
//!   prevent, as for any shared file mapping. Only processes trusted not to truncate it should
//!   be able to open it (it is created with mode 0600).
//!
//! A named file's pages are also reserved in the filesystem up to the buffer's length with
//! `fallocate` when it is created and each time it grows, so a full filesystem (a `tmpfs`
//! such as `/dev/shm` has a size limit) is an `Err` from `create` or `grow` rather than a
//! `SIGBUS` when a page is first touched. A memfd's pages come from memory, like an anonymous
//! mapping's, when first touched.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use super::header::{self, Layout, HEADER_LEN, PREFIX_LEN};
use crate::error::Error;

/// A mapped file holding a process-shared buffer: the header, then the data.
pub(super) struct SharedFile {
    map: MmapRaw,
    /// Kept open: the descriptor handed to other processes (`SharedBuffer::as_fd`).
    file: File,
    /// `Some(bytes reserved so far)` for a file of a filesystem (not sealed), whose pages
    /// `fallocate` reserves as the buffer grows; `None` for a sealed memfd.
    reserved: Option<AtomicUsize>,
}

/// The refusal of a path or descriptor that names something other than a regular file.
fn not_a_regular_file() -> Error {
    Error::BadHeader {
        reason: "not a regular file".into(),
    }
}

fn io_error(operation: impl Into<String>, error: io::Error) -> Error {
    Error::Io {
        operation: operation.into(),
        reason: error.to_string(),
    }
}

impl SharedFile {
    /// A new sealed memfd for `layout`, mapped (the caller writes the header).
    pub(super) fn memfd(name: &str, layout: &Layout) -> Result<SharedFile, Error> {
        let operation = || format!("create the memfd {name:?}");
        let c_name = CString::new(label(name)).map_err(|_| Error::Io {
            operation: operation(),
            reason: "the name contains a NUL byte".into(),
        })?;
        // SAFETY: `c_name` is a valid NUL-terminated string; the flags are valid.
        let fd = unsafe {
            libc::memfd_create(c_name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if fd < 0 {
            return Err(io_error(operation(), io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just returned by `memfd_create`, is open, and is owned by nobody else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        set_len(&file, layout)?;
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: `F_ADD_SEALS` on an open memfd created with `MFD_ALLOW_SEALING`.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io_error(
                format!("seal the memfd {name:?}"),
                io::Error::last_os_error(),
            ));
        }
        Self::map(file, layout, false)
    }

    /// A new file at `path` (which must not exist yet) for `layout`, mapped (the caller writes
    /// the header). The file is removed again if anything fails.
    pub(super) fn create(path: &Path, layout: &Layout) -> Result<SharedFile, Error> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io_error(format!("create {}", path.display()), e))?;
        let made = set_len(&file, layout).and_then(|()| Self::map(file, layout, true));
        let made = made.and_then(|shared| shared.reserve(layout.byte_length).map(|()| shared));
        if made.is_err() {
            let _ = std::fs::remove_file(path);
        }
        made
    }

    /// The existing file at `path`, validated and mapped. The path may name anything, so
    /// what is not a regular file is refused from its `stat`, before it is opened: opening a
    /// FIFO read-write would release a writer blocked opening it (whose writes then fail once
    /// we close), and a device's open may block or act. The open itself, for a path swapped
    /// in the meantime, is `O_NONBLOCK` (it cannot block; a regular file ignores the flag)
    /// and `O_NOCTTY` (a terminal's path, opened by a process without a controlling terminal,
    /// would become that process's controlling terminal before it is refused).
    pub(super) fn open(path: &Path) -> Result<(SharedFile, Layout), Error> {
        let metadata =
            std::fs::metadata(path).map_err(|e| io_error(format!("open {}", path.display()), e))?;
        // A directory goes on to fail its open with `EISDIR`: `Err(Io)`, as X1 says.
        if !metadata.is_file() && !metadata.is_dir() {
            return Err(not_a_regular_file());
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| io_error(format!("open {}", path.display()), e))?;
        Self::open_file(file)
    }

    /// The file behind `fd` (a memfd or an open file), validated and mapped.
    pub(super) fn from_fd(fd: OwnedFd) -> Result<(SharedFile, Layout), Error> {
        Self::open_file(File::from(fd))
    }

    /// Validates `file`'s header against its size before mapping anything: the fixed fields
    /// are read with `pread`, which is safe whatever the file is.
    fn open_file(file: File) -> Result<(SharedFile, Layout), Error> {
        let metadata = file
            .metadata()
            .map_err(|e| io_error("read the file's size", e))?;
        if !metadata.file_type().is_file() {
            return Err(not_a_regular_file());
        }
        let mut prefix = [0u8; PREFIX_LEN];
        if metadata.len() >= PREFIX_LEN as u64 {
            file.read_exact_at(&mut prefix, 0)
                .map_err(|e| io_error("read the header", e))?;
        }
        let layout = header::parse(&prefix, metadata.len())?;
        let sealed = shrink_sealed(&file);
        Ok((Self::map(file, &layout, !sealed)?, layout))
    }

    /// Maps the whole of `file` (`layout.file_len()` bytes) shared and read-write.
    fn map(file: File, layout: &Layout, reserve: bool) -> Result<SharedFile, Error> {
        let map = MmapOptions::new()
            .len(layout.file_len())
            .map_raw(&file)
            .map_err(|e| io_error("map the file", e))?;
        Ok(SharedFile {
            map,
            file,
            reserved: reserve.then(|| AtomicUsize::new(0)),
        })
    }

    /// Byte 0 of the mapping (the header's first byte); page-aligned.
    pub(super) fn base(&self) -> NonNull<u8> {
        NonNull::new(self.map.as_mut_ptr()).expect("a mapping is never at address 0")
    }

    /// Reserves the filesystem's pages for the header and the first `byte_length` data bytes
    /// of a named file (a no-op for a memfd): `Err(AllocationFailed)` if the filesystem is
    /// full. Filesystems without `fallocate` allocate on first touch instead.
    pub(super) fn reserve(&self, byte_length: usize) -> Result<(), Error> {
        let Some(reserved) = &self.reserved else {
            return Ok(());
        };
        let end = HEADER_LEN + byte_length;
        let done = reserved.load(Ordering::Acquire);
        if end <= done {
            return Ok(());
        }
        // SAFETY: `fallocate` on our open descriptor; the range lies within the file (`end`
        // is at most the header plus the maximum, the file's size), so it does not change
        // the file's size, and it never changes bytes that hold data.
        let result = unsafe {
            libc::fallocate(
                self.file.as_raw_fd(),
                0,
                done as libc::off_t,
                (end - done) as libc::off_t,
            )
        };
        if result != 0 {
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EOPNOTSUPP) => {}
                Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::ENOMEM) => {
                    return Err(Error::AllocationFailed {
                        bytes: byte_length,
                        reason: format!("the file system could not reserve them: {error}"),
                    })
                }
                _ => return Err(io_error("reserve the file's pages", error)),
            }
        }
        reserved.fetch_max(end, Ordering::Release);
        Ok(())
    }

    /// The file's descriptor.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// A new descriptor of the file without the close-on-exec flag, so that a child process
    /// inherits it across `exec`.
    pub(super) fn inheritable_fd(&self) -> Result<OwnedFd, Error> {
        let duplicate = self
            .file
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| io_error("duplicate the descriptor", e))?;
        // SAFETY: `F_SETFD` with no flags on a descriptor we own clears close-on-exec only.
        if unsafe { libc::fcntl(duplicate.as_raw_fd(), libc::F_SETFD, 0) } != 0 {
            return Err(io_error(
                "make the descriptor inheritable",
                io::Error::last_os_error(),
            ));
        }
        Ok(duplicate)
    }
}

/// The longest memfd name the kernel takes (`memfd_create` fails with `EINVAL` beyond it).
const MEMFD_NAME_MAX: usize = 249;

/// `name` cut to what a memfd's name can hold, at a character boundary: the name is only a
/// label (shown in `/proc/<pid>/fd`), so a long one (a worker's name, say) is no error.
fn label(name: &str) -> &str {
    let mut end = name.len().min(MEMFD_NAME_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Sets the size of a new file to the header plus the whole maximum (sparse).
fn set_len(file: &File, layout: &Layout) -> Result<(), Error> {
    file.set_len(layout.file_len() as u64)
        .map_err(|e| Error::AllocationFailed {
            bytes: layout.max_byte_length,
            reason: format!("could not size the file: {e}"),
        })
}

/// Whether `file` is sealed against shrinking (a memfd of this crate is; a named file cannot be).
fn shrink_sealed(file: &File) -> bool {
    // SAFETY: `F_GET_SEALS` only reads the seals of an open descriptor (an error for files
    // that cannot be sealed).
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & libc::F_SEAL_SHRINK != 0
}
