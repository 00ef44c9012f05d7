//! Hand encoder for the Fetch response body (API 1, v0-v17).
//!
//! The generic `kafka_protocol` encoder needs the record bytes in memory; we
//! instead emit the fixed fields into small `Bytes` buffers and leave the record
//! bytes as opaque slices (file slices in production) so the connection can
//! write them with `sendfile`. Field order and types follow Kafka 3.9's
//! `FetchResponse.json`:
//!
//! * v1+: throttle_time_ms; v7+: error_code, session_id;
//! * topics: name (STRING, COMPACT_STRING at v12) for v0-12, topic_id (UUID) v13+;
//! * partition: index, error, high_watermark, last_stable_offset (v4+),
//!   log_start_offset (v5+), aborted_transactions (nullable array, v4+),
//!   preferred_read_replica (v11+), records (NULLABLE_BYTES; compact at v12+),
//!   tagged fields v12+: 0 = diverging_epoch, 1 = current_leader (only when not
//!   default-valued, as Kafka never writes default tagged fields);
//! * top level tagged field 0 = node_endpoints (v16+, only when non-empty).
//!
//! Flexible versions (v12+) use unsigned-varint (N+1) lengths and a tagged
//! field count after every struct.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// Record bytes whose length is known without reading them.
pub trait RecordSlice {
    fn byte_len(&self) -> usize;
}

impl RecordSlice for Bytes {
    fn byte_len(&self) -> usize {
        self.len()
    }
}

/// One piece of an encoded response: encoded fields or an opaque record slice.
#[derive(Debug, Clone)]
pub enum Piece<S> {
    Bytes(Bytes),
    Slice(S),
}

/// `(producer_id, first_offset)` of an aborted transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
}

/// A node endpoint (v16+ top-level tagged field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpointOut {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// One partition of the response.
#[derive(Debug, Clone)]
pub struct PartitionOut<S> {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// `(epoch, end_offset)` when the follower's log diverges (v12+).
    pub diverging_epoch: Option<(i32, i64)>,
    /// `(leader_id, leader_epoch)` hint on NOT_LEADER / FENCED errors (v12+).
    pub current_leader: Option<(i32, i32)>,
    /// `None` is written as a null array (read_uncommitted).
    pub aborted_transactions: Option<Vec<AbortedTxn>>,
    pub preferred_read_replica: i32,
    /// Record data, concatenated in order. Empty for errors.
    pub records: Vec<S>,
}

impl<S> PartitionOut<S> {
    /// A partition answer carrying only an error code.
    pub fn error(partition_index: i32, error_code: i16) -> Self {
        Self {
            partition_index,
            error_code,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            diverging_epoch: None,
            current_leader: None,
            aborted_transactions: None,
            preferred_read_replica: -1,
            records: Vec::new(),
        }
    }

    /// Bytes of record data in this partition.
    pub fn records_len(&self) -> usize
    where
        S: RecordSlice,
    {
        self.records.iter().map(RecordSlice::byte_len).sum()
    }
}

/// One topic of the response.
#[derive(Debug, Clone)]
pub struct TopicOut<S> {
    pub name: String,
    pub topic_id: Uuid,
    pub partitions: Vec<PartitionOut<S>>,
}

/// The whole response body.
#[derive(Debug, Clone)]
pub struct FetchResponseOut<S> {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub session_id: i32,
    pub topics: Vec<TopicOut<S>>,
    pub node_endpoints: Vec<NodeEndpointOut>,
}

impl<S> Default for FetchResponseOut<S> {
    fn default() -> Self {
        Self {
            throttle_time_ms: 0,
            error_code: 0,
            session_id: 0,
            topics: Vec::new(),
            node_endpoints: Vec::new(),
        }
    }
}

struct Writer<S> {
    flexible: bool,
    buf: BytesMut,
    out: Vec<Piece<S>>,
}

impl<S> Writer<S> {
    fn uvarint(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.put_u8(v as u8);
    }

    /// Array length: i32 (or -1 for null), or compact N+1 (0 for null).
    fn array_len(&mut self, len: Option<usize>) {
        if self.flexible {
            self.uvarint(len.map_or(0, |n| n as u32 + 1));
        } else {
            self.buf.put_i32(len.map_or(-1, |n| n as i32));
        }
    }

    fn string(&mut self, s: &str) {
        if self.flexible {
            self.uvarint(s.len() as u32 + 1);
        } else {
            self.buf.put_i16(s.len() as i16);
        }
        self.buf.put_slice(s.as_bytes());
    }

    fn nullable_compact_string(&mut self, s: Option<&str>) {
        match s {
            None => self.uvarint(0),
            Some(s) => {
                self.uvarint(s.len() as u32 + 1);
                self.buf.put_slice(s.as_bytes());
            }
        }
    }

