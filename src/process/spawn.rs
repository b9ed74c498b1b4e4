//! Starting the child: `posix_spawn` of this executable, handing over exactly the descriptors
//! it must inherit, and the child's process id for waiting on it and killing it.
//!
//! Why not `std::process::Command`: its only way to let a child inherit a close-on-exec
//! descriptor is a `pre_exec` hook, and any hook makes it `fork` the whole parent instead of
//! using `posix_spawn` (a `vfork`): about 0.1 ms more per spawn. `posix_spawn`'s file actions
//! do it without a hook: `adddup2(fd, fd)` clears the descriptor's close-on-exec flag in the
//! child only (POSIX 2024; glibc does it), so a process another thread spawns meanwhile
//! never inherits it. As `Command` does, the child starts with an empty signal mask and
//! `SIGPIPE` at its default action.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::ptr;

/// A started child process, until it is reaped.
#[derive(Debug)]
pub(super) struct Spawned {
    pid: libc::pid_t,
    /// Set once `waitpid` reaped it: its id may then belong to another process.
    reaped: bool,
}

impl Spawned {
    /// The child's process id.
    pub(super) fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Sends SIGKILL, unless the child was already reaped.
    pub(super) fn kill(&mut self) -> io::Result<()> {
        if self.reaped {
            return Ok(());
        }
        // SAFETY: `kill` only sends a signal; the id is our unreaped child's, so it cannot
        // name another process (a zombie keeps its id until reaped).
        if unsafe { libc::kill(self.pid, libc::SIGKILL) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Records that the child was reaped elsewhere (`waitpid` says there is no such child):
    /// its id may belong to another process now, so it is never signalled or waited for again.
    pub(super) fn forget(&mut self) {
        self.reaped = true;
    }

    /// Waits for the child to exit and reaps it.
    pub(super) fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.reap(0)? {
                return Ok(status);
            }
        }
    }

    /// Reaps the child if it has exited.
    pub(super) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.reap(libc::WNOHANG)
    }

    fn reap(&mut self, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
        if self.reaped {
            return Err(io::Error::other("the child was reaped"));
        }
        let mut status = 0;
        // SAFETY: `status` is a valid `int` to write to; `pid` is our own child.
        match unsafe { libc::waitpid(self.pid, &mut status, flags) } {
            0 => Ok(None),
            -1 => {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    Ok(None)
                } else {
                    Err(error)
                }
            }
            _ => {
                self.reaped = true;
                Ok(Some(ExitStatus::from_raw(status)))
            }
        }
    }
}

/// Starts `exe` with `argv0` and `args` as its arguments, this process's environment plus
/// `env` (later entries win), and the descriptors `inherit` open in the child under the same
/// numbers.
pub(super) fn spawn(
    exe: &Path,
    argv0: &OsStr,
    args: &[OsString],
    env: &[(&OsStr, &OsStr)],
    inherit: &[RawFd],
) -> io::Result<Spawned> {
    let program = c_string(exe.as_os_str())?;
    let argv_owned: Vec<CString> = std::iter::once(argv0)
        .chain(args.iter().map(OsString::as_os_str))
        .map(c_string)
        .collect::<io::Result<_>>()?;
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (key, value) in env {
        vars.retain(|(k, _)| k.as_os_str() != *key);
        vars.push((key.to_os_string(), value.to_os_string()));
    }
    let envp_owned: Vec<CString> = vars
        .iter()
        .map(|(k, v)| {
            let mut entry = k.clone();
            entry.push("=");
            entry.push(v);
            c_string(&entry)
        })
        .collect::<io::Result<_>>()?;
    let argv = null_terminated(&argv_owned);
    let envp = null_terminated(&envp_owned);
    let actions = FileActions::new(inherit)?;
    let attributes = Attributes::new()?;
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: `program` is a NUL-terminated string and
    // `argv`/`envp` are null-terminated arrays of pointers into `argv_owned`/`envp_owned`
    // (all alive until the end of this function), the
    // file actions and attributes were initialised by their constructors, and `pid` is a
    // valid `pid_t` to write to. glibc's `posix_spawn` reports an `exec` failure through its
    // return value.
    let result = unsafe {
        libc::posix_spawn(
            &mut pid,
            program.as_ptr(),
            actions.as_ptr(),
            attributes.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
        )
    };
    if result != 0 {
        return Err(io::Error::from_raw_os_error(result));
    }
    Ok(Spawned { pid, reaped: false })
}

