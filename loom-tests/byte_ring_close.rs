//! Loom models of `ByteRing::close` (from a third attach, as a process watching the peer
//! would): racing a sender and a receiver, every send that returned `Ok` is delivered, in
//! order, before the receiver sees `Closed`, and once a send fails the later ones fail too;
//! and a receiver blocked on an empty ring, or a sender blocked on a full one, is woken by it.
//!
//! Proven by a planted bug: `close` flags and wakes only the tail word, not the head (loom deadlock: the sender blocked on a full ring sleeps on); and another: `publish` not checking `CLOSED`, so its compare-exchange clears it (assertion: a send returned `Ok` but was never delivered).
#![cfg(loom)]

use sharedbuf::channel::ByteRing;
use sharedbuf::{loom_hooks, Error, SharedBuffer};

const CAPACITY: usize = ByteRing::MIN_CAPACITY;

fn attach(buffer: &SharedBuffer) -> ByteRing {
    ByteRing::at(buffer, 0, CAPACITY).unwrap()
}

#[test]
fn close_racing_send_and_recv_loses_nothing_that_was_sent() {
    loom::model(|| {
        let buffer = SharedBuffer::new(ByteRing::bytes_for(CAPACITY).unwrap()).unwrap();
        let mut tx = attach(&buffer).sender().unwrap();
        let mut rx = attach(&buffer).receiver().unwrap();
        let closer_ring = attach(&buffer);
        let sender = loom::thread::spawn(move || {
            let first = tx.send(b"", None); // 8-byte records: both fit at once
            let second = tx.send(b"", None);
            (first, second, tx)
        });
        let closer = loom::thread::spawn(move || closer_ring.close());
        let mut received = 0;
        let end = loop {
            match rx.recv(None) {
                Ok(message) => {
                    assert!(message.is_empty());
                    received += 1;
                }
                Err(error) => break error,
            }
        };
        assert_eq!(end, Error::Closed);
        closer.join().unwrap();
        let (first, second, _tx) = sender.join().unwrap();
        assert!(
            !(first.is_err() && second.is_ok()),
            "a send succeeded after one saw the close"
        );
        for result in [&first, &second] {
            assert!(matches!(result, Ok(()) | Err(Error::Closed)), "{result:?}");
        }
        let sent = usize::from(first.is_ok()) + usize::from(second.is_ok());
        assert_eq!(received, sent);
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

#[test]
fn close_wakes_a_receiver_blocked_on_an_empty_ring() {
    loom::model(|| {
        let buffer = SharedBuffer::new(ByteRing::bytes_for(CAPACITY).unwrap()).unwrap();
        let _tx = attach(&buffer).sender().unwrap();
        let mut rx = attach(&buffer).receiver().unwrap();
        let receiver = loom::thread::spawn(move || (rx.recv(None), rx));
        attach(&buffer).close();
        let (result, _rx) = receiver.join().unwrap();
        assert_eq!(result, Err(Error::Closed));
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

#[test]
fn close_wakes_a_sender_blocked_on_a_full_ring() {
    loom::model(|| {
        let buffer = SharedBuffer::new(ByteRing::bytes_for(CAPACITY).unwrap()).unwrap();
        let mut tx = attach(&buffer).sender().unwrap();
        let mut rx = attach(&buffer).receiver().unwrap();
        tx.try_send(b"full").unwrap(); // a 16-byte record: the ring is full, and stays full
        let sender = loom::thread::spawn(move || (tx.send(b"more", None), tx));
        attach(&buffer).close();
        let (result, _tx) = sender.join().unwrap();
        assert_eq!(result, Err(Error::Closed));
        assert_eq!(rx.try_recv(), Ok(Some(b"full".to_vec())));
        assert_eq!(rx.try_recv(), Err(Error::Closed));
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
