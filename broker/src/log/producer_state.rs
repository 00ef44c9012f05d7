//! Idempotent / transactional producer state of one partition (Kafka 3.9
//! `ProducerStateManager`, `ProducerAppendInfo`, `ProducerStateEntry`).
//!
//! Per producer id we keep the epoch, the metadata of its last five batches (for
//! duplicate detection), the coordinator epoch of the last transaction marker and the
//! first offset of its open transaction. From the open transactions we derive the first
//! unstable offset (LSO) and the aborted-transaction index entries.
//!
//! # Snapshot files: `<dir>/<offset, 20 digits>.snapshot`
//!
//! `offset` is the exclusive end offset the snapshot covers (state after applying every
//! batch below it). Layout, big-endian:
//!
//! | size | field                                                              |
//! |------|--------------------------------------------------------------------|
//! | 2    | version (int16) = 1                                                |
//! | 4    | crc (uint32): CRC-32C of every byte from offset 6 to end of file   |
//! | 4    | entry count (int32)                                                |
//! | 46×n | entries                                                            |
//!
//! Entry (46 bytes): producerId int64, producerEpoch int16, lastSequence int32,
//! lastOffset int64 (−1: no batch), offsetDelta int32 (lastOffset − firstOffset of the last
//! batch), timestamp int64 (max timestamp of the last batch), coordinatorEpoch int32,
//! currentTxnFirstOffset int64 (−1: no open transaction).
//!
//! Error semantics follow Kafka 3.9 for client appends: a retry of one of the last five
//! batches is a duplicate (answered with the original offsets, never
//! DUPLICATE_SEQUENCE_NUMBER); a lower epoch is INVALID_PRODUCER_EPOCH; a gap, or a new
//! epoch not starting at sequence 0, is OUT_OF_ORDER_SEQUENCE_NUMBER; a producer whose
//! state is gone (retention, DeleteRecords, expiry) is accepted at any sequence, so
//! UNKNOWN_PRODUCER_ID is never returned. Replication appends are never rejected;
//! coordinator appends skip sequence checks.
//!
//! Only the last batch per producer is stored. Loading takes the newest snapshot
//! (after `truncate_and_reload` removed those past the log end), skipping and deleting
//! corrupt ones (bad version, short file, CRC mismatch), then the log replays batches
//! from the snapshot offset. `remove_stray_snapshots` keeps only snapshots at segment
//! bases plus the newest stray one if it is above the last segment base (the LEO
//! snapshot of a clean shutdown). Snapshots are deleted with their segment
//! (`remove_and_mark_snapshot_for_deletion` renames to `.snapshot.deleted`) and below
//! `min_snapshots_offset_to_retain` after recovery-point checkpoints.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use indexmap::IndexMap;

use crate::log::batch::{BatchHeader, HEADER_LEN};
use crate::log::txn_index::{AbortedTxn, TxnIndex};

/// Batches remembered per producer for duplicate detection.
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;
pub const NO_TIMESTAMP: i64 = -1;
/// Kafka's `LATE_TRANSACTION_BUFFER_MS`: slack before an open transaction counts as hanging.
pub const LATE_TRANSACTION_BUFFER_MS: i64 = 5 * 60 * 1000;

pub const PRODUCER_SNAPSHOT_VERSION: i16 = 1;
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
pub const DELETED_SUFFIX: &str = ".deleted";
const SNAPSHOT_HEADER_LEN: usize = 10;
const SNAPSHOT_ENTRY_LEN: usize = 46;

/// Who is appending: decides how strictly producer state is validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A follower copying the leader, or recovery: never rejected.
    Replication,
    /// Group / transaction coordinator writes (no sequence checks, epoch checked).
    Coordinator,
    /// Produce requests: full sequence and epoch validation.
    Client,
}

/// Producer-state failures, each one Kafka exception; converted into the broker error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerStateError {
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    #[error("out of order sequence number: {0}")]
    OutOfOrderSequence(String),
    #[error("invalid transaction state: {0}")]
    InvalidTxnState(String),
    #[error("transaction coordinator fenced: {0}")]
    TransactionCoordinatorFenced(String),
    #[error("invalid record: {0}")]
    InvalidRecord(String),
}

impl ProducerStateError {
    /// Kafka error code of the matching exception.
    pub fn code(&self) -> i16 {
        match self {
            Self::InvalidProducerEpoch(_) => 47,
            Self::OutOfOrderSequence(_) => 45,
            Self::InvalidTxnState(_) => 48,
            Self::TransactionCoordinatorFenced(_) => 52,
            Self::InvalidRecord(_) => 87,
        }
    }
}

/// `seq - decrement` wrapping below 0 to `i32::MAX` (inverse of `increment_sequence`).
pub fn decrement_sequence(seq: i32, decrement: i32) -> i32 {
    if seq < decrement {
        (i32::MAX - (decrement - seq)).wrapping_add(1)
    } else {
        seq - decrement
    }
}

fn in_sequence(last_seq: i32, next_seq: i32) -> bool {
    next_seq as i64 == last_seq as i64 + 1 || (next_seq == 0 && last_seq == i32::MAX)
}

/// One remembered batch of a producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMetadata {
    pub last_seq: i32,
    pub last_offset: i64,
    pub offset_delta: i32,
    pub timestamp: i64,
}

impl BatchMetadata {
    pub fn first_seq(&self) -> i32 {
        decrement_sequence(self.last_seq, self.offset_delta)
    }
    pub fn first_offset(&self) -> i64 {
        self.last_offset - self.offset_delta as i64
    }
}

/// State of one producer id on this partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_id: i64,
    batches: VecDeque<BatchMetadata>,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub last_timestamp: i64,
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerStateEntry {
    pub fn empty(producer_id: i64) -> Self {
        Self {
            producer_id,
            batches: VecDeque::new(),
            producer_epoch: NO_PRODUCER_EPOCH,
            coordinator_epoch: -1,
            last_timestamp: NO_TIMESTAMP,
            current_txn_first_offset: None,
        }
    }

    pub fn new(
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        last_timestamp: i64,
        current_txn_first_offset: Option<i64>,
        first_batch: Option<BatchMetadata>,
    ) -> Self {
        Self {
            producer_id,
            batches: first_batch.into_iter().collect(),
            producer_epoch,
            coordinator_epoch,
            last_timestamp,
            current_txn_first_offset,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
    pub fn first_seq(&self) -> i32 {
        self.batches.front().map_or(NO_SEQUENCE, |b| b.first_seq())
    }
    pub fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }
    pub fn first_data_offset(&self) -> i64 {
        self.batches.front().map_or(-1, |b| b.first_offset())
    }
    pub fn last_data_offset(&self) -> i64 {
        self.batches.back().map_or(-1, |b| b.last_offset)
    }
    pub fn last_offset_delta(&self) -> i32 {
        self.batches.back().map_or(0, |b| b.offset_delta)
    }
    /// Retained batches, oldest first.
    pub fn batch_metadata(&self) -> impl Iterator<Item = &BatchMetadata> {
        self.batches.iter()
    }

    fn maybe_update_producer_epoch(&mut self, epoch: i16) -> bool {
        if self.producer_epoch != epoch {
            self.batches.clear();
            self.producer_epoch = epoch;
            true
        } else {
            false
        }
    }

    fn add_batch_metadata(&mut self, b: BatchMetadata) {
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(b);
    }

    fn add_batch(
        &mut self,
        epoch: i16,
        last_seq: i32,
        last_offset: i64,
        offset_delta: i32,
        ts: i64,
    ) {
        self.maybe_update_producer_epoch(epoch);
        self.add_batch_metadata(BatchMetadata {
            last_seq,
            last_offset,
            offset_delta,
            timestamp: ts,
        });
        self.last_timestamp = ts;
    }

    /// Folds `next` (an append's result) into this entry.
    fn update_from(&mut self, next: ProducerStateEntry) {
        self.maybe_update_producer_epoch(next.producer_epoch);
        for b in next.batches {
            self.add_batch_metadata(b);
        }
        self.coordinator_epoch = next.coordinator_epoch;
        self.current_txn_first_offset = next.current_txn_first_offset;
        self.last_timestamp = next.last_timestamp;
    }

    fn update_marker(&mut self, epoch: i16, coordinator_epoch: i32, ts: i64) {
        self.maybe_update_producer_epoch(epoch);
        self.coordinator_epoch = coordinator_epoch;
        self.current_txn_first_offset = None;
        self.last_timestamp = ts;
    }

    /// The retained batch with this exact sequence range in the same epoch, if any: the
    /// batch is a retry and the caller answers with the original offsets.
    pub fn find_duplicate_batch(&self, h: &BatchHeader) -> Option<BatchMetadata> {
        if h.producer_epoch != self.producer_epoch {
            return None;
        }
        self.batch_with_sequence_range(h.base_sequence, h.last_sequence())
    }

    pub fn batch_with_sequence_range(
        &self,
        first_seq: i32,
        last_seq: i32,
    ) -> Option<BatchMetadata> {
        self.batches
            .iter()
            .find(|b| b.first_seq() == first_seq && b.last_seq == last_seq)
            .copied()
    }
}

/// A transaction seen on this partition (first data offset; marker offset when done).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: Option<i64>,
}

/// A transaction whose marker was just appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub is_aborted: bool,
}

/// Control record type of a transaction marker (key field `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlRecordType {
    Abort = 0,
    Commit = 1,
}

/// An end-transaction marker, the single record of a control batch.
///
/// Record key: version int16 (0), type int16 (0 abort, 1 commit). Record value: version
/// int16 (0), coordinatorEpoch int32.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub control_type: ControlRecordType,
    pub coordinator_epoch: i32,
    /// Timestamp of the marker record.
    pub timestamp: i64,
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    Some(((value >> 1) as i64) ^ -((value & 1) as i64))
}

