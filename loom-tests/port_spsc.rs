//! Loom model (docs/semantics.md W4): one sender, one receiver, a ring of 2 slots and 3 messages, so
//! the sender waits on a full ring and the receiver on an empty one. Every message arrives
//! exactly once, in order, and its payload is read after it was written (loom checks the slot
//! accesses themselves).
//!
//! Proven by planted bugs: the post stamps its slot full with Relaxed instead of Release (loom causality violation: concurrent read and write of the slot); a post whose claim finds `ASLEEP` on the tail does not notify (deadlock); a receiver sleeps on the tail although its `fetch_or` shows the post it waits for already claimed it (deadlock, also in `port_two_senders`' blocked-receiver model).
#![cfg(loom)]

use sharedbuf::MessageChannel;

#[test]
fn one_sender_one_receiver_fifo_no_loss_no_duplication() {
    loom::model(|| {
        let (a, b) = MessageChannel::<String>::with_capacity(2).unwrap();
        let sender = loom::thread::spawn(move || {
            for i in 0..3 {
                a.post_message(format!("m{i}")).unwrap();
            }
            a // keep the channel open until the receiver is done
        });
        let received: Vec<String> = (0..3).map(|_| b.recv().unwrap()).collect();
        assert_eq!(received, ["m0", "m1", "m2"]);
        assert_eq!(b.try_recv(), None);
        drop(sender.join().unwrap());
    });
}
