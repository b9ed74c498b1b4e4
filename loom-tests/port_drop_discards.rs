//! Loom model (docs/semantics.md W4, W6): dropping a port while the other port posts to it. When the
//! drop returns and the post has returned, the posted message is dropped — whether the post
//! claimed its slot before the close (the drop waits for the post to stamp it, then drops it)
//! or failed with `Closed` (the caller got it back and dropped it) — and nothing is left in the
//! ring although the sending port still holds it. The other direction is untouched: a message
//! posted to the surviving port before the drop is still delivered.
//!
//! Proven by a planted bug (recorded when the model was added): the discard stopping at a claimed-but-unstamped slot; the drop discarding the wrong ring.
#![cfg(loom)]

use std::sync::Arc as Token; // a plain counter of clones: the model checks counts after joins

use sharedbuf::{Error, MessageChannel};

#[test]
fn dropping_a_port_drops_what_was_posted_to_it_and_keeps_the_other_direction() {
    loom::model(|| {
        let (for_a, for_b) = (Token::new(()), Token::new(()));
        let (a, b) = MessageChannel::<Token<()>>::with_capacity(2).unwrap();
        b.post_message(Token::clone(&for_a)).unwrap();
        let sender = {
            let message = Token::clone(&for_b);
            loom::thread::spawn(move || {
                let posted = a.post_message(message);
                (posted, a) // keep the sending port (and so the ring) alive
            })
        };
        drop(b);
        let (posted, a) = sender.join().unwrap();
        assert!(matches!(posted, Ok(()) | Err(Error::Closed)), "{posted:?}");
        assert_eq!(
            Token::strong_count(&for_b),
            1,
            "a message posted to the dropped port is still alive"
        );
        let delivered = a
            .try_recv()
            .expect("the message posted to `a` before `b` was dropped");
        assert!(Token::ptr_eq(&delivered, &for_a));
        assert_eq!(a.try_recv(), None);
    });
}
