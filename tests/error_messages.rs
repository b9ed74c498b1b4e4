//! What a new user reads after the common mistakes: each message says what went wrong, with
//! the numbers involved, and where it helps, what to do instead (docs/semantics.md B3, V2, V4,
//! A4, W4, P2, P7, X7). A test that matches a message's text here is changed on purpose only.
//!
//! Run with `--nocapture` to read them all.

use sharedbuf::pool::{CloseError, PoolError, TaskError, WorkerPool};
use sharedbuf::worker::Worker;
use sharedbuf::{atomics, DataView, Error, Int32Array, MessageChannel, SharedBuffer};

/// Prints the message (for `--nocapture`) and checks that it names every given part.
fn says(error: &dyn std::fmt::Display, parts: &[&str]) {
    let message = error.to_string();
    println!("{message}");
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} does not mention {part:?}"
        );
    }
}

/// V4, A4: an index past the end, through a view and through the atomics.
#[test]
fn v4_an_index_out_of_range_names_the_index_and_the_length() -> Result<(), Error> {
    let view = Int32Array::new(&SharedBuffer::new(16)?)?;
    says(&view.set(4, 1).unwrap_err(), &["index 4", "4 elements"]);
    says(
        &atomics::load(&view, 9).unwrap_err(),
        &["index 9", "4 elements"],
    );
    let dv = DataView::new(view.buffer())?;
    says(
        &dv.get_int32(14, true).unwrap_err(),
        &["14..18", "16 bytes"],
    );
    Ok(())
}

/// V2, V3: a view whose offset or length does not fit its element size.
#[test]
fn v2_a_misaligned_view_names_the_offset_and_the_element_size() -> Result<(), Error> {
    let buf = SharedBuffer::new(10)?;
    says(
        &Int32Array::with_range(&buf, 2, None).unwrap_err(),
        &["byte offset 2", "4 bytes"],
    );
    says(
        &Int32Array::new(&buf).unwrap_err(),
        &["10 bytes", "4 bytes", "with_range"],
    );
    Ok(())
}

/// B3: growing past the maximum, shrinking, and growing a fixed buffer (which says how to
/// make one that grows).
#[test]
fn b3_grow_errors_name_the_lengths_and_the_way_out() -> Result<(), Error> {
    let g = SharedBuffer::growable(8, 64)?;
    says(
        &g.grow(128).unwrap_err(),
        &["128 bytes", "maximum of 64 bytes"],
    );
    g.grow(32)?;
    says(&g.grow(16).unwrap_err(), &["from 32 to 16 bytes"]);
    let fixed = SharedBuffer::new(8)?;
    says(
        &fixed.grow(16).unwrap_err(),
        &["fixed at 8 bytes", "SharedBuffer::growable"],
    );
    Ok(())
}

/// W4, W6: posting after the channel closed, or after the worker exited, says why the
/// channel is closed, not only that a port (which the user of a `Worker` never made) is.
#[test]
fn w4_posting_after_close_says_what_closed_it() -> Result<(), Error> {
    let (a, b) = MessageChannel::<u8>::new();
    b.close();
    says(&a.post_message(1).unwrap_err(), &["closed", "other end"]);
    says(
        &a.try_post_message(1).unwrap_err(),
        &["closed", "other end"],
    );

    let worker: Worker<u8, ()> = Worker::spawn(|_| ())?;
    for _ in worker.events() {} // up to its Exit
    says(
        &worker.post_message(1).unwrap_err(),
        &["closed", "worker exits"],
    );
    Ok(())
}

/// P2, P7: a task submitted to a closed pool is refused and given back.
#[test]
fn p7_submitting_to_a_closed_pool_says_closed() {
    let pool = WorkerPool::builder().max_threads(1).build().unwrap();
    pool.close(None).unwrap();
    let refused = pool.run(|_| 1).unwrap_err();
    says(&refused, &["closed"]);
    assert!(matches!(refused, PoolError::Closed(_)));
}

/// X7: a handle made before a `fork()`, used in the forked child (tests/signals.rs and
/// tests/queue_faults.rs make these for real), says what it is, that it was made before a fork
/// and belongs to the parent, and what to do instead; as an `io::Error` it is `Unsupported`.
#[test]
fn x7_a_handle_made_before_a_fork_says_whose_it_is_and_what_to_do() {
    let forked = Error::ForkedHandle {
        what: "process worker",
    };
    says(
        &forked,
        &[
            "process worker handle",
            "before a fork",
            "parent process",
            "make a new one in the child",
        ],
    );
    let pool_parts = [
        "pool",
        "before a fork",
        "parent process",
        "build a new pool in the child",
    ];
    says(&PoolError::ForkedHandle(()), &pool_parts);
    says(&CloseError::ForkedHandle, &pool_parts);
    says(&TaskError::ForkedHandle, &pool_parts);
    let io: std::io::Error = forked.into();
    assert_eq!(io.kind(), std::io::ErrorKind::Unsupported);
}
