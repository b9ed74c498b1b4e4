//! Message ports: docs/semantics.md W4 (order, posting to a closed port), W5 (transfer = move),
//! W6 (entangled pair, close, receiveMessageOnPort), plus capacity, timeouts and a stress run.
#![cfg(not(loom))]

mod common;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::within_watchdog;

use sharedbuf::atomics::Interrupter;
use sharedbuf::channel::PostError;
use sharedbuf::{atomics, Error, Int32Array, MessageChannel, SharedBuffer};

#[test]
fn w4_messages_arrive_in_send_order_both_ways() {
    let (a, b) = MessageChannel::new();
    for i in 0..10 {
        a.post_message(i).unwrap();
        b.post_message(100 + i).unwrap();
    }
    let at_b: Vec<i32> = b.try_iter().collect();
    let at_a: Vec<i32> = a.try_iter().collect();
    assert_eq!(at_b, (0..10).collect::<Vec<_>>());
    assert_eq!(at_a, (100..110).collect::<Vec<_>>());
}

#[test]
fn w4_posting_to_a_closed_port_returns_closed_and_never_panics() {
    let (a, b) = MessageChannel::<String>::new();
    b.close();
    assert_eq!(a.post_message("late".into()), Err(Error::Closed));
    assert_eq!(b.post_message("late".into()), Err(Error::Closed));
    match a.try_post_message("given back".into()) {
        Err(PostError::Closed(message)) => assert_eq!(message, "given back"),
        other => panic!("expected Closed, got {other:?}"),
    }
    match a.post_message_timeout("again".into(), Duration::from_secs(60)) {
        Err(PostError::Closed(message)) => assert_eq!(message, "again"),
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[test]
fn w4_posting_after_the_other_port_was_dropped_returns_closed() {
    let (a, b) = MessageChannel::<u8>::new();
    drop(b);
    assert!(a.is_closed());
    assert_eq!(a.post_message(1), Err(Error::Closed));
    assert_eq!(a.recv(), Err(Error::Closed));
}

#[test]
fn w6_close_on_one_port_closes_both_and_keeps_earlier_messages() {
    let (a, b) = MessageChannel::new();
    a.post_message(1).unwrap();
    a.post_message(2).unwrap();
    b.post_message(10).unwrap();
    a.close();
    assert!(a.is_closed() && b.is_closed());
    // Posted before the close: still delivered, in order, in both directions.
    assert_eq!(b.recv(), Ok(1));
    assert_eq!(b.recv_timeout(Duration::from_secs(60)), Ok(2));
    assert_eq!(a.recv(), Ok(10));
    // Then the closed, drained port says so instead of blocking.
    assert_eq!(b.recv(), Err(Error::Closed));
    assert_eq!(a.recv_timeout(Duration::from_secs(60)), Err(Error::Closed));
    assert_eq!(b.try_recv(), None);
    a.close(); // idempotent
}

/// `len` / `is_empty` (W4): the messages waiting for this port, not for the other; they stay
/// counted after a close until received, and a dropped receiving port leaves none.
#[test]
fn w4_len_counts_the_messages_waiting_for_this_port() {
    let (a, b) = MessageChannel::with_capacity(4).unwrap();
    assert!(a.is_empty() && b.is_empty());
    for i in 0..4 {
        a.post_message(i).unwrap();
        assert_eq!((b.len(), a.len()), (i + 1, 0));
    }
    assert_eq!(
        a.try_post_message(9).map_err(|e| e.error()),
        Err(Error::Full)
    );
    assert_eq!(b.len(), b.capacity());
    b.post_message(10).unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(b.recv(), Ok(0));
    assert_eq!(b.len(), 3);
    a.close();
    assert_eq!(b.len(), 3, "a close keeps what was posted before");
    assert_eq!(b.try_iter().collect::<Vec<_>>(), [1, 2, 3]);
    assert!(b.is_empty());
    drop(a); // its queue (one message) is dropped with it
    assert_eq!(b.len(), 0);
}

/// `len` under traffic: sampled by a third thread while one thread posts and another receives
/// through a small ring, it never exceeds the capacity, and ends at zero.
#[test]
fn w4_len_stays_within_the_capacity_while_others_post_and_receive() {
    const MESSAGES: u32 = if cfg!(miri) { 200 } else { 20_000 };
    let (a, b) = MessageChannel::with_capacity(8).unwrap();
    let capacity = b.capacity();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..MESSAGES {
                a.post_message(i).unwrap();
            }
        });
        s.spawn(|| {
            for i in 0..MESSAGES {
                assert_eq!(b.recv(), Ok(i));
            }
            done.store(true, Ordering::SeqCst);
        });
        while !done.load(Ordering::SeqCst) {
            let len = b.len();
            assert!(len <= capacity, "len {len} past the capacity {capacity}");
        }
    });
    assert!(b.is_empty() && a.is_empty());
}

