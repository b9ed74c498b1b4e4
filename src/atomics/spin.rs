//! The bounded, adaptive spin a blocked waiter does before parking.
//!
//! Waking a parked thread costs a futex syscall on both sides, and on a virtual machine waking
//! an idle core costs 30–80 µs; a handoff to a thread that is still running costs well under a
//! microsecond. So a waiter, once enqueued, watches its *own* outcome word for a short while
//! before it parks (never the watched value: that would let a plain store end the wait, which A7
//! forbids). The notifier sees the waiter has not parked and skips the unpark entirely.
//!
//! That only pays while the thread we wait for is running on another core. When the machine is
//! oversubscribed (more runnable threads than cores) it usually is not: it waits for a core,
//! often for ours, because the scheduler puts a woken thread beside its waker when no core is
//! idle. Then every microsecond spun delays the handoff, and a `yield_now` is worse: it hands
//! the core to whichever thread is runnable, for a whole timeslice, while a parked thread is
//! woken with the kernel's preference. So:
//! - The spin never yields; it is a pure busy-wait bounded in time.
//! - Its budget adapts per thread: it doubles when spinning paid off and halves when the waiter
//!   had to park anyway, and below `MIN_BUDGET` it is zero: the waiter parks at once, which
//!   costs what a raw futex wait costs.
//! - A spin that finds it was descheduled (a gap in its own clock readings) is the sign of
//!   oversubscription, and drops the budget to zero at once.
//! - From zero, a waiter probes now and then with a full spin: after 16 parked waits, then after
//!   twice as many each time a probe fails (up to 4096), so a thread returns to spinning soon
//!   after its partner became fast again, and an oversubscribed one almost never wastes a spin.
//!   It also probes once 2 ms have passed since its first parked wait without a probe, however
//!   few waits that was: a thread that learnt to park while its partners were idle (one task at
//!   a time to an idle pool) would otherwise go on parking for thousands of waits once they
//!   are busy again (a burst of joins), each wait then costing a futex round trip on both
//!   sides. The time bound costs an oversubscribed thread at most one short spin per 2 ms.
//!
//! `atomics::wait` spins once more, earlier, on the waited-on value itself, before it enqueues
//! ([`spin_until_changed`]): a change seen then ends the wait with `NotEqual`, which is what a
//! wait that started a moment later returns anyway, so A7 holds. A ping-pong then never touches
//! the waiter table. That spin learns its budget the same way, on its own.
//!
//! Nothing is spun on a single-CPU machine, nor under loom (where parking is the model).

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::deadline::Deadline;
use super::outcome::Outcome;
use super::waiter::Waiter;
use crate::shim::{self, LOOM};

/// A budget below this is zero: the spin could only catch a partner that is already running.
const MIN_BUDGET: Duration = Duration::from_micros(1);
/// The budget a thread starts with, and returns to after a successful probe.
const INITIAL_BUDGET: Duration = Duration::from_micros(20);
/// The longest spin: it rides out the wake of a core that only just went idle; a core in a
/// deeper sleep takes longer to wake than spinning could save.
const MAX_BUDGET: Duration = Duration::from_micros(50);
/// A gap this long between two clock readings of one spin means the thread was descheduled.
const DESCHEDULED: Duration = Duration::from_micros(10);
/// Spin iterations between clock readings (one `spin_loop` takes tens of nanoseconds).
const CLOCK_EVERY: u32 = 8;
/// Parked waits before the first probe after the budget dropped to zero.
const FIRST_PROBE_AFTER: u32 = 16;
/// The longest interval between probes, in parked waits.
const MAX_PROBE_AFTER: u32 = 4096;
/// The longest time from a parked wait to the next probe, whatever the count.
const MAX_PROBE_PERIOD: Duration = Duration::from_millis(2);

/// What a thread has learnt about spinning.
#[derive(Clone, Copy)]
struct SpinState {
    /// How long the next wait spins; zero: it parks at once (unless it probes).
    budget: Duration,
    /// With a zero budget: parked waits left before the next probe.
    waits_until_probe: u32,
    /// The interval to the probe after that one (doubles while probes fail).
    probe_interval: u32,
    /// With a zero budget: when the first parked wait since the last probe began.
    parking_since: Option<Instant>,
}

impl SpinState {
    const INITIAL: SpinState = SpinState {
        budget: INITIAL_BUDGET,
        waits_until_probe: 0,
        probe_interval: FIRST_PROBE_AFTER,
        parking_since: None,
    };

