//! Fetch (API 1, v0-v17): consumer and follower reads, served zero-copy.
//!
//! Steps: resolve topics (names, or ids at v13+), build the fetch-session
//! context (KIP-227), read every partition from its log as file slices, park
//! in the fetch purgatory until `min_bytes` are available or `max_wait_ms`
//! passes, then encode the response ourselves ([`encode`]) so record bytes
//! stay `Chunk::File` slices written with `sendfile`.
//!
//! Fetchers at v0-v3 cannot read magic 2: their record data is down-converted in
//! memory ([`crate::log::down_convert`]) as `KafkaApis.maybeConvertFetchedData` does, or
//! answered UNSUPPORTED_VERSION when the topic sets `message.downconversion.enable=false`.
//! Below v10, a topic whose `compression.type` is zstd answers UNSUPPORTED_COMPRESSION_TYPE.

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

pub mod encode;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{FetchRequest, RequestHeader};
use samsa_common::types::TopicPartition;
use tokio::time::Instant;
use uuid::Uuid;

use self::encode::{
    encode_fetch_response, AbortedTxn, FetchResponseOut, PartitionOut, Piece, RecordSlice, TopicOut,
};
use crate::broker::BrokerContext;
use crate::connection::Chunk;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::log::config::{CompressionCodec, TopicCompression};
use crate::log::down_convert::{down_convert, DownConvertError};
use crate::log::{FileSlice, LogConfig};
use crate::metrics;
use crate::replica::fetch_session::{PartKey, PartitionAnswer, PartitionRequest};
use crate::replica::manager::{now_ms, FetchParams, FetchPartitionResult, FetchPartitionSpec};
use crate::replica::partition::codes;
use crate::replica::purgatory::wait_any;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

/// Record data of one partition: file ranges (zero-copy) or down-converted bytes.
#[derive(Debug, Clone)]
pub enum RecordsOut {
    File(FileSlice),
    Mem(Bytes),
}

impl RecordSlice for RecordsOut {
    fn byte_len(&self) -> usize {
        match self {
            RecordsOut::File(f) => f.len,
            RecordsOut::Mem(b) => b.len(),
        }
    }
}

/// The replica id of the fetcher: `ReplicaState.ReplicaId` at v15+, else `ReplicaId`.
pub fn replica_id_of(req: &FetchRequest, version: i16) -> i32 {
    if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    }
}

