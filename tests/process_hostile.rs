//! Hostile and crashed peers (docs/semantics.md X5): another process writes garbage into a
//! process-shared buffer's header, and this one keeps working: errors, never a crash, a panic
//! or a wait without end.
#![cfg(target_os = "linux")]

mod process_support;

use std::fs::OpenOptions;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use process_support::*;
use sharedbuf::atomics::{self, WaitAsync};
use sharedbuf::{Error, Int32Array, SharedBuffer};

const ROLES: &str = "child_process_roles";
/// How long the scribbler writes garbage.
const SCRIBBLE_FOR: Duration = Duration::from_secs(2);

/// A small xorshift generator: reproducible garbage without a dependency.
struct Garbage(u64);

impl Garbage {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The body of every child process of this file (a no-op in a normal test run).
#[test]
fn child_process_roles() {
    let Some(role) = child_role(ROLES) else {
        return;
    };
    if role == format!("{ROLES}:wait") {
        // Waits on element 1 of the inherited buffer until killed.
        let view = Int32Array::new(&child_buffer()).unwrap();
        let _ = atomics::wait(&view, 1, 0, None);
        return;
    }
    if role == format!("{ROLES}:open-tty") {
        // A session leader without a terminal opens a terminal's path as a buffer: refused,
        // and the terminal did not become its controlling terminal.
        // SAFETY: `setsid` has no preconditions (this process is not a group leader).
        assert!(unsafe { libc::setsid() } > 0, "setsid");
        assert!(
            OpenOptions::new().read(true).open("/dev/tty").is_err(),
            "a terminal already"
        );
        match SharedBuffer::open(child_arg()) {
            Err(Error::BadHeader { reason }) => assert!(reason.contains("regular"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let tty = OpenOptions::new().read(true).open("/dev/tty");
        assert!(
            tty.is_err(),
            "opening the path made it our controlling terminal"
        );
        return;
    }
    assert_eq!(role, format!("{ROLES}:scribble"));
    // Writes straight into the file: no SharedBuffer, no validation, any byte of the header.
    let fd: i32 = std::env::var(FD).unwrap().parse().unwrap();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
        .unwrap();
    let mut garbage = Garbage(u64::from(std::process::id()) | 1);
    let start = Instant::now();
    while start.elapsed() < SCRIBBLE_FOR {
        let at = garbage.next() % HEADER_LEN;
        let value = garbage.next();
        // Mostly plausible values (a status, a small count, a length near the real one), so
        // the victim's deeper checks are reached, and sometimes anything at all.
        let bytes: Vec<u8> = match garbage.next() % 4 {
            0 => ((value % 10) as u32).to_ne_bytes().to_vec(),
            1 => (value % 1024).to_ne_bytes().to_vec(),
            2 => value.to_ne_bytes().to_vec(),
            _ => (0..(value % 64)).map(|_| garbage.next() as u8).collect(),
        };
        let len = bytes.len().min((HEADER_LEN - at) as usize);
        file.write_all_at(&bytes[..len], at).unwrap();
    }
}

// docs/semantics.md X5: 2 s of garbage over the whole header, while this process keeps
// using the buffer from several threads: every call returns (waits have short timeouts),
// errors are the documented ones, lengths never shrink nor pass the maximum, and the data
// (which the scribbler never touches) stays exactly as this process wrote it.
#[test]
#[cfg_attr(miri, ignore)]
fn a_peer_scribbling_over_the_header_causes_errors_never_a_crash() {
    let buffer = SharedBuffer::memfd_growable("x5-scribble", 4096, 1 << 20).unwrap();
    let scribbler = spawn_child(ROLES, "scribble", Some(&buffer), "");
    let done = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let proc_path = format!("/proc/self/fd/{}", {
        use std::os::fd::AsRawFd;
        buffer.as_fd().unwrap().as_raw_fd()
    });

    let users: Vec<_> = (0..3)
        .map(|id| {
            let (buffer, done, errors) = (buffer.clone(), Arc::clone(&done), Arc::clone(&errors));
            let proc_path = proc_path.clone();
            thread::spawn(move || {
                let view = Int32Array::new(&buffer).unwrap();
                let mut adds = 0;
                let mut last_length = buffer.byte_length();
                let mut round = 0u64;
                while !done.load(Ordering::Relaxed) {
                    round += 1;
                    let started = Instant::now();
                    atomics::add(&view, id, 1).unwrap();
                    adds += 1;
                    // The view's length first: the other threads grow the buffer meanwhile, so
                    // a length read before the view's could be passed by it.
                    let view_len = view.len();
                    let length = buffer.byte_length();
                    assert!(length >= last_length && length <= buffer.max_byte_length());
                    last_length = length;
                    assert!(view_len * 4 <= length);
                    let grown = buffer.grow((length + 8).min(buffer.max_byte_length()));
                    let wait = atomics::wait(&view, 8, 0, Some(Duration::from_millis(1)));
                    let notified = atomics::notify(&view, 8, Some(1));
                    let future =
                        match atomics::wait_async(&view, 9, 0, Some(Duration::from_millis(1))) {
                            Ok(WaitAsync::Pending(future)) => Ok(block_on(future)),
                            Ok(WaitAsync::Ready(result)) => Ok(result),
                            Err(error) => Err(error),
                        };
                    let reopened = if round % 16 == 0 {
                        SharedBuffer::open(&proc_path).map(drop)
                    } else {
                        Ok(())
                    };
                    for error in [
                        grown.err(),
                        wait.err(),
                        notified.err(),
                        future.err(),
                        reopened.err(),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        match error {
                            Error::BadHeader { .. }
                            | Error::TooManyWaiters { .. }
                            | Error::Shrink { .. }
                            | Error::ExceedsMax { .. } => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                            other => panic!("an undocumented error under garbage: {other:?}"),
                        }
                    }
                    assert!(
                        started.elapsed() < WATCHDOG,
                        "one round of calls took {:?}",
                        started.elapsed()
                    );
                }
                (id, adds)
            })
        })
        .collect();

    let status = wait_child(scribbler, "scribbler");
    assert!(status.success(), "the scribbler failed: {status}");
    done.store(true, Ordering::Relaxed);
    let view = Int32Array::new(&buffer).unwrap();
    for user in users {
        let (id, adds) = user.join().expect("a user thread panicked");
        assert_eq!(
            atomics::load(&view, id).unwrap(),
            adds,
            "data the scribbler never touched"
        );
    }
    // Only the garbage's consequences were errors: the test saw some (it is not vacuous).
    assert!(
        errors.load(Ordering::Relaxed) > 0,
        "2 s of garbage produced no error at all"
    );
}

/// Writes `bytes` at `at` into `buffer`'s file, as a misbehaving peer would.
fn poke(buffer: &SharedBuffer, at: u64, bytes: &[u8]) {
    let file = std::fs::File::from(buffer.as_fd().unwrap().try_clone_to_owned().unwrap());
    file.write_all_at(bytes, at).unwrap();
}

// docs/semantics.md X5 (B3): a length word a peer set past the maximum, or below what this
// process already saw, is never used: the length stays, a grow says why it refuses, and a
// valid length again makes everything work.
#[test]
#[cfg_attr(miri, ignore)]
fn a_garbage_length_is_never_used() {
    let buffer = SharedBuffer::memfd_growable("x5-length", 64, 256).unwrap();
    let tracking = Int32Array::new(&buffer).unwrap();
    for garbage in [u64::MAX, 257, 1 << 40, 8] {
        poke(&buffer, 16, &garbage.to_ne_bytes());
        assert_eq!(buffer.byte_length(), 64, "garbage {garbage}");
        assert_eq!(tracking.len(), 16);
        assert_eq!(tracking.get(16), None);
        match buffer.grow(128) {
            Err(Error::BadHeader { reason }) => assert!(reason.contains("length"), "{reason}"),
            other => panic!("grow over garbage {garbage}: {other:?}"),
        }
    }
    poke(&buffer, 16, &64u64.to_ne_bytes());
    buffer.grow(128).unwrap();
    assert_eq!(tracking.len(), 32);
    poke(&buffer, 16, &256u64.to_ne_bytes()); // valid: within the maximum
    assert_eq!(buffer.byte_length(), 256);
    tracking.set(63, 1).unwrap();
}

// docs/semantics.md X5: a waiter whose slot a peer overwrote ends with an error (at its
// timeout at the latest), and leaves the slot to whoever owns it now.
#[test]
#[cfg_attr(miri, ignore)]
fn a_waiter_whose_slot_was_overwritten_gets_an_error() {
    let buffer = SharedBuffer::memfd("x5-slot", 16).unwrap();
    let view = Int32Array::new(&buffer).unwrap();
    let waiter = {
        let view = view.clone();
        thread::spawn(move || atomics::wait(&view, 0, 0, Some(Duration::from_millis(300))))
    };
    wait_until("the waiter asleep", || {
        slots(&buffer).iter().any(|s| s.status == PARKED)
    });
    let index = slots(&buffer)
        .iter()
        .position(|s| s.status == PARKED)
        .unwrap() as u64;
    // Same status, another generation: as if the slot had been freed and claimed again.
    let state = u64::from(PARKED) | (0xdead_u64 << 32);
    poke(&buffer, SLOTS_AT + index * SLOT_SIZE, &state.to_ne_bytes());
    match waiter.join().unwrap() {
        Err(Error::BadHeader { reason }) => assert!(reason.contains("slot"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let slot = slots(&buffer)[index as usize];
    assert_eq!(
        (slot.status, slot.generation),
        (PARKED, 0xdead),
        "left alone"
    );
    // A notify takes the (foreign) slot as a waiter of offset 0: the peer's business.
    assert!(atomics::notify(&view, 0, None).is_ok());
}

// docs/semantics.md X1: a memfd's name is only a label (the kernel keeps at most 249 bytes of
// it): a longer one, in bytes or in characters, still makes the buffer.
#[test]
#[cfg_attr(miri, ignore)]
fn a_long_memfd_name_is_only_a_label() {
    for name in [
        "n".repeat(249),
        "n".repeat(250),
        "é".repeat(200),
        "x".repeat(5000),
    ] {
        let buffer = SharedBuffer::memfd(&name, 8)
            .unwrap_or_else(|e| panic!("a {}-byte name: {e:?}", name.len()));
        let view = Int32Array::new(&buffer).unwrap();
        atomics::store(&view, 1, 7).unwrap();
        let fd = buffer.as_fd().unwrap().try_clone_to_owned().unwrap();
        let same = SharedBuffer::from_fd(fd).unwrap();
        assert_eq!(
            atomics::load(&Int32Array::new(&same).unwrap(), 1).unwrap(),
            7
        );
    }
    assert!(matches!(
        SharedBuffer::memfd("a\0b", 8),
        Err(Error::Io { .. })
    ));
}

/// The state letter of process `pid` in `/proc/<pid>/stat` (`Z` for a zombie).
fn process_state(pid: u32) -> Option<char> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text[text.rfind(')')? + 1..].trim_start().chars().next()
}

// docs/semantics.md X2, X5: a waiter whose process was killed, and that its parent has not
// reaped yet (a zombie: its id still exists), does not absorb a notify meant for a live
// waiter either, nor keep its slot.
#[test]
#[cfg_attr(miri, ignore)]
fn a_killed_waiter_not_yet_reaped_does_not_absorb_a_notify() {
    let buffer = SharedBuffer::memfd("x5-zombie", 8).unwrap();
    let view = Int32Array::new(&buffer).unwrap();
    let mut child = spawn_child(ROLES, "wait", Some(&buffer), "");
    let pid = child.id();
    wait_until("the child asleep on its slot", || {
        slots(&buffer)
            .iter()
            .any(|s| s.status == PARKED && s.owner == pid)
    });
    child.kill().unwrap();
    wait_until("the child a zombie", || process_state(pid) == Some('Z'));
    let local = {
        let view = view.clone();
        thread::spawn(move || atomics::wait(&view, 1, 0, Some(WATCHDOG)))
    };
    wait_until("the local waiter queued", || queued(&buffer) == 2);
    // The zombie's slot is the oldest: a notify(1) that counted it would leave the live
    // waiter asleep until its timeout.
    assert_eq!(atomics::notify(&view, 1, Some(1)).unwrap(), 1);
    assert_eq!(local.join().unwrap(), Ok(sharedbuf::WaitResult::Ok));
    assert_eq!(taken(&buffer), 0, "the zombie's slot was freed");
    child.wait().unwrap();
}

// docs/semantics.md X1: a path that is not a buffer is refused without side effects: a
// terminal's path, opened by a process without one, does not become its controlling terminal
// (which would deliver it the terminal's signals).
#[test]
#[cfg_attr(miri, ignore)]
fn opening_a_terminal_path_does_not_make_it_the_controlling_terminal() {
    // SAFETY: plain calls on a descriptor this test owns; `ptsname` is read at once.
    let (master, slave) = unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0, "posix_openpt");
        assert_eq!(libc::grantpt(master), 0);
        assert_eq!(libc::unlockpt(master), 0);
        let name = libc::ptsname(master);
        assert!(!name.is_null());
        let slave = std::ffi::CStr::from_ptr(name).to_str().unwrap().to_owned();
        (std::os::fd::OwnedFd::from_raw_fd(master), slave)
    };
    let child = spawn_child(ROLES, "open-tty", None, &slave);
    expect_success(child, "the child opening a terminal");
    drop(master);
}

// docs/semantics.md X1: a FIFO's path is refused without opening it. Opened read-write, it
// would count as a reader: a writer blocked opening the FIFO would be let through, and its
// writes would fail once we closed it again.
#[test]
#[cfg_attr(miri, ignore)]
fn opening_a_fifo_path_does_not_release_its_blocked_writer() {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;

    let fifo = ScratchPath::new("fifo");
    let name = std::ffi::CString::new(fifo.path().as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `name` is a valid C string.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");

    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let path = fifo.path().to_owned();
    let writer = thread::spawn(move || {
        // SAFETY: `gettid` has no preconditions.
        tid_tx.send(unsafe { libc::gettid() }).unwrap();
        // Blocks until a reader opens the FIFO.
        let result = OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut file| file.write_all(b"x"));
        done_tx.send(result.map_err(|e| e.to_string())).unwrap();
    });
    let tid = tid_rx.recv().unwrap();
    let in_open = || {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
            .is_ok_and(|call| call.starts_with(&format!("{} ", libc::SYS_openat)))
    };
    wait_until("the writer blocked opening the FIFO", in_open);

    match SharedBuffer::open(fifo.path()) {
        Err(Error::BadHeader { reason }) => assert!(reason.contains("regular"), "{reason}"),
        other => panic!("a FIFO opened as a buffer: {other:?}"),
    }
    assert!(
        in_open(),
        "opening the FIFO as a buffer let its writer through"
    );
    assert!(done_rx.try_recv().is_err(), "the writer got through");

    // The real reader: the writer's byte arrives.
    let mut reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo.path())
        .unwrap();
    assert_eq!(done_rx.recv().unwrap(), Ok(()));
    let mut byte = [0u8; 1];
    reader.read_exact(&mut byte).unwrap();
    assert_eq!(&byte, b"x");
    writer.join().unwrap();
}
