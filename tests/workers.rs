//! Workers: docs/semantics.md W1 (lifecycle and event order), W2 (exit codes, errors, panics),
//! W3 (terminate), W4 (posting to an exited worker), W5 (transfer), W7 (worker_data, name),
//! W8 (what a worker knows about itself).
#![cfg(not(loom))]

mod common;

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::within_watchdog;
use sharedbuf::worker::{self, ExitStatus, IntoExitCode, Worker, WorkerEvent, WorkerState};
use sharedbuf::{atomics, Error, Int32Array, MessageChannel, MessagePort, SharedBuffer};

fn exit_code(event: &WorkerEvent<impl std::fmt::Debug>) -> (i32, bool) {
    match event {
        WorkerEvent::Exit(status) => (status.code(), status.terminated()),
        other => panic!("expected Exit, got {other:?}"),
    }
}

/// The rest of `worker`'s events, up to and with its `Exit`, and the status `Exit` carried.
/// Checks W1 on the way: exactly one `Exit`, the last event, and nothing after it. Waits as long
/// as the events take: call it inside [`within_watchdog`].
fn events_to_exit<In, Out: Debug>(worker: &Worker<In, Out>) -> (Vec<WorkerEvent<Out>>, ExitStatus) {
    let events: Vec<_> = worker.events().collect();
    let exits = events
        .iter()
        .filter(|event| matches!(event, WorkerEvent::Exit(_)))
        .count();
    assert_eq!(exits, 1, "exactly one Exit: {events:?}");
    let status = match events.last() {
        Some(WorkerEvent::Exit(status)) => *status,
        _ => panic!("Exit is not the last event: {events:?}"),
    };
    assert!(
        matches!(worker.recv_event(), Err(Error::Closed)),
        "nothing after Exit"
    );
    (events, status)
}

#[test]
fn w1_events_are_online_then_messages_then_exit() {
    let worker = Worker::spawn(|ctx| -> Result<(), Error> {
        for i in 0..3 {
            ctx.post_message(i)?;
        }
        Ok(())
    })
    .unwrap();
    let worker: Worker<(), i32> = worker;
    let events: Vec<_> = worker.events().collect();
    assert_eq!(events.len(), 5, "{events:?}");
    assert_eq!(
        events[..4],
        [
            WorkerEvent::Online,
            WorkerEvent::Message(0),
            WorkerEvent::Message(1),
            WorkerEvent::Message(2),
        ]
    );
    assert_eq!(exit_code(&events[4]), (0, false));
    assert_eq!(worker.recv_event(), Err(Error::Closed)); // nothing after Exit
}

/// Messages through a port of capacity 2; fewer under Miri (as every count below marked
/// `cfg!(miri)`: Miri interprets the threads about a thousand times slower).
const HANDOFFS: u32 = if cfg!(miri) { 50 } else { 500 };
/// Rounds of the tests that repeat a race between `terminate()` and the closure's start.
const TERMINATE_ROUNDS: usize = if cfg!(miri) { 5 } else { 200 };