fn invalid_record(msg: &str) -> ProducerStateError {
    ProducerStateError::InvalidRecord(msg.to_string())
}

impl EndTxnMarker {
    /// Reads the marker from a whole control batch (`batch` starts at the batch header).
    /// `Ok(None)` for a control batch without records (its transaction was cleaned away)
    /// or with a non-transaction control record (e.g. leader change).
    pub fn from_control_batch(
        batch: &[u8],
        h: &BatchHeader,
    ) -> Result<Option<Self>, ProducerStateError> {
        if !h.is_control() {
            return Ok(None);
        }
        if h.records_count <= 0 || batch.len() <= HEADER_LEN {
            return Ok(None);
        }
        if h.compression() != 0 {
            return Err(invalid_record("compressed control batch"));
        }
        let end = h.total_size().min(batch.len());
        let rec = batch
            .get(HEADER_LEN..end)
            .ok_or_else(|| invalid_record("short control batch"))?;
        let mut p = 0usize;
        let bad = || invalid_record("malformed control record");
        let _len = read_varint(rec, &mut p).ok_or_else(bad)?;
        p += 1; // attributes
        let ts_delta = read_varint(rec, &mut p).ok_or_else(bad)?;
        let _off_delta = read_varint(rec, &mut p).ok_or_else(bad)?;
        let key_len = read_varint(rec, &mut p).ok_or_else(bad)?;
        if key_len < 4 {
            return Err(invalid_record("control record key too short"));
        }
        let key = rec.get(p..p + key_len as usize).ok_or_else(bad)?;
        p += key_len as usize;
        let ctype = i16::from_be_bytes([key[2], key[3]]);
        let control_type = match ctype {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            _ => return Ok(None),
        };
        let val_len = read_varint(rec, &mut p).ok_or_else(bad)?;
        if val_len < 6 {
            return Err(invalid_record(
                "invalid value size found for end transaction marker",
            ));
        }
        let val = rec.get(p..p + val_len as usize).ok_or_else(bad)?;
        let coordinator_epoch = i32::from_be_bytes([val[2], val[3], val[4], val[5]]);
        let timestamp = if h.is_log_append_time() {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(ts_delta)
        };
        Ok(Some(Self {
            control_type,
            coordinator_epoch,
            timestamp,
        }))
    }
}

/// Kafka's `VerificationGuard`: identifies one in-flight transaction verification
/// (KIP-890). `SENTINEL` (0) never verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VerificationGuard(pub u64);

impl VerificationGuard {
    pub const SENTINEL: VerificationGuard = VerificationGuard(0);

    fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// True when `request` is the same, non-sentinel guard.
    pub fn verify(&self, request: VerificationGuard) -> bool {
        request != Self::SENTINEL && *self == request
    }
}

/// Kafka's `VerificationStateEntry`: lowest sequence/epoch seen while verifying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerificationStateEntry {
    pub timestamp: i64,
    pub guard: VerificationGuard,
    pub lowest_sequence: i32,
    pub epoch: i16,
}

impl VerificationStateEntry {
    fn maybe_update_lowest_sequence_and_epoch(&mut self, seq: i32, epoch: i16) {
        if epoch > self.epoch {
            self.lowest_sequence = seq;
            self.epoch = epoch;
        } else if epoch == self.epoch && seq < self.lowest_sequence {
            self.lowest_sequence = seq;
        }
    }
}

/// Validates one producer's batches of an append against its state and accumulates the
/// resulting state; applied with [`ProducerStateManager::update`] once the append is on disk.
#[derive(Clone, Debug)]
pub struct ProducerAppendInfo {
    producer_id: i64,
    current: ProducerStateEntry,
    origin: AppendOrigin,
    verification: Option<VerificationStateEntry>,
    transactions: Vec<TxnMetadata>,
    updated: ProducerStateEntry,
}

impl ProducerAppendInfo {
    pub fn new(
        producer_id: i64,
        current: ProducerStateEntry,
        origin: AppendOrigin,
        verification: Option<VerificationStateEntry>,
    ) -> Self {
        let updated = ProducerStateEntry::new(
            producer_id,
            current.producer_epoch,
            current.coordinator_epoch,
            current.last_timestamp,
            current.current_txn_first_offset,
            None,
        );
        Self {
            producer_id,
            current,
            origin,
            verification,
            transactions: Vec::new(),
            updated,
        }
    }

    pub fn producer_id(&self) -> i64 {
        self.producer_id
    }
    /// The producer's state after this append.
    pub fn to_entry(&self) -> &ProducerStateEntry {
        &self.updated
    }
    /// Transactions this append opened.
    pub fn started_transactions(&self) -> &[TxnMetadata] {
        &self.transactions
    }

    fn check_producer_epoch(&self, epoch: i16, offset: i64) -> Result<(), ProducerStateError> {
        if epoch < self.updated.producer_epoch {
            let msg = format!(
                "epoch of producer {} at offset {offset} is {epoch}, which is smaller than the last seen epoch {}",
                self.producer_id, self.updated.producer_epoch
            );
            if self.origin == AppendOrigin::Replication {
                tracing::warn!("{msg}");
            } else {
                return Err(ProducerStateError::InvalidProducerEpoch(msg));
            }
        }
        Ok(())
    }

    fn check_sequence(
        &self,
        epoch: i16,
        first_seq: i32,
        offset: i64,
    ) -> Result<(), ProducerStateError> {
        if let Some(v) = &self.verification {
            if first_seq > v.lowest_sequence {
                return Err(ProducerStateError::OutOfOrderSequence(format!(
                    "producer {} at offset {offset}: {first_seq} (incoming seq. number), {} (earliest seen sequence)",
                    self.producer_id, v.lowest_sequence
                )));
            }
        }
        if epoch != self.updated.producer_epoch {
            if first_seq != 0 && self.updated.producer_epoch != NO_PRODUCER_EPOCH {
                return Err(ProducerStateError::OutOfOrderSequence(format!(
                    "invalid sequence number for new epoch of producer {} at offset {offset}: {epoch} (request epoch), {first_seq} (seq. number), {} (current producer epoch)",
                    self.producer_id, self.updated.producer_epoch
                )));
            }
        } else {
            let current_last_seq = if !self.updated.is_empty() {
                self.updated.last_seq()
            } else if epoch == self.current.producer_epoch {
                self.current.last_seq()
            } else {
                NO_SEQUENCE
            };
            // No known epoch: the producer's data was removed (retention, DeleteRecords),
            // so any sequence is accepted.
            if !(self.current.producer_epoch == NO_PRODUCER_EPOCH
                || in_sequence(current_last_seq, first_seq))
            {
                return Err(ProducerStateError::OutOfOrderSequence(format!(
                    "producer {} at offset {offset}: {first_seq} (incoming seq. number), {current_last_seq} (current end sequence number)",
                    self.producer_id
                )));
            }
        }
        Ok(())
    }

