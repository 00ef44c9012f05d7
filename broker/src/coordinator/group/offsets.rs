//! Committed offsets of the classic groups (Kafka's `GroupCoordinator.handleCommitOffsets` /
//! `handleFetchOffsets` / `handleDeleteGroups` / `handleDeleteOffsets` and
//! `GroupMetadataManager.storeOffsets` / `getOffsets` / `cleanupGroupMetadata`): validation,
//! appends with acks -1, the cache, require_stable, expiration and tombstones. Transactional
//! commits live in `txn_offsets.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::codes::*;
use super::{commit_error, records, CommittedOffset, Group, GroupCoordinator, GroupState};

impl GroupCoordinator {
    /// Kafka's `validateOffsetCommit` + state check; creates a "simple" Empty group for a
    /// generation < 0 commit to an unknown group.
    fn validate_commit_locked(
        self: &Arc<Self>,
        gs: &mut HashMap<String, Group>,
        gid: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
    ) -> i16 {
        if !gs.contains_key(gid) {
            if generation < 0 {
                gs.insert(gid.to_string(), Group::new());
            } else {
                return ILLEGAL_GENERATION;
            }
        }
        let Some(g) = gs.get_mut(gid) else {
            return COORDINATOR_NOT_AVAILABLE;
        };
        if g.state == GroupState::Dead {
            return COORDINATOR_NOT_AVAILABLE;
        }
        if generation >= 0 || !member.is_empty() || instance.is_some() {
            let e = Self::check_member(g, member, instance, generation);
            if e != NONE {
                return e;
            }
        } else if g.state != GroupState::Empty {
            // Only members may commit to a non-empty group.
            return UNKNOWN_MEMBER_ID;
        }
        match g.state {
            GroupState::CompletingRebalance => REBALANCE_IN_PROGRESS,
            GroupState::Stable | GroupState::PreparingRebalance => {
                // A commit counts as a heartbeat.
                let t = g.members.get(member).map(|m| m.session_timeout_ms);
                if let Some(t) = t {
                    self.arm_heartbeat_locked(g, gid, member, i64::from(t));
                }
                NONE
            }
            _ => NONE,
        }
    }

    /// Validation only (tests).
    pub fn validate_commit(
        self: &Arc<Self>,
        gid: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
    ) -> i16 {
        let mut gs = self.lock();
        self.validate_commit_locked(&mut gs, gid, generation, member, instance)
    }

    /// OffsetCommit (Kafka's `handleCommitOffsets` + `storeOffsets`): validate, drop offsets
    /// whose metadata is over `offset.metadata.max.bytes` (OFFSET_METADATA_TOO_LARGE), append the
    /// rest with acks -1 and cache them once replicated. One code per offset, in order.
    pub async fn commit_offsets(
        self: &Arc<Self>,
        gid: &str,
        generation: i32,
        member: &str,
        instance: Option<&str>,
        offsets: Vec<((String, i32), CommittedOffset)>,
    ) -> Vec<i16> {
        let max = self.metadata_max_bytes();
        let (seq, incarnation, mut codes, wait, accepted) = {
            let mut gs = self.lock();
            let e = self.validate_commit_locked(&mut gs, gid, generation, member, instance);
            if e != NONE {
                return vec![e; offsets.len()];
            }
            let Some(g) = gs.get_mut(gid) else {
                return vec![COORDINATOR_NOT_AVAILABLE; offsets.len()];
            };
            let (codes, accepted, recs) = accept_offsets(gid, offsets, max);
            if accepted.is_empty() {
                return codes;
            }
            for (k, _) in &accepted {
                *g.pending_commits.entry(k.clone()).or_default() += 1;
            }
            // Appends happen under the lock, so this sequence follows the log order.
            let seq = self.next_seq();
            (
                seq,
                g.incarnation,
                codes,
                self.append_now(gid, recs, self.config.required_acks),
                accepted,
            )
        };
        let code = wait.await;
        let mut gs = self.lock();
        // A group deleted (Dead) meanwhile, or replaced by a new one of the same id, gets
        // nothing: Kafka's `storeOffsets` callback skips a Dead group. The answer is unchanged.
        let same = |g: &&mut Group| g.incarnation == incarnation && g.state != GroupState::Dead;
        if let Some(g) = gs.get_mut(gid).filter(same) {
            for (k, o) in accepted {
                if let Some(n) = g.pending_commits.get_mut(&k) {
                    *n -= 1;
                    if *n == 0 {
                        g.pending_commits.remove(&k);
                    }
                }
                let newer = g.offset_seq.get(&k).is_none_or(|s| *s < seq);
                if code == NONE && newer {
                    g.offsets.insert(k.clone(), o);
                    g.offset_seq.insert(k, seq);
                }
            }
        }
        if code != NONE {
            let e = commit_error(code);
            for c in codes.iter_mut().filter(|c| **c == NONE) {
                *c = e;
            }
        }
        codes
    }

