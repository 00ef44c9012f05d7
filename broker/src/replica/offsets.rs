//! Offset lookups on hosted partitions: ListOffsets, DeleteRecords,
//! OffsetsForLeaderEpoch, and the per-dir view for DescribeLogDirs.

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use samsa_common::types::TopicPartition;
use tokio::time::Instant;

use super::manager::ReplicaManager;
use super::partition::{codes, Partition};
use super::purgatory::wait_any;
use crate::log::{Log, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};

/// `EARLIEST_LOCAL_TIMESTAMP` (-4) and `LATEST_TIERED_TIMESTAMP` (-5).
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
pub const LATEST_TIERED_TIMESTAMP: i64 = -5;
/// `ListOffsetsRequest.DEBUG_FOLLOWER_ID`: may read from followers.
pub const DEBUG_FOLLOWER_ID: i32 = -2;

/// A ListOffsets answer for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAnswer {
    pub error_code: i16,
    pub timestamp: i64,
    pub offset: i64,
    pub leader_epoch: i32,
}

impl OffsetAnswer {
    fn error(code: i16) -> Self {
        Self {
            error_code: code,
            timestamp: -1,
            offset: -1,
            leader_epoch: -1,
        }
    }
}

/// One partition's directory entry for DescribeLogDirs.
#[derive(Debug, Clone)]
pub struct LogDirPartition {
    pub tp: TopicPartition,
    pub size: i64,
    pub offset_lag: i64,
    /// A replica being moved into this dir (DescribeLogDirs `is_future_key`).
    pub is_future: bool,
}

impl ReplicaManager {
    fn local_log_for(
        &self,
        tp: &TopicPartition,
        current_leader_epoch: i32,
        leader_only: bool,
    ) -> std::result::Result<(Arc<Partition>, Arc<Log>), i16> {
        let Some(p) = self.partition(tp) else {
            return Err(codes::UNKNOWN_TOPIC_OR_PARTITION);
        };
        if let Err(e) = p.check_leader_epoch(current_leader_epoch) {
            return Err(e.code());
        }
        if leader_only && !p.is_leader() {
            return Err(codes::NOT_LEADER_OR_FOLLOWER);
        }
        match p.log() {
            Some(l) => Ok((p, l)),
            None => Err(codes::NOT_LEADER_OR_FOLLOWER),
        }
    }

    /// Kafka `Partition.fetchOffsetForTimestamp`. `isolation` is `None` for
    /// replica (non-client) requests, else 0 read_uncommitted / 1 read_committed.
    pub fn fetch_offset_for_timestamp(
        &self,
        tp: &TopicPartition,
        timestamp: i64,
        isolation: Option<i8>,
        current_leader_epoch: i32,
        leader_only: bool,
    ) -> OffsetAnswer {
        let (p, log) = match self.local_log_for(tp, current_leader_epoch, leader_only) {
            Ok(x) => x,
            Err(code) => return OffsetAnswer::error(code),
        };
        let view = p.view();
        let last_fetchable = match isolation {
            Some(1) => log.last_stable_offset(),
            Some(_) => log.high_watermark(),
            None => log.log_end_offset(),
        };
        // A fresh leader whose HW has not reached its epoch start cannot answer clients yet.
        let not_available = isolation.is_some()
            && view.is_leader
            && view.leader_epoch_start_offset > log.high_watermark();
        match timestamp {
            LATEST_TIMESTAMP => {
                if not_available {
                    return OffsetAnswer::error(codes::OFFSET_NOT_AVAILABLE);
                }
                OffsetAnswer {
                    error_code: codes::NONE,
                    timestamp: -1,
                    offset: last_fetchable,
                    leader_epoch: view.leader_epoch,
                }
            }
            LATEST_TIERED_TIMESTAMP => OffsetAnswer {
                // No tiered storage: Kafka answers -1 offset with the current epoch unset.
                error_code: codes::NONE,
                timestamp: -1,
                offset: -1,
                leader_epoch: -1,
            },
            _ => {
                let ts = if timestamp == EARLIEST_LOCAL_TIMESTAMP {
                    EARLIEST_TIMESTAMP
                } else {
                    timestamp
                };
                let found = match log.fetch_offset_by_timestamp(ts) {
                    Ok(f) => f,
                    Err(e) => return OffsetAnswer::error(e.code()),
                };
                let is_earliest = ts == EARLIEST_TIMESTAMP;
                match found.filter(|f| is_earliest || f.offset < last_fetchable) {
                    Some(f) => OffsetAnswer {
                        error_code: codes::NONE,
                        timestamp: f.timestamp,
                        offset: f.offset,
                        leader_epoch: f.leader_epoch.unwrap_or(-1),
                    },
                    None if not_available => OffsetAnswer::error(codes::OFFSET_NOT_AVAILABLE),
                    None => OffsetAnswer {
                        error_code: codes::NONE,
                        timestamp: -1,
                        offset: -1,
                        leader_epoch: -1,
                    },
                }
            }
        }
    }

