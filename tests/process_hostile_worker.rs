//! Process workers under conditions a careless or hostile user makes (docs/semantics.md X4).
//!
//! A worker is *this* program even when the file it was started from is gone or was replaced:
//! a rebuild, or a package upgrade of a running server, must not make `spawn` fail, nor start
//! another program that would read this one's messages. Those tests copy this binary to a
//! scratch directory and run the copy with [`STAGE`] set; the copy deletes or replaces its own
//! file, then spawns workers from it and checks they are the program it runs (a round trip).
//! Its exit status is the verdict.
//!
//! `harness = false`: `main` calls `process::init` first, as every program using process
//! workers must.
#![cfg(target_os = "linux")]

mod process_support;

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sharedbuf::process::{self, Entry, ProcessContext, ProcessEvent, ProcessWorker};
use sharedbuf::{atomics, Error, Int32Array, SharedBuffer};

/// A hang detector, not a speed measurement.
const WATCHDOG: Duration = Duration::from_secs(60);
/// Set in the copy: what it does to its own file before it spawns.
const STAGE: &str = "SHAREDBUF_TEST_EXE_STAGE";
/// Set in the copy: its own path.
const SELF_PATH: &str = "SHAREDBUF_TEST_EXE_PATH";

/// Answers one number with the next.
fn increment(ctx: ProcessContext<u32, u32>) -> Result<(), Error> {
    let n = ctx.recv()?;
    ctx.post_message(&(n + 1))
}
static INCREMENT: Entry<u32, u32> = Entry::new("increment", increment);

/// Adds 1 through each buffer it was handed, and reports their descriptor numbers.
fn descriptors(ctx: ProcessContext<(), Vec<i32>>) -> Result<(), Error> {
    let mut fds = Vec::new();
    for buffer in ctx.shared_buffers() {
        atomics::add(&Int32Array::new(buffer)?, 0, 1)?;
        fds.push(buffer.as_fd().map_or(-1, |fd| fd.as_raw_fd()));
    }
    ctx.post_message(&fds)
}
static DESCRIPTORS: Entry<(), Vec<i32>> = Entry::new("descriptors", descriptors);

/// The word of `fails_then_lingers`'s buffer: 1 once the process is in its exit handler (its
/// entry returned, its `Error` frame is sent).
static LINGER: std::sync::OnceLock<SharedBuffer> = std::sync::OnceLock::new();

/// An exit handler that keeps the process alive (as a slow library destructor would), saying
/// so in the buffer; the watchdog bounds it.
extern "C" fn linger() {
    if let Some(buffer) = LINGER.get() {
        let word = Int32Array::new(buffer).unwrap();
        atomics::store(&word, 0, 1).unwrap();
        atomics::notify(&word, 0, None).unwrap();
        std::thread::sleep(WATCHDOG);
    }
}

/// Fails on its own (returns `Err`), then lingers in an exit handler until it is killed.
fn fails_then_lingers(ctx: ProcessContext<(), ()>) -> Result<(), String> {
    let _ = LINGER.set(ctx.shared_buffers()[0].clone());
    // SAFETY: registers a plain `extern "C" fn` with no arguments.
    unsafe { libc::atexit(linger) };
    Err("failed by itself".into())
}
static FAILS_THEN_LINGERS: Entry<(), (), Result<(), String>> =
    Entry::new("fails_then_lingers", fails_then_lingers);

/// Spawns a worker and checks it runs this program's entry: `Online`, the answer, exit 0.
fn round_trip(what: &str) -> Result<(), String> {
    let worker = ProcessWorker::spawn(&INCREMENT).map_err(|e| format!("{what}: spawn: {e}"))?;
    worker
        .post_message(&41)
        .map_err(|e| format!("{what}: post: {e}"))?;
    let mut events = Vec::new();
    loop {
        match worker.recv_event_timeout(WATCHDOG) {
            Ok(ProcessEvent::Exit(exit)) => {
                events.push(format!("Exit({exit})"));
                break;
            }
            Ok(event) => events.push(format!("{event:?}")),
            Err(e) => return Err(format!("{what}: {e} after {events:?}")),
        }
    }
    if events != ["Online", "Message(42)", "Exit(exit code 0)"] {
        return Err(format!(
            "{what}: the worker is not this program: {events:?}"
        ));
    }
    Ok(())
}

/// The copy's part: `stage` names what happens to its own file first.
fn run_stage(stage: &str) -> Result<(), String> {
    let me = PathBuf::from(std::env::var_os(SELF_PATH).ok_or("no path given")?);
    match stage {
        "deleted" => {
            std::fs::remove_file(&me).map_err(|e| format!("deleting the copy: {e}"))?;
            round_trip("after the file was deleted")
        }
        "replaced" => {
            round_trip("before the file was replaced")?;
            // Another program at the same path, as an upgrade leaves it.
            let new = me.with_extension("new");
            std::fs::write(&new, "#!/bin/sh\nexit 42\n").map_err(|e| e.to_string())?;
            std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| e.to_string())?;
            std::fs::rename(&new, &me).map_err(|e| format!("replacing the copy: {e}"))?;
            round_trip("after the file was replaced")
        }
        other => Err(format!("unknown stage {other:?}")),
    }
}

