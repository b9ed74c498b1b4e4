//! Loom model: one sender and one receiver on a `ByteRing` of 16 data bytes, with messages of
//! different sizes, so the ring wraps through a padding record and at exactly its end, and
//! both sides may block (full ring, empty ring). Every message arrives exactly once, in order,
//! with its bytes: a payload, record header or position read before it was written (a missing
//! acquire/release, or a record freed before it was read) shows up as wrong bytes or
//! `Err(Corrupted)`. The sender, the receiver and the model's main thread attach separately,
//! as two processes would.
//!
//! Proven by a planted bug: the publish compare-exchange Release → Relaxed (assertion: stale payload bytes read, or `Err(Corrupted)`).
#![cfg(loom)]

use sharedbuf::channel::ByteRing;
use sharedbuf::{loom_hooks, SharedBuffer};

/// Records of 8 bytes at offset 0, then of 16 bytes, which would cross the end: the sender
/// publishes 8 bytes of padding, waits until the receiver has freed everything, and writes it
/// at offset 0, ending exactly at the end of the ring; then 8 bytes again, which wait for the
/// full ring to be freed. Payloads of 0 or 8 bytes: an aligned 8-byte payload is one atomic
/// word to copy, which keeps the model small.
const MESSAGES: [&[u8]; 3] = [b"", b"payload!", b""];

#[test]
fn fifo_without_loss_or_duplication_across_a_wrap_with_padding() {
    one_way(&MESSAGES);
}

/// Two messages that each fill the ring: the second overwrites the first one's bytes as soon
/// as the receiver frees them, so the receiver must copy a payload out before it frees it.
#[test]
fn a_payload_is_read_before_its_bytes_are_reused() {
    one_way(&[b"payload1", b"PAYLOAD2"]);
}

/// Sends `messages` from a spawned thread; receives and checks them on the model's thread.
fn one_way(messages: &'static [&'static [u8]]) {
    loom::model(move || {
        let capacity = ByteRing::MIN_CAPACITY;
        let buffer = SharedBuffer::new(ByteRing::bytes_for(capacity).unwrap()).unwrap();
        let mut tx = ByteRing::at(&buffer, 0, capacity)
            .unwrap()
            .sender()
            .unwrap();
        let mut rx = ByteRing::at(&buffer, 0, capacity)
            .unwrap()
            .receiver()
            .unwrap();
        let sender = loom::thread::spawn(move || {
            for message in messages {
                tx.send(message, None).unwrap();
            }
            tx // dropping it would close the ring: keep it until the receiver is done
        });
        for message in messages {
            assert_eq!(rx.recv(None).unwrap(), *message);
        }
        assert_eq!(rx.try_recv(), Ok(None));
        let tx = sender.join().unwrap();
        drop(tx);
        assert_eq!(rx.try_recv(), Err(sharedbuf::Error::Closed));
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
