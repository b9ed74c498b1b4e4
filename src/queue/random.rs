//! A few random bits without a dependency: std's randomly keyed SipHash over a counter. Enough
//! for backoff jitter and consumer tokens; not for secrets.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A random 64-bit number (each call hashes a fresh counter value with a per-process random key).
pub(super) fn next_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// A uniformly random number in `low..=high` (`low` if `high <= low`).
pub(super) fn between(low: u64, high: u64) -> u64 {
    if high <= low {
        return low;
    }
    let span = high - low;
    match span.checked_add(1) {
        Some(n) => low + next_u64() % n,
        None => next_u64(),
    }
}
