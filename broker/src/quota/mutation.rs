//! `controller_mutation_rate` quotas as Kafka's `ControllerMutationQuotaManager` applies them
//! to CreateTopics, CreatePartitions and DeleteTopics: partitions created or deleted are
//! permits taken from a token bucket per (user, client id) metric tags (the same tags and
//! precedence as the other client quotas). The bucket refills at the quota rate and holds
//! at most `controller.quota.window.num × controller.quota.window.size.seconds × quota`.
//!
//! From the request versions where Kafka is *strict* (CreateTopics v6+, CreatePartitions
//! v3+, DeleteTopics v5+) a topic is refused with THROTTLING_QUOTA_EXCEEDED while the bucket
//! is negative, and an accepted topic may take it below zero. Older versions are
//! *permissive*: everything is accepted, the debt is only reported. Either way the response
//! carries the throttle time `-tokens / quota` seconds and the connection is muted for it.

use std::collections::HashMap;
use std::sync::Mutex;

use super::client::ClientQuotas;

/// Kafka's `TokenBucket` stat.
#[derive(Clone, Copy, Debug, Default)]
struct TokenBucket {
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    fn refill(&mut self, quota: f64, burst: f64, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.tokens = burst.min(self.tokens + quota * elapsed);
        self.last_ms = now_ms.max(self.last_ms);
    }
}

/// Idle buckets are dropped after this long (as Kafka expires quota sensors).
const EXPIRATION_MS: u64 = 3_600_000;

/// The buckets of every (user, client id) that mutated something under a quota.
#[derive(Debug)]
pub struct MutationBuckets {
    /// `controller.quota.window.num × controller.quota.window.size.seconds`.
    burst_seconds: f64,
    buckets: Mutex<HashMap<(String, String), TokenBucket>>,
}