#[test]
fn w1_exit_comes_after_every_message_even_through_a_tiny_full_port() {
    let worker: Worker<(), u32> = Worker::builder()
        .capacity(2)
        .spawn(|ctx| -> Result<(), Error> {
            for i in 0..HANDOFFS {
                ctx.post_message(i)?; // waits whenever the parent is behind
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
    for i in 0..HANDOFFS {
        assert_eq!(worker.recv_event(), Ok(WorkerEvent::Message(i)));
    }
    assert_eq!(exit_code(&worker.recv_event().unwrap()), (0, false));
    assert_eq!(worker.recv_event(), Err(Error::Closed)); // nothing after Exit
    assert_eq!(worker.try_recv_event(), None);
}

#[test]
fn w1_state_goes_running_then_exited() {
    let worker: Worker<u8, ()> = Worker::spawn(|ctx| ctx.recv().map(drop)).unwrap();
    assert!(matches!(
        worker.state(),
        WorkerState::Created | WorkerState::Running
    ));
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
    assert_eq!(worker.state(), WorkerState::Running); // blocked in recv
    worker.post_message(1).unwrap();
    assert_eq!(exit_code(&worker.recv_event().unwrap()), (0, false));
    assert_eq!(worker.state(), WorkerState::Exited);
}

#[test]
fn w2_an_error_is_reported_after_the_messages_and_exits_with_code_1() {
    let worker: Worker<(), &str> = Worker::spawn(|ctx| -> Result<(), String> {
        ctx.post_message("working").map_err(|e| e.to_string())?;
        Err("disk on fire".to_owned())
    })
    .unwrap();
    let events: Vec<_> = worker.events().collect();
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[0], WorkerEvent::Online);
    assert_eq!(events[1], WorkerEvent::Message("working"));
    match &events[2] {
        WorkerEvent::Error(error) => {
            assert_eq!(error.message(), "disk on fire");
            assert!(!error.is_panic());
        }
        other => panic!("expected Error, got {other:?}"),
    }
    assert_eq!(exit_code(&events[3]), (1, false));
}

#[test]
fn w2_a_panic_is_an_error_event_and_exit_code_1_and_the_parent_lives() {
    let worker: Worker<(), ()> = Worker::spawn(|_ctx| -> () {
        let n = 41;
        panic!("worker gave up at {}", n + 1);
    })
    .unwrap();
    let events: Vec<_> = worker.events().collect();
    assert_eq!(events.len(), 3, "{events:?}");
    match &events[1] {
        WorkerEvent::Error(error) => {
            assert!(error.is_panic());
            assert_eq!(error.message(), "worker gave up at 42");
        }
        other => panic!("expected Error, got {other:?}"),
    }
    assert_eq!(exit_code(&events[2]), (1, false));
    assert_eq!(worker.join().unwrap().code(), 1);

    let static_panic: Worker<(), ()> =
        Worker::spawn(|_ctx| -> () { panic!("static text") }).unwrap();
    let events: Vec<_> = static_panic.events().collect();
    assert!(matches!(&events[1], WorkerEvent::Error(e) if e.message() == "static text"));
}

#[test]
fn w2_exit_codes_follow_what_the_closure_returns() {
    let unit: Worker<(), ()> = Worker::spawn(|_ctx| ()).unwrap();
    let status = unit.join().unwrap();
    assert_eq!(
        (status.code(), status.terminated(), status.success()),
        (0, false, true)
    );
    let seven: Worker<(), ()> = Worker::spawn(|_ctx| 7).unwrap();
    assert_eq!(seven.join().unwrap().code(), 7);
    let ok_three: Worker<(), ()> = Worker::spawn(|_ctx| Ok::<i32, Error>(3)).unwrap();
    assert_eq!(ok_three.join().unwrap().code(), 3);
    let err: Worker<(), ()> = Worker::spawn(|_ctx| Err::<(), _>(Error::Timeout)).unwrap();
    let status = err.join().unwrap();
    assert_eq!(
        (status.code(), status.terminated(), status.success()),
        (1, false, false)
    );
}

#[test]
fn w3_terminate_interrupts_a_worker_blocked_in_atomics_wait() {
    let flag = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
    let worker: Worker<(), &str> = Worker::builder()
        .worker_data(flag)
        .spawn(|ctx| -> Result<(), Error> {
            ctx.post_message("waiting")?;
            atomics::wait(ctx.worker_data(), 0, 0, None)?; // nobody notifies
            ctx.post_message("woke normally")?;
            Ok(())
        })
        .unwrap();
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Message("waiting")));
    let status = worker.terminate().unwrap();
    assert_eq!((status.code(), status.terminated()), (1, true));
    // Node reports only `exit` after terminate(): no Error event, no later message.
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Exit(status)));
    assert_eq!(worker.recv_event(), Err(Error::Closed));
}

#[test]
fn w3_terminate_interrupts_a_worker_blocked_in_recv_and_recv_timeout() {
    let in_recv: Worker<u8, ()> = Worker::spawn(|ctx| ctx.recv().map(drop)).unwrap();
    let in_recv_timeout: Worker<u8, ()> =
        Worker::spawn(|ctx| ctx.port().recv_timeout(Duration::from_secs(3600)).map(drop)).unwrap();
    for worker in [&in_recv, &in_recv_timeout] {
        assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
        let status = worker.terminate().unwrap();
        assert_eq!((status.code(), status.terminated()), (1, true));
        assert_eq!(exit_code(&worker.recv_event().unwrap()), (1, true));
    }
}

