//! [`Histogram`]: durations counted in log-linear buckets, and [`HistogramSummary`], what
//! [`PoolStats`](super::PoolStats) reports of one (count, p50, p90, p99, max, mean).
//!
//! Buckets are exact below 16 ns and then split every power of two into 8, so a percentile is
//! off by at most 1/8 (12.5 %); the maximum is kept exactly. Recording is one relaxed
//! increment of one bucket plus a few counters, with no lock and no allocation, so keeping
//! statistics costs nothing measurable when nobody reads them.
//!
//! The counters are std atomics even under loom: they are statistics, not synchronization, and
//! as loom objects they would only multiply the interleavings a model explores.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Bits of sub-bucket per power of two (8 sub-buckets).
const SUB_BITS: u32 = 3;
/// Values below this many nanoseconds each have a bucket of their own.
const LINEAR: u64 = 1 << (SUB_BITS + 1);
/// The largest power of two with buckets of its own (2^40 ns is about 18 minutes); longer
/// durations share the last bucket, but the exact maximum is still kept.
const TOP_EXPONENT: u32 = 40;
const BUCKETS: usize =
    LINEAR as usize + ((TOP_EXPONENT - SUB_BITS - 1) as usize + 1) * (1 << SUB_BITS);

/// A counter written in one of two ways: by its one owner thread (a relaxed load and store:
/// cheaper than a read-modify-write, and a concurrent reader sees an older or newer value,
/// never a torn one), or by any thread (`fetch_add`).
#[derive(Default)]
pub(super) struct Counter(AtomicU64);

impl Counter {
    pub(super) fn add(&self, value: u64, owned: bool) {
        if owned {
            self.0
                .store(self.0.load(Relaxed).wrapping_add(value), Relaxed);
        } else {
            self.0.fetch_add(value, Relaxed);
        }
    }

    pub(super) fn max(&self, value: u64, owned: bool) {
        if owned {
            if value > self.0.load(Relaxed) {
                self.0.store(value, Relaxed);
            }
        } else {
            self.0.fetch_max(value, Relaxed);
        }
    }

    pub(super) fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Durations in log-linear buckets (see the module docs).
pub(super) struct Histogram {
    buckets: Box<[Counter]>,
    count: Counter,
    sum_ns: Counter,
    max_ns: Counter,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| Counter::default()).collect(),
            count: Counter::default(),
            sum_ns: Counter::default(),
            max_ns: Counter::default(),
        }
    }
}

impl Histogram {
    /// Counts one duration (`owned`: only the calling thread ever records into this histogram).
    pub(super) fn record(&self, duration: Duration, owned: bool) {
        let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].add(1, owned);
        self.count.add(1, owned);
        self.sum_ns.add(ns, owned);
        self.max_ns.max(ns, owned);
    }

    /// How many durations were recorded.
    pub(super) fn count(&self) -> u64 {
        self.count.get()
    }

    /// The sum of every recorded duration, in nanoseconds.
    pub(super) fn sum_ns(&self) -> u64 {
        self.sum_ns.get()
    }
}

/// Adds up several histograms (one per worker) into one summary.
pub(super) fn summarize<'a>(
    histograms: impl IntoIterator<Item = &'a Histogram>,
) -> HistogramSummary {
    let mut buckets = vec![0u64; BUCKETS];
    let (mut count, mut sum, mut max) = (0u64, 0u64, 0u64);
    for histogram in histograms {
        for (total, bucket) in buckets.iter_mut().zip(histogram.buckets.iter()) {
            *total += bucket.get();
        }
        count += histogram.count.get();
        sum = sum.wrapping_add(histogram.sum_ns.get());
        max = max.max(histogram.max_ns.get());
    }
    // The buckets are read one by one while tasks finish: use their own total, so the
    // percentiles are of one consistent set.
    let bucketed: u64 = buckets.iter().sum();
    let percentile = |fraction: f64| -> Duration {
        if bucketed == 0 {
            return Duration::ZERO;
        }
        let rank = ((bucketed as f64 * fraction).ceil() as u64).clamp(1, bucketed);
        let mut seen = 0;
        for (index, &n) in buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_nanos(upper_bound(index).min(max));
            }
        }
        Duration::from_nanos(max)
    };
    HistogramSummary {
        count,
        p50: percentile(0.50),
        p90: percentile(0.90),
        p99: percentile(0.99),
        max: Duration::from_nanos(max),
        mean: Duration::from_nanos(sum.checked_div(count).unwrap_or(0)),
    }
}

/// The bucket of a duration of `ns` nanoseconds.
fn bucket_of(ns: u64) -> usize {
    if ns < LINEAR {
        return ns as usize;
    }
    let exponent = (63 - ns.leading_zeros()).min(TOP_EXPONENT);
    if exponent == TOP_EXPONENT && ns >> TOP_EXPONENT > 1 {
        return BUCKETS - 1;
    }
    let sub = (ns >> (exponent - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    LINEAR as usize + (exponent - SUB_BITS - 1) as usize * (1 << SUB_BITS) + sub as usize
}

/// The largest duration (in nanoseconds) that falls in bucket `index`.
fn upper_bound(index: usize) -> u64 {
    if index < LINEAR as usize {
        return index as u64;
    }
    if index == BUCKETS - 1 {
        return u64::MAX;
    }
    let offset = index - LINEAR as usize;
    let exponent = (offset >> SUB_BITS) as u32 + SUB_BITS + 1;
    let sub = (offset & ((1 << SUB_BITS) - 1)) as u64;
    let width = 1u64 << (exponent - SUB_BITS);
    ((1 << SUB_BITS) + sub) * width + width - 1
}

/// What [`PoolStats`](super::PoolStats) reports of a histogram: how many durations, and
/// percentiles within 12.5 % (the maximum exact).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistogramSummary {
    /// Durations recorded.
    pub count: u64,
    /// Half took at most this long.
    pub p50: Duration,
    /// 90 % took at most this long.
    pub p90: Duration,
    /// 99 % took at most this long.
    pub p99: Duration,
    /// The longest.
    pub max: Duration,
    /// The mean.
    pub mean: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_in_a_bucket_whose_bounds_hold_it() {
        let mut previous_upper = None;
        for index in 0..BUCKETS - 1 {
            let upper = upper_bound(index);
            if let Some(previous) = previous_upper {
                assert_eq!(
                    bucket_of(previous + 1),
                    index,
                    "first value of bucket {index}"
                );
            }
            assert_eq!(bucket_of(upper), index, "last value of bucket {index}");
            previous_upper = Some(upper);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_are_within_an_eighth() {
        let histogram = Histogram::default();
        for us in 1..=1000u64 {
            histogram.record(Duration::from_micros(us), true);
        }
        let summary = summarize([&histogram]);
        assert_eq!(summary.count, 1000);
        assert_eq!(summary.max, Duration::from_micros(1000));
        for (got, want) in [
            (summary.p50, 500.0),
            (summary.p90, 900.0),
            (summary.p99, 990.0),
        ] {
            let got = got.as_secs_f64() * 1e6;
            assert!(got >= want && got <= want * 1.125, "{got} µs for {want} µs");
        }
    }
}
