//! Loom models (docs/semantics.md W3, A8): interrupting blocked waiters (a worker's `terminate()`).
//! Exactly one of (Ok, counted) and (Err(Terminated), not counted) happens for each waiter,
//! every waiter returns, and none is left in the table — with one interrupter on one thread,
//! one interrupter on two threads, and two interrupters nested on one thread.
//!
//! Proven by a planted bug (recorded when the model was added): `interrupt()` not cancelling the blocked waiter.
#![cfg(loom)]

#[path = "wait_support.rs"]
mod support;

use sharedbuf::atomics::{self, Interrupter};
use sharedbuf::{loom_hooks, Error, Int32Array, WaitResult};

/// Spawns a thread that installs `interrupters` (in order) and then waits on element 0.
fn spawn_waiter(
    view: &Int32Array,
    interrupters: Vec<Interrupter>,
) -> loom::thread::JoinHandle<Result<WaitResult, Error>> {
    let view = view.clone();
    loom::thread::spawn(move || {
        let _installed: Vec<_> = interrupters.iter().map(Interrupter::install).collect();
        atomics::wait(&view, 0, 0, None)
    })
}

/// Spawns a thread that notifies every waiter on element 0; joins to the count.
fn spawn_notify_all(view: &Int32Array) -> loom::thread::JoinHandle<usize> {
    let view = view.clone();
    loom::thread::spawn(move || atomics::notify(&view, 0, None).unwrap())
}

/// How many waits ended `Ok`; panics on anything but `Ok` or `Err(Terminated)`.
fn count_ok(results: &[Result<WaitResult, Error>]) -> usize {
    results
        .iter()
        .filter(|result| match result {
            Ok(WaitResult::Ok) => true,
            Err(Error::Terminated) => false,
            other => panic!("unexpected {other:?}"),
        })
        .count()
}

#[test]
fn interrupt_and_notify_never_both_win() {
    loom::model(|| {
        let view = support::view();
        let interrupter = Interrupter::new();
        let waiter = spawn_waiter(&view, vec![interrupter.clone()]);
        let notifier = spawn_notify_all(&view);

        interrupter.interrupt();
        let result = waiter.join().unwrap();
        let woken = notifier.join().unwrap();
        assert_eq!(count_ok(&[result]), woken, "Ok exactly when counted");
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

/// One interrupter installed on two threads interrupts both, whether each is blocked yet or
/// not, and leaves neither in the table. (The race with a notify is the model above; adding a
/// notifier here costs tens of times the time for no new interleaving of the interrupter's own list.)
#[test]
fn one_interrupter_interrupts_every_thread_it_is_installed_on() {
    loom::model(|| {
        let view = support::view();
        let interrupter = Interrupter::new();
        let waiters = [
            spawn_waiter(&view, vec![interrupter.clone()]),
            spawn_waiter(&view, vec![interrupter.clone()]),
        ];

        interrupter.interrupt();
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), Err(Error::Terminated));
        }
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}

/// With an outer and an inner interrupter installed, interrupting the outer one ends the
/// wait: every installed interrupter counts, not only the innermost.
#[test]
fn an_outer_interrupter_interrupts_under_an_inner_one() {
    loom::model(|| {
        let view = support::view();
        let (outer, inner) = (Interrupter::new(), Interrupter::new());
        let waiter = spawn_waiter(&view, vec![outer.clone(), inner]);
        let notifier = spawn_notify_all(&view);

        outer.interrupt();
        let result = waiter.join().unwrap();
        let woken = notifier.join().unwrap();
        assert_eq!(count_ok(&[result]), woken, "Ok exactly when counted");
        assert_eq!(loom_hooks::queued_waiters(), 0);
    });
}
