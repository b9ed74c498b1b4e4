//! Loom model (docs/semantics.md W3): a worker blocked in `recv` on its port to the parent is woken by
//! `terminate()`, which returns code 1, terminated.
//!
//! Proven by a planted bug: `Interrupter::interrupt` sets its flag after taking the blocked list, outside its lock (loom deadlock).
#![cfg(loom)]

use sharedbuf::worker::Worker;
use sharedbuf::{loom_hooks, Error};

#[test]
fn terminate_wakes_a_worker_blocked_in_recv() {
    loom::model(|| {
        let worker: Worker<u8, ()> = Worker::builder()
            .capacity(2)
            .spawn(|ctx| -> Result<(), Error> {
                ctx.recv()?;
                Ok(())
            })
            .unwrap();
        let status = worker.terminate().unwrap();
        assert_eq!((status.code(), status.terminated()), (1, true));
        worker.join().unwrap();
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
