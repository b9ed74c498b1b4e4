//! Loom model (docs/semantics.md W1, W2): two threads read the events of one worker at the same time,
//! while it fails. Between them they get `Online`, `Error` and `Exit` exactly once each; each
//! thread gets its share in W1's order; after `Exit` nothing more comes, to either. Both may
//! wait on the worker's port at once, so its close must wake both.
//!
//! The worker posts no message: two receivers spinning (with `yield_now`) on a slot whose post
//! is in flight make loom alternate between them without end. W1 with messages is
//! `worker_exit_last` (one reader).
//!
//! Proven by a planted bug (recorded when the model was added): Online delivered without winning the stage compare-exchange (assertion: Online twice); without the ring's unflag-on-close, both readers wait on the port and one sleeps forever (loom deadlock).
#![cfg(loom)]

use loom::sync::Arc;
use sharedbuf::worker::{Worker, WorkerEvent};
use sharedbuf::Error;

/// W1's order: where an event kind comes in a worker's stream.
fn rank(event: &WorkerEvent<u8>) -> usize {
    match event {
        WorkerEvent::Online => 0,
        WorkerEvent::Message(_) => 1,
        WorkerEvent::Error(_) => 2,
        WorkerEvent::Exit(_) => 3,
    }
}

#[test]
fn two_readers_share_the_events_each_once_in_order() {
    loom::model(|| {
        let worker: Arc<Worker<(), u8>> = Arc::new(
            Worker::builder()
                .capacity(2)
                .spawn(|_ctx| -> Result<(), String> { Err("failed".to_owned()) })
                .unwrap(),
        );
        let other = {
            let worker = Arc::clone(&worker);
            loom::thread::spawn(move || worker.events().collect::<Vec<_>>())
        };
        let mine: Vec<WorkerEvent<u8>> = worker.events().collect();
        let theirs = other.join().unwrap();
        for events in [&mine, &theirs] {
            let ranks: Vec<usize> = events.iter().map(rank).collect();
            assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{events:?}");
        }
        let mut all: Vec<usize> = mine.iter().chain(&theirs).map(rank).collect();
        all.sort_unstable();
        assert_eq!(all, [0, 2, 3], "mine {mine:?}, theirs {theirs:?}");
        for event in mine.iter().chain(&theirs) {
            match event {
                WorkerEvent::Error(error) => assert_eq!(error.message(), "failed"),
                WorkerEvent::Exit(status) => {
                    assert_eq!((status.code(), status.terminated()), (1, false))
                }
                WorkerEvent::Online | WorkerEvent::Message(_) => {}
            }
        }
        assert_eq!(worker.recv_event(), Err(Error::Closed));
        let worker = Arc::try_unwrap(worker).unwrap_or_else(|_| panic!("the reader is joined"));
        assert_eq!(worker.join().unwrap().code(), 1);
    });
}