/// Copies this binary to `dir`, runs the copy in `stage`, and returns how it ended.
fn run_copy(dir: &Path, stage: &str) -> ExitStatus {
    let copy = dir.join(format!("copy-{stage}"));
    std::fs::copy(std::env::current_exe().unwrap(), &copy).expect("copy the test binary");
    let mut child = Command::new(&copy)
        .env(STAGE, stage)
        .env(SELF_PATH, &copy)
        .stdin(Stdio::null())
        .spawn()
        .expect("run the copy");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{stage}: the copy hung (killed after {WATCHDOG:?})");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = std::fs::remove_file(&copy);
    status
}

fn scratch_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("process_hostile_worker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// docs/semantics.md X4: the executable's file deleted while it runs (a rebuild unlinks it):
// a worker still starts, running this program.
fn a_worker_starts_after_the_executable_was_deleted() {
    let dir = scratch_dir();
    let status = run_copy(&dir, "deleted");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "the copy failed: {status}");
}

// docs/semantics.md X4: another program installed at the executable's path after a first
// spawn: the next worker is still this program, not the new file.
fn a_worker_is_this_program_after_the_executable_was_replaced() {
    let dir = scratch_dir();
    let status = run_copy(&dir, "replaced");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "the copy failed: {status}");
}

// docs/semantics.md X4: a buffer handed over twice (`share(&b).share(&b)`, or two clones) is
// the same descriptor number twice in the handoff; the child must not take ownership of that
// number twice (two owners close it twice: the second close hits whatever descriptor got the
// number meanwhile, and a debug build aborts on it). It gets the buffer twice, as the same
// memory, under two descriptors.
fn a_buffer_shared_twice_is_not_owned_twice_in_the_child() {
    let buffer = SharedBuffer::memfd("shared-twice", 4).unwrap();
    let worker = ProcessWorker::builder()
        .share(&buffer)
        .share(&buffer.clone())
        .spawn(&DESCRIPTORS)
        .unwrap();
    let mut events = Vec::new();
    loop {
        match worker.recv_event_timeout(WATCHDOG).unwrap() {
            ProcessEvent::Exit(exit) => {
                assert!(
                    exit.success(),
                    "the child ended with {exit} after {events:?}"
                );
                break;
            }
            event => events.push(event),
        }
    }
    let [ProcessEvent::Online, ProcessEvent::Message(fds)] = &events[..] else {
        panic!("{events:?}");
    };
    assert_eq!(fds.len(), 2);
    assert!(
        fds[0] >= 0 && fds[1] >= 0 && fds[0] != fds[1],
        "one descriptor owned twice: {fds:?}"
    );
    assert_eq!(
        atomics::load(&Int32Array::new(&buffer).unwrap(), 0).unwrap(),
        2,
        "both are this buffer"
    );
}

// docs/semantics.md X4 with W9: a child whose entry had returned an error before
// `terminate()` was called keeps its `Error` event (only errors of an entry asked to
// terminate are not reported). Here the child's `Error` frame is in the ring, and the process
// is still winding down (an exit handler), when `terminate()` comes.
fn an_error_sent_before_terminate_is_still_reported() {
    let flag = SharedBuffer::memfd("linger", 4).unwrap();
    let word = Int32Array::new(&flag).unwrap();
    let worker = ProcessWorker::builder()
        .share(&flag)
        .spawn(&FAILS_THEN_LINGERS)
        .unwrap();
    while atomics::load(&word, 0).unwrap() == 0 {
        let waited = atomics::wait(&word, 0, 0, Some(WATCHDOG)).unwrap();
        assert_ne!(
            waited,
            sharedbuf::WaitResult::TimedOut,
            "the child never got to exit"
        );
    }
    // The grace period passes (the handler lingers): SIGKILL.
    let exit = worker.terminate_timeout(Duration::from_millis(1)).unwrap();
    assert_eq!(exit.signal(), Some(libc::SIGKILL));
    let events: Vec<_> = worker.events().collect();
    assert!(
        matches!(
            &events[..],
            [ProcessEvent::Online, ProcessEvent::Error(error), ProcessEvent::Exit(_)]
                if error.message() == "failed by itself"
        ),
        "{events:?}"
    );
}

