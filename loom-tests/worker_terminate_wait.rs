//! Loom model (docs/semantics.md W3): a worker blocked in `atomics::wait` that nobody will notify is
//! woken by `terminate()`, which returns code 1, terminated.
//!
//! Proven by a planted bug: `terminate` sets `TERMINATING` but skips firing the interrupter (loom deadlock: the worker stays in `atomics::wait`).
#![cfg(loom)]

use sharedbuf::worker::Worker;
use sharedbuf::{atomics, loom_hooks, Error, Int32Array, SharedBuffer};

#[test]
fn terminate_wakes_a_worker_blocked_in_wait() {
    loom::model(|| {
        let flag = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
        let worker: Worker<(), ()> = Worker::builder()
            .capacity(2)
            .worker_data(flag)
            .spawn(|ctx| -> Result<(), Error> {
                atomics::wait(ctx.worker_data(), 0, 0, None)?;
                Ok(())
            })
            .unwrap();
        let status = worker.terminate().unwrap();
        assert_eq!((status.code(), status.terminated()), (1, true));
        worker.join().unwrap();
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