    fn slice(&mut self, s: S) {
        if !self.buf.is_empty() {
            let b = self.buf.split().freeze();
            self.out.push(Piece::Bytes(b));
        }
        self.out.push(Piece::Slice(s));
    }

    fn finish(mut self) -> Vec<Piece<S>> {
        if !self.buf.is_empty() {
            let b = self.buf.split().freeze();
            self.out.push(Piece::Bytes(b));
        }
        self.out
    }
}

/// Size in bytes of the body of a flexible struct encoded by `f` (for tagged fields).
fn tagged_struct<S>(w: &mut Writer<S>, tag: u32, f: impl FnOnce(&mut BytesMut)) {
    let mut tmp = BytesMut::new();
    f(&mut tmp);
    w.uvarint(tag);
    w.uvarint(tmp.len() as u32);
    w.buf.put_slice(&tmp);
}

/// Encode the response body at `version` (0..=17) into pieces.
pub fn encode_fetch_response<S: RecordSlice>(
    resp: FetchResponseOut<S>,
    version: i16,
) -> Vec<Piece<S>> {
    let flexible = version >= 12;
    let mut w = Writer {
        flexible,
        buf: BytesMut::with_capacity(256),
        out: Vec::new(),
    };
    if version >= 1 {
        w.buf.put_i32(resp.throttle_time_ms);
    }
    if version >= 7 {
        w.buf.put_i16(resp.error_code);
        w.buf.put_i32(resp.session_id);
    }
    w.array_len(Some(resp.topics.len()));
    for topic in resp.topics {
        if version >= 13 {
            w.buf.put_slice(topic.topic_id.as_bytes());
        } else {
            w.string(&topic.name);
        }
        w.array_len(Some(topic.partitions.len()));
        for p in topic.partitions {
            encode_partition(&mut w, p, version);
        }
        if flexible {
            w.uvarint(0);
        }
    }
    if flexible {
        if version >= 16 && !resp.node_endpoints.is_empty() {
            w.uvarint(1);
            let mut tmp: Writer<S> = Writer {
                flexible: true,
                buf: BytesMut::new(),
                out: Vec::new(),
            };
            tmp.array_len(Some(resp.node_endpoints.len()));
            for n in &resp.node_endpoints {
                tmp.buf.put_i32(n.node_id);
                tmp.string(&n.host);
                tmp.buf.put_i32(n.port);
                tmp.nullable_compact_string(n.rack.as_deref());
                tmp.uvarint(0);
            }
            let body = tmp.buf;
            w.uvarint(0);
            w.uvarint(body.len() as u32);
            w.buf.put_slice(&body);
        } else {
            w.uvarint(0);
        }
    }
    w.finish()
}

fn encode_partition<S: RecordSlice>(w: &mut Writer<S>, p: PartitionOut<S>, version: i16) {
    let flexible = w.flexible;
    w.buf.put_i32(p.partition_index);
    w.buf.put_i16(p.error_code);
    w.buf.put_i64(p.high_watermark);
    if version >= 4 {
        w.buf.put_i64(p.last_stable_offset);
    }
    if version >= 5 {
        w.buf.put_i64(p.log_start_offset);
    }
    if version >= 4 {
        match &p.aborted_transactions {
            None => w.array_len(None),
            Some(list) => {
                w.array_len(Some(list.len()));
                for a in list {
                    w.buf.put_i64(a.producer_id);
                    w.buf.put_i64(a.first_offset);
                    if flexible {
                        w.uvarint(0);
                    }
                }
            }
        }
    }
    if version >= 11 {
        w.buf.put_i32(p.preferred_read_replica);
    }
    let len = p.records_len();
    if flexible {
        w.uvarint(len as u32 + 1);
    } else {
        w.buf.put_i32(len as i32);
    }
    for s in p.records {
        if s.byte_len() > 0 {
            w.slice(s);
        }
    }
    if flexible {
        let diverging = p.diverging_epoch.filter(|&(e, o)| (e, o) != (-1, -1));
        let leader = p.current_leader.filter(|&(l, e)| (l, e) != (-1, -1));
        let n = diverging.is_some() as u32 + leader.is_some() as u32;
        w.uvarint(n);
        if let Some((epoch, end_offset)) = diverging {
            tagged_struct(w, 0, |b| {
                b.put_i32(epoch);
                b.put_i64(end_offset);
                b.put_u8(0);
            });
        }
        if let Some((leader_id, leader_epoch)) = leader {
            tagged_struct(w, 1, |b| {
                b.put_i32(leader_id);
                b.put_i32(leader_epoch);
                b.put_u8(0);
            });
        }
    }
}