/// Says it is ready, then blocks in `recv` until asked to terminate.
fn blocks_in_recv(ctx: ProcessContext<(), String>) -> Result<(), Error> {
    ctx.post_message(&"ready".to_string())?;
    ctx.recv()
}
static BLOCKS_IN_RECV: Entry<(), String> = Entry::new("blocks_in_recv", blocks_in_recv);

// docs/semantics.md X4 (W3): a parent that ignores SIGTERM (SIG_IGN is inherited across
// exec) still terminates its workers gracefully: their blocked calls return Terminated.
fn terminate_is_graceful_when_the_parent_ignores_sigterm() {
    // SAFETY: sets the disposition of SIGTERM to a constant (no handler code).
    let previous = unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    let worker = ProcessWorker::builder()
        .grace(WATCHDOG) // it must end by itself, long before SIGKILL
        .spawn(&BLOCKS_IN_RECV);
    // SAFETY: as above, back to what it was.
    unsafe { libc::signal(libc::SIGTERM, previous) };
    let worker = worker.unwrap();
    assert_eq!(
        worker.recv_event_timeout(WATCHDOG).unwrap(),
        ProcessEvent::Online
    );
    assert_eq!(
        worker.recv_event_timeout(WATCHDOG).unwrap(),
        ProcessEvent::Message("ready".to_string())
    );
    let exit = worker.terminate().unwrap();
    assert_eq!((exit.code(), exit.signal()), (Some(1), None), "{exit}");
}

/// Reports whether this process ignores SIGTERM (the `SigIgn` mask of /proc/self/status).
fn ignores_sigterm(ctx: ProcessContext<(), bool>) -> Result<(), Error> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| Error::Io {
        operation: "reading /proc/self/status".into(),
        reason: e.to_string(),
    })?;
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .expect("/proc/self/status has a SigIgn line");
    ctx.post_message(&(mask & (1 << (libc::SIGTERM - 1)) != 0))
}
static IGNORES_SIGTERM: Entry<(), bool> = Entry::new("ignores_sigterm", ignores_sigterm);

// docs/semantics.md X4 (W3): a worker of a parent that ignores SIGTERM does not inherit that
// disposition (SIG_IGN survives exec): before its `process::init` blocked the signal, a
// `terminate` landing there was discarded, and the worker ran on until the grace period's
// SIGKILL instead of ending at once as any other worker does there.
fn a_worker_does_not_inherit_an_ignored_sigterm() {
    // SAFETY: sets the disposition of SIGTERM to a constant (no handler code).
    let previous = unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    let worker = ProcessWorker::spawn(&IGNORES_SIGTERM);
    // SAFETY: as above, back to what it was.
    unsafe { libc::signal(libc::SIGTERM, previous) };
    let worker = worker.unwrap();
    assert_eq!(
        worker.recv_event_timeout(WATCHDOG).unwrap(),
        ProcessEvent::Online
    );
    assert_eq!(
        worker.recv_event_timeout(WATCHDOG).unwrap(),
        ProcessEvent::Message(false),
        "the worker ignores SIGTERM"
    );
    assert_eq!(worker.join().unwrap().code(), Some(0));
}

/// A message whose `Serialize` fails or panics part way through writing it into the ring
/// (after its measure went fine and some of its bytes are written).
#[derive(Debug, Clone, PartialEq)]
enum Tricky {
    Fine(u32),
    Fails(u32),
    Panics(u32),
}

