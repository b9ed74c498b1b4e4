//! Process workers with real child processes (docs/semantics.md X4): echo of typed and raw
//! messages, a panicking child, a child killed by a signal, terminate of a child blocked in
//! `atomics::wait` and of one spinning in a CPU loop, 100 workers with no zombie and no leaked
//! descriptor, a child whose parent dies, and a child scribbling over its own rings.
//!
//! `harness = false`: `main` calls `process::init` first, as every program using process
//! workers must, so each child (this binary re-executed) runs its entry there. Run one test
//! with `cargo test --test process_worker -- <part of its name>`. A watchdog ends the run with
//! a failure if anything hangs.
#![cfg(target_os = "linux")]

mod process_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sharedbuf::process::{
    self, Bytes, Entry, ProcessContext, ProcessEvent, ProcessExit, ProcessWorker,
};
use sharedbuf::{atomics, Error, Int32Array, SharedBuffer, Uint8Array};

/// A hang detector, not a speed measurement.
const WATCHDOG: Duration = Duration::from_secs(60);

// ---- entries ---------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    seq: u64,
    text: String,
    values: Vec<i32>,
    tags: BTreeMap<String, Option<f64>>,
}

/// Echoes every typed message back until the parent disconnects.
fn echo(ctx: ProcessContext<Note, Note>) -> Result<(), Error> {
    loop {
        match ctx.recv() {
            Ok(note) => ctx.post_message(&note)?,
            Err(Error::Closed) => return Ok(()),
            Err(other) => return Err(other),
        }
    }
}
static ECHO: Entry<Note, Note> = Entry::new("echo", echo);

/// Echoes raw bytes, reversed (so an echo is not a no-op), until the parent disconnects.
fn echo_bytes(ctx: ProcessContext<Bytes, Bytes>) -> Result<(), Error> {
    loop {
        match ctx.recv() {
            Ok(Bytes(mut bytes)) => {
                bytes.reverse();
                ctx.post_message(&Bytes(bytes))?;
            }
            Err(Error::Closed) => return Ok(()),
            Err(other) => return Err(other),
        }
    }
}
static ECHO_BYTES: Entry<Bytes, Bytes> = Entry::new("echo_bytes", echo_bytes);

fn panics(ctx: ProcessContext<(), String>) -> Result<(), Error> {
    ctx.post_message(&"before the panic".to_string())?;
    panic!("deliberate panic in a child process");
}
static PANICS: Entry<(), String> = Entry::new("panics", panics);

fn fails(_: ProcessContext<(), ()>) -> Result<(), String> {
    Err("deliberate failure".into())
}
static FAILS: Entry<(), (), Result<(), String>> = Entry::new("fails", fails);

/// Exits with the code the parent passes as its first argument.
fn exits_with(_: ProcessContext<(), ()>) -> i32 {
    std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(99)
}
static EXITS_WITH: Entry<(), (), i32> = Entry::new("exits_with", exits_with);

/// Says it is ready, then blocks in `recv` for ever (the parent kills it).
fn blocks_in_recv(ctx: ProcessContext<(), String>) -> Result<(), Error> {
    ctx.post_message(&"ready".to_string())?;
    ctx.recv()
}
static BLOCKS_IN_RECV: Entry<(), String> = Entry::new("blocks_in_recv", blocks_in_recv);

/// Waits on word 0 of the shared buffer, which nobody notifies; reports how the wait ended.
fn waits(ctx: ProcessContext<(), String>) -> Result<(), Error> {
    let view = Int32Array::new(&ctx.shared_buffers()[0])?;
    atomics::store(&view, 1, 1)?; // "I am about to wait"
    atomics::notify(&view, 1, None)?;
    let result = atomics::wait(&view, 0, 0, None);
    // Recorded in the buffer, since after terminate no `Error` event is reported.
    let code = match result {
        Err(Error::Terminated) => 2,
        _ => 3,
    };
    atomics::store(&view, 2, code)?;
    result.map(|_| ())
}
static WAITS: Entry<(), String> = Entry::new("waits", waits);