    /// Applies one batch (data or control). For control batches pass the parsed marker;
    /// `None` for a control batch means it has no records and is ignored.
    pub fn append(
        &mut self,
        h: &BatchHeader,
        marker: Option<EndTxnMarker>,
    ) -> Result<Option<CompletedTxn>, ProducerStateError> {
        if h.is_control() {
            match marker {
                Some(m) => {
                    self.append_end_txn_marker(m, h.producer_epoch, h.base_offset, m.timestamp)
                }
                None => Ok(None),
            }
        } else {
            self.append_data_batch(
                h.producer_epoch,
                h.base_sequence,
                h.last_sequence(),
                h.max_timestamp,
                h.base_offset,
                h.last_offset(),
                h.is_transactional(),
            )?;
            Ok(None)
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn append_data_batch(
        &mut self,
        epoch: i16,
        first_seq: i32,
        last_seq: i32,
        last_timestamp: i64,
        first_offset: i64,
        last_offset: i64,
        is_transactional: bool,
    ) -> Result<(), ProducerStateError> {
        self.check_producer_epoch(epoch, first_offset)?;
        if self.origin == AppendOrigin::Client {
            self.check_sequence(epoch, first_seq, first_offset)?;
        }
        self.updated.add_batch(
            epoch,
            last_seq,
            last_offset,
            (last_offset - first_offset) as i32,
            last_timestamp,
        );
        match (self.updated.current_txn_first_offset, is_transactional) {
            (Some(_), false) => Err(ProducerStateError::InvalidTxnState(format!(
                "expected transactional write from producer {} at offset {first_offset}",
                self.producer_id
            ))),
            (None, true) => {
                self.updated.current_txn_first_offset = Some(first_offset);
                self.transactions.push(TxnMetadata {
                    producer_id: self.producer_id,
                    first_offset,
                    last_offset: None,
                });
                Ok(())
            }
            _ => Ok(()),
        }
    }

    pub fn append_end_txn_marker(
        &mut self,
        marker: EndTxnMarker,
        epoch: i16,
        offset: i64,
        timestamp: i64,
    ) -> Result<Option<CompletedTxn>, ProducerStateError> {
        self.check_producer_epoch(epoch, offset)?;
        if self.updated.coordinator_epoch > marker.coordinator_epoch {
            let msg = format!(
                "invalid coordinator epoch for producer {} at offset {offset}: {} (zombie), {} (current)",
                self.producer_id, marker.coordinator_epoch, self.updated.coordinator_epoch
            );
            if self.origin == AppendOrigin::Replication {
                tracing::info!("{msg}");
            } else {
                return Err(ProducerStateError::TransactionCoordinatorFenced(msg));
            }
        }
        // A marker without data in this partition changes neither the LSO nor the index.
        let completed = self
            .updated
            .current_txn_first_offset
            .map(|first| CompletedTxn {
                producer_id: self.producer_id,
                first_offset: first,
                last_offset: offset,
                is_aborted: marker.control_type == ControlRecordType::Abort,
            });
        self.updated
            .update_marker(epoch, marker.coordinator_epoch, timestamp);
        Ok(completed)
    }
}

/// Outcome of validating an append's batches against producer state.
#[derive(Debug)]
pub enum AppendAnalysis {
    /// Every batch checked; apply with [`ProducerStateManager::apply_append`] after writing.
    Valid(PendingProducerUpdate),
    /// A client batch is a retry of a retained batch: write nothing and answer with its
    /// original offsets (`first_offset()..=last_offset`) and timestamp.
    Duplicate(BatchMetadata),
}

/// Producer-state changes of one append, not yet applied.
#[derive(Debug, Default)]
pub struct PendingProducerUpdate {
    pub updated: IndexMap<i64, ProducerAppendInfo>,
    pub completed: Vec<CompletedTxn>,
}

/// Configuration that matters to producer state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerStateConfig {
    /// `producer.id.expiration.ms` (86400000).
    pub producer_id_expiration_ms: i64,
    /// `transaction.partition.verification.enable` (Kafka default true). The broker sets it
    /// from its config (`log::manager::producer_state_config`); the produce path and
    /// TxnOffsetCommit then verify with the transaction coordinator and pass the guard. This
    /// struct's default is false for standalone logs (tests, tools), which have no verifier.
    pub transaction_verification_enabled: bool,
    /// `transaction.max.timeout.ms` (900000).
    pub max_transaction_timeout_ms: i64,
}

impl Default for ProducerStateConfig {
    fn default() -> Self {
        Self {
            producer_id_expiration_ms: 86_400_000,
            transaction_verification_enabled: false,
            max_transaction_timeout_ms: 900_000,
        }
    }
}

/// File name of the snapshot covering offsets below `offset`.
pub fn snapshot_file_name(offset: i64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

/// Offset of a `<20 digits>.snapshot` file name (text before the first `.`).
pub fn offset_from_snapshot_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    let num = stem.split('.').next()?;
    num.parse().ok()
}

/// Snapshot files in `dir`, by offset.
pub fn list_snapshot_files(dir: &Path) -> io::Result<BTreeMap<i64, PathBuf>> {
    let mut out = BTreeMap::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for ent in rd {
        let ent = ent?;
        if !ent.file_type()?.is_file() {
            continue;
        }
        let name = ent.file_name();
        if let Some(off) = name.to_str().and_then(offset_from_snapshot_name) {
            out.insert(off, ent.path());
        }
    }
    Ok(out)
}

/// Encodes a snapshot of `entries` (format in the module docs).
pub fn encode_snapshot<'a>(
    entries: impl ExactSizeIterator<Item = &'a ProducerStateEntry>,
) -> Vec<u8> {
    let n = entries.len();
    let mut buf = Vec::with_capacity(SNAPSHOT_HEADER_LEN + n * SNAPSHOT_ENTRY_LEN);
    buf.extend_from_slice(&PRODUCER_SNAPSHOT_VERSION.to_be_bytes());
    buf.extend_from_slice(&[0u8; 4]);
    buf.extend_from_slice(&(n as i32).to_be_bytes());
    for e in entries {
        buf.extend_from_slice(&e.producer_id.to_be_bytes());
        buf.extend_from_slice(&e.producer_epoch.to_be_bytes());
        buf.extend_from_slice(&e.last_seq().to_be_bytes());
        buf.extend_from_slice(&e.last_data_offset().to_be_bytes());
        buf.extend_from_slice(&e.last_offset_delta().to_be_bytes());
        buf.extend_from_slice(&e.last_timestamp.to_be_bytes());
        buf.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        buf.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
    }
    let crc = crc32c::crc32c(&buf[6..]);
    buf[2..6].copy_from_slice(&crc.to_be_bytes());
    buf
}

/// Why a snapshot could not be used; corrupt snapshots are deleted by the loader.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("corrupt producer snapshot: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Decodes a snapshot file's bytes.
pub fn decode_snapshot(buf: &[u8]) -> Result<Vec<ProducerStateEntry>, SnapshotError> {
    let corrupt = |m: String| SnapshotError::Corrupt(m);
    if buf.len() < SNAPSHOT_HEADER_LEN {
        return Err(corrupt(format!("snapshot too short ({} bytes)", buf.len())));
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    if version != PRODUCER_SNAPSHOT_VERSION {
        return Err(corrupt(format!(
            "snapshot contained an unknown file version {version}"
        )));
    }
    let stored = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]);
    let n = i32::from_be_bytes([buf[6], buf[7], buf[8], buf[9]]);
    let n = usize::try_from(n).map_err(|_| corrupt(format!("negative entry count {n}")))?;
    let need = n
        .checked_mul(SNAPSHOT_ENTRY_LEN)
        .and_then(|x| x.checked_add(SNAPSHOT_HEADER_LEN))
        .ok_or_else(|| corrupt("entry count overflow".into()))?;
    if buf.len() < need {
        return Err(corrupt(format!(
            "snapshot holds {} bytes, {n} entries need {need}",
            buf.len()
        )));
    }
    let computed = crc32c::crc32c(&buf[6..]);
    if stored != computed {
        return Err(corrupt(format!(
            "snapshot is corrupt (CRC is no longer valid). Stored crc: {stored}. Computed crc: {computed}"
        )));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let e = &buf[SNAPSHOT_HEADER_LEN + i * SNAPSHOT_ENTRY_LEN..][..SNAPSHOT_ENTRY_LEN];
        let i64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&e[o..o + 8]);
            i64::from_be_bytes(a)
        };
        let i32_at = |o: usize| i32::from_be_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]);
        let producer_id = i64_at(0);
        let epoch = i16::from_be_bytes([e[8], e[9]]);
        let seq = i32_at(10);
        let offset = i64_at(14);
        let offset_delta = i32_at(22);
        let timestamp = i64_at(26);
        let coordinator_epoch = i32_at(34);
        let txn_first = i64_at(38);
        let batch = (offset >= 0).then_some(BatchMetadata {
            last_seq: seq,
            last_offset: offset,
            offset_delta,
            timestamp,
        });
        out.push(ProducerStateEntry::new(
            producer_id,
            epoch,
            coordinator_epoch,
            timestamp,
            (txn_first >= 0).then_some(txn_first),
            batch,
        ));
    }
    Ok(out)
}

/// Reads and decodes one snapshot file.
pub fn read_snapshot(path: &Path) -> Result<Vec<ProducerStateEntry>, SnapshotError> {
    decode_snapshot(&fs::read(path)?)
}

/// Kafka's `UnifiedLog.minSnapshotsOffsetToRetain`: snapshots below the returned offset
/// may be deleted after the recovery point was checkpointed. `segment_bases` ascending,
/// the last one being the active segment.
pub fn min_snapshots_offset_to_retain(segment_bases: &[i64], recovery_point: i64) -> i64 {
    let Some(&active) = segment_bases.last() else {
        return recovery_point;
    };
    let lower = |off: i64| segment_bases.iter().rev().find(|&&b| b < off).copied();
    let two_segments_min = lower(active).unwrap_or(active);
    let recovery = segment_bases
        .iter()
        .rev()
        .find(|&&b| b <= recovery_point)
        .copied()
        .unwrap_or(recovery_point);
    recovery.min(two_segments_min)
}

/// Kafka's `ProducerStateManager` for one partition. Not internally locked: the log owns
/// it under its append lock, as Kafka does.
#[derive(Debug)]
pub struct ProducerStateManager {
    dir: PathBuf,
    config: ProducerStateConfig,
    producers: HashMap<i64, ProducerStateEntry>,
    /// Open transactions by first offset.
    ongoing_txns: BTreeMap<i64, TxnMetadata>,
    /// Completed transactions whose marker is not yet below the high watermark.
    unreplicated_txns: BTreeMap<i64, TxnMetadata>,
    verification_states: HashMap<i64, VerificationStateEntry>,
    snapshots: BTreeMap<i64, PathBuf>,
    last_map_offset: i64,
    last_snap_offset: i64,
    oldest_txn_last_timestamp: i64,
}

impl ProducerStateManager {
    /// Creates the manager for the partition directory `dir`, indexing (not reading) its
    /// snapshot files.
    pub fn new(dir: impl Into<PathBuf>, config: ProducerStateConfig) -> io::Result<Self> {
        let dir = dir.into();
        let snapshots = list_snapshot_files(&dir)?;
        Ok(Self {
            dir,
            config,
            producers: HashMap::new(),
            ongoing_txns: BTreeMap::new(),
            unreplicated_txns: BTreeMap::new(),
            verification_states: HashMap::new(),
            snapshots,
            last_map_offset: 0,
            last_snap_offset: 0,
            oldest_txn_last_timestamp: -1,
        })
    }

    pub fn config(&self) -> &ProducerStateConfig {
        &self.config
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Points at a renamed partition directory (snapshot paths follow).
    pub fn update_parent_dir(&mut self, dir: &Path) {
        self.dir = dir.to_path_buf();
        for p in self.snapshots.values_mut() {
            if let Some(name) = p.file_name() {
                *p = dir.join(name);
            }
        }
    }

    /// An open transaction whose producer has been silent longer than the max txn timeout
    /// plus a buffer (Kafka's hanging-transaction detection).
    pub fn has_late_transaction(&self, now_ms: i64) -> bool {
        let ts = self.oldest_txn_last_timestamp;
        ts > 0 && now_ms - ts > self.config.max_transaction_timeout_ms + LATE_TRANSACTION_BUFFER_MS
    }

    pub fn producer_id_count(&self) -> usize {
        self.producers.len()
    }

    pub fn active_producers(&self) -> &HashMap<i64, ProducerStateEntry> {
        &self.producers
    }

    pub fn last_entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty() && self.unreplicated_txns.is_empty()
    }