/// Handle a Fetch request; returns the encoded response *body*.
pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: FetchRequest,
) -> Result<Vec<Chunk>> {
    let version = header.request_api_version;
    let rm = ctx.replicas()?.clone();
    let meta = ctx.metadata_cache.snapshot();
    let replica_id = replica_id_of(&req, version);
    let params = FetchParams {
        replica_id,
        isolation_level: if version >= 4 { req.isolation_level } else { 0 },
        version,
    };
    if params.is_follower() {
        metrics::mark_follower_fetch();
    }

    let resolve = |name: &str, id: &Uuid| -> (Uuid, String) {
        if version >= 13 {
            let name = meta
                .topic_name(id)
                .map(str::to_string)
                .or_else(|| rm.topic_name_for_id(id))
                .unwrap_or_default();
            (*id, name)
        } else {
            (Uuid::nil(), name.to_string())
        }
    };

    let mut requested = Vec::new();
    for t in &req.topics {
        let (id, name) = resolve(t.topic.as_str(), &t.topic_id);
        for p in &t.partitions {
            requested.push((
                PartKey {
                    topic_id: id,
                    topic: name.clone(),
                    partition: p.partition,
                },
                PartitionRequest {
                    fetch_offset: p.fetch_offset,
                    log_start_offset: if version >= 5 { p.log_start_offset } else { -1 },
                    max_bytes: p.partition_max_bytes,
                    current_leader_epoch: if version >= 9 {
                        p.current_leader_epoch
                    } else {
                        -1
                    },
                    last_fetched_epoch: if version >= 12 {
                        p.last_fetched_epoch
                    } else {
                        -1
                    },
                },
            ));
        }
    }
    let mut forgotten = Vec::new();
    if version >= 7 {
        for t in &req.forgotten_topics_data {
            let (id, name) = resolve(t.topic.as_str(), &t.topic_id);
            for p in &t.partitions {
                forgotten.push(PartKey {
                    topic_id: id,
                    topic: name.clone(),
                    partition: *p,
                });
            }
        }
    }
    let (session_id, session_epoch) = if version >= 7 {
        (req.session_id, req.session_epoch)
    } else {
        (0, -1)
    };
    let fctx = match rm.fetch_sessions.new_context(
        version,
        session_id,
        session_epoch,
        params.is_follower(),
        requested,
        &forgotten,
        now_ms(),
    ) {
        Ok(c) => c,
        Err(code) => {
            let out: FetchResponseOut<RecordsOut> = FetchResponseOut {
                error_code: code,
                ..Default::default()
            };
            return Ok(to_chunks(encode_fetch_response(out, version)));
        }
    };

    // Followers need CLUSTER_ACTION (else every partition is refused), consumers READ on
    // each topic; refused partitions are not read.
    let follower_refused =
        params.is_follower() && !enforce::cluster(ctx, conn, Operation::ClusterAction);
    let readable = if params.is_follower() {
        enforce::Allowed::All
    } else {
        enforce::filter(
            ctx,
            conn,
            Operation::Read,
            ResourceType::Topic,
            fctx.partitions
                .iter()
                .filter(|(k, _)| !k.topic.is_empty())
                .map(|(k, _)| k.topic.as_str()),
        )
    };
    let refused =
        |k: &PartKey| follower_refused || (!k.topic.is_empty() && !readable.contains(&k.topic));
    // Partitions we can look up by name; unknown topic ids answer UNKNOWN_TOPIC_ID.
    let specs: Vec<FetchPartitionSpec> = fctx
        .partitions
        .iter()
        .filter(|(k, _)| !k.topic.is_empty() && !refused(k))
        .map(|(k, r)| FetchPartitionSpec {
            tp: TopicPartition::new(k.topic.clone(), k.partition),
            fetch_offset: r.fetch_offset,
            log_start_offset: r.log_start_offset,
            max_bytes: r.max_bytes,
            current_leader_epoch: r.current_leader_epoch,
            last_fetched_epoch: r.last_fetched_epoch,
        })
        .collect();
    let known = |tp: &TopicPartition| meta.contains_topic(&tp.topic);
    let max_bytes = if version >= 3 {
        req.max_bytes
    } else {
        i32::MAX
    };
    let min_bytes = req.min_bytes.max(0) as usize;
    let deadline = Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);

    // Read, and if there is not enough yet, park until a partition changes.
    let results = loop {
        let mut rxs: Vec<_> = specs
            .iter()
            .filter_map(|s| rm.partition(&s.tp))
            .map(|p| p.signal.subscribe())
            .collect();
        let results = rm.read_partitions(params, &specs, max_bytes, &known);
        let bytes: usize = results.iter().map(FetchPartitionResult::bytes).sum();
        let must_answer = req.max_wait_ms <= 0
            || specs.is_empty()
            || bytes >= min_bytes
            || results
                .iter()
                .any(|r| r.error_code != codes::NONE || r.diverging_epoch.is_some());
        if must_answer || Instant::now() >= deadline {
            break results;
        }
        // Waiting in the purgatory is Kafka's RemoteTimeMs.
        let parked = std::time::Instant::now();
        let woken = wait_any(&mut rxs, deadline).await;
        metrics::add_remote_time(parked.elapsed());
        if !woken {
            // Deadline: answer with whatever is there now.
            break rm.read_partitions(params, &specs, max_bytes, &known);
        }
    };
    if metrics::enabled() {
        for r in &results {
            metrics::fetch_answered(
                r.topic_stats.as_deref(),
                params.is_follower(),
                r.bytes() as u64,
                fetch_failed(r.error_code),
            );
        }
    }

    // Match results back to the context's partition list.
    let mut results = results.into_iter();
    let mut answers: Vec<(PartKey, PartitionAnswer)> = Vec::with_capacity(fctx.partitions.len());
    let mut outs: Vec<(PartKey, PartitionOut<RecordsOut>)> =
        Vec::with_capacity(fctx.partitions.len());
    for (k, r) in &fctx.partitions {
        let mut out = if refused(k) {
            PartitionOut::error(k.partition, denied_error(ResourceType::Topic).code())
        } else if k.topic.is_empty() {
            PartitionOut::error(k.partition, codes::UNKNOWN_TOPIC_ID)
        } else {
            match results.next() {
                Some(r) => to_partition_out(k.partition, r, version),
                None => PartitionOut::error(k.partition, codes::UNKNOWN_TOPIC_OR_PARTITION),
            }
        };
        if version < 10 && !k.topic.is_empty() && !refused(k) {
            let tp = TopicPartition::new(k.topic.clone(), k.partition);
            if let Some(log) = rm.partition(&tp).and_then(|p| p.log()) {
                out = maybe_convert(out, &log.config(), version, r.fetch_offset, &params);
            }
        }
        answers.push((
            k.clone(),
            PartitionAnswer {
                has_records: !out.records.is_empty(),
                high_watermark: out.high_watermark,
                log_start_offset: out.log_start_offset,
                error_code: out.error_code,
                diverging: out.diverging_epoch.is_some(),
                preferred_read_replica: out.preferred_read_replica,
            },
        ));
        outs.push((k.clone(), out));
    }
    let (resp_session, keep) = rm.fetch_sessions.complete(&fctx, &answers, now_ms());

    let mut resp: FetchResponseOut<RecordsOut> = FetchResponseOut {
        session_id: resp_session,
        ..Default::default()
    };
    metrics::response_error(resp.error_code);
    for ((k, out), keep) in outs.into_iter().zip(keep) {
        if !keep {
            continue;
        }
        metrics::response_error(out.error_code);
        let same_topic = resp
            .topics
            .last()
            .is_some_and(|t| t.name == k.topic && t.topic_id == k.topic_id);
        if !same_topic {
            resp.topics.push(TopicOut {
                name: k.topic.clone(),
                topic_id: k.topic_id,
                partitions: Vec::new(),
            });
        }
        if let Some(t) = resp.topics.last_mut() {
            t.partitions.push(out);
        }
    }
    Ok(to_chunks(encode_fetch_response(resp, version)))
}

