//! A lock-free latency histogram for metrics: recording is one relaxed atomic add,
//! percentiles are computed when someone reads them.
//!
//! Kafka's Yammer timers report percentiles over an exponentially decaying sample biased
//! to the last ~5 minutes. We approximate that with log-linear buckets (4 per power of
//! two of microseconds, so a reported value is within 12.5% of the true one) and a
//! sliding window of one to two minutes: each read compares the live counts with a
//! baseline taken when the window last turned. Only readers take the window's mutex.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets: values below 4 µs get one each; then 4 per octave up to 2^40 µs (~12 days).
pub const BUCKETS: usize = 160;
/// How long a window lasts before the baseline moves on.
const WINDOW: Duration = Duration::from_secs(60);

/// Kafka's Yammer percentiles and the quantile label the JMX exporter gives each.
pub const PERCENTILES: [(f64, &str); 6] = [
    (0.50, "0.50"),
    (0.75, "0.75"),
    (0.95, "0.95"),
    (0.98, "0.98"),
    (0.99, "0.99"),
    (0.999, "0.999"),
];

/// Counts of durations by bucket.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    window: Mutex<Window>,
}

struct Window {
    /// Counts when the current window began, and when that was.
    current: (Instant, Box<[u64]>),
    /// Counts when the previous window began: percentiles cover everything since then.
    previous: (Instant, Box<[u64]>),
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Bucket index of a value in microseconds.
pub fn bucket_of(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let octave = 63 - us.leading_zeros() as usize; // >= 2
    let sub = ((us >> (octave - 2)) & 3) as usize;
    (4 * (octave - 1) + sub).min(BUCKETS - 1)
}

/// Smallest value (µs) of bucket `i`.
pub fn bucket_floor(i: usize) -> u64 {
    if i < 4 {
        return i as u64;
    }
    let octave = i / 4 + 1;
    let sub = (i % 4) as u64;
    (4 + sub) << (octave - 2)
}

impl Histogram {
    pub fn new() -> Self {
        let zeros = || vec![0u64; BUCKETS].into_boxed_slice();
        let now = Instant::now();
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            window: Mutex::new(Window {
                current: (now, zeros()),
                previous: (now, zeros()),
            }),
        }
    }

    /// Records one duration (hot path: a single relaxed add).
    #[inline]
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// Records a value given in microseconds.
    #[inline]
    pub fn record_us(&self, us: u64) {
        self.buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// Number of values recorded since start (Yammer's `Count`).
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    fn snapshot(&self) -> Box<[u64]> {
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    /// `(count since start, [value in ms at each of PERCENTILES])` over the recent window;
    /// all zeros when nothing was recorded in it (as an empty Yammer reservoir reports).
    pub fn read_ms(&self) -> (u64, [f64; PERCENTILES.len()]) {
        self.read_ms_at(Instant::now())
    }

    fn read_ms_at(&self, now: Instant) -> (u64, [f64; PERCENTILES.len()]) {
        let live = self.snapshot();
        let total: u64 = live.iter().sum();
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_duration_since(w.current.0) >= WINDOW {
            let turned = std::mem::replace(&mut w.current, (now, live.clone()));
            w.previous = turned;
        }
        let base = &w.previous.1;
        let delta: Vec<u64> = live
            .iter()
            .zip(base.iter())
            .map(|(l, b)| l.saturating_sub(*b))
            .collect();
        drop(w);
        (total, percentiles_ms(&delta))
    }
}

/// Percentiles (ms) of bucketed counts; each value is its bucket's midpoint.
pub fn percentiles_ms(counts: &[u64]) -> [f64; PERCENTILES.len()] {
    let mut out = [0.0; PERCENTILES.len()];
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return out;
    }
    for (slot, (q, _)) in out.iter_mut().zip(PERCENTILES.iter()) {
        // Rank of the quantile (1-based), at least the first value.
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let lo = bucket_floor(i) as f64;
                let hi = if i + 1 < BUCKETS {
                    bucket_floor(i + 1) as f64
                } else {
                    lo
                };
                let mid = if i < 4 { lo } else { (lo + hi) / 2.0 };
                *slot = mid / 1000.0;
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        for i in 0..BUCKETS - 1 {
            assert!(bucket_floor(i) < bucket_floor(i + 1), "{i}");
            assert_eq!(bucket_of(bucket_floor(i)), i);
            assert_eq!(bucket_of(bucket_floor(i + 1) - 1), i);
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_within_an_eighth() {
        let h = Histogram::new();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let (count, p) = h.read_ms();
        assert_eq!(count, 1000);
        for ((q, _), v) in PERCENTILES.iter().zip(p) {
            let want = q * 1000.0;
            assert!(
                (v - want).abs() <= want * 0.125 + 1.0,
                "q{q}: {v} vs {want}"
            );
        }
    }

    #[test]
    fn window_forgets_old_values() {
        let h = Histogram::new();
        let t0 = Instant::now();
        for _ in 0..100 {
            h.record(Duration::from_millis(500));
        }
        // Two window turns later only new values count; the total keeps everything.
        let _ = h.read_ms_at(t0 + WINDOW);
        let _ = h.read_ms_at(t0 + 2 * WINDOW);
        h.record(Duration::from_micros(2));
        let (count, p) = h.read_ms_at(t0 + 2 * WINDOW + Duration::from_secs(1));
        assert_eq!(count, 101);
        assert_eq!(p[5], 0.002);
        let empty = Histogram::new();
        assert_eq!(empty.read_ms().1, [0.0; 6]);
    }
}
