//! Loom model (docs/semantics.md W1, W2, W9): `terminate()` racing the worker's start and its normal
//! return. `Online` is reported iff the closure ran; a closure that saw the terminate flag
//! before returning ends terminated; a closure whose return value was already being converted
//! when the parent called `terminate()` keeps its real status (code 0); either way `terminate()`
//! returns the one status the `Exit` event carries, and `Exit` is the last event.
//!
//! Proven by a planted bug: `finish` (the `FINISHED` fetch_or) moved after the exit-code conversion (assertion: "the return came before terminate").
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use sharedbuf::worker::{IntoExitCode, Worker, WorkerEvent, WorkerState};
use sharedbuf::Error;

/// Exit code 0, saying when it is converted — which happens only after the closure returned.
struct Converted(Arc<AtomicBool>);

impl IntoExitCode for Converted {
    fn into_exit_code(self) -> Result<i32, String> {
        self.0.store(true, Ordering::SeqCst);
        Ok(0)
    }
}

#[test]
fn terminate_racing_the_start_and_a_normal_return() {
    loom::model(|| {
        let ran = Arc::new(AtomicBool::new(false));
        let saw_terminating = Arc::new(AtomicBool::new(false));
        let converted = Arc::new(AtomicBool::new(false));
        let worker: Worker<(), ()> = {
            let (ran, saw_terminating, converted) = (
                Arc::clone(&ran),
                Arc::clone(&saw_terminating),
                Arc::clone(&converted),
            );
            Worker::builder()
                .capacity(2)
                .spawn(move |ctx| {
                    ran.store(true, Ordering::SeqCst);
                    saw_terminating.store(ctx.is_terminating(), Ordering::SeqCst);
                    Converted(converted)
                })
                .unwrap()
        };
        let returned_first = converted.load(Ordering::SeqCst);
        let status = worker.terminate().unwrap();
        let status_pair = (status.code(), status.terminated());
        let ran = ran.load(Ordering::SeqCst);
        if !ran {
            assert_eq!(status_pair, (1, true), "terminated before it started");
        }
        if saw_terminating.load(Ordering::SeqCst) {
            assert_eq!(status_pair, (1, true), "terminate came before the return");
        }
        if returned_first {
            assert_eq!(status_pair, (0, false), "the return came before terminate");
        }
        assert!(
            status_pair == (0, false) || status_pair == (1, true),
            "{status:?}"
        );
        assert_eq!(worker.state(), WorkerState::Exited);
        if ran {
            assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
        }
        // Without `Online` when the closure did not run: `Exit` is next either way.
        assert_eq!(worker.recv_event(), Ok(WorkerEvent::Exit(status)));
        assert_eq!(worker.recv_event(), Err(Error::Closed));
        assert_eq!(worker.join().unwrap(), status);
    });
}