/// Kafka's `readFromLocalLog` counts a failed fetch only for unexpected errors, not for
/// leadership, epoch, offset-range or storage ones.
fn fetch_failed(code: i16) -> bool {
    !matches!(
        code,
        codes::NONE
            | codes::NOT_LEADER_OR_FOLLOWER
            | codes::UNKNOWN_TOPIC_OR_PARTITION
            | codes::FENCED_LEADER_EPOCH
            | codes::UNKNOWN_LEADER_EPOCH
            | codes::OFFSET_OUT_OF_RANGE
            | codes::KAFKA_STORAGE_ERROR
            | 9 // REPLICA_NOT_AVAILABLE
            | codes::INCONSISTENT_TOPIC_ID
    )
}

/// Kafka `maybeConvertFetchedData` for a partition whose log is local (v0-v9 only: later
/// versions are never converted). Followers are converted too, as in Kafka, but ignore
/// `message.downconversion.enable`.
fn maybe_convert(
    mut out: PartitionOut<RecordsOut>,
    config: &LogConfig,
    version: i16,
    fetch_offset: i64,
    params: &FetchParams,
) -> PartitionOut<RecordsOut> {
    let index = out.partition_index;
    if version < 10 && config.compression_type == TopicCompression::Codec(CompressionCodec::Zstd) {
        return PartitionOut::error(index, codes::UNSUPPORTED_COMPRESSION_TYPE);
    }
    // Clients before v6 do not know KAFKA_STORAGE_ERROR; they retry on NOT_LEADER.
    if version <= 5 && out.error_code == codes::KAFKA_STORAGE_ERROR {
        out.error_code = codes::NOT_LEADER_OR_FOLLOWER;
    }
    let to_magic = match version {
        0 | 1 => 0,
        2 | 3 => 1,
        _ => return out,
    };
    if !params.is_follower() && !config.message_downconversion_enable {
        return PartitionOut::error(index, codes::UNSUPPORTED_VERSION);
    }
    if out.records.is_empty() {
        return out;
    }
    let mut raw = Vec::with_capacity(out.records_len());
    for piece in std::mem::take(&mut out.records) {
        match piece {
            RecordsOut::File(f) => match f.read_to_vec() {
                Ok(v) => raw.extend_from_slice(&v),
                Err(e) => {
                    tracing::warn!(partition = index, error = %e, "reading records to down-convert");
                    return PartitionOut::error(index, codes::NOT_LEADER_OR_FOLLOWER);
                }
            },
            RecordsOut::Mem(b) => raw.extend_from_slice(&b),
        }
    }
    match down_convert(&raw, to_magic, fetch_offset) {
        Ok(converted) => {
            if !converted.is_empty() {
                out.records = vec![RecordsOut::Mem(Bytes::from(converted))];
            }
            out
        }
        Err(DownConvertError::UnsupportedCompression) => {
            PartitionOut::error(index, codes::UNSUPPORTED_COMPRESSION_TYPE)
        }
        Err(DownConvertError::Corrupt(m)) => {
            tracing::warn!(partition = index, error = %m, "cannot down-convert stored records");
            PartitionOut::error(index, CORRUPT_MESSAGE)
        }
    }
}

