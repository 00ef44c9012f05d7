//! WriteTxnMarkers (API 27, v0-v1): the transaction coordinator asks the partition leaders
//! to end a transaction (Kafka `KafkaApis.handleWriteTxnMarkersRequest`, ZooKeeper mode with
//! the old group coordinator).
//!
//! Per marker (producer id/epoch, COMMIT or ABORT, coordinator epoch, partitions):
//! partitions without a local online log answer UNKNOWN_TOPIC_OR_PARTITION (Kafka's
//! `getMagic` is `None`); the others get one control batch each (see [`marker_batch`]),
//! appended with origin coordinator and acks -1 within `request.timeout.ms`, so followers
//! answer NOT_LEADER_OR_FOLLOWER and producer state rejects a stale producer epoch
//! (INVALID_PRODUCER_EPOCH) or coordinator epoch (TRANSACTION_COORDINATOR_FENCED).
//! Once a marker's appends are acknowledged, the group coordinator commits or discards the
//! producer's pending transactional offsets in the `__consumer_offsets` partitions that
//! succeeded. Errors are reported per producer id; markers of the same producer merge.
//! Markers are appended in request order and waited for together.

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::sync::Arc;

use bytes::BytesMut;
use indexmap::IndexMap;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{
    ProducerId, RequestHeader, TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::log::AppendOrigin;
use crate::replica::manager::now_ms;
use crate::replica::partition::codes;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

/// Name of the group coordinator's topic.
const GROUP_METADATA_TOPIC: &str = "__consumer_offsets";

/// The control batch ending a transaction (Kafka `MemoryRecords.withEndTransactionMarker`):
/// magic 2, attributes transactional + control, no compression, CreateTime `now`, the
/// producer's id and epoch, base sequence -1, one record at offset delta 0 whose
///
/// * key (4 bytes) = int16 version 0, int16 type (0 ABORT, 1 COMMIT);
/// * value (6 bytes) = int16 version 0, int32 coordinator epoch.
///
/// The leader assigns the offset and stamps its leader epoch on append.
pub fn marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now: i64,
) -> BytesMut {
    let mut key = BytesMut::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&i16::from(commit).to_be_bytes());
    let mut value = BytesMut::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let record = Record {
        transactional: true,
        control: true,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: IndexMap::new(),
    };
    let mut buf = BytesMut::new();
    // Encoding one small record into memory cannot fail; an empty buffer would fail the
    // append with a record error rather than panic.
    let _ = RecordBatchEncoder::encode(
        &mut buf,
        std::iter::once(&record),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    );
    buf
}

