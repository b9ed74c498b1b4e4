//! `channel::ByteRing` against a hostile or broken peer (docs/semantics.md X5): garbage written
//! over the ring's words and records gives `Err(Corrupted)`, never a panic, a read outside the
//! ring or a wait past the deadline; this side's close cannot be undone by the peer.
//!
//! The "peer" writes the bytes through views of the same buffer, at the offsets the module
//! docs draw: tail word at 64, head word at 128, data from 192 (`HEADER_BYTES`).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::within_watchdog;
use sharedbuf::channel::{ByteReceiver, ByteRing, ByteSender};
use sharedbuf::{atomics, BigUint64Array, Error, SharedBuffer, Uint32Array};

const CAPACITY: usize = 128;
/// `u32` indices of the position words, and the data's byte offset (module docs' layout).
const TAIL: usize = 64 / 4;
const HEAD: usize = 128 / 4;
const DATA: usize = ByteRing::HEADER_BYTES;

const WAITING: u32 = 1;
const CLOSED: u32 = 2;
const MESSAGE: u64 = 0x5342_4d31;
const PADDING: u64 = 0x5342_5031;

struct Setup {
    buffer: SharedBuffer,
    ring: ByteRing,
    tx: ByteSender,
    rx: ByteReceiver,
    words: Uint32Array,
    records: BigUint64Array,
}

fn setup() -> Setup {
    assert_eq!(DATA, 192, "the layout the module docs draw");
    let buffer = SharedBuffer::new(ByteRing::bytes_for(CAPACITY).unwrap()).unwrap();
    let ring = ByteRing::at(&buffer, 0, CAPACITY).unwrap();
    Setup {
        tx: ring.sender().unwrap(),
        rx: ring.receiver().unwrap(),
        words: Uint32Array::with_range(&buffer, 0, Some(DATA / 4)).unwrap(),
        records: BigUint64Array::with_range(&buffer, DATA, Some(CAPACITY / 8)).unwrap(),
        ring,
        buffer,
    }
}

fn corrupted(result: Result<impl std::fmt::Debug, Error>) -> &'static str {
    match result {
        Err(Error::Corrupted { what }) => what,
        other => panic!("expected Err(Corrupted), got {other:?}"),
    }
}

#[test]
fn the_layout_is_the_one_documented() {
    let mut s = setup();
    s.tx.try_send(b"abc").unwrap();
    assert_eq!(
        s.words.get(TAIL),
        Some(16),
        "tail position after one 3-byte message"
    );
    assert_eq!(s.records.get(0), Some((MESSAGE << 32) | 3));
    assert_eq!(s.rx.try_recv(), Ok(Some(b"abc".to_vec())));
    assert_eq!(s.words.get(HEAD), Some(16));
    assert_eq!(s.words.get(0), Some(CAPACITY as u32));
    assert_eq!(s.words.get(1), Some(3), "both roles taken");
    s.ring.close();
    assert_eq!(s.words.get(TAIL).unwrap() & CLOSED, CLOSED);
    assert_eq!(s.words.get(HEAD).unwrap() & CLOSED, CLOSED);
}

#[test]
fn a_tail_word_outside_the_ring_or_misaligned_is_corruption() {
    for garbage in [4u32, 12, CAPACITY as u32 + 8, !3, 0x8000_0000] {
        let mut s = setup();
        s.words.set(TAIL, garbage).unwrap();
        corrupted(s.rx.try_recv());
        corrupted(s.rx.recv(None)); // checked before any wait: no hang
    }
}

#[test]
fn a_record_of_unknown_kind_or_too_long_is_corruption() {
    let cases: [(u64, &str); 5] = [
        (0, "zeroed record header"),
        ((0xdead << 32) | 8, "unknown kind"),
        ((MESSAGE << 32) | 9, "runs past the 16 published bytes"),
        ((MESSAGE << 32) | u64::from(u32::MAX), "absurd length"),
        ((PADDING << 32) | 16, "padding that does not reach the end"),
    ];
    for (header, why) in cases {
        let mut s = setup();
        s.tx.try_send(&[5; 8]).unwrap(); // publishes 16 bytes
        s.records.set(0, header).unwrap();
        let what = corrupted(s.rx.try_recv());
        assert!(!what.is_empty(), "{why}");
        // The receiver did not move: the same garbage gives the same answer, and repairing it
        // (as a peer might) makes the message readable again.
        corrupted(s.rx.try_recv());
        s.records.set(0, (MESSAGE << 32) | 8).unwrap();
        assert_eq!(s.rx.try_recv(), Ok(Some(vec![5; 8])), "{why}");
    }
}

#[test]
fn a_head_word_outside_the_ring_is_corruption_for_the_sender() {
    let mut s = setup();
    for _ in 0..(CAPACITY / 16) {
        s.tx.try_send(&[1; 8]).unwrap(); // fills the ring
    }
    s.words.set(HEAD, 256).unwrap(); // ahead of the tail
    corrupted(s.tx.try_send(b"x"));
    corrupted(s.tx.send(b"x", None));
    s.words.set(HEAD, 4).unwrap(); // misaligned
    corrupted(s.tx.try_send(b"x"));
}

#[test]
fn position_words_moved_by_someone_else_are_corruption() {
    let mut s = setup();
    s.words.set(TAIL, 32).unwrap(); // the sender's own word, moved
    corrupted(s.tx.try_send(b"x"));

    let mut s = setup();
    s.tx.try_send(b"x").unwrap();
    s.words.set(HEAD, 8).unwrap(); // the receiver's own word, moved
    let what = corrupted(s.rx.try_recv());
    assert!(what.contains("moved"), "{what}");
}

