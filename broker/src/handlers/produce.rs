//! Produce (API 0, v0-v11).
//!
//! Request-level checks (Kafka `KafkaApis.handleProduceRequest` and
//! `ProduceRequest.validateRecords`): `acks` ∈ {-1, 0, 1} else every partition
//! answers INVALID_REQUIRED_ACKS; internal topics are not writable by clients;
//! v3+ needs exactly one magic-2 batch per partition (INVALID_RECORD) and zstd
//! needs v7+ (UNSUPPORTED_COMPRESSION_TYPE). Then the replica manager appends
//! (and, for acks=-1, waits in the produce purgatory). acks=0 sends no response.
//! From v8, a partition whose records failed validation (INVALID_RECORD,
//! INVALID_TIMESTAMP) carries `error_message` and one `record_errors` entry per bad
//! record; like Kafka, no other error carries a message.

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;
use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::log::batch::{BatchHeader, MAGIC_OFFSET};
use crate::log::producer_state::VerificationGuard;
use crate::log::records::BatchIter;
use crate::log::AppendOrigin;
use crate::replica::manager::{ProducePartitionResult, ReplicaManager};
use crate::replica::partition::codes;
use crate::replica::txn_verification::{coordinator_for, produce_error};
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
#[cfg(test)]
const INVALID_TIMESTAMP: i16 = 32;
const ZSTD: u8 = 4;

/// Topics clients may not produce to.
fn is_internal(topic: &str) -> bool {
    topic == "__consumer_offsets" || topic == "__transaction_state"
}

/// `ProduceRequest.validateRecords`: `Err((code, message))` for a bad partition payload.
pub fn validate_records(version: i16, records: &[u8]) -> std::result::Result<(), (i16, String)> {
    if version < 3 {
        return Ok(());
    }
    if records.len() < 12 {
        return Err((
            codes::INVALID_RECORD,
            format!("Produce requests with version {version} must have at least one record batch per partition"),
        ));
    }
    let magic = records.get(MAGIC_OFFSET).copied().unwrap_or(0);
    if magic != 2 {
        return Err((
            codes::INVALID_RECORD,
            format!("Produce requests with version {version} are only allowed to contain record batches with magic version 2"),
        ));
    }
    let batch_len = i32::from_be_bytes([records[8], records[9], records[10], records[11]]);
    let total = 12usize.saturating_add(batch_len.max(0) as usize);
    // attributes at byte 21..23: codec in the low 3 bits.
    if version < 7 {
        if let Some(attr_lo) = records.get(22) {
            if attr_lo & 0x07 == ZSTD {
                return Err((
                    codes::UNSUPPORTED_COMPRESSION_TYPE,
                    format!("Produce requests with version {version} are not allowed to use ZStandard compression"),
                ));
            }
        }
    }
    if records.len() > total {
        return Err((
            codes::INVALID_RECORD,
            format!("Produce requests with version {version} are only allowed to contain exactly one record batch per partition"),
        ));
    }
    Ok(())
}

/// The transactional batches of a request (`ReplicaManager.handleProduceAppend`).
struct TxnBatches {
    /// Distinct (producer id, epoch) pairs seen.
    producers: usize,
    producer: Option<(i64, i16)>,
    /// (index in the append list, base sequence of its first batch).
    partitions: Vec<(usize, i32)>,
}

fn transactional_batches(entries: &[(TopicPartition, BytesMut)]) -> TxnBatches {
    let mut seen: Vec<(i64, i16)> = Vec::new();
    let mut partitions = Vec::new();
    for (i, (_, records)) in entries.iter().enumerate() {
        let mut first_seq = None;
        for (_, bytes) in BatchIter::new(records).flatten() {
            let Some(h) = BatchHeader::parse(bytes) else {
                continue;
            };
            if h.magic == 2 && h.has_producer_id() && h.is_transactional() {
                if !seen.contains(&(h.producer_id, h.producer_epoch)) {
                    seen.push((h.producer_id, h.producer_epoch));
                }
                first_seq.get_or_insert(h.base_sequence);
            }
        }
        if let Some(seq) = first_seq {
            partitions.push((i, seq));
        }
    }
    TxnBatches {
        producers: seen.len(),
        producer: seen.first().copied(),
        partitions,
    }
}