/// Kafka's CORRUPT_MESSAGE error code.
const CORRUPT_MESSAGE: i16 = 2;

fn to_partition_out(
    partition: i32,
    r: FetchPartitionResult,
    version: i16,
) -> PartitionOut<RecordsOut> {
    let mut out = PartitionOut::error(partition, r.error_code);
    out.high_watermark = r.high_watermark;
    out.last_stable_offset = r.last_stable_offset;
    out.log_start_offset = r.log_start_offset;
    if version >= 12 {
        out.diverging_epoch = r.diverging_epoch;
        out.current_leader = r.current_leader;
    }
    out.aborted_transactions = r.aborted_transactions.map(|v| {
        v.into_iter()
            .map(|(producer_id, first_offset)| AbortedTxn {
                producer_id,
                first_offset,
            })
            .collect()
    });
    if let Some(data) = r.data {
        out.records = data
            .slices
            .into_iter()
            .filter(|s| s.len > 0)
            .map(RecordsOut::File)
            .collect();
    }
    out
}

/// The answer to a fetch over its quota (Kafka's `FetchContext.getThrottledResponse`): no
/// partitions, the throttle time, and the session id only for an incremental session.
pub fn throttled_response(version: i16, throttle_time_ms: i32, session_id: i32) -> Vec<Chunk> {
    let out: FetchResponseOut<RecordsOut> = FetchResponseOut {
        throttle_time_ms,
        session_id,
        ..FetchResponseOut::default()
    };
    to_chunks(encode_fetch_response(out, version))
}