/// Spins without ever checking `is_terminating`: only SIGKILL ends it.
fn spins(ctx: ProcessContext<(), String>) -> Result<(), Error> {
    ctx.post_message(&"spinning".to_string())?;
    let mut x = 1u64;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
static SPINS: Entry<(), String> = Entry::new("spins", spins);

/// Spins until asked to terminate, then returns normally.
fn spins_politely(ctx: ProcessContext<(), String>) -> Result<(), Error> {
    ctx.post_message(&"spinning".to_string())?;
    while !ctx.is_terminating() {
        std::hint::spin_loop();
    }
    Ok(())
}
static SPINS_POLITELY: Entry<(), String> = Entry::new("spins_politely", spins_politely);

/// Spawns a grandchild that ignores termination, posts its pid, and waits to be killed.
fn middle(ctx: ProcessContext<(), u32>) -> Result<(), Error> {
    let grandchild = ProcessWorker::builder().spawn(&SPINS)?;
    match grandchild.recv_event_timeout(WATCHDOG)? {
        ProcessEvent::Online => {}
        other => panic!("grandchild: {other:?}"),
    }
    ctx.post_message(&grandchild.pid())?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
static MIDDLE: Entry<(), u32> = Entry::new("middle", middle);

/// Writes garbage over its own link (found through /proc/self/fd) while it keeps posting,
/// until the parent sets word 0 of the shared buffer.
fn scribbles(ctx: ProcessContext<Bytes, Bytes>) -> Result<(), Error> {
    let stop = Int32Array::new(&ctx.shared_buffers()[0])?;
    let link = open_own_link().expect("the link's memfd");
    let bytes = Uint8Array::new(&link)?;
    let mut x = u64::from(std::process::id()) | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut writes = 0u64;
    while atomics::load(&stop, 0)? == 0 {
        let at = (next() as usize) % bytes.len();
        let value = next();
        let garbage: Vec<u8> = match value % 4 {
            0 => (((value >> 8) % 64 * 8) as u32).to_ne_bytes().to_vec(),
            1 => (value >> 8).to_ne_bytes().to_vec(),
            2 => vec![0; 8],
            _ => (0..(value >> 8) % 32).map(|_| next() as u8).collect(),
        };
        let n = garbage.len().min(bytes.len() - at);
        bytes.copy_from_slice(at, &garbage[..n])?;
        writes += 1;
        if writes % 64 == 0 {
            // Errors are expected: the rings are garbage.
            let _ = ctx.try_post_message(&Bytes(vec![next() as u8; (next() % 100) as usize]));
            let _ = ctx.try_recv();
        }
        if writes >= 200_000 {
            atomics::store(&stop, 1, 1)?; // "enough garbage written"
        }
    }
    Ok(())
}
static SCRIBBLES: Entry<Bytes, Bytes> = Entry::new("scribbles", scribbles);

/// The process's own link buffer: the memfd named after the worker ("hostile").
fn open_own_link() -> Option<SharedBuffer> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()? {
        let path = entry.ok()?.path();
        let target = std::fs::read_link(&path).ok()?;
        if target.to_string_lossy().contains("memfd:hostile") {
            return SharedBuffer::open(&path).ok();
        }
    }
    None
}

/// Never given to `init`.
static UNREGISTERED: Entry<(), ()> = Entry::new("unregistered", |_| Ok(()));

/// Posts `0, 1, 2, …` with `post_message_timeout` until the ring (the parent reads nothing)
/// stays full for the timeout, writes how many went into word 1 of the shared buffer, then
/// waits for one message from the parent and exits.
fn fills(ctx: ProcessContext<(), u32>) -> Result<(), Error> {
    let view = Int32Array::new(&ctx.shared_buffers()[0])?;
    let mut posted = 0u32;
    loop {
        match ctx.post_message_timeout(&posted, Duration::from_millis(20)) {
            Ok(()) => posted += 1,
            Err(Error::Timeout) => break,
            Err(other) => return Err(other),
        }
    }
    atomics::store(&view, 1, posted as i32)?;
    atomics::notify(&view, 1, None)?;
    ctx.recv()
}
static FILLS: Entry<(), u32> = Entry::new("fills", fills);

static ENTRIES: &[&dyn process::EntryPoint] = &[
    &ECHO,
    &ECHO_BYTES,
    &PANICS,
    &FAILS,
    &EXITS_WITH,
    &BLOCKS_IN_RECV,
    &WAITS,
    &SPINS,
    &SPINS_POLITELY,
    &MIDDLE,
    &SCRIBBLES,
    &FILLS,
];

// ---- tests -----------------------------------------------------------------------------------

fn note(seq: u64) -> Note {
    let mut tags = BTreeMap::new();
    tags.insert(
        format!("k{seq}"),
        (seq % 3 != 0).then_some(seq as f64 / 7.0),
    );
    Note {
        seq,
        text: "é".repeat((seq % 50) as usize),
        values: (0..(seq % 40) as i32).map(|i| i * 1_000_003 - 7).collect(),
        tags,
    }
}

fn next_event<Out: sharedbuf::process::Payload>(
    worker: &ProcessWorker<impl sharedbuf::process::Payload, Out>,
) -> ProcessEvent<Out> {
    worker
        .recv_event_timeout(WATCHDOG)
        .unwrap_or_else(|e| panic!("waiting for an event of {worker:?}: {e}"))
}

fn expect_exit<Out: sharedbuf::process::Payload + std::fmt::Debug>(
    worker: &ProcessWorker<impl sharedbuf::process::Payload, Out>,
) -> ProcessExit {
    match next_event(worker) {
        ProcessEvent::Exit(exit) => exit,
        other => panic!("expected Exit, got {other:?}"),
    }
}

fn typed_messages_round_trip_in_order() {
    let worker = ProcessWorker::builder()
        .capacity(4096)
        .spawn(&ECHO)
        .unwrap();
    assert_eq!(next_event(&worker), ProcessEvent::Online);
    // More than the ring holds at once, so both sides wait for room, from another thread.
    const COUNT: u64 = 2_000;
    std::thread::scope(|s| {
        s.spawn(|| {
            for seq in 0..COUNT {
                worker.post_message(&note(seq)).unwrap();
            }
            worker.disconnect();
        });
        for seq in 0..COUNT {
            assert_eq!(next_event(&worker), ProcessEvent::Message(note(seq)));
        }
    });
    let exit = expect_exit(&worker);
    assert!(exit.success() && !exit.terminated(), "{exit}");
    assert_eq!(worker.recv_event_timeout(WATCHDOG), Err(Error::Closed));
    assert_eq!(worker.post_message(&note(0)), Err(Error::Closed));
}

fn byte_messages_round_trip_with_their_bytes() {
    let capacity = 1 << 16;
    let worker = ProcessWorker::builder()
        .capacity(capacity)
        .spawn(&ECHO_BYTES)
        .unwrap();
    assert_eq!(next_event(&worker), ProcessEvent::Online);
    // Empty, small, unaligned, and the largest message a ring takes (one byte is the frame's).
    let largest = capacity - 8 - 1;
    for len in [0, 1, 7, 1000, 4097, largest] {
        let sent: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        worker.post_message(&Bytes(sent.clone())).unwrap();
        let mut expected = sent;
        expected.reverse();
        assert_eq!(next_event(&worker), ProcessEvent::Message(Bytes(expected)));
    }
    assert!(matches!(
        worker.post_message(&Bytes(vec![0; largest + 1])),
        Err(Error::ExceedsMax { .. })
    ));
    worker.disconnect();
    assert!(expect_exit(&worker).success());
}

fn a_panicking_child_reports_error_then_exit_1() {
    let worker = ProcessWorker::spawn(&PANICS).unwrap();
    let events: Vec<_> = worker.events().collect();
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[0], ProcessEvent::Online);
    assert_eq!(events[1], ProcessEvent::Message("before the panic".into()));
    let ProcessEvent::Error(error) = &events[2] else {
        panic!("{events:?}")
    };
    assert!(error.is_panic());
    assert_eq!(error.message(), "deliberate panic in a child process");
    let ProcessEvent::Exit(exit) = events[3] else {
        panic!("{events:?}")
    };
    assert_eq!((exit.code(), exit.signal()), (Some(1), None));
}