/// KIP-890 part 1 (`maybeStartTransactionVerificationForPartitions`): each leader log hands
/// out a guard unless the producer already has a transaction open there; the partitions with
/// a guard are verified with the transaction coordinator. Fills `guards` and returns the
/// produce error of each append-list index that must not be appended.
#[allow(clippy::too_many_arguments)]
async fn verify_transaction(
    ctx: &Arc<BrokerContext>,
    rm: &Arc<ReplicaManager>,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &[(usize, i32)],
    entries: &[(TopicPartition, BytesMut)],
    guards: &mut [VerificationGuard],
    abortable_supported: bool,
) -> HashMap<usize, i16> {
    let mut failed = HashMap::new();
    let mut to_verify: Vec<(usize, TopicPartition)> = Vec::new();
    for &(i, seq) in partitions {
        let tp = &entries[i].0;
        let started = rm
            .leader_partition(tp)
            .and_then(|p| p.leader_log())
            .map(|(log, _)| {
                log.maybe_start_transaction_verification(producer_id, seq, producer_epoch)
            });
        match started {
            Ok(g) if g == VerificationGuard::SENTINEL => {}
            Ok(g) => {
                guards[i] = g;
                to_verify.push((i, tp.clone()));
            }
            Err(e) => {
                failed.insert(i, e.code());
            }
        }
    }
    if to_verify.is_empty() {
        return failed;
    }
    let coordinator = coordinator_for(
        &ctx.metadata_cache.snapshot(),
        transactional_id,
        ctx.config.transaction_state_log_num_partitions,
        &ctx.config.inter_broker_listener_name,
    );
    let errors = ctx
        .txn_verifier
        .verify(
            coordinator,
            transactional_id,
            producer_id,
            producer_epoch,
            to_verify.iter().map(|(_, tp)| tp.clone()).collect(),
            abortable_supported,
        )
        .await;
    for (i, tp) in to_verify {
        if let Some(code) = errors.get(&tp) {
            failed.insert(i, produce_error(*code));
        }
    }
    failed
}

/// Kafka `RequestUtils.hasTransactionalRecords`: the first batch of some partition is
/// transactional.
fn has_transactional_records(req: &ProduceRequest) -> bool {
    req.topic_data.iter().any(|t| {
        t.partition_data.iter().any(|p| {
            p.records
                .as_deref()
                .and_then(BatchHeader::parse)
                .is_some_and(|h| h.magic == 2 && h.is_transactional())
        })
    })
}

/// Every partition refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED (Kafka
/// `ProduceRequest.getErrorResponse`: offsets -1, the error's message from v8).
fn refuse_all(req: &ProduceRequest, version: i16) -> ProduceResponse {
    let code = denied_error(ResourceType::TransactionalId).code();
    let mut resp = ProduceResponse::default();
    for t in &req.topic_data {
        let mut tr = TopicProduceResponse::default();
        tr.name = t.name.clone();
        for p in &t.partition_data {
            let mut pr = PartitionProduceResponse::default();
            pr.index = p.index;
            pr.error_code = code;
            pr.base_offset = -1;
            pr.log_append_time_ms = -1;
            pr.log_start_offset = -1;
            if version >= 8 {
                pr.error_message = Some(StrBytes::from_static_str(enforce::denied_message(
                    ResourceType::TransactionalId,
                )));
            }
            tr.partition_responses.push(pr);
        }
        resp.responses.push(tr);
    }
    resp
}

