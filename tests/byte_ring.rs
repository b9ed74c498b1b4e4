//! `channel::ByteRing`: a ring of byte messages whose whole state lives in a `SharedBuffer`
//! range. FIFO with random sizes (empty and largest messages, wraparound), full and empty,
//! timeouts, close, several handles on the same bytes, in-place writing and reading, bad places
//! and sizes, and a million checksummed messages between two threads. Garbage written by a
//! peer is covered in `byte_ring_hostile.rs` and `proptests/byte_ring.rs`.
//!
//! No timing thresholds: a blocked call is established from the kernel's thread state, and
//! every wait for another thread has a 20 s watchdog.

mod common;

use std::io::{Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    current_tid, recv_within, wait_until_asleep, within_watchdog, within_watchdog_of_progress,
};
use sharedbuf::channel::{ByteReceiver, ByteRing, ByteSender};
use sharedbuf::{Error, SharedBuffer};

/// A small deterministic generator (splitmix64): tests are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Message `seq` of `len` bytes: every byte depends on both, so a lost, repeated, reordered
/// or torn message is seen.
fn message(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect()
}

/// A fresh ring of `capacity` data bytes at offset 0 of a buffer of its own.
fn ring(capacity: usize) -> ByteRing {
    let buffer = SharedBuffer::new(ByteRing::bytes_for(capacity).unwrap()).unwrap();
    ByteRing::at(&buffer, 0, capacity).unwrap()
}

fn pair(capacity: usize) -> (ByteSender, ByteReceiver) {
    let ring = ring(capacity);
    (ring.sender().unwrap(), ring.receiver().unwrap())
}

/// Bytes a message of `len` bytes takes in the ring.
fn record(len: usize) -> usize {
    ByteRing::RECORD_HEADER_BYTES + len.next_multiple_of(8)
}

#[test]
fn all_zero_bytes_are_an_empty_open_ring() {
    let (mut tx, mut rx) = pair(64);
    assert_eq!(rx.try_recv(), Ok(None));
    assert!(!tx.is_closed());
    tx.try_send(b"first").unwrap();
    assert_eq!(rx.try_recv(), Ok(Some(b"first".to_vec())));
    assert_eq!(rx.try_recv(), Ok(None));
}

/// The ring's expected behaviour, computed independently: positions, the wrap's padding, and
/// the queue of records (`None` for padding).
struct Model {
    capacity: usize,
    tail: usize,
    head: usize,
    records: std::collections::VecDeque<(Option<Vec<u8>>, usize)>,
}

impl Model {
    fn free(&self) -> usize {
        self.capacity - (self.tail - self.head)
    }

    /// What `try_send` must return.
    fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let size = record(bytes.len());
        let to_end = self.capacity - self.tail % self.capacity;
        if size > to_end {
            if self.free() < to_end {
                return Err(Error::Full);
            }
            self.tail += to_end; // the padding is published even if the message then waits
            self.records.push_back((None, to_end));
        }
        if self.free() < size {
            return Err(Error::Full);
        }
        self.tail += size;
        self.records.push_back((Some(bytes.to_vec()), size));
        Ok(())
    }

    /// What `try_recv` must return.
    fn recv(&mut self) -> Option<Vec<u8>> {
        while let Some((message, size)) = self.records.pop_front() {
            self.head += size;
            if message.is_some() {
                return message;
            }
        }
        None
    }
}

