//! Process workers: Node's `cluster` workers with the [`Worker`](crate::Worker) API, and with
//! shared memory (docs/semantics.md X4). Linux only; the `process` feature (on by default).
//!
//! Threads share memory and talk fast; processes isolate a crash, a leak or a misbehaving
//! library, and are what Node scales an HTTP server with. A [`ProcessWorker`] is a child
//! process running one of the program's [`Entry`] functions. It talks to its parent through
//! two [`ByteRing`](crate::channel::ByteRing)s in a memfd — a message is encoded (postcard)
//! straight into shared memory and decoded straight out of it, no pipe, no socket, no system
//! call unless a side sleeps — and it can be handed process-shared [`SharedBuffer`](crate::SharedBuffer)s, on which
//! both processes use views, atomics and `wait`/`notify` as threads do.
//!
//! # The child is this same program
//!
//! Users write no second executable: the child is the current executable started again
//! (procspawn's approach). [`init`], called first thing in `main` with every [`Entry`] the
//! program spawns, makes the child run the entry its parent named and exit; in the parent it
//! only records the entries. (A function pointer cannot cross `exec`, a name can: see
//! `entry.rs`.)
//!
//! ```
//! # #[cfg(target_os = "linux")] {
//! use sharedbuf::process::{self, Entry, ProcessContext, ProcessEvent, ProcessWorker};
//! use sharedbuf::{atomics, Error, Int32Array, SharedBuffer};
//!
//! /// The child: adds every number it gets to a shared counter, and echoes its square.
//! fn squares(ctx: ProcessContext<u64, u64>) -> Result<(), Error> {
//!     let counter = Int32Array::new(&ctx.shared_buffers()[0])?;
//!     loop {
//!         match ctx.recv() {
//!             Ok(n) => {
//!                 atomics::add(&counter, 0, n as i32)?;
//!                 ctx.post_message(&(n * n))?;
//!             }
//!             Err(Error::Closed) => return Ok(()), // the parent disconnected
//!             Err(other) => return Err(other),
//!         }
//!     }
//! }
//! static SQUARES: Entry<u64, u64> = Entry::new("squares", squares);
//!
//! fn main() -> Result<(), Error> {
//!     process::init(&[&SQUARES]); // a child runs its entry here and exits
//!
//!     let counter = SharedBuffer::memfd("counter", 4)?;
//!     let worker = ProcessWorker::builder().share(&counter).spawn(&SQUARES)?;
//!     for n in 1..=3 {
//!         worker.post_message(&n)?;
//!     }
//!     worker.disconnect();
//!     let events: Vec<_> = worker.events().collect();
//!     assert_eq!(events[0], ProcessEvent::Online);
//!     assert_eq!(events[1..4], [1, 4, 9].map(ProcessEvent::Message));
//!     assert!(matches!(events[4], ProcessEvent::Exit(exit) if exit.success()));
//!     assert_eq!(atomics::load(&Int32Array::new(&counter)?, 0)?, 6); // written by the child
//!     Ok(())
//! }
//! # main().unwrap();
//! # }
//! ```
//!
//! # Events, errors, exits
//!
//! As for a thread worker: `Online`, the messages, `Error` if the entry returned an `Err` or
//! panicked, then `Exit` — always last, after every message, however the child ended. A
//! child killed by a signal says which ([`ProcessExit::signal`]). A panic prints its message
//! on the child's stderr (the default hook) and is also the `Error` event; with
//! `panic = "abort"` the child dies of `SIGABRT` instead.
//!
//! # Terminating, and a parent that dies
//!
//! [`ProcessWorker::terminate`] sends SIGTERM, which the child reads as a request: its
//! blocked `recv`, full `post_message` or `atomics::wait` (on the entry's thread) returns
//! `Err(Terminated)` and [`ProcessContext::is_terminating`] turns true, so the entry can
//! unwind and run its `Drop`s; if the process has not exited after the grace period, SIGKILL.
//! If the parent process dies (even by SIGKILL) the child notices at once (a pipe only the
//! parent held closes), is terminated the same way, finds its rings closed, and exits within
//! a second: no orphans.
//!
//! # Messages
//!
//! `In` and `Out` are [`Payload`]s: any `serde` type (encoded with postcard — compact,
//! stable, and written in place, see `payload.rs`), or [`Bytes`] for raw bytes copied once
//! into shared memory and once out. A message may take up to the ring's capacity
//! ([`ProcessWorkerBuilder::capacity`]); a longer one is refused with `Err(ExceedsMax)`.
//! Everything read from the rings is checked (docs/semantics.md X5): a child that writes
//! garbage over them causes `Err(Corrupted)` or `Err(Codec)`, never a crash or a hang.
//!
//! # Resources
//!
//! Every descriptor is close-on-exec except the ones a child inherits, and those lose the
//! flag only inside that child. Each worker holds a pidfd, a pipe end and its link's memfd
//! while its handle lives; [`join`](ProcessWorker::join), [`terminate`] or dropping the handle
//! reaps the child, so no zombie is left.
//!
//! [`terminate`]: ProcessWorker::terminate

mod builder;
mod child;
mod context;
mod depth;
mod entry;
mod event;
mod frame;
mod handle;
mod link;
mod payload;
mod spawn;
mod sys;

pub use builder::{ProcessWorkerBuilder, DEFAULT_GRACE};
pub use context::ProcessContext;
pub use entry::{init, Entry, EntryPoint};
pub use event::{ProcessEvent, ProcessExit};
pub use handle::{Events, ProcessWorker};
pub use payload::{Bytes, Payload};
