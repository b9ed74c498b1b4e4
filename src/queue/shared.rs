//! [`Shared`]: what a consumer's three threads (dispatcher, lease keeper, wake-up reader) and
//! its handle share.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::config::Config;
use super::delivery::EntryRef;
use super::stats::Counters;

/// A consumer's settings.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) name: String,
    /// The fencing token in `live:<name>`.
    pub(super) token: String,
    pub(super) concurrency: usize,
    /// Jobs held beyond `concurrency`, ready to start (and the size of a refill).
    pub(super) prefetch: usize,
    pub(super) lease: Duration,
    pub(super) block: Duration,
    pub(super) poll: Duration,
    /// Deliveries after which RECLAIM dead-letters an entry (stalls + 1).
    pub(super) max_deliveries: u32,
    /// Delayed jobs FETCH promotes at most per call.
    pub(super) promote_limit: usize,
}

/// The state a consumer's threads share.
pub(super) struct Shared {
    pub(super) config: Arc<Config>,
    pub(super) settings: Settings,
    pub(super) counters: Counters,
    /// Every entry this consumer holds (running, queued in the pool, being finished): the
    /// lease keeper renews exactly these.
    pub(super) held: Mutex<BTreeSet<EntryRef>>,
    /// `close` was called; with its deadline, if any.
    closing: Mutex<Option<Option<Instant>>>,
    /// The lease keeper and the wake-up reader should stop.
    pub(super) stop_helpers: AtomicBool,
    /// Wakes the lease keeper from its sleep when it should stop.
    pub(super) keeper_bell: (Mutex<()>, Condvar),
    /// The wake-up reader's `CLIENT ID` (to unblock it when closing), and whether it ended.
    pub(super) reader_client: Arc<AtomicI64>,
    pub(super) reader_exited: AtomicBool,
}

impl Shared {
    pub(super) fn new(config: Arc<Config>, settings: Settings) -> Shared {
        Shared {
            config,
            settings,
            counters: Counters::default(),
            held: Mutex::new(BTreeSet::new()),
            closing: Mutex::new(None),
            stop_helpers: AtomicBool::new(false),
            keeper_bell: (Mutex::new(()), Condvar::new()),
            reader_client: Arc::new(AtomicI64::new(0)),
            reader_exited: AtomicBool::new(false),
        }
    }

    pub(super) fn held(&self) -> MutexGuard<'_, BTreeSet<EntryRef>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `close` was called (the first call's deadline counts).
    pub(super) fn request_close(&self, deadline: Option<Instant>) {
        let mut closing = self.closing.lock().unwrap_or_else(|e| e.into_inner());
        if closing.is_none() {
            *closing = Some(deadline);
        }
    }

    /// `Some(deadline)` once `close` was called.
    pub(super) fn closing(&self) -> Option<Option<Instant>> {
        *self.closing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `close`'s deadline passed: requests stop retrying.
    pub(super) fn close_deadline_passed(&self) -> bool {
        matches!(self.closing(), Some(Some(deadline)) if Instant::now() >= deadline)
    }

    /// Tells the lease keeper and the wake-up reader to stop.
    pub(super) fn stop_helpers(&self) {
        self.stop_helpers.store(true, Ordering::SeqCst);
        let (lock, bell) = &self.keeper_bell;
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        bell.notify_all();
    }

    pub(super) fn helpers_stopping(&self) -> bool {
        self.stop_helpers.load(Ordering::SeqCst)
    }
}
