//! `__transaction_state` record formats, byte for byte as Kafka 3.9 (ZooKeeper mode) writes them
//! (schemas: `transaction-coordinator/src/main/resources/common/message/TransactionLog{Key,Value}.json`).
//!
//! Every key and value starts with an int16 schema version. Non-flexible (v0) encoding:
//! string = int16 length + UTF-8, array = int32 count (-1 = null).
//!
//! * TransactionLogKey v0: transactionalId string.
//! * TransactionLogValue v0: producerId int64, producerEpoch int16, transactionTimeoutMs int32,
//!   transactionStatus int8 (state id, see [`super::metadata::TxnState`]),
//!   transactionPartitions [topic string, partitionIds [int32]] (null when the state is Empty),
//!   transactionLastUpdateTimestampMs int64, transactionStartTimestampMs int64.
//!   v1 has the same fields in the flexible (compact, tagged) encoding; ZooKeeper-mode brokers
//!   only write v0 but we read both.
//! * A null value (tombstone) = the transactional id expired.
//!
//! Records are written one per batch, uncompressed, with acks -1 (see `super::install`).

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::coordinator::record_reader::Reader;

use super::metadata::TxnState;

/// What a TransactionLogValue holds (Kafka's `TxnTransitMetadata` as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Partitions of the open transaction, by topic (empty for Empty and Complete*).
    pub partitions: BTreeMap<String, Vec<i32>>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

/// A decoded key: `Ok(transactional id)` or `Err(version)` for a key version we do not know
/// (skipped when loading, as Kafka does).
pub fn parse_key(mut k: Bytes) -> Option<Result<String, i16>> {
    if k.remaining() < 2 {
        return None;
    }
    let version = k.get_i16();
    if version != 0 {
        return Some(Err(version));
    }
    let mut r = Reader {
        b: k,
        flexible: false,
    };
    r.str().map(Ok)
}