#[test]
fn a_message_overwritten_while_queued_arrives_as_garbage_of_the_right_length_never_more() {
    let mut s = setup();
    s.tx.try_send(&[1; 20]).unwrap();
    let data = sharedbuf::Uint8Array::with_range(&s.buffer, DATA + 8, Some(24)).unwrap();
    data.fill(0xee);
    assert_eq!(s.rx.try_recv(), Ok(Some(vec![0xee; 20])));
}

#[test]
fn the_peer_cannot_reopen_a_ring_this_side_closed() {
    let mut s = setup();
    s.tx.try_send(b"before").unwrap();
    s.ring.close();
    // The peer clears the CLOSED flags again.
    for index in [TAIL, HEAD] {
        let word = s.words.get(index).unwrap();
        s.words.set(index, word & !CLOSED).unwrap();
    }
    assert!(s.ring.is_closed());
    assert_eq!(s.tx.try_send(b"after"), Err(Error::Closed));
    assert_eq!(s.rx.try_recv(), Ok(Some(b"before".to_vec())));
    assert_eq!(s.rx.try_recv(), Err(Error::Closed));
    assert_eq!(s.rx.recv(None), Err(Error::Closed));
}

#[test]
fn a_peer_that_writes_garbage_without_notifying_leaves_the_receiver_waiting_only_until_its_deadline(
) {
    let s = setup();
    let mut rx = s.rx;
    let words = s.words.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let peer_stop = Arc::clone(&stop);
    // The peer keeps flipping the tail word between values, never notifying.
    let peer = thread::spawn(move || {
        let mut i = 0u32;
        while !peer_stop.load(Ordering::Relaxed) {
            words
                .set(TAIL, if i % 2 == 0 { WAITING } else { 0 })
                .unwrap();
            i = i.wrapping_add(1);
            thread::yield_now();
        }
    });
    let result = within_watchdog("a receive against a flipping peer", move || {
        rx.recv(Some(Instant::now() + Duration::from_millis(50)))
    });
    stop.store(true, Ordering::Relaxed);
    peer.join().unwrap();
    assert_eq!(result, Err(Error::Timeout));
    drop(s.tx);
}

#[test]
fn garbage_followed_by_a_notify_wakes_the_receiver_with_corrupted() {
    let s = setup();
    let mut rx = s.rx;
    let words = s.words.clone();
    let peer = thread::spawn(move || {
        // Wait until the receiver has flagged the tail word, then scribble and notify.
        while words.get(TAIL) != Some(WAITING) {
            thread::yield_now();
        }
        words.set(TAIL, 1000).unwrap();
        atomics::notify(&words, TAIL, None).unwrap();
    });
    let result = within_watchdog("a receive woken by garbage", move || rx.recv(None));
    peer.join().unwrap();
    corrupted(result);
    drop(s.tx);
}

#[test]
fn a_peer_rewriting_the_sleepers_word_cannot_keep_a_sender_past_its_deadline() {
    let mut s = setup();
    for _ in 0..(CAPACITY / 16) {
        s.tx.try_send(&[1; 8]).unwrap();
    }
    let words = s.words.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let peer_stop = Arc::clone(&stop);
    // The peer clears the sender's flag as fast as it can (changing nothing else), so the
    // sender's sleeps keep finding the word changed: only the deadline check ends the call.
    let peer = thread::spawn(move || {
        while !peer_stop.load(Ordering::Relaxed) {
            words.set(HEAD, 0).unwrap();
        }
    });
    let mut tx = s.tx;
    let result = within_watchdog("a send against a rewriting peer", move || {
        tx.send(b"x", Some(Instant::now() + Duration::from_millis(50)))
    });
    stop.store(true, Ordering::Relaxed);
    peer.join().unwrap();
    assert_eq!(result, Err(Error::Timeout));
}

#[test]
fn garbage_in_the_capacity_and_roles_words_is_refused_at_attach() {
    let buffer = SharedBuffer::new(ByteRing::bytes_for(CAPACITY).unwrap()).unwrap();
    let words = Uint32Array::with_range(&buffer, 0, Some(2)).unwrap();
    words.set(0, 12345).unwrap();
    assert!(matches!(
        ByteRing::at(&buffer, 0, CAPACITY),
        Err(Error::ParameterMismatch {
            existing: 12345,
            ..
        })
    ));
    words.set(0, 0).unwrap();
    words.set(1, u32::MAX).unwrap();
    let ring = ByteRing::at(&buffer, 0, CAPACITY).unwrap();
    assert!(matches!(ring.sender(), Err(Error::AlreadyAttached { .. })));
    assert!(matches!(
        ring.receiver(),
        Err(Error::AlreadyAttached { .. })
    ));
}

#[test]
fn garbage_positions_at_attach_are_corruption() {
    let buffer = SharedBuffer::new(ByteRing::bytes_for(CAPACITY).unwrap()).unwrap();
    let words = Uint32Array::with_range(&buffer, 0, Some(DATA / 4)).unwrap();
    words.set(TAIL, 1 << 20).unwrap();
    words.set(HEAD, 4).unwrap();
    let ring = ByteRing::at(&buffer, 0, CAPACITY).unwrap();
    corrupted(ring.sender());
    corrupted(ring.receiver());
}