fn a_failing_child_reports_error_and_exit_codes_cross() {
    let worker = ProcessWorker::spawn(&FAILS).unwrap();
    let events: Vec<_> = worker.events().collect();
    assert!(
        matches!(&events[..], [ProcessEvent::Online, ProcessEvent::Error(e), ProcessEvent::Exit(x)]
            if !e.is_panic() && e.message() == "deliberate failure" && x.code() == Some(1)),
        "{events:?}"
    );
    for code in [0, 3, 42] {
        let worker = ProcessWorker::builder()
            .arg(code.to_string())
            .spawn(&EXITS_WITH)
            .unwrap();
        assert_eq!(worker.join().unwrap().code(), Some(code));
    }
}

fn a_child_killed_by_a_signal_says_which() {
    let worker = ProcessWorker::spawn(&BLOCKS_IN_RECV).unwrap();
    assert_eq!(next_event(&worker), ProcessEvent::Online);
    assert_eq!(next_event(&worker), ProcessEvent::Message("ready".into()));
    // SAFETY: the child is not reaped until we read its Exit, so the pid is still its own.
    assert_eq!(unsafe { libc::kill(worker.pid() as i32, libc::SIGKILL) }, 0);
    // The parent's recv has no deadline: it must notice the death by itself.
    let exit = worker.recv_event().unwrap();
    let ProcessEvent::Exit(exit) = exit else {
        panic!("{exit:?}")
    };
    assert_eq!((exit.code(), exit.signal()), (None, Some(libc::SIGKILL)));
    assert!(!exit.terminated());
}