    /// How long this wait spins (zero: not at all), counting it towards the next probe.
    /// `now` reads the clock; it is called only when the budget is zero.
    fn budget_for_this_wait(&mut self, now: impl FnOnce() -> Instant) -> Duration {
        if !self.budget.is_zero() {
            return self.budget;
        }
        if self.waits_until_probe > 0 {
            let now = now();
            let since = *self.parking_since.get_or_insert(now);
            if now.saturating_duration_since(since) < MAX_PROBE_PERIOD {
                self.waits_until_probe -= 1;
                return Duration::ZERO;
            }
        }
        self.parking_since = None;
        INITIAL_BUDGET
    }

    /// Learns from a spin of `spun` (its budget) that ended with `ended`.
    fn learn<T>(&mut self, spun: Duration, ended: &Spun<T>) {
        let probed = self.budget.is_zero();
        match ended {
            Spun::Outcome(_) => {
                self.budget = (spun * 2).min(MAX_BUDGET);
                self.probe_interval = FIRST_PROBE_AFTER;
            }
            Spun::OutOfBudget if !probed && spun / 2 >= MIN_BUDGET => self.budget = spun / 2,
            Spun::OutOfBudget | Spun::Descheduled => {
                if probed {
                    self.probe_interval = (self.probe_interval * 2).min(MAX_PROBE_AFTER);
                }
                self.budget = Duration::ZERO;
                self.waits_until_probe = self.probe_interval;
            }
        }
    }
}

/// What a spin watches. Each learns its own budget: a thread whose waits are ended by
/// notifies that leave the value alone must not unlearn the outcome spin because its value
/// spins keep missing, nor the other way round.
#[derive(Clone, Copy)]
enum Watched {
    /// An enqueued waiter's outcome word ([`spin_until`]).
    Outcome = 0,
    /// The waited-on value, before the waiter enqueues ([`spin_until_changed`]).
    Value = 1,
}

shim::thread_local_static! {
    static SPIN: Cell<[SpinState; 2]> = Cell::new([SpinState::INITIAL; 2]);
}

/// How a spin ended.
enum Spun<T = Outcome> {
    Outcome(T),
    /// The budget (or the wait's deadline) ran out.
    OutOfBudget,
    /// The thread was descheduled while spinning: the machine is oversubscribed.
    Descheduled,
}

/// Returns the waiter's outcome if it arrives within the thread's spin budget, else `None`.
pub(crate) fn spin_for_outcome(waiter: &Waiter, deadline: Deadline) -> Option<Outcome> {
    spin_until(|| waiter.outcome(), deadline)
}

/// Returns what `probe` finds once it finds something, if that happens within the thread's
/// spin budget, else `None`: the same adaptive spin for any outcome word (a process-shared
/// waiter watches its slot in the buffer's header instead of a [`Waiter`]).
pub(crate) fn spin_until<T>(probe: impl Fn() -> Option<T>, deadline: Deadline) -> Option<T> {
    adaptive_spin(Watched::Outcome, probe, deadline)
}

/// [`spin_until`] for a wait that has not enqueued yet: `probe` watches the waited-on value,
/// and finding it changed ends the wait with `NotEqual`, as if the wait had started just then.
///
/// When the other thread is about to store and notify, this spares the whole round through
/// the waiter table on both sides: the waiter neither locks a bucket nor allocates, and the
/// notifier finds nobody counted and takes no lock. Its budget is learnt apart from the
/// outcome spin's, since a value that notifies leave alone never changes.
pub(crate) fn spin_until_changed<T>(
    probe: impl Fn() -> Option<T>,
    deadline: Deadline,
) -> Option<T> {
    adaptive_spin(Watched::Value, probe, deadline)
}

/// The spin behind both: `probe` once, then within the thread's budget for `watched`.
#[inline]
fn adaptive_spin<T>(
    watched: Watched,
    probe: impl Fn() -> Option<T>,
    deadline: Deadline,
) -> Option<T> {
    if let Some(outcome) = probe() {
        return Some(outcome);
    }
    if LOOM || shim::cpus() < 2 || deadline == Deadline::Expired {
        return None;
    }
    let mut states = SPIN.with(Cell::get);
    let state = &mut states[watched as usize];
    let budget = state.budget_for_this_wait(Instant::now);
    if budget.is_zero() {
        SPIN.with(|s| s.set(states));
        return None;
    }
    let ended = spin(&probe, deadline, budget);
    state.learn(budget, &ended);
    SPIN.with(|s| s.set(states));
    match ended {
        Spun::Outcome(outcome) => Some(outcome),
        Spun::OutOfBudget | Spun::Descheduled => None,
    }
}