impl serde::Serialize for Tricky {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeTuple};
        thread_local! {
            /// Serializations so far: a post measures (even), then writes (odd).
            static CALLS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        let call = CALLS.with(|calls| calls.replace(calls.get() + 1));
        let mut tuple = serializer.serialize_tuple(3)?;
        match (self, call % 2) {
            // Measured fine; fails or panics only while written into the ring.
            (Tricky::Fails(n), 1) => {
                tuple.serialize_element(n)?;
                tuple.serialize_element(&vec![7u8; 100])?;
                Err(S::Error::custom("refuses to be written"))
            }
            (Tricky::Panics(n), 1) => {
                tuple.serialize_element(n)?;
                tuple.serialize_element(&vec![7u8; 100])?;
                panic!("a Serialize that panics")
            }
            (Tricky::Fine(n) | Tricky::Fails(n) | Tricky::Panics(n), _) => {
                tuple.serialize_element(n)?;
                tuple.serialize_element(&vec![7u8; 100])?;
                tuple.serialize_element(n)?;
                tuple.end()
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Tricky {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (n, _, m): (u32, Vec<u8>, u32) = serde::Deserialize::deserialize(deserializer)?;
        assert_eq!(n, m);
        Ok(Tricky::Fine(n))
    }
}

/// Answers every message with its number until the parent disconnects.
fn echo_tricky(ctx: ProcessContext<Tricky, u32>) -> Result<(), Error> {
    loop {
        match ctx.recv() {
            Ok(Tricky::Fine(n) | Tricky::Fails(n) | Tricky::Panics(n)) => ctx.post_message(&n)?,
            Err(Error::Closed) => return Ok(()),
            Err(other) => return Err(other),
        }
    }
}
static ECHO_TRICKY: Entry<Tricky, u32> = Entry::new("echo_tricky", echo_tricky);

// docs/semantics.md X4: a message whose `Serialize` fails (`Err(Codec)`) or panics after
// writing part of it sends nothing, and the link goes on: the next messages arrive, in order.
fn a_serialize_that_fails_or_panics_midway_sends_nothing() {
    let worker = ProcessWorker::builder()
        .capacity(1024) // a few messages per lap: the failed ones' reservations wrap
        .spawn(&ECHO_TRICKY)
        .unwrap();
    let mut expected = Vec::new();
    for n in 0..40u32 {
        match n % 3 {
            0 => {
                worker.post_message(&Tricky::Fine(n)).unwrap();
                expected.push(ProcessEvent::Message(n));
            }
            1 => assert!(matches!(
                worker.post_message(&Tricky::Fails(n)),
                Err(Error::Codec { .. })
            )),
            _ => {
                let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    worker.post_message(&Tricky::Panics(n))
                }));
                assert!(panicked.is_err());
            }
        }
    }
    worker.disconnect();
    let events: Vec<_> = worker.events().collect();
    assert_eq!(events.first(), Some(&ProcessEvent::Online));
    assert_eq!(events[1..events.len() - 1], expected[..]);
    assert!(
        matches!(events.last(), Some(ProcessEvent::Exit(exit)) if exit.success()),
        "{events:?}"
    );
}

/// Returns at once, successfully.
fn returns(_: ProcessContext<(), ()>) -> Result<(), Error> {
    Ok(())
}
static RETURNS: Entry<(), ()> = Entry::new("returns", returns);

// docs/semantics.md X4: `Exit` comes last even in a parent that ignores SIGCHLD (a daemon's
// way to have no zombies: the kernel then reaps its children itself, and `waitpid` finds none).
// How the child ended is lost then; that it ended is not.
fn exit_is_reported_when_the_parent_ignores_sigchld() {
    // SAFETY: sets the disposition of SIGCHLD to a constant (no handler code).
    let previous = unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
    let worker = ProcessWorker::spawn(&RETURNS).unwrap();
    let events: Vec<_> = worker.events().collect();
    let joined = ProcessWorker::spawn(&RETURNS).unwrap().join();
    // SAFETY: as above, back to what it was.
    unsafe { libc::signal(libc::SIGCHLD, previous) };
    assert!(
        matches!(
            &events[..],
            [ProcessEvent::Online, ProcessEvent::Exit(exit)]
                if exit.code().is_none() && exit.signal().is_none()
        ),
        "{events:?}"
    );
    let joined = joined.unwrap();
    assert_eq!((joined.code(), joined.signal()), (None, None), "{joined}");
}

use process_support::Test;

const TESTS: &[Test] = &[
    (
        "a_worker_does_not_inherit_an_ignored_sigterm",
        a_worker_does_not_inherit_an_ignored_sigterm,
    ),
    (
        "a_worker_starts_after_the_executable_was_deleted",
        a_worker_starts_after_the_executable_was_deleted,
    ),
    (
        "a_worker_is_this_program_after_the_executable_was_replaced",
        a_worker_is_this_program_after_the_executable_was_replaced,
    ),
    (
        "a_buffer_shared_twice_is_not_owned_twice_in_the_child",
        a_buffer_shared_twice_is_not_owned_twice_in_the_child,
    ),
    (
        "an_error_sent_before_terminate_is_still_reported",
        an_error_sent_before_terminate_is_still_reported,
    ),
    (
        "terminate_is_graceful_when_the_parent_ignores_sigterm",
        terminate_is_graceful_when_the_parent_ignores_sigterm,
    ),
    (
        "a_serialize_that_fails_or_panics_midway_sends_nothing",
        a_serialize_that_fails_or_panics_midway_sends_nothing,
    ),
    (
        "exit_is_reported_when_the_parent_ignores_sigchld",
        exit_is_reported_when_the_parent_ignores_sigchld,
    ),
];

fn main() {
    process::init(&[
        &INCREMENT,
        &DESCRIPTORS,
        &FAILS_THEN_LINGERS,
        &BLOCKS_IN_RECV,
        &IGNORES_SIGTERM,
        &ECHO_TRICKY,
        &RETURNS,
    ]); // workers run their entry here and exit

    if let Ok(stage) = std::env::var(STAGE) {
        // The copy.
        match run_stage(&stage) {
            Ok(()) => std::process::exit(0),
            Err(reason) => {
                eprintln!("process_hostile_worker ({stage}): {reason}");
                std::process::exit(1)
            }
        }
    }
    process_support::run_tests(TESTS);
}
