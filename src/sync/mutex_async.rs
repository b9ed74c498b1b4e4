//! [`Mutex::lock_async`]: taking an in-buffer [`Mutex`] from async code without blocking the
//! executor's thread.
//!
//! A pending [`LockFuture`] sets the state's `ASYNC` flag on the held lock and sleeps on the
//! mutex's side word through [`atomics::wait_async`], with the side
//! word's sequence read before the flag is set (an eventcount: a release after that read bumps
//! the sequence before it wakes, so the sleep either sees the new sequence or is woken). Every
//! release that clears `ASYNC` wakes all async sleepers, which then race for the lock like
//! barging threads. No async waiter ever holds a baton or a handoff, so dropping a pending
//! future (a `select!`, a timeout) can never strand another waiter — which is why the futures do
//! not queue with blocking waiters: the waiter table cannot tell a dropped future's consumed wake
//! from a delivered one.
//!
//! Fairness toward async waiters is therefore only that of barging: they are woken at every
//! release but never handed the lock.
//!
//! In a process-shared buffer (`shared_mutex.rs`) the same eventcount runs on the `ASYNC` flag
//! of the `waiters` word, the holder a task records is its *process*'s identity (the task may
//! move between the process's threads), and a pending future sleeps at most a slice at a time,
//! so that it notices a dead holder, takes the lock over and resolves to
//! `Err(LockError::OwnerDied(guard))` like a blocking lock (X3).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::liveness::Slices;
use super::lock_result::{LockError, LockResult};
use super::mutex::{Acquired, Mutex};
use super::owner;
use crate::atomics::{self, WaitAsync, WaitFuture};
use crate::shim::{self, Ordering::Acquire};
use crate::view::Uint32Array;

/// Byte offset of the side word within a mutex.
const SIDE_OFFSET: usize = 4;

impl Mutex {
    /// A future that takes the lock without blocking the thread polling it, on any executor.
    ///
    /// It resolves to an [`AsyncMutexGuard`], which (unlike [`MutexGuard`](super::MutexGuard))
    /// may move between threads, so it can be held across `.await` in a multi-threaded runtime.
    /// In a process-shared buffer it may resolve to `Err(LockError::OwnerDied(guard))` as
    /// [`lock`](Mutex::lock) does (X3).
    /// Async holders have no thread identity: a task that awaits a lock it already holds waits
    /// forever (there is no `WouldDeadlock` for tasks). Dropping the future before it resolves
    /// gives up cleanly. Async waiters are woken at every release and race for the lock; they
    /// are not handed the lock as a starving blocking waiter is.
    ///
    /// ```
    /// use sharedbuf::sync::Mutex;
    /// use sharedbuf::SharedBuffer;
    ///
    /// let mutex = Mutex::at(&SharedBuffer::new(16)?, 0)?;
    /// let mut future = Box::pin(mutex.lock_async());
    /// // Poll it with any executor; here a waker that does nothing, since the lock is free.
    /// let waker = std::task::Waker::noop();
    /// let guard = match future.as_mut().poll(&mut std::task::Context::from_waker(&waker)) {
    ///     std::task::Poll::Ready(guard) => guard?,
    ///     std::task::Poll::Pending => unreachable!("the lock was free"),
    /// };
    /// assert!(mutex.is_locked());
    /// drop(guard);
    /// assert!(!mutex.is_locked());
    /// # use std::future::Future;
    /// # Ok::<(), sharedbuf::Error>(())
    /// ```
    pub fn lock_async(&self) -> LockFuture<'_> {
        LockFuture {
            mutex: self,
            sleep: None,
            side: None,
            slices: Slices::new(),
            holder: if self.is_shared() {
                owner::shared_process_identity()
            } else {
                owner::TASK
            },
        }
    }
}

/// The future [`Mutex::lock_async`] returns.
#[must_use = "a LockFuture does nothing unless polled"]
pub struct LockFuture<'a> {
    mutex: &'a Mutex,
    /// The pending sleep on the side word, if any.
    sleep: Option<WaitFuture>,
    /// A view of the side word, made on first need.
    side: Option<Uint32Array>,
    /// The owner the lock records: `TASK`, or in a process-shared buffer this process's
    /// identity.
    holder: u64,
    /// In a process-shared buffer: the lengths of its sleeps.
    slices: Slices,
}

