//! The child's side of a process worker: take what the parent handed over at `exec`, watch for
//! SIGTERM and for the parent's death, run the entry, report how it ended (docs/semantics.md X4).
//!
//! - **Handover**: the parent sets [`ENTRY`] (the entry's name) and [`HANDOFF`] (the numbers of
//!   the inherited descriptors — the link's memfd, the read end of the "parent alive" pipe,
//!   the shared buffers — and the ring capacity). [`take_start`] reads and removes both (so
//!   that workers this child spawns are not confused), checks every descriptor is open before
//!   taking it, and sets close-on-exec on it again.
//! - **SIGTERM** is blocked and read from a signalfd by a watcher thread: it sets the
//!   terminating flag and fires the entry thread's [`Interrupter`], so a blocked `recv` or
//!   `atomics::wait` returns `Err(Terminated)` and the entry can unwind (the parent kills the
//!   process if it has not exited by the end of its grace period).
//! - **The parent's death**: the parent holds the only write end of a pipe whose read end the
//!   child inherited; when the parent process ends, however it ends, the kernel closes that
//!   end and the read end polls readable. The watcher then terminates the entry as above,
//!   closes both rings (a blocked call returns `Closed`), gives the entry [`ORPHAN_GRACE`] to
//!   return, and ends the process. Unlike `PR_SET_PDEATHSIG`, this does not fire when the
//!   parent *thread* that spawned the worker ends, only when the parent process does.

use std::ffi::OsString;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::context::{lock, ChildLink, ProcessContext};
use super::frame;
use super::link::{self, Side};
use super::payload::Payload;
use super::sys;
use crate::atomics::Interrupter;
use crate::buffer::SharedBuffer;
use crate::panics::catch_panic;
use crate::worker::{IntoExitCode, WorkerError};

/// Environment variable: the name of the entry the child runs.
pub(super) const ENTRY: &str = "SHAREDBUF_PROCESS_ENTRY";
/// Environment variable: `<link fd> <alive fd> <ring capacity> [<buffer fd>...]`.
pub(super) const HANDOFF: &str = "SHAREDBUF_PROCESS_HANDOFF";
/// Environment variable: the worker's name.
pub(super) const NAME: &str = "SHAREDBUF_PROCESS_NAME";

/// How long a child whose parent died gives its entry to return before it exits anyway.
pub(super) const ORPHAN_GRACE: Duration = Duration::from_secs(1);

/// The exit code of a child that could not even set up its link (it reports on stderr).
const SETUP_FAILED: i32 = 2;

/// What the child starts with: made by [`take_start`], consumed by the entry's run.
pub struct Start {
    entry: OsString,
    name: String,
    link: Arc<ChildLink>,
    buffers: Result<Vec<SharedBuffer>, String>,
    interrupter: Interrupter,
}

