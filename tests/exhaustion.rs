//! Every layer that asks the system for a thread, a descriptor, address space or a process
//! gets a clear `Err` when the system says no, loses nothing it already held, and works again
//! once the limit is lifted (docs/semantics.md B1, B2, A14, W7, P7, P12, X6, Q10).
//!
//! Each scenario runs in a child process (this binary again, with [`ROLE`] naming it) that
//! lowers its own limits with `setrlimit`: `RLIMIT_AS` just above what it already maps (a new
//! thread's stack, or a buffer's mapping, then does not fit: `pthread_create` says `EAGAIN`,
//! `mmap` says `ENOMEM`), or `RLIMIT_NOFILE` at the lowest free descriptor number (every new
//! descriptor: `EMFILE`). `RLIMIT_NPROC` would not do for threads: it does not apply to root.
//! The children run with [`GLIBC_TUNABLES`] set so that nothing glibc caches gives room back.
//! The child lifts the limit again before it checks the recovery. Its exit status is the
//! verdict; a watchdog kills a child that hangs.
//!
//! `harness = false`: `main` calls `process::init` first, as every program using process
//! workers must.
#![cfg(target_os = "linux")]

#[cfg(feature = "redis")]
mod queue_support;
mod scenarios;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scenarios::{Runner, Scenario};
use sharedbuf::atomics::WaitAsync;
use sharedbuf::pool::{BuildError, MaxQueue, PoolError, TaskError, TaskHandle, WorkerPool};
use sharedbuf::process::{self, Entry, ProcessContext, ProcessEvent, ProcessWorker};
use sharedbuf::{atomics, Error, Int32Array, SharedBuffer, WaitResult, Worker};

/// Set in a child: the scenario it runs.
const ROLE: &str = "SHAREDBUF_TEST_EXHAUSTION_ROLE";
/// A hang detector, not a speed measurement.
const WATCHDOG: Duration = Duration::from_secs(20);
/// How long a child waits for something that should take microseconds: a bound, so a
/// regression fails instead of hanging.
const BOUND: Duration = Duration::from_secs(5);

/// Answers one number with the next.
fn increment(ctx: ProcessContext<u32, u32>) -> Result<(), Error> {
    let n = ctx.recv()?;
    ctx.post_message(&(n + 1))
}
static INCREMENT: Entry<u32, u32> = Entry::new("increment", increment);

/// A lowered limit, restored (lifted) on drop.
struct Limit {
    resource: libc::__rlimit_resource_t,
    old: libc::rlimit,
}

impl Limit {
    fn set(resource: libc::__rlimit_resource_t, soft: u64) -> Limit {
        let mut old = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `old` is a valid rlimit to write to.
        assert_eq!(unsafe { libc::getrlimit(resource, &mut old) }, 0);
        let new = libc::rlimit {
            rlim_cur: soft,
            rlim_max: old.rlim_max,
        };
        // SAFETY: `new` is a valid rlimit; lowering the soft limit is always allowed.
        assert_eq!(unsafe { libc::setrlimit(resource, &new) }, 0);
        Limit { resource, old }
    }

    /// Address space: what is mapped now and `margin` more (too little for a thread's stack
    /// or a buffer of more than `margin`, enough for small allocations).
    fn address_space(margin: u64) -> Limit {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmSize:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmSize in /proc/self/status");
        Limit::set(libc::RLIMIT_AS, kib * 1024 + margin)
    }

    /// Descriptors: none more (the limit is the lowest free number).
    fn descriptors() -> Limit {
        Limit::descriptors_more(0)
    }

    /// Descriptors: `more` more (the limit is `more` past the lowest free number; the numbers
    /// above it are free in these children).
    fn descriptors_more(more: u64) -> Limit {
        // SAFETY: dup of stdin (open in every child); the copy is closed at once.
        let free = unsafe { libc::dup(0) };
        assert!(free >= 0);
        // SAFETY: `free` is the descriptor just made, owned by nobody else.
        unsafe { libc::close(free) };
        Limit::set(libc::RLIMIT_NOFILE, free as u64 + more)
    }
}

impl Drop for Limit {
    fn drop(&mut self) {
        // SAFETY: `old` is the limit read before: raising the soft limit back up to it is
        // allowed (it is at most the hard limit).
        assert_eq!(unsafe { libc::setrlimit(self.resource, &self.old) }, 0);
    }
}