#[test]
fn fifo_with_random_sizes_including_empty_and_largest_messages_across_many_wraps() {
    let capacity = 256;
    let (mut tx, mut rx) = pair(capacity);
    let max = tx.max_message_len();
    assert_eq!(max, capacity - 8);
    let mut model = Model {
        capacity,
        tail: 0,
        head: 0,
        records: Default::default(),
    };
    let mut rng = Rng(1);
    let (mut sent, mut received, mut fulls) = (0u64, 0u64, 0u64);
    // Fewer under Miri, which interprets the ring about a thousand times slower.
    let messages: u64 = if cfg!(miri) { 400 } else { 20_000 };
    while received < messages {
        if rng.below(2) == 0 {
            let len = match rng.below(8) {
                0 => 0,
                1 => max,
                _ => rng.below(max / 3),
            };
            let bytes = message(sent, len);
            let expected = model.send(&bytes);
            assert_eq!(tx.try_send(&bytes), expected, "send {sent} of {len} bytes");
            match expected {
                Ok(()) => sent += 1,
                Err(_) => fulls += 1,
            }
        } else {
            let expected = model.recv();
            assert_eq!(rx.try_recv(), Ok(expected.clone()), "receive {received}");
            received += u64::from(expected.is_some());
        }
    }
    assert!(
        fulls > messages / 200,
        "the test filled the ring only {fulls} times"
    );
    assert!(
        model.tail > messages as usize / 200 * capacity,
        "the test wrapped only a few times"
    );
}

#[test]
fn a_message_that_wraps_is_preceded_by_padding_and_arrives_whole() {
    let (mut tx, mut rx) = pair(64);
    // 40 bytes of records, then a 24-byte message needs 32 bytes but only 24 remain to the end:
    // it goes to offset 0 once the first records are freed.
    tx.try_send(&[1; 16]).unwrap(); // 24 bytes
    tx.try_send(&[2; 8]).unwrap(); // 16 bytes: 40 in all
    assert_eq!(tx.try_send(&[3; 24]), Err(Error::Full)); // pads 24, then needs 32 more
    assert_eq!(rx.try_recv(), Ok(Some(vec![1; 16])));
    assert_eq!(tx.try_send(&[3; 24]), Err(Error::Full)); // 16 + 24 padding queued: 24 free
    assert_eq!(rx.try_recv(), Ok(Some(vec![2; 8])));
    tx.try_send(&[3; 24]).unwrap(); // padding skipped by the receiver below
    assert_eq!(rx.try_recv(), Ok(Some(vec![3; 24])));
    assert_eq!(rx.try_recv(), Ok(None));
}

#[test]
fn full_and_empty_are_exact_without_a_wrap() {
    let (mut tx, mut rx) = pair(64);
    for i in 0..4u8 {
        tx.try_send(&[i]).unwrap(); // 16 bytes each: four fill 64
    }
    assert_eq!(tx.try_send(&[]), Err(Error::Full));
    for i in 0..4u8 {
        assert_eq!(rx.try_recv(), Ok(Some(vec![i])));
    }
    assert_eq!(rx.try_recv(), Ok(None));
    // Eight empty messages (8 bytes each) fill it too.
    for _ in 0..8 {
        tx.try_send(&[]).unwrap();
    }
    assert_eq!(tx.try_send(&[]), Err(Error::Full));
    for _ in 0..8 {
        assert_eq!(rx.try_recv(), Ok(Some(Vec::new())));
    }
    assert_eq!(rx.try_recv(), Ok(None));
}

#[test]
fn the_largest_message_fits_and_one_byte_more_is_refused_before_anything_is_written() {
    let (mut tx, mut rx) = pair(128);
    let largest = vec![7u8; 120];
    assert_eq!(
        tx.try_send(&[0; 121]),
        Err(Error::ExceedsMax {
            requested: 121,
            max: 120
        })
    );
    assert_eq!(
        tx.send(&[0; 121], None),
        Err(Error::ExceedsMax {
            requested: 121,
            max: 120
        })
    );
    assert_eq!(
        rx.try_recv(),
        Ok(None),
        "a refused message left nothing behind"
    );
    // From every position of the ring, the largest message goes through: at once from offset
    // 0, otherwise once the receiver has skipped the padding to the end of the ring.
    for step in 0..20 {
        tx.try_send(&vec![1; step * 3 % 40]).unwrap();
        assert!(rx.try_recv().unwrap().is_some());
        if tx.try_send(&largest) == Err(Error::Full) {
            assert_eq!(rx.try_recv(), Ok(None), "only padding was queued");
            tx.try_send(&largest).unwrap();
        }
        assert_eq!(rx.try_recv(), Ok(Some(largest.clone())));
    }
}