/// X4: a child's `post_message_timeout` gives up with `Timeout` while the parent reads
/// nothing, after posting exactly what fits; the parent's `join_timeout` says `Timeout` while
/// the child runs and leaves the handle usable, then returns its exit, and every later join
/// returns the same exit.
fn post_message_timeout_and_join_timeout_give_up_and_leave_the_handle_usable() {
    let shared = SharedBuffer::memfd("fills", 16).unwrap();
    let view = Int32Array::new(&shared).unwrap();
    let worker = ProcessWorker::builder()
        .share(&shared)
        .capacity(256)
        .spawn(&FILLS)
        .unwrap();
    let end = Instant::now() + WATCHDOG;
    while atomics::load(&view, 1).unwrap() == 0 {
        assert!(Instant::now() < end, "the child's posts never timed out");
        let _ = atomics::wait(&view, 1, 0, Some(Duration::from_millis(100)));
    }
    let posted = atomics::load(&view, 1).unwrap() as u32;
    assert!(posted > 0, "nothing fitted in the ring");
    assert_eq!(next_event(&worker), ProcessEvent::Online);
    for seq in 0..posted {
        assert_eq!(next_event(&worker), ProcessEvent::Message(seq));
    }
    // The child now waits in `recv`: still running, and nothing is sent to it.
    assert_eq!(
        worker.join_timeout(Duration::from_millis(20)),
        Err(Error::Timeout)
    );
    assert!(!worker.has_exited());
    worker.post_message(&()).unwrap();
    let exit = worker.join_timeout(WATCHDOG).unwrap();
    assert!(exit.success() && !exit.terminated(), "{exit}");
    assert_eq!(worker.join_timeout(Duration::ZERO), Ok(exit));
    assert_eq!(worker.join(), Ok(exit));
}

fn terminate_wakes_a_child_blocked_in_wait() {
    let shared = SharedBuffer::memfd("waits", 16).unwrap();
    let view = Int32Array::new(&shared).unwrap();
    let worker = ProcessWorker::builder()
        .share(&shared)
        .grace(WATCHDOG) // it must end by itself, long before SIGKILL
        .spawn(&WAITS)
        .unwrap();
    assert_eq!(next_event(&worker), ProcessEvent::Online);
    while atomics::load(&view, 1).unwrap() == 0 {
        let _ = atomics::wait(&view, 1, 0, Some(Duration::from_millis(100)));
    }
    let exit = worker.terminate().unwrap();
    assert_eq!((exit.code(), exit.signal()), (Some(1), None), "{exit}");
    assert!(exit.terminated());
    assert_eq!(
        atomics::load(&view, 2).unwrap(),
        2,
        "the wait returned Terminated"
    );
    // No Error after terminate: only Exit.
    assert_eq!(
        worker.events().collect::<Vec<_>>(),
        [ProcessEvent::Exit(exit)]
    );
}

