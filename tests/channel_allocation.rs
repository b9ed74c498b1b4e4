//! A message channel whose slots the system cannot provide is an `Err`, never an abort.
//!
//! A test binary of its own: on a faulty build the allocation failure aborts the whole process,
//! which would take every other port test down with it.

#![cfg(not(loom))]
#![cfg(target_pointer_width = "64")]

use sharedbuf::worker::Worker;
use sharedbuf::{Error, MessageChannel};

/// 4 KiB messages: 2^24 slots of them are 64 GiB per direction, more than this machine (or
/// any test machine) can provide.
type Page = [u8; 4096];

/// The largest capacity a channel accepts (more is `Error::InvalidParameter`).
const MAX_SLOTS: usize = 1 << 24;

/// Fault: `MessageChannel::with_capacity` aborted the process when its slots could not be
/// allocated. Decided: `Err(Error::AllocationFailed { .. })`, as for a buffer (B1).
// docs/semantics.md B1, W6
#[test]
fn b1_w6_a_channel_too_large_to_allocate_is_an_error() {
    let result = MessageChannel::<Page>::with_capacity(MAX_SLOTS);
    assert!(
        matches!(result, Err(Error::AllocationFailed { .. })),
        "{:?}",
        result.map(|_| "a 64 GiB channel")
    );
}

/// Fault: a worker whose port could not be allocated (`Worker::builder().capacity(..)`)
/// aborted the process. Decided: `spawn` returns `Err(Error::AllocationFailed { .. })`, and the
/// closure never runs.
// docs/semantics.md B1, W7
#[test]
fn b1_a_worker_whose_port_is_too_large_to_allocate_is_an_error() {
    let result: Result<Worker<Page, ()>, Error> = Worker::builder()
        .capacity(MAX_SLOTS)
        .spawn(|_ctx| -> () { panic!("the closure of a worker that could not be made ran") });
    assert!(
        matches!(result, Err(Error::AllocationFailed { .. })),
        "{:?}",
        result.map(|_| "a worker with a 64 GiB port")
    );
}