/// Total encoded length of `pieces`.
pub fn pieces_len<S: RecordSlice>(pieces: &[Piece<S>]) -> usize {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Bytes(b) => b.len(),
            Piece::Slice(s) => s.byte_len(),
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::Decodable;

    fn flatten(pieces: Vec<Piece<Bytes>>) -> Bytes {
        let mut out = BytesMut::new();
        for p in pieces {
            match p {
                Piece::Bytes(b) | Piece::Slice(b) => out.put_slice(&b),
            }
        }
        out.freeze()
    }

    fn sample(version: i16) -> FetchResponseOut<Bytes> {
        let records_a = Bytes::from(vec![7u8; 100]);
        let records_b = Bytes::from(vec![9u8; 33]);
        FetchResponseOut {
            throttle_time_ms: if version >= 1 { 5 } else { 0 },
            error_code: 0,
            session_id: if version >= 7 { 1234 } else { 0 },
            topics: vec![
                TopicOut {
                    name: "alpha".into(),
                    topic_id: Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788),
                    partitions: vec![
                        PartitionOut {
                            partition_index: 0,
                            error_code: 0,
                            high_watermark: 42,
                            last_stable_offset: 40,
                            log_start_offset: 3,
                            diverging_epoch: if version >= 12 { Some((4, 17)) } else { None },
                            current_leader: if version >= 12 { Some((2, 9)) } else { None },
                            aborted_transactions: Some(vec![AbortedTxn {
                                producer_id: 77,
                                first_offset: 12,
                            }]),
                            preferred_read_replica: -1,
                            records: vec![records_a, records_b],
                        },
                        PartitionOut::error(1, 6),
                    ],
                },
                TopicOut {
                    name: "b".into(),
                    topic_id: Uuid::from_u128(5),
                    partitions: vec![],
                },
            ],
            node_endpoints: if version >= 16 {
                vec![NodeEndpointOut {
                    node_id: 2,
                    host: "h2".into(),
                    port: 9093,
                    rack: None,
                }]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn every_version_decodes_with_kafka_protocol() {
        for version in 0..=17i16 {
            let resp = sample(version);
            let expect = resp.clone();
            let pieces = encode_fetch_response(resp, version);
            let total = pieces_len(&pieces);
            let mut bytes = flatten(pieces);
            assert_eq!(total, bytes.len());
            let decoded = FetchResponse::decode(&mut bytes, version)
                .unwrap_or_else(|e| panic!("v{version}: {e}"));
            assert!(bytes.is_empty(), "v{version}: trailing bytes");
            if version >= 1 {
                assert_eq!(decoded.throttle_time_ms, 5);
            }
            if version >= 7 {
                assert_eq!(decoded.session_id, 1234);
            }
            assert_eq!(decoded.responses.len(), 2);
            let t = &decoded.responses[0];
            if version >= 13 {
                assert_eq!(t.topic_id, expect.topics[0].topic_id);
            } else {
                assert_eq!(t.topic.as_str(), "alpha");
            }
            let p = &t.partitions[0];
            let ep = &expect.topics[0].partitions[0];
            assert_eq!(p.high_watermark, 42);
            assert_eq!(p.error_code, 0);
            if version >= 4 {
                assert_eq!(p.last_stable_offset, 40);
                let ab = p.aborted_transactions.as_ref().expect("aborted");
                assert_eq!(ab[0].producer_id.0, 77);
                assert_eq!(ab[0].first_offset, 12);
            }
            if version >= 5 {
                assert_eq!(p.log_start_offset, 3);
            }
            if version >= 12 {
                assert_eq!(p.diverging_epoch.epoch, 4);
                assert_eq!(p.diverging_epoch.end_offset, 17);
                assert_eq!(p.current_leader.leader_id.0, 2);
                assert_eq!(p.current_leader.leader_epoch, 9);
                assert!(p.unknown_tagged_fields.is_empty());
            }
            let recs = p.records.as_ref().expect("records");
            let mut want = BytesMut::new();
            for r in &ep.records {
                want.put_slice(r);
            }
            assert_eq!(&recs[..], &want[..]);
            let p1 = &t.partitions[1];
            assert_eq!(p1.partition_index, 1);
            assert_eq!(p1.error_code, 6);
            assert_eq!(p1.records.as_ref().map(|r| r.len()), Some(0));
            if version >= 4 {
                assert!(p1.aborted_transactions.is_none());
            }
            if version >= 16 {
                assert_eq!(decoded.node_endpoints.len(), 1);
                assert_eq!(decoded.node_endpoints[0].port, 9093);
            }
            assert!(decoded.unknown_tagged_fields.is_empty());
        }
    }

    #[test]
    fn flexible_defaults_emit_no_tagged_fields() {
        let mut resp = sample(12);
        resp.topics[0].partitions[0].diverging_epoch = None;
        resp.topics[0].partitions[0].current_leader = Some((-1, -1));
        let pieces = encode_fetch_response(resp, 12);
        let mut bytes = flatten(pieces);
        let decoded = FetchResponse::decode(&mut bytes, 12).expect("decode");
        let p = &decoded.responses[0].partitions[0];
        assert_eq!(p.diverging_epoch.epoch, -1);
        assert_eq!(p.current_leader.leader_id.0, -1);
    }
}
