//! Loading a `__transaction_state` partition when this broker becomes its leader (Kafka's
//! `TransactionStateManager.loadTransactionMetadata`): replay the log from its start to its
//! end in `transaction.state.log.load.buffer.size` reads; the last value of each
//! transactional id wins and a tombstone removes it. Unknown key versions and undecodable
//! values are skipped with a warning.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::metadata::TxnMetadata;
use super::records;
use crate::log::Log;

/// Apply every whole batch in `bytes`; returns the next offset to read.
fn replay_batches(
    txns: &mut HashMap<String, TxnMetadata>,
    mut bytes: Bytes,
    mut next: i64,
) -> Option<i64> {
    while bytes.len() >= 12 {
        let len = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let total = 12 + len.max(0) as usize;
        if bytes.len() < total {
            break;
        }
        let mut one = bytes.split_to(total);
        let set = RecordBatchDecoder::decode(&mut one).ok()?;
        for r in set.records {
            next = next.max(r.offset + 1);
            if r.control {
                continue;
            }
            match r.key.and_then(records::parse_key) {
                Some(Ok(id)) => match r.value {
                    None => {
                        txns.remove(&id);
                    }
                    Some(v) => match records::parse_value(v) {
                        Some(rec) => {
                            txns.insert(id.clone(), TxnMetadata::from_record(&id, &rec));
                        }
                        None => tracing::warn!(
                            transactional_id = id,
                            "undecodable __transaction_state value; ignoring it"
                        ),
                    },
                },
                Some(Err(version)) => tracing::warn!(
                    version,
                    "unknown __transaction_state key version; ignoring it"
                ),
                None => {}
            }
        }
    }
    Some(next)
}

/// Replay `log` from start to end; `None` if leadership was lost meanwhile.
pub fn load_partition(
    log: &Log,
    buffer: usize,
    still_leader: &dyn Fn() -> bool,
) -> Option<HashMap<String, TxnMetadata>> {
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut max = buffer.max(1024);
    let mut txns = HashMap::new();
    while offset < end {
        if !still_leader() {
            return None;
        }
        let info = log.read(offset, max, end, true).ok()?;
        let mut data = Vec::new();
        for s in &info.slices {
            let mut buf = vec![0u8; s.len];
            s.file.read_exact_at(&mut buf, s.position).ok()?;
            data.extend_from_slice(&buf);
        }
        let next = replay_batches(&mut txns, Bytes::from(data), offset)?;
        if next == offset {
            if info.slices.is_empty() {
                break;
            }
            max = max.saturating_mul(2);
        }
        offset = next;
    }
    Some(txns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::group::records::batch;
    use crate::coordinator::txn::metadata::TxnState;
    use crate::coordinator::txn::records::{key, value, TxnRecord};

    fn rec(state: TxnState, epoch: i16) -> Bytes {
        value(&TxnRecord {
            producer_id: 5,
            producer_epoch: epoch,
            timeout_ms: 1000,
            state,
            partitions: [("t".to_string(), vec![0, 1])].into(),
            last_update_ms: 2,
            start_ms: 1,
        })
    }

    #[test]
    fn last_value_wins_and_tombstones_remove() {
        let recs = vec![
            (key("a"), Some(rec(TxnState::Empty, 0))),
            (key("a"), Some(rec(TxnState::PrepareCommit, 0))),
            (key("b"), Some(rec(TxnState::Empty, 3))),
            (key("b"), None),
            (Bytes::from_static(&[0, 7, 0, 0]), Some(Bytes::new())),
            (key("c"), Some(Bytes::from_static(&[0, 0, 1]))),
        ];
        let mut txns = HashMap::new();
        let next = replay_batches(&mut txns, batch(&recs, 1).freeze(), 0).expect("decodes");
        assert_eq!(next, recs.len() as i64);
        assert_eq!(txns.len(), 1);
        let a = &txns["a"];
        assert_eq!(a.state, TxnState::PrepareCommit);
        assert_eq!(a.partitions.len(), 2);
        assert_eq!(a.last_producer_epoch, -1);
    }
}
