//! Loom model (SEMANTICS W2, W3): `terminate()` racing the worker's own normal exit. Whatever
//! wins, terminate returns the one status the `Exit` event carries — either the normal exit
//! (code 0) or the termination (code 1, terminated) — and the worker is gone.
#![cfg(loom)]

use sharedbuf::worker::{Worker, WorkerEvent, WorkerState};

#[test]
fn terminate_racing_a_normal_exit_agrees_with_the_exit_event() {
    loom::model(|| {
        let worker: Worker<(), ()> = Worker::builder().capacity(2).spawn(|_ctx| ()).unwrap();
        let status = worker.terminate().unwrap();
        assert!(
            (status.code(), status.terminated()) == (0, false)
                || (status.code(), status.terminated()) == (1, true),
            "{status:?}"
        );
        assert_eq!(worker.state(), WorkerState::Exited);
        assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
        assert_eq!(worker.recv_event(), Ok(WorkerEvent::Exit(status)));
        assert_eq!(worker.join().unwrap(), status);
    });
}