    /// Offset up to which (exclusive) the state reflects the log.
    pub fn map_end_offset(&self) -> i64 {
        self.last_map_offset
    }

    pub fn update_map_end_offset(&mut self, offset: i64) {
        self.last_map_offset = offset;
    }

    // ---- verification (KIP-890) ----

    /// Starts (or continues) verifying a transactional producer; returns its entry whose
    /// guard the produce request carries back into the append.
    pub fn maybe_create_verification_state_entry(
        &mut self,
        producer_id: i64,
        sequence: i32,
        epoch: i16,
        now_ms: i64,
    ) -> VerificationStateEntry {
        let e = self
            .verification_states
            .entry(producer_id)
            .or_insert_with(|| VerificationStateEntry {
                timestamp: now_ms,
                guard: VerificationGuard::fresh(),
                lowest_sequence: sequence,
                epoch,
            });
        e.maybe_update_lowest_sequence_and_epoch(sequence, epoch);
        *e
    }

    pub fn verification_state_entry(&self, producer_id: i64) -> Option<VerificationStateEntry> {
        self.verification_states.get(&producer_id).copied()
    }

    pub fn clear_verification_state_entry(&mut self, producer_id: i64) {
        self.verification_states.remove(&producer_id);
    }

    /// The guard of the producer's pending verification, or `SENTINEL`.
    pub fn verification_guard(&self, producer_id: i64) -> VerificationGuard {
        self.verification_states
            .get(&producer_id)
            .map_or(VerificationGuard::SENTINEL, |e| e.guard)
    }

    /// Whether the producer has an open transaction in exactly this epoch.
    pub fn has_ongoing_transaction(&self, producer_id: i64, epoch: i16) -> bool {
        self.producers
            .get(&producer_id)
            .is_some_and(|e| e.current_txn_first_offset.is_some() && e.producer_epoch == epoch)
    }

    // ---- append path ----

    pub fn prepare_update(&self, producer_id: i64, origin: AppendOrigin) -> ProducerAppendInfo {
        let current = self
            .producers
            .get(&producer_id)
            .cloned()
            .unwrap_or_else(|| ProducerStateEntry::empty(producer_id));
        ProducerAppendInfo::new(
            producer_id,
            current,
            origin,
            self.verification_state_entry(producer_id),
        )
    }

    /// Kafka's `analyzeAndValidateProducerState` + `updateProducers`: checks every batch
    /// (with offsets already assigned) of one append. `marker_of(i)` gives the parsed end
    /// marker of control batch `i` (see [`EndTxnMarker::from_control_batch`]).
    /// Clears the verification entry of producers with transactional batches, like Kafka.
    pub fn analyze_append(
        &mut self,
        batches: &[BatchHeader],
        mut marker_of: impl FnMut(usize) -> Option<EndTxnMarker>,
        origin: AppendOrigin,
        request_guard: VerificationGuard,
    ) -> Result<AppendAnalysis, ProducerStateError> {
        let mut pending = PendingProducerUpdate::default();
        for (i, h) in batches.iter().enumerate() {
            if !h.has_producer_id() {
                continue;
            }
            if origin == AppendOrigin::Client {
                if let Some(dup) = self
                    .producers
                    .get(&h.producer_id)
                    .and_then(|e| e.find_duplicate_batch(h))
                {
                    return Ok(AppendAnalysis::Duplicate(dup));
                }
            }
            if matches!(origin, AppendOrigin::Client | AppendOrigin::Coordinator)
                && h.is_transactional()
                && !self.has_ongoing_transaction(h.producer_id, h.producer_epoch)
                && self.config.transaction_verification_enabled
                && !h.is_control()
                && !self.verification_guard(h.producer_id).verify(request_guard)
            {
                return Err(ProducerStateError::InvalidTxnState(
                    "record was not part of an ongoing transaction".into(),
                ));
            }
            let marker = if h.is_control() { marker_of(i) } else { None };
            let info = match pending.updated.entry(h.producer_id) {
                indexmap::map::Entry::Occupied(o) => o.into_mut(),
                indexmap::map::Entry::Vacant(v) => {
                    v.insert(self.prepare_update(h.producer_id, origin))
                }
            };
            if let Some(c) = info.append(h, marker)? {
                pending.completed.push(c);
            }
            if h.is_transactional() {
                self.clear_verification_state_entry(h.producer_id);
            }
        }
        Ok(AppendAnalysis::Valid(pending))
    }

    /// Applies a validated append after its bytes are in the segment: updates producers,
    /// appends aborted transactions to `txn_index` (the segment holding the markers), marks
    /// them complete and moves the map end offset to `last_offset + 1`.
    pub fn apply_append(
        &mut self,
        pending: PendingProducerUpdate,
        last_offset: i64,
        txn_index: Option<&TxnIndex>,
    ) -> io::Result<()> {
        for (_, info) in pending.updated {
            self.update(info);
        }
        for c in pending.completed {
            self.complete_with_index(c, txn_index)?;
        }
        self.update_map_end_offset(last_offset + 1);
        Ok(())
    }

    fn complete_with_index(
        &mut self,
        c: CompletedTxn,
        txn_index: Option<&TxnIndex>,
    ) -> io::Result<()> {
        let lso = self.last_stable_offset(&c);
        if c.is_aborted {
            if let Some(idx) = txn_index {
                idx.append(&AbortedTxn {
                    producer_id: c.producer_id,
                    first_offset: c.first_offset,
                    last_offset: c.last_offset,
                    last_stable_offset: lso,
                })?;
            }
        }
        self.complete_txn(&c);
        Ok(())
    }

    /// Segment recovery of one batch (Kafka's `LogSegment.updateProducerState`): replays
    /// it as a replication append, writing aborts into the recovering segment's index.
    pub fn recover_batch(
        &mut self,
        h: &BatchHeader,
        marker: Option<EndTxnMarker>,
        txn_index: Option<&TxnIndex>,
    ) -> io::Result<()> {
        if h.has_producer_id() {
            let mut info = self.prepare_update(h.producer_id, AppendOrigin::Replication);
            // Replication origin never fails validation.
            let completed = info.append(h, marker).unwrap_or(None);
            self.update(info);
            if let Some(c) = completed {
                self.complete_with_index(c, txn_index)?;
            }
        }
        self.update_map_end_offset(h.last_offset() + 1);
        Ok(())
    }

    /// Kafka's `loadProducersFromRecords`: rebuilds state from already indexed batches
    /// (no index writes). Does not move the map end offset.
    pub fn load_from_batches(
        &mut self,
        batches: impl IntoIterator<Item = (BatchHeader, Option<EndTxnMarker>)>,
    ) {
        let mut loaded: IndexMap<i64, ProducerAppendInfo> = IndexMap::new();
        let mut completed = Vec::new();
        for (h, marker) in batches {
            if !h.has_producer_id() {
                continue;
            }
            let info = loaded
                .entry(h.producer_id)
                .or_insert_with(|| self.prepare_update(h.producer_id, AppendOrigin::Replication));
            if let Ok(Some(c)) = info.append(&h, marker) {
                completed.push(c);
            }
        }
        for (_, info) in loaded {
            self.update(info);
        }
        for c in completed {
            self.complete_txn(&c);
        }
    }

    /// Installs an append's resulting producer entry and its started transactions.
    pub fn update(&mut self, info: ProducerAppendInfo) {
        let pid = info.producer_id;
        if pid == NO_PRODUCER_ID {
            return;
        }
        for t in &info.transactions {
            self.ongoing_txns.insert(t.first_offset, *t);
        }
        match self.producers.get_mut(&pid) {
            Some(cur) => cur.update_from(info.updated),
            None => {
                self.producers.insert(pid, info.updated);
            }
        }
        self.update_oldest_txn_timestamp();
    }

    fn update_oldest_txn_timestamp(&mut self) {
        self.oldest_txn_last_timestamp = match self.ongoing_txns.values().next() {
            None => -1,
            Some(t) => self
                .producers
                .get(&t.producer_id)
                .map_or(-1, |e| e.last_timestamp),
        };
    }

    /// LSO to record for `c` in the index: first offset of the oldest other open
    /// transaction, else the marker offset + 1. Call before [`Self::complete_txn`].
    pub fn last_stable_offset(&self, c: &CompletedTxn) -> i64 {
        self.ongoing_txns
            .values()
            .find(|t| t.producer_id != c.producer_id)
            .map_or(c.last_offset + 1, |t| t.first_offset)
    }

    /// Moves a transaction from open to completed-but-unreplicated. A completion for an
    /// unknown transaction is ignored (Kafka raises an internal error there).
    pub fn complete_txn(&mut self, c: &CompletedTxn) {
        match self.ongoing_txns.remove(&c.first_offset) {
            Some(mut t) => {
                t.last_offset = Some(c.last_offset);
                self.unreplicated_txns.insert(c.first_offset, t);
            }
            None => {
                tracing::error!(
                    "attempted to complete transaction {c:?} in {} which was not started",
                    self.dir.display()
                );
            }
        }
        self.update_oldest_txn_timestamp();
    }

