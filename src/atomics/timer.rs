//! Timeouts of waiters that cannot time themselves out.
//!
//! A blocked thread times itself out (it parks with a deadline). A pending
//! [`WaitFuture`](super::WaitFuture) has no thread, and the crate depends on no runtime, so one
//! lazily started timer thread ("sharedbuf-timer") cancels expired async waiters with
//! "timed out" and wakes their tasks. Its schedule is an ordered map, so a future dropped before
//! its deadline removes its entry at once and the schedule holds only live timeouts. Wakers are
//! user code: the timer runs them with its schedule unlocked and survives one that panics
//! (fault: a panicking waker used to kill the timer, and no timeout fired from then on).
//!
//! A child forked from this process (without `exec`) has no timer thread: the thread does not
//! cross a `fork`. The schedule records the fork generation its thread started in
//! (`region/fork_generation.rs`), and the child's next timed `wait_async` (or the next poll of
//! one pending since the fork) starts a thread of its own, which serves the inherited schedule too
//! (docs/semantics.md X7; fault: the schedule said "started", and no timed `wait_async` of the
//! child ever timed out).
//!
//! Under loom there is no clock: every waiter with a finite timeout (blocking ones too) is
//! recorded here instead, and a model thread playing the timer calls
//! `loom_hooks::fire_timeouts` (a loom build only), which races the expiry
//! against whatever else the model does.

#[cfg(not(loom))]
pub(crate) use clock::{restart_after_fork, schedule, schedule_blocking, unschedule, TimerEntry};
#[cfg(loom)]
#[allow(unused_imports)] // fire_timeouts and pending_timeouts: for the loom hooks only
pub(crate) use model::{
    fire_timeouts, pending_timeouts, restart_after_fork, schedule, schedule_blocking, unschedule,
    TimerEntry,
};

#[cfg(not(loom))]
mod clock {
    use std::collections::BTreeMap;
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Condvar, Mutex, Weak};
    use std::time::Instant;

    use crate::atomics::cancel::cancel;
    use crate::atomics::outcome::Outcome;
    use crate::atomics::waiter::Waiter;
    use crate::error::Error;
    use crate::region::fork_generation;
    use crate::shim::lock;

    /// Identifies one scheduled timeout (deadline, then arrival order).
    pub(crate) type TimerEntry = (Instant, u64);

    struct Schedule {
        entries: BTreeMap<TimerEntry, Weak<Waiter>>,
        next_id: u64,
    }

    struct Timer {
        schedule: Mutex<Schedule>,
        changed: Condvar,
    }

    /// The timer's schedule, served by its thread once it started.
    static TIMER: Timer = Timer {
        schedule: Mutex::new(Schedule {
            entries: BTreeMap::new(),
            next_id: 0,
        }),
        changed: Condvar::new(),
    };

    /// One more than the fork generation the timer thread started in (0: not started). The
    /// thread never ends, but does not cross a fork: a forked child sees another generation.
    /// Written under the schedule's lock.
    static STARTED_IN: AtomicU64 = AtomicU64::new(0);

    /// Arranges for `waiter` to time out at `deadline` (unless it leaves the table first).
    /// The first call starts the timer thread (under the schedule's lock, which the thread
    /// waits for). A start the system refused is not remembered (docs/semantics.md A14): the
    /// next call tries again (fault: a `OnceLock` kept the first `Err`, and one `EAGAIN`
    /// disabled every later timed `wait_async` of the process).
    pub(crate) fn schedule(deadline: Instant, waiter: &Arc<Waiter>) -> Result<TimerEntry, Error> {
        let timer = &TIMER;
        let mut schedule = lock(&timer.schedule);
        start(&mut schedule)?;
        let entry = (deadline, schedule.next_id);
        schedule.next_id += 1;
        let first = schedule.entries.keys().next().map_or(true, |&e| entry < e);
        schedule.entries.insert(entry, Arc::downgrade(waiter));
        drop(schedule);
        if first {
            timer.changed.notify_one();
        }
        Ok(entry)
    }

    /// Starts the timer thread unless it runs in this process (a forked child's schedule is
    /// inherited, its thread is not: docs/semantics.md X7).
    /// Called with the schedule locked (`_locked` proves it): `STARTED_IN` is written under it.
    fn start(_locked: &mut Schedule) -> Result<(), Error> {
        let generation = fork_generation() + 1;
        if STARTED_IN.load(Ordering::Relaxed) == generation {
            return Ok(());
        }
        std::thread::Builder::new()
            .name("sharedbuf-timer".into())
            .spawn(|| run(&TIMER))
            .map_err(|e| Error::SpawnFailed {
                reason: format!("could not start the wait_async timer thread: {e}"),
            })?;
        STARTED_IN.store(generation, Ordering::Relaxed);
        Ok(())
    }

    /// In a child forked from this process, starts its timer thread for the timeouts it
    /// inherited; called by the poll of a pending timed `wait_async` (one relaxed load
    /// otherwise). A refused start is tried again at the next poll.
    pub(crate) fn restart_after_fork() {
        if STARTED_IN.load(Ordering::Relaxed) != fork_generation() + 1 {
            let mut schedule = lock(&TIMER.schedule);
            let _ = start(&mut schedule);
        }
    }

    /// A blocked thread times itself out (it parks with a deadline): nothing to schedule.
    pub(crate) fn schedule_blocking(
        _deadline: Instant,
        _waiter: &Arc<Waiter>,
    ) -> Option<TimerEntry> {
        None
    }

    /// Forgets a scheduled timeout (its future was resolved or dropped).
    pub(crate) fn unschedule(entry: TimerEntry) {
        lock(&TIMER.schedule).entries.remove(&entry);
    }

    /// Times `waiter` out (unless it already left the table) and wakes its task, with the
    /// schedule unlocked. The waker is user code, and so is the waiter's drop if its future
    /// was dropped meanwhile (this is then the last reference): a panic there is caught, so
    /// the one timer thread of the process keeps serving every other `wait_async`. Nothing is
    /// half-done by then: the entry is already off the schedule, and the outcome is set and the
    /// waiter out of the table before its waker runs. The panic hook has reported the panic;
    /// its payload is dropped here.
    fn time_out(waiter: Weak<Waiter>) {
        let _ = panic::catch_unwind(AssertUnwindSafe(move || {
            if let Some(waiter) = waiter.upgrade() {
                cancel(&waiter, Outcome::TimedOut, true);
            }
        }));
    }

    fn run(timer: &'static Timer) {
        let mut schedule = lock(&timer.schedule);
        loop {
            let now = Instant::now();
            let due = match schedule.entries.first_key_value() {
                None => None,
                Some((&(deadline, _), _)) if deadline <= now => schedule.entries.pop_first(),
                Some((&(deadline, _), _)) => {
                    schedule = match timer.changed.wait_timeout(schedule, deadline - now) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                    continue;
                }
            };
            match due {
                Some((_, waiter)) => {
                    drop(schedule);
                    time_out(waiter);
                    schedule = lock(&timer.schedule);
                }
                None => {
                    schedule = match timer.changed.wait(schedule) {
                        Ok(guard) => guard,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                }
            }
        }
    }
}

