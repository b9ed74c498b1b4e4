//! Loom model (docs/semantics.md W1): the parent reads `Online`, then every message the worker
//! posted, in order, then `Exit` with the worker's own status — through a port of 2 slots that
//! the worker fills, so the worker waits on the parent while it exits.
//!
//! Proven by a planted bug: the ending is recorded after `EXITED` is set, not before (assertion: `Exit` carried (1, terminated), not code 3).
#![cfg(loom)]

use sharedbuf::worker::{Worker, WorkerEvent};
use sharedbuf::Error;

#[test]
fn exit_comes_after_every_message_the_worker_posted() {
    loom::model(|| {
        let worker: Worker<(), u8> = Worker::builder()
            .capacity(2)
            .spawn(|ctx| -> Result<i32, Error> {
                for i in 0..3 {
                    ctx.post_message(i)?;
                }
                Ok(3)
            })
            .unwrap();
        assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
        for i in 0..3 {
            assert_eq!(worker.recv_event(), Ok(WorkerEvent::Message(i)));
        }
        match worker.recv_event() {
            Ok(WorkerEvent::Exit(status)) => {
                assert_eq!((status.code(), status.terminated()), (3, false))
            }
            other => panic!("expected Exit, got {other:?}"),
        }
        assert_eq!(worker.recv_event(), Err(Error::Closed));
        // Join: loom drops its lazy statics (the waiter table) when the model's main thread
        // ends, so no model thread may still be running then.
        assert_eq!(worker.join().unwrap().code(), 3);
    });
}