/// `join_timeout` (W1): `Timeout` while the worker runs, the handle still usable after; the
/// events it met meanwhile are dropped, so a worker blocked on its full port finishes; once
/// it returned the status, every later join returns the same.
#[test]
fn w1_join_timeout_gives_up_and_leaves_the_handle_usable() {
    let worker: Worker<u8, u32> = Worker::builder()
        .capacity(2)
        .spawn(|ctx| -> Result<i32, Error> {
            let code = ctx.recv()?;
            for i in 0..HANDOFFS {
                ctx.post_message(i)?; // the port is full long before the last
            }
            Ok(i32::from(code))
        })
        .unwrap();
    assert_eq!(
        worker.join_timeout(Duration::from_millis(10)),
        Err(Error::Timeout)
    );
    assert_eq!(worker.state(), WorkerState::Running);
    worker.post_message(7).unwrap();
    let status = worker.join_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!((status.code(), status.terminated()), (7, false));
    assert_eq!(worker.join_timeout(Duration::ZERO), Ok(status));
    assert_eq!(worker.recv_event(), Err(Error::Closed)); // its events were dropped
    assert_eq!(worker.join(), Ok(status));
}

#[test]
fn w3_terminate_is_idempotent_and_returns_the_same_status() {
    let worker: Worker<u8, ()> = Worker::spawn(|ctx| ctx.recv().map(drop)).unwrap();
    let first = worker.terminate().unwrap();
    let second = worker.terminate().unwrap();
    assert_eq!(first, second);
    assert!(first.terminated());
    assert_eq!(worker.join().unwrap(), first);
}

#[test]
fn w3_terminate_after_a_normal_exit_returns_the_normal_status() {
    let worker: Worker<(), ()> = Worker::spawn(|_ctx| 5).unwrap();
    let events: Vec<_> = worker.events().collect();
    assert_eq!(exit_code(events.last().unwrap()), (5, false));
    let status = worker.terminate().unwrap();
    assert_eq!((status.code(), status.terminated()), (5, false));
}

#[test]
fn w3_w8_a_computing_worker_stops_when_it_sees_is_terminating() {
    let worker: Worker<(), &str> = Worker::spawn(|ctx| -> Result<(), Error> {
        ctx.post_message("computing")?;
        let mut spins = 0u64;
        while !ctx.is_terminating() {
            spins = spins.wrapping_add(1); // a CPU loop: only the flag can stop it
            std::hint::spin_loop();
        }
        assert!(ctx.is_terminating());
        Ok(())
    })
    .unwrap();
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Message("computing")));
    let status = worker.terminate().unwrap();
    assert_eq!((status.code(), status.terminated()), (1, true));
}

#[test]
fn w4_posting_to_an_exited_worker_returns_closed_and_never_panics() {
    let worker: Worker<String, ()> = Worker::spawn(|_ctx| ()).unwrap();
    let events: Vec<_> = worker.events().collect();
    assert_eq!(exit_code(events.last().unwrap()), (0, false));
    assert_eq!(worker.state(), WorkerState::Exited);
    assert_eq!(worker.post_message("hello?".into()), Err(Error::Closed));
    assert!(worker.try_post_message("again".into()).is_err());
}

#[test]
fn w4_messages_to_a_worker_arrive_in_order() {
    const MESSAGES: u32 = if cfg!(miri) { 100 } else { 1000 };
    let worker: Worker<u32, u64> = Worker::spawn(|ctx| -> Result<(), Error> {
        let mut sum = 0u64;
        for expected in 0..MESSAGES {
            let n = ctx.recv()?;
            assert_eq!(n, expected);
            sum += u64::from(n);
        }
        ctx.post_message(sum)
    })
    .unwrap();
    for n in 0..MESSAGES {
        worker.post_message(n).unwrap();
    }
    let events: Vec<_> = worker.events().collect();
    assert_eq!(
        events[1],
        WorkerEvent::Message((0..u64::from(MESSAGES)).sum())
    );
    assert_eq!(exit_code(&events[2]), (0, false));
}

