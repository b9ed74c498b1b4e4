//! [`ProcessWorker`]: the parent's handle to a child process running an entry, and the event
//! stream it reads (docs/semantics.md X4).
//!
//! # How the event order is kept, and why no call waits on a dead child
//!
//! The child sends `Online`, its messages and `Error` as frames on its ring, in that order,
//! and closes the ring when its entry has returned; a killed child closes nothing. So the
//! parent reads frames until the ring is closed and drained, **or** the process has ended and
//! the ring is drained (nothing can be added after the writer's death), and only then reaps
//! the process and reports `Exit`: `Exit` comes after every message, always.
//!
//! A blocking read or post waits on the ring in slices of [`sys::POLL_SLICE`], and between
//! slices asks the child's pidfd whether it has ended: a child killed by a signal is noticed
//! within a slice, never waited for forever. A pidfd names the process itself, so neither the
//! liveness check nor `terminate`'s signals can reach another process that reused the pid.

use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::context::lock;
use super::event::{ProcessEvent, ProcessExit};
use super::frame::{self, Frame};
use super::link::LinkEnds;
use super::payload::Payload;
use super::spawn::Spawned;
use super::sys::{self, spawn_failed};
use crate::channel::{ByteReceiver, ByteRing, ByteSender};
use crate::error::Error;
use crate::region::MadeIn;

/// The parent's handle to a process worker (Node's `cluster` worker, with the `Worker` API):
/// posts `In` messages to the child, reads its [`ProcessEvent`]s carrying `Out`.
///
/// Dropping the handle without [`join`](Self::join) or [`terminate`](Self::terminate) kills
/// the child (SIGKILL) and reaps it: a dropped worker leaves no process and no zombie behind.
///
/// A child runs an [`Entry`](super::Entry) of this same program, so a program that spawns one
/// calls [`process::init`](super::init) first thing in `main` (docs/semantics.md X4):
///
/// ```
/// # #[cfg(target_os = "linux")] {
/// use sharedbuf::process::{self, Entry, ProcessContext, ProcessEvent, ProcessWorker};
///
/// fn double(ctx: ProcessContext<u32, u32>) -> Result<(), sharedbuf::Error> {
///     let n = ctx.recv()?;
///     ctx.post_message(&(2 * n))
/// }
/// static DOUBLE: Entry<u32, u32> = Entry::new("double", double);
///
/// fn main() -> Result<(), sharedbuf::Error> {
///     process::init(&[&DOUBLE]); // the child runs `double` here and exits
///     let worker = ProcessWorker::builder().spawn(&DOUBLE)?;
///     worker.post_message(&21)?;
///     assert_eq!(worker.recv_event()?, ProcessEvent::Online);
///     assert_eq!(worker.recv_event()?, ProcessEvent::Message(42));
///     assert!(worker.join()?.success());
///     Ok(())
/// }
/// # main().unwrap();
/// # }
/// ```
///
/// The [module example](super#the-child-is-this-same-program) shares a buffer with the child,
/// and `examples/cluster.rs` serves HTTP from several.
///
/// A stopped child (SIGSTOP) is alive: it is not reported exited, and calls waiting on it wait
/// (or reach their deadline) until it continues (docs/semantics.md X8).
///
/// A handle does not cross a `fork` without `exec` (X7): the child process and its rings are the
/// parent's, not the forked child's. There every call that would wait for the child process or
/// touch its rings — `post_message` and its kin, `recv_event` and its kin, `events`,
/// `terminate`, `join` — returns `Err(Error::ForkedHandle)` (`try_recv_event`: `None`) at
/// once, `disconnect` does nothing, and dropping the handle only closes this process's
/// descriptors: the parent's child process is never signalled or waited for from there, and
/// its rings are left as they are.
#[must_use = "dropping a ProcessWorker kills its child process"]
pub struct ProcessWorker<In, Out> {
    pid: u32,
    name: String,
    pidfd: OwnedFd,
    process: Mutex<Process>,
    /// Dropped by the handle's drop, after the child process is gone; leaked in a fork child.
    tx: ManuallyDrop<Mutex<ByteSender>>,
    inbound: ManuallyDrop<Mutex<Inbound>>,
    /// Parent → child, child → parent.
    rings: [ByteRing; 2],
    terminating: AtomicBool,
    /// Where the child's ring ended (the tail position) when `terminate` was first called:
    /// frames up to there were sent before the request. Set once, before `terminating`.
    terminate_at: OnceLock<u32>,
    grace: Duration,
    /// The write end of the "parent alive" pipe: closed when this process ends (or the handle
    /// drops), which the child's watcher sees.
    _alive: OwnedFd,
    /// The child process is not a fork child's (docs/semantics.md X7).
    made_in: MadeIn,
    _types: PhantomData<fn(In) -> Out>,
}

