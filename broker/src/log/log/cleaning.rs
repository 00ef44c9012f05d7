//! The log cleaner's view of a [`Log`] (`crate::log::cleaner`): segment listing, aborted
//! transactions, active producers and the crash-safe swap of a cleaned segment group;
//! plus producer-state housekeeping (expiry, snapshot retention) the log manager runs.
//! A child module of `log.rs` so it can take the log's locks without widening its API.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::Log;
use crate::log::cleaner::{
    clean_log, CleanableLog, CleanedGroup, CleanerConfig, CompactionConfig, LastRecord, SegmentView,
};
use crate::log::segment::{file_name, LogSegment, DELETED_SUFFIX, LOG_SUFFIX, TXN_INDEX_SUFFIX};
use crate::log::txn_index::AbortedTxn;

impl Log {
    /// Drops producers idle for `producer.id.expiration.ms` (Kafka's periodic
    /// `removeExpiredProducers`, every `producer.id.expiration.check.interval.ms`).
    pub fn remove_expired_producers(&self, now_ms: i64) {
        self.w().producers.remove_expired_producers(now_ms);
    }

    /// Kafka's `deleteSnapshotsAfterRecoveryPointCheckpoint`: after the recovery point
    /// was checkpointed, producer snapshots below min(base of the segment before the
    /// active one, base of the segment holding the recovery point) are deleted. Returns
    /// that offset.
    pub fn delete_snapshots_after_recovery_point_checkpoint(&self) -> crate::error::Result<i64> {
        let mut w = self.w();
        let bases: Vec<i64> = self.segments().iter().map(|s| s.base_offset()).collect();
        let min = crate::log::producer_state::min_snapshots_offset_to_retain(
            &bases,
            self.recovery_point(),
        );
        w.producers
            .0
            .delete_snapshots_before(min)
            .map_err(|e| crate::error::Error::KafkaStorageError(e.to_string()))?;
        Ok(min)
    }
}

fn first_batch_max_timestamp(seg: &LogSegment) -> i64 {
    use std::os::unix::fs::FileExt;
    let mut h = [0u8; crate::log::batch::HEADER_LEN];
    if seg.size() < h.len() as u64 || seg.file().read_exact_at(&mut h, 0).is_err() {
        return -1;
    }
    crate::log::batch::BatchHeader::parse(&h).map_or(-1, |b| b.max_timestamp)
}

impl CleanableLog for Log {
    fn dir(&self) -> PathBuf {
        Log::dir(self)
    }

    fn compaction_config(&self) -> CompactionConfig {
        let c = self.config();
        CompactionConfig {
            delete_retention_ms: c.delete_retention_ms,
            min_compaction_lag_ms: c.min_compaction_lag_ms,
            max_compaction_lag_ms: c.max_compaction_lag_ms,
            min_cleanable_dirty_ratio: c.min_cleanable_dirty_ratio,
            segment_bytes: i64::from(c.segment_bytes),
            max_index_size: c.index_bytes() as i64,
        }
    }

    fn segment_views(&self) -> io::Result<Vec<SegmentView>> {
        let segs = self.segments();
        let mut out = Vec::with_capacity(segs.len());
        for (i, s) in segs.iter().enumerate() {
            let next_offset = match segs.get(i + 1) {
                Some(n) => n.base_offset(),
                None => s.read_next_offset()?,
            };
            out.push(SegmentView {
                base_offset: s.base_offset(),
                size: s.size(),
                file: s.file().clone(),
                last_modified_ms: s.last_modified_ms(),
                largest_timestamp: s.largest_timestamp(),
                first_batch_timestamp: first_batch_max_timestamp(s),
                next_offset,
            });
        }
        Ok(out)
    }

    fn log_start_offset(&self) -> i64 {
        Log::log_start_offset(self)
    }

    fn log_end_offset(&self) -> i64 {
        Log::log_end_offset(self)
    }

    fn last_stable_offset(&self) -> i64 {
        Log::last_stable_offset(self)
    }

    fn last_records_of_active_producers(&self) -> HashMap<i64, LastRecord> {
        let w = self.w();
        w.producers
            .0
            .active_producers()
            .iter()
            .map(|(&pid, e)| {
                let last = e.last_data_offset();
                (
                    pid,
                    LastRecord {
                        last_data_offset: (last >= 0).then_some(last),
                        producer_epoch: e.producer_epoch,
                    },
                )
            })
            .collect()
    }

