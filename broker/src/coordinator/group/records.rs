//! `__consumer_offsets` record formats, byte for byte as Kafka 3.9 (ZooKeeper mode) writes
//! them (schemas: `group-coordinator/src/main/resources/common/message/` in apache/kafka).
//!
//! Every key and value starts with an int16 schema version; non-flexible encoding: string =
//! int16 length + UTF-8 (nullable: -1), bytes = int32 length + data, array = int32 count.
//!
//! * OffsetCommitKey v1: group, topic (strings), partition int32.
//! * OffsetCommitValue v3: offset int64, leaderEpoch int32 (-1 none), metadata string,
//!   commitTimestamp int64. v1 (written when an expire timestamp is set): offset, metadata,
//!   commitTimestamp, expireTimestamp.
//! * GroupMetadataKey v2: group string.
//! * GroupMetadataValue v3: protocolType string, generation int32, protocol string?, leader
//!   string?, currentStateTimestamp int64, members[memberId, groupInstanceId?, clientId,
//!   clientHost, rebalanceTimeout int32, sessionTimeout int32, subscription bytes, assignment
//!   bytes].
//!
//! A null value is a tombstone (offset or group deleted).

use bytes::{BufMut, Bytes, BytesMut};

use crate::coordinator::record_reader::Reader;
use indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::CommittedOffset;

/// A record key of `__consumer_offsets`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// OffsetCommitKey v0/v1.
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    /// GroupMetadataKey v2.
    Group(String),
    /// Versions 3+ (KRaft-mode consumer-group records): skipped when loading, as Kafka's
    /// ZooKeeper-mode coordinator does.
    Unknown(i16),
}

/// A GroupMetadataValue, decoded (any version 0-4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// -1 (or absent before v2): unknown.
    pub state_timestamp: i64,
    pub members: Vec<StoredMember>,
}

/// Decode a record key; `None` if malformed.
pub fn parse_key(k: Bytes) -> Option<RecordKey> {
    let mut r = Reader {
        b: k,
        flexible: false,
    };
    let v = r.i16()?;
    Some(match v {
        0 | 1 => RecordKey::Offset {
            group: r.str()?,
            topic: r.str()?,
            partition: r.i32()?,
        },
        2 => RecordKey::Group(r.str()?),
        v => RecordKey::Unknown(v),
    })
}

/// OffsetCommitValue v0-v4.
pub fn parse_offset_value(v: Bytes) -> Option<CommittedOffset> {
    let mut r = Reader {
        b: v,
        flexible: false,
    };
    let ver = r.i16()?;
    if !(0..=4).contains(&ver) {
        return None;
    }
    r.flexible = ver >= 4;
    let offset = r.i64()?;
    let leader_epoch = if ver >= 3 { r.i32()? } else { -1 };
    let metadata = r.str()?;
    let commit_timestamp = r.i64()?;
    let expire_timestamp = if ver == 1 { Some(r.i64()?) } else { None };
    r.tags()?;
    Some(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp: expire_timestamp.filter(|e| *e >= 0),
    })
}

