//! `channel::ByteRing` between real processes, over a memfd buffer (docs/semantics.md X2, X5):
//! a child echoes checksummed messages of random sizes back through a second ring; a child
//! scribbles over a ring the parent keeps using (errors, never a crash or a hang); and a child
//! killed while the parent waits on it is noticed by a watcher that closes the ring — the
//! liveness check the process workers must add, shown working.
//!
//! Children are this test binary re-executed (see `process_support`); every wait for one has
//! a watchdog.
#![cfg(target_os = "linux")]

mod process_support;

use std::collections::HashSet;
use std::thread;
use std::time::{Duration, Instant};

use process_support::*;
use sharedbuf::channel::ByteRing;
use sharedbuf::{Error, SharedBuffer, Uint32Array, Uint8Array};

const ROLES: &str = "child_process_roles";
/// Data bytes of each ring: small enough to wrap often and make both sides wait.
const CAPACITY: usize = 4096;
/// Messages the echo test sends.
const ECHOED: u64 = 50_000;
/// How long the scribbler writes garbage.
const SCRIBBLE_FOR: Duration = Duration::from_secs(1);

/// Ring `n` of the buffer: rings lie one after another from offset 0.
fn ring(buffer: &SharedBuffer, n: usize) -> ByteRing {
    let bytes = ByteRing::bytes_for(CAPACITY).unwrap();
    ByteRing::at(buffer, n * bytes, CAPACITY).unwrap()
}

/// A buffer for two rings, and two 32-bit words after them: a stop flag (parent to child) and
/// the number of garbage writes made (child to parent).
fn two_ring_buffer(name: &str) -> SharedBuffer {
    SharedBuffer::memfd(name, 2 * ByteRing::bytes_for(CAPACITY).unwrap() + 8).unwrap()
}

/// Word 0: stop; word 1: garbage writes so far.
fn control_words(buffer: &SharedBuffer) -> Uint32Array {
    let at = 2 * ByteRing::bytes_for(CAPACITY).unwrap();
    Uint32Array::with_range(buffer, at, Some(2)).unwrap()
}

/// Garbage writes the scribbler makes at least before the parent stops it.
const MIN_SCRIBBLES: u32 = 100_000;