fn terminate_kills_a_child_spinning_after_the_grace_period() {
    let worker = ProcessWorker::spawn(&SPINS).unwrap();
    assert_eq!(next_event(&worker), ProcessEvent::Online);
    assert_eq!(
        next_event(&worker),
        ProcessEvent::Message("spinning".into())
    );
    let exit = worker
        .terminate_timeout(Duration::from_millis(100))
        .unwrap();
    assert_eq!((exit.code(), exit.signal()), (None, Some(libc::SIGKILL)));
    assert!(exit.terminated());

    let polite = ProcessWorker::builder()
        .grace(WATCHDOG)
        .spawn(&SPINS_POLITELY)
        .unwrap();
    assert_eq!(next_event(&polite), ProcessEvent::Online);
    assert_eq!(
        next_event(&polite),
        ProcessEvent::Message("spinning".into())
    );
    let exit = polite.terminate().unwrap();
    assert_eq!((exit.code(), exit.terminated()), (Some(0), true), "{exit}");
}

fn spawn_refuses_an_unregistered_entry_and_a_private_buffer() {
    assert!(matches!(
        ProcessWorker::spawn(&UNREGISTERED),
        Err(Error::SpawnFailed { reason }) if reason.contains("unregistered")
    ));
    let private = SharedBuffer::new(8).unwrap();
    assert!(matches!(
        ProcessWorker::builder().share(&private).spawn(&EXITS_WITH),
        Err(Error::InvalidParameter { .. })
    ));
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Whether this process has no child at all (none running, no zombie).
fn no_children() -> bool {
    // SAFETY: siginfo_t is plain data; all-zero is a valid value.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid with WNOHANG|WNOWAIT only inspects; `info` is a valid out-parameter.
    let r = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD)
}

fn a_hundred_workers_leave_no_zombie_and_no_descriptor() {
    assert!(no_children(), "a child of an earlier test is left");
    let before = open_descriptors();
    let workers: Vec<_> = (0..100)
        .map(|i| {
            ProcessWorker::builder()
                .arg((i % 7).to_string())
                .spawn(&EXITS_WITH)
                .unwrap()
        })
        .collect();
    assert!(open_descriptors() > before, "each worker holds descriptors");
    for (i, worker) in workers.into_iter().enumerate() {
        // Half are joined, half dropped (killed and reaped by the drop).
        if i % 2 == 0 {
            assert_eq!(worker.join().unwrap().code(), Some((i % 7) as i32));
        } else {
            drop(worker);
        }
    }
    assert_eq!(open_descriptors(), before, "descriptors leaked");
    assert!(no_children(), "a zombie or a running child is left");
}