/// Handle a Produce request. `Ok(None)` means no response (acks=0).
pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: ProduceRequest,
) -> Result<Option<ProduceResponse>> {
    let version = header.request_api_version;
    let rm = ctx.replicas()?.clone();
    let acks = req.acks;

    // Transactional records need a transactional id the principal may WRITE (Kafka checks
    // this even without an authorizer: transactional records without an id are refused).
    let txn_authorized = req.transactional_id.as_ref().is_some_and(|id| {
        enforce::allow(
            ctx,
            conn,
            Operation::Write,
            ResourceType::TransactionalId,
            id,
        )
    });
    if !txn_authorized && has_transactional_records(&req) {
        if acks == 0 {
            // No response to carry the error: Kafka closes the connection.
            return Err(crate::error::Error::InvalidRequest(
                "transactional produce not authorized (acks=0)".into(),
            ));
        }
        return Ok(Some(refuse_all(&req, version)));
    }
    let writable = enforce::filter(
        ctx,
        conn,
        Operation::Write,
        ResourceType::Topic,
        req.topic_data.iter().map(|t| t.name.0.as_str()),
    );

    // Results keyed by (topic index, partition index) in request order.
    let mut results: HashMap<(usize, usize), ProducePartitionResult> = HashMap::new();
    let mut to_append: Vec<(TopicPartition, BytesMut)> = Vec::new();
    let mut append_slots: Vec<(usize, usize)> = Vec::new();
    let valid_acks = matches!(acks, -1..=1);

    for (ti, t) in req.topic_data.iter().enumerate() {
        let authorized = writable.contains(t.name.0.as_str());
        for (pi, p) in t.partition_data.iter().enumerate() {
            let tp = TopicPartition::new(t.name.to_string(), p.index);
            let records: Bytes = p.records.clone().unwrap_or_default();
            let res = if !authorized {
                Some(ProducePartitionResult::error(
                    denied_error(ResourceType::Topic).code(),
                    None,
                ))
            } else if !valid_acks {
                Some(ProducePartitionResult::error(
                    codes::INVALID_REQUIRED_ACKS,
                    None,
                ))
            } else if is_internal(&tp.topic) {
                // Kafka sends no error message for these; only record validation has one.
                Some(ProducePartitionResult::error(INVALID_TOPIC_EXCEPTION, None))
            } else if let Err((code, msg)) = validate_records(version, &records) {
                tracing::debug!(%tp, code, msg, "produce request rejected");
                Some(ProducePartitionResult::error(code, None))
            } else {
                None
            };
            match res {
                Some(r) => {
                    results.insert((ti, pi), r);
                }
                None => {
                    to_append.push((tp, BytesMut::from(&records[..])));
                    append_slots.push((ti, pi));
                }
            }
        }
    }

    // Transactional batches: one producer per request, KIP-890 verification.
    let mut guards = vec![VerificationGuard::SENTINEL; to_append.len()];
    if !to_append.is_empty() {
        let txn = transactional_batches(&to_append);
        if txn.producers > 1 {
            // Kafka throws InvalidPidMappingException: the whole request fails.
            for (ti, t) in req.topic_data.iter().enumerate() {
                for pi in 0..t.partition_data.len() {
                    results.insert(
                        (ti, pi),
                        ProducePartitionResult::error(INVALID_PRODUCER_ID_MAPPING, None),
                    );
                }
            }
            to_append.clear();
            append_slots.clear();
        } else if let (Some(txn_id), Some((pid, epoch)), true) = (
            req.transactional_id.as_ref(),
            txn.producer,
            ctx.config.transaction_partition_verification_enable,
        ) {
            let failed = verify_transaction(
                ctx,
                &rm,
                txn_id.as_str(),
                pid,
                epoch,
                &txn.partitions,
                &to_append,
                &mut guards,
                version >= 11,
            )
            .await;
            // Drop the partitions that failed verification from the append.
            let mut keep = Vec::with_capacity(to_append.len());
            for (i, ((entry, slot), guard)) in to_append
                .drain(..)
                .zip(append_slots.drain(..))
                .zip(guards.drain(..))
                .enumerate()
            {
                match failed.get(&i) {
                    Some(code) => {
                        results.insert(slot, ProducePartitionResult::error(*code, None));
                    }
                    None => keep.push((entry, slot, guard)),
                }
            }
            for ((tp, records), slot, guard) in keep {
                to_append.push((tp, records));
                append_slots.push(slot);
                guards.push(guard);
            }
        }
    }

    if !to_append.is_empty() {
        let entries = to_append
            .into_iter()
            .zip(guards)
            .map(|((tp, records), guard)| (tp, records, guard))
            .collect();
        let out = rm
            .append_records_now_verified(acks, AppendOrigin::Client, entries)
            .wait(req.timeout_ms)
            .await;
        for (slot, (_, r)) in append_slots.into_iter().zip(out) {
            results.insert(slot, r);
        }
    }

    if acks == 0 {
        // Kafka closes an acks=0 connection whose request failed; done here for refusals.
        let refused = denied_error(ResourceType::Topic).code();
        if results.values().any(|r| r.error_code == refused) {
            return Err(crate::error::Error::InvalidRequest(
                "produce to a topic not authorized for WRITE (acks=0)".into(),
            ));
        }
        return Ok(None);
    }

    let mut resp = ProduceResponse::default();
    for (ti, t) in req.topic_data.iter().enumerate() {
        let mut tr = TopicProduceResponse::default();
        tr.name = t.name.clone();
        for (pi, p) in t.partition_data.iter().enumerate() {
            let r = results.remove(&(ti, pi)).unwrap_or_else(|| {
                ProducePartitionResult::error(codes::UNKNOWN_TOPIC_OR_PARTITION, None)
            });
            let mut pr = PartitionProduceResponse::default();
            pr.index = p.index;
            pr.error_code = r.error_code;
            crate::metrics::response_error(r.error_code);
            pr.base_offset = r.base_offset;
            if version >= 2 {
                pr.log_append_time_ms = r.log_append_time;
            }
            if version >= 5 {
                pr.log_start_offset = r.log_start_offset;
            }
            if version >= 8 && r.error_code != codes::NONE {
                pr.error_message = r.error_message.map(StrBytes::from_string);
                pr.record_errors = r
                    .record_errors
                    .into_iter()
                    .map(|e| {
                        let mut b = BatchIndexAndErrorMessage::default();
                        b.batch_index = e.batch_index;
                        b.batch_index_error_message = e.message.map(StrBytes::from_string);
                        b
                    })
                    .collect();
            }
            tr.partition_responses.push(pr);
        }
        resp.responses.push(tr);
    }
    Ok(Some(resp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::testing::batch;
    use kafka_protocol::records::Compression;

    #[test]
    fn record_validation_rules() {
        let one = batch(2, Compression::None);
        assert!(validate_records(3, &one).is_ok());
        assert!(
            validate_records(0, b"junk").is_ok(),
            "v0-2 are checked by the log"
        );
        let mut two = one.clone();
        two.extend_from_slice(&one);
        assert_eq!(
            validate_records(3, &two).map_err(|e| e.0),
            Err(codes::INVALID_RECORD)
        );
        assert_eq!(
            validate_records(3, &[]).map_err(|e| e.0),
            Err(codes::INVALID_RECORD)
        );
        let mut magic1 = one.clone();
        magic1[MAGIC_OFFSET] = 1;
        assert_eq!(
            validate_records(3, &magic1).map_err(|e| e.0),
            Err(codes::INVALID_RECORD)
        );
        let z = batch(2, Compression::Zstd);
        assert_eq!(
            validate_records(6, &z).map_err(|e| e.0),
            Err(codes::UNSUPPORTED_COMPRESSION_TYPE)
        );
        assert!(validate_records(7, &z).is_ok());
    }

    /// One batch of 4 records: keys only on records 0 and 2, timestamps as given.
    fn records(timestamps: [i64; 4], compression: Compression) -> Bytes {
        use kafka_protocol::records::{
            Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let recs: Vec<Record> = (0..4)
            .map(|i| Record {
                transactional: false,
                control: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // Offset minus sequence constant keeps one batch (its header says -1).
                sequence: i as i32 - 1,
                timestamp: timestamps[i],
                key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("v{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let opts = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, recs.iter(), &opts).expect("encode");
        buf.freeze()
    }

    async fn produce_one(
        ctx: &Arc<BrokerContext>,
        version: i16,
        records: Bytes,
    ) -> PartitionProduceResponse {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::{ApiKey, TopicName};
        let mut p = PartitionProduceData::default();
        p.index = 0;
        p.records = Some(records);
        let mut t = TopicProduceData::default();
        t.name = TopicName("t".into());
        t.partition_data = vec![p];
        let mut req = ProduceRequest::default();
        req.acks = 1;
        req.timeout_ms = 5000;
        req.topic_data = vec![t];
        let mut h = RequestHeader::default();
        h.request_api_key = ApiKey::Produce as i16;
        h.request_api_version = version;
        let resp = handle(
            ctx,
            &crate::security::authorizer::enforce::test_policy::conn("User:ANONYMOUS"),
            &h,
            req,
        )
        .await
        .expect("produce")
        .expect("acks=1");
        resp.responses[0].partition_responses[0].clone()
    }

    /// A transactional batch of 2 records from `pid`/`epoch` at `seq`.
    fn txn_records(pid: i64, epoch: i16, seq: i32) -> Bytes {
        let mut b = crate::replica::testing::batch_with(
            2,
            Compression::None,
            pid,
            epoch,
            seq,
            crate::replica::testing::chrono_now(),
        );
        b[22] |= 0x10;
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b.freeze()
    }

    async fn produce_txn(
        ctx: &Arc<BrokerContext>,
        version: i16,
        txn_id: Option<&str>,
        batches: Vec<(i32, Bytes)>,
    ) -> Vec<i16> {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        use kafka_protocol::messages::{ApiKey, TopicName, TransactionalId};
        let mut t = TopicProduceData::default();
        t.name = TopicName("t".into());
        for (p, records) in batches {
            let mut pd = PartitionProduceData::default();
            pd.index = p;
            pd.records = Some(records);
            t.partition_data.push(pd);
        }
        let mut req = ProduceRequest::default();
        req.acks = 1;
        req.timeout_ms = 5000;
        req.transactional_id = txn_id.map(|s| TransactionalId(s.to_string().into()));
        req.topic_data = vec![t];
        let mut h = RequestHeader::default();
        h.request_api_key = ApiKey::Produce as i16;
        h.request_api_version = version;
        let resp = handle(
            ctx,
            &crate::security::authorizer::enforce::test_policy::conn("User:ANONYMOUS"),
            &h,
            req,
        )
        .await
        .expect("produce")
        .expect("acks=1");
        resp.responses[0]
            .partition_responses
            .iter()
            .map(|p| p.error_code)
            .collect()
    }

    #[tokio::test]
    async fn transactional_batches() {
        use crate::log::LogConfig;
        use crate::replica::testing::leader_context;
        let (ctx, logs) = leader_context(LogConfig::default(), "t", uuid::Uuid::from_u128(9));
        assert!(
            ctx.config.transaction_partition_verification_enable,
            "Kafka's default"
        );
        // Two producers in one request: INVALID_PRODUCER_ID_MAPPING for every partition.
        let codes = produce_txn(
            &ctx,
            9,
            Some("tx"),
            vec![(0, txn_records(1, 0, 0)), (1, txn_records(2, 0, 0))],
        )
        .await;
        assert_eq!(codes, vec![INVALID_PRODUCER_ID_MAPPING; 2]);
        // No coordinator known for the transactional id: the retriable
        // COORDINATOR_NOT_AVAILABLE reaches the producer as NOT_ENOUGH_REPLICAS.
        let codes = produce_txn(&ctx, 11, Some("tx"), vec![(0, txn_records(1, 0, 0))]).await;
        assert_eq!(codes, vec![codes::NOT_ENOUGH_REPLICAS]);
        // Transactional records without a transactional id are refused, as Kafka does.
        let codes = produce_txn(&ctx, 9, None, vec![(0, txn_records(1, 0, 0))]).await;
        assert_eq!(codes, vec![53], "TRANSACTIONAL_ID_AUTHORIZATION_FAILED");
        // Open the producer's transaction with a direct append (this test's standalone log
        // has verification off).
        let out = ctx
            .replicas()
            .expect("rm")
            .append_records_now_verified(
                1,
                AppendOrigin::Client,
                vec![(
                    TopicPartition::new("t", 0),
                    BytesMut::from(&txn_records(1, 0, 0)[..]),
                    VerificationGuard::SENTINEL,
                )],
            )
            .wait(5_000)
            .await;
        assert_eq!(out[0].1.error_code, codes::NONE);
        // The open transaction needs no verification for its next batch.
        let codes = produce_txn(&ctx, 9, Some("tx"), vec![(0, txn_records(1, 0, 2))]).await;
        assert_eq!(codes, vec![codes::NONE]);
        // A non-transactional batch while the producer's transaction is open.
        let plain = crate::replica::testing::batch_with(
            1,
            Compression::None,
            1,
            0,
            4,
            crate::replica::testing::chrono_now(),
        );
        let codes = produce_txn(&ctx, 9, None, vec![(0, plain.freeze())]).await;
        assert_eq!(codes, vec![48], "INVALID_TXN_STATE");
        drop(logs);
    }

    fn batch_indexes(p: &PartitionProduceResponse) -> Vec<i32> {
        p.record_errors.iter().map(|e| e.batch_index).collect()
    }

    #[tokio::test]
    async fn v8_reports_every_rejected_record() {
        use crate::log::LogConfig;
        use crate::replica::testing::{chrono_now, leader_context};
        let now = chrono_now();
        let config = LogConfig {
            compact: true,
            ..LogConfig::default()
        };
        let (ctx, _logs) = leader_context(config, "t", uuid::Uuid::from_u128(9));
        for compression in [Compression::None, Compression::Gzip] {
            let p = produce_one(&ctx, 9, records([now; 4], compression)).await;
            assert_eq!(p.error_code, codes::INVALID_RECORD);
            assert_eq!(batch_indexes(&p), vec![1, 3], "{compression:?}");
            let msg = p.record_errors[0].batch_index_error_message.as_deref();
            assert_eq!(
                msg,
                Some("Compacted topic cannot accept message without key in topic partition t-0")
            );
            assert_eq!(
                p.error_message.as_deref(),
                Some("One or more records have been rejected due to 2 record errors in total, and only showing the first three errors at most: [RecordError(batchIndex=1, message='Compacted topic cannot accept message without key in topic partition t-0'), RecordError(batchIndex=3, message='Compacted topic cannot accept message without key in topic partition t-0')]")
            );
            assert_eq!(p.base_offset, -1);
            assert_eq!(
                p.log_start_offset, 0,
                "failed records carry the log start offset"
            );
        }
        // Before v8 the same failure has only the code.
        let p = produce_one(&ctx, 7, records([now; 4], Compression::None)).await;
        assert_eq!(p.error_code, codes::INVALID_RECORD);
        assert!(p.record_errors.is_empty() && p.error_message.is_none());

        // Timestamps: one record an hour and a half in the past with a 1 h limit.
        let config = LogConfig {
            message_timestamp_before_max_ms: 3_600_000,
            ..LogConfig::default()
        };
        let (ctx, logs) = leader_context(config, "t", uuid::Uuid::from_u128(9));
        let old = now - 5_400_000;
        let p = produce_one(&ctx, 11, records([now, old, now, old], Compression::None)).await;
        assert_eq!(p.error_code, INVALID_TIMESTAMP);
        assert_eq!(batch_indexes(&p), vec![1, 3]);
        assert_eq!(
            p.error_message.as_deref(),
            Some("One or more records have been rejected due to invalid timestamp")
        );
        let m = p.record_errors[0]
            .batch_index_error_message
            .as_deref()
            .unwrap_or("");
        assert!(
            m.starts_with(&format!(
                "Timestamp {old} of message with offset 1 is out of range."
            )),
            "{m}"
        );
        // Nothing of a rejected batch is appended; a good batch still is.
        let p = produce_one(&ctx, 11, records([now; 4], Compression::None)).await;
        assert_eq!((p.error_code, p.base_offset), (codes::NONE, 0));
        assert!(p.error_message.is_none() && p.record_errors.is_empty());
        drop(logs);
    }
}
