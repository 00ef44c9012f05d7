//! Loading a `__consumer_offsets` partition when this broker becomes its leader (Kafka's
//! `GroupMetadataManager.doLoadGroupsAndOffsets`): replay the log from its start to LEO in
//! `offsets.load.buffer.size` reads. Offset keys set or (tombstone) delete committed offsets;
//! group keys set or delete group metadata; unknown key versions are skipped. Transactional
//! offset commits are held per producer id until their COMMIT marker (applied) or ABORT marker
//! (dropped).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::FileExt;

use bytes::{Buf, Bytes};
use kafka_protocol::records::RecordBatchDecoder;

use super::records::{self, RecordKey, StoredGroup};
use super::CommittedOffset;
use crate::log::Log;

/// (group, topic, partition)
type OffsetKey = (String, String, i32);

/// Everything read from one partition, ready to be installed in the coordinator.
#[derive(Debug, Default)]
pub struct LoadedPartition {
    /// Last group record of each group whose last group record is not a tombstone.
    pub groups: BTreeMap<String, StoredGroup>,
    /// Groups whose last group record is a tombstone.
    pub removed: HashSet<String>,
    /// Committed offsets by group.
    pub offsets: BTreeMap<String, BTreeMap<(String, i32), CommittedOffset>>,
    /// Log position (base offset of the record's batch) of every committed and pending
    /// offset, by (group, topic, partition) and producer (-1 for committed ones): which of
    /// two commits is newer after a transaction completes (Kafka's `olderThan`).
    pub positions: HashMap<(OffsetKey, i64), i64>,
    /// Transactional commits still waiting for their marker, by group and producer id.
    pub pending_txn: BTreeMap<String, ProducerOffsets>,
    /// The log end offset the load read up to: markers written at or after it were not seen.
    pub end_offset: i64,
}

/// Pending transactional commits of one group: producer id -> partition -> offset.
pub type ProducerOffsets = HashMap<i64, HashMap<(String, i32), CommittedOffset>>;

/// A committed offset and the base offset of the batch that holds its record.
type Positioned = (i64, CommittedOffset);

#[derive(Default)]
struct Replay {
    groups: BTreeMap<String, StoredGroup>,
    removed: HashSet<String>,
    offsets: HashMap<OffsetKey, Positioned>,
    /// Transactional commits by producer id (Kafka's `pendingOffsets`).
    pending: HashMap<i64, HashMap<OffsetKey, Positioned>>,
}

impl Replay {
    /// One record of the batch at `batch_offset`; `txn_producer` for transactional batches.
    fn apply(
        &mut self,
        txn_producer: Option<i64>,
        batch_offset: i64,
        key: RecordKey,
        value: Option<Bytes>,
    ) {
        match key {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                let k = (group, topic, partition);
                let v = value.and_then(records::parse_offset_value);
                let map = match txn_producer {
                    Some(pid) => self.pending.entry(pid).or_default(),
                    None => &mut self.offsets,
                };
                // A transactional tombstone only drops the producer's pending commit.
                match v {
                    Some(v) => {
                        map.insert(k, (batch_offset, v));
                    }
                    None => {
                        map.remove(&k);
                    }
                }
            }
            RecordKey::Group(g) => match value.and_then(records::parse_group_value) {
                Some(v) => {
                    self.removed.remove(&g);
                    self.groups.insert(g, v);
                }
                None => {
                    self.groups.remove(&g);
                    self.removed.insert(g);
                }
            },
            RecordKey::Unknown(v) => {
                tracing::warn!(
                    version = v,
                    "unknown __consumer_offsets key version; ignoring it"
                );
            }
        }
    }

    /// A control record: COMMIT (type 1) applies the producer's pending offsets, ABORT drops them.
    fn control(&mut self, pid: i64, key: Option<Bytes>) {
        let Some(pending) = self.pending.remove(&pid) else {
            return;
        };
        let mut k = key.unwrap_or_default();
        let commit = k.remaining() >= 4 && {
            k.get_i16();
            k.get_i16() == 1
        };
        if commit {
            for (k, v) in pending {
                // A later plain commit of the same partition wins.
                if self.offsets.get(&k).is_none_or(|cur| cur.0 < v.0) {
                    self.offsets.insert(k, v);
                }
            }
        }
    }

    fn finish(self) -> LoadedPartition {
        let mut offsets: BTreeMap<String, BTreeMap<(String, i32), CommittedOffset>> =
            BTreeMap::new();
        let mut positions = HashMap::new();
        for ((g, t, p), (pos, o)) in self.offsets {
            positions.insert(((g.clone(), t.clone(), p), -1), pos);
            offsets.entry(g).or_default().insert((t, p), o);
        }
        let mut pending_txn: BTreeMap<String, ProducerOffsets> = BTreeMap::new();
        for (pid, commits) in self.pending {
            for ((g, t, p), (pos, o)) in commits {
                positions.insert(((g.clone(), t.clone(), p), pid), pos);
                pending_txn
                    .entry(g)
                    .or_default()
                    .entry(pid)
                    .or_default()
                    .insert((t, p), o);
            }
        }
        LoadedPartition {
            groups: self.groups,
            removed: self.removed,
            offsets,
            positions,
            pending_txn,
            end_offset: 0,
        }
    }
}

