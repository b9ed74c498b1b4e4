//! A one-shot "ready" flag in an element of a shared buffer: one thread publishes data and sets
//! the flag, any number of threads wait for it. Built on sharedbuf's `Atomics`, the way a
//! JavaScript worker would do it over a `SharedArrayBuffer`.
//!
//! The protocol, and the one rule it depends on:
//!
//! ```text
//! setter                          waiter
//! store flag = 1                  while load flag == 0:
//! notify(flag, all)                   wait(flag, expected 0)
//! ```
//!
//! The store must come before the notify. `wait` checks the value and goes to sleep as one
//! step, so a waiter either sees 1 and returns or is asleep in time for the notify. Notify first
//! and a waiter can check, see 0, miss the notify and sleep forever — the bug the loom models in
//! `tests/loom_ready_flag.rs` catch.
//!
//! ```
//! use ready_flag::ReadyFlag;
//! use sharedbuf::{Int32Array, SharedBuffer};
//!
//! let view = Int32Array::new(&SharedBuffer::new(8)?)?;
//! let flag = ReadyFlag::new(&view, 0)?;
//! let setter = {
//!     let (view, flag) = (view.clone(), flag.clone());
//!     std::thread::spawn(move || {
//!         view.set(1, 42)?; // the data, published by the flag
//!         flag.set()
//!     })
//! };
//! flag.wait()?;
//! assert_eq!(view.get(1), Some(42));
//! setter.join().unwrap()?;
//! # Ok::<(), sharedbuf::Error>(())
//! ```

use std::time::{Duration, Instant};

use sharedbuf::{atomics, Error, Int32Array, WaitResult};

const UNSET: i32 = 0;
const SET: i32 = 1;

/// A one-shot flag in element `index` of an `Int32Array` (the element starts at 0, unset).
/// Clones share the flag. Everything written before [`set`](ReadyFlag::set) is visible to a
/// thread once its [`wait`](ReadyFlag::wait) returns.
#[derive(Clone, Debug)]
pub struct ReadyFlag {
    view: Int32Array,
    index: usize,
}

impl ReadyFlag {
    /// The flag in element `index` of `view`; `Err` if the index is out of range.
    pub fn new(view: &Int32Array, index: usize) -> Result<ReadyFlag, Error> {
        atomics::load(view, index)?;
        Ok(ReadyFlag {
            view: view.clone(),
            index,
        })
    }

    /// Sets the flag and wakes every waiter. Idempotent.
    pub fn set(&self) -> Result<(), Error> {
        atomics::store(&self.view, self.index, SET)?;
        atomics::notify(&self.view, self.index, None)?;
        Ok(())
    }

    /// Whether the flag is set (any value but 0 counts).
    pub fn is_set(&self) -> Result<bool, Error> {
        Ok(atomics::load(&self.view, self.index)? != UNSET)
    }

    /// Blocks until the flag is set. `Err(Error::Terminated)` if the thread is a worker being
    /// terminated (its `Interrupter` fired).
    pub fn wait(&self) -> Result<(), Error> {
        // `wait` returns `NotEqual` at once if the flag was set meanwhile; the loop re-checks,
        // so only the flag's value ends it.
        while !self.is_set()? {
            atomics::wait(&self.view, self.index, UNSET, None)?;
        }
        Ok(())
    }

    /// Blocks until the flag is set or `timeout` passes; returns whether it is set.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Error> {
        let start = Instant::now();
        while !self.is_set()? {
            let left = timeout.saturating_sub(start.elapsed());
            if atomics::wait(&self.view, self.index, UNSET, Some(left))? == WaitResult::TimedOut {
                return self.is_set();
            }
        }
        Ok(true)
    }
}