/// Message `seq`: its length and bytes both follow from `seq`.
fn message(seq: u64) -> Vec<u8> {
    let mut x = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let len = match seq % 100 {
        0 => 0,
        1 => CAPACITY - 8, // the largest
        _ => (x % 200) as usize,
    };
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The body of every child process of this file (a no-op in a normal test run).
#[test]
fn child_process_roles() {
    let Some(role) = child_role(ROLES) else {
        return;
    };
    let buffer = child_buffer();
    match role.strip_prefix(&format!("{ROLES}:")).unwrap() {
        // Echo every message of ring 0 back on ring 1, until ring 0 is closed and drained.
        "echo" => {
            let mut rx = ring(&buffer, 0).receiver().unwrap();
            let mut tx = ring(&buffer, 1).sender().unwrap();
            loop {
                match rx.recv(None) {
                    Ok(bytes) => tx.send(&bytes, None).unwrap(),
                    Err(Error::Closed) => break,
                    Err(other) => panic!("echo: {other}"),
                }
            }
            // Dropping the sender closes ring 1: the parent sees the end.
        }
        // Write garbage over both rings until the parent sets the stop word.
        "scribble" => {
            let rings = Uint8Array::with_range(
                &buffer,
                0,
                Some(2 * ByteRing::bytes_for(CAPACITY).unwrap()),
            )
            .unwrap();
            let control = control_words(&buffer);
            let mut x = u64::from(std::process::id()) | 1;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut writes = 0u32;
            while control.get(0) == Some(0) {
                let at = (next() as usize) % rings.len();
                let value = next();
                // Plausible values (small positions, a length near the real ones) as well as
                // anything at all, so the victim's deeper checks are reached too.
                let bytes: Vec<u8> = match value % 4 {
                    0 => (((value >> 8) % 64 * 8) as u32).to_ne_bytes().to_vec(),
                    1 => (value >> 8).to_ne_bytes().to_vec(),
                    2 => vec![0; 8],
                    _ => (0..(value >> 8) % 32).map(|_| next() as u8).collect(),
                };
                let n = bytes.len().min(rings.len() - at);
                rings.copy_from_slice(at, &bytes[..n]).unwrap();
                writes = writes.saturating_add(1);
                control.set(1, writes).unwrap();
            }
        }
        // Take ring 0's sender, send one message, and wait to be killed.
        "die" => {
            let mut tx = ring(&buffer, 0).sender().unwrap();
            tx.send(b"last words", None).unwrap();
            loop {
                thread::sleep(Duration::from_secs(3600));
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn messages_cross_between_processes_in_order_with_their_bytes() {
    let buffer = two_ring_buffer("byte-ring-echo");
    let echo = spawn_child(ROLES, "echo", Some(&buffer), "");
    let mut tx = ring(&buffer, 0).sender().unwrap();
    let mut rx = ring(&buffer, 1).receiver().unwrap();
    let sender = thread::spawn(move || {
        for seq in 0..ECHOED {
            tx.send(&message(seq), None).unwrap();
        }
        // Dropping `tx` closes ring 0: the child's loop ends and it closes ring 1.
    });
    let start = Instant::now();
    for seq in 0..ECHOED {
        let bytes = rx
            .recv(Some(start + WATCHDOG))
            .unwrap_or_else(|e| panic!("echo {seq}: {e}"));
        assert_eq!(bytes, message(seq), "echo {seq}");
    }
    assert_eq!(rx.recv(Some(start + WATCHDOG)), Err(Error::Closed));
    sender.join().unwrap();
    expect_success(echo, "the echoing child");
}

#[test]
fn a_peer_process_scribbling_over_the_rings_causes_errors_never_a_crash_or_a_hang() {
    let buffer = two_ring_buffer("byte-ring-scribble");
    let control = control_words(&buffer);
    // Stops the scribbler however this test ends (a failing test must not leave it running).
    struct StopOnDrop(Uint32Array, Option<std::process::Child>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            let _ = self.0.set(0, 1);
            if let (true, Some(child)) = (thread::panicking(), self.1.as_mut()) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    // This process plays both ends of both rings, attached and taken before the garbage starts
    // landing (garbage in the capacity or roles word refuses an attach: tested elsewhere), for
    // at least SCRIBBLE_FOR and until the child has made MIN_SCRIBBLES garbage writes.
    let (a, b) = (ring(&buffer, 0), ring(&buffer, 1));
    let mut ends = [
        (a.sender().unwrap(), a.receiver().unwrap()),
        (b.sender().unwrap(), b.receiver().unwrap()),
    ];
    let mut scribbler = StopOnDrop(
        control.clone(),
        Some(spawn_child(ROLES, "scribble", Some(&buffer), "")),
    );
    let victim_control = control.clone();
    let victim = thread::spawn(move || {
        let mut kinds = HashSet::new();
        let (mut calls, mut oks) = (0u64, 0u64);
        let start = Instant::now();
        while start.elapsed() < SCRIBBLE_FOR || victim_control.get(1) < Some(MIN_SCRIBBLES) {
            for (tx, rx) in &mut ends {
                let soon = Some(Instant::now() + Duration::from_millis(1));
                let results = [
                    tx.try_send(&message(calls)).map(|()| 0),
                    tx.send(&message(calls + 1), soon).map(|()| 0),
                    rx.try_recv().map(|m| m.map_or(0, |m| m.len())),
                    rx.recv(soon).map(|m| m.len()),
                    rx.try_recv_with(|m| m.len()).map(|n| n.unwrap_or(0)),
                ];
                for result in results {
                    calls += 1;
                    match result {
                        Ok(len) => {
                            assert!(len <= CAPACITY - 8, "a {len}-byte message from garbage");
                            oks += 1;
                        }
                        Err(error) => {
                            assert!(
                                matches!(
                                    error,
                                    Error::Full
                                        | Error::Timeout
                                        | Error::Closed
                                        | Error::Corrupted { .. }
                                ),
                                "unexpected error {error}"
                            );
                            kinds.insert(format!("{error:?}"));
                        }
                    }
                }
            }
        }
        (calls, oks, kinds)
    });
    let (calls, oks, kinds) = within(victim);
    control.set(0, 1).unwrap();
    expect_success(scribbler.1.take().unwrap(), "the scribbling child");
    eprintln!("{calls} calls under garbage, {oks} Ok; errors: {kinds:?}");
}

#[test]
fn a_watcher_closing_the_ring_when_the_peer_dies_ends_a_wait_without_deadline() {
    let buffer = two_ring_buffer("byte-ring-die");
    let mut child = spawn_child(ROLES, "die", Some(&buffer), "");
    let watched = ring(&buffer, 0);
    let mut rx = watched.receiver().unwrap();
    let start = Instant::now();
    assert_eq!(
        rx.recv(Some(start + WATCHDOG)),
        Ok(b"last words".to_vec()),
        "the child's message"
    );
    // The receiver now waits with no deadline for a peer that will never send again.
    let receiver = thread::spawn(move || rx.recv(None));
    child.kill().unwrap();
    // The liveness check the process layer adds: when the peer is gone, close the ring.
    let status = wait_child(child, "the killed child");
    assert!(!status.success());
    watched.close();
    let result = within(receiver);
    assert_eq!(result, Err(Error::Closed));
}

/// Joins `thread` within the watchdog.
fn within<T>(thread: thread::JoinHandle<T>) -> T {
    wait_until("the blocked receiver to return", || thread.is_finished());
    thread.join().unwrap()
}