#[test]
fn recv_and_send_time_out_at_their_deadline() {
    let (mut tx, mut rx) = pair(16);
    let soon = Some(Instant::now() + Duration::from_millis(20));
    assert_eq!(rx.recv(soon), Err(Error::Timeout));
    tx.try_send(&[1; 8]).unwrap(); // 16 bytes: full
    let soon = Some(Instant::now() + Duration::from_millis(20));
    assert_eq!(tx.send(&[2], soon), Err(Error::Timeout));
    let past = Some(Instant::now() - Duration::from_millis(1));
    assert_eq!(tx.send(&[2], past), Err(Error::Timeout));
    assert_eq!(
        rx.recv(past),
        Ok(vec![1; 8]),
        "a message that is there needs no waiting"
    );
    assert_eq!(rx.recv(past), Err(Error::Timeout));
}

#[test]
fn close_delivers_what_was_sent_then_reports_closed_on_both_sides() {
    let ring = ring(128);
    let (mut tx, mut rx) = (ring.sender().unwrap(), ring.receiver().unwrap());
    tx.try_send(b"a").unwrap();
    tx.try_send(b"b").unwrap();
    ring.close();
    ring.close(); // idempotent
    assert!(tx.is_closed() && rx.is_closed() && ring.is_closed());
    assert_eq!(tx.try_send(b"c"), Err(Error::Closed));
    assert_eq!(tx.send(b"c", None), Err(Error::Closed));
    assert_eq!(rx.recv(None), Ok(b"a".to_vec()));
    assert_eq!(rx.try_recv(), Ok(Some(b"b".to_vec())));
    assert_eq!(rx.try_recv(), Err(Error::Closed));
    assert_eq!(rx.recv(None), Err(Error::Closed));
}

#[test]
fn dropping_the_sender_or_the_receiver_closes_the_ring() {
    let (tx, mut rx) = pair(64);
    drop(tx);
    assert_eq!(rx.recv(None), Err(Error::Closed));

    let (mut tx, rx) = pair(64);
    drop(rx);
    assert_eq!(tx.send(b"x", None), Err(Error::Closed));
}