    /// ListOffsets v0 (`max_num_offsets` offsets, newest first).
    pub fn legacy_offsets_before(
        &self,
        tp: &TopicPartition,
        timestamp: i64,
        max_num: i32,
        is_client: bool,
    ) -> std::result::Result<Vec<i64>, i16> {
        let (_, log) = self.local_log_for(tp, -1, true)?;
        let hw_or_leo = if is_client {
            log.high_watermark()
        } else {
            log.log_end_offset()
        };
        let mut offsets: Vec<i64> = match timestamp {
            LATEST_TIMESTAMP => vec![hw_or_leo],
            EARLIEST_TIMESTAMP => vec![log.log_start_offset()],
            ts => {
                // Base offsets of segments last modified before ts (Kafka's legacy rule), newest first.
                let mut v: Vec<i64> = log
                    .segments()
                    .iter()
                    .filter(|s| s.last_modified_ms() <= ts)
                    .map(|s| s.base_offset())
                    .collect();
                v.reverse();
                v
            }
        };
        offsets.truncate(max_num.max(0) as usize);
        Ok(offsets)
    }

    /// DeleteRecords for one partition: raise the log start offset on the
    /// leader (`offset == -1` means the HW), then wait until every live
    /// replica's log start reached it or `timeout_ms` passes.
    /// Returns `(error_code, low_watermark)`.
    pub async fn delete_records(
        &self,
        tp: &TopicPartition,
        offset: i64,
        timeout_ms: i32,
    ) -> (i16, i64) {
        let p = match self.leader_partition(tp) {
            Ok(p) => p,
            Err(e) => return (e.code(), -1),
        };
        let Some(log) = p.log() else {
            return (codes::NOT_LEADER_OR_FOLLOWER, -1);
        };
        let cfg = log.config();
        if cfg.compact && !cfg.delete {
            return (codes::POLICY_VIOLATION, -1);
        }
        let hw = log.high_watermark();
        let target = if offset == -1 { hw } else { offset };
        if target < 0 || target > hw {
            return (codes::OFFSET_OUT_OF_RANGE, -1);
        }
        if let Err(e) = log.maybe_increment_log_start_offset(target) {
            return (e.code(), -1);
        }
        p.signal.bump();
        let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(0) as u64);
        loop {
            let mut rxs = vec![p.signal.subscribe()];
            if !p.is_leader() {
                return (codes::NOT_LEADER_OR_FOLLOWER, -1);
            }
            let low = self.low_watermark(&p, &log);
            if low >= target {
                return (codes::NONE, low);
            }
            if !wait_any(&mut rxs, deadline).await {
                let low = self.low_watermark(&p, &log);
                return if low >= target {
                    (codes::NONE, low)
                } else {
                    (codes::REQUEST_TIMED_OUT, -1)
                };
            }
        }
    }

    /// min(leader log start, log start of every live follower).
    fn low_watermark(&self, p: &Partition, log: &Log) -> i64 {
        let alive = self.alive_checker();
        let leader_start = log.log_start_offset();
        p.read_state(|s| {
            s.followers
                .iter()
                .filter(|(id, _)| alive(**id))
                .map(|(_, f)| f.log_start_offset)
                .fold(leader_start, i64::min)
        })
    }

    /// OffsetsForLeaderEpoch for one partition: `(error, epoch, end_offset)`.
    pub fn last_offset_for_leader_epoch(
        &self,
        tp: &TopicPartition,
        current_leader_epoch: i32,
        leader_epoch: i32,
        leader_only: bool,
    ) -> (i16, i32, i64) {
        match self.local_log_for(tp, current_leader_epoch, leader_only) {
            Ok((_, log)) => {
                let (e, o) = log.end_offset_for_epoch(leader_epoch);
                (codes::NONE, e, o)
            }
            Err(code) => (code, -1, -1),
        }
    }

    /// Hosted logs grouped by online log dir (DescribeLogDirs); offline dirs map to
    /// `None` (Kafka lists them with KAFKA_STORAGE_ERROR and no partitions).
    pub fn log_dir_view(&self) -> BTreeMap<PathBuf, Option<Vec<LogDirPartition>>> {
        let mut out: BTreeMap<PathBuf, Vec<LogDirPartition>> = BTreeMap::new();
        for d in self.logs().log_dirs() {
            out.entry(d).or_default();
        }
        let offline = self.logs().offline_log_dirs();
        for log in self.logs().all_logs() {
            if offline.iter().any(|d| d == log.parent_dir()) {
                continue;
            }
            let lag = (log.high_watermark() - log.log_end_offset()).max(0);
            out.entry(log.parent_dir().to_path_buf())
                .or_default()
                .push(LogDirPartition {
                    tp: log.topic_partition().clone(),
                    size: log.size_bytes() as i64,
                    offset_lag: lag,
                    is_future: false,
                });
        }
        // Kafka's future-replica lag: how far the copy is behind the current log end.
        for fut in self.logs().future_logs() {
            if offline.iter().any(|d| d == fut.parent_dir()) {
                continue;
            }
            let tp = fut.topic_partition().clone();
            let cur_leo = self.logs().get_log(&tp).map_or(0, |l| l.log_end_offset());
            out.entry(fut.parent_dir().to_path_buf())
                .or_default()
                .push(LogDirPartition {
                    offset_lag: (cur_leo - fut.log_end_offset()).max(0),
                    tp,
                    size: fut.size_bytes() as i64,
                    is_future: true,
                });
        }
        let mut view: BTreeMap<PathBuf, Option<Vec<LogDirPartition>>> = out
            .into_iter()
            .map(|(d, mut v)| {
                v.sort_by(|a, b| a.tp.cmp(&b.tp));
                (d, Some(v))
            })
            .collect();
        for d in offline {
            view.insert(d, None);
        }
        view
    }
}
