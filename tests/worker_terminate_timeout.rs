//! `Worker::terminate_timeout`: asking a worker to stop without waiting forever for one that
//! computes in a loop and never checks the flag (docs/semantics.md W3).
//!
//! A file of its own while the method is new, so that the rest of the worker tests keep
//! compiling without it.

#![cfg(not(loom))]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::within_watchdog;
use sharedbuf::worker::{Worker, WorkerEvent};
use sharedbuf::Error;

/// Fault: `terminate()` on a worker in a pure CPU loop blocks for as long as the loop runs.
/// Decided: `terminate_timeout(d)` answers `Err(Error::Timeout)` when the worker has not
/// exited within `d`; the worker keeps its terminate flag (it sees `is_terminating()`), and
/// once it ends it exits as terminated.
// docs/semantics.md W1, W3, W9
#[test]
fn w3_terminate_timeout_gives_up_on_a_worker_that_ignores_termination() {
    let stop = Arc::new(AtomicBool::new(false));
    let saw_terminating = Arc::new(AtomicBool::new(false));
    let worker: Worker<(), ()> = {
        let stop = Arc::clone(&stop);
        let saw_terminating = Arc::clone(&saw_terminating);
        Worker::spawn(move |ctx| {
            while !stop.load(Ordering::SeqCst) {
                std::hint::spin_loop(); // ignores termination
            }
            saw_terminating.store(ctx.is_terminating(), Ordering::SeqCst);
        })
        .unwrap()
    };
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
    let (worker, gave_up) = within_watchdog("terminate_timeout", move || {
        let gave_up = worker.terminate_timeout(Duration::from_millis(50));
        (worker, gave_up)
    });
    assert_eq!(gave_up, Err(Error::Timeout), "the worker is still spinning");
    stop.store(true, Ordering::SeqCst);
    let (events, joined) =
        within_watchdog("the events and join after terminate_timeout", move || {
            let events: Vec<_> = worker.events().collect();
            (events, worker.join())
        });
    let status = joined.unwrap();
    // W1 and W9: after `Online`, only `Exit`, last.
    assert_eq!(events, [WorkerEvent::Exit(status)]);
    assert!(
        saw_terminating.load(Ordering::SeqCst),
        "the worker kept its terminate flag"
    );
    assert_eq!((status.code(), status.terminated()), (1, true));
}