/// Decode a TransactionLogValue v0 or v1 (`None` for garbage or an unknown version).
pub fn parse_value(mut v: Bytes) -> Option<TxnRecord> {
    if v.remaining() < 2 {
        return None;
    }
    let version = v.get_i16();
    if !(0..=1).contains(&version) {
        return None;
    }
    let mut r = Reader {
        b: v,
        flexible: version >= 1,
    };
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = TxnState::from_id(r.i8()?)?;
    let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    if let Some(n) = r.array_len()? {
        for _ in 0..n {
            let topic = r.str()?;
            let count = r.array_len()?.unwrap_or(0);
            let mut ids = Vec::with_capacity(count.min(r.b.remaining() / 4));
            for _ in 0..count {
                ids.push(r.i32()?);
            }
            r.tags()?;
            partitions.entry(topic).or_default().extend(ids);
        }
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    r.tags()?;
    if state == TxnState::Empty {
        // Kafka ignores partitions of an Empty record.
        partitions.clear();
    }
    Some(TxnRecord {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
    })
}

/// TransactionLogKey v0.
pub fn key(transactional_id: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(4 + transactional_id.len());
    b.put_i16(0);
    put_str(&mut b, transactional_id);
    b.freeze()
}

/// TransactionLogValue v0. Partitions are written as null for Empty, as Kafka does.
pub fn value(r: &TxnRecord) -> Bytes {
    let mut b = BytesMut::with_capacity(64);
    b.put_i16(0);
    b.put_i64(r.producer_id);
    b.put_i16(r.producer_epoch);
    b.put_i32(r.timeout_ms);
    b.put_i8(r.state.id());
    if r.state == TxnState::Empty {
        b.put_i32(-1);
    } else {
        b.put_i32(r.partitions.len() as i32);
        for (topic, ids) in &r.partitions {
            put_str(&mut b, topic);
            b.put_i32(ids.len() as i32);
            for p in ids {
                b.put_i32(*p);
            }
        }
    }
    b.put_i64(r.last_update_ms);
    b.put_i64(r.start_ms);
    b.freeze()
}

fn put_str(b: &mut BytesMut, s: &str) {
    // Transactional ids and topic names are far below 32 KiB (requests cap them).
    b.put_i16(s.len().min(i16::MAX as usize) as i16);
    b.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
}

#[cfg(test)]
mod tests {
    //! Golden tests: expected bytes are built field by field from Kafka 3.9's
    //! TransactionLogKey.json / TransactionLogValue.json, independently of the writer above.
    use super::*;

    fn str16(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as i16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    fn rec(state: TxnState, parts: &[(&str, &[i32])]) -> TxnRecord {
        TxnRecord {
            producer_id: 4001,
            producer_epoch: 7,
            timeout_ms: 60_000,
            state,
            partitions: parts
                .iter()
                .map(|(t, p)| (t.to_string(), p.to_vec()))
                .collect(),
            last_update_ms: 1_700_000_000_123,
            start_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn key_v0_matches_schema() {
        let mut want = vec![0u8, 0];
        str16(&mut want, "tx-1");
        assert_eq!(key("tx-1").as_ref(), &want[..]);
        assert_eq!(
            key("tx-1").as_ref(),
            &[0, 0, 0, 4, b't', b'x', b'-', b'1'][..]
        );
        assert_eq!(parse_key(key("tx-1")), Some(Ok("tx-1".to_string())));
        assert_eq!(parse_key(Bytes::from_static(&[0, 1, 0, 0])), Some(Err(1)));
        assert_eq!(parse_key(Bytes::from_static(&[0, 0, 0, 9, b'x'])), None);
    }

    #[test]
    fn value_v0_ongoing_matches_schema() {
        let r = rec(TxnState::Ongoing, &[("a", &[0, 2]), ("b", &[1])]);
        let mut want = vec![0u8, 0];
        want.extend_from_slice(&4001i64.to_be_bytes());
        want.extend_from_slice(&7i16.to_be_bytes());
        want.extend_from_slice(&60_000i32.to_be_bytes());
        want.push(1); // Ongoing
        want.extend_from_slice(&2i32.to_be_bytes());
        str16(&mut want, "a");
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(&0i32.to_be_bytes());
        want.extend_from_slice(&2i32.to_be_bytes());
        str16(&mut want, "b");
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&1i32.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        assert_eq!(value(&r).as_ref(), &want[..]);
        assert_eq!(parse_value(value(&r)), Some(r));
    }

    #[test]
    fn value_v0_empty_has_null_partitions_and_complete_has_empty_list() {
        let mut r = rec(TxnState::Empty, &[]);
        r.start_ms = -1;
        let v = value(&r);
        // version, pid, epoch, timeout, status, then a null array (-1), then two timestamps.
        assert_eq!(v.len(), 2 + 8 + 2 + 4 + 1 + 4 + 8 + 8);
        assert_eq!(&v[16..21], &[0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(parse_value(v), Some(r));
        let c = rec(TxnState::CompleteCommit, &[]);
        let v = value(&c);
        assert_eq!(&v[16..21], &[4, 0, 0, 0, 0]);
        assert_eq!(parse_value(v), Some(c));
    }

    #[test]
    fn value_v1_flexible_decodes() {
        let mut v = vec![0u8, 1];
        v.extend_from_slice(&9i64.to_be_bytes());
        v.extend_from_slice(&1i16.to_be_bytes());
        v.extend_from_slice(&1000i32.to_be_bytes());
        v.push(2); // PrepareCommit
        v.push(2); // one topic (compact: n+1)
        v.push(2); // "t" (compact: len+1)
        v.push(b't');
        v.push(2); // one partition
        v.extend_from_slice(&3i32.to_be_bytes());
        v.push(0); // topic tags
        v.extend_from_slice(&5i64.to_be_bytes());
        v.extend_from_slice(&4i64.to_be_bytes());
        v.push(0); // value tags
        let r = parse_value(Bytes::from(v)).expect("decodes");
        assert_eq!(r.state, TxnState::PrepareCommit);
        assert_eq!(r.partitions["t"], vec![3]);
        assert_eq!((r.last_update_ms, r.start_ms), (5, 4));
    }

    #[test]
    fn garbage_values_do_not_decode() {
        assert_eq!(parse_value(Bytes::new()), None);
        assert_eq!(parse_value(Bytes::from_static(&[0, 2, 1, 2, 3])), None);
        let mut v = value(&rec(TxnState::Ongoing, &[("a", &[0])])).to_vec();
        v.truncate(v.len() - 3);
        assert_eq!(parse_value(Bytes::from(v)), None);
        // A status byte outside 0..=7.
        let mut v = value(&rec(TxnState::Ongoing, &[])).to_vec();
        v[16] = 9;
        assert_eq!(parse_value(Bytes::from(v)), None);
    }
}