/// glibc settings of a child that make the address-space limit bite where it should: no stack
/// cache (an exited thread's stack would serve the next thread without a new mapping), and one
/// malloc arena (a thread's first `malloc` would otherwise map a 64 MiB arena, mapping twice
/// that for a moment: a limit measured then leaves room for anything).
const GLIBC_TUNABLES: &str = "glibc.pthread.stack_cache_size=0:glibc.malloc.arena_max=1";

/// The margin of address space a limited child keeps: less than a thread's stack (2 MiB).
const MARGIN: u64 = 512 * 1024;

/// Polls `future` on this thread until it is ready, or `None` after [`BOUND`].
fn block_on<F: Future>(future: F) -> Option<F::Output> {
    scenarios::block_on_within(BOUND, future)
}

/// A task's result, or a panic after [`BOUND`].
fn joined<R: Send + 'static>(
    handle: sharedbuf::pool::TaskHandle<R>,
) -> Result<R, sharedbuf::pool::TaskError> {
    handle
        .join_timeout(BOUND)
        .unwrap_or_else(|_| panic!("the task did not finish"))
}

/// The error of `result`, which must be one (`what` says which call), shown on stdout (a child's
/// output is printed when it fails).
fn refused<T>(result: Result<T, Error>, what: &str) -> Error {
    match result {
        Ok(_) => panic!("{what} succeeded beyond the limit"),
        Err(error) => {
            println!("{what}: {error}");
            error
        }
    }
}

/// How many descriptors this process has open.
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// How many children this process has (running or not reaped).
fn children() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|task| {
            let path = task.unwrap().path().join("children");
            std::fs::read_to_string(path)
                .unwrap()
                .split_whitespace()
                .count()
        })
        .sum()
}

fn is_spawn_failed(error: &Error) -> bool {
    matches!(error, Error::SpawnFailed { .. })
}

// ---- scenarios (each runs in its own child) ----

/// A14: a `wait_async` with a timeout needs the timer thread. If it cannot start, the call
/// says so; once threads can start again, the next timed `wait_async` works (fault: the failed
/// start was remembered in a `OnceLock`, and no timed `wait_async` of the process ever worked
/// again).
fn timer_start_retried() {
    let word = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
    {
        let _limit = Limit::address_space(MARGIN);
        match atomics::wait_async(&word, 0, 0, Some(Duration::from_millis(1))) {
            Err(error) => assert!(is_spawn_failed(&error), "{error:?}"),
            Ok(_) => panic!("the timer thread started with no room for its stack"),
        }
    }
    // Untimed waits need no timer, and the failure left nothing queued on the word.
    assert_eq!(atomics::notify(&word, 0, None).unwrap(), 0);
    let future = match atomics::wait_async(&word, 0, 0, Some(Duration::from_millis(1))) {
        Ok(WaitAsync::Pending(future)) => future,
        other => panic!("a timed wait_async after the limit was lifted: {other:?}"),
    };
    assert_eq!(block_on(future), Some(WaitResult::TimedOut));
}

/// A14, X2: a `wait_async` on a process-shared buffer needs its doorbell thread. If it
/// cannot start, the call says so and leaves no waiter behind; afterwards it works.
fn bridge_start_retried() {
    let buffer = SharedBuffer::memfd("exhaustion-bridge", 64).unwrap();
    let word = Int32Array::new(&buffer).unwrap();
    {
        let _limit = Limit::address_space(MARGIN);
        match atomics::wait_async(&word, 0, 0, None) {
            Err(error) => assert!(is_spawn_failed(&error), "{error:?}"),
            Ok(_) => panic!("the doorbell thread started with no room for its stack"),
        }
    }
    assert_eq!(
        atomics::notify(&word, 0, None).unwrap(),
        0,
        "a stranded waiter"
    );
    let future = match atomics::wait_async(&word, 0, 0, None) {
        Ok(WaitAsync::Pending(future)) => future,
        other => panic!("wait_async after the limit was lifted: {other:?}"),
    };
    let notifier = {
        let word = word.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + BOUND;
            while Instant::now() < deadline {
                if atomics::notify(&word, 0, None).unwrap() == 1 {
                    return true;
                }
                std::thread::yield_now();
            }
            false
        })
    };
    assert_eq!(block_on(future), Some(WaitResult::Ok));
    assert!(notifier.join().unwrap());
}

