//! Helpers for the process-shared tests: scratch files under `/dev/shm`, child processes that
//! are this very test binary re-executed, and the header layout the tests poke at.
//!
//! A child is the test binary run again with `--exact <test name>` and the environment
//! variable [`ROLE`] set: the named `#[test]` function is the child's body when the variable
//! is set, and does nothing (passes at once) in a normal run. Its exit status is the verdict: a
//! child that panics exits with 101. Every child is waited for with a watchdog, so a hang
//! fails the test with a message instead of stalling the suite.

#![allow(dead_code)] // each test binary uses part of this

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Set in a child: which role it plays (the test function that runs it checks it is its own).
pub const ROLE: &str = "SHAREDBUF_TEST_ROLE";
/// Set in a child: the number of the inherited descriptor of the buffer.
pub const FD: &str = "SHAREDBUF_TEST_FD";
/// Set in a child: a free-form argument.
pub const ARG: &str = "SHAREDBUF_TEST_ARG";

/// Bytes before a process-shared buffer's data (docs: `src/region/header.rs`).
pub const HEADER_LEN: u64 = 16384;
/// Where the waiter slots start, and their size.
pub const SLOTS_AT: u64 = 4096;
pub const SLOT_SIZE: u64 = 32;
pub const SLOT_COUNT: u64 = 384;

/// The generous limit for anything that should take milliseconds: a hang detector, not a
/// speed measurement.
pub const WATCHDOG: Duration = Duration::from_secs(30);

/// A path under `/dev/shm` unique to this process and call, removed on drop.
pub struct ScratchPath(pub PathBuf);

impl ScratchPath {
    pub fn new(label: &str) -> ScratchPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        ScratchPath(PathBuf::from(format!(
            "/dev/shm/sharedbuf-test-{}-{n}-{label}",
            std::process::id()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The role this process plays, if it is a child started by [`spawn_child`] for `test`.
pub fn child_role(test: &str) -> Option<String> {
    let role = std::env::var(ROLE).ok()?;
    role.starts_with(test).then_some(role)
}

/// The argument a child was given.
pub fn child_arg() -> String {
    std::env::var(ARG).unwrap_or_default()
}

/// The buffer a child inherited (from `/proc/self/fd/<n>`, no `unsafe` needed).
pub fn child_buffer() -> sharedbuf::SharedBuffer {
    let fd: i32 = std::env::var(FD).expect("no buffer fd").parse().unwrap();
    sharedbuf::SharedBuffer::open(format!("/proc/self/fd/{fd}")).expect("open the inherited buffer")
}

/// Starts this test binary again running test `test` in role `role`, with `buffer`'s file as
/// an inherited descriptor and `arg`.
pub fn spawn_child(
    test: &str,
    role: &str,
    buffer: Option<&sharedbuf::SharedBuffer>,
    arg: &str,
) -> Child {
    let inherited: Option<OwnedFd> = buffer.map(|b| b.inheritable_fd().unwrap().unwrap());
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, format!("{test}:{role}"))
        .env(ARG, arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null()); // the harness's chatter; a failure's panic goes to stderr
    if let Some(fd) = &inherited {
        command.env(FD, fd.as_raw_fd().to_string());
    }
    let child = command.spawn().expect("spawn a child test process");
    drop(inherited); // the child has its copy
    child
}

/// Waits for `child` with the watchdog; kills it and panics if it hangs.
pub fn wait_child(mut child: Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the child process hung (killed after {WATCHDOG:?})");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for `child` and asserts it succeeded.
pub fn expect_success(child: Child, what: &str) {
    let status = wait_child(child, what);
    assert!(status.success(), "{what}: the child failed with {status}");
}

/// Polls `condition` until it holds; panics after the watchdog.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < WATCHDOG, "{what}: not after {WATCHDOG:?}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// One waiter slot of a buffer's header, as read from its file (`src/region/header.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotView {
    pub status: u32,
    pub generation: u32,
    pub offset: u64,
    pub owner: u32,
}

/// Slot statuses (`src/atomics/process_waiters.rs`).
pub const WAITING: u32 = 2;
pub const PARKED: u32 = 3;
pub const DOORBELL: u32 = 8;

/// Every waiter slot of `buffer`'s header, read through its descriptor.
pub fn slots(buffer: &sharedbuf::SharedBuffer) -> Vec<SlotView> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::from(buffer.as_fd().unwrap().try_clone_to_owned().unwrap());
    let mut bytes = vec![0u8; (SLOT_COUNT * SLOT_SIZE) as usize];
    file.read_exact_at(&mut bytes, SLOTS_AT).unwrap();
    bytes
        .chunks(SLOT_SIZE as usize)
        .map(|s| {
            let word = |at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().unwrap());
            let half = |at: usize| u32::from_ne_bytes(s[at..at + 4].try_into().unwrap());
            SlotView {
                status: half(0),
                generation: half(4),
                offset: word(8),
                owner: half(24),
            }
        })
        .collect()
}

/// How many slots of `buffer` are queued (waiting or parked), in any process.
pub fn queued(buffer: &sharedbuf::SharedBuffer) -> usize {
    slots(buffer)
        .iter()
        .filter(|s| s.status == WAITING || s.status == PARKED)
        .count()
}

/// How many slots of `buffer` are taken by anything (waiters, doorbells, leftovers).
pub fn taken(buffer: &sharedbuf::SharedBuffer) -> usize {
    slots(buffer).iter().filter(|s| s.status != 0).count()
}

/// Runs `future` to completion on this thread (a minimal executor: the waker unparks us).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let start = Instant::now();
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        assert!(start.elapsed() < WATCHDOG, "block_on: the future hung");
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

/// A test of a `harness = false` test binary (one whose `main` must call `process::init`
/// first): its name and its body.
pub type Test = (&'static str, fn());

/// Runs the `tests` the command line's filters name (all of them without a filter; options
/// such as `--nocapture` are ignored), printing libtest's lines so that `cargo test`'s summary
/// counts them. A failing test panics, which fails the binary.
pub fn run_tests(tests: &[Test]) {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let chosen: Vec<&Test> = tests
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", chosen.len());
    for (name, test) in &chosen {
        println!("test {name} ...");
        test();
        println!("test {name} ... ok");
    }
    println!("\ntest result: ok. {} passed", chosen.len());
}