/// Runs `blocked` on a thread that reports its kernel id first, waits until that thread is
/// asleep, runs `then`, and returns what `blocked` returned (20 s watchdog).
fn while_blocked<T: Send + 'static>(
    blocked: impl FnOnce() -> T + Send + 'static,
    then: impl FnOnce(),
) -> T {
    let (tid_tx, tid_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        tid_tx.send(current_tid()).unwrap();
        done_tx.send(blocked()).unwrap();
    });
    wait_until_asleep(recv_within(&tid_rx, "the blocked thread's start"));
    then();
    let result = recv_within(&done_rx, "the blocked call");
    thread.join().unwrap();
    result
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn close_wakes_a_receiver_blocked_on_an_empty_ring() {
    let ring = ring(64);
    let (_tx, mut rx) = (ring.sender().unwrap(), ring.receiver().unwrap());
    let result = while_blocked(move || rx.recv(None), || ring.close());
    assert_eq!(result, Err(Error::Closed));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn close_wakes_a_sender_blocked_on_a_full_ring() {
    let ring = ring(16);
    let (mut tx, _rx) = (ring.sender().unwrap(), ring.receiver().unwrap());
    tx.try_send(&[0; 8]).unwrap();
    let result = while_blocked(move || tx.send(&[1], None), || ring.close());
    assert_eq!(result, Err(Error::Closed));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn a_blocked_receiver_wakes_for_a_message_and_a_blocked_sender_for_room() {
    let (mut tx, mut rx) = pair(16);
    let (rx_back_tx, rx_back) = mpsc::channel();
    let got = while_blocked(
        move || {
            let got = rx.recv(None);
            rx_back_tx.send(rx).unwrap();
            got
        },
        || tx.try_send(b"wake").unwrap(),
    );
    assert_eq!(got, Ok(b"wake".to_vec()));
    let mut rx = rx_back.recv().unwrap();

    tx.try_send(&[9; 8]).unwrap(); // full
    let sent = while_blocked(
        move || tx.send(b"room", None).map(|()| tx),
        || assert_eq!(rx.try_recv(), Ok(Some(vec![9; 8]))),
    );
    let _tx = sent.unwrap();
    assert_eq!(rx.try_recv(), Ok(Some(b"room".to_vec())));
}

#[test]
fn two_handles_attached_at_the_same_offset_are_one_ring() {
    let capacity = 128;
    let offset = 64;
    let buffer = SharedBuffer::new(offset + ByteRing::bytes_for(capacity).unwrap()).unwrap();
    let a = ByteRing::at(&buffer, offset, capacity).unwrap();
    let b = ByteRing::at(&buffer.clone(), offset, capacity).unwrap();
    let mut tx = a.sender().unwrap();
    let mut rx = b.receiver().unwrap();
    assert_eq!(
        b.sender().unwrap_err(),
        Error::AlreadyAttached {
            role: "byte ring's sender"
        }
    );
    assert_eq!(
        a.receiver().unwrap_err(),
        Error::AlreadyAttached {
            role: "byte ring's receiver"
        }
    );
    assert_eq!(
        ByteRing::at(&buffer, offset, 64).unwrap_err(),
        Error::ParameterMismatch {
            parameter: "byte ring capacity",
            existing: 128,
            requested: 64
        }
    );
    assert_eq!((a.capacity(), b.capacity()), (capacity, capacity));
    for seq in 0..100 {
        tx.try_send(&message(seq, (seq % 50) as usize)).unwrap();
        assert_eq!(rx.try_recv(), Ok(Some(message(seq, (seq % 50) as usize))));
    }
    b.close();
    assert!(
        a.is_closed(),
        "a close through one attach is seen through the other"
    );
    assert_eq!(tx.try_send(b"late"), Err(Error::Closed));
    // The ring's bytes are exactly its range: the bytes before it are untouched.
    let before = sharedbuf::Uint8Array::with_range(&buffer, 0, Some(offset)).unwrap();
    assert!(before.to_vec().iter().all(|&b| b == 0));
}

#[test]
fn concurrent_attaches_agree_on_one_capacity() {
    let buffer = SharedBuffer::new(ByteRing::bytes_for(1 << 12).unwrap()).unwrap();
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let buffer = buffer.clone();
            // Half ask for 2 KiB, half for 4 KiB: exactly one size wins.
            thread::spawn(move || ByteRing::at(&buffer, 0, 1 << (11 + i % 2)).map(|r| r.capacity()))
        })
        .collect();
    let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    let winners: Vec<usize> = results.iter().filter_map(|r| r.clone().ok()).collect();
    assert_eq!(winners.len(), 4, "{results:?}");
    assert!(winners.iter().all(|&c| c == winners[0]), "{results:?}");
    for result in &results {
        if let Err(error) = result {
            assert!(matches!(error, Error::ParameterMismatch { .. }), "{error}");
        }
    }
}

#[test]
fn bad_places_and_capacities_are_errors() {
    let buffer = SharedBuffer::new(1024).unwrap();
    for capacity in [0, 8, 15, 24, 100, (1 << 30) + 1, 1 << 31, usize::MAX] {
        assert!(
            matches!(
                ByteRing::at(&buffer, 0, capacity),
                Err(Error::InvalidParameter {
                    parameter: "byte ring capacity",
                    ..
                })
            ),
            "capacity {capacity}"
        );
        assert!(
            ByteRing::bytes_for(capacity).is_err(),
            "capacity {capacity}"
        );
    }
    assert_eq!(
        ByteRing::at(&buffer, 4, 64).unwrap_err(),
        Error::Misaligned {
            byte_offset: 4,
            align: 8
        }
    );
    let needed = ByteRing::bytes_for(1024).unwrap();
    assert_eq!(
        ByteRing::at(&buffer, 0, 1024).unwrap_err(),
        Error::RangeOutOfBounds {
            start: 0,
            end: needed,
            len: 1024
        }
    );
    let last_fit = 1024 - ByteRing::bytes_for(512).unwrap();
    assert!(ByteRing::at(&buffer, last_fit, 512).is_ok());
    assert!(ByteRing::at(&buffer, last_fit + 8, 512).is_err());
    assert!(ByteRing::at(&buffer, usize::MAX - 7, 16).is_err());
    // Nothing was written by the refused attaches at offset 0.
    assert!(sharedbuf::Uint8Array::with_range(&buffer, 0, Some(256))
        .unwrap()
        .to_vec()
        .iter()
        .all(|&b| b == 0));
}

