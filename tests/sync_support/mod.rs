//! Helpers shared by the `sync` primitive tests (`tests/sync_*.rs`): running a call on another
//! thread and knowing it is asleep in it, joining with a watchdog instead of hanging, and
//! terminating a worker blocked in a primitive.
//!
//! "Asleep" is established as in `common`: the thread reports its kernel thread id just before
//! the call, and the test polls `/proc` until the thread sleeps. A watchdog only detects a hang
//! (generous, 20 s for calls that take microseconds); no test measures speed.

#![allow(dead_code)]

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sharedbuf::sync::TryLockError;
use sharedbuf::worker::WorkerEvent;
use sharedbuf::{Error, SharedBuffer, Worker};

use crate::common::{current_tid, wait_until_asleep};

/// How long a test waits for something that should take microseconds before it calls it a hang.
/// Under Miri, which interprets every thread on one core about a thousand times slower, a
/// correct test's wait can take minutes of real time (a hang still fails on the run's time limit).
pub const WATCHDOG: Duration = Duration::from_secs(if cfg!(miri) { 900 } else { 20 });

/// A fresh zeroed buffer of `bytes` bytes.
pub fn buffer(bytes: usize) -> SharedBuffer {
    SharedBuffer::new(bytes).unwrap()
}

/// A call running on a thread of its own; its result arrives on a channel, so joining can time
/// out.
pub struct Running<T> {
    result: mpsc::Receiver<T>,
    handle: thread::JoinHandle<()>,
}

impl<T> Running<T> {
    /// Its result, or a failed test if it has not returned within the watchdog.
    pub fn join(self, what: &str) -> T {
        let result = self
            .result
            .recv_timeout(WATCHDOG)
            .unwrap_or_else(|_| panic!("{what}: no result within {WATCHDOG:?} (hung?)"));
        self.handle.join().unwrap();
        result
    }

    /// Its result if it has already returned.
    pub fn try_result(&self) -> Option<T> {
        self.result.try_recv().ok()
    }
}

/// Runs `call` on a new thread and returns at once.
pub fn spawn<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> Running<T> {
    let (tx, result) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(call());
    });
    Running { result, handle }
}

/// Runs `call` on a new thread and returns once that thread is asleep (blocked in `call`, which
/// must block), or has already returned.
pub fn spawn_blocked<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> Running<T> {
    let (tid_tx, tid_rx) = mpsc::channel();
    let running = spawn(move || {
        tid_tx.send(current_tid()).unwrap();
        call()
    });
    wait_until_asleep(tid_rx.recv().unwrap());
    running
}

/// Runs `block` in a [`Worker`], waits until the worker's thread is asleep in it, terminates
/// the worker, and returns what `block` returned. `block` must block until interrupted.
/// Fails the test if the worker is not gone within the watchdog (the block ignored the
/// interrupt) or did not exit as terminated.
pub fn terminate_while_blocked<T: Send + 'static>(
    block: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let (result_tx, result_rx) = mpsc::channel();
    let worker: Worker<(), libc::pid_t> = Worker::spawn(move |ctx| -> Result<(), Error> {
        ctx.post_message(current_tid())?;
        let result = block();
        let failed = result.as_ref().err().cloned();
        result_tx.send(result).unwrap();
        failed.map_or(Ok(()), Err)
    })
    .unwrap();
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
    let Ok(WorkerEvent::Message(tid)) = worker.recv_event() else {
        panic!("the worker did not report its thread id");
    };
    wait_until_asleep(tid);
    let terminating = spawn(move || worker.terminate());
    let status = terminating.join("terminate() of a worker blocked in a sync primitive");
    let status = status.unwrap();
    assert!(status.terminated(), "exit status {status:?}");
    result_rx
        .recv_timeout(WATCHDOG)
        .expect("the worker's blocking call never returned")
}

/// A `try_` lock result as "taken or not": the guard, `None` for `WouldBlock`, a failed test for
/// any other error.
pub fn taken<G, E>(result: Result<G, TryLockError<E>>) -> Option<G> {
    match result {
        Ok(guard) => Some(guard),
        Err(TryLockError::WouldBlock) => None,
        Err(error) => panic!("a try_ form failed: {error:?}"),
    }
}