#[test]
fn w5_a_vec_moves_into_and_out_of_a_worker_without_copying() {
    let bytes = vec![3u8; 1 << 16];
    let address = bytes.as_ptr() as usize;
    let worker: Worker<Vec<u8>, (usize, Vec<u8>)> = Worker::spawn(|ctx| -> Result<(), Error> {
        let bytes: Vec<u8> = ctx.recv()?;
        ctx.post_message((bytes.as_ptr() as usize, bytes))
    })
    .unwrap();
    worker.post_message(bytes).unwrap();
    let events: Vec<_> = worker.events().collect();
    match &events[1] {
        WorkerEvent::Message((seen_in_worker, back)) => {
            assert_eq!(*seen_in_worker, address);
            assert_eq!(back.as_ptr() as usize, address);
        }
        other => panic!("expected the bytes back, got {other:?}"),
    }
}

#[test]
fn w5_a_shared_buffer_given_to_a_worker_is_shared() {
    let buffer = SharedBuffer::new(8).unwrap();
    let worker: Worker<(), ()> = Worker::builder()
        .worker_data(buffer.clone())
        .spawn(|ctx| atomics::store(&Int32Array::new(ctx.worker_data())?, 1, 99).map(drop))
        .unwrap();
    assert!(worker.join().unwrap().success());
    assert_eq!(atomics::load(&Int32Array::new(&buffer).unwrap(), 1), Ok(99));
}

#[test]
fn w7_worker_data_moves_in_and_name_sets_the_os_thread_name() {
    let data = vec![1u32, 2, 3];
    let address = data.as_ptr() as usize;
    let worker: Worker<(), (Option<String>, usize, u32)> = Worker::builder()
        .name("cruncher-7")
        .stack_size(4 << 20)
        .worker_data(data)
        .spawn(|mut ctx| {
            let data = ctx.take_worker_data();
            let name = std::thread::current().name().map(str::to_owned);
            ctx.post_message((name, data.as_ptr() as usize, data.iter().sum()))
        })
        .unwrap();
    let events: Vec<_> = worker.events().collect();
    assert_eq!(
        events[1],
        WorkerEvent::Message((Some("cruncher-7".to_owned()), address, 6))
    );
}

#[test]
fn w7_a_name_with_a_nul_byte_is_an_error_not_a_panic() {
    let result: Result<Worker<(), ()>, _> = Worker::builder().name("bad\0name").spawn(|_ctx| ());
    assert!(matches!(result, Err(Error::SpawnFailed { .. })));
}

#[test]
fn w8_a_worker_knows_its_id_that_it_is_not_main_and_its_port() {
    assert!(worker::is_main_thread());
    assert_eq!(worker::thread_id(), 0);
    let worker: Worker<(), (u64, u64, bool, bool)> = Worker::spawn(|ctx| {
        ctx.post_message((
            ctx.thread_id(),
            worker::thread_id(),
            ctx.is_main_thread(),
            worker::is_main_thread(),
        ))
    })
    .unwrap();
    let other: Worker<(), ()> = Worker::spawn(|_ctx| ()).unwrap();
    let id = worker.thread_id();
    assert_ne!(id, 0);
    assert_ne!(id, other.thread_id());
    let events: Vec<_> = worker.events().collect();
    assert_eq!(events[1], WorkerEvent::Message((id, id, false, false)));
}

#[test]
fn event_timeouts_and_try_recv_event_do_not_block() {
    let worker: Worker<u8, u8> = Worker::spawn(|ctx| -> Result<(), Error> {
        let n = ctx.recv()?;
        ctx.post_message(n + 1)
    })
    .unwrap();
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
    assert_eq!(worker.try_recv_event(), None); // the worker waits for us
    assert_eq!(
        worker.recv_event_timeout(Duration::from_millis(5)),
        Err(Error::Timeout)
    );
    worker.post_message(1).unwrap();
    assert_eq!(
        worker.recv_event_timeout(Duration::from_secs(60)),
        Ok(WorkerEvent::Message(2))
    );
    assert!(worker.join().unwrap().success());
}