    /// First offset that is undecided, or decided with its marker above the HW.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let unrepl = self
            .unreplicated_txns
            .values()
            .next()
            .map(|t| t.first_offset);
        let undecided = self.first_undecided_offset();
        match (unrepl, undecided) {
            (None, u) => u,
            (r, None) => r,
            (Some(r), Some(u)) => Some(r.min(u)),
        }
    }

    /// First offset of the oldest open transaction.
    pub fn first_undecided_offset(&self) -> Option<i64> {
        self.ongoing_txns.values().next().map(|t| t.first_offset)
    }

    /// Forgets completed transactions whose marker is below the new high watermark.
    pub fn on_high_watermark_updated(&mut self, high_watermark: i64) {
        self.remove_unreplicated_transactions(high_watermark);
    }

    fn remove_unreplicated_transactions(&mut self, offset: i64) {
        self.unreplicated_txns.retain(|_, t| match t.last_offset {
            Some(l) => l >= offset,
            None => true,
        });
    }

    /// Log start moved up (retention / DeleteRecords).
    pub fn on_log_start_offset_incremented(&mut self, log_start_offset: i64) {
        self.remove_unreplicated_transactions(log_start_offset);
        if self.last_map_offset < log_start_offset {
            self.last_map_offset = log_start_offset;
        }
        self.last_snap_offset = self.latest_snapshot_offset().unwrap_or(log_start_offset);
    }

    fn is_producer_expired(&self, now_ms: i64, e: &ProducerStateEntry) -> bool {
        e.current_txn_first_offset.is_none()
            // The timestamp comes from a client batch: wrap as Kafka does rather than overflow.
            && now_ms.wrapping_sub(e.last_timestamp) >= self.config.producer_id_expiration_ms
    }

    /// Drops producers idle for `producer.id.expiration.ms` without an open transaction,
    /// and verification entries that old.
    pub fn remove_expired_producers(&mut self, now_ms: i64) {
        let expired: Vec<i64> = self
            .producers
            .iter()
            .filter(|(_, e)| self.is_producer_expired(now_ms, e))
            .map(|(k, _)| *k)
            .collect();
        for k in expired {
            self.producers.remove(&k);
        }
        let exp = self.config.producer_id_expiration_ms;
        self.verification_states
            .retain(|_, v| now_ms - v.timestamp < exp);
    }

    // ---- snapshots ----

    pub fn latest_snapshot_offset(&self) -> Option<i64> {
        self.snapshots.keys().next_back().copied()
    }
    pub fn oldest_snapshot_offset(&self) -> Option<i64> {
        self.snapshots.keys().next().copied()
    }
    pub fn snapshot_file_for_offset(&self, offset: i64) -> Option<&Path> {
        self.snapshots.get(&offset).map(PathBuf::as_path)
    }
    pub fn snapshot_offsets(&self) -> Vec<i64> {
        self.snapshots.keys().copied().collect()
    }

    /// Writes `<map end offset>.snapshot` unless a snapshot at that offset was already
    /// taken. With `sync` the file is fsynced before returning; otherwise the caller
    /// flushes the returned path later (Kafka does that off the roll path).
    pub fn take_snapshot(&mut self, sync: bool) -> io::Result<Option<PathBuf>> {
        if self.last_map_offset <= self.last_snap_offset {
            return Ok(None);
        }
        let path = self.dir.join(snapshot_file_name(self.last_map_offset));
        let bytes = encode_snapshot(self.producers.values());
        {
            let mut f = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&path)?;
            f.write_all(&bytes)?;
            if sync {
                f.sync_all()?;
            }
        }
        tracing::debug!(
            "wrote producer snapshot at offset {} with {} producer ids",
            self.last_map_offset,
            self.producers.len()
        );
        self.snapshots.insert(self.last_map_offset, path.clone());
        self.last_snap_offset = self.last_map_offset;
        Ok(Some(path))
    }

    fn remove_and_delete_snapshot(&mut self, offset: i64) -> io::Result<()> {
        if let Some(p) = self.snapshots.remove(&offset) {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Forgets the snapshot at `offset` and renames it to `.snapshot.deleted` (deleted
    /// later with its segment). Returns the new path, or `None` if there was none.
    pub fn remove_and_mark_snapshot_for_deletion(
        &mut self,
        offset: i64,
    ) -> io::Result<Option<PathBuf>> {
        let Some(p) = self.snapshots.remove(&offset) else {
            return Ok(None);
        };
        let mut name = p.as_os_str().to_owned();
        name.push(DELETED_SUFFIX);
        let target = PathBuf::from(name);
        match fs::rename(&p, &target) {
            Ok(()) => Ok(Some(target)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes snapshots with offset < `offset`.
    pub fn delete_snapshots_before(&mut self, offset: i64) -> io::Result<()> {
        let doomed: Vec<i64> = self.snapshots.range(..offset).map(|(k, _)| *k).collect();
        for k in doomed {
            self.remove_and_delete_snapshot(k)?;
        }
        Ok(())
    }

    /// Log loading: keeps snapshots at segment bases and the newest stray one if it is
    /// at or above the largest segment base; deletes the others.
    pub fn remove_stray_snapshots(&mut self, segment_base_offsets: &[i64]) -> io::Result<()> {
        let max_base = segment_base_offsets.iter().max().copied();
        let bases: std::collections::HashSet<i64> = segment_base_offsets.iter().copied().collect();
        let mut snaps = list_snapshot_files(&self.dir)?;
        let mut latest_stray: Option<i64> = None;
        let keys: Vec<i64> = snaps.keys().copied().collect();
        for k in keys {
            if bases.contains(&k) {
                continue;
            }
            if let Some(prev) = latest_stray {
                if let Some(p) = snaps.remove(&prev) {
                    let _ = fs::remove_file(p);
                }
            }
            latest_stray = Some(k);
        }
        if let (Some(stray), Some(max)) = (latest_stray, max_base) {
            if stray < max {
                if let Some(p) = snaps.remove(&stray) {
                    let _ = fs::remove_file(p);
                }
            }
        }
        self.snapshots = snaps;
        Ok(())
    }

    fn clear_state(&mut self) {
        self.producers.clear();
        self.ongoing_txns.clear();
        self.unreplicated_txns.clear();
        self.update_oldest_txn_timestamp();
    }

    fn load_from_snapshot(&mut self, log_start_offset: i64, now_ms: i64) -> io::Result<()> {
        loop {
            let Some((&off, path)) = self.snapshots.iter().next_back() else {
                self.last_snap_offset = log_start_offset;
                self.last_map_offset = log_start_offset;
                return Ok(());
            };
            match read_snapshot(path) {
                Ok(entries) => {
                    for e in entries {
                        if !self.is_producer_expired(now_ms, &e) {
                            self.load_producer_entry(e);
                        }
                    }
                    self.last_snap_offset = off;
                    self.last_map_offset = off;
                    self.update_oldest_txn_timestamp();
                    return Ok(());
                }
                Err(SnapshotError::Corrupt(m)) => {
                    tracing::warn!("failed to load producer snapshot {}: {m}", path.display());
                    self.remove_and_delete_snapshot(off)?;
                }
                Err(SnapshotError::Io(e)) => return Err(e),
            }
        }
    }

    /// Installs an entry read from a snapshot (and its open transaction).
    pub fn load_producer_entry(&mut self, e: ProducerStateEntry) {
        if let Some(first) = e.current_txn_first_offset {
            self.ongoing_txns.insert(
                first,
                TxnMetadata {
                    producer_id: e.producer_id,
                    first_offset: first,
                    last_offset: None,
                },
            );
        }
        self.producers.insert(e.producer_id, e);
    }

    /// Truncation / load: deletes snapshots above `log_end_offset` or at/below
    /// `log_start_offset`; if the state is not exactly at `log_end_offset`, reloads it
    /// from the newest remaining snapshot (the caller then replays the log from
    /// [`Self::map_end_offset`]). `log_end_offset` must be ≤ the high watermark.
    pub fn truncate_and_reload(
        &mut self,
        log_start_offset: i64,
        log_end_offset: i64,
        now_ms: i64,
    ) -> io::Result<()> {
        let doomed: Vec<i64> = self
            .snapshots
            .keys()
            .filter(|&&o| o > log_end_offset || o <= log_start_offset)
            .copied()
            .collect();
        for o in doomed {
            self.remove_and_delete_snapshot(o)?;
        }
        if log_end_offset != self.last_map_offset {
            self.clear_state();
            self.load_from_snapshot(log_start_offset, now_ms)
        } else {
            self.on_log_start_offset_incremented(log_start_offset);
            Ok(())
        }
    }

    /// Drops all state and snapshots; the map starts at `offset`.
    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> io::Result<()> {
        self.clear_state();
        let all: Vec<i64> = self.snapshots.keys().copied().collect();
        for o in all {
            self.remove_and_delete_snapshot(o)?;
        }
        self.last_snap_offset = 0;
        self.last_map_offset = offset;
        Ok(())
    }

    /// Drops all state and re-indexes snapshot files from disk.
    pub fn truncate_fully_and_reload_snapshots(&mut self) -> io::Result<()> {
        self.truncate_fully_and_start_at(0)?;
        self.snapshots = list_snapshot_files(&self.dir)?;
        Ok(())
    }
}

/// Splits a buffer of whole record batches into `(header, marker, bytes)` of its magic-2
/// batches (legacy batches carry no producer state and are skipped). A torn trailing
/// batch ends the walk.
pub fn parse_batches(
    records: &[u8],
) -> Result<Vec<(BatchHeader, Option<EndTxnMarker>)>, ProducerStateError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(rest) = records.get(pos..) {
        if rest.len() < HEADER_LEN {
            break;
        }
        let Some(h) = BatchHeader::parse(rest) else {
            break;
        };
        let total = h.total_size();
        if h.batch_length < 0 || rest.len() < total {
            break;
        }
        if h.magic >= 2 {
            let marker = EndTxnMarker::from_control_batch(&rest[..total], &h)?;
            out.push((h, marker));
        }
        pos += total;
    }
    Ok(out)
}

impl ProducerStateManager {
    /// [`Self::analyze_append`] over raw batch bytes (offsets already assigned).
    pub fn analyze_records(
        &mut self,
        records: &[u8],
        origin: AppendOrigin,
        request_guard: VerificationGuard,
    ) -> Result<AppendAnalysis, ProducerStateError> {
        let parsed = parse_batches(records)?;
        let headers: Vec<BatchHeader> = parsed.iter().map(|(h, _)| *h).collect();
        self.analyze_append(
            &headers,
            |i| parsed.get(i).and_then(|(_, m)| *m),
            origin,
            request_guard,
        )
    }

    /// [`Self::recover_batch`] for one batch's bytes (segment recovery callback).
    pub fn recover_batch_bytes(
        &mut self,
        batch: &[u8],
        txn_index: Option<&TxnIndex>,
    ) -> io::Result<()> {
        let Some(h) = BatchHeader::parse(batch) else {
            return Ok(());
        };
        if h.magic < 2 {
            return Ok(());
        }
        let marker = EndTxnMarker::from_control_batch(batch, &h).unwrap_or(None);
        self.recover_batch(&h, marker, txn_index)
    }

    /// Kafka's `UnifiedLog.rebuildProducerState`: reloads from the newest usable snapshot
    /// ≤ `last_offset` and replays the log from there, taking snapshots at the bases of the
    /// last two segments and at `last_offset`. `segment_bases` ascending; `scan(base,
    /// start, f)` must call `f` with every batch of segment `base` whose last offset is ≥
    /// `start` and whose base offset is < `last_offset`, in order.
    pub fn rebuild(
        &mut self,
        segment_bases: &[i64],
        log_start_offset: i64,
        last_offset: i64,
        reload_from_clean_shutdown: bool,
        now_ms: i64,
        mut scan: impl FnMut(i64, i64, &mut dyn FnMut(&[u8])) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut to_snapshot: Vec<i64> = Vec::new();
        if let Some(&last_base) = segment_bases.last() {
            if segment_bases.len() >= 2 {
                to_snapshot.push(segment_bases[segment_bases.len() - 2]);
            }
            to_snapshot.push(last_base);
        }
        to_snapshot.push(last_offset);
        if self.latest_snapshot_offset().is_none() && reload_from_clean_shutdown {
            // No snapshots after a clean shutdown: the producers are non-idempotent ones;
            // empty snapshots avoid a full scan on the next truncation.
            for o in to_snapshot {
                self.update_map_end_offset(o);
                self.take_snapshot(true)?;
            }
            return Ok(());
        }
        let empty_before = self.is_empty() && self.map_end_offset() >= last_offset;
        self.truncate_and_reload(log_start_offset, last_offset, now_ms)?;
        if last_offset > self.map_end_offset() && !empty_before {
            for (i, &base) in segment_bases.iter().enumerate() {
                let next = segment_bases.get(i + 1).copied().unwrap_or(i64::MAX);
                if next <= self.map_end_offset() || base >= last_offset {
                    continue;
                }
                let start = base.max(self.map_end_offset()).max(log_start_offset);
                self.update_map_end_offset(start);
                if to_snapshot.contains(&base) {
                    self.take_snapshot(true)?;
                }
                let mut batches: Vec<(BatchHeader, Option<EndTxnMarker>)> = Vec::new();
                scan(base, start, &mut |b: &[u8]| {
                    if let Some(h) = BatchHeader::parse(b) {
                        if h.magic >= 2 && h.last_offset() >= start && h.base_offset < last_offset {
                            let m = EndTxnMarker::from_control_batch(b, &h).unwrap_or(None);
                            batches.push((h, m));
                        }
                    }
                })?;
                self.load_from_batches(batches);
            }
        }
        self.update_map_end_offset(last_offset);
        self.take_snapshot(true)?;
        Ok(())
    }
}

/// Helpers for tests elsewhere in the crate (and the cleaner): build headers without bytes.
#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    pub fn header(
        pid: i64,
        epoch: i16,
        base_seq: i32,
        base_offset: i64,
        count: i32,
    ) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 1000,
            max_timestamp: 1000 + base_offset,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: base_seq,
            records_count: count,
        }
    }

    pub fn txn_header(
        pid: i64,
        epoch: i16,
        base_seq: i32,
        base_offset: i64,
        count: i32,
    ) -> BatchHeader {
        let mut h = header(pid, epoch, base_seq, base_offset, count);
        h.attributes |= crate::log::batch::attr::TRANSACTIONAL;
        h
    }

    pub fn marker_header(pid: i64, epoch: i16, offset: i64) -> BatchHeader {
        let mut h = header(pid, epoch, -1, offset, 1);
        h.attributes |= crate::log::batch::attr::TRANSACTIONAL | crate::log::batch::attr::CONTROL;
        h
    }

    pub fn marker(commit: bool, coordinator_epoch: i32) -> EndTxnMarker {
        EndTxnMarker {
            control_type: if commit {
                ControlRecordType::Commit
            } else {
                ControlRecordType::Abort
            },
            coordinator_epoch,
            timestamp: 5000,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::test_util::*;
    use super::*;
    use crate::log::batch::increment_sequence;
    use proptest::prelude::*;

    fn mgr() -> (tempfile::TempDir, ProducerStateManager) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ProducerStateConfig {
            transaction_verification_enabled: false,
            ..Default::default()
        };
        let m = ProducerStateManager::new(dir.path(), cfg).unwrap();
        (dir, m)
    }

    /// Appends one batch like the log would; returns the analysis outcome.
    fn append(
        m: &mut ProducerStateManager,
        h: BatchHeader,
        marker: Option<EndTxnMarker>,
        origin: AppendOrigin,
    ) -> Result<Option<BatchMetadata>, ProducerStateError> {
        match m.analyze_append(&[h], |_| marker, origin, VerificationGuard::SENTINEL)? {
            AppendAnalysis::Duplicate(d) => Ok(Some(d)),
            AppendAnalysis::Valid(p) => {
                m.apply_append(p, h.last_offset(), None).unwrap();
                Ok(None)
            }
        }
    }

    fn client(
        m: &mut ProducerStateManager,
        h: BatchHeader,
    ) -> Result<Option<BatchMetadata>, ProducerStateError> {
        append(m, h, None, AppendOrigin::Client)
    }

    #[test]
    fn sequence_rules_and_duplicates() {
        let (_d, mut m) = mgr();
        // Unknown producer: any first sequence accepted (state may have been deleted).
        assert_eq!(client(&mut m, header(1, 0, 7, 0, 3)).unwrap(), None);
        assert_eq!(m.last_entry(1).unwrap().last_seq(), 9);
        // Gap → out of order.
        let e = client(&mut m, header(1, 0, 11, 3, 1)).unwrap_err();
        assert_eq!(e.code(), 45);
        // In order.
        for i in 0..6 {
            client(&mut m, header(1, 0, 10 + i, 3 + i as i64, 1)).unwrap();
        }
        // Last 5 batches are duplicates; the one before is out of order (not retained).
        let dup = client(&mut m, header(1, 0, 11, 100, 1)).unwrap().unwrap();
        assert_eq!((dup.first_offset(), dup.last_offset), (4, 4));
        let dup = client(&mut m, header(1, 0, 15, 100, 1)).unwrap().unwrap();
        assert_eq!(dup.last_offset, 8);
        assert_eq!(
            client(&mut m, header(1, 0, 10, 100, 1)).unwrap_err().code(),
            45
        );
        // A partial overlap is not a duplicate.
        assert_eq!(
            client(&mut m, header(1, 0, 14, 100, 2)).unwrap_err().code(),
            45
        );
        // Stale epoch.
        assert_eq!(
            client(&mut m, header(1, -1, 16, 100, 1))
                .unwrap_err()
                .code(),
            47
        );
        // New epoch must start at 0.
        assert_eq!(
            client(&mut m, header(1, 1, 16, 9, 1)).unwrap_err().code(),
            45
        );
        client(&mut m, header(1, 1, 0, 9, 2)).unwrap();
        assert_eq!(
            m.last_entry(1).unwrap().batch_metadata().count(),
            1,
            "epoch bump clears batches"
        );
        assert_eq!(
            client(&mut m, header(1, 0, 16, 11, 1)).unwrap_err().code(),
            47
        );
        // Replication ignores sequences and stale epochs.
        append(
            &mut m,
            header(1, 0, 500, 11, 1),
            None,
            AppendOrigin::Replication,
        )
        .unwrap();
        assert_eq!(m.map_end_offset(), 12);
    }

    #[test]
    fn sequence_wraps_around() {
        let (_d, mut m) = mgr();
        client(&mut m, header(2, 0, i32::MAX - 1, 0, 2)).unwrap();
        assert_eq!(m.last_entry(2).unwrap().last_seq(), i32::MAX);
        client(&mut m, header(2, 0, 0, 2, 3)).unwrap();
        // A batch spanning the wrap.
        client(&mut m, header(2, 0, 3, 5, 1)).unwrap();
        let (_d2, mut m2) = mgr();
        client(&mut m2, header(3, 0, i32::MAX - 1, 0, 4)).unwrap();
        assert_eq!(m2.last_entry(3).unwrap().last_seq(), 1);
        let dup = client(&mut m2, header(3, 0, i32::MAX - 1, 9, 4))
            .unwrap()
            .unwrap();
        assert_eq!(dup.first_seq(), i32::MAX - 1);
        client(&mut m2, header(3, 0, 2, 4, 1)).unwrap();
    }

    #[test]
    fn duplicate_within_same_request_batches() {
        let (_d, mut m) = mgr();
        // Unknown producer (no epoch yet): Kafka accepts any sequence, even a gap between
        // two batches of the same request.
        let r = m
            .analyze_append(
                &[header(5, 0, 0, 0, 2), header(5, 0, 3, 2, 1)],
                |_| None,
                AppendOrigin::Client,
                VerificationGuard::SENTINEL,
            )
            .unwrap();
        let AppendAnalysis::Valid(p) = r else {
            panic!("expected valid")
        };
        assert_eq!(p.updated.len(), 1);
        m.apply_append(p, 2, None).unwrap();
        assert_eq!(m.last_entry(5).unwrap().last_seq(), 3);
        // Known producer: the second batch is checked against the first of the request.
        let r = m.analyze_append(
            &[header(5, 0, 4, 3, 1), header(5, 0, 6, 4, 1)],
            |_| None,
            AppendOrigin::Client,
            VerificationGuard::SENTINEL,
        );
        assert_eq!(r.unwrap_err().code(), 45);
        let r = m.analyze_append(
            &[header(5, 0, 4, 3, 1), header(5, 0, 5, 4, 1)],
            |_| None,
            AppendOrigin::Client,
            VerificationGuard::SENTINEL,
        );
        assert!(matches!(r, Ok(AppendAnalysis::Valid(_))));
    }

    #[test]
    fn transactions_lso_and_aborted_index() {
        let dir = tempfile::tempdir().unwrap();
        let (_d, mut m) = mgr();
        let idx = TxnIndex::open(0, dir.path().join("00000000000000000000.txnindex")).unwrap();
        let app = |m: &mut ProducerStateManager,
                   h: BatchHeader,
                   mk: Option<EndTxnMarker>,
                   origin|
         -> Result<(), ProducerStateError> {
            match m.analyze_append(&[h], |_| mk, origin, VerificationGuard::SENTINEL)? {
                AppendAnalysis::Valid(p) => {
                    m.apply_append(p, h.last_offset(), Some(&idx)).unwrap();
                    Ok(())
                }
                AppendAnalysis::Duplicate(_) => panic!("dup"),
            }
        };
        app(
            &mut m,
            txn_header(10, 0, 0, 0, 2),
            None,
            AppendOrigin::Client,
        )
        .unwrap();
        app(
            &mut m,
            txn_header(11, 0, 0, 2, 2),
            None,
            AppendOrigin::Client,
        )
        .unwrap();
        assert_eq!(m.first_unstable_offset(), Some(0));
        // Non-transactional write during a transaction.
        let e = app(&mut m, header(10, 0, 2, 4, 1), None, AppendOrigin::Client).unwrap_err();
        assert_eq!(e.code(), 48);
        // Abort pid 10 at offset 4: LSO recorded = first offset of pid 11's txn.
        app(
            &mut m,
            marker_header(10, 0, 4),
            Some(marker(false, 3)),
            AppendOrigin::Coordinator,
        )
        .unwrap();
        assert_eq!(
            idx.all_aborted_txns().unwrap(),
            vec![AbortedTxn {
                producer_id: 10,
                first_offset: 0,
                last_offset: 4,
                last_stable_offset: 2
            }]
        );
        // Completed but above HW → still unstable.
        assert_eq!(m.first_unstable_offset(), Some(0));
        m.on_high_watermark_updated(5);
        assert_eq!(m.first_unstable_offset(), Some(2));
        // Zombie coordinator.
        let e = app(
            &mut m,
            marker_header(11, 0, 5),
            Some(marker(true, 2)),
            AppendOrigin::Coordinator,
        );
        assert!(e.is_ok(), "pid 11 never saw coordinator epoch 3");
        assert_eq!(m.first_undecided_offset(), None);
        let e = app(
            &mut m,
            marker_header(10, 0, 6),
            Some(marker(true, 1)),
            AppendOrigin::Coordinator,
        )
        .unwrap_err();
        assert_eq!(e.code(), 52);
        // Commit is not indexed.
        assert_eq!(idx.all_aborted_txns().unwrap().len(), 1);
        // Marker with a stale epoch.
        let e = app(
            &mut m,
            marker_header(10, -1, 6),
            Some(marker(true, 5)),
            AppendOrigin::Coordinator,
        )
        .unwrap_err();
        assert_eq!(e.code(), 47);
        // Empty control batch is ignored.
        app(
            &mut m,
            marker_header(12, 0, 6),
            None,
            AppendOrigin::Replication,
        )
        .unwrap();
    }

    #[test]
    fn verification_guard_required_for_first_txn_batch() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ProducerStateConfig {
            transaction_verification_enabled: true,
            ..Default::default()
        };
        let mut m = ProducerStateManager::new(dir.path(), cfg).unwrap();
        let h = txn_header(20, 0, 0, 0, 1);
        let r = m.analyze_append(
            &[h],
            |_| None,
            AppendOrigin::Client,
            VerificationGuard::SENTINEL,
        );
        assert_eq!(r.unwrap_err().code(), 48);
        let v = m.maybe_create_verification_state_entry(20, 0, 0, 1);
        let r = m
            .analyze_append(&[h], |_| None, AppendOrigin::Client, v.guard)
            .unwrap();
        let AppendAnalysis::Valid(p) = r else {
            panic!()
        };
        m.apply_append(p, 0, None).unwrap();
        assert!(
            m.verification_state_entry(20).is_none(),
            "cleared by the transactional write"
        );
        // Ongoing txn → no guard needed.
        let r = m.analyze_append(
            &[txn_header(20, 0, 1, 1, 1)],
            |_| None,
            AppendOrigin::Client,
            VerificationGuard::SENTINEL,
        );
        assert!(r.is_ok());
        // Sequence above the verified lowest sequence is out of order.
        let v = m.maybe_create_verification_state_entry(21, 3, 0, 1);
        let r = m.analyze_append(
            &[txn_header(21, 0, 4, 5, 1)],
            |_| None,
            AppendOrigin::Client,
            v.guard,
        );
        assert_eq!(r.unwrap_err().code(), 45);
        m.remove_expired_producers(1 + 86_400_000);
        assert!(m.verification_state_entry(21).is_none());
    }

    #[test]
    fn snapshot_round_trip_and_reload() {
        let (d, mut m) = mgr();
        client(&mut m, header(1, 3, 0, 0, 5)).unwrap();
        append(
            &mut m,
            txn_header(2, 1, 0, 5, 2),
            None,
            AppendOrigin::Replication,
        )
        .unwrap();
        assert_eq!(m.map_end_offset(), 7);
        let p = m.take_snapshot(true).unwrap().unwrap();
        assert_eq!(p.file_name().unwrap(), "00000000000000000007.snapshot");
        assert!(
            m.take_snapshot(true).unwrap().is_none(),
            "no new offset → no snapshot"
        );
        let bytes = fs::read(&p).unwrap();
        assert_eq!(bytes.len(), 10 + 2 * 46);
        assert_eq!(&bytes[0..2], &[0, 1]);

        let mut m2 = ProducerStateManager::new(d.path(), m.config).unwrap();
        m2.truncate_and_reload(0, 7, 2000).unwrap();
        assert_eq!(m2.map_end_offset(), 7);
        let e1 = m2.last_entry(1).unwrap();
        assert_eq!(
            (
                e1.producer_epoch,
                e1.last_seq(),
                e1.last_data_offset(),
                e1.first_seq()
            ),
            (3, 4, 4, 0)
        );
        assert_eq!(m2.last_entry(2).unwrap().current_txn_first_offset, Some(5));
        assert_eq!(m2.first_unstable_offset(), Some(5));
        // After reload, the last batch is still detected as a duplicate.
        assert!(client(&mut m2, header(1, 3, 0, 50, 5)).unwrap().is_some());
        client(&mut m2, header(1, 3, 5, 7, 1)).unwrap();
    }

    #[test]
    fn corrupt_snapshot_falls_back_to_older() {
        let (d, mut m) = mgr();
        client(&mut m, header(1, 0, 0, 0, 1)).unwrap();
        m.take_snapshot(true).unwrap();
        client(&mut m, header(1, 0, 1, 1, 1)).unwrap();
        let p2 = m.take_snapshot(true).unwrap().unwrap();
        let mut bytes = fs::read(&p2).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&p2, &bytes).unwrap();
        assert!(matches!(read_snapshot(&p2), Err(SnapshotError::Corrupt(_))));

        let mut m2 = ProducerStateManager::new(d.path(), m.config).unwrap();
        m2.truncate_and_reload(0, 2, 0).unwrap();
        assert!(!p2.exists(), "corrupt snapshot deleted");
        assert_eq!(m2.map_end_offset(), 1);
        assert_eq!(m2.last_entry(1).unwrap().last_seq(), 0);
        // Truncated / wrong version snapshots are corrupt too.
        assert!(matches!(
            decode_snapshot(&bytes[..20]),
            Err(SnapshotError::Corrupt(_))
        ));
        let mut v2 = encode_snapshot(std::iter::empty());
        v2[1] = 2;
        assert!(matches!(
            decode_snapshot(&v2),
            Err(SnapshotError::Corrupt(_))
        ));
    }

    #[test]
    fn snapshot_retention_and_strays() {
        let (d, mut m) = mgr();
        for off in [10i64, 20, 25, 30, 40] {
            m.update_map_end_offset(off);
            m.take_snapshot(false).unwrap();
        }
        // Segments at 0, 10, 30: keep 10, 30 and the newest stray (40 ≥ 30).
        m.remove_stray_snapshots(&[0, 10, 30]).unwrap();
        assert_eq!(m.snapshot_offsets(), vec![10, 30, 40]);
        assert_eq!(list_snapshot_files(d.path()).unwrap().len(), 3);
        // Newest stray below the last segment base is deleted too.
        m.remove_stray_snapshots(&[0, 10, 30, 50]).unwrap();
        assert_eq!(m.snapshot_offsets(), vec![10, 30]);
        let marked = m
            .remove_and_mark_snapshot_for_deletion(10)
            .unwrap()
            .unwrap();
        assert!(marked.to_string_lossy().ends_with(".snapshot.deleted"));
        assert_eq!(
            list_snapshot_files(d.path()).unwrap().len(),
            1,
            ".deleted is not a snapshot"
        );
        m.delete_snapshots_before(31).unwrap();
        assert!(m.snapshot_offsets().is_empty());
        assert_eq!(min_snapshots_offset_to_retain(&[0, 10, 30, 50], 35), 30);
        assert_eq!(min_snapshots_offset_to_retain(&[0, 10, 30, 50], 60), 30);
        assert_eq!(min_snapshots_offset_to_retain(&[0, 10, 30, 50], 12), 10);
        assert_eq!(min_snapshots_offset_to_retain(&[0], 5), 0);
    }

    #[test]
    fn truncate_and_reload_drops_out_of_range_snapshots() {
        let (_d, mut m) = mgr();
        client(&mut m, header(1, 0, 0, 0, 5)).unwrap();
        m.take_snapshot(true).unwrap(); // 5
        client(&mut m, header(1, 0, 5, 5, 5)).unwrap();
        m.take_snapshot(true).unwrap(); // 10
        m.truncate_and_reload(0, 7, 0).unwrap();
        assert_eq!(m.snapshot_offsets(), vec![5]);
        assert_eq!(m.map_end_offset(), 5);
        assert_eq!(m.last_entry(1).unwrap().last_seq(), 4);
        m.truncate_fully_and_start_at(100).unwrap();
        assert!(m.snapshot_offsets().is_empty());
        assert_eq!(m.map_end_offset(), 100);
        assert!(m.is_empty());
    }

    #[test]
    fn expiry_keeps_open_transactions() {
        let (_d, mut m) = mgr();
        client(&mut m, header(1, 0, 0, 0, 1)).unwrap(); // ts 1000
        append(
            &mut m,
            txn_header(2, 0, 0, 1, 1),
            None,
            AppendOrigin::Replication,
        )
        .unwrap();
        m.remove_expired_producers(1000 + 86_400_000 + 5);
        assert!(m.last_entry(1).is_none());
        assert!(m.last_entry(2).is_some());
        assert!(m.has_late_transaction(1001 + 900_000 + LATE_TRANSACTION_BUFFER_MS + 1));
        assert!(!m.has_late_transaction(1001));
    }

    #[test]
    fn control_batch_marker_parsing() {
        // Build a control batch: header + one record with key (0, type) and value (0, epoch).
        fn varint(v: i64, out: &mut Vec<u8>) {
            let mut z = ((v << 1) ^ (v >> 63)) as u64;
            loop {
                if z < 0x80 {
                    out.push(z as u8);
                    break;
                }
                out.push((z as u8 & 0x7f) | 0x80);
                z >>= 7;
            }
        }
        let mut body = Vec::new();
        body.push(0u8); // attributes
        varint(7, &mut body); // timestamp delta
        varint(0, &mut body); // offset delta
        varint(4, &mut body);
        body.extend_from_slice(&[0, 0, 0, 1]); // commit
        varint(6, &mut body);
        body.extend_from_slice(&[0, 0, 0, 0, 0, 9]);
        varint(0, &mut body); // headers
        let mut rec = Vec::new();
        varint(body.len() as i64, &mut rec);
        rec.extend_from_slice(&body);
        let mut h = marker_header(1, 0, 50);
        h.batch_length = (HEADER_LEN - 12 + rec.len()) as i32;
        let mut batch = vec![0u8; HEADER_LEN];
        batch.extend_from_slice(&rec);
        let m = EndTxnMarker::from_control_batch(&batch, &h)
            .unwrap()
            .unwrap();
        assert_eq!(m.control_type, ControlRecordType::Commit);
        assert_eq!(m.coordinator_epoch, 9);
        assert_eq!(m.timestamp, h.base_timestamp + 7);
        let mut empty = h;
        empty.records_count = 0;
        assert!(
            EndTxnMarker::from_control_batch(&batch[..HEADER_LEN], &empty)
                .unwrap()
                .is_none()
        );
        assert!(EndTxnMarker::from_control_batch(&batch[..HEADER_LEN + 5], &h).is_err());
    }

    #[test]
    fn rebuild_replays_from_snapshot() {
        let (d, mut m) = mgr();
        client(&mut m, header(1, 0, 0, 0, 5)).unwrap();
        m.take_snapshot(true).unwrap(); // at 5
                                        // Log: segment 0 holds [0,5), segment 5 holds [5,8) with two more batches of pid 1.
        let seg5 = [header(1, 0, 5, 5, 2), header(1, 0, 7, 7, 1)];
        let mut m2 = ProducerStateManager::new(d.path(), m.config).unwrap();
        let mut scanned = Vec::new();
        m2.rebuild(&[0, 5], 0, 8, false, 0, |base, start, f| {
            scanned.push((base, start));
            if base == 5 {
                for h in &seg5 {
                    let mut b = vec![0u8; HEADER_LEN];
                    b[0..8].copy_from_slice(&h.base_offset.to_be_bytes());
                    b[8..12].copy_from_slice(&((HEADER_LEN - 12) as i32).to_be_bytes());
                    b[16] = 2;
                    b[23..27].copy_from_slice(&h.last_offset_delta.to_be_bytes());
                    b[43..51].copy_from_slice(&h.producer_id.to_be_bytes());
                    b[51..53].copy_from_slice(&h.producer_epoch.to_be_bytes());
                    b[53..57].copy_from_slice(&h.base_sequence.to_be_bytes());
                    b[57..61].copy_from_slice(&(h.last_offset_delta + 1).to_be_bytes());
                    f(&b);
                }
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(scanned, vec![(5, 5)], "replay starts at the snapshot");
        assert_eq!(m2.last_entry(1).unwrap().last_seq(), 7);
        assert_eq!(m2.map_end_offset(), 8);
        assert_eq!(m2.latest_snapshot_offset(), Some(8));
        // Clean shutdown without snapshots: empty snapshots, no scan.
        let d3 = tempfile::tempdir().unwrap();
        let mut m3 = ProducerStateManager::new(d3.path(), m.config).unwrap();
        m3.rebuild(&[0, 5], 0, 8, true, 0, |_, _, _| panic!("no scan"))
            .unwrap();
        assert_eq!(
            m3.snapshot_offsets(),
            vec![0, 5, 8]
                .into_iter()
                .filter(|&o| o > 0)
                .collect::<Vec<_>>()
        );
    }

    proptest! {
        #[test]
        fn prop_snapshot_round_trip(entries in proptest::collection::vec(
            (any::<i64>(), any::<i16>(), 0i32..i32::MAX, -1i64..i64::MAX, 0i32..1000, any::<i64>(), any::<i32>(), -1i64..1_000_000), 0..20)) {
            let es: Vec<ProducerStateEntry> = entries.into_iter().map(|(pid, ep, seq, off, delta, ts, ce, txn)| {
                let batch = (off >= 0).then_some(BatchMetadata { last_seq: seq, last_offset: off, offset_delta: delta, timestamp: ts });
                ProducerStateEntry::new(pid, ep, ce, ts, (txn >= 0).then_some(txn), batch)
            }).collect();
            let bytes = encode_snapshot(es.iter());
            let back = decode_snapshot(&bytes).unwrap();
            prop_assert_eq!(back, es);
        }

        #[test]
        fn prop_corruption_detected(flip in 10usize..102, bit in 0u8..8) {
            let es = [
                ProducerStateEntry::new(1, 0, 3, 99, None, Some(BatchMetadata { last_seq: 4, last_offset: 10, offset_delta: 4, timestamp: 99 })),
                ProducerStateEntry::new(2, 1, 0, 5, Some(3), None),
            ];
            let mut bytes = encode_snapshot(es.iter());
            bytes[flip] ^= 1 << bit;
            prop_assert!(decode_snapshot(&bytes).is_err());
        }

        /// In-order batches are always accepted; replaying any of the last five is a duplicate.
        #[test]
        fn prop_in_order_then_duplicates(sizes in proptest::collection::vec(1i32..5, 1..12), start in prop_oneof![Just(0i32), Just(i32::MAX - 6), 0i32..1000]) {
            let (_d, mut m) = mgr();
            let mut seq = start;
            let mut off = 0i64;
            let mut sent = Vec::new();
            for n in &sizes {
                let h = header(9, 0, seq, off, *n);
                prop_assert_eq!(client(&mut m, h).unwrap(), None);
                sent.push(h);
                seq = increment_sequence(seq, *n);
                off += *n as i64;
            }
            for (i, h) in sent.iter().enumerate() {
                let mut retry = *h;
                retry.base_offset = 10_000;
                let r = client(&mut m, retry);
                if i + NUM_BATCHES_TO_RETAIN >= sent.len() {
                    let d = r.unwrap().unwrap();
                    prop_assert_eq!(d.first_offset(), h.base_offset);
                    prop_assert_eq!(d.last_offset, h.last_offset());
                } else {
                    prop_assert!(r.is_err());
                }
            }
        }
    }
}