#[test]
fn w6_try_recv_takes_the_oldest_message_or_none() {
    let (a, b) = MessageChannel::new();
    assert_eq!(b.try_recv(), None);
    a.post_message("first").unwrap();
    a.post_message("second").unwrap();
    assert_eq!(b.try_recv(), Some("first"));
    assert_eq!(b.try_recv(), Some("second"));
    assert_eq!(b.try_recv(), None);
}

#[test]
fn w6_close_wakes_a_receiver_waiting_in_recv() {
    let (a, b) = MessageChannel::<u32>::new();
    let started = Arc::new(Barrier::new(2));
    let receiver = {
        let started = Arc::clone(&started);
        thread::spawn(move || {
            started.wait();
            b.recv()
        })
    };
    started.wait();
    a.close();
    assert_eq!(receiver.join().unwrap(), Err(Error::Closed));
}

#[test]
fn w6_close_wakes_a_sender_waiting_on_a_full_port() {
    let (a, b) = MessageChannel::with_capacity(2).unwrap();
    a.post_message(1u8).unwrap();
    a.post_message(2).unwrap();
    let started = Arc::new(Barrier::new(2));
    let sender = {
        let started = Arc::clone(&started);
        thread::spawn(move || {
            started.wait();
            let result = a.post_message(3); // full: waits until the close
            (result, a)
        })
    };
    started.wait();
    b.close();
    let (result, _a) = sender.join().unwrap();
    assert_eq!(result, Err(Error::Closed));
    // The two posted before the close are still there; the third never was.
    assert_eq!(b.try_iter().collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn iter_ends_when_the_channel_is_closed_and_drained() {
    let (a, b) = MessageChannel::new();
    let consumer = thread::spawn(move || b.iter().collect::<Vec<u64>>());
    for i in 0..100 {
        a.post_message(i).unwrap();
    }
    drop(a); // closes
    assert_eq!(consumer.join().unwrap(), (0..100).collect::<Vec<_>>());
}

#[test]
fn into_iter_and_for_loops_work_on_ports() {
    let (a, b) = MessageChannel::new();
    a.post_message('x').unwrap();
    a.post_message('y').unwrap();
    a.close();
    let mut seen = String::new();
    for c in &b {
        seen.push(c);
    }
    assert_eq!(seen, "xy");
    assert_eq!(b.into_iter().next(), None);
}

#[test]
fn capacity_rounds_up_to_a_power_of_two_and_rejects_absurd_sizes() {
    assert_eq!(
        MessageChannel::<u8>::with_capacity(0).unwrap().0.capacity(),
        2
    );
    assert_eq!(
        MessageChannel::<u8>::with_capacity(3).unwrap().0.capacity(),
        4
    );
    assert_eq!(MessageChannel::<u8>::new().0.capacity(), 1024);
    // A count of messages: its error names messages, not bytes (ExceedsMax is for lengths).
    let too_many = MessageChannel::<u8>::with_capacity((1 << 24) + 1).unwrap_err();
    assert!(
        matches!(too_many, Error::InvalidParameter { value, .. } if value == (1 << 24) + 1),
        "{too_many:?}"
    );
    assert!(too_many.to_string().contains("messages"), "{too_many}");
    assert!(!too_many.to_string().contains("bytes"), "{too_many}");
    assert!(matches!(
        MessageChannel::<u8>::with_capacity(usize::MAX),
        Err(Error::InvalidParameter { .. })
    ));
}

#[test]
fn a_full_port_gives_the_message_back_instead_of_dropping_it() {
    let (a, b) = MessageChannel::with_capacity(2).unwrap();
    a.try_post_message(1).unwrap();
    a.try_post_message(2).unwrap();
    match a.try_post_message(3) {
        Err(PostError::Full(message)) => assert_eq!(message, 3),
        other => panic!("expected Full, got {other:?}"),
    }
    match a.post_message_timeout(4, Duration::from_millis(10)) {
        Err(e @ PostError::Timeout(_)) => {
            assert_eq!(e.error(), Error::Timeout);
            assert_eq!(e.into_message(), 4);
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(b.try_recv(), Some(1));
    a.try_post_message(3).unwrap();
    assert_eq!(b.try_iter().collect::<Vec<_>>(), [2, 3]);
}

/// Messages through a port of capacity 2; fewer under Miri (as every count below marked
/// `cfg!(miri)`: Miri interprets the threads about a thousand times slower).
const HANDOFFS: u32 = if cfg!(miri) { 100 } else { 1000 };

#[test]
fn a_full_port_makes_the_sender_wait_for_room() {
    let (a, b) = MessageChannel::with_capacity(2).unwrap();
    let sender = thread::spawn(move || {
        for i in 0..HANDOFFS {
            a.post_message(i).unwrap(); // waits whenever two are unread
        }
        a
    });
    let received: Vec<u32> = (0..HANDOFFS).map(|_| b.recv().unwrap()).collect();
    assert_eq!(received, (0..HANDOFFS).collect::<Vec<_>>());
    drop(sender.join().unwrap());
}

#[test]
fn recv_timeout_times_out_on_an_empty_port_and_gets_a_later_message() {
    let (a, b) = MessageChannel::<u8>::new();
    assert_eq!(b.recv_timeout(Duration::ZERO), Err(Error::Timeout));
    assert_eq!(
        b.recv_timeout(Duration::from_millis(5)),
        Err(Error::Timeout)
    );
    let started = Arc::new(Barrier::new(2));
    let sender = {
        let started = Arc::clone(&started);
        thread::spawn(move || {
            started.wait();
            a.post_message(9).unwrap();
            a
        })
    };
    started.wait();
    assert_eq!(b.recv_timeout(Duration::from_secs(60)), Ok(9));
    drop(sender.join().unwrap());
}

#[test]
fn w3_recv_and_a_full_post_return_terminated_on_an_interrupted_thread() {
    let (a, b) = MessageChannel::<u8>::with_capacity(2).unwrap();
    let interrupter = Interrupter::new();
    let remote = interrupter.clone();
    let started = Arc::new(Barrier::new(2));
    let blocked = {
        let started = Arc::clone(&started);
        thread::spawn(move || {
            let _installed = remote.install();
            started.wait();
            let received = b.recv(); // nobody posts: only the interrupt ends this
            b.post_message(1).unwrap();
            b.post_message(2).unwrap();
            let posted = b.post_message(3); // full: only the interrupt ends this too
            (received, posted)
        })
    };
    started.wait();
    interrupter.interrupt();
    let (received, posted) = blocked.join().unwrap();
    assert_eq!(received, Err(Error::Terminated));
    assert_eq!(posted, Err(Error::Terminated));
    assert_eq!(a.try_iter().collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn messages_left_in_a_dropped_channel_are_dropped_exactly_once() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (a, b) = MessageChannel::with_capacity(8).unwrap();
    for _ in 0..5 {
        a.post_message(Counted(Arc::clone(&drops))).unwrap();
    }
    drop(b.recv().unwrap()); // one received and dropped by the receiver
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(a);
    drop(b);
    assert_eq!(drops.load(Ordering::SeqCst), 5);
}

#[test]
fn w5_a_posted_vec_moves_without_copying() {
    let (a, b) = MessageChannel::new();
    let bytes = vec![1u8; 4096];
    let address = bytes.as_ptr();
    a.post_message(bytes).unwrap();
    let received: Vec<u8> = b.recv().unwrap();
    assert_eq!(received.as_ptr(), address);
    assert!(received.iter().all(|&b| b == 1));
}

#[test]
fn w5_a_posted_shared_buffer_is_shared_not_copied() {
    let (a, b) = MessageChannel::new();
    let buffer = SharedBuffer::new(8).unwrap();
    a.post_message(buffer.clone()).unwrap();
    let theirs: SharedBuffer = b.recv().unwrap();
    assert!(theirs.same_memory(&buffer));
    atomics::store(&Int32Array::new(&theirs).unwrap(), 1, 77).unwrap();
    assert_eq!(atomics::load(&Int32Array::new(&buffer).unwrap(), 1), Ok(77));
}

/// W4 under load: 1,000,000 messages across threads, checked for loss, duplication and order.
#[test]
fn stress_a_million_messages_arrive_complete_and_in_order() {
    const N: u64 = if cfg!(miri) { 300 } else { 1_000_000 };
    let (a, b) = MessageChannel::new();
    let sender = thread::spawn(move || {
        let mut checksum = 0u64;
        for i in 0..N {
            let value = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            checksum = checksum.wrapping_add(value);
            a.post_message((i, value)).unwrap();
        }
        checksum
    });
    let mut checksum = 0u64;
    for expected in 0..N {
        let (i, value) = b.recv().unwrap();
        assert_eq!(i, expected, "message out of order or lost");
        assert_eq!(value, i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        checksum = checksum.wrapping_add(value);
    }
    assert_eq!(checksum, sender.join().unwrap());
    assert_eq!(b.recv(), Err(Error::Closed)); // the sender's port is gone: nothing extra
}

/// W4 with two senders sharing one port: each sender's messages stay in its order, none lost.
#[test]
fn stress_two_senders_keep_their_own_order() {
    const N: u32 = if cfg!(miri) { 200 } else { 100_000 };
    let (a, b) = MessageChannel::with_capacity(64).unwrap();
    let a = Arc::new(a);
    let senders: Vec<_> = (0..2u32)
        .map(|id| {
            let a = Arc::clone(&a);
            thread::spawn(move || {
                for i in 0..N {
                    a.post_message((id, i)).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0u32; 2];
    for _ in 0..2 * N {
        let (id, i) = b.recv().unwrap();
        assert_eq!(i, next[id as usize], "sender {id} out of order");
        next[id as usize] += 1;
    }
    for sender in senders {
        sender.join().unwrap();
    }
    assert_eq!(next, [N, N]);
    assert_eq!(b.try_recv(), None);
}

/// Counts its drops; the one made with `panics` panics in its `Drop`.
struct DropCounted {
    drops: Arc<AtomicUsize>,
    panics: bool,
}

impl Drop for DropCounted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        if self.panics {
            panic!("DropCounted panics when dropped (as the test wants)");
        }
    }
}

/// Fault: dropping a channel stopped at the first queued message whose `Drop` panicked and
/// leaked the rest. Decided: every queued message is dropped; the first panic propagates
/// afterwards.
// docs/semantics.md W6
#[test]
fn every_queued_message_is_dropped_even_when_one_drop_panics() {
    const MESSAGES: usize = 10;
    let drops = Arc::new(AtomicUsize::new(0));
    let (a, b) = MessageChannel::with_capacity(16).unwrap();
    for k in 0..MESSAGES {
        a.post_message(DropCounted {
            drops: Arc::clone(&drops),
            panics: k == 3,
        })
        .unwrap();
    }
    let dropped = panic::catch_unwind(AssertUnwindSafe(move || {
        drop(a);
        drop(b);
    }));
    assert!(dropped.is_err(), "the panic of message 3's Drop propagates");
    assert_eq!(drops.load(Ordering::SeqCst), MESSAGES, "messages dropped");
    assert_eq!(Arc::strong_count(&drops), 1, "messages leaked");
}

/// Fault: messages posted to a port whose receiving side was dropped stayed queued (and
/// alive) until the sending side was dropped too. Decided: when a port is dropped, the
/// messages queued for it are dropped at once (as Node discards messages to a closed port),
/// and the sender's next post fails with `Closed`. Messages queued for the surviving port,
/// posted before the drop, are still delivered (W6).
// docs/semantics.md W4, W6
#[test]
fn w6_messages_for_a_dropped_port_are_dropped_at_once() {
    let (for_b, for_a) = (Arc::new(()), Arc::new(()));
    let (a, b) = MessageChannel::with_capacity(8).unwrap();
    for _ in 0..5 {
        a.post_message(Arc::clone(&for_b)).unwrap();
    }
    b.post_message(Arc::clone(&for_a)).unwrap();
    drop(b);
    assert_eq!(
        Arc::strong_count(&for_b),
        1,
        "messages queued for the dropped port are still alive"
    );
    assert_eq!(a.post_message(Arc::clone(&for_b)), Err(Error::Closed));
    assert_eq!(
        Arc::strong_count(&for_b),
        1,
        "the refused message was dropped"
    );
    let delivered = a
        .try_recv()
        .expect("the message posted to `a` before the drop");
    assert!(Arc::ptr_eq(&delivered, &for_a));
    assert_eq!(a.try_recv(), None);
}

/// Rounds of the linearizability checks run in short bursts, each on fresh threads that start
/// together: every start is a fresh chance for the two threads to overlap (on a loaded machine
/// one long run may never overlap at all).
const BURSTS: usize = if cfg!(miri) { 3 } else { 500 };
const ROUNDS_PER_BURST: usize = if cfg!(miri) { 20 } else { 1_000 };

/// Fault: `try_recv` answered "empty" while a finished message was queued, when the oldest
/// slot was claimed by a post on another thread that had not finished writing it. Decided:
/// `try_recv` returns `None` only when no message is there. The linearizability check of
/// crossbeam's and std's channel suites: two threads each post a message on one port and then
/// `try_recv` on the other; each thread's own post has returned before its `try_recv`, and each
/// takes at most one message per round, so there is always a message for it. (On a miss it
/// takes one with a blocking `recv`, so the rounds go on and the misses are counted.)
// docs/semantics.md W6
#[test]
fn w6_try_recv_never_misses_a_message_whose_post_returned() {
    fn burst() -> usize {
        let (a, b) = MessageChannel::<usize>::with_capacity(2).unwrap();
        let misses = AtomicUsize::new(0);
        let start = Barrier::new(2);
        thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    start.wait();
                    for round in 0..ROUNDS_PER_BURST {
                        a.post_message(round).unwrap();
                        if b.try_recv().is_none() {
                            misses.fetch_add(1, Ordering::Relaxed);
                            b.recv().unwrap();
                        }
                    }
                });
            }
        });
        assert_eq!(b.try_recv(), None, "every message was taken");
        misses.into_inner()
    }
    let misses = within_watchdog("the try_recv bursts", || {
        (0..BURSTS).map(|_| burst()).sum::<usize>()
    });
    assert_eq!(
        misses,
        0,
        "try_recv answered None in {misses} of {} rounds although the caller's own post had \
         returned",
        2 * BURSTS * ROUNDS_PER_BURST
    );
}

/// The same fault seen through `try_iter`: a thread posts a message and at once collects what
/// `try_iter` gives (it is the only receiver) while another thread keeps posting; its own
/// message, whose post returned, must always be among what `try_iter` collects.
// docs/semantics.md W6
#[test]
fn w6_try_iter_collects_every_message_whose_post_returned() {
    /// Who posted a message: the thread making noise, or the one that checks.
    #[derive(Debug, PartialEq)]
    enum From {
        Noise,
        Checker(usize),
    }
    fn burst() -> usize {
        // At most two noise messages and one of the checker's are queued: the ring never
        // fills, so no post waits for room.
        let (a, b) = MessageChannel::<From>::with_capacity(4).unwrap();
        let noise_queued = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let start = Barrier::new(2);
        thread::scope(|s| {
            s.spawn(|| {
                start.wait();
                while !stop.load(Ordering::SeqCst) {
                    if noise_queued.load(Ordering::SeqCst) < 2 {
                        noise_queued.fetch_add(1, Ordering::SeqCst);
                        a.post_message(From::Noise).unwrap();
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
            let checker = s.spawn(|| {
                start.wait();
                let mut misses = 0;
                // Takes the noise out of the way; true once `Checker(k)` came.
                let is_mine = |message: From, k: usize| match message {
                    From::Noise => {
                        noise_queued.fetch_sub(1, Ordering::SeqCst);
                        false
                    }
                    From::Checker(j) => {
                        assert_eq!(j, k, "the checker's messages arrive in order");
                        true
                    }
                };
                for k in 0..ROUNDS_PER_BURST {
                    a.post_message(From::Checker(k)).unwrap();
                    if !b.try_iter().any(|message| is_mine(message, k)) {
                        misses += 1;
                        while !is_mine(b.recv().unwrap(), k) {}
                    }
                }
                stop.store(true, Ordering::SeqCst);
                misses
            });
            checker.join().unwrap()
        })
    }
    let misses = within_watchdog("the try_iter bursts", || {
        (0..BURSTS).map(|_| burst()).sum::<usize>()
    });
    assert_eq!(
        misses,
        0,
        "try_iter ended before a message whose post had returned in {misses} of {} rounds",
        BURSTS * ROUNDS_PER_BURST
    );
}
