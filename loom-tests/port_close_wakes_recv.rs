//! Loom model (docs/semantics.md W6): a receiver blocked in `recv` on an empty port is woken by
//! `close` on the other port, and returns `Err(Closed)`; a sender blocked on a full port is
//! woken the same way.
//!
//! Proven by planted bugs: `close` skips clearing the slots' `WAITING` flags and waking them (loom deadlock in both models; the flags were on the stamps then); `close` marks and notifies the tail but not the head, where a sender on a full ring sleeps (deadlock in the sender model).
#![cfg(loom)]

use sharedbuf::{loom_hooks, Error, MessageChannel};

#[test]
fn close_wakes_a_receiver_blocked_in_recv() {
    loom::model(|| {
        let (a, b) = MessageChannel::<u8>::with_capacity(2).unwrap();
        let receiver = loom::thread::spawn(move || b.recv());
        a.close();
        assert_eq!(receiver.join().unwrap(), Err(Error::Closed));
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

#[test]
fn close_wakes_a_sender_blocked_on_a_full_port() {
    loom::model(|| {
        let (a, b) = MessageChannel::<u8>::with_capacity(2).unwrap();
        a.post_message(1).unwrap();
        a.post_message(2).unwrap();
        let sender = loom::thread::spawn(move || a.post_message(3));
        b.close();
        assert_eq!(sender.join().unwrap(), Err(Error::Closed));
        assert_eq!(b.try_recv(), Some(1));
        assert_eq!(b.try_recv(), Some(2));
        assert_eq!(b.try_recv(), None);
    });
}