impl MutationBuckets {
    pub fn new(window_num: i32, window_size_seconds: i32) -> Self {
        Self {
            burst_seconds: f64::from(window_num.max(1)) * f64::from(window_size_seconds.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes `permits`; in strict mode nothing is taken while the bucket is in debt. Returns
    /// the throttle time (ms) when the bucket is (strict: was) negative.
    fn take(
        &self,
        tags: &(String, String),
        quota: f64,
        permits: f64,
        strict: bool,
        now: u64,
    ) -> u64 {
        let Ok(mut map) = self.buckets.lock() else {
            return 0;
        };
        if map.len() > 1024 {
            map.retain(|_, b| now.saturating_sub(b.last_ms) < EXPIRATION_MS);
        }
        let burst = self.burst_seconds * quota;
        // A new bucket starts full (Kafka's starts at time 0 and refills to the burst).
        let b = map.entry(tags.clone()).or_default();
        b.refill(quota, burst, now);
        let debt = |tokens: f64| {
            if tokens < 0.0 && quota > 0.0 {
                (-tokens / quota * 1000.0).round() as u64
            } else {
                0
            }
        };
        if strict {
            let t = debt(b.tokens);
            if t > 0 {
                return t;
            }
            b.tokens = burst.min(b.tokens - permits);
            0
        } else {
            b.tokens = burst.min(b.tokens - permits);
            debt(b.tokens)
        }
    }
}

/// Refused: the topic gets THROTTLING_QUOTA_EXCEEDED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub throttle_ms: u64,
}

/// One request's mutation quota (Kafka's `StrictControllerMutationQuota` /
/// `PermissiveControllerMutationQuota`; unbounded while no `controller_mutation_rate` exists).
pub struct MutationQuota<'a> {
    quotas: &'a ClientQuotas,
    /// Metric tags and their quota, when one applies.
    bound: Option<((String, String), f64)>,
    strict: bool,
    throttle_ms: u64,
    recorded_ms: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl<'a> MutationQuota<'a> {
    /// The quota of (user, client id) for a request at `version`, strict from
    /// `strict_since_version` on (Kafka's `newQuotaFor`).
    pub fn new(
        quotas: &'a ClientQuotas,
        user: &str,
        client: &str,
        version: i16,
        strict_since_version: i16,
    ) -> Self {
        let bound = if quotas.controller_mutation.enabled() {
            quotas.controller_mutation.tags_and_limit(user, client)
        } else {
            None
        };
        Self {
            quotas,
            bound,
            strict: version >= strict_since_version,
            throttle_ms: 0,
            recorded_ms: 0,
        }
    }

    /// Kafka's `record(permits)`: partitions about to be created or deleted.
    pub fn record(&mut self, permits: f64) -> Result<(), QuotaExceeded> {
        let Some((tags, quota)) = &self.bound else {
            return Ok(());
        };
        let now = now_ms();
        let t = self
            .quotas
            .mutation_buckets
            .take(tags, *quota, permits, self.strict, now);
        if t > 0 {
            self.throttle_ms = t;
            self.recorded_ms = now;
            if self.strict {
                return Err(QuotaExceeded { throttle_ms: t });
            }
        }
        Ok(())
    }

    /// The throttle time left now (the recorded one less the time since).
    pub fn throttle_ms(&self) -> u64 {
        self.throttle_ms
            .saturating_sub(now_ms().saturating_sub(self.recorded_ms))
    }

    /// At the end of the request: mutes the connection for the throttle time left (KIP-219)
    /// and returns it for the response's `throttle_time_ms`.
    pub fn finish(&self, conn: &crate::connection::ConnInfo) -> i32 {
        let t = self.throttle_ms();
        if t > 0 {
            conn.throttle.set(t);
        }
        i32::try_from(t).unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tags() -> (String, String) {
        (String::new(), "c".to_string())
    }

    #[test]
    fn strict_refuses_only_while_in_debt() {
        let b = MutationBuckets::new(11, 1);
        // Quota 1/s: burst 11. A new bucket is full.
        assert_eq!(b.take(&tags(), 1.0, 10.0, true, 1_000_000), 0);
        // 1 left: 5 more are accepted, leaving -4.
        assert_eq!(b.take(&tags(), 1.0, 5.0, true, 1_000_000), 0);
        // In debt: refused with 4 s of throttle, nothing taken.
        assert_eq!(b.take(&tags(), 1.0, 1.0, true, 1_000_000), 4000);
        // Two seconds later the debt is 2.
        assert_eq!(b.take(&tags(), 1.0, 1.0, true, 1_002_000), 2000);
        // Permissive takes it anyway and reports the new debt.
        assert_eq!(b.take(&tags(), 1.0, 1.0, false, 1_002_000), 3000);
        // Refills to the burst at most.
        assert_eq!(b.take(&tags(), 1.0, 11.0, true, 2_000_000), 0);
        assert_eq!(b.take(&tags(), 1.0, 0.0, true, 2_000_000), 0);
    }

    #[test]
    fn unbounded_without_quota_and_strictness_by_version() {
        let q = ClientQuotas::default();
        let mut m = MutationQuota::new(&q, "u", "c", 6, 6);
        assert!(m.record(1e9).is_ok());
        assert_eq!(m.throttle_ms(), 0);
        q.controller_mutation.update(
            &super::super::client::QuotaEntity::new(
                None,
                Some(super::super::client::EntityName::Named("c".into())),
            ),
            Some(2.0),
        );
        let mut strict = MutationQuota::new(&q, "u", "c", 6, 6);
        assert!(strict.record(30.0).is_ok(), "bucket starts full");
        let e = strict.record(1.0).unwrap_err();
        assert!(e.throttle_ms > 3_000, "{e:?}");
        assert!(strict.throttle_ms() > 0);
        let mut permissive = MutationQuota::new(&q, "u", "c", 5, 6);
        assert!(permissive.record(1.0).is_ok());
        assert!(permissive.throttle_ms() > 3_000);
    }
}