/// Per-partition outcome of one producer's markers: (topic, partition, error code, offset of
/// the marker or -1).
type ProducerErrors = Vec<(String, i32, i16, i64)>;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: WriteTxnMarkersRequest,
) -> Result<WriteTxnMarkersResponse> {
    // Kafka asks for ALTER on the cluster first, then CLUSTER_ACTION.
    let authorized = enforce::cluster(ctx, conn, Operation::Alter)
        || enforce::cluster(ctx, conn, Operation::ClusterAction);
    let denied = denied_error(ResourceType::Cluster).code();
    let rm = ctx.replicas()?.clone();
    let timeout = ctx.config.request_timeout_ms;
    let now = now_ms() as i64;

    // Append every marker now (in request order), then wait for all the acks together.
    let mut waits = Vec::with_capacity(req.markers.len());
    for marker in &req.markers {
        let pid = marker.producer_id.0;
        let commit = marker.transaction_result;
        // Results in request order: UNKNOWN_TOPIC_OR_PARTITION at once, the rest after acks.
        let mut slots: ProducerErrors = Vec::new();
        let mut entries: Vec<(TopicPartition, BytesMut)> = Vec::new();
        for t in &marker.topics {
            for &p in &t.partition_indexes {
                let tp = TopicPartition::new(t.name.to_string(), p);
                if !authorized {
                    slots.push((tp.topic, p, denied, -1));
                    continue;
                }
                let has_local_log = rm
                    .partition(&tp)
                    .is_some_and(|part| !part.is_offline() && part.log().is_some());
                if has_local_log {
                    let batch = marker_batch(
                        pid,
                        marker.producer_epoch,
                        commit,
                        marker.coordinator_epoch,
                        now,
                    );
                    entries.push((tp.clone(), batch));
                    slots.push((tp.topic, p, codes::NONE, -1));
                } else {
                    slots.push((tp.topic, p, codes::UNKNOWN_TOPIC_OR_PARTITION, -1));
                }
            }
        }
        let pending = (!entries.is_empty())
            .then(|| rm.append_records_now(-1, AppendOrigin::Coordinator, entries));
        waits.push(async move {
            let mut errors = slots;
            if let Some(pending) = pending {
                let started = std::time::Instant::now();
                let acked = pending.wait(timeout).await;
                tracing::trace!(
                    producer_id = pid,
                    us = started.elapsed().as_micros() as u64,
                    "markers replicated"
                );
                for (tp, r) in acked {
                    // The first slot of this partition not filled yet.
                    let slot = errors.iter_mut().find(|(t, p, e, o)| {
                        *e == codes::NONE && *o < 0 && *p == tp.partition && *t == tp.topic
                    });
                    if let Some(slot) = slot {
                        slot.2 = r.error_code;
                        slot.3 = r.base_offset;
                    }
                }
            }
            (pid, commit, errors)
        });
    }
    let results = futures::future::join_all(waits).await;

    // Merge by producer id, in order of first appearance.
    let mut by_producer: IndexMap<i64, IndexMap<String, Vec<(i32, i16)>>> = IndexMap::new();
    for (pid, commit, mut errors) in results {
        // The marker is in the offsets partitions: materialize or drop the producer's
        // pending transactional offset commits there (Kafka's `onTransactionCompleted`).
        let offsets_partitions: Vec<(i32, i64)> = errors
            .iter()
            .filter(|(t, _, e, _)| t == GROUP_METADATA_TOPIC && *e == codes::NONE)
            .map(|(_, p, _, o)| (*p, *o))
            .collect();
        if !offsets_partitions.is_empty() {
            ctx.groups
                .complete_txn_offsets(pid, &offsets_partitions, commit);
        }
        let topics = by_producer.entry(pid).or_default();
        for (t, p, e, _) in errors.drain(..) {
            let parts = topics.entry(t).or_default();
            match parts.iter_mut().find(|(q, _)| *q == p) {
                Some(slot) => slot.1 = e,
                None => parts.push((p, e)),
            }
        }
    }

    let mut resp = WriteTxnMarkersResponse::default();
    for (pid, topics) in by_producer {
        let mut mr = WritableTxnMarkerResult::default();
        mr.producer_id = ProducerId(pid);
        for (name, parts) in topics {
            let mut tr = WritableTxnMarkerTopicResult::default();
            tr.name = TopicName(name.into());
            tr.partitions = parts
                .into_iter()
                .map(|(p, e)| {
                    let mut pr = WritableTxnMarkerPartitionResult::default();
                    pr.partition_index = p;
                    pr.error_code = e;
                    pr
                })
                .collect();
            mr.topics.push(tr);
        }
        resp.markers.push(mr);
    }
    Ok(resp)
}

