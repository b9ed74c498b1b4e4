//! Workers: Node's `worker_threads` on OS threads (docs/semantics.md W1–W9).
//!
//! A [`Worker`] runs a closure on its own thread. The closure gets a [`WorkerContext`]: its
//! port to the parent, its `worker_data`, its `thread_id`, and whether it was asked to
//! terminate. The parent posts messages to it and reads its [`WorkerEvent`]s — `Online`, every
//! message it posted, `Error` if it failed, then `Exit`, always last (W1).
//!
//! ```
//! use sharedbuf::worker::{Worker, WorkerEvent};
//!
//! let worker = Worker::builder()
//!     .name("squarer")
//!     .worker_data(10u64)
//!     .spawn(|ctx| -> Result<(), sharedbuf::Error> {
//!         assert!(!ctx.is_main_thread());
//!         let n: u64 = ctx.recv()?;
//!         ctx.post_message(n * n + ctx.worker_data())
//!     })?;
//! worker.post_message(7)?;
//! let events: Vec<WorkerEvent<u64>> = worker.events().collect();
//! assert_eq!(events[0], WorkerEvent::Online);
//! assert_eq!(events[1], WorkerEvent::Message(59));
//! assert!(matches!(events[2], WorkerEvent::Exit(status) if status.code() == 0));
//! assert!(sharedbuf::worker::is_main_thread());
//! # Ok::<(), sharedbuf::Error>(())
//! ```
//!
//! # Errors, panics, exit codes (W2)
//!
//! The closure returns `()`, an `i32` exit code, or a `Result` ([`IntoExitCode`]). An `Err`
//! or a panic becomes an [`Error`](WorkerEvent::Error) event followed by `Exit` with code 1;
//! the parent never panics because of it.
//!
//! # Terminating (W3)
//!
//! [`Worker::terminate`] sets the worker's terminating flag and interrupts it: a blocked
//! [`atomics::wait`](crate::atomics::wait), [`recv`](crate::MessagePort::recv),
//! [`recv_timeout`](crate::MessagePort::recv_timeout) or full
//! [`post_message`](crate::MessagePort::post_message) in the worker returns
//! `Err(Error::Terminated)` at once (and any later one does too), so `?` unwinds it. Rust cannot
//! kill a thread: a worker computing in a loop without blocking must check
//! [`WorkerContext::is_terminating`] ([`Worker::terminate_timeout`] gives up waiting for one
//! that does not). A terminated worker exits with code 1 and [`ExitStatus::terminated`].
//!
//! As in Node (W9): after `terminate()` only `Exit` is reported — no `Error`, whatever the
//! closure does with the `Terminated` error (`?`, `expect`, or ignoring it); a worker
//! terminated before its closure started reports no `Online` (the closure never runs); a
//! closure that had already returned keeps its own status. `Exit` comes on every path, even
//! if the worker's code panics while it ends (say, in a `Drop`).
//!
//! ```
//! use sharedbuf::worker::Worker;
//! use sharedbuf::{atomics, Error, Int32Array, SharedBuffer};
//!
//! let flag = Int32Array::new(&SharedBuffer::new(4)?)?;
//! let worker: Worker<(), ()> = Worker::builder()
//!     .worker_data(flag.clone())
//!     .spawn(|ctx| -> Result<(), Error> {
//!         atomics::wait(ctx.worker_data(), 0, 0, None)?; // nobody will notify
//!         Ok(())
//!     })?;
//! let status = worker.terminate()?;
//! assert_eq!((status.code(), status.terminated()), (1, true));
//! # Ok::<(), sharedbuf::Error>(())
//! ```
//!
//! # Transfer is move (W5)
//!
//! Messages are moved, not cloned. Posting a `Vec<u8>` moves its heap block to the other
//! thread without copying the bytes — what Node's transfer list does for an `ArrayBuffer`:
//!
//! ```
//! use sharedbuf::MessageChannel;
//!
//! let (a, b) = MessageChannel::new();
//! let bytes = vec![7u8; 1 << 20];
//! let address = bytes.as_ptr() as usize;
//! a.post_message(bytes)?;          // `bytes` is gone from this side: it was transferred
//! let received: Vec<u8> = b.recv()?;
//! assert_eq!(received.as_ptr() as usize, address); // the same block: zero copy
//! # Ok::<(), sharedbuf::Error>(())
//! ```
//!
//! A [`SharedBuffer`](crate::SharedBuffer) in a message is shared, as a `SharedArrayBuffer`
//! posted to a worker is: both sides see the same bytes.
//!
//! ```
//! use sharedbuf::{atomics, Int32Array, MessageChannel, SharedBuffer};
//!
//! let (a, b) = MessageChannel::new();
//! let buffer = SharedBuffer::new(4)?;
//! a.post_message(buffer.clone())?;
//! let theirs = b.recv()?;
//! atomics::store(&Int32Array::new(&theirs)?, 0, 42)?;
//! assert_eq!(atomics::load(&Int32Array::new(&buffer)?, 0)?, 42);
//! # Ok::<(), sharedbuf::Error>(())
//! ```
//!
//! What cannot cross threads does not compile — Rust's `Send` plays the part of structured
//! clone's "functions cannot be cloned":
//!
//! ```compile_fail
//! use sharedbuf::MessageChannel;
//! use std::rc::Rc;
//!
//! let (a, _b) = MessageChannel::new();
//! a.post_message(Rc::new(5)).unwrap(); // Rc is not Send
//! # let _: &sharedbuf::MessagePort<Rc<i32>> = &a;
//! ```
//!
//! # Dropping the handle
//!
//! Dropping a [`Worker`] without [`join`](Worker::join) terminates the worker (without
//! waiting) and detaches its thread: a drop never blocks, and the worker is not left running
//! silently unless it ignores termination in a CPU loop.
//!
//! # Fork
//!
//! A worker made before a `fork()` is the parent's: in the forked child its blocking calls
//! return `Err(Error::ForkedHandle)` at once and dropping it leaks it (docs/semantics.md X7).

mod builder;
mod context;
mod event;
mod handle;
mod lifecycle;
mod runtime;

pub use builder::WorkerBuilder;
pub use context::{is_main_thread, thread_id, IntoExitCode, WorkerContext};
pub use event::{ExitStatus, WorkerError, WorkerEvent, WorkerState};
pub use handle::{Events, Worker};
