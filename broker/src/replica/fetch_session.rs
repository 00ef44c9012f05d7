//! KIP-227 incremental fetch sessions (Fetch v7+).
//!
//! A session remembers, per partition, what the client asked for (offset, max
//! bytes, epochs) and what we last told it (high watermark, log start offset),
//! so an incremental request only lists changed partitions and an incremental
//! response only carries partitions with something new.
//!
//! `(session_id, epoch)` in the request:
//! * `(0, -1)` sessionless full fetch; `(S, -1)` closes S, then sessionless;
//! * `(0, 0)` full fetch that creates a session if the cache has room;
//!   `(S, 0)` closes S first;
//! * `(S, n>0)` incremental; `n` must be the epoch we expect (1 after
//!   creation, then +1, wrapping from i32::MAX to 1).
//!
//! The cache holds `max.incremental.fetch.session.cache.slots` sessions (default
//! 1000). A session idle for `EVICTION_MS` may be replaced by a newcomer; a
//! follower ("privileged") newcomer may also replace any consumer session.

use std::collections::HashMap;
use std::sync::Mutex;

use indexmap::IndexMap;
use rand::Rng;
use uuid::Uuid;

/// Kafka's `FetchSessionCache` eviction threshold.
pub const EVICTION_MS: u64 = 120_000;
/// Default `max.incremental.fetch.session.cache.slots`.
pub const DEFAULT_SLOTS: usize = 1000;

/// Top-level error codes produced here.
pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

/// Identity of a partition within a session. For Fetch < v13 `topic_id` is nil;
/// for v13+ `topic` is the locally resolved name (empty if the id is unknown).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartKey {
    pub topic_id: Uuid,
    pub topic: String,
    pub partition: i32,
}

/// What the client asked for on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRequest {
    pub fetch_offset: i64,
    pub log_start_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
}

/// What we answered for one partition, as far as the session cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionAnswer {
    pub has_records: bool,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    pub error_code: i16,
    pub diverging: bool,
    pub preferred_read_replica: i32,
}

#[derive(Debug, Clone)]
struct Cached {
    req: PartitionRequest,
    high_watermark: i64,
    log_start_offset: i64,
}

impl Cached {
    /// Update from the answer; returns whether an incremental response must include it.
    fn update(&mut self, a: &PartitionAnswer) -> bool {
        let mut must =
            a.has_records || a.error_code != 0 || a.diverging || a.preferred_read_replica != -1;
        if self.high_watermark != a.high_watermark {
            self.high_watermark = a.high_watermark;
            must = true;
        }
        if self.log_start_offset != a.log_start_offset {
            self.log_start_offset = a.log_start_offset;
            must = true;
        }
        must
    }
}

#[derive(Debug)]
struct Session {
    privileged: bool,
    /// Next epoch the client must send.
    epoch: i32,
    last_used_ms: u64,
    partitions: IndexMap<PartKey, Cached>,
}

fn next_epoch(e: i32) -> i32 {
    if e == i32::MAX {
        1
    } else {
        e + 1
    }
}

/// How this request is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchContextKind {
    /// Full fetch; no session.
    Sessionless,
    /// Full fetch; try to create a session when answering.
    Full { create_session: bool },
    /// Incremental fetch on an existing session.
    Incremental { session_id: i32 },
}

/// The resolved set of partitions to read for one Fetch request.
#[derive(Debug, Clone)]
pub struct FetchContext {
    pub kind: FetchContextKind,
    pub privileged: bool,
    /// Partitions to read, in response order.
    pub partitions: Vec<(PartKey, PartitionRequest)>,
}

/// The broker-wide session cache.
#[derive(Debug)]
pub struct FetchSessionCache {
    max_slots: usize,
    sessions: Mutex<HashMap<i32, Session>>,
}

impl Default for FetchSessionCache {
    fn default() -> Self {
        Self::new(DEFAULT_SLOTS)
    }
}