/// GroupMetadataValue v0-v4.
pub fn parse_group_value(v: Bytes) -> Option<StoredGroup> {
    let mut r = Reader {
        b: v,
        flexible: false,
    };
    let ver = r.i16()?;
    if !(0..=4).contains(&ver) {
        return None;
    }
    r.flexible = ver >= 4;
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.nullable_str()?;
    let leader = r.nullable_str()?;
    let state_timestamp = if ver >= 2 { r.i64()? } else { -1 };
    let n = r.len(true)?;
    let mut members = Vec::new();
    for _ in 0..n.max(0) {
        let member_id = r.str()?;
        let instance_id = if ver >= 3 { r.nullable_str()? } else { None };
        let client_id = r.str()?;
        let client_host = r.str()?;
        let rebalance = if ver >= 1 { Some(r.i32()?) } else { None };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        r.tags()?;
        members.push(StoredMember {
            member_id,
            instance_id,
            client_id,
            client_host,
            // v0 has no rebalance timeout: Kafka reuses the session timeout.
            rebalance_timeout_ms: rebalance.unwrap_or(session_timeout_ms),
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    r.tags()?;
    Some(StoredGroup {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
}

/// Topics of a ConsumerProtocolSubscription (any version: v0 is the prefix of all), as
/// Kafka's `computeSubscribedTopics` reads them; `None` if malformed.
pub fn subscription_topics(metadata: &Bytes) -> Option<Vec<String>> {
    let mut r = Reader {
        b: metadata.clone(),
        flexible: false,
    };
    r.i16()?;
    let n = r.i32()?;
    let mut out = Vec::new();
    for _ in 0..n.max(0) {
        out.push(r.str()?);
    }
    Some(out)
}

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

fn put_nullable_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, d: &[u8]) {
    b.put_i32(d.len() as i32);
    b.put_slice(d);
}

/// OffsetCommitKey v1.
pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(1);
    put_str(&mut b, group);
    put_str(&mut b, topic);
    b.put_i32(partition);
    b.freeze()
}

/// OffsetCommitValue v3 (v1 when the offset carries an expire timestamp).
pub fn offset_value(o: &CommittedOffset) -> Bytes {
    let mut b = BytesMut::new();
    match o.expire_timestamp {
        Some(exp) => {
            b.put_i16(1);
            b.put_i64(o.offset);
            put_str(&mut b, &o.metadata);
            b.put_i64(o.commit_timestamp);
            b.put_i64(exp);
        }
        None => {
            b.put_i16(3);
            b.put_i64(o.offset);
            b.put_i32(o.leader_epoch);
            put_str(&mut b, &o.metadata);
            b.put_i64(o.commit_timestamp);
        }
    }
    b.freeze()
}

/// GroupMetadataKey v2.
pub fn group_key(group: &str) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(2);
    put_str(&mut b, group);
    b.freeze()
}

/// One member as stored in GroupMetadataValue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// GroupMetadataValue v3.
pub fn group_value(
    protocol_type: &str,
    generation: i32,
    protocol: Option<&str>,
    leader: Option<&str>,
    state_timestamp: i64,
    members: &[StoredMember],
) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    put_str(&mut b, protocol_type);
    b.put_i32(generation);
    put_nullable_str(&mut b, protocol);
    put_nullable_str(&mut b, leader);
    b.put_i64(state_timestamp);
    b.put_i32(members.len() as i32);
    for m in members {
        put_str(&mut b, &m.member_id);
        put_nullable_str(&mut b, m.instance_id.as_deref());
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

/// A magic-2 batch (CreateTime = `now`, no producer id, no compression) of (key, value) records.
pub fn batch(records: &[(Bytes, Option<Bytes>)], now: i64) -> BytesMut {
    build_batch(records, now, None)
}

/// The batch of a TxnOffsetCommit (Kafka's `generateOffsetRecords` with a producer id):
/// transactional, the producer's id and epoch, base sequence 0, otherwise as [`batch`].
pub fn txn_batch(
    records: &[(Bytes, Option<Bytes>)],
    now: i64,
    producer_id: i64,
    producer_epoch: i16,
) -> BytesMut {
    build_batch(records, now, Some((producer_id, producer_epoch)))
}

fn build_batch(
    records: &[(Bytes, Option<Bytes>)],
    now: i64,
    producer: Option<(i64, i16)>,
) -> BytesMut {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    // The encoder keeps records in one batch while offset - sequence is constant; the header
    // stores the first record's sequence: -1 without a producer, 0 for a transaction.
    let first_seq = if producer.is_some() { 0 } else { -1 };
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: producer.is_some(),
            control: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: (i as i32).wrapping_add(first_seq),
            timestamp: now,
            key: Some(k.clone()),
            value: v.clone(),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    // Encoding into memory only fails on impossible sizes; an empty buffer then fails the append.
    let _ = RecordBatchEncoder::encode(
        &mut buf,
        recs.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    );
    buf
}

#[cfg(test)]
mod tests {
    //! Golden tests: expected bytes are built field by field from Kafka 3.9's schema files
    //! (`group-coordinator/src/main/resources/common/message/{OffsetCommitKey,
    //! OffsetCommitValue,GroupMetadataKey,GroupMetadataValue}.json`), independently of the
    //! writer above, plus a few literal byte strings.
    use super::*;

    /// A field value as the schema types it.
    enum F<'a> {
        I32(i32),
        I64(i64),
        Str(&'a str),
        NullStr(Option<&'a str>),
        Bytes(&'a [u8]),
        Array(Vec<Vec<F<'a>>>),
    }

    fn uvarint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    /// Encode a struct: classic encoding, or compact (flexible) with empty tagged fields.
    fn enc(fields: &[F], flexible: bool, out: &mut Vec<u8>) {
        for f in fields {
            match f {
                F::I32(v) => out.extend_from_slice(&v.to_be_bytes()),
                F::I64(v) => out.extend_from_slice(&v.to_be_bytes()),
                F::NullStr(None) if flexible => uvarint(out, 0),
                F::NullStr(None) => out.extend_from_slice(&(-1i16).to_be_bytes()),
                F::Str(s) | F::NullStr(Some(s)) => {
                    if flexible {
                        uvarint(out, s.len() as u64 + 1);
                    } else {
                        out.extend_from_slice(&(s.len() as i16).to_be_bytes());
                    }
                    out.extend_from_slice(s.as_bytes());
                }
                F::Bytes(b) => {
                    if flexible {
                        uvarint(out, b.len() as u64 + 1);
                    } else {
                        out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    }
                    out.extend_from_slice(b);
                }
                F::Array(items) => {
                    if flexible {
                        uvarint(out, items.len() as u64 + 1);
                    } else {
                        out.extend_from_slice(&(items.len() as i32).to_be_bytes());
                    }
                    for it in items {
                        enc(it, flexible, out);
                    }
                }
            }
        }
        if flexible {
            uvarint(out, 0); // no tagged fields
        }
    }

    /// Version prefix + struct.
    fn record(version: i16, fields: &[F], flexible: bool) -> Vec<u8> {
        let mut out = version.to_be_bytes().to_vec();
        enc(fields, flexible, &mut out);
        out
    }

    fn member() -> StoredMember {
        StoredMember {
            member_id: "consumer-1-3f1c".into(),
            instance_id: Some("inst-1".into()),
            client_id: "consumer-1".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 300_000,
            session_timeout_ms: 45_000,
            subscription: Bytes::from_static(b"\x00\x01sub"),
            assignment: Bytes::from_static(b"\x00\x01assign"),
        }
    }

    fn member_fields(m: &StoredMember, version: i16) -> Vec<F<'_>> {
        let mut f = vec![F::Str(&m.member_id)];
        if version >= 3 {
            f.push(F::NullStr(m.instance_id.as_deref()));
        }
        f.push(F::Str(&m.client_id));
        f.push(F::Str(&m.client_host));
        if version >= 1 {
            f.push(F::I32(m.rebalance_timeout_ms));
        }
        f.push(F::I32(m.session_timeout_ms));
        f.push(F::Bytes(&m.subscription));
        f.push(F::Bytes(&m.assignment));
        f
    }

    #[test]
    fn offset_commit_key_v1_matches_schema() {
        let expected = record(
            1,
            &[F::Str("my-group"), F::Str("topic-é"), F::I32(17)],
            false,
        );
        assert_eq!(&offset_key("my-group", "topic-é", 17)[..], &expected[..]);
        assert_eq!(
            &offset_key("g", "t", 3)[..],
            &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]
        );
        assert_eq!(
            parse_key(Bytes::from(expected)),
            Some(RecordKey::Offset {
                group: "my-group".into(),
                topic: "topic-é".into(),
                partition: 17
            })
        );
        // Key v0 has the same layout.
        let v0 = record(0, &[F::Str("g"), F::Str("t"), F::I32(0)], false);
        assert!(matches!(
            parse_key(Bytes::from(v0)),
            Some(RecordKey::Offset { partition: 0, .. })
        ));
    }

    #[test]
    fn offset_commit_value_v3_and_v1_match_schema() {
        let mut o = CommittedOffset {
            offset: 1_234_567_890_123,
            leader_epoch: 9,
            metadata: "meta".into(),
            commit_timestamp: 1_700_000_000_000,
            expire_timestamp: None,
        };
        let v3 = record(
            3,
            &[
                F::I64(o.offset),
                F::I32(9),
                F::Str("meta"),
                F::I64(o.commit_timestamp),
            ],
            false,
        );
        assert_eq!(&offset_value(&o)[..], &v3[..]);
        assert_eq!(parse_offset_value(Bytes::from(v3)), Some(o.clone()));
        // An expire timestamp selects v1 (no leader epoch).
        o.expire_timestamp = Some(1_700_000_600_000);
        let v1 = record(
            1,
            &[
                F::I64(o.offset),
                F::Str("meta"),
                F::I64(o.commit_timestamp),
                F::I64(1_700_000_600_000),
            ],
            false,
        );
        assert_eq!(&offset_value(&o)[..], &v1[..]);
        let back = parse_offset_value(Bytes::from(v1)).expect("v1");
        assert_eq!(
            (back.leader_epoch, back.expire_timestamp),
            (-1, o.expire_timestamp)
        );
        assert_eq!(
            &offset_value(&CommittedOffset {
                offset: 5,
                leader_epoch: 2,
                metadata: "m".into(),
                commit_timestamp: 7,
                expire_timestamp: None,
            })[..],
            &[0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 2, 0, 1, b'm', 0, 0, 0, 0, 0, 0, 0, 7]
        );
    }

    #[test]
    fn offset_commit_values_kafka_may_have_written_decode() {
        for (version, fields) in [
            (0, vec![F::I64(5), F::Str("x"), F::I64(7)]),
            (2, vec![F::I64(5), F::Str("x"), F::I64(7)]),
        ] {
            let o =
                parse_offset_value(Bytes::from(record(version, &fields, false))).expect("decodes");
            assert_eq!(
                (o.offset, o.metadata.as_str(), o.commit_timestamp),
                (5, "x", 7)
            );
        }
        // v4 is flexible (written by the KRaft-mode coordinator).
        let v4 = record(4, &[F::I64(5), F::I32(1), F::Str("x"), F::I64(7)], true);
        let o = parse_offset_value(Bytes::from(v4)).expect("v4");
        assert_eq!((o.offset, o.leader_epoch, o.metadata.as_str()), (5, 1, "x"));
    }

    #[test]
    fn group_metadata_key_v2_matches_schema() {
        let expected = record(2, &[F::Str("my-group")], false);
        assert_eq!(&group_key("my-group")[..], &expected[..]);
        assert_eq!(
            parse_key(Bytes::from(expected)),
            Some(RecordKey::Group("my-group".into()))
        );
        assert_eq!(
            parse_key(Bytes::from_static(&[0, 3, 0, 0])),
            Some(RecordKey::Unknown(3))
        );
    }

    #[test]
    fn group_metadata_value_v3_matches_schema() {
        let m = member();
        let mut anon = member();
        anon.member_id = "consumer-2-9a".into();
        anon.instance_id = None;
        let expected = record(
            3,
            &[
                F::Str("consumer"),
                F::I32(12),
                F::NullStr(Some("range")),
                F::NullStr(Some("consumer-1-3f1c")),
                F::I64(1_700_000_000_123),
                F::Array(vec![member_fields(&m, 3), member_fields(&anon, 3)]),
            ],
            false,
        );
        let written = group_value(
            "consumer",
            12,
            Some("range"),
            Some("consumer-1-3f1c"),
            1_700_000_000_123,
            &[m.clone(), anon.clone()],
        );
        assert_eq!(&written[..], &expected[..]);
        let back = parse_group_value(written).expect("decodes");
        assert_eq!(back.members, vec![m, anon]);
        assert_eq!(
            (back.generation, back.state_timestamp),
            (12, 1_700_000_000_123)
        );

        // An Empty group: protocol and leader null, no members.
        let empty = record(
            3,
            &[
                F::Str("consumer"),
                F::I32(4),
                F::NullStr(None),
                F::NullStr(None),
                F::I64(1),
                F::Array(vec![]),
            ],
            false,
        );
        assert_eq!(
            &group_value("consumer", 4, None, None, 1, &[])[..],
            &empty[..]
        );
    }

    #[test]
    fn group_metadata_values_kafka_may_have_written_decode() {
        let m = member();
        for version in [0i16, 1, 2, 4] {
            let mut top = vec![
                F::Str("consumer"),
                F::I32(3),
                F::NullStr(Some("range")),
                F::NullStr(Some("consumer-1-3f1c")),
            ];
            if version >= 2 {
                top.push(F::I64(99));
            }
            top.push(F::Array(vec![member_fields(&m, version)]));
            let bytes = record(version, &top, version >= 4);
            let g = parse_group_value(Bytes::from(bytes)).expect("decodes");
            assert_eq!(g.generation, 3, "v{version}");
            assert_eq!(g.state_timestamp, if version >= 2 { 99 } else { -1 });
            let got = &g.members[0];
            assert_eq!(got.assignment, m.assignment);
            assert_eq!(got.subscription, m.subscription);
            assert_eq!(
                got.instance_id.as_deref(),
                (version >= 3).then_some("inst-1")
            );
            let rebalance = if version >= 1 { 300_000 } else { 45_000 };
            assert_eq!(
                got.rebalance_timeout_ms, rebalance,
                "v0 reuses the session timeout"
            );
        }
    }

    #[test]
    fn batch_decodes_with_kafkas_batch_fields() {
        let b = batch(
            &[
                (group_key("g"), None),
                (offset_key("g", "t", 0), Some(Bytes::new())),
            ],
            10,
        );
        let mut bytes = b.freeze();
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).expect("decode");
        let recs = set.records;
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].value, None, "tombstone");
        assert_eq!(recs[1].timestamp, 10);
        assert!(recs.iter().all(|r| r.producer_id == -1 && !r.transactional));
    }

    #[test]
    fn subscription_topics_read_v0_prefix() {
        let mut b = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'];
        b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            subscription_topics(&Bytes::from(b)),
            Some(vec!["a".to_string(), "bc".to_string()])
        );
        assert_eq!(subscription_topics(&Bytes::from_static(&[0, 1, 0])), None);
    }
}
