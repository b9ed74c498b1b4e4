//! Loom model of the `WAITING` protocol of a `ByteRing` (no notify unless a sleeper flagged
//! the word): each message fills the whole 16-byte ring, so the sender must sleep until the
//! receiver frees the first one, and the receiver sleeps whenever it gets ahead. No wakeup is
//! lost (loom reports a thread left asleep as a deadlock), and the waiter table is empty at
//! the end.
//!
//! Proven by a planted bug: the receiver's release moves the head word by load + store instead of compare-exchange, overwriting a sender's fresh `WAITING` flag (loom deadlock: both sides asleep).
#![cfg(loom)]

use sharedbuf::channel::ByteRing;
use sharedbuf::{loom_hooks, SharedBuffer};

#[test]
fn a_blocked_receiver_and_a_sender_blocked_on_a_full_ring_are_both_woken() {
    loom::model(|| {
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
            tx.send(b"1", None).unwrap(); // a 16-byte record: the ring is full
            tx.send(b"2", None).unwrap(); // waits for the receiver
            tx
        });
        assert_eq!(rx.recv(None).unwrap(), b"1");
        assert_eq!(rx.recv(None).unwrap(), b"2");
        drop(sender.join().unwrap());
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
