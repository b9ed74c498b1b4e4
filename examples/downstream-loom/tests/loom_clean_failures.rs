//! A failing model fails as an ordinary panic, whatever sharedbuf values its threads hold.
//!
//! Each model here deadlocks on purpose (nobody ever notifies), so loom reports a deadlock and
//! unwinds with the sharedbuf values still alive: a thread blocked in `wait` with an
//! `Interrupter` installed, a pending `wait_async` future, views dropped by a thread other than
//! the one that blocked. sharedbuf's destructors leave loom alone while a model unwinds; if one
//! did not, loom would panic again inside it and abort this whole binary, and `cargo test`
//! would report SIGABRT instead of these tests passing.
#![cfg(loom)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::atomic::AtomicBool;
use loom::thread;
use sharedbuf::atomics::{self, Interrupter};
use sharedbuf::worker::Worker;
use sharedbuf::{Error, Int32Array, MessageChannel, SharedBuffer, WaitResult};

fn view() -> Int32Array {
    Int32Array::new(&SharedBuffer::new(8).unwrap()).unwrap()
}

#[test]
#[should_panic(expected = "deadlock")]
fn wait_with_an_interrupter_installed() {
    loom::model(|| {
        let view = view();
        let interrupter = Interrupter::new();
        let _installed = interrupter.install();
        atomics::wait(&view, 0, 0, None).unwrap();
    });
}

#[test]
#[should_panic(expected = "deadlock")]
fn pending_wait_async_future() {
    loom::model(|| {
        let view = view();
        let future = atomics::wait_async(&view, 0, 0, None)
            .unwrap()
            .into_future();
        assert_eq!(block_on(future), WaitResult::Ok);
    });
}

/// The waiting thread blocks first; the main thread blocks last, in `join`, and it is the one
/// loom's report unwinds, dropping its views and the waiter's queue entry with them.
#[test]
#[should_panic(expected = "deadlock")]
fn deadlock_reported_in_join() {
    loom::model(|| {
        let view = view();
        // std's `Arc` shares the model's own state: a `loom::sync::Arc` still alive when loom
        // reports the deadlock would itself abort the binary when dropped (see the README).
        let started = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (view, started) = (view.clone(), started.clone());
            thread::spawn(move || {
                started.store(true, SeqCst);
                atomics::wait(&view, 0, 0, None).unwrap()
            })
        };
        while !started.load(SeqCst) {
            thread::yield_now();
        }
        waiter.join().unwrap();
    });
}

/// Still aborts: `MessagePort`'s destructor closes the channel through loom atomics.
#[test]
#[should_panic(expected = "deadlock")]
fn receiver_blocked_on_a_port_nobody_closes() {
    loom::model(|| {
        let (port, other) = MessageChannel::<u8>::with_capacity(2).unwrap();
        let receiver = thread::spawn(move || other.recv());
        let _ = receiver.join();
        drop(port);
    });
}

/// Still aborts: the worker's context holds its port (see above), and `Worker`'s destructor
/// requests termination through loom atomics.
#[test]
#[should_panic(expected = "deadlock")]
fn worker_blocked_in_wait() {
    loom::model(|| {
        let worker: Worker<(), ()> = Worker::builder()
            .capacity(2)
            .worker_data(view())
            .spawn(|context| -> Result<(), Error> {
                atomics::wait(context.worker_data(), 0, 0, None)?;
                Ok(())
            })
            .unwrap();
        worker.join().unwrap();
    });
}

/// Polls `future` to completion on the current loom thread, parking while it is pending.
fn block_on<F: Future + Unpin>(mut future: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = Pin::new(&mut future).poll(&mut context) {
            return output;
        }
        thread::park();
    }
}
