//! A windowed rate with Kafka's semantics (`SampledStat` + `Rate` + `QuotaUtils`), so that
//! quotas measure and throttle exactly as Kafka's do: `quota.window.num` samples of
//! `quota.window.size.seconds` each, the rate taken over the retained samples with the
//! window padded to `samples - 1` full windows, and the throttle time
//! `(observed - bound) / bound * window`.

/// `quota.window.num` / `quota.window.size.seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowConfig {
    pub samples: u32,
    pub window_ms: u64,
}

impl WindowConfig {
    pub fn new(samples: i32, window_seconds: i32) -> Self {
        Self {
            samples: samples.max(1) as u32,
            window_ms: (window_seconds.max(1) as u64) * 1000,
        }
    }
}

impl Default for WindowConfig {
    /// Kafka's defaults: 11 samples of one second.
    fn default() -> Self {
        Self::new(11, 1)
    }
}

#[derive(Clone, Copy, Debug)]
struct Sample {
    value: f64,
    start_ms: u64,
    last_event_ms: u64,
}

impl Sample {
    fn new(now: u64) -> Self {
        Self {
            value: 0.0,
            start_ms: now,
            last_event_ms: now,
        }
    }
}

/// A per-second rate over a sliding set of samples. Not synchronized: owners keep it under
/// their own lock (recording is a few arithmetic operations, never I/O).
#[derive(Clone, Debug)]
pub struct Rate {
    config: WindowConfig,
    /// At most `samples + 1` entries: one extra for the sample overlapping the window start.
    samples: Vec<Sample>,
    current: usize,
}

impl Rate {
    pub fn new(config: WindowConfig) -> Self {
        Self {
            config,
            samples: Vec::with_capacity(config.samples as usize + 1),
            current: 0,
        }
    }

    /// Adds `value` (bytes, connections, ...) at `now_ms`. Negative values un-record.
    pub fn record(&mut self, value: f64, now_ms: u64) {
        if self.samples.is_empty() {
            self.samples.push(Sample::new(now_ms));
        }
        if now_ms.saturating_sub(self.samples[self.current].start_ms) >= self.config.window_ms {
            let max = self.config.samples as usize + 1;
            self.current = (self.current + 1) % max;
            if self.current >= self.samples.len() {
                self.samples.push(Sample::new(now_ms));
            } else {
                self.samples[self.current] = Sample::new(now_ms);
            }
        }
        let s = &mut self.samples[self.current];
        s.value += value;
        s.last_event_ms = now_ms;
    }

    /// Resets samples with no event within the monitored window.
    fn purge(&mut self, now_ms: u64) {
        let expire = u64::from(self.config.samples) * self.config.window_ms;
        for s in &mut self.samples {
            if now_ms.saturating_sub(s.last_event_ms) >= expire {
                *s = Sample::new(now_ms);
            }
        }
    }

    /// The window (ms) the rate is taken over: from the oldest sample to now, but at least
    /// `samples - 1` full windows, and at least 1 ms.
    pub fn window_ms(&mut self, now_ms: u64) -> u64 {
        self.purge(now_ms);
        let oldest = self
            .samples
            .iter()
            .map(|s| s.start_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed = now_ms.saturating_sub(oldest);
        let full = elapsed / self.config.window_ms;
        let min_full = u64::from(self.config.samples - 1);
        if full < min_full {
            elapsed += (min_full - full) * self.config.window_ms;
        }
        elapsed.max(1)
    }

    /// The rate per second at `now_ms`.
    pub fn measure(&mut self, now_ms: u64) -> f64 {
        let window = self.window_ms(now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (window as f64 / 1000.0)
    }

    /// How long (ms) to delay so the rate falls back to `bound`, 0 within the quota
    /// (Kafka's `QuotaUtils.throttleTime`; the caller caps it).
    pub fn throttle_ms(&mut self, bound: f64, now_ms: u64) -> u64 {
        let observed = self.measure(now_ms);
        if observed <= bound || bound <= 0.0 {
            return 0;
        }
        let window = self.window_ms(now_ms) as f64;
        ((observed - bound) / bound * window).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_padded_to_samples_minus_one_windows() {
        let mut r = Rate::new(WindowConfig::new(11, 1));
        r.record(100.0, 0);
        // One event at t=0: the window is padded to 10 s, so 100 / 10 = 10 per second.
        assert_eq!(r.measure(0), 10.0);
        // Half a second later the window is 0.5 s plus ten padded windows.
        r.record(100.0, 500);
        assert_eq!(r.measure(500), 200.0 / 10.5);
    }

    #[test]
    fn throttle_time_brings_the_rate_back_to_the_bound() {
        let mut r = Rate::new(WindowConfig::new(11, 1));
        for t in 0..10 {
            r.record(1000.0, t * 1000);
        }
        let now = 9_000;
        let window = r.window_ms(now) as f64; // 10 s
        let observed = r.measure(now); // 10,000 over 10 s = 1000/s
        assert_eq!(observed, 1000.0);
        let t = r.throttle_ms(500.0, now);
        assert_eq!(t as f64, ((observed - 500.0) / 500.0 * window).round());
        assert_eq!(r.throttle_ms(2000.0, now), 0);
    }

    #[test]
    fn old_samples_expire() {
        let mut r = Rate::new(WindowConfig::new(2, 1));
        r.record(10.0, 0);
        assert!(r.measure(100) > 0.0);
        assert_eq!(r.measure(5_000), 0.0);
    }

    #[test]
    fn negative_values_unrecord() {
        let mut r = Rate::new(WindowConfig::default());
        r.record(1.0, 0);
        r.record(-1.0, 0);
        assert_eq!(r.measure(0), 0.0);
    }
}