#[test]
fn dropping_an_unjoined_handle_terminates_the_worker() {
    // The worker reports through a channel of its own when its closure has ended.
    let (report, reports): (MessagePort<&str>, _) = MessageChannel::new();
    let worker: Worker<u8, ()> = Worker::builder()
        .worker_data(report)
        .spawn(|ctx| {
            let result = ctx.recv();
            let _ = ctx.worker_data().post_message(match result {
                Err(Error::Terminated) => "terminated",
                Err(Error::Closed) => "closed",
                _ => "other",
            });
        })
        .unwrap();
    assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
    drop(worker);
    let said = reports.recv().unwrap();
    assert!(said == "terminated" || said == "closed", "{said}");
}

#[test]
fn a_thousand_workers_spawned_and_joined_in_sequence() {
    const WORKERS: u64 = if cfg!(miri) { 10 } else { 1000 };
    let mut total = 0u64;
    for i in 0..WORKERS {
        let worker: Worker<(), u64> = Worker::builder()
            .worker_data(i)
            .spawn(|ctx| ctx.post_message(ctx.worker_data() * 2))
            .unwrap();
        for event in worker.events() {
            if let WorkerEvent::Message(n) = event {
                total += n;
            }
        }
        assert!(worker.join().unwrap().success());
    }
    assert_eq!(total, (WORKERS - 1) * WORKERS);
}

/// A value whose `Drop` panics: user code failing while the worker ends.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("PanicsOnDrop dropped (as the test wants)");
    }
}

/// Fault: a worker that panics with a payload whose `Drop` panics lost its thread while the
/// runtime dropped the payload, before `EXITED` was set: the parent never saw `Exit`, and
/// `events`/`join` hung. Decided: `Exit` is delivered on every path. Checks W2 (a panic is
/// `Error` then `Exit` with code 1) and W9 (`Exit` on every path), W1 (`Exit` last).
// docs/semantics.md W1, W2, W9
#[test]
fn w2_w9_a_panic_payload_that_panics_on_drop_still_ends_with_exit() {
    let (events, status, joined) = within_watchdog(
        "the events and join of a worker whose panic payload panics on drop",
        || {
            let worker: Worker<(), ()> =
                Worker::spawn(|_ctx| -> () { std::panic::panic_any(PanicsOnDrop) }).unwrap();
            let (events, status) = events_to_exit(&worker);
            (events, status, worker.join())
        },
    );
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0], WorkerEvent::Online);
    assert!(
        matches!(&events[1], WorkerEvent::Error(error) if error.is_panic()),
        "{events:?}"
    );
    assert_eq!((status.code(), status.terminated()), (1, false));
    assert_eq!(joined, Ok(status));
}

/// Fault: a `worker_data` whose `Drop` panics killed the worker thread before `EXITED` was
/// set when `terminate()` landed before the closure started (the runtime dropped the unused
/// context outside any guard): `terminate()` and `join()` hung. Decided: `Exit` is delivered on
/// every path. Repeated so that `terminate()` lands both before and after the closure starts;
/// either way `terminate()`, the events and `join()` return, `Exit` (terminated) comes last.
// docs/semantics.md W1, W3, W9
#[test]
fn w3_w9_terminate_returns_when_worker_data_panics_on_drop() {
    for round in 0..TERMINATE_ROUNDS {
        let (terminated, events, status, joined) = within_watchdog(
            &format!("round {round}: terminate, events or join of a worker whose worker_data panics on drop"),
            || {
                let worker: Worker<u8, ()> = Worker::builder()
                    .worker_data(PanicsOnDrop)
                    .spawn(|ctx| ctx.recv().map(drop))
                    .unwrap();
                let terminated = worker.terminate();
                let (events, status) = events_to_exit(&worker);
                (terminated, events, status, worker.join())
            },
        );
        assert_eq!(terminated, Ok(status), "round {round}: {events:?}");
        assert_eq!(
            (status.code(), status.terminated()),
            (1, true),
            "round {round}"
        );
        assert_eq!(joined, Ok(status), "round {round}");
    }
}