    fn collect_aborted_txns(&self, start: i64, upper: i64) -> io::Result<Vec<AbortedTxn>> {
        let segs = self.segments();
        let first = segs
            .iter()
            .rposition(|s| s.base_offset() <= start)
            .unwrap_or(0);
        let mut out = Vec::new();
        for s in &segs[first..] {
            let r = s.txn_index().collect_aborted_txns(start, upper)?;
            out.extend(r.aborted);
            if r.is_complete {
                break;
            }
        }
        Ok(out)
    }

    fn replace_segments(&self, group: &CleanedGroup) -> io::Result<bool> {
        let config = self.config();
        let dir = Log::dir(self);
        // The writer lock orders the swap with appends, rolls and truncations.
        let mut w = self.w();
        let mut segs = self.segs_mut();
        let active = segs.keys().next_back().copied();
        if group
            .replaces
            .iter()
            .any(|b| !segs.contains_key(b) || Some(*b) == active)
        {
            return Ok(false);
        }
        let old: Vec<Arc<LogSegment>> = group
            .replaces
            .iter()
            .filter_map(|b| segs.get(b).cloned())
            .collect();
        if old.len() != group.replaced_sizes.len()
            || old
                .iter()
                .zip(&group.replaced_sizes)
                .any(|(s, &n)| s.size() != n)
        {
            return Ok(false);
        }
        // Old files go to `.deleted` (removed after file.delete.delay.ms); from here on a
        // crash leaves only the `.swap`, which the loader installs.
        let due = crate::log::segment::now_ms().saturating_add(config.file_delete_delay_ms);
        for s in &old {
            s.change_file_suffixes("", DELETED_SUFFIX)?;
            self.deletes.push(due, s.clone());
        }
        let base = group.base_offset;
        std::fs::rename(&group.log_swap, file_name(&dir, base, LOG_SUFFIX))?;
        if let Some(t) = &group.txn_index_swap {
            std::fs::rename(t, file_name(&dir, base, TXN_INDEX_SUFFIX))?;
        }
        crate::log::checkpoint::fsync_dir(&dir)?;
        let (seg, _) = LogSegment::open(&dir, base, &config, true, 0)?;
        // Indexes are rebuilt from the cleaned data (the loader would do the same).
        seg.recover(
            config.index_interval_bytes.max(0) as usize,
            config.index_bytes(),
            |_, _| {},
        )?;
        // Recovery resets the transaction index; put the cleaned entries back.
        for t in &group.aborted {
            seg.txn_index().append(t)?;
        }
        seg.txn_index().flush()?;
        seg.on_become_inactive()?;
        for s in &old {
            segs.remove(&s.base_offset());
            if s.base_offset() != base {
                let _ = w.producers.remove_snapshot_of_segment(s.base_offset());
            }
        }
        segs.insert(base, Arc::new(seg));
        Ok(true)
    }
}

