//! Loom model (docs/semantics.md W4, W6): `try_recv` answers `None` only when no message is queued.
//! Two threads each post one message on a ring of 2 and then `try_recv` from it: each post
//! returned before the same thread's `try_recv`, and each thread takes at most one message, so
//! both must get one — also when the oldest slot was claimed by the other thread's post that
//! has not stamped it yet (the receive waits for it rather than answer "empty" or skip it).
//!
//! Proven by a planted bug (recorded when the model was added): answering empty when the oldest slot is claimed but not yet stamped; Relaxed head operations.
#![cfg(loom)]

use loom::sync::Arc;
use sharedbuf::MessageChannel;

#[test]
fn try_recv_after_a_returned_post_always_finds_a_message() {
    loom::model(|| {
        let (a, b) = MessageChannel::<u8>::with_capacity(2).unwrap();
        let (a, b) = (Arc::new(a), Arc::new(b));
        let other = {
            let (a, b) = (Arc::clone(&a), Arc::clone(&b));
            loom::thread::spawn(move || {
                a.post_message(1).unwrap();
                b.try_recv()
            })
        };
        a.post_message(0).unwrap();
        let mine = b.try_recv();
        let theirs = other.join().unwrap();
        let mut got = [
            mine.expect("try_recv missed a message (main thread)"),
            theirs.expect("try_recv missed a message (spawned thread)"),
        ];
        got.sort_unstable();
        assert_eq!(got, [0, 1], "a message was lost or duplicated");
    });
}