#[test]
fn capacity_for_holds_that_many_messages_at_once_from_any_position() {
    let mut rng = Rng(7);
    // Fewer rounds under Miri, which interprets the ring about a thousand times slower.
    for _ in 0..if cfg!(miri) { 20 } else { 200 } {
        let max_len = rng.below(300);
        let messages = 1 + rng.below(10);
        let capacity = ByteRing::capacity_for(max_len, messages).unwrap();
        assert!(capacity.is_power_of_two() && capacity >= ByteRing::MIN_CAPACITY);
        let (mut tx, mut rx) = pair(capacity);
        // Move the ring to a random position first.
        for _ in 0..rng.below(50) {
            tx.try_send(&vec![0; rng.below(max_len + 1)]).unwrap();
            rx.try_recv().unwrap().unwrap();
        }
        for i in 0..messages {
            tx.try_send(&vec![1; max_len])
                .unwrap_or_else(|e| panic!("message {i} of {messages} x {max_len} B: {e}"));
        }
    }
    assert!(ByteRing::capacity_for(1 << 30, 1).is_err());
    assert!(ByteRing::capacity_for(usize::MAX, 1).is_err());
    assert!(ByteRing::capacity_for(8, usize::MAX).is_err());
    assert_eq!(ByteRing::capacity_for(0, 0), Ok(16));
}

#[test]
fn send_with_writes_in_place_and_sends_what_was_written() {
    let (mut tx, mut rx) = pair(256);
    let n = tx
        .send_with(100, None, |w| -> Result<usize, Error> {
            assert_eq!((w.len(), w.remaining()), (0, 100));
            w.write(b"hello, ")?;
            w.write(b"world")?;
            Ok(w.len())
        })
        .unwrap();
    assert_eq!(n, 12);
    assert_eq!(rx.try_recv(), Ok(Some(b"hello, world".to_vec())));

    // Through io::Write, with its io::Error.
    tx.try_send_with(16, |w| -> std::io::Result<()> {
        write!(w, "{}", 12345)?;
        w.write_all(b"!")
    })
    .unwrap();
    assert_eq!(rx.try_recv(), Ok(Some(b"12345!".to_vec())));

    // Writing past the reservation is refused, and the closure's error sends nothing.
    let refused = tx.send_with(4, None, |w| w.write(b"too long"));
    assert_eq!(
        refused,
        Err(Error::ExceedsMax {
            requested: 8,
            max: 4
        })
    );
    let io_refused = tx.try_send_with(4, |w| w.write_all(b"too long"));
    assert_eq!(
        io_refused.unwrap_err().kind(),
        std::io::ErrorKind::WriteZero
    );
    assert_eq!(
        rx.try_recv(),
        Ok(None),
        "nothing is sent when the closure fails"
    );

    // A panic in the closure sends nothing either, and the sender stays usable.
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        let _ = tx.send_with(8, None, |w| -> Result<(), Error> {
            w.write(b"partial")?;
            panic!("serializer failed")
        });
    }));
    assert!(caught.is_err());
    assert_eq!(rx.try_recv(), Ok(None));
    tx.try_send(b"after").unwrap();
    assert_eq!(rx.try_recv(), Ok(Some(b"after".to_vec())));
}