#[cfg(loom)]
mod model {
    use crate::atomics::cancel::cancel;
    use crate::atomics::outcome::Outcome;
    use crate::atomics::waiter::Waiter;
    use crate::error::Error;
    use crate::shim::{lock, Arc, Mutex};

    /// Under loom an entry is the waiter's address (its identity in the pending list).
    pub(crate) type TimerEntry = usize;

    crate::shim::lazy_static! {
        static ref PENDING: Mutex<Vec<Arc<Waiter>>> = Mutex::new(Vec::new());
    }

    /// Records a waiter with a finite timeout; it expires when the model calls
    /// [`fire_timeouts`].
    pub(crate) fn schedule<D>(_deadline: D, waiter: &Arc<Waiter>) -> Result<TimerEntry, Error> {
        lock(&PENDING).push(Arc::clone(waiter));
        Ok(Arc::as_ptr(waiter) as usize)
    }

    /// Records a blocked waiter with a finite timeout, as [`schedule`] does: under loom the
    /// model plays the clock for blocking waiters too.
    pub(crate) fn schedule_blocking<D>(deadline: D, waiter: &Arc<Waiter>) -> Option<TimerEntry> {
        schedule(deadline, waiter).ok()
    }

    /// Forgets a waiter whose wait ended (loom objects must not outlive the model run).
    pub(crate) fn unschedule(entry: TimerEntry) {
        lock(&PENDING).retain(|waiter| Arc::as_ptr(waiter) as usize != entry);
    }

    /// Under loom nothing forks.
    pub(crate) fn restart_after_fork() {}

    /// Number of waiters whose timeout the model can fire now.
    #[allow(dead_code)] // used by the loom hooks only
    pub(crate) fn pending_timeouts() -> usize {
        lock(&PENDING).len()
    }

    /// Times out every waiter recorded so far that is still waiting.
    #[allow(dead_code)] // used by the loom hooks only
    pub(crate) fn fire_timeouts() {
        let pending = std::mem::take(&mut *lock(&PENDING));
        for waiter in pending {
            cancel(&waiter, Outcome::TimedOut, true);
        }
    }
}
