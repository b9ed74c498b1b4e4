//! Loom model (docs/semantics.md W1, W3, W9): `terminate()`, from another thread, racing a worker that
//! posts a message and then waits for one that never comes, while the parent reads the
//! events. The parent reads `Online` iff the closure ran, the message iff the worker posted
//! it, then only `Exit` (code 1, terminated) — no `Error`, though the closure returns the
//! `Terminated` error — and nothing after it. (One message: two take loom minutes.)
//!
//! Proven by a planted bug (recorded when the model was added): leaving the message stage once EXITED is seen (assertion: the queued message is lost); converting a returned Err after terminate came first (assertion: Error + Exit not terminated); delivering Online when EXITED comes without RUNNING.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use sharedbuf::worker::{Worker, WorkerEvent};
use sharedbuf::Error;

#[test]
fn terminate_racing_a_post_ends_with_exit_after_the_message() {
    loom::model(|| {
        let ran = Arc::new(AtomicBool::new(false));
        let posted = Arc::new(AtomicBool::new(false));
        let worker: Arc<Worker<(), u8>> = {
            let (ran, posted) = (Arc::clone(&ran), Arc::clone(&posted));
            Arc::new(
                Worker::builder()
                    .capacity(2)
                    .spawn(move |ctx| -> Result<(), Error> {
                        ran.store(true, Ordering::SeqCst);
                        ctx.post_message(7)?;
                        posted.store(true, Ordering::SeqCst);
                        ctx.recv() // nobody posts: only `terminate()` ends it
                    })
                    .unwrap(),
            )
        };
        let terminator = {
            let worker = Arc::clone(&worker);
            loom::thread::spawn(move || worker.terminate().unwrap())
        };
        let events: Vec<WorkerEvent<u8>> = worker.events().collect();
        let status = terminator.join().unwrap();
        assert_eq!((status.code(), status.terminated()), (1, true));
        let mut expected = Vec::new();
        if ran.load(Ordering::SeqCst) {
            expected.push(WorkerEvent::Online);
        }
        if posted.load(Ordering::SeqCst) {
            expected.push(WorkerEvent::Message(7));
        }
        expected.push(WorkerEvent::Exit(status));
        assert_eq!(events, expected);
        assert_eq!(worker.recv_event(), Err(Error::Closed));
        let worker = Arc::try_unwrap(worker).unwrap_or_else(|_| panic!("the terminator is joined"));
        assert_eq!(worker.join().unwrap(), status);
    });
}
