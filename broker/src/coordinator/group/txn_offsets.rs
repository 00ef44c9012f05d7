//! Transactional offset commits (Kafka's `GroupCoordinator.handleTxnCommitOffsets`,
//! `GroupMetadataManager.storeOffsets` with a producer id, `GroupMetadata`'s
//! `pendingTransactionalOffsetCommits`).
//!
//! A TxnOffsetCommit writes its offsets to the group's `__consumer_offsets` partition as a
//! transactional batch of the producer (id/epoch), and keeps them per producer as pending:
//! invisible to OffsetFetch (which answers UNSTABLE_OFFSET_COMMIT for them when
//! `require_stable`), until the transaction coordinator's marker lands in that partition.
//! WriteTxnMarkers then calls [`GroupCoordinator::complete_txn_offsets`]: COMMIT installs
//! each offset unless a later commit (by log order) is already cached, ABORT drops them.

use std::sync::Arc;

use bytes::Bytes;

use super::codes::*;
use super::offsets::accept_offsets;
use super::{commit_error, AppendWait, CommittedOffset, Group, GroupCoordinator, GroupState};
use crate::log::producer_state::VerificationGuard;

/// The producer a transactional offset batch is written for.
#[derive(Debug, Clone, Copy)]
pub struct TxnWrite {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// KIP-890 guard from verifying the `__consumer_offsets` partition with the transaction
    /// coordinator (`SENTINEL` when no verification was needed or it is disabled).
    pub guard: VerificationGuard,
}

/// (group id, records, producer) -> appends the transactional batch to the group's partition
/// *now* (acks -1) and returns the wait for the acks.
pub type TxnAppendFn =
    Arc<dyn Fn(&str, Vec<(Bytes, Option<Bytes>)>, TxnWrite) -> AppendWait + Send + Sync>;

impl Group {
    /// Whether a transactional commit of `k` awaits its marker (OffsetFetch `require_stable`).
    pub(super) fn has_pending_txn_offset(&self, k: &(String, i32)) -> bool {
        self.pending_txn.values().any(|p| p.contains_key(k))
    }
}

/// One transactional offset commit awaiting its marker.
#[derive(Debug, Clone)]
pub struct PendingTxnOffset {
    pub offset: CommittedOffset,
    /// Append sequence of its record (log order among this coordinator's appends); `None`
    /// while the append is in flight. Loaded commits get a sequence below every new one.
    pub seq: Option<u64>,
}