#[test]
fn recv_with_reads_in_place_and_consumes_the_message_even_on_a_panic() {
    let (mut tx, mut rx) = pair(256);
    tx.try_send(b"0123456789").unwrap();
    let (len, middle, rest) = rx
        .recv_with(None, |m| {
            let mut middle = [0; 3];
            m.copy_to_slice(4, &mut middle).unwrap();
            assert!(m.copy_to_slice(8, &mut [0; 3]).is_err());
            let mut rest = String::new();
            m.read_to_string(&mut rest).unwrap();
            (m.len(), middle, rest)
        })
        .unwrap();
    assert_eq!((len, &middle, rest.as_str()), (10, b"456", "0123456789"));

    tx.try_send(b"poison").unwrap();
    tx.try_send(b"next").unwrap();
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        let _ = rx.try_recv_with(|_| panic!("handler failed"));
    }));
    assert!(caught.is_err());
    assert_eq!(
        rx.try_recv(),
        Ok(Some(b"next".to_vec())),
        "the panicking message is consumed"
    );
    assert_eq!(rx.try_recv_with(|m| m.len()), Ok(None));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "learns from /proc that a thread sleeps; Miri's threads have no entry there"
)]
fn a_receiver_in_a_terminated_worker_returns_terminated() {
    let (_tx, rx) = pair(64);
    let (tid_tx, tid_rx) = mpsc::channel();
    let (result_tx, result_rx) = mpsc::channel();
    let worker: sharedbuf::Worker<(), ()> = sharedbuf::Worker::spawn(move |_ctx| {
        let mut rx = rx;
        tid_tx.send(current_tid()).unwrap();
        let result = rx.recv(None);
        result_tx.send(result.clone()).unwrap();
        result.map(drop)
    })
    .unwrap();
    wait_until_asleep(recv_within(&tid_rx, "the worker's start"));
    let status = within_watchdog("terminate", move || worker.terminate().unwrap());
    assert!(status.terminated());
    assert_eq!(
        recv_within(&result_rx, "the worker's recv"),
        Err(Error::Terminated)
    );
}

#[test]
fn a_million_checksummed_messages_between_two_threads() {
    const COUNT: u64 = if cfg!(miri) { 500 } else { 1_000_000 };
    let (mut tx, mut rx) = pair(4096);
    let sender = thread::spawn(move || {
        let mut rng = Rng(42);
        let mut sum = 0u64;
        let mut buf = [0u8; 300];
        for seq in 0..COUNT {
            let len = if seq % 1000 == 0 { 300 } else { rng.below(40) };
            for (i, byte) in buf[..len].iter_mut().enumerate() {
                *byte = (seq as usize).wrapping_mul(13).wrapping_add(i) as u8;
            }
            sum = sum
                .wrapping_mul(31)
                .wrapping_add(checksum(seq, &buf[..len]));
            tx.send(&buf[..len], None).unwrap();
        }
        sum
    });
    // Fails when the messages stop coming for the watchdog's time, not when they all take
    // longer than that (they do on an oversubscribed host).
    let received = within_watchdog_of_progress("receiving a million messages", move |progress| {
        let mut sum = 0u64;
        for seq in 0..COUNT {
            progress.store(seq, Ordering::SeqCst);
            let bytes = rx.recv(None).unwrap();
            for (i, &byte) in bytes.iter().enumerate() {
                assert_eq!(
                    byte,
                    (seq as usize).wrapping_mul(13).wrapping_add(i) as u8,
                    "message {seq}, byte {i}"
                );
            }
            sum = sum.wrapping_mul(31).wrapping_add(checksum(seq, &bytes));
        }
        assert_eq!(
            rx.recv(None),
            Err(Error::Closed),
            "the dropped sender closed the ring"
        );
        sum
    });
    assert_eq!(sender.join().unwrap(), received);
}

fn checksum(seq: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seq ^ bytes.len() as u64, |h, &b| {
        h.rotate_left(5) ^ u64::from(b)
    })
}