fn to_chunks(pieces: Vec<Piece<RecordsOut>>) -> Vec<Chunk> {
    pieces
        .into_iter()
        .map(|p| match p {
            Piece::Bytes(b) => Chunk::Bytes(b),
            Piece::Slice(RecordsOut::File(s)) => Chunk::File(s),
            Piece::Slice(RecordsOut::Mem(b)) => Chunk::Bytes(b),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::produce;
    use crate::log::LogConfig;
    use crate::replica::testing::{batch, TempLogs};
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ApiKey, BrokerId, FetchResponse, ProduceRequest, TopicName};
    use kafka_protocol::protocol::Decodable;
    use kafka_protocol::records::{Compression, RecordBatchDecoder};
    use std::os::unix::fs::FileExt;

    const TOPIC_ID: Uuid = Uuid::from_u128(0x5151);

    fn setup() -> (Arc<BrokerContext>, Arc<TempLogs>) {
        setup_with(LogConfig::default())
    }

    fn setup_with(config: LogConfig) -> (Arc<BrokerContext>, Arc<TempLogs>) {
        crate::replica::testing::leader_context(config, "t", TOPIC_ID)
    }

    fn header(key: ApiKey, version: i16) -> RequestHeader {
        let mut h = RequestHeader::default();
        h.request_api_key = key as i16;
        h.request_api_version = version;
        h
    }

    async fn produce(ctx: &Arc<BrokerContext>, acks: i16, n: usize) -> Option<(i16, i64)> {
        let mut p = PartitionProduceData::default();
        p.index = 0;
        p.records = Some(batch(n, Compression::None).freeze());
        let mut t = TopicProduceData::default();
        t.name = TopicName("t".into());
        t.partition_data = vec![p];
        let mut req = ProduceRequest::default();
        req.acks = acks;
        req.timeout_ms = 5000;
        req.topic_data = vec![t];
        let resp = produce::handle(
            ctx,
            &crate::security::authorizer::enforce::test_policy::conn("User:ANONYMOUS"),
            &header(ApiKey::Produce, 9),
            req,
        )
        .await
        .expect("produce");
        resp.map(|r| {
            let p = &r.responses[0].partition_responses[0];
            (p.error_code, p.base_offset)
        })
    }

    fn fetch_req(version: i16, offset: i64, min_bytes: i32, max_wait: i32) -> FetchRequest {
        let mut p = FetchPartition::default();
        p.partition = 0;
        p.fetch_offset = offset;
        p.partition_max_bytes = 1 << 20;
        p.current_leader_epoch = -1;
        p.last_fetched_epoch = -1;
        p.log_start_offset = -1;
        let mut t = FetchTopic::default();
        if version >= 13 {
            t.topic_id = TOPIC_ID;
        } else {
            t.topic = TopicName("t".into());
        }
        t.partitions = vec![p];
        let mut req = FetchRequest::default();
        req.replica_id = BrokerId(-1);
        req.max_wait_ms = max_wait;
        req.min_bytes = min_bytes;
        req.max_bytes = 50 << 20;
        req.session_epoch = -1;
        req.topics = vec![t];
        req
    }

    fn flatten(chunks: Vec<Chunk>) -> Bytes {
        let mut out = BytesMut::new();
        for c in chunks {
            match c {
                Chunk::Bytes(b) => out.put_slice(&b),
                Chunk::File(f) => {
                    let mut buf = vec![0u8; f.len];
                    f.file
                        .read_exact_at(&mut buf, f.position)
                        .expect("read slice");
                    out.put_slice(&buf);
                }
            }
        }
        out.freeze()
    }

    async fn fetch(ctx: &Arc<BrokerContext>, version: i16, req: FetchRequest) -> FetchResponse {
        let chunks = handle(
            ctx,
            &crate::security::authorizer::enforce::test_policy::conn("User:ANONYMOUS"),
            &header(ApiKey::Fetch, version),
            req,
        )
        .await
        .expect("fetch");
        let mut bytes = flatten(chunks);
        let resp = FetchResponse::decode(&mut bytes, version).expect("decode");
        assert!(bytes.is_empty());
        resp
    }

    /// Offsets of the whole record batches / messages, as a client reads them: a message that
    /// runs past the end (a cut one, or down-conversion's overflow padding) ends the data.
    fn offsets_in(records: &Bytes) -> Vec<i64> {
        let mut whole = 0;
        while whole + 12 <= records.len() {
            let size = i32::from_be_bytes(records[whole + 8..whole + 12].try_into().expect("size"));
            if size < 0 || whole + 12 + size as usize > records.len() {
                break;
            }
            whole += 12 + size as usize;
        }
        let mut buf = records.slice(..whole);
        let mut out = Vec::new();
        while !buf.is_empty() {
            let set = RecordBatchDecoder::decode(&mut buf).expect("records decode");
            out.extend(set.records.iter().map(|r| r.offset));
        }
        out
    }

    #[tokio::test]
    async fn produce_then_fetch_every_version() {
        let (ctx, _logs) = setup();
        assert_eq!(produce(&ctx, 1, 3).await, Some((0, 0)));
        assert_eq!(produce(&ctx, -1, 2).await, Some((0, 3)));
        assert_eq!(produce(&ctx, 0, 1).await, None, "acks=0 has no response");
        assert_eq!(
            produce(&ctx, 2, 1).await.map(|r| r.0),
            Some(codes::INVALID_REQUIRED_ACKS)
        );
        for version in 4..=17i16 {
            let resp = fetch(&ctx, version, fetch_req(version, 0, 1, 0)).await;
            let p = &resp.responses[0].partitions[0];
            assert_eq!(p.error_code, 0, "v{version}");
            assert_eq!(p.high_watermark, 6, "v{version}");
            assert_eq!(p.last_stable_offset, 6);
            let recs = p.records.clone().expect("records");
            assert_eq!(offsets_in(&recs), (0..6).collect::<Vec<_>>(), "v{version}");
            // Fetch in the middle of a batch starts at the batch containing it.
            let resp = fetch(&ctx, version, fetch_req(version, 4, 1, 0)).await;
            let recs = resp.responses[0].partitions[0]
                .records
                .clone()
                .expect("records");
            assert_eq!(offsets_in(&recs), vec![3, 4, 5], "v{version}");
        }
        // Out of range.
        let resp = fetch(&ctx, 12, fetch_req(12, 99, 1, 0)).await;
        assert_eq!(
            resp.responses[0].partitions[0].error_code,
            codes::OFFSET_OUT_OF_RANGE
        );
        // Unknown topic id.
        let mut req = fetch_req(13, 0, 1, 0);
        req.topics[0].topic_id = Uuid::from_u128(7);
        let resp = fetch(&ctx, 13, req).await;
        assert_eq!(
            resp.responses[0].partitions[0].error_code,
            codes::UNKNOWN_TOPIC_ID
        );
    }

    #[tokio::test]
    async fn old_versions_get_down_converted_records() {
        let (ctx, _logs) = setup();
        produce(&ctx, 1, 3).await;
        produce(&ctx, 1, 2).await;
        for version in 0..=3i16 {
            let magic = if version <= 1 { 0 } else { 1 };
            for (from, want) in [
                (0, vec![0, 1, 2, 3, 4]),
                (4, vec![4]),
                (1, vec![1, 2, 3, 4]),
            ] {
                // Consume like a client: converted answers are bounded by the stored size,
                // so small records may take more than one fetch.
                let mut got = Vec::new();
                let mut next = from;
                while next < 5 {
                    let resp = fetch(&ctx, version, fetch_req(version, next, 1, 0)).await;
                    let p = &resp.responses[0].partitions[0];
                    assert_eq!(p.error_code, 0, "v{version}");
                    assert_eq!(p.high_watermark, 5);
                    let recs = p.records.clone().expect("records");
                    assert_eq!(recs[16], magic, "v{version} magic");
                    let offsets = offsets_in(&recs);
                    assert!(
                        !offsets.is_empty() && offsets[0] == next,
                        "v{version}: {offsets:?}"
                    );
                    next = offsets[offsets.len() - 1] + 1;
                    got.extend(offsets);
                }
                assert_eq!(got, want, "v{version} from {from}");
            }
        }
        // v4+ still gets the stored magic-2 batches.
        let resp = fetch(&ctx, 4, fetch_req(4, 0, 1, 0)).await;
        assert_eq!(
            resp.responses[0].partitions[0]
                .records
                .as_ref()
                .expect("records")[16],
            2
        );
    }

    #[tokio::test]
    async fn down_conversion_disabled_or_zstd_topic_refuses_old_versions() {
        let mut config = LogConfig::default();
        config.message_downconversion_enable = false;
        let (ctx, _logs) = setup_with(config);
        produce(&ctx, 1, 2).await;
        for version in 0..=3i16 {
            let resp = fetch(&ctx, version, fetch_req(version, 0, 1, 0)).await;
            let p = &resp.responses[0].partitions[0];
            assert_eq!(p.error_code, codes::UNSUPPORTED_VERSION, "v{version}");
            assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
        }
        let resp = fetch(&ctx, 4, fetch_req(4, 0, 1, 0)).await;
        assert_eq!(resp.responses[0].partitions[0].error_code, 0);

        let mut config = LogConfig::default();
        config.compression_type = TopicCompression::Codec(CompressionCodec::Zstd);
        let (ctx, _logs) = setup_with(config);
        produce(&ctx, 1, 2).await;
        for version in [0i16, 3, 9] {
            let resp = fetch(&ctx, version, fetch_req(version, 0, 1, 0)).await;
            assert_eq!(
                resp.responses[0].partitions[0].error_code,
                codes::UNSUPPORTED_COMPRESSION_TYPE,
                "v{version}"
            );
        }
        let resp = fetch(&ctx, 10, fetch_req(10, 0, 1, 0)).await;
        assert_eq!(resp.responses[0].partitions[0].error_code, 0);
    }

    #[tokio::test]
    async fn min_bytes_waits_until_max_wait() {
        let (ctx, _logs) = setup();
        produce(&ctx, 1, 1).await;
        let start = Instant::now();
        let resp = fetch(&ctx, 12, fetch_req(12, 0, 1_000_000, 300)).await;
        assert!(start.elapsed() >= Duration::from_millis(290));
        assert!(resp.responses[0].partitions[0]
            .records
            .as_ref()
            .is_some_and(|r| !r.is_empty()));
    }

    #[tokio::test]
    async fn parked_fetch_is_woken_by_produce() {
        let (ctx, _logs) = setup();
        produce(&ctx, 1, 1).await;
        let ctx2 = ctx.clone();
        let start = Instant::now();
        let fetcher =
            tokio::spawn(async move { fetch(&ctx2, 12, fetch_req(12, 1, 1, 10_000)).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        produce(&ctx, 1, 2).await;
        let resp = fetcher.await.expect("join");
        assert!(start.elapsed() < Duration::from_secs(5));
        let recs = resp.responses[0].partitions[0]
            .records
            .clone()
            .expect("records");
        assert_eq!(offsets_in(&recs), vec![1, 2]);
    }

    #[tokio::test]
    async fn fetch_sessions_round_trip() {
        let (ctx, _logs) = setup();
        produce(&ctx, 1, 2).await;
        let mut req = fetch_req(12, 0, 1, 0);
        req.session_id = 0;
        req.session_epoch = 0;
        let resp = fetch(&ctx, 12, req).await;
        assert_ne!(resp.session_id, 0);
        assert_eq!(resp.responses.len(), 1);
        let sid = resp.session_id;
        // Incremental, nothing changed: no partitions in the answer.
        let mut req = fetch_req(12, 2, 1, 0);
        req.topics.clear();
        req.session_id = sid;
        req.session_epoch = 1;
        let resp = fetch(&ctx, 12, req).await;
        assert_eq!(resp.session_id, sid);
        assert_eq!(resp.error_code, 0);
        // The session still fetches from the offset given at creation (0): records again.
        assert_eq!(resp.responses.len(), 1);
        // Wrong epoch.
        let mut req = fetch_req(12, 2, 1, 0);
        req.topics.clear();
        req.session_id = sid;
        req.session_epoch = 5;
        let resp = fetch(&ctx, 12, req).await;
        assert_eq!(
            resp.error_code,
            crate::replica::fetch_session::INVALID_FETCH_SESSION_EPOCH
        );
        // Unknown session.
        let mut req = fetch_req(12, 2, 1, 0);
        req.session_id = sid.wrapping_add(1).max(1);
        req.session_epoch = 1;
        let resp = fetch(&ctx, 12, req).await;
        assert_eq!(
            resp.error_code,
            crate::replica::fetch_session::FETCH_SESSION_ID_NOT_FOUND
        );
        // Move the session's offset to the end: next incremental answer is empty.
        let mut req = fetch_req(12, 2, 1, 0);
        req.session_id = sid;
        req.session_epoch = 2;
        let resp = fetch(&ctx, 12, req).await;
        assert_eq!(resp.error_code, 0);
        let mut req = fetch_req(12, 2, 1, 0);
        req.topics.clear();
        req.session_id = sid;
        req.session_epoch = 3;
        let resp = fetch(&ctx, 12, req).await;
        assert!(resp.responses.is_empty(), "{:?}", resp.responses);
    }
}