impl GroupCoordinator {
    /// Install the transactional record writer.
    pub fn set_txn_append(&self, f: TxnAppendFn) {
        *self.txn_append.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    fn txn_append_now(
        &self,
        gid: &str,
        recs: Vec<(Bytes, Option<Bytes>)>,
        write: TxnWrite,
    ) -> AppendWait {
        let f = self
            .txn_append
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match f {
            Some(f) => f(gid, recs, write),
            None => Box::pin(std::future::ready(NONE)),
        }
    }

    /// After a load: installs `gid`'s pending transactional commits and orders them with its
    /// committed offsets by log position (fresh sequence numbers, ascending), so a marker
    /// completing later keeps whichever commit the log holds last.
    pub(super) fn install_loaded_offsets(
        &self,
        g: &mut Group,
        gid: &str,
        l: &mut super::load::LoadedPartition,
    ) {
        let pending = l.pending_txn.remove(gid).unwrap_or_default();
        let pos = |k: &(String, i32), pid: i64| {
            l.positions
                .get(&((gid.to_string(), k.0.clone(), k.1), pid))
                .copied()
                .unwrap_or(-1)
        };
        // (log position, producer id or -1, partition)
        let mut order: Vec<(i64, i64, (String, i32))> = g
            .offsets
            .keys()
            .map(|k| (pos(k, -1), -1, k.clone()))
            .collect();
        for (pid, commits) in &pending {
            order.extend(commits.keys().map(|k| (pos(k, *pid), *pid, k.clone())));
        }
        order.sort();
        for (pid, commits) in pending {
            g.pending_txn.insert(
                pid,
                commits
                    .into_iter()
                    .map(|(k, offset)| (k, PendingTxnOffset { offset, seq: None }))
                    .collect(),
            );
        }
        for (_, pid, k) in order {
            let seq = self.next_seq();
            if pid < 0 {
                g.offset_seq.insert(k, seq);
            } else if let Some(p) = g.pending_txn.get_mut(&pid).and_then(|m| m.get_mut(&k)) {
                p.seq = Some(seq);
            }
        }
    }

    /// TxnOffsetCommit (Kafka's `handleTxnCommitOffsets` after the transaction verification):
    /// a missing group is created Empty; Dead -> COORDINATOR_NOT_AVAILABLE; member id,
    /// instance id or generation >= 0 are validated as for OffsetCommit (UNKNOWN_MEMBER_ID,
    /// FENCED_INSTANCE_ID, ILLEGAL_GENERATION), but unlike OffsetCommit a non-empty group
    /// accepts commits without member information (clients before v3 send none). Offsets with
    /// over-long metadata get OFFSET_METADATA_TOO_LARGE; the rest are written as the
    /// producer's transactional batch and stay pending until the transaction's marker.
    /// One code per offset, in order.
    #[allow(clippy::too_many_arguments)]
    pub async fn commit_txn_offsets(
        self: &Arc<Self>,
        gid: &str,
        write: TxnWrite,
        generation: i32,
        member: &str,
        instance: Option<&str>,
        offsets: Vec<((String, i32), CommittedOffset)>,
    ) -> Vec<i16> {
        let max = self.metadata_max_bytes();
        let pid = write.producer_id;
        let (seq, incarnation, mut codes, wait, accepted) = {
            // The handler checked ownership before verifying the partition with the transaction
            // coordinator (a network round trip): check again, holding the partition table while
            // taking the group lock (the order `finish_load` uses). A group made here while the
            // partition is unloaded or loading would be an empty generation-0 group that the
            // next load keeps instead of the log's (`finish_load` skips cached groups), losing
            // the group's committed offsets (found by the fault drill).
            let parts = self.parts();
            if let Some(p) = self.partition_of(gid) {
                let e = if parts.loading.contains_key(&p) {
                    Some(COORDINATOR_LOAD_IN_PROGRESS)
                } else if !parts.owned.contains(&p) {
                    Some(NOT_COORDINATOR)
                } else {
                    None
                };
                if let Some(e) = e {
                    return vec![e; offsets.len()];
                }
            }
            let mut gs = self.lock();
            drop(parts);
            let g = gs.entry(gid.to_string()).or_insert_with(Group::new);
            let e = if g.state == GroupState::Dead {
                COORDINATOR_NOT_AVAILABLE
            } else if generation < 0 && g.state == GroupState::Empty {
                NONE
            } else if generation >= 0 || !member.is_empty() || instance.is_some() {
                Self::check_member(g, member, instance, generation)
            } else {
                NONE
            };
            if e != NONE {
                return vec![e; offsets.len()];
            }
            let (codes, accepted, recs) = accept_offsets(gid, offsets, max);
            if accepted.is_empty() {
                return codes;
            }
            let pending = g.pending_txn.entry(pid).or_default();
            for (k, o) in &accepted {
                pending.insert(
                    k.clone(),
                    PendingTxnOffset {
                        offset: o.clone(),
                        seq: None,
                    },
                );
            }
            // Appends happen under the lock, so this sequence follows the log order.
            let seq = self.next_seq();
            (
                seq,
                g.incarnation,
                codes,
                self.txn_append_now(gid, recs, write),
                accepted,
            )
        };
        let code = wait.await;
        let mut gs = self.lock();
        let same = |g: &&mut Group| g.incarnation == incarnation && g.state != GroupState::Dead;
        if let Some(g) = gs.get_mut(gid).filter(same) {
            if let Some(pending) = g.pending_txn.get_mut(&pid) {
                for (k, o) in &accepted {
                    // Only the entry this request staged (a later commit may have replaced it).
                    let ours = pending
                        .get(k)
                        .is_some_and(|p| p.seq.is_none() && p.offset == *o);
                    if !ours {
                        continue;
                    }
                    if code == NONE {
                        if let Some(p) = pending.get_mut(k) {
                            p.seq = Some(seq);
                        }
                    } else {
                        pending.remove(k);
                    }
                }
                if pending.is_empty() {
                    g.pending_txn.remove(&pid);
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

    /// The transaction of `producer_id` ended in the `__consumer_offsets` partitions
    /// `partitions` (partition, offset of the marker; the marker is replicated there): commit
    /// or discard its pending offsets in every live group of those partitions (Kafka's
    /// `handleTxnCompletion`). A partition still loading gets the completion once its load
    /// is installed, unless the load already read the marker (Kafka runs loads and
    /// completions on one scheduler thread, with the same effect).
    pub fn complete_txn_offsets(&self, producer_id: i64, partitions: &[(i32, i64)], commit: bool) {
        let n = self
            .partition_count
            .load(std::sync::atomic::Ordering::Relaxed);
        // Lock order: partitions, then groups.
        let mut parts = self.parts();
        let mut now = Vec::with_capacity(partitions.len());
        for &(p, marker_offset) in partitions {
            if parts.loading.contains_key(&p) {
                parts
                    .deferred_txn
                    .entry(p)
                    .or_default()
                    .push((producer_id, commit, marker_offset));
            } else {
                now.push(p);
            }
        }
        let mut gs = self.lock();
        drop(parts);
        if !now.is_empty() {
            Self::complete_txn_locked(&mut gs, n, producer_id, &now, commit);
        }
    }

    /// [`Self::complete_txn_offsets`] for partitions that are not loading.
    pub(super) fn complete_txn_locked(
        gs: &mut std::collections::HashMap<String, Group>,
        n: i32,
        producer_id: i64,
        partitions: &[i32],
        commit: bool,
    ) {
        for (gid, g) in gs.iter_mut() {
            if g.state == GroupState::Dead || !g.pending_txn.contains_key(&producer_id) {
                continue;
            }
            if n > 0 && !partitions.contains(&crate::coordinator::partition_for(gid, n)) {
                continue;
            }
            let Some(pending) = g.pending_txn.remove(&producer_id) else {
                continue;
            };
            if !commit {
                tracing::debug!(group = gid, producer_id, "transactional offsets aborted");
                continue;
            }
            for (k, p) in pending {
                let Some(seq) = p.seq else {
                    // Kafka raises an IllegalStateException here: the marker cannot come
                    // before the commit record it ends.
                    tracing::warn!(
                        group = gid,
                        producer_id,
                        "transaction marker before its offset commit record was appended"
                    );
                    continue;
                };
                if g.offset_seq.get(&k).is_none_or(|s| *s < seq) {
                    g.offsets.insert(k.clone(), p.offset);
                    g.offset_seq.insert(k, seq);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::group::GroupConfig;

    fn off(o: i64) -> CommittedOffset {
        CommittedOffset {
            offset: o,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 1,
            expire_timestamp: None,
        }
    }

    fn write(pid: i64) -> TxnWrite {
        TxnWrite {
            producer_id: pid,
            producer_epoch: 0,
            guard: VerificationGuard::SENTINEL,
        }
    }

    fn k(p: i32) -> (String, i32) {
        ("t".to_string(), p)
    }

    fn fetched(c: &GroupCoordinator, stable: bool) -> Vec<(i32, Option<i64>, i16)> {
        c.fetch_offsets("g", Some(&[k(0), k(1)]), stable)
            .into_iter()
            .map(|((_, p), o, e)| (p, o.map(|o| o.offset), e))
            .collect()
    }

    #[tokio::test]
    async fn pending_until_the_marker() {
        let c = GroupCoordinator::new(GroupConfig::default());
        c.set_partition_count(50);
        let p = c.partition_of("g").expect("partition");
        // The coordinator owns the group's partition (loaded, empty).
        let token = c.begin_load(p, 0).expect("load");
        c.finish_load(p, token, Some(Default::default()));
        let codes = c
            .commit_txn_offsets("g", write(7), -1, "", None, vec![(k(0), off(10))])
            .await;
        assert_eq!(codes, vec![NONE]);
        assert_eq!(fetched(&c, false), vec![(0, None, NONE), (1, None, NONE)]);
        assert_eq!(
            fetched(&c, true),
            vec![(0, None, UNSTABLE_OFFSET_COMMIT), (1, None, NONE)]
        );
        // A marker in another offsets partition does nothing here.
        c.complete_txn_offsets(7, &[((p + 1) % 50, 0)], true);
        assert_eq!(fetched(&c, false)[0], (0, None, NONE));
        c.complete_txn_offsets(7, &[(p, 0)], true);
        assert_eq!(fetched(&c, true)[0], (0, Some(10), NONE));

        // Aborted: discarded.
        c.commit_txn_offsets("g", write(8), -1, "", None, vec![(k(1), off(20))])
            .await;
        c.complete_txn_offsets(8, &[(p, 0)], false);
        assert_eq!(fetched(&c, true)[1], (1, None, NONE));

        // A plain commit after the transactional one wins when the marker comes later.
        c.commit_txn_offsets("g", write(9), -1, "", None, vec![(k(0), off(30))])
            .await;
        let plain = c
            .commit_offsets("g", -1, "", None, vec![(k(0), off(31))])
            .await;
        assert_eq!(plain, vec![NONE]);
        c.complete_txn_offsets(9, &[(p, 0)], true);
        assert_eq!(fetched(&c, true)[0], (0, Some(31), NONE));
    }

    #[tokio::test]
    async fn member_validation_and_metadata_size() {
        let c = GroupCoordinator::new(GroupConfig {
            offset_metadata_max_bytes: 3,
            ..GroupConfig::default()
        });
        // v3+ member information must name a current member.
        let codes = c
            .commit_txn_offsets("g", write(1), 2, "m", None, vec![(k(0), off(1))])
            .await;
        assert_eq!(codes, vec![UNKNOWN_MEMBER_ID]);
        let mut long = off(2);
        long.metadata = "four".into();
        let codes = c
            .commit_txn_offsets(
                "g",
                write(1),
                -1,
                "",
                None,
                vec![(k(0), long), (k(1), off(3))],
            )
            .await;
        assert_eq!(codes, vec![OFFSET_METADATA_TOO_LARGE, NONE]);
        c.complete_txn_offsets(1, &[(0, 0), (1, 0), (2, 0)], true);
        c.set_partition_count(0);
        c.complete_txn_offsets(1, &[], true);
        assert_eq!(
            fetched(&c, false),
            vec![(0, None, NONE), (1, Some(3), NONE)]
        );
    }

    fn loaded_with_pending(
        pid: i64,
        offset: i64,
        end_offset: i64,
    ) -> super::super::load::LoadedPartition {
        let mut l = super::super::load::LoadedPartition::default();
        l.pending_txn
            .entry("g".to_string())
            .or_default()
            .entry(pid)
            .or_default()
            .insert(k(0), off(offset));
        l.end_offset = end_offset;
        l
    }

    #[test]
    fn markers_during_a_load_apply_after_it() {
        let c = GroupCoordinator::new(GroupConfig::default());
        c.set_partition_count(50);
        let p = c.partition_of("g").expect("partition");
        // The marker (offset 100) lands after the load read up to 100: applied afterwards.
        let token = c.begin_load(p, 0).expect("load");
        c.complete_txn_offsets(7, &[(p, 100)], true);
        c.finish_load(p, token, Some(loaded_with_pending(7, 10, 100)));
        assert_eq!(fetched(&c, true)[0], (0, Some(10), NONE));
        c.unload_partition(p);

        // The load read the marker (offset 50 < 100): the pending commit it found belongs to
        // a later transaction and stays pending.
        let token = c.begin_load(p, 1).expect("load");
        c.complete_txn_offsets(7, &[(p, 50)], true);
        c.finish_load(p, token, Some(loaded_with_pending(7, 20, 100)));
        assert_eq!(fetched(&c, true)[0], (0, None, UNSTABLE_OFFSET_COMMIT));
        c.complete_txn_offsets(7, &[(p, 120)], false);
        assert_eq!(fetched(&c, true)[0], (0, None, NONE));
    }
}