/// One pass of the cleaner over the logs of one log dir (Kafka's cleaner thread body,
/// run every `log.cleaner.backoff.ms`): cleans each compacted log that needs it, then
/// rewrites `<log_dir>/cleaner-offset-checkpoint` (first dirty offset per partition,
/// only partitions still present). Returns how many logs were cleaned.
pub fn clean_dir_once(
    log_dir: &std::path::Path,
    logs: &[Arc<Log>],
    cfg: &CleanerConfig,
    now_ms: i64,
) -> io::Result<usize> {
    use crate::log::checkpoint::{OffsetCheckpointFile, CLEANER_OFFSET_CHECKPOINT};
    let file = OffsetCheckpointFile::new(log_dir.join(CLEANER_OFFSET_CHECKPOINT))?;
    let mut offsets = match file.read_offsets() {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(
                "ignoring unreadable cleaner checkpoint in {}: {e}",
                log_dir.display()
            );
            HashMap::new()
        }
    };
    let mut cleaned = 0;
    let mut present = std::collections::HashSet::new();
    for log in logs {
        let tp = log.topic_partition().clone();
        present.insert(tp.clone());
        if !log.config().compact || log.is_offline() {
            continue;
        }
        let cp = offsets.get(&tp).copied();
        match clean_log(log.as_ref(), cfg, cp, now_ms, false) {
            Ok(Some(r)) => {
                tracing::info!(
                    "cleaned log {tp}: {} groups, {} -> {} bytes, next dirty offset {}",
                    r.groups,
                    r.stats.bytes_read,
                    r.stats.bytes_written,
                    r.end_offset
                );
                offsets.insert(tp, r.end_offset);
                cleaned += 1;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("cleaning {tp} failed: {e}"),
        }
    }
    offsets.retain(|tp, _| present.contains(tp));
    file.write_offsets(offsets.iter().map(|(tp, o)| (tp, *o)))?;
    Ok(cleaned)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::BytesMut;

    use super::*;
    use crate::log::cleaner::tests::{batch as kv_batch, contents};
    use crate::log::cleaner::{write_cleaned_group, CleanerConfig};
    use crate::log::config::{CompressionCodec, LogConfig};
    use crate::log::log::AppendOrigin;

    fn compact_config() -> LogConfig {
        LogConfig {
            compact: true,
            delete: false,
            segment_bytes: 2048,
            segment_index_bytes: 4096,
            index_interval_bytes: 256,
            min_cleanable_dirty_ratio: 0.5,
            ..LogConfig::default()
        }
    }

    /// Every record in the log's segment files, in order.
    fn all_records(log: &Log) -> Vec<(i64, Option<Vec<u8>>, bool)> {
        let mut out = Vec::new();
        for s in log.segments() {
            let mut buf = vec![0u8; s.size() as usize];
            std::os::unix::fs::FileExt::read_exact_at(s.file().as_ref(), &mut buf, 0).unwrap();
            out.extend(contents(&buf));
        }
        out
    }

    /// key → (offset, value present) of the latest record per key.
    fn latest(recs: &[(i64, Option<Vec<u8>>, bool)]) -> BTreeMap<Vec<u8>, (i64, bool)> {
        let mut m = BTreeMap::new();
        for (o, k, v) in recs {
            if let Some(k) = k {
                m.insert(k.clone(), (*o, *v));
            }
        }
        m
    }

    fn fill(log: &Log, n: usize, keys: usize) {
        for i in 0..n {
            let k = format!("key-{}", i % keys);
            let v = format!("value-{i}");
            let b = kv_batch(
                0,
                &[(Some(k.as_bytes()), Some(v.as_bytes()))],
                CompressionCodec::None,
                -1,
                0,
            );
            log.append_as_leader(BytesMut::from(&b[..]), 0, AppendOrigin::Client)
                .unwrap();
        }
    }

    #[test]
    fn clean_keeps_latest_per_key_and_survives_reopen() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c-0");
        let log = Log::open_standalone(&dir, compact_config()).unwrap();
        fill(&log, 200, 10);
        log.roll(None).unwrap();
        fill(&log, 5, 10);
        // High watermark bounds the LSO, which bounds cleaning.
        log.update_high_watermark(log.log_end_offset());
        let before = all_records(&log);
        let leo = log.log_end_offset();
        assert!(log.segments().len() > 3);

        let r = clean_log(log.as_ref(), &CleanerConfig::default(), None, 10_000, false)
            .unwrap()
            .expect("dirty enough to clean");
        let after = all_records(&log);
        assert_eq!(
            latest(&after),
            latest(&before),
            "latest value of every key kept"
        );
        assert!(after.len() < before.len());
        assert!(
            after.windows(2).all(|w| w[0].0 < w[1].0),
            "offsets increase"
        );
        assert_eq!(log.log_end_offset(), leo);
        // Below the cleaned end, one record per key.
        let cleaned_part: Vec<_> = after.iter().filter(|x| x.0 < r.end_offset).collect();
        let mut keys: Vec<_> = cleaned_part.iter().map(|x| x.1.clone()).collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "no duplicate keys in the cleaned range");
        // Reading through the log still works, and a reopen sees the same data.
        drop(log);
        let log = Log::open_standalone(&dir, compact_config()).unwrap();
        assert_eq!(all_records(&log), after);
        assert_eq!(log.log_end_offset(), leo);
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with(".cleaned") || n.ends_with(".swap")),
            "{names:?}"
        );
    }

    #[test]
    fn crash_mid_clean_is_recovered_by_the_loader() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c-0");
        let log = Log::open_standalone(&dir, compact_config()).unwrap();
        fill(&log, 100, 4);
        log.roll(None).unwrap();
        fill(&log, 2, 4);
        let before = all_records(&log);
        let segs = log.segment_views().unwrap();
        let first = &segs[0];
        // Clean the first segment by hand: keep only its last record.
        let mut raw = Vec::new();
        first
            .for_each_batch(|b| {
                raw.clear();
                raw.extend_from_slice(b);
                Ok(true)
            })
            .unwrap();
        drop(log);

        // Crash before the rename to .swap: the .cleaned file is ignored.
        let cleaned = dir.join(format!("{:020}.log.cleaned", first.base_offset));
        std::fs::write(&cleaned, &raw).unwrap();
        let log = Log::open_standalone(&dir, compact_config()).unwrap();
        assert_eq!(all_records(&log), before);
        assert!(!cleaned.exists());
        drop(log);

        // Crash after the rename to .swap (old segment still there): the swap wins.
        write_cleaned_group(
            &dir,
            first.base_offset,
            &raw,
            &[],
            vec![first.base_offset],
            vec![first.size],
            0,
        )
        .unwrap();
        let log = Log::open_standalone(&dir, compact_config()).unwrap();
        let after = all_records(&log);
        let last_of_first = contents(&raw)[0].0;
        assert!(after
            .iter()
            .all(|r| r.0 >= last_of_first || r.0 >= first.next_offset));
        assert_eq!(
            after.len(),
            before.len() - before.iter().filter(|r| r.0 < first.next_offset).count() + 1
        );
        assert_eq!(log.log_end_offset(), before.last().unwrap().0 + 1);
    }

    fn idempotent(key: &str, seq: i32) -> BytesMut {
        let mut b = kv_batch(
            0,
            &[(Some(key.as_bytes()), Some(b"v"))],
            CompressionCodec::None,
            5,
            0,
        );
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        let crc = crc32c::crc32c(&b[crate::log::batch::CRC_START..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        BytesMut::from(&b[..])
    }

    #[test]
    fn dir_pass_checkpoints_and_producer_state_survives() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c-0");
        let log = Log::open_standalone(&dir, compact_config()).unwrap();
        // An idempotent producer writes the same key over and over; its last batch must
        // survive cleaning so its sequence is known after a restart.
        for seq in 0..60 {
            log.append_as_leader(idempotent("same", seq), 0, AppendOrigin::Client)
                .unwrap();
        }
        log.roll(None).unwrap();
        fill(&log, 3, 3);
        log.update_high_watermark(log.log_end_offset());
        let cfg = CleanerConfig::default();
        assert_eq!(
            clean_dir_once(root.path(), std::slice::from_ref(&log), &cfg, 10_000).unwrap(),
            1
        );
        let cp = std::fs::read_to_string(root.path().join("cleaner-offset-checkpoint")).unwrap();
        let first_dirty = log.segments().last().unwrap().base_offset();
        assert_eq!(cp, format!("0\n1\nc 0 {first_dirty}\n"));
        // Nothing new to clean: no second pass.
        assert_eq!(
            clean_dir_once(root.path(), std::slice::from_ref(&log), &cfg, 10_000).unwrap(),
            0
        );
        let recs = all_records(&log);
        assert_eq!(
            recs.iter()
                .filter(|r| r.1.as_deref() == Some(&b"same"[..]))
                .count(),
            1
        );
        drop(log);
        let log = Log::open_standalone(&dir, compact_config()).unwrap();
        // Retry of the last batch: duplicate with its original offset.
        let dup = log
            .append_as_leader(idempotent("same", 59), 0, AppendOrigin::Client)
            .unwrap();
        assert!(dup.duplicate);
        assert_eq!(dup.first_offset, 59);
        // Next sequence accepted; a gap is refused.
        log.append_as_leader(idempotent("same", 60), 0, AppendOrigin::Client)
            .unwrap();
        assert!(log
            .append_as_leader(idempotent("same", 62), 0, AppendOrigin::Client)
            .is_err());
    }

    #[test]
    fn swap_refused_when_segment_changed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c-0");
        let log = Log::open_standalone(&dir, compact_config()).unwrap();
        fill(&log, 30, 3);
        log.roll(None).unwrap();
        let first = log.segment_views().unwrap()[0].clone();
        let g = write_cleaned_group(
            &dir,
            first.base_offset,
            &[],
            &[],
            vec![first.base_offset],
            vec![first.size + 1],
            0,
        )
        .unwrap();
        assert!(
            !log.replace_segments(&g).unwrap(),
            "size mismatch: log changed underneath"
        );
        let g = write_cleaned_group(&dir, 12345, &[], &[], vec![12345], vec![0], 0).unwrap();
        assert!(!log.replace_segments(&g).unwrap(), "unknown segment");
        let active = log.segments().last().unwrap().base_offset();
        let g = write_cleaned_group(&dir, active, &[], &[], vec![active], vec![0], 0).unwrap();
        assert!(
            !log.replace_segments(&g).unwrap(),
            "never the active segment"
        );
    }

    #[test]
    fn aborted_transaction_data_is_cleaned_away() {
        use crate::log::batch::attr;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c-0");
        let log = Log::open_standalone(&dir, compact_config()).unwrap();
        let t = kv_batch(
            0,
            &[(Some(b"t"), Some(b"aborted"))],
            CompressionCodec::None,
            7,
            attr::TRANSACTIONAL,
        );
        log.append_as_leader(BytesMut::from(&t[..]), 0, AppendOrigin::Client)
            .unwrap();
        fill(&log, 3, 3);
        let abort = crate::log::cleaner::tests::marker(0, 7, false);
        log.append_as_leader(BytesMut::from(&abort[..]), 0, AppendOrigin::Coordinator)
            .unwrap();
        let idx = log.segments()[0].txn_index().all_aborted_txns().unwrap();
        assert_eq!(idx.len(), 1, "abort indexed on append");
        assert_eq!(
            (idx[0].producer_id, idx[0].first_offset, idx[0].last_offset),
            (7, 0, 4)
        );
        fill(&log, 3, 3);
        log.roll(None).unwrap();
        fill(&log, 1, 3);
        log.update_high_watermark(log.log_end_offset());
        clean_log(log.as_ref(), &CleanerConfig::default(), None, 10_000, true)
            .unwrap()
            .unwrap();
        let recs = all_records(&log);
        assert!(
            recs.iter().all(|r| r.1.as_deref() != Some(&b"t"[..])),
            "aborted data removed"
        );
        // The marker stays this round, with its index entry rewritten in the new segment.
        let idx = log.segments()[0].txn_index().all_aborted_txns().unwrap();
        assert_eq!(idx.len(), 1);
        assert_eq!(idx[0].last_offset, 4);
    }

    #[test]
    fn snapshot_retention_after_recovery_point_checkpoint() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("c-0");
        let log = Log::open_standalone(&dir, compact_config()).unwrap();
        for seq in 0..4 {
            log.append_as_leader(idempotent("k", seq), 0, AppendOrigin::Client)
                .unwrap();
            log.roll(None).unwrap();
        }
        let snaps = |d: &std::path::Path| {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".snapshot"))
                .collect();
            v.sort();
            v
        };
        assert!(snaps(&dir).len() >= 3, "{:?}", snaps(&dir));
        log.flush(log.log_end_offset()).unwrap();
        let min = log
            .delete_snapshots_after_recovery_point_checkpoint()
            .unwrap();
        let bases: Vec<i64> = log.segments().iter().map(|s| s.base_offset()).collect();
        assert_eq!(
            min,
            bases[bases.len() - 2],
            "keep the last two segments' snapshots"
        );
        assert!(
            snaps(&dir)
                .iter()
                .all(|n| n[..20].parse::<i64>().unwrap() >= min),
            "{:?}",
            snaps(&dir)
        );
        log.remove_expired_producers(i64::MAX / 2);
        // Producer state is gone: any sequence is accepted again.
        log.append_as_leader(idempotent("k", 77), 0, AppendOrigin::Client)
            .unwrap();
    }
}