impl fmt::Debug for Start {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Start")
            .field("entry", &self.entry)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Start {
    /// The name of the entry the parent asked for.
    pub(super) fn entry(&self) -> &OsString {
        &self.entry
    }
}

/// The child's start, if this process is a process worker (`None`: a program started as
/// usual). Sets up the link and the watcher thread; a handover that cannot be used ends the
/// process with [`SETUP_FAILED`].
pub(super) fn take_start() -> Option<Start> {
    let entry = std::env::var_os(ENTRY)?;
    let handoff = std::env::var(HANDOFF).unwrap_or_default();
    let name = std::env::var(NAME).unwrap_or_default();
    // Single-threaded still (`init` comes first in `main`), so changing the environment is
    // safe; workers this child spawns must not see these.
    std::env::remove_var(ENTRY);
    std::env::remove_var(HANDOFF);
    std::env::remove_var(NAME);
    match set_up(entry, handoff, name) {
        Ok(start) => Some(start),
        Err(reason) => {
            eprintln!("sharedbuf process worker: cannot start: {reason}");
            std::process::exit(SETUP_FAILED)
        }
    }
}

fn set_up(entry: OsString, handoff: String, name: String) -> Result<Start, String> {
    // Before any thread exists, so every thread inherits the mask.
    let sigterm = sys::sigterm_fd().map_err(|e| format!("blocking SIGTERM: {e}"))?;
    let numbers: Vec<i32> = handoff
        .split_ascii_whitespace()
        .map(|n| n.parse::<i32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("malformed {HANDOFF}: {handoff:?}"))?;
    let [link_fd, alive_fd, capacity, ref buffer_fds @ ..] = numbers[..] else {
        return Err(format!("malformed {HANDOFF}: {handoff:?}"));
    };
    let take = |fd: i32| {
        // SAFETY: the parent made us inherit these descriptors at `exec` and passed their
        // numbers; this runs once (the variable is removed above) at the start of `main`,
        // before any code could have taken them. `take_inherited` checks each is open.
        unsafe { sys::take_inherited(fd) }.map_err(|e| format!("inherited descriptor: {e}"))
    };
    // Each number is taken once: two owners of one descriptor would close it twice (the
    // second close hitting whatever descriptor got the number meanwhile).
    if link_fd == alive_fd || buffer_fds.iter().any(|&fd| fd == link_fd || fd == alive_fd) {
        return Err(format!(
            "a descriptor handed over twice in {HANDOFF}: {handoff:?}"
        ));
    }
    let link_fd = take(link_fd)?;
    let alive = take(alive_fd)?;
    let inherited = take_buffers(buffer_fds, take);
    let link_buffer = SharedBuffer::from_fd(link_fd).map_err(|e| format!("the link: {e}"))?;
    let capacity = usize::try_from(capacity).map_err(|_| "negative ring capacity".to_string())?;
    let ends = link::attach(&link_buffer, capacity, Side::Child)
        .map_err(|e| format!("attaching the rings: {e}"))?;
    let link = Arc::new(ChildLink {
        tx: Mutex::new(ends.tx),
        rx: Mutex::new(ends.rx),
        rings: ends.rings,
        terminating: Default::default(),
    });
    let buffers = inherited.and_then(|fds| {
        fds.into_iter()
            .map(|fd| SharedBuffer::from_fd(fd).map_err(|e| format!("a shared buffer: {e}")))
            .collect()
    });
    let interrupter = Interrupter::new();
    let (watched, remote) = (link.clone(), interrupter.clone());
    std::thread::Builder::new()
        .name("sharedbuf-process-watcher".into())
        .spawn(move || watch(alive, sigterm, &watched, &remote))
        .map_err(|e| format!("starting the watcher thread: {e}"))?;
    Ok(Start {
        entry,
        name,
        link,
        buffers,
        interrupter,
    })
}

/// The descriptors of the shared buffers, one per number in `numbers`, in order, each number
/// taken with `take` once: a buffer shared twice (`share(&b).share(&b)`) is the same number
/// twice, and a repeat gets a duplicate descriptor (close-on-exec) of its own.
fn take_buffers(
    numbers: &[i32],
    take: impl Fn(i32) -> Result<OwnedFd, String>,
) -> Result<Vec<OwnedFd>, String> {
    let mut fds: Vec<OwnedFd> = Vec::with_capacity(numbers.len());
    for (i, &number) in numbers.iter().enumerate() {
        let fd = match numbers[..i].iter().position(|&earlier| earlier == number) {
            Some(first) => fds[first]
                .try_clone()
                .map_err(|e| format!("duplicating inherited descriptor {number}: {e}"))?,
            None => take(number)?,
        };
        fds.push(fd);
    }
    Ok(fds)
}

/// The watcher thread: SIGTERM → terminate the entry; the parent's death → terminate, close
/// the link, and exit after [`ORPHAN_GRACE`].
fn watch(alive: OwnedFd, sigterm: OwnedFd, link: &ChildLink, interrupter: &Interrupter) {
    loop {
        match sys::poll_readable([alive.as_fd(), sigterm.as_fd()], None) {
            Ok([true, _]) => break, // nobody writes the pipe: readable means its writer is gone
            Ok([false, true]) => {
                sys::drain_signalfd(sigterm.as_fd());
                link.terminating.store(true, Ordering::SeqCst);
                interrupter.interrupt();
            }
            Ok([false, false]) => {}
            // poll itself failing (it should not): fall back to asking who our parent is.
            Err(_) => {
                std::thread::sleep(sys::POLL_SLICE);
                if sys::parent_pid() == 1 {
                    break;
                }
            }
        }
    }
    link.terminating.store(true, Ordering::SeqCst);
    interrupter.interrupt();
    link.close();
    std::thread::sleep(ORPHAN_GRACE);
    sys::exit_now(1)
}

/// Runs the entry `f` and reports how it ended; returns the process's exit code.
pub(super) fn run_entry<In, Out, R>(f: fn(ProcessContext<In, Out>) -> R, start: Start) -> i32
where
    In: Payload,
    Out: Payload,
    R: IntoExitCode,
{
    let Start {
        name,
        link,
        buffers,
        interrupter,
        ..
    } = start;
    let buffers = match buffers {
        Ok(buffers) => buffers,
        Err(reason) => return fail(&link, WorkerError::returned(reason)),
    };
    let _installed = interrupter.install();
    // A parent already gone makes this fail: the entry then finds the link closed.
    let _ = frame::send_online(&mut lock(&link.tx));
    let context = ProcessContext::new(link.clone(), buffers, name);
    // A panic payload whose own `Drop` panics is leaked rather than allowed to unwind here.
    let outcome = catch_panic(|| f(context).into_exit_code());
    let code = match outcome {
        Ok(Ok(code)) => code,
        Ok(Err(message)) => report(&link, WorkerError::returned(message)),
        Err(message) => report(&link, WorkerError::panic(message)),
    };
    link.close();
    code
}

/// Ends a child whose entry cannot run (an unknown name, a buffer that does not map).
pub(super) fn fail_before_entry(start: Start, message: String) -> i32 {
    fail(&start.link, WorkerError::returned(message))
}

fn fail(link: &ChildLink, error: WorkerError) -> i32 {
    let code = report(link, error);
    link.close();
    code
}

/// Sends `error` to the parent unless it asked us to terminate (then only `Exit` is
/// reported, as for a thread worker); the exit code is 1 either way.
fn report(link: &ChildLink, error: WorkerError) -> i32 {
    if !link.terminating.load(Ordering::SeqCst) {
        // A parent gone or a link closed: nobody to tell.
        let _ = frame::send_error(&mut lock(&link.tx), &error);
    }
    1
}