/// Whether `batch` is an end-transaction marker as [`marker_batch`] writes it (tests).
#[cfg(test)]
fn parse_marker(batch: &[u8]) -> Option<(i64, i16, bool, i32)> {
    use crate::log::batch::BatchHeader;
    use crate::log::producer_state::{ControlRecordType, EndTxnMarker};
    let h = BatchHeader::parse(batch)?;
    if !(h.is_control() && h.is_transactional()) || h.base_sequence != -1 {
        return None;
    }
    let m = EndTxnMarker::from_control_batch(batch, &h).ok()??;
    Some((
        h.producer_id,
        h.producer_epoch,
        m.control_type == ControlRecordType::Commit,
        m.coordinator_epoch,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;
    use crate::replica::testing::{batch_with, chrono_now, leader_context};
    use kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };
    use kafka_protocol::records::Compression;

    #[test]
    fn marker_batch_format() {
        let b = marker_batch(42, 3, true, 7, 1000);
        assert_eq!(parse_marker(&b), Some((42, 3, true, 7)));
        let b = marker_batch(42, 3, false, 0, 1000);
        assert_eq!(parse_marker(&b), Some((42, 3, false, 0)));
        // Record: key = [0,0,0,1] (version 0, COMMIT), value = [0,0, epoch 7].
        let b = marker_batch(1, 0, true, 7, 1000);
        let records = &b[61..];
        let key_at = records
            .windows(4)
            .position(|w| w == [0, 0, 0, 1])
            .expect("key");
        assert_eq!(&records[key_at + 5..key_at + 11], &[0, 0, 0, 0, 0, 7]);
    }

    fn marker(
        pid: i64,
        epoch: i16,
        commit: bool,
        coord: i32,
        parts: &[(&str, i32)],
    ) -> WritableTxnMarker {
        let mut m = WritableTxnMarker::default();
        m.producer_id = ProducerId(pid);
        m.producer_epoch = epoch;
        m.transaction_result = commit;
        m.coordinator_epoch = coord;
        for (t, p) in parts {
            let mut mt = WritableTxnMarkerTopic::default();
            mt.name = TopicName((*t).to_string().into());
            mt.partition_indexes = vec![*p];
            m.topics.push(mt);
        }
        m
    }

    fn txn_batch(pid: i64, epoch: i16, seq: i32) -> BytesMut {
        let mut b = batch_with(2, Compression::None, pid, epoch, seq, chrono_now());
        // Set the transactional attribute bit and re-CRC.
        b[22] |= 0x10;
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn codes_of(resp: &WriteTxnMarkersResponse) -> Vec<(i64, String, i32, i16)> {
        let mut out = Vec::new();
        for m in &resp.markers {
            for t in &m.topics {
                for p in &t.partitions {
                    out.push((
                        m.producer_id.0,
                        t.name.to_string(),
                        p.partition_index,
                        p.error_code,
                    ));
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn markers_end_transactions_and_fence_stale_coordinators() {
        let (ctx, logs) = leader_context(LogConfig::default(), "t", uuid::Uuid::from_u128(5));
        let rm = ctx.replicas().expect("rm").clone();
        let tp = TopicPartition::new("t", 0);
        let out = rm
            .append_records(
                5000,
                -1,
                AppendOrigin::Client,
                vec![(tp.clone(), txn_batch(9, 0, 0))],
            )
            .await;
        assert_eq!(out[0].1.error_code, codes::NONE);
        let log = rm.partition(&tp).and_then(|p| p.log()).expect("log");
        assert_eq!(
            log.last_stable_offset(),
            0,
            "open transaction holds the LSO"
        );

        let mut req = WriteTxnMarkersRequest::default();
        req.markers = vec![marker(9, 0, false, 3, &[("t", 0), ("t", 7), ("other", 0)])];
        let resp = handle(
            &ctx,
            &crate::security::authorizer::enforce::test_policy::conn("User:ANONYMOUS"),
            &RequestHeader::default(),
            req,
        )
        .await
        .expect("ok");
        let mut got = codes_of(&resp);
        got.sort();
        assert_eq!(
            got,
            vec![
                (9, "other".into(), 0, codes::UNKNOWN_TOPIC_OR_PARTITION),
                (9, "t".into(), 0, codes::NONE),
                (9, "t".into(), 7, codes::UNKNOWN_TOPIC_OR_PARTITION),
            ]
        );
        assert_eq!(log.log_end_offset(), 3, "the marker takes one offset");
        assert_eq!(log.last_stable_offset(), 3);

        // A new transaction, then a marker from an older coordinator epoch.
        let out = rm
            .append_records(
                5000,
                -1,
                AppendOrigin::Client,
                vec![(tp.clone(), txn_batch(9, 0, 2))],
            )
            .await;
        assert_eq!(out[0].1.error_code, codes::NONE);
        let mut req = WriteTxnMarkersRequest::default();
        req.markers = vec![marker(9, 0, true, 2, &[("t", 0)])];
        let resp = handle(
            &ctx,
            &crate::security::authorizer::enforce::test_policy::conn("User:ANONYMOUS"),
            &RequestHeader::default(),
            req,
        )
        .await
        .expect("ok");
        assert_eq!(codes_of(&resp), vec![(9, "t".into(), 0, 52)]);
        // A stale producer epoch is INVALID_PRODUCER_EPOCH; the current one commits.
        let mut req = WriteTxnMarkersRequest::default();
        req.markers = vec![
            marker(9, 0, true, 3, &[("t", 0)]),
            marker(9, 0, true, 3, &[("t", 0)]),
        ];
        let resp = handle(
            &ctx,
            &crate::security::authorizer::enforce::test_policy::conn("User:ANONYMOUS"),
            &RequestHeader::default(),
            req,
        )
        .await
        .expect("ok");
        assert_eq!(
            codes_of(&resp),
            vec![(9, "t".into(), 0, codes::NONE)],
            "merged by producer"
        );
        assert_eq!(log.last_stable_offset(), log.log_end_offset());
        let mut req = WriteTxnMarkersRequest::default();
        req.markers = vec![marker(9, -1, true, 3, &[("t", 0)])];
        let resp = handle(
            &ctx,
            &crate::security::authorizer::enforce::test_policy::conn("User:ANONYMOUS"),
            &RequestHeader::default(),
            req,
        )
        .await
        .expect("ok");
        assert_eq!(codes_of(&resp), vec![(9, "t".into(), 0, 47)]);
        drop(logs);
    }
}