    /// Cache offsets directly (tests).
    pub fn store_offsets(&self, gid: &str, offsets: Vec<((String, i32), CommittedOffset)>) {
        let mut gs = self.lock();
        let g = gs.entry(gid.to_string()).or_insert_with(Group::new);
        g.offsets.extend(offsets);
    }

    /// OffsetFetch (Kafka's `getOffsets`): committed offsets of a group, all of them when
    /// `wanted` is `None`; with `require_stable`, a partition with a commit in flight answers
    /// UNSTABLE_OFFSET_COMMIT.
    pub fn fetch_offsets(
        &self,
        gid: &str,
        wanted: Option<&[(String, i32)]>,
        require_stable: bool,
    ) -> Vec<((String, i32), Option<CommittedOffset>, i16)> {
        let gs = self.lock();
        let g = gs.get(gid).filter(|g| g.state != GroupState::Dead);
        let keys: Vec<(String, i32)> = match (wanted, g) {
            (Some(w), _) => w.to_vec(),
            (None, Some(g)) => g.offsets.keys().cloned().collect(),
            (None, None) => Vec::new(),
        };
        keys.into_iter()
            .map(|k| {
                let Some(g) = g else { return (k, None, NONE) };
                if require_stable
                    && (g.pending_commits.contains_key(&k) || g.has_pending_txn_offset(&k))
                {
                    return (k, None, UNSTABLE_OFFSET_COMMIT);
                }
                let o = g.offsets.get(&k).cloned();
                (k, o, NONE)
            })
            .collect()
    }

    /// Expire offsets of every group (Kafka's `cleanupGroupMetadata` with
    /// `removeExpiredOffsets`): tombstones for expired offsets; an Empty group left without
    /// offsets turns Dead, is removed and (generation > 0) gets a group tombstone. Returns the
    /// number of offsets removed.
    pub fn expire_offsets(&self, now: i64) -> usize {
        let retention = self.config.offsets_retention_ms;
        let mut gs = self.lock();
        let ids: Vec<String> = gs.keys().cloned().collect();
        let mut removed = 0;
        for gid in ids {
            let Some(g) = gs.get_mut(&gid) else { continue };
            let expired = g.remove_expired_offsets(now, retention);
            removed += expired.len();
            self.cleanup_locked(&mut gs, &gid, expired);
        }
        removed
    }

