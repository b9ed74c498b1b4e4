//! The few system calls process workers need that std does not offer: pidfds (a handle on a
//! process that a reused pid cannot fool), polling a descriptor with a timeout, a close-on-exec
//! pipe, the close-on-exec flag, and SIGTERM through a signalfd. Each wrapper is one call with
//! its checks; nothing here keeps state. [`spawn_failed`] turns a failed call into the crate's
//! error.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::error::Error;

/// `Err` with the system's reason for the last failed call, as an `io::Error`.
fn last_error<T>() -> io::Result<T> {
    Err(io::Error::last_os_error())
}

/// Takes a descriptor a successful call returned.
fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return last_error();
    }
    // SAFETY: the call that returned `fd` just created it, so it is open and nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A pidfd of our child `pid` (close-on-exec). Called before the child is reaped, so `pid`
/// cannot name another process yet.
pub(super) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `pidfd_open(pid, 0)` only creates a descriptor; the arguments are plain integers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    owned(fd as libc::c_int)
}

/// Sends `signal` to the process behind `pidfd` (never to a process that reused its pid).
/// `Ok` if the process was already gone (it exited, maybe not yet reaped).
pub(super) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: plain integer arguments and a null `siginfo` (the kernel fills one in).
    let result = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if result == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return Ok(());
    }
    last_error()
}

/// Waits until one of `fds` is readable (or hung up), at most until `deadline` (`None`: no
/// limit). Returns which ones are, as flags in `fds`' order (all `false`: the deadline passed).
pub(super) fn poll_readable<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    deadline: Option<Instant>,
) -> io::Result<[bool; N]> {
    let mut polled = fds.map(|fd| libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    loop {
        let timeout = match deadline {
            None => -1,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                // Round up, so that a wait never returns before its deadline.
                let ms = left.as_micros().div_ceil(1000);
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            }
        };
        // SAFETY: `polled` is a valid array of `N` pollfd structures for the whole call.
        let n = unsafe { libc::poll(polled.as_mut_ptr(), N as libc::nfds_t, timeout) };
        if n >= 0 {
            return Ok(polled.map(|p| p.revents != 0));
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return last_error();
        }
    }
}

/// Whether the process behind `pidfd` has ended (a pidfd polls readable then, reaped or not).
pub(super) fn has_exited(pidfd: BorrowedFd<'_>) -> bool {
    // A failed poll is taken as "still running": the caller's wait then ends at its deadline
    // or when the peer closes the ring.
    matches!(poll_readable([pidfd], Some(Instant::now())), Ok([true]))
}

/// A pipe whose both ends are close-on-exec: (read end, write end).
pub(super) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe2` writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return last_error();
    }
    Ok((owned(fds[0])?, owned(fds[1])?))
}

/// Takes ownership of the inherited descriptor `fd` after checking it is open, and sets its
/// close-on-exec flag again (so that the processes this one starts do not inherit it).
///
/// # Safety
/// Nothing else in the process may own `fd` (true of a descriptor the parent passed us at
/// `exec`, taken once, before any code of ours could have used the number).
pub(super) unsafe fn take_inherited(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `fcntl(F_SETFD)` on a plain integer: `EBADF` if `fd` is not open.
    if fd < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("descriptor {fd} is not open"),
        ));
    }
    // SAFETY: `fd` is open (checked) and, by the caller's contract, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Blocks SIGTERM in the calling thread (and so in every thread it starts later) and returns a
/// signalfd that becomes readable when one is pending: SIGTERM then no longer ends the process
/// but is read, by a thread, as a request to terminate.
pub(super) fn sigterm_fd() -> io::Result<OwnedFd> {
    // SAFETY: `set` is initialized by `sigemptyset` before any other use; the calls only read
    // and write the local set and this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let error = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if error != 0 {
            return Err(io::Error::from_raw_os_error(error));
        }
        owned(libc::signalfd(-1, &set, libc::SFD_CLOEXEC))
    }
}

/// Consumes the pending signals of a signalfd made by [`sigterm_fd`].
pub(super) fn drain_signalfd(fd: BorrowedFd<'_>) {
    let mut info = [0u8; 128]; // one `signalfd_siginfo`
                               // SAFETY: `info` has room for the 128 bytes the read may write. One pending SIGTERM is one
                               // record; standard signals do not queue, so one read empties it.
    let _ = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
}

/// Ends the process at once with `code`, running nothing (no exit handlers, no destructors):
/// what a watcher thread may do while another thread is still running user code.
pub(super) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` has no preconditions; it does not return.
    unsafe { libc::_exit(code) }
}

/// The parent's pid.
pub(super) fn parent_pid() -> u32 {
    // SAFETY: `getppid` has no preconditions and cannot fail.
    let pid = unsafe { libc::getppid() };
    u32::try_from(pid).unwrap_or(0)
}

/// A short pause for polling loops that have nothing to wait on.
pub(super) const POLL_SLICE: Duration = Duration::from_millis(50);

/// `Err(SpawnFailed)` saying which step (`what`) failed and the system's reason.
pub(super) fn spawn_failed(what: &str, error: std::io::Error) -> Error {
    Error::SpawnFailed {
        reason: format!("{what}: {error}"),
    }
}
