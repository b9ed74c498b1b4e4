//! Loom model (docs/semantics.md W4): two senders race to claim slots of one port (ring of 4, two
//! messages each, so the claims of both senders interleave); the receiver then drains it.
//! Nothing is lost or duplicated, and each sender's messages arrive in its own order. A second
//! model races both senders against a receiver blocked in `recv`, one message each (two
//! messages each with a racing receiver is minutes of loom time).
//!
//! Proven by a planted bug: a post claims the tail by load + store instead of compare-exchange (loom causality violation: concurrent writes to a slot).
#![cfg(loom)]

use loom::sync::Arc;
use sharedbuf::MessageChannel;

#[test]
fn two_senders_no_loss_no_duplication_per_sender_order() {
    loom::model(|| {
        let (a, b) = MessageChannel::<(u8, u8)>::with_capacity(4).unwrap();
        let a = Arc::new(a);
        let senders: Vec<_> = (0..2u8)
            .map(|id| {
                let a = Arc::clone(&a);
                loom::thread::spawn(move || {
                    a.post_message((id, 0)).unwrap();
                    a.post_message((id, 1)).unwrap();
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        let mut next = [0u8; 2];
        while let Some((id, seq)) = b.try_recv() {
            assert_eq!(seq, next[id as usize], "sender {id} out of order");
            next[id as usize] += 1;
        }
        assert_eq!(next, [2, 2], "a message was lost or duplicated");
    });
}

#[test]
fn two_senders_and_a_blocked_receiver_one_message_each() {
    loom::model(|| {
        let (a, b) = MessageChannel::<u8>::with_capacity(2).unwrap();
        let a = Arc::new(a);
        let senders: Vec<_> = (0..2u8)
            .map(|id| {
                let a = Arc::clone(&a);
                loom::thread::spawn(move || a.post_message(id).unwrap())
            })
            .collect();
        let mut got = [b.recv().unwrap(), b.recv().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [0, 1], "a message was lost or duplicated");
        assert_eq!(b.try_recv(), None);
        for sender in senders {
            sender.join().unwrap();
        }
    });
}