/// What a fork refusal calls a process worker (docs/semantics.md X7).
const WHAT: &str = "process worker";

struct Process {
    child: Spawned,
    /// Set once the child is reaped.
    exit: Option<ProcessExit>,
}

struct Inbound {
    rx: ByteReceiver,
    /// No frame can come any more: the ring was closed and drained, found corrupted, or the
    /// child ended and the ring was drained.
    ring_ended: bool,
    /// `Exit` was returned.
    exit_reported: bool,
}

/// What one read of the child's ring gave.
enum Step<Out> {
    Event(ProcessEvent<Out>),
    /// A frame that is not reported (an `Error` after `terminate`).
    Skipped,
    /// No frame now (or by the end of the wait).
    Empty,
    /// The ring is closed and drained.
    Ended,
}

/// How long a read may wait: not at all, or until a deadline (`None`: none).
#[derive(Clone, Copy)]
enum Patience {
    Now,
    Until(Option<Instant>),
}

impl<In: Payload, Out: Payload> ProcessWorker<In, Out> {
    /// The handle of a child that was just spawned.
    pub(super) fn start(
        mut child: Spawned,
        ends: LinkEnds,
        alive: OwnedFd,
        name: String,
        grace: Duration,
    ) -> Result<ProcessWorker<In, Out>, Error> {
        let pid = child.id();
        let pidfd = match sys::pidfd_open(pid) {
            Ok(fd) => fd,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(spawn_failed("opening a pidfd of the child", error));
            }
        };
        Ok(ProcessWorker {
            pid,
            name,
            pidfd,
            process: Mutex::new(Process { child, exit: None }),
            tx: ManuallyDrop::new(Mutex::new(ends.tx)),
            inbound: ManuallyDrop::new(Mutex::new(Inbound {
                rx: ends.rx,
                ring_ended: false,
                exit_reported: false,
            })),
            rings: ends.rings,
            terminating: AtomicBool::new(false),
            terminate_at: OnceLock::new(),
            grace,
            _alive: alive,
            made_in: MadeIn::now(),
            _types: PhantomData,
        })
    }

    /// Posts `message` to the child, waiting while its ring is full. `Err(Closed)` once the
    /// child is gone or its input was [`disconnect`](Self::disconnect)ed; `Err(ExceedsMax)`
    /// for a message longer than the ring can hold; `Err(Codec)` if it cannot be encoded.
    pub fn post_message(&self, message: &In) -> Result<(), Error> {
        self.post_until(message, Patience::Until(None))
    }

    /// As [`post_message`](Self::post_message), giving up with `Err(Timeout)` after
    /// `timeout`.
    pub fn post_message_timeout(&self, message: &In, timeout: Duration) -> Result<(), Error> {
        self.post_until(
            message,
            Patience::Until(Instant::now().checked_add(timeout)),
        )
    }

    /// As [`post_message`](Self::post_message), but `Err(Full)` at once if the ring has no
    /// room now.
    pub fn try_post_message(&self, message: &In) -> Result<(), Error> {
        self.post_until(message, Patience::Now)
    }

    fn post_until(&self, message: &In, patience: Patience) -> Result<(), Error> {
        self.made_in.check(WHAT)?;
        let mut tx = lock(&self.tx);
        let Patience::Until(deadline) = patience else {
            return frame::send_message(&mut tx, message, None);
        };
        // Room now costs no system call.
        match frame::send_message(&mut tx, message, None) {
            Err(Error::Full) => {}
            other => return other,
        }
        loop {
            let slice = slice_end(deadline);
            match frame::send_message(&mut tx, message, Some(Some(slice))) {
                Err(Error::Timeout) if deadline.is_some_and(|at| Instant::now() >= at) => {
                    return Err(Error::Timeout)
                }
                Err(Error::Timeout) if sys::has_exited(self.pidfd.as_fd()) => {
                    return Err(Error::Closed)
                }
                Err(Error::Timeout) => {}
                other => return other,
            }
        }
    }

    /// Closes the child's input: its [`recv`](super::ProcessContext::recv) returns
    /// `Err(Closed)` after every message posted before (Node's `disconnect`). Posting after
    /// this returns `Err(Closed)`.
    ///
    /// In a fork child of the process that spawned the worker, does nothing: the ring is the
    /// parent's (docs/semantics.md X7).
    pub fn disconnect(&self) {
        if self.made_in.forked() {
            return;
        }
        self.rings[0].close();
    }

    /// The next event, waiting for it. After `Exit` has been returned: `Err(Closed)`.
    /// `Err(Codec)` for a message that does not decode as `Out`, `Err(Corrupted)` once the
    /// child wrote garbage over its ring (then only `Exit` follows); each is returned once, and
    /// the next call goes on.
    pub fn recv_event(&self) -> Result<ProcessEvent<Out>, Error> {
        self.next_event(Patience::Until(None))
    }

    /// As [`recv_event`](Self::recv_event), giving up with `Err(Timeout)` after `timeout`.
    pub fn recv_event_timeout(&self, timeout: Duration) -> Result<ProcessEvent<Out>, Error> {
        self.next_event(Patience::Until(Instant::now().checked_add(timeout)))
    }

    /// The next event if it is there now.
    pub fn try_recv_event(&self) -> Option<ProcessEvent<Out>> {
        self.next_event(Patience::Now).ok()
    }

    /// A blocking iterator over the events; it ends after `Exit` (it skips messages that do
    /// not decode, and a corrupted ring, as [`recv_event`](Self::recv_event) reports them).
    pub fn events(&self) -> Events<'_, In, Out> {
        Events { worker: self }
    }

    fn next_event(&self, patience: Patience) -> Result<ProcessEvent<Out>, Error> {
        self.made_in.check(WHAT)?;
        let mut inbound = lock(&self.inbound);
        if inbound.exit_reported {
            return Err(Error::Closed);
        }
        while !inbound.ring_ended {
            // A frame that is there costs no system call.
            match self.step(&mut inbound, None)? {
                Step::Event(event) => return Ok(event),
                Step::Skipped | Step::Ended => continue,
                Step::Empty => {}
            }
            if sys::has_exited(self.pidfd.as_fd()) {
                // The child is gone: what the ring holds now is all it will ever hold (a
                // frame may have landed between the look above and its death: look again).
                match self.step(&mut inbound, None)? {
                    Step::Event(event) => return Ok(event),
                    Step::Skipped | Step::Ended => continue,
                    Step::Empty => {
                        inbound.ring_ended = true;
                        continue;
                    }
                }
            }
            let deadline = match patience {
                Patience::Now => return Err(Error::Timeout),
                Patience::Until(deadline) => deadline,
            };
            if deadline.is_some_and(|at| Instant::now() >= at) {
                return Err(Error::Timeout);
            }
            if let Step::Event(event) = self.step(&mut inbound, Some(slice_end(deadline)))? {
                return Ok(event);
            }
        }
        let deadline = match patience {
            Patience::Now => Some(Instant::now()),
            Patience::Until(deadline) => deadline,
        };
        let exit = self.wait_exit(deadline)?;
        inbound.exit_reported = true;
        Ok(ProcessEvent::Exit(exit))
    }

    /// Reads one frame, now (`None`) or waiting until `until`.
    fn step(&self, inbound: &mut Inbound, until: Option<Instant>) -> Result<Step<Out>, Error> {
        match frame::recv_frame::<Out>(&mut inbound.rx, until.map(Some)) {
            Ok(Some(Frame::Online)) => Ok(Step::Event(ProcessEvent::Online)),
            Ok(Some(Frame::Message(message))) => Ok(Step::Event(ProcessEvent::Message(message))),
            // After `terminate`, only `Exit` (as for a thread worker, W9) — unless the entry
            // had ended before the request: an `Error` frame that was in the ring then stands
            // (the child itself sends none once it is asked to terminate).
            Ok(Some(Frame::Error(_)))
                if self.terminating.load(Ordering::SeqCst)
                    && !self
                        .terminate_at
                        .get()
                        .is_some_and(|&at| inbound.rx.read_up_to(at)) =>
            {
                Ok(Step::Skipped)
            }
            Ok(Some(Frame::Error(error))) => Ok(Step::Event(ProcessEvent::Error(error))),
            Ok(None) | Err(Error::Timeout) => Ok(Step::Empty),
            Err(Error::Closed) => {
                inbound.ring_ended = true;
                Ok(Step::Ended)
            }
            Err(error @ Error::Corrupted { .. }) => {
                inbound.ring_ended = true;
                Err(error)
            }
            Err(other) => Err(other),
        }
    }

    /// Asks the child to end (SIGTERM: its blocked calls return `Err(Terminated)`, see
    /// [`ProcessContext::is_terminating`](super::ProcessContext::is_terminating)), kills it
    /// (SIGKILL) if it has not exited after the grace period
    /// ([`ProcessWorkerBuilder::grace`](super::ProcessWorkerBuilder::grace)), and returns how
    /// it ended. From then on no `Error` event is reported, unless the entry had already
    /// returned its error (or panicked) when `terminate` was called (W9: its `Error` was sent
    /// before the request, and stands); messages it posted before can still be read, then
    /// `Exit`. A child that had already exited by itself is only reaped, and keeps its own
    /// ending.
    ///
    /// `Err(Error::ForkedHandle)` in the child of a `fork()` (the process is the parent's: it
    /// is never signalled, X7); `Err(Error::SpawnFailed)` if the system refuses the signal or
    /// the wait.
    pub fn terminate(&self) -> Result<ProcessExit, Error> {
        self.terminate_timeout(self.grace)
    }

    /// As [`terminate`](Self::terminate) with a grace period of `grace`. Unlike
    /// [`Worker::terminate_timeout`](crate::worker::Worker::terminate_timeout), whose thread
    /// cannot be killed, this never gives up with `Err(Timeout)`: after `grace` the child is
    /// killed.
    pub fn terminate_timeout(&self, grace: Duration) -> Result<ProcessExit, Error> {
        // A fork child must never signal the parent's child process.
        self.made_in.check(WHAT)?;
        // A child that already ended by itself keeps its own ending (and its `Error`).
        if self.has_exited() {
            return self.wait_exit(None);
        }
        let _ = self.terminate_at.set(self.rings[1].published());
        self.terminating.store(true, Ordering::SeqCst);
        sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGTERM)
            .map_err(|e| spawn_failed("sending SIGTERM", e))?;
        match self.wait_exit(Instant::now().checked_add(grace)) {
            Err(Error::Timeout) => {}
            other => return other,
        }
        sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL)
            .map_err(|e| spawn_failed("sending SIGKILL", e))?;
        self.wait_exit(None)
    }

    /// Waits for the child to exit and returns how it ended. Events not read yet are dropped
    /// (read while waiting, so a child blocked on a full ring is not stuck).
    /// `Err(Error::ForkedHandle)` in the child of a `fork()` (X7); `Err(Error::SpawnFailed)`
    /// if the system refuses the wait.
    pub fn join(self) -> Result<ProcessExit, Error> {
        self.join_until(None)
    }

    /// As [`join`](Self::join), but waits at most `timeout`: `Err(Error::Timeout)` if the
    /// child is still running then (nothing is sent to it). The handle stays usable either
    /// way: join again, wait for events, terminate. The events it read while waiting are
    /// dropped, as `join` drops them; once it has returned `Ok`, every later `join` or
    /// `join_timeout` returns the same exit.
    pub fn join_timeout(&self, timeout: Duration) -> Result<ProcessExit, Error> {
        self.join_until(Instant::now().checked_add(timeout))
    }

    fn join_until(&self, deadline: Option<Instant>) -> Result<ProcessExit, Error> {
        self.made_in.check(WHAT)?;
        loop {
            match self.next_event(Patience::Until(deadline)) {
                Ok(ProcessEvent::Exit(exit)) => return Ok(exit),
                Ok(_) | Err(Error::Codec { .. } | Error::Corrupted { .. }) => {}
                Err(Error::Closed) => return self.wait_exit(deadline),
                Err(other) => return Err(other),
            }
        }
    }

    /// Reaps the child once it has exited, by `deadline` (`Err(Timeout)` after).
    fn wait_exit(&self, deadline: Option<Instant>) -> Result<ProcessExit, Error> {
        loop {
            {
                let mut process = lock(&self.process);
                if let Some(exit) = process.exit {
                    return Ok(exit);
                }
                let reaped = match process.child.try_wait() {
                    Ok(reaped) => reaped,
                    // Reaped by someone else: the kernel itself when this process ignores
                    // SIGCHLD (a daemon's way to have no zombies), or a `waitpid(-1)`
                    // elsewhere. How it ended is lost; that it ended is not (its pidfd says).
                    Err(error)
                        if error.raw_os_error() == Some(libc::ECHILD)
                            && sys::has_exited(self.pidfd.as_fd()) =>
                    {
                        process.child.forget();
                        let exit = ProcessExit::unknown(self.terminating.load(Ordering::SeqCst));
                        process.exit = Some(exit);
                        return Ok(exit);
                    }
                    Err(error) => return Err(spawn_failed("waiting for the child", error)),
                };
                if let Some(status) = reaped {
                    let exit = ProcessExit::new(status, self.terminating.load(Ordering::SeqCst));
                    process.exit = Some(exit);
                    return Ok(exit);
                }
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                return Err(Error::Timeout);
            }
            // Readable once the child has ended: then the next `try_wait` reaps it.
            sys::poll_readable([self.pidfd.as_fd()], deadline)
                .map_err(|e| spawn_failed("polling the child's pidfd", e))?;
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the child process has ended (it may not be reaped yet).
    pub fn has_exited(&self) -> bool {
        sys::has_exited(self.pidfd.as_fd())
    }
}

/// The end of a wait slice: a liveness check comes at least this often.
fn slice_end(deadline: Option<Instant>) -> Instant {
    let slice = Instant::now() + sys::POLL_SLICE;
    match deadline {
        Some(at) if at < slice => at,
        _ => slice,
    }
}

impl<In, Out> Drop for ProcessWorker<In, Out> {
    fn drop(&mut self) {
        if self.made_in.forked() {
            // A fork child: the child process and the rings are the parent's. Never signal or
            // wait for that process, and leak the ring ends (dropping them would close the
            // parent's rings); the descriptors close as usual (docs/semantics.md X7).
            return;
        }
        let process = self
            .process
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if process.exit.is_none() {
            let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
            let _ = process.child.wait();
        }
        // SAFETY: the handle's drop; the ring ends are dropped here once and never used again.
        unsafe {
            ManuallyDrop::drop(&mut self.tx);
            ManuallyDrop::drop(&mut self.inbound);
        }
    }
}

impl<In, Out> fmt::Debug for ProcessWorker<In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessWorker")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .finish_non_exhaustive()
    }
}

/// Blocking iterator over a process worker's events ([`ProcessWorker::events`]); ends after
/// `Exit`.
#[must_use = "iterators are lazy and do nothing unless consumed"]
pub struct Events<'a, In, Out> {
    worker: &'a ProcessWorker<In, Out>,
}

impl<In, Out> fmt::Debug for Events<'_, In, Out> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("worker", &self.worker)
            .finish()
    }
}

impl<In: Payload, Out: Payload> Iterator for Events<'_, In, Out> {
    type Item = ProcessEvent<Out>;
    fn next(&mut self) -> Option<ProcessEvent<Out>> {
        loop {
            match self.worker.recv_event() {
                Ok(event) => return Some(event),
                Err(Error::Codec { .. } | Error::Corrupted { .. }) => {}
                Err(_) => return None,
            }
        }
    }
}