/// W7: a worker whose thread cannot start is `Err(SpawnFailed)`; the next spawn works.
fn worker_spawn_retried() {
    {
        let _limit = Limit::address_space(MARGIN);
        match Worker::<(), ()>::spawn(|_ctx| ()) {
            Err(error) => assert!(is_spawn_failed(&error), "{error:?}"),
            Ok(_) => panic!("a worker started with no room for its stack"),
        }
    }
    let worker = Worker::<(), ()>::spawn(|_ctx| 7).unwrap();
    assert_eq!(worker.join().unwrap().code(), 7);
}

/// P12: a pool that cannot grow runs what it queued on the threads it has, and grows again
/// once threads can start.
fn pool_growth_retried() {
    {
        let _limit = Limit::address_space(MARGIN);
        match WorkerPool::builder().min_threads(1).build() {
            Err(BuildError::SpawnFailed { reason }) => println!("build: {reason}"),
            Err(other) => panic!("build refused for another reason: {other:?}"),
            Ok(_) => panic!("a pool started its thread with no room for its stack"),
        }
    }
    let pool = WorkerPool::builder()
        .min_threads(1)
        .max_threads(2)
        .build()
        .unwrap();
    let (release, hold) = mpsc::channel::<()>();
    let blocker = pool.run(move |_| hold.recv_timeout(BOUND).is_ok()).unwrap();
    let queued = {
        let _limit = Limit::address_space(MARGIN);
        // The one thread is busy: this task needs a second, which cannot start; the busy one
        // will take it (P1), so it is accepted.
        let queued = pool.run(|_| 42).unwrap_or_else(|_| panic!("refused"));
        assert_eq!(pool.stats().threads, 1);
        queued
    };
    release.send(()).unwrap();
    assert_eq!(joined(blocker), Ok(true));
    assert_eq!(joined(queued), Ok(42));
    // Growth again: two tasks that each wait for the other need two threads.
    let both = Arc::new(std::sync::Barrier::new(2));
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let both = Arc::clone(&both);
            let (tx, rx) = mpsc::channel::<()>();
            let task = pool
                .run(move |_| {
                    both.wait();
                    tx.send(()).unwrap();
                })
                .unwrap_or_else(|_| panic!("refused"));
            (task, rx)
        })
        .collect();
    for (task, rx) in tasks {
        assert!(rx.recv_timeout(BOUND).is_ok(), "the pool did not grow");
        assert_eq!(joined(task), Ok(()));
    }
}