fn a_child_whose_parent_dies_exits() {
    // Orphans are re-parented to us, so we can reap the grandchild and see how it ended.
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) only sets a flag of this process.
    let subreaper = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(subreaper, 0);
    let middle = ProcessWorker::spawn(&MIDDLE).unwrap();
    assert_eq!(next_event(&middle), ProcessEvent::Online);
    let ProcessEvent::Message(grandchild) = next_event(&middle) else {
        panic!("no pid from the middle process")
    };
    // SAFETY: the middle process is not reaped yet, so its pid is its own.
    assert_eq!(unsafe { libc::kill(middle.pid() as i32, libc::SIGKILL) }, 0);
    assert_eq!(expect_exit(&middle).signal(), Some(libc::SIGKILL));
    // The grandchild spins and ignores termination: its watcher must end it.
    let start = Instant::now();
    let status = loop {
        let mut status = 0;
        // SAFETY: waitpid on a pid that is (now) our child; `status` is a valid out-parameter.
        let r = unsafe { libc::waitpid(grandchild as i32, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r > 0 {
            break status;
        }
        assert!(start.elapsed() < WATCHDOG, "the orphan did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 1);
}

fn a_child_scribbling_over_its_rings_causes_errors_not_a_crash_or_a_hang() {
    let control = SharedBuffer::memfd("control", 8).unwrap();
    let stop = Int32Array::new(&control).unwrap();
    let worker = ProcessWorker::builder()
        .name("hostile")
        .capacity(4096)
        .share(&control)
        .spawn(&SCRIBBLES)
        .unwrap();
    let start = Instant::now();
    let (mut events, mut errors) = (0u64, BTreeMap::new());
    let exit = loop {
        assert!(start.elapsed() < WATCHDOG, "the parent hung");
        if atomics::load(&stop, 1).unwrap() == 1 {
            atomics::store(&stop, 0, 1).unwrap(); // enough: let the child end
        }
        let soon = Duration::from_millis(5);
        match worker.post_message_timeout(&Bytes(vec![7; (events % 300) as usize]), soon) {
            Ok(()) => {}
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        Error::Full
                            | Error::Timeout
                            | Error::Closed
                            | Error::Corrupted { .. }
                            | Error::ExceedsMax { .. }
                    ),
                    "post: {e}"
                );
                *errors.entry(format!("post {e:?}")).or_insert(0) += 1;
            }
        }
        match worker.recv_event_timeout(soon) {
            Ok(ProcessEvent::Exit(exit)) => break exit,
            Ok(ProcessEvent::Message(m)) => {
                assert!(m.len() < 4096);
                events += 1;
            }
            Ok(_) => events += 1,
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        Error::Timeout | Error::Corrupted { .. } | Error::Codec { .. }
                    ),
                    "recv: {e}"
                );
                let kind = format!("recv {e:?}");
                *errors
                    .entry(kind.split(' ').take(2).collect::<String>())
                    .or_insert(0) += 1;
            }
        }
    };
    eprintln!("  {events} events, errors: {errors:?}; child {exit}");
    assert!(
        exit.success(),
        "the scribbling child itself ended well: {exit}"
    );
}

// ---- harness -----------------------------------------------------------------------------------

use process_support::Test;

const TESTS: &[Test] = &[
    (
        "typed_messages_round_trip_in_order",
        typed_messages_round_trip_in_order,
    ),
    (
        "byte_messages_round_trip_with_their_bytes",
        byte_messages_round_trip_with_their_bytes,
    ),
    (
        "a_panicking_child_reports_error_then_exit_1",
        a_panicking_child_reports_error_then_exit_1,
    ),
    (
        "a_failing_child_reports_error_and_exit_codes_cross",
        a_failing_child_reports_error_and_exit_codes_cross,
    ),
    (
        "a_child_killed_by_a_signal_says_which",
        a_child_killed_by_a_signal_says_which,
    ),
    (
        "post_message_timeout_and_join_timeout_give_up_and_leave_the_handle_usable",
        post_message_timeout_and_join_timeout_give_up_and_leave_the_handle_usable,
    ),
    (
        "terminate_wakes_a_child_blocked_in_wait",
        terminate_wakes_a_child_blocked_in_wait,
    ),
    (
        "terminate_kills_a_child_spinning_after_the_grace_period",
        terminate_kills_a_child_spinning_after_the_grace_period,
    ),
    (
        "spawn_refuses_an_unregistered_entry_and_a_private_buffer",
        spawn_refuses_an_unregistered_entry_and_a_private_buffer,
    ),
    (
        "a_hundred_workers_leave_no_zombie_and_no_descriptor",
        a_hundred_workers_leave_no_zombie_and_no_descriptor,
    ),
    (
        "a_child_whose_parent_dies_exits",
        a_child_whose_parent_dies_exits,
    ),
    (
        "a_child_scribbling_over_its_rings_causes_errors_not_a_crash_or_a_hang",
        a_child_scribbling_over_its_rings_causes_errors_not_a_crash_or_a_hang,
    ),
];

fn main() {
    process::init(ENTRIES); // children run their entry here and exit

    // The run's own watchdog: a hang fails it instead of stalling the suite.
    std::thread::spawn(|| {
        std::thread::sleep(5 * WATCHDOG);
        eprintln!("process_worker: the run hung; aborting");
        std::process::exit(1);
    });
    // The hundred-workers test checks for leftovers too, but only in a full run.
    process_support::run_tests(TESTS);
}