/// Busy-waits for `probe` to find an outcome for at most `budget` (or until `deadline`).
fn spin<T>(probe: &impl Fn() -> Option<T>, deadline: Deadline, budget: Duration) -> Spun<T> {
    let start = Instant::now();
    let end = match deadline {
        Deadline::At(at) => at.min(start + budget),
        Deadline::Never | Deadline::Expired => start + budget,
    };
    let mut last_reading = start;
    let mut iteration = 0u32;
    loop {
        if let Some(outcome) = probe() {
            return Spun::Outcome(outcome);
        }
        std::hint::spin_loop();
        iteration += 1;
        if iteration % CLOCK_EVERY == 0 {
            let now = Instant::now();
            if now - last_reading >= DESCHEDULED {
                return Spun::Descheduled;
            }
            if now >= end {
                return Spun::OutOfBudget;
            }
            last_reading = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One wait at a clock that stands still (only the counts decide when to probe).
    fn run(state: &mut SpinState, ended: Spun) -> Duration {
        run_at(state, ended, *EPOCH)
    }

    fn run_at(state: &mut SpinState, ended: Spun, now: Instant) -> Duration {
        let budget = state.budget_for_this_wait(|| now);
        if !budget.is_zero() {
            state.learn(budget, &ended);
        }
        budget
    }

    static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

    fn hit() -> Spun {
        Spun::Outcome(Outcome::Notified)
    }

    #[test]
    fn the_budget_doubles_on_success_and_halves_to_zero_on_misses() {
        let mut state = SpinState::INITIAL;
        assert_eq!(run(&mut state, hit()), INITIAL_BUDGET);
        assert_eq!(run(&mut state, hit()), INITIAL_BUDGET * 2);
        assert_eq!(run(&mut state, Spun::OutOfBudget), MAX_BUDGET);
        let mut misses = 1;
        while !state.budget.is_zero() {
            run(&mut state, Spun::OutOfBudget);
            misses += 1;
            assert!(misses < 10, "the budget never reached zero");
        }
        assert!(misses > 1, "one miss halves, it does not zero");
        assert_eq!(run(&mut state, hit()), Duration::ZERO, "parked at once");
    }

    #[test]
    fn being_descheduled_stops_spinning_at_once() {
        let mut state = SpinState::INITIAL;
        run(&mut state, hit());
        run(&mut state, Spun::Descheduled);
        assert_eq!(state.budget, Duration::ZERO);
        assert_eq!(state.waits_until_probe, FIRST_PROBE_AFTER);
    }

    #[test]
    fn failed_probes_back_off_and_a_successful_one_spins_again() {
        let mut state = SpinState::INITIAL;
        run(&mut state, Spun::Descheduled);
        let mut interval = FIRST_PROBE_AFTER;
        for _ in 0..20 {
            for _ in 0..interval {
                assert_eq!(run(&mut state, Spun::OutOfBudget), Duration::ZERO);
            }
            assert_eq!(
                run(&mut state, Spun::OutOfBudget),
                INITIAL_BUDGET,
                "a probe"
            );
            interval = (interval * 2).min(MAX_PROBE_AFTER);
        }
        assert_eq!(state.waits_until_probe, MAX_PROBE_AFTER);
        for _ in 0..MAX_PROBE_AFTER {
            run(&mut state, hit());
        }
        assert_eq!(
            run(&mut state, hit()),
            INITIAL_BUDGET,
            "the probe that succeeds"
        );
        assert_eq!(run(&mut state, hit()), INITIAL_BUDGET * 2, "spinning again");
        assert_eq!(state.probe_interval, FIRST_PROBE_AFTER);
    }

    #[test]
    fn a_parking_thread_probes_once_the_probe_period_has_passed() {
        let mut state = SpinState::INITIAL;
        run(&mut state, Spun::Descheduled);
        // Back off to the longest interval, at a standing clock.
        while state.probe_interval < MAX_PROBE_AFTER {
            run(&mut state, Spun::OutOfBudget);
        }
        assert_eq!(
            state.waits_until_probe, MAX_PROBE_AFTER,
            "just after a failed probe"
        );
        // A few parked waits, the clock moving but within the period: still no spin.
        let start = *EPOCH + Duration::from_secs(1);
        for step in 0..4 {
            let now = start + MAX_PROBE_PERIOD / 8 * step;
            assert_eq!(run_at(&mut state, hit(), now), Duration::ZERO);
        }
        // Once the period has passed since the first of them, the next wait probes, thousands
        // of waits before the count would have let it, and spins again after that success.
        assert!(state.waits_until_probe > MAX_PROBE_AFTER / 2);
        let later = start + MAX_PROBE_PERIOD;
        assert_eq!(run_at(&mut state, hit(), later), INITIAL_BUDGET, "a probe");
        assert_eq!(run_at(&mut state, hit(), later), INITIAL_BUDGET * 2);
    }
}