impl<'a> Future for LockFuture<'a> {
    type Output = LockResult<AsyncMutexGuard<'a>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mutex = this.mutex;
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                if Pin::new(sleep).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
            }
            // Eventcount: the sequence first, then the flag (see the module docs).
            let sequence;
            if mutex.is_shared() {
                match mutex.shared_try_lock(this.holder, false) {
                    Err(error) => return Poll::Ready(Err(LockError::Failed(error))),
                    Ok(Some(Acquired::Clean)) => {
                        return Poll::Ready(Ok(AsyncMutexGuard::new(mutex, this.holder)))
                    }
                    Ok(Some(Acquired::OwnerDied)) => {
                        let guard = AsyncMutexGuard {
                            mutex,
                            holder: this.holder,
                            inconsistent: true,
                        };
                        return Poll::Ready(Err(LockError::OwnerDied(guard)));
                    }
                    Ok(None) => {}
                }
                sequence = mutex.side().load(Acquire);
                if mutex.shared_announce_async() == owner::NONE {
                    continue; // released meanwhile: try again
                }
            } else {
                if mutex.try_take_for(owner::TASK) {
                    return Poll::Ready(Ok(AsyncMutexGuard::new(mutex, owner::TASK)));
                }
                sequence = mutex.side().load(Acquire);
                if !mutex.announce_async() {
                    continue; // released meanwhile: try again
                }
            }
            let side = match &this.side {
                Some(side) => side,
                None => {
                    let view = Uint32Array::with_range(
                        mutex.buffer(),
                        mutex.byte_offset() + SIDE_OFFSET,
                        Some(1),
                    );
                    match view {
                        Ok(view) => this.side.insert(view),
                        Err(error) => return Poll::Ready(Err(LockError::Failed(error))),
                    }
                }
            };
            // A process-shared lock's holder may die: sleep a slice at a time, and look again.
            let timeout = if mutex.is_shared() {
                this.slices.timeout()
            } else {
                None
            };
            match atomics::wait_async(side, 0, sequence, timeout) {
                Ok(WaitAsync::Ready(_)) => continue, // the sequence moved: a release happened
                Ok(WaitAsync::Pending(sleep)) => this.sleep = Some(sleep),
                Err(error) => return Poll::Ready(Err(LockError::Failed(error))),
            }
        }
    }
}

impl fmt::Debug for LockFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFuture")
            .field("byte_offset", &self.mutex.byte_offset())
            .field("sleeping", &self.sleep.is_some())
            .finish()
    }
}

/// Proof that a task holds a [`Mutex`] taken with [`Mutex::lock_async`]; dropping it unlocks.
/// `Send` and `Sync`: it may be held across `.await` and dropped on any thread.
#[must_use = "the mutex is unlocked when the guard is dropped"]
pub struct AsyncMutexGuard<'a> {
    mutex: &'a Mutex,
    /// The owner recorded: `TASK`, or this process's identity in a process-shared buffer.
    holder: u64,
    /// Taken over from a dead holder and not yet marked consistent (X3).
    inconsistent: bool,
}

impl<'a> AsyncMutexGuard<'a> {
    fn new(mutex: &'a Mutex, holder: u64) -> AsyncMutexGuard<'a> {
        AsyncMutexGuard {
            mutex,
            holder,
            inconsistent: false,
        }
    }

    /// The mutex this guard holds.
    pub fn mutex(&self) -> &'a Mutex {
        self.mutex
    }

    /// As [`MutexGuard::mark_consistent`](super::MutexGuard::mark_consistent): the data is
    /// repaired after a dead holder; without this call, releasing the guard retires the lock.
    pub fn mark_consistent(&mut self) {
        self.inconsistent = false;
    }

    /// Whether the guard still waits for
    /// [`mark_consistent`](AsyncMutexGuard::mark_consistent).
    pub fn is_inconsistent(&self) -> bool {
        self.inconsistent
    }
}

impl Drop for AsyncMutexGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        if shim::model_is_unwinding() {
            return; // a failed loom model: see `shim::model_is_unwinding`
        }
        if self.mutex.is_shared() {
            self.mutex.shared_unlock(self.holder, self.inconsistent);
        } else {
            self.mutex.unlock();
        }
    }
}

impl fmt::Debug for AsyncMutexGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncMutexGuard")
            .field("byte_offset", &self.mutex.byte_offset())
            .field("inconsistent", &self.inconsistent)
            .finish()
    }
}