/// Decode every whole batch in `bytes`, applying its records; returns the next offset to read
/// (unchanged if no whole batch was there).
fn replay_batches(replay: &mut Replay, mut bytes: Bytes, mut next: i64) -> Option<i64> {
    while bytes.len() >= 12 {
        let len = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let total = 12 + len.max(0) as usize;
        if bytes.len() < total {
            break;
        }
        let mut one = bytes.split_to(total);
        let set = RecordBatchDecoder::decode(&mut one).ok()?;
        let batch_offset = set.records.first().map_or(next, |r| r.offset);
        for r in set.records {
            next = next.max(r.offset + 1);
            if r.control {
                replay.control(r.producer_id, r.key);
                continue;
            }
            let Some(key) = r.key.and_then(records::parse_key) else {
                continue;
            };
            let txn = r.transactional.then_some(r.producer_id);
            replay.apply(txn, batch_offset, key, r.value);
        }
    }
    Some(next)
}

/// Replay `log` from its start to its end. `still_leader` is polled between reads: the load
/// stops (returns `None`) once leadership is lost, as Kafka's loop does when LEO becomes -1.
pub fn load_partition(
    log: &Log,
    buffer: usize,
    still_leader: &dyn Fn() -> bool,
) -> Option<LoadedPartition> {
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    let mut max = buffer.max(1024);
    let mut replay = Replay::default();
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
        let next = replay_batches(&mut replay, Bytes::from(data), offset)?;
        if next == offset {
            if info.slices.is_empty() {
                break;
            }
            // A batch larger than the buffer: read more at once.
            max = max.saturating_mul(2);
        }
        offset = next;
    }
    let mut loaded = replay.finish();
    loaded.end_offset = end;
    Some(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::group::records::{batch, group_key, group_value, offset_key};

    fn off(o: i64) -> CommittedOffset {
        CommittedOffset {
            offset: o,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 1,
            expire_timestamp: None,
        }
    }

    #[test]
    fn replay_applies_offsets_groups_and_tombstones() {
        let recs = vec![
            (
                offset_key("g", "t", 0),
                Some(records::offset_value(&off(5))),
            ),
            (
                offset_key("g", "t", 1),
                Some(records::offset_value(&off(6))),
            ),
            (
                group_key("g"),
                Some(group_value("consumer", 3, None, None, 9, &[])),
            ),
            (offset_key("g", "t", 1), None),
            (
                group_key("gone"),
                Some(group_value("consumer", 1, None, None, 9, &[])),
            ),
            (group_key("gone"), None),
            (
                offset_key("simple", "t", 0),
                Some(records::offset_value(&off(7))),
            ),
            // A KRaft-mode record (key v3) is skipped.
            (Bytes::from_static(&[0, 3, 0, 1, b'x']), Some(Bytes::new())),
        ];
        let mut replay = Replay::default();
        let next = replay_batches(&mut replay, batch(&recs, 1).freeze(), 0).expect("decodes");
        assert_eq!(next, recs.len() as i64);
        let l = replay.finish();
        assert_eq!(l.groups["g"].generation, 3);
        assert!(!l.groups.contains_key("gone"));
        assert!(l.removed.contains("gone"));
        assert_eq!(l.offsets["g"].len(), 1);
        assert_eq!(l.offsets["g"][&("t".to_string(), 0)].offset, 5);
        assert_eq!(l.offsets["simple"][&("t".to_string(), 0)].offset, 7);
    }

    #[test]
    fn transactional_offsets_wait_for_their_marker() {
        let mut replay = Replay::default();
        let k = |p| RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: p,
        };
        replay.apply(Some(7), 0, k(0), Some(records::offset_value(&off(1))));
        replay.apply(Some(8), 1, k(1), Some(records::offset_value(&off(2))));
        // A plain commit of partition 2 after producer 9's, before its COMMIT marker: kept.
        replay.apply(Some(9), 2, k(2), Some(records::offset_value(&off(3))));
        replay.apply(None, 3, k(2), Some(records::offset_value(&off(4))));
        replay.apply(Some(10), 4, k(3), Some(records::offset_value(&off(5))));
        // ABORT (type 0) for 8, COMMIT (type 1) for 7 and 9; 10 is still open.
        replay.control(8, Some(Bytes::from_static(&[0, 0, 0, 0])));
        replay.control(7, Some(Bytes::from_static(&[0, 0, 0, 1])));
        replay.control(9, Some(Bytes::from_static(&[0, 0, 0, 1])));
        let l = replay.finish();
        assert_eq!(l.offsets["g"].len(), 2);
        assert_eq!(l.offsets["g"][&("t".to_string(), 0)].offset, 1);
        assert_eq!(l.offsets["g"][&("t".to_string(), 2)].offset, 4);
        assert_eq!(l.pending_txn["g"][&10][&("t".to_string(), 3)].offset, 5);
        let pk = (("g".to_string(), "t".to_string(), 3), 10);
        assert_eq!(l.positions[&pk], 4);
    }
}