impl FetchSessionCache {
    pub fn new(max_slots: usize) -> Self {
        Self {
            max_slots,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decide how a request is served. `version < 7` is always sessionless.
    #[allow(clippy::too_many_arguments)]
    /// Err carries a top-level error code.
    pub fn new_context(
        &self,
        version: i16,
        session_id: i32,
        epoch: i32,
        privileged: bool,
        requested: Vec<(PartKey, PartitionRequest)>,
        forgotten: &[PartKey],
        now_ms: u64,
    ) -> Result<FetchContext, i16> {
        if version < 7 {
            return Ok(FetchContext {
                kind: FetchContextKind::Sessionless,
                privileged,
                partitions: requested,
            });
        }
        match epoch {
            -1 | 0 => {
                if session_id != 0 {
                    self.lock().remove(&session_id);
                }
                let kind = if epoch == -1 {
                    FetchContextKind::Sessionless
                } else {
                    FetchContextKind::Full {
                        create_session: true,
                    }
                };
                Ok(FetchContext {
                    kind,
                    privileged,
                    partitions: requested,
                })
            }
            e if e < -1 => Err(INVALID_FETCH_SESSION_EPOCH),
            e => {
                let mut sessions = self.lock();
                let Some(s) = sessions.get_mut(&session_id) else {
                    return Err(FETCH_SESSION_ID_NOT_FOUND);
                };
                if s.epoch != e {
                    return Err(INVALID_FETCH_SESSION_EPOCH);
                }
                for k in forgotten {
                    s.partitions.shift_remove(k);
                }
                for (k, req) in requested {
                    match s.partitions.get_mut(&k) {
                        Some(c) => c.req = req,
                        None => {
                            s.partitions.insert(
                                k,
                                Cached {
                                    req,
                                    high_watermark: -1,
                                    log_start_offset: -1,
                                },
                            );
                        }
                    }
                }
                s.epoch = next_epoch(s.epoch);
                s.last_used_ms = now_ms;
                let partitions = s
                    .partitions
                    .iter()
                    .map(|(k, c)| (k.clone(), c.req.clone()))
                    .collect();
                Ok(FetchContext {
                    kind: FetchContextKind::Incremental { session_id },
                    privileged: s.privileged,
                    partitions,
                })
            }
        }
    }

    /// After reading: record answers, create the session for a full fetch, and
    /// return `(session_id, keep)` where `keep[i]` says whether answer `i`
    /// belongs in the response (always true for full fetches).
    pub fn complete(
        &self,
        ctx: &FetchContext,
        answers: &[(PartKey, PartitionAnswer)],
        now_ms: u64,
    ) -> (i32, Vec<bool>) {
        match &ctx.kind {
            FetchContextKind::Sessionless => (0, vec![true; answers.len()]),
            FetchContextKind::Full { create_session } => {
                let keep = vec![true; answers.len()];
                if !*create_session {
                    return (0, keep);
                }
                let mut partitions = IndexMap::with_capacity(answers.len());
                for ((k, req), (_, a)) in ctx.partitions.iter().zip(answers.iter()) {
                    partitions.insert(
                        k.clone(),
                        Cached {
                            req: req.clone(),
                            high_watermark: a.high_watermark,
                            log_start_offset: a.log_start_offset,
                        },
                    );
                }
                let id = self.try_create(ctx.privileged, partitions, now_ms);
                (id, keep)
            }
            FetchContextKind::Incremental { session_id } => {
                let mut sessions = self.lock();
                let Some(s) = sessions.get_mut(session_id) else {
                    // Evicted meanwhile: answer everything.
                    return (*session_id, vec![true; answers.len()]);
                };
                let mut keep = Vec::with_capacity(answers.len());
                let mut moved = Vec::new();
                for (k, a) in answers {
                    let must = match s.partitions.get_mut(k) {
                        Some(c) => c.update(a),
                        None => true,
                    };
                    if must && a.has_records {
                        moved.push(k.clone());
                    }
                    keep.push(must);
                }
                // Partitions that returned data go to the back so others get a
                // turn under max_bytes next time (Kafka's round robin).
                for k in moved {
                    if let Some(c) = s.partitions.shift_remove(&k) {
                        s.partitions.insert(k, c);
                    }
                }
                s.last_used_ms = now_ms;
                (*session_id, keep)
            }
        }
    }

    fn try_create(
        &self,
        privileged: bool,
        partitions: IndexMap<PartKey, Cached>,
        now_ms: u64,
    ) -> i32 {
        let mut sessions = self.lock();
        if self.max_slots == 0 {
            return 0;
        }
        if sessions.len() >= self.max_slots {
            // Oldest idle-for-long session first; else, for a privileged
            // newcomer, the least recently used unprivileged session.
            let stale = sessions
                .iter()
                .filter(|(_, s)| now_ms.saturating_sub(s.last_used_ms) >= EVICTION_MS)
                .min_by_key(|(_, s)| s.last_used_ms)
                .map(|(id, _)| *id);
            let victim = stale.or_else(|| {
                if privileged {
                    sessions
                        .iter()
                        .filter(|(_, s)| !s.privileged)
                        .min_by_key(|(_, s)| s.last_used_ms)
                        .map(|(id, _)| *id)
                } else {
                    None
                }
            });
            match victim {
                Some(id) => {
                    sessions.remove(&id);
                }
                None => return 0,
            }
        }
        let mut rng = rand::thread_rng();
        let id = loop {
            let id: i32 = rng.gen_range(1..=i32::MAX);
            if !sessions.contains_key(&id) {
                break id;
            }
        };
        sessions.insert(
            id,
            Session {
                privileged,
                epoch: 1,
                last_used_ms: now_ms,
                partitions,
            },
        );
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartKey {
        PartKey {
            topic_id: Uuid::nil(),
            topic: "t".into(),
            partition: p,
        }
    }

    fn req(off: i64) -> PartitionRequest {
        PartitionRequest {
            fetch_offset: off,
            log_start_offset: -1,
            max_bytes: 1 << 20,
            current_leader_epoch: -1,
            last_fetched_epoch: -1,
        }
    }

    fn ans(hw: i64, records: bool) -> PartitionAnswer {
        PartitionAnswer {
            has_records: records,
            high_watermark: hw,
            log_start_offset: 0,
            error_code: 0,
            diverging: false,
            preferred_read_replica: -1,
        }
    }

    #[test]
    fn full_then_incremental_with_epochs() {
        let cache = FetchSessionCache::new(10);
        let ctx = cache
            .new_context(
                12,
                0,
                0,
                false,
                vec![(key(0), req(0)), (key(1), req(0))],
                &[],
                0,
            )
            .expect("ctx");
        assert_eq!(ctx.partitions.len(), 2);
        let (id, keep) =
            cache.complete(&ctx, &[(key(0), ans(5, true)), (key(1), ans(0, false))], 0);
        assert_ne!(id, 0);
        assert_eq!(keep, vec![true, true]);

        // Wrong epoch and unknown session.
        assert_eq!(
            cache.new_context(12, id, 2, false, vec![], &[], 1).err(),
            Some(INVALID_FETCH_SESSION_EPOCH)
        );
        assert_eq!(
            cache
                .new_context(12, id.wrapping_add(1).max(1), 1, false, vec![], &[], 1)
                .err(),
            Some(FETCH_SESSION_ID_NOT_FOUND)
        );

        // Incremental with nothing listed reads both partitions; only the changed one returns.
        let ctx = cache
            .new_context(12, id, 1, false, vec![], &[], 1)
            .expect("inc");
        assert_eq!(ctx.partitions.len(), 2);
        let answers: Vec<_> = ctx
            .partitions
            .iter()
            .map(|(k, _)| {
                (
                    k.clone(),
                    if k.partition == 1 {
                        ans(3, false)
                    } else {
                        ans(5, false)
                    },
                )
            })
            .collect();
        let (id2, keep) = cache.complete(&ctx, &answers, 1);
        assert_eq!(id2, id);
        let kept: Vec<i32> = answers
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|((k, _), _)| k.partition)
            .collect();
        assert_eq!(kept, vec![1]);

        // Forget partition 0; epoch 2 expected now.
        let ctx = cache
            .new_context(12, id, 2, false, vec![], &[key(0)], 2)
            .expect("inc2");
        assert_eq!(ctx.partitions.len(), 1);
        assert_eq!(ctx.partitions[0].0.partition, 1);

        // Closing with epoch -1 removes the session.
        let ctx = cache
            .new_context(12, id, -1, false, vec![], &[], 3)
            .expect("close");
        assert_eq!(ctx.kind, FetchContextKind::Sessionless);
        assert!(cache.is_empty());
    }

    #[test]
    fn records_move_partition_to_back() {
        let cache = FetchSessionCache::new(10);
        let ctx = cache
            .new_context(
                12,
                0,
                0,
                false,
                vec![(key(0), req(0)), (key(1), req(0))],
                &[],
                0,
            )
            .expect("ctx");
        let (id, _) = cache.complete(&ctx, &[(key(0), ans(0, false)), (key(1), ans(0, false))], 0);
        let ctx = cache
            .new_context(12, id, 1, false, vec![], &[], 0)
            .expect("inc");
        let (_, keep) = cache.complete(&ctx, &[(key(0), ans(0, true)), (key(1), ans(0, false))], 0);
        assert_eq!(keep, vec![true, false]);
        let ctx = cache
            .new_context(12, id, 2, false, vec![], &[], 0)
            .expect("inc");
        let order: Vec<i32> = ctx.partitions.iter().map(|(k, _)| k.partition).collect();
        assert_eq!(order, vec![1, 0]);
    }

    #[test]
    fn eviction_rules() {
        let cache = FetchSessionCache::new(1);
        let mk = |privileged: bool, now: u64| {
            let ctx = cache
                .new_context(12, 0, 0, privileged, vec![(key(0), req(0))], &[], now)
                .expect("ctx");
            cache.complete(&ctx, &[(key(0), ans(0, false))], now).0
        };
        let a = mk(false, 0);
        assert_ne!(a, 0);
        // Cache full, a is fresh: consumer newcomer gets no session.
        assert_eq!(mk(false, 10), 0);
        // Privileged newcomer evicts the consumer session.
        let b = mk(true, 20);
        assert_ne!(b, 0);
        // Consumer cannot evict a fresh privileged session, but can after idle time.
        assert_eq!(mk(false, 30), 0);
        assert_ne!(mk(false, 20 + EVICTION_MS), 0);
    }

    #[test]
    fn epoch_wraps_to_one() {
        assert_eq!(next_epoch(i32::MAX), 1);
        assert_eq!(next_epoch(1), 2);
    }

    #[test]
    fn old_versions_are_sessionless() {
        let cache = FetchSessionCache::new(10);
        let ctx = cache
            .new_context(6, 55, 3, false, vec![(key(0), req(0))], &[], 0)
            .expect("ctx");
        assert_eq!(ctx.kind, FetchContextKind::Sessionless);
    }
}