/// P12: a pool with no thread left (all reaped after the idle timeout) that cannot start one
/// refuses the task, giving it back; the next submission starts a thread.
fn pool_restart_retried() {
    let pool = WorkerPool::builder()
        .min_threads(0)
        .max_threads(1)
        .idle_timeout(Duration::from_millis(1))
        .build()
        .unwrap();
    assert_eq!(joined(pool.run(|_| 1).unwrap()), Ok(1));
    let deadline = Instant::now() + BOUND;
    while pool.stats().threads > 0 {
        assert!(
            Instant::now() < deadline,
            "the idle thread was never reaped"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    {
        let _limit = Limit::address_space(MARGIN);
        match pool.run(|_| 2) {
            Err(PoolError::SpawnFailed { .. }) => {}
            Err(other) => panic!("refused for another reason: {other:?}"),
            Ok(_) => panic!("accepted with no thread to run it"),
        }
    }
    assert_eq!(joined(pool.run(|_| 3).unwrap()), Ok(3));
}

/// Tasks of the burst before a queue-memory scenario's limit.
const WARM_TASKS: usize = 200_000;

/// A pool (to keep alive) that ran a burst of [`WARM_TASKS`] while its one worker was held:
/// the memory its tasks' cells came from is kept for reuse (slabs.rs), so under a limit set
/// afterwards the cells find room and a pool queue's growth is what runs out.
fn warmed_slabs() -> WorkerPool {
    let warm = WorkerPool::builder()
        .min_threads(1)
        .max_threads(1)
        .max_queue(MaxQueue::Unbounded)
        .build()
        .unwrap();
    let (go, wait) = mpsc::channel::<()>();
    let held = warm.run(move |_| wait.recv_timeout(BOUND).is_ok()).unwrap();
    let burst: Vec<_> = (0..WARM_TASKS)
        .map(|i| warm.run(move |_| i).unwrap_or_else(|_| panic!("refused")))
        .collect();
    go.send(()).unwrap();
    assert_eq!(joined(held), Ok(true));
    for handle in burst {
        joined(handle).unwrap();
    }
    warm
}

/// A pool of one thread and no queue bound: its queue grows until memory runs out.
fn held_unbounded_pool() -> WorkerPool {
    WorkerPool::builder()
        .min_threads(1)
        .max_threads(1)
        .max_queue(MaxQueue::Unbounded)
        .build()
        .unwrap()
}

/// Submits tasks that count themselves in `ran` until `pool` refuses one with
/// `SpawnFailed` (its message returned; the task given back, not run), handing each accepted
/// task's handle to `accepted`. Any other refusal fails the test.
fn submit_until_refused(
    pool: &WorkerPool,
    ran: &Arc<AtomicUsize>,
    mut accepted: impl FnMut(TaskHandle<()>),
) -> String {
    loop {
        let ran = Arc::clone(ran);
        match pool.run(move |_| {
            ran.fetch_add(1, Relaxed);
        }) {
            Ok(handle) => accepted(handle),
            Err(error @ PoolError::SpawnFailed { .. }) => {
                let message = error.to_string();
                drop(error.into_task());
                return message;
            }
            Err(other) => panic!("refused for another reason: {other:?}"),
        }
    }
}

/// P2, P12: an unbounded pool whose submitter outruns its one (held) worker until memory runs
/// out refuses the task that does not fit with `Err(SpawnFailed)` saying memory, giving it
/// back; every task it accepted still runs; and once memory is back it accepts tasks again.
/// Fault: the queue's `VecDeque` grew with `push_back` (the injector's drain, the locked
/// submission) and aborted the process when it could not.
fn pool_queue_memory_retried() {
    let _warm = warmed_slabs();
    let pool = held_unbounded_pool();
    let (release, hold) = mpsc::channel::<()>();
    let blocker = pool.run(move |_| hold.recv_timeout(BOUND).is_ok()).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let mut accepted = 0usize;
    let reason = {
        let _limit = Limit::address_space(MARGIN);
        // The handles are dropped: the tasks still run (P3), and count in `ran`.
        submit_until_refused(&pool, &ran, |_| accepted += 1)
    };
    println!("accepted {accepted}, then refused: {reason}");
    assert!(reason.contains("memory for the task: "), "{reason}");
    assert!(reason.contains("out of memory"), "{reason}");
    // Memory is back: the pool accepts again, and the held worker runs every accepted task.
    let after = pool
        .run(|_| 7)
        .unwrap_or_else(|_| panic!("refused after the limit"));
    release.send(()).unwrap();
    assert_eq!(joined(blocker), Ok(true));
    assert_eq!(joined(after), Ok(7));
    pool.close(Some(BOUND)).unwrap();
    assert_eq!(
        ran.load(Relaxed),
        accepted,
        "an accepted task was lost or a refused one ran"
    );
}

/// P7, P12: an unbounded pool whose queue was filled until memory ran out (its held worker
/// blocked in `atomics::wait`) is destroyed with memory still short: every accepted task
/// resolves `PoolDestroyed` and none runs, the blocked task is interrupted and its handle
/// resolves `PoolDestroyed` too, and the process goes on. Fault: `destroy` collected the
/// queued tasks into a `Vec` as long as the queue (and a `Vec<bool>` of which it won), and
/// aborted the process when it could not allocate them.
fn pool_destroy_memory() {
    let _warm = warmed_slabs();
    let pool = held_unbounded_pool();
    let word = Int32Array::new(&SharedBuffer::new(4).unwrap()).unwrap();
    // 0: still waiting; 1: interrupted (`Err(Terminated)`); 2: anything else.
    let blocked = Arc::new(AtomicUsize::new(0));
    let blocker = {
        let (word, blocked) = (word.clone(), Arc::clone(&blocked));
        pool.run(move |_| {
            let outcome = match atomics::wait(&word, 0, 0, Some(BOUND)) {
                Err(Error::Terminated) => 1,
                _ => 2,
            };
            blocked.store(outcome, Relaxed);
        })
        .unwrap()
    };
    // Room for the handles before the limit: keeping one must not need memory.
    let mut handles = Vec::with_capacity(WARM_TASKS);
    let ran = Arc::new(AtomicUsize::new(0));
    let destroyed_under_limit = {
        let _limit = Limit::address_space(MARGIN);
        let reason = submit_until_refused(&pool, &ran, |handle| {
            assert!(handles.len() < handles.capacity(), "never refused");
            handles.push(handle);
        });
        assert!(reason.contains("out of memory"), "{reason}");
        pool.destroy();
        let ran_then = ran.load(Relaxed);
        // Every accepted task resolved before `destroy` returned.
        handles.iter().all(|handle| handle.is_finished()) && ran_then == 0
    };
    let accepted = handles.len();
    println!("accepted {accepted}, then destroyed");
    assert!(
        destroyed_under_limit,
        "a queued task ran or was left unresolved"
    );
    for handle in handles {
        assert_eq!(joined(handle), Err(TaskError::PoolDestroyed));
    }
    assert_eq!(joined(blocker), Err(TaskError::PoolDestroyed));
    let deadline = Instant::now() + BOUND;
    while blocked.load(Relaxed) == 0 {
        assert!(
            Instant::now() < deadline,
            "the blocked task was not interrupted"
        );
        std::thread::yield_now();
    }
    assert_eq!(
        blocked.load(Relaxed),
        1,
        "the blocked task's wait was not interrupted"
    );
    assert_eq!(ran.load(Relaxed), 0, "a queued task ran after destroy");
    assert!(!pool.is_open());
    // Each task counted once (P6): those left in the injector's ring too.
    let stats = pool.stats();
    let accepted = accepted as u64 + 1; // and the blocker
    assert_eq!(
        (stats.submitted, stats.destroyed),
        (accepted, accepted),
        "{stats:?}"
    );
    assert_eq!((stats.completed, stats.queued), (0, 0), "{stats:?}");
    drop(pool);
    // The process goes on: a new pool works.
    let fresh = WorkerPool::builder().max_threads(1).build().unwrap();
    assert_eq!(joined(fresh.run(|_| 5).unwrap()), Ok(5));
}

/// B1, B2: a buffer whose memory cannot be mapped is `Err`; afterwards buffers work.
fn buffer_map_retried() {
    {
        let _limit = Limit::address_space(MARGIN);
        let new = refused(SharedBuffer::new(1 << 20), "new");
        assert!(matches!(new, Error::AllocationFailed { .. }), "{new:?}");
        let growable = refused(SharedBuffer::growable(4, 1 << 30), "growable");
        assert!(
            matches!(growable, Error::AllocationFailed { .. }),
            "{growable:?}"
        );
        refused(SharedBuffer::memfd("exhaustion-map", 1 << 20), "memfd");
    }
    assert_eq!(SharedBuffer::new(1 << 20).unwrap().byte_length(), 1 << 20);
    let growable = SharedBuffer::growable(4, 1 << 30).unwrap();
    growable.grow(1 << 20).unwrap();
    assert_eq!(
        SharedBuffer::memfd("exhaustion-map", 64)
            .unwrap()
            .byte_length(),
        64
    );
}

/// X1, X6: a process-shared buffer that cannot get a descriptor is `Err`; afterwards works.
fn buffer_descriptor_retried() {
    let path = format!("/dev/shm/sharedbuf-exhaustion-{}", std::process::id());
    let made = SharedBuffer::create(&path, 64).unwrap();
    let before = open_descriptors();
    {
        let _limit = Limit::descriptors();
        refused(SharedBuffer::memfd("exhaustion-fd", 64), "memfd");
        refused(SharedBuffer::create(format!("{path}-2"), 64), "create");
        refused(SharedBuffer::open(&path), "open");
    }
    assert_eq!(
        open_descriptors(),
        before,
        "a failed call left a descriptor open"
    );
    assert!(
        !std::path::Path::new(&format!("{path}-2")).exists(),
        "a failed create left its file"
    );
    let opened = SharedBuffer::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    atomics::store(&Int32Array::new(&made).unwrap(), 0, 5).unwrap();
    assert_eq!(atomics::load(&Int32Array::new(&opened).unwrap(), 0), Ok(5));
    assert_eq!(
        SharedBuffer::memfd("exhaustion-fd", 64)
            .unwrap()
            .byte_length(),
        64
    );
}

/// X6: a process worker that cannot get its descriptors, or its child process, is
/// `Err(SpawnFailed)` (or an `Io` error naming the step); afterwards spawning works.
fn process_spawn_retried() {
    let before = open_descriptors();
    // One descriptor more each time: the spawn fails at each step that needs one (the link's
    // memfd, the liveness pipe, the child's pidfd), until it has all it needs.
    let mut more = 0;
    let worker = loop {
        let spawned = {
            let _limit = Limit::descriptors_more(more);
            ProcessWorker::spawn(&INCREMENT)
        };
        match spawned {
            Ok(worker) => break worker,
            Err(error) => println!("spawn with {more} descriptors: {error}"),
        }
        assert_eq!(
            open_descriptors(),
            before,
            "a failed spawn left a descriptor open"
        );
        assert_eq!(children(), 0, "a failed spawn left its child");
        more += 1;
        assert!(more < 16, "spawn never worked");
    };
    assert!(
        more >= 3,
        "the spawn needs a memfd, a pipe and a pidfd: {more}"
    );
    drop(worker);
    {
        let _limit = Limit::address_space(MARGIN);
        refused(
            ProcessWorker::spawn(&INCREMENT),
            "spawn without address space",
        );
    }
    assert_eq!(
        open_descriptors(),
        before,
        "a failed spawn left a descriptor open"
    );
    let worker = ProcessWorker::spawn(&INCREMENT).unwrap();
    worker.post_message(&41).unwrap();
    let deadline = Instant::now() + BOUND;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match worker.recv_event_timeout(left).unwrap() {
            ProcessEvent::Online => continue,
            ProcessEvent::Message(n) => break assert_eq!(n, 42),
            other => panic!("{other:?}"),
        }
    }
}

/// Q10: a consumer whose threads cannot start is an `Err` that says so, at once, and leaves
/// its name free: starting it again once threads can start works at once, and it runs the job
/// that waited. Faults: the name taken in Redis before the lease keeper's thread failed to
/// start was never given back, so the next start was `Err(NameInUse)` until the lease expired;
/// and the failed start waited for a wake-up reader that never started to end its blocking
/// read (the block time plus the command timeout: here ten minutes).
#[cfg(feature = "redis")]
fn consumer_start_retried() {
    use sharedbuf::queue::{JobOptions, JobQueue, QueueError};
    let Some(server) = queue_support::redis_or_skip("consumer_start_retried") else {
        return;
    };
    let queue = JobQueue::connect(&server.url(), &queue_support::queue_name("exhaustion")).unwrap();
    queue.add(b"waited", JobOptions::new()).unwrap();
    let pool = Arc::new(WorkerPool::builder().max_threads(1).build().unwrap());
    let (done, ran) = mpsc::channel::<Vec<u8>>();
    let handler = move |job: &sharedbuf::queue::Job, _: &sharedbuf::pool::TaskContext<'_>| {
        let _ = done.send(job.payload().to_vec());
        Ok(())
    };
    // A lease far longer than the test: a name left taken would stay taken. A blocking read
    // as long: a failed start that waited for a reader's read to time out would hang.
    let consumer = |queue: &JobQueue| {
        queue
            .consumer("only")
            .lease(Duration::from_secs(600))
            .block(Duration::from_secs(600))
    };
    // Room for none, one or two of its three threads (a thread of the default stack size
    // takes 2 MiB and a guard page): each start fails at another thread.
    const STACK: u64 = 2 * 1024 * 1024 + 4096;
    for room in 0..3 {
        let _limit = Limit::address_space(MARGIN + room * STACK);
        match consumer(&queue).run_on(&pool, handler.clone()) {
            Err(QueueError::SpawnFailed { reason }) => println!("run_on, room {room}: {reason}"),
            Err(other) => panic!("refused for another reason: {other}"),
            Ok(_) => panic!("a consumer started its threads with no room for their stacks"),
        }
    }
    let running = consumer(&queue)
        .run_on(&pool, handler)
        .unwrap_or_else(|error| panic!("the second start: {error}"));
    assert_eq!(ran.recv_timeout(BOUND).as_deref(), Ok(&b"waited"[..]));
    running.close(Some(BOUND)).unwrap();
}

const SCENARIOS: &[Scenario] = &[
    #[cfg(feature = "redis")]
    ("consumer_start_retried", consumer_start_retried),
    ("timer_start_retried", timer_start_retried),
    ("bridge_start_retried", bridge_start_retried),
    ("worker_spawn_retried", worker_spawn_retried),
    ("pool_growth_retried", pool_growth_retried),
    ("pool_restart_retried", pool_restart_retried),
    ("pool_queue_memory_retried", pool_queue_memory_retried),
    ("pool_destroy_memory", pool_destroy_memory),
    ("buffer_map_retried", buffer_map_retried),
    ("buffer_descriptor_retried", buffer_descriptor_retried),
    ("process_spawn_retried", process_spawn_retried),
];

fn main() {
    process::init(&[&INCREMENT]);
    Runner {
        role: ROLE,
        watchdog: WATCHDOG,
        env: &[("GLIBC_TUNABLES", GLIBC_TUNABLES)],
        before: || {},
    }
    .main(SCENARIOS);
}