    /// Tombstones for `removed` offsets of `gid`; removes the group when it is Empty with no
    /// offsets left (tombstone too if it ever had a generation). Appended without waiting for
    /// replicas: a lost tombstone is written again by the next cleanup.
    fn cleanup_locked(
        &self,
        gs: &mut HashMap<String, Group>,
        gid: &str,
        removed: Vec<(String, i32)>,
    ) {
        let Some(g) = gs.get_mut(gid) else { return };
        let dead = g.state == GroupState::Dead
            || (g.state == GroupState::Empty && g.offsets.is_empty() && g.pending_txn.is_empty());
        let generation = g.generation;
        let mut recs: Vec<(Bytes, Option<Bytes>)> = removed
            .iter()
            .map(|(t, p)| (records::offset_key(gid, t, *p), None))
            .collect();
        if dead {
            if let Some(mut g) = gs.remove(gid) {
                g.state = GroupState::Dead;
                tracing::info!(group = gid, generation, "group transitioned to Dead");
            }
            if generation > 0 {
                recs.push((records::group_key(gid), None));
            }
        }
        if recs.is_empty() {
            return;
        }
        let wait = self.append_now(gid, recs, 0);
        let gid = gid.to_string();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let code = wait.await;
                if code != NONE {
                    tracing::warn!(group = gid, code, "writing tombstones failed");
                }
            });
        }
    }

    /// DeleteGroups for one group (Kafka's `handleDeleteGroups`): an Empty group turns Dead and
    /// its offsets and record get tombstones; GROUP_ID_NOT_FOUND if unknown, NON_EMPTY_GROUP if
    /// it has members.
    pub fn delete_group(&self, gid: &str) -> i16 {
        let mut gs = self.lock();
        let Some(g) = gs.get_mut(gid) else {
            return GROUP_ID_NOT_FOUND;
        };
        match g.state {
            GroupState::Dead => return GROUP_ID_NOT_FOUND,
            GroupState::Empty => {}
            _ => return NON_EMPTY_GROUP,
        }
        g.state = GroupState::Dead;
        let keys: Vec<(String, i32)> = std::mem::take(&mut g.offsets).into_keys().collect();
        self.cleanup_locked(&mut gs, gid, keys);
        NONE
    }

    /// OffsetDelete (Kafka's `handleDeleteOffsets`): `Err(group error)`, or per-partition codes.
    /// Empty groups lose any offset; a "consumer" group with members keeps offsets of topics it
    /// subscribes to (GROUP_SUBSCRIBED_TO_TOPIC); other non-empty groups get NON_EMPTY_GROUP.
    pub fn delete_offsets(
        &self,
        gid: &str,
        partitions: &[(String, i32)],
    ) -> std::result::Result<Vec<i16>, i16> {
        let mut gs = self.lock();
        let Some(g) = gs.get_mut(gid) else {
            return Err(GROUP_ID_NOT_FOUND);
        };
        let codes: Vec<i16> = match g.state {
            GroupState::Dead => return Err(GROUP_ID_NOT_FOUND),
            GroupState::Empty => vec![NONE; partitions.len()],
            _ if g.protocol_type.as_deref() == Some("consumer") => partitions
                .iter()
                .map(|(t, _)| {
                    if g.is_subscribed_to(t) {
                        GROUP_SUBSCRIBED_TO_TOPIC
                    } else {
                        NONE
                    }
                })
                .collect(),
            _ => return Err(NON_EMPTY_GROUP),
        };
        let mut removed = Vec::new();
        for (k, c) in partitions.iter().zip(&codes) {
            if *c == NONE {
                // A commit still in flight for this partition must not bring it back.
                g.offset_seq.insert(k.clone(), self.next_seq());
                for pending in g.pending_txn.values_mut() {
                    pending.remove(k);
                }
                if g.offsets.remove(k).is_some() {
                    removed.push(k.clone());
                }
            }
        }
        if codes.contains(&NONE) {
            self.cleanup_locked(&mut gs, gid, removed);
        }
        Ok(codes)
    }
}

/// Offsets accepted for a commit, keyed by (topic, partition).
pub(super) type AcceptedOffsets = Vec<((String, i32), CommittedOffset)>;

/// Per-partition codes, the accepted offsets and their records (see [`accept_offsets`]).
pub(super) type Accepted = (Vec<i16>, AcceptedOffsets, Vec<(Bytes, Option<Bytes>)>);

/// The shared first step of OffsetCommit and TxnOffsetCommit: a per-partition code
/// (OFFSET_METADATA_TOO_LARGE past `max_metadata`, Kafka counting UTF-16 code units as Java's
/// `String.length` does), the accepted offsets, and their `__consumer_offsets` records.
pub(super) fn accept_offsets(
    gid: &str,
    offsets: Vec<((String, i32), CommittedOffset)>,
    max_metadata: usize,
) -> Accepted {
    let mut codes = Vec::with_capacity(offsets.len());
    let mut accepted = Vec::new();
    for (k, o) in offsets {
        if o.metadata.encode_utf16().count() > max_metadata {
            codes.push(OFFSET_METADATA_TOO_LARGE);
        } else {
            codes.push(NONE);
            accepted.push((k, o));
        }
    }
    let recs = accepted
        .iter()
        .map(|((t, p), o)| {
            (
                records::offset_key(gid, t, *p),
                Some(records::offset_value(o)),
            )
        })
        .collect();
    (codes, accepted, recs)
}
