//! The public surface as a user who imports the crate meets it: the conversions `?` needs, the
//! string forms JavaScript has, and the same refusal named the same way across handles
//! (docs/semantics.md A6, W4, W6).
#![cfg(not(loom))]

use sharedbuf::channel::PostError;
use sharedbuf::worker::Worker;
use sharedbuf::{Error, MessageChannel};

/// A port with no room says `Full`, in its own error type and as a crate `Error`, as a process
/// worker's and a byte ring's `try_` forms already do (W4, W6).
#[test]
fn a_full_port_is_error_full_like_every_other_try_post() {
    let (a, _b) = MessageChannel::with_capacity(2).unwrap();
    for message in 0..a.capacity() {
        a.try_post_message(message).unwrap();
    }
    let full = a.try_post_message(99).unwrap_err();
    assert!(matches!(full, PostError::Full(99)));
    assert_eq!(full.error(), Error::Full);
}

/// `?` on a port's or a worker's `try_post_message` in a function returning the crate's `Error`
/// compiles and says what happened (W4).
#[test]
fn question_mark_turns_a_post_error_into_the_crate_error() {
    fn post_twice(port: &sharedbuf::MessagePort<u8>) -> Result<(), Error> {
        port.try_post_message(1)?;
        port.try_post_message(2)?;
        Ok(())
    }
    let (a, b) = MessageChannel::with_capacity(2).unwrap();
    assert_eq!(post_twice(&a), Ok(()));
    assert_eq!(post_twice(&a), Err(Error::Full));
    drop(b);
    assert_eq!(post_twice(&a), Err(Error::Closed));

    fn post_to(worker: &Worker<u8, ()>) -> Result<(), Error> {
        worker.try_post_message(7)?;
        Ok(())
    }
    let worker: Worker<u8, ()> = Worker::spawn(|_ctx| Ok::<(), Error>(())).unwrap();
    let events = worker.events().count(); // Online, Exit: the worker has exited
    assert_eq!(events, 2);
    assert_eq!(post_to(&worker), Err(Error::Closed));
}

/// A `WaitResult` prints as the string `Atomics.wait` returns (A6).
#[test]
fn a_wait_result_displays_as_javascripts_string() {
    use sharedbuf::{atomics, Int32Array, SharedBuffer, WaitResult};
    let view = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
    let not_equal = atomics::wait(&view, 0, 1, None).unwrap();
    let timed_out = atomics::wait(&view, 0, 0, Some(std::time::Duration::ZERO)).unwrap();
    assert_eq!(not_equal.to_string(), "not-equal");
    assert_eq!(timed_out.to_string(), "timed-out");
    assert_eq!(WaitResult::Ok.to_string(), "ok");
}

/// A queue handler returns `Result<_, JobError>`; `?` on the crate's own calls (a view, a
/// buffer, a pool task joined inside the handler) makes a retryable `JobError` carrying the
/// message (docs/semantics.md Q2: retried while attempts are left).
#[cfg(feature = "redis")]
#[test]
fn question_mark_turns_crate_and_task_errors_into_a_retryable_job_error() {
    use sharedbuf::pool::WorkerPool;
    use sharedbuf::queue::JobError;
    use sharedbuf::{Int32Array, SharedBuffer};

    fn handler_on_a_view(view: &Int32Array) -> Result<i32, JobError> {
        Ok(sharedbuf::atomics::load(view, 9)?)
    }
    let view = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
    let error = handler_on_a_view(&view).unwrap_err();
    assert!(!error.is_permanent());
    assert_eq!(
        error.message(),
        Error::IndexOutOfRange { index: 9, len: 1 }.to_string()
    );

    fn handler_joining_a_task(pool: &WorkerPool) -> Result<(), JobError> {
        pool.run(|_ctx| panic!("the task failed"))
            .map_err(|refused| JobError::retry(refused))?
            .join()?;
        Ok(())
    }
    let pool = WorkerPool::new().unwrap();
    let error = handler_joining_a_task(&pool).unwrap_err();
    assert!(!error.is_permanent());
    assert!(error.message().contains("the task failed"), "{error}");
}
