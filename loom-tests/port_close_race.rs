//! Loom model (docs/semantics.md W4, W6): `close` racing a post and a receive. Every post that
//! returned `Ok` is delivered, in order, before the receiver sees `Closed`; once a post fails,
//! later ones fail too; nothing else arrives.
//!
//! Proven by a planted bug: a receive reports `Closed` once the tail is closed, ignoring a post still writing its claimed slot (assertion: a posted message lost).
#![cfg(loom)]

use sharedbuf::{Error, MessageChannel};

#[test]
fn close_racing_post_and_recv_loses_nothing_that_was_posted() {
    loom::model(|| {
        let (a, b) = MessageChannel::<u8>::with_capacity(2).unwrap();
        let closer_port = loom::sync::Arc::new(b);
        let receiver_port = loom::sync::Arc::clone(&closer_port);
        let sender = loom::thread::spawn(move || {
            let first = a.post_message(1);
            let second = a.post_message(2);
            (first, second, a)
        });
        let closer = loom::thread::spawn(move || closer_port.close());

        let mut received = Vec::new();
        loop {
            match receiver_port.recv() {
                Ok(message) => received.push(message),
                Err(error) => {
                    assert_eq!(error, Error::Closed);
                    break;
                }
            }
        }
        closer.join().unwrap();
        let (first, second, _a) = sender.join().unwrap();
        assert!(
            !(first.is_err() && second.is_ok()),
            "a post succeeded after one saw the close"
        );
        let posted: Vec<u8> = [(1, first), (2, second)]
            .into_iter()
            .filter_map(|(m, result)| match result {
                Ok(()) => Some(m),
                Err(error) => {
                    assert_eq!(error, Error::Closed);
                    None
                }
            })
            .collect();
        assert_eq!(received, posted);
    });
}