/// Fault: a worker terminated before its closure started still reported `Online` (Node
/// reports no `online` then). Decided: match Node. Repeated so that `terminate()` right after
/// `spawn` lands both before and after the closure starts: `Online` is reported exactly when
/// the closure ran, and the status is terminated either way.
// docs/semantics.md W1, W9
#[test]
fn w9_online_is_reported_exactly_when_the_closure_ran() {
    let mut never_ran = 0;
    for round in 0..TERMINATE_ROUNDS {
        let (ran, events, status) = within_watchdog(&format!("round {round}"), || {
            let started = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&started);
            let worker: Worker<u8, ()> = Worker::spawn(move |ctx| {
                flag.store(true, Ordering::SeqCst);
                ctx.recv().map(drop)
            })
            .unwrap();
            let terminated = worker.terminate().unwrap();
            let (events, status) = events_to_exit(&worker);
            assert_eq!(terminated, status);
            (started.load(Ordering::SeqCst), events, status)
        });
        let online = events.contains(&WorkerEvent::Online);
        assert_eq!(
            online, ran,
            "round {round}: Online reported: {online}, closure ran: {ran}: {events:?}"
        );
        assert_eq!(
            (status.code(), status.terminated()),
            (1, true),
            "round {round}"
        );
        if !ran {
            never_ran += 1;
        }
    }
    eprintln!(
        "terminate() landed before the closure started in {never_ran} of {TERMINATE_ROUNDS} rounds"
    );
}

/// Fault: after `terminate()`, a worker that unwrapped the `Terminated` error (a panic) was
/// reported with `Error` before `Exit`. Decided: after `terminate()` only `Exit` (code 1,
/// terminated) is reported, whatever the closure does with the error, as with `?`.
// docs/semantics.md W3, W9
#[test]
fn w9_a_worker_that_unwraps_terminated_reports_only_exit() {
    let (terminated, events, status) = within_watchdog("terminating a worker in recv", || {
        let worker: Worker<u8, ()> = Worker::spawn(|ctx| {
            let _: u8 = ctx.recv().expect("the parent never posts");
        })
        .unwrap();
        assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
        let terminated = worker.terminate();
        let (events, status) = events_to_exit(&worker);
        (terminated, events, status)
    });
    assert_eq!(
        events,
        [WorkerEvent::Exit(status)],
        "only Exit after Online"
    );
    assert_eq!((status.code(), status.terminated()), (1, true));
    assert_eq!(terminated, Ok(status));
}

/// An exit code that is only decided once the worker's thread has been interrupted: its
/// `into_exit_code` runs after the closure returned, says so (sets the flag), and waits for
/// `terminate()`.
struct SevenOnceInterrupted(Arc<AtomicBool>);

impl IntoExitCode for SevenOnceInterrupted {
    fn into_exit_code(self) -> Result<i32, String> {
        self.0.store(true, Ordering::SeqCst);
        while !atomics::is_interrupted() {
            thread::yield_now();
        }
        Ok(7)
    }
}

/// Fault: a closure that had returned normally was reported as terminated when `terminate()`
/// landed between its return and the runtime storing its status. Decided: the real outcome
/// wins. The closure here returns before `terminate()` is called (the parent waits until its
/// exit code is being converted, which waits for the interrupt), so `Exit` carries code 7, not
/// terminated, and `terminate()` returns that status.
// docs/semantics.md W3, W9
#[test]
fn w9_a_closure_that_returned_before_terminate_keeps_its_status() {
    let (terminated, events, status) =
        within_watchdog("terminating a worker that returned", || {
            let converting = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&converting);
            let worker: Worker<(), ()> =
                Worker::spawn(move |_ctx| SevenOnceInterrupted(flag)).unwrap();
            assert_eq!(worker.recv_event(), Ok(WorkerEvent::Online));
            while !converting.load(Ordering::SeqCst) {
                thread::yield_now(); // until the closure has returned
            }
            let terminated = worker.terminate();
            let (events, status) = events_to_exit(&worker);
            (terminated, events, status)
        });
    assert_eq!(events, [WorkerEvent::Exit(status)]);
    assert_eq!((status.code(), status.terminated()), (7, false));
    assert_eq!(terminated, Ok(status));
}
