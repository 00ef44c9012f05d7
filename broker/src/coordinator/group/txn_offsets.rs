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

use super::{CommittedOffset, GroupCoordinator, GroupState};

/// One transactional offset commit awaiting its marker.
#[derive(Debug, Clone)]
pub struct PendingTxnOffset {
    pub offset: CommittedOffset,
    /// Append sequence of its record (log order among this coordinator's appends); `None`
    /// while the append is in flight. Loaded commits get a sequence below every new one.
    pub seq: Option<u64>,
}

impl GroupCoordinator {
    /// The transaction of `producer_id` ended in the `__consumer_offsets` partitions
    /// `partitions` (its marker is replicated there): commit or discard its pending offsets
    /// in every live group of those partitions (Kafka's `handleTxnCompletion`).
    pub fn complete_txn_offsets(&self, producer_id: i64, partitions: &[i32], commit: bool) {
        let n = self
            .partition_count
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut gs = self.lock();
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
