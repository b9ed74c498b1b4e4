//! [`ProcessWorkerBuilder`]: a process worker's settings, and the spawn itself — the link's
//! memfd, the "parent alive" pipe, and a `posix_spawn` re-running this executable that
//! inherits exactly those descriptors and the shared buffers (docs/semantics.md X4).
//!
//! Every descriptor the crate makes is close-on-exec. The ones a child must inherit lose that
//! flag only in the child (`spawn.rs`: a `dup2(fd, fd)` file action), so a process that
//! another thread spawns meanwhile never inherits them.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use super::child::{ENTRY, HANDOFF, NAME};
use super::entry::{check_registered, Entry};
use super::handle::ProcessWorker;
use super::link::{self, Side};
use super::payload::Payload;
use super::spawn;
use super::sys::{self, spawn_failed};
use crate::buffer::SharedBuffer;
use crate::error::Error;
use crate::worker::IntoExitCode;

/// The default grace period of [`ProcessWorker::terminate`]: how long a child has to return
/// after SIGTERM before it is killed.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(1);

/// Settings for a [`ProcessWorker`]: made by [`ProcessWorker::builder`], consumed by
/// [`spawn`](Self::spawn).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct ProcessWorkerBuilder {
    name: Option<String>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    shared: Vec<SharedBuffer>,
    capacity: usize,
    grace: Duration,
}

impl Default for ProcessWorkerBuilder {
    fn default() -> Self {
        ProcessWorkerBuilder {
            name: None,
            args: Vec::new(),
            env: Vec::new(),
            shared: Vec::new(),
            capacity: link::DEFAULT_CAPACITY,
            grace: DEFAULT_GRACE,
        }
    }
}

impl ProcessWorkerBuilder {
    /// The worker's name ([`ProcessContext::name`](super::ProcessContext::name); also the
    /// label of its link's memfd). Default: the entry's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Appends a command-line argument of the child (after the executable's path, which is
    /// its `argv[0]`); the child reads them with `std::env::args`.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Appends command-line arguments of the child.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable of the child (it inherits this process's environment
    /// otherwise).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Hands `buffer` over to the child: it appears in
    /// [`ProcessContext::shared_buffers`](super::ProcessContext::shared_buffers), in the
    /// order of these calls, as the same memory (a buffer shared twice appears twice, as two
    /// mappings of the same file). It must be process-shared (a memfd or a shared file;
    /// [`spawn`](Self::spawn) refuses a private buffer).
    pub fn share(mut self, buffer: &SharedBuffer) -> Self {
        self.shared.push(buffer.clone());
        self
    }

    /// Data bytes of each of the two rings (a power of two,
    /// [`ByteRing::MIN_CAPACITY`](crate::channel::ByteRing::MIN_CAPACITY) to
    /// [`ByteRing::MAX_CAPACITY`](crate::channel::ByteRing::MAX_CAPACITY); default 256 KiB).
    /// A message (encoded, plus one byte) may take up to the capacity minus 8 bytes.
    pub fn capacity(mut self, bytes: usize) -> Self {
        self.capacity = bytes;
        self
    }

    /// How long [`ProcessWorker::terminate`] waits after SIGTERM before SIGKILL (default
    /// [`DEFAULT_GRACE`]).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Starts the child: this executable again, running `entry` (which must have been given
    /// to [`init`](super::init) in this process: `Err(SpawnFailed)` otherwise).
    pub fn spawn<In, Out, R>(
        self,
        entry: &Entry<In, Out, R>,
    ) -> Result<ProcessWorker<In, Out>, Error>
    where
        In: Payload,
        Out: Payload,
        R: IntoExitCode,
    {
        check_registered(entry.name())?;
        if let Some(private) = self.shared.iter().position(|b| b.as_fd().is_none()) {
            return Err(Error::InvalidParameter {
                parameter: "shared buffer",
                value: private as u64,
                expected: "a process-shared buffer (memfd, create or open)",
            });
        }
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| entry.name().to_string());
        let link_buffer = link::create(&name, self.capacity)?;
        let ends = link::attach(&link_buffer, self.capacity, Side::Parent)?;
        let (alive_read, alive_write) = sys::pipe().map_err(|e| {
            spawn_failed(
                "creating the pipe that tells the child its parent is alive",
                e,
            )
        })?;

        let link_fd = link_buffer
            .as_fd()
            .expect("a memfd buffer has a descriptor");
        let mut inherited: Vec<RawFd> = vec![link_fd.as_raw_fd(), alive_read.as_raw_fd()];
        inherited.extend(
            self.shared
                .iter()
                .filter_map(|b| b.as_fd())
                .map(|fd| fd.as_raw_fd()),
        );
        let mut handoff = format!("{} {} {}", inherited[0], inherited[1], self.capacity);
        for fd in &inherited[2..] {
            handoff.push_str(&format!(" {fd}"));
        }

        let mut env: Vec<(&OsStr, &OsStr)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
            .collect();
        env.push((OsStr::new(ENTRY), OsStr::new(entry.name())));
        env.push((OsStr::new(HANDOFF), OsStr::new(&handoff)));
        env.push((OsStr::new(NAME), OsStr::new(&name)));
        // The descriptors are open: their owners (`link_buffer`, `alive_read`, `self.shared`)
        // live until after `spawn` returns.
        let child = spawn::spawn(
            Path::new(THIS_PROGRAM),
            argv0(),
            &self.args,
            &env,
            &inherited,
        )
        .map_err(|e| spawn_failed("starting the child process", e))?;
        drop(alive_read); // the child has its copy; ours would keep its pipe from ever ending
        ProcessWorker::start(child, ends, alive_write, name, self.grace)
    }
}

impl ProcessWorker<(), ()> {
    /// Settings for a new process worker.
    pub fn builder() -> ProcessWorkerBuilder {
        ProcessWorkerBuilder::default()
    }
}

impl<In: Payload, Out: Payload> ProcessWorker<In, Out> {
    /// Starts a process worker running `entry` with default settings (see
    /// [`ProcessWorkerBuilder::spawn`]).
    pub fn spawn<R: IntoExitCode>(
        entry: &Entry<In, Out, R>,
    ) -> Result<ProcessWorker<In, Out>, Error> {
        ProcessWorker::builder().spawn(entry)
    }
}

/// What the child executes: the running program's own file, through the kernel's link to it.
///
/// Not the path that link names (`std::env::current_exe`): once the file at that path is
/// deleted or replaced (a rebuild, a package upgrade of a running server), the path names
/// nothing (`/proc/self/exe` then reads `<path> (deleted)`) or *another program*, whose
/// entries and message types need not be this one's. The link itself still opens the file
/// this process runs, whatever happened to its name; `posix_spawn`'s child resolves it
/// before its `exec`, while it still runs this program's image.
const THIS_PROGRAM: &str = "/proc/self/exe";

/// The child's `argv[0]`: this executable's path as it was first looked up (a label only:
/// what runs is [`THIS_PROGRAM`]).
fn argv0() -> &'static OsStr {
    static ARGV0: OnceLock<OsString> = OnceLock::new();
    ARGV0.get_or_init(|| {
        std::env::current_exe()
            .map(PathBuf::into_os_string)
            .unwrap_or_else(|_| OsString::from(THIS_PROGRAM))
    })
}