fn c_string(text: &OsStr) -> io::Result<CString> {
    CString::new(text.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "an argument or environment entry holds a NUL byte",
        )
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(ptr::null_mut()))
        .collect()
}

/// `posix_spawn_file_actions_t`: one `dup2(fd, fd)` per descriptor to hand over.
struct FileActions(Box<libc::posix_spawn_file_actions_t>);

impl FileActions {
    fn new(inherit: &[RawFd]) -> io::Result<FileActions> {
        let mut raw = Box::new(MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit());
        // SAFETY: `init` initialises the object it is given, which `raw` provides.
        check(unsafe { libc::posix_spawn_file_actions_init(raw.as_mut_ptr()) })?;
        // SAFETY: initialised just above; `MaybeUninit<T>` has `T`'s layout.
        let mut actions = FileActions(unsafe {
            Box::from_raw(Box::into_raw(raw).cast::<libc::posix_spawn_file_actions_t>())
        });
        for &fd in inherit {
            // SAFETY: `actions` is initialised; the call only records the action.
            check(unsafe { libc::posix_spawn_file_actions_adddup2(&mut *actions.0, fd, fd) })?;
        }
        Ok(actions)
    }

    fn as_ptr(&self) -> *const libc::posix_spawn_file_actions_t {
        &*self.0
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed only here.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut *self.0) };
    }
}

/// `posix_spawnattr_t`: an empty signal mask and `SIGPIPE` at its default, as `Command` does,
/// and `SIGTERM` at its default too: a parent that ignores it (a daemon's setting) would pass
/// that on across the exec, and a `terminate` landing before the child's `process::init`
/// blocked the signal would be discarded instead of ending the child (docs/semantics.md X4).
struct Attributes(Box<libc::posix_spawnattr_t>);

impl Attributes {
    fn new() -> io::Result<Attributes> {
        let mut raw = Box::new(MaybeUninit::<libc::posix_spawnattr_t>::uninit());
        // SAFETY: `init` initialises the object it is given, which `raw` provides.
        check(unsafe { libc::posix_spawnattr_init(raw.as_mut_ptr()) })?;
        // SAFETY: initialised just above; `MaybeUninit<T>` has `T`'s layout.
        let mut attributes = Attributes(unsafe {
            Box::from_raw(Box::into_raw(raw).cast::<libc::posix_spawnattr_t>())
        });
        let mut empty = MaybeUninit::<libc::sigset_t>::uninit();
        let mut defaults = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: each call initialises or edits a `sigset_t` it is given, in this order, and
        // the attribute setters copy the sets into the initialised `attributes`.
        unsafe {
            check(libc::sigemptyset(empty.as_mut_ptr()))?;
            check(libc::sigemptyset(defaults.as_mut_ptr()))?;
            check(libc::sigaddset(defaults.as_mut_ptr(), libc::SIGPIPE))?;
            check(libc::sigaddset(defaults.as_mut_ptr(), libc::SIGTERM))?;
            check(libc::posix_spawnattr_setsigmask(
                &mut *attributes.0,
                empty.as_ptr(),
            ))?;
            check(libc::posix_spawnattr_setsigdefault(
                &mut *attributes.0,
                defaults.as_ptr(),
            ))?;
            check(libc::posix_spawnattr_setflags(
                &mut *attributes.0,
                (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short,
            ))?;
        }
        Ok(attributes)
    }

    fn as_ptr(&self) -> *const libc::posix_spawnattr_t {
        &*self.0
    }
}

impl Drop for Attributes {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed only here.
        unsafe { libc::posix_spawnattr_destroy(&mut *self.0) };
    }
}

/// `posix_spawn*` functions return an error number; `sig*` functions return -1 and set errno.
fn check(result: libc::c_int) -> io::Result<()> {
    match result {
        0 => Ok(()),
        -1 => Err(io::Error::last_os_error()),
        error => Err(io::Error::from_raw_os_error(error)),
    }
}
