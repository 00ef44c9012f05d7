//! The one place where the log calls the partition-state components owned by "pstate":
//! the leader-epoch cache (`leader_epoch.rs`) and producer state (`producer_state.rs`,
//! with the aborted-transaction index of `txn_index.rs`). Each adapter method maps one
//! log event to their API and their errors to the broker `Error`.

use std::path::Path;

use super::leader_epoch::LeaderEpochFileCache;
use super::producer_state::{
    self as ps, AppendAnalysis, PendingProducerUpdate, ProducerStateConfig, ProducerStateError,
    ProducerStateManager, VerificationGuard,
};
use super::txn_index::TxnIndex;
use super::validate::AppendOrigin;
use crate::error::{Error, Result};

fn storage(e: std::io::Error) -> Error {
    Error::KafkaStorageError(e.to_string())
}

/// Leader epoch cache adapter.
#[derive(Debug)]
pub struct EpochCache(LeaderEpochFileCache);

impl EpochCache {
    /// Opens `leader-epoch-checkpoint` in `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        Ok(Self(LeaderEpochFileCache::open(dir).map_err(storage)?))
    }
    pub fn set_dir(&self, dir: &Path) {
        self.0.set_dir(dir)
    }
    pub fn latest_epoch(&self) -> Option<i32> {
        self.0.latest_epoch()
    }
    pub fn entries(&self) -> Vec<(i32, i64)> {
        self.0
            .epoch_entries()
            .into_iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }
    /// Records that `epoch` starts at `offset` (written synchronously when it changes).
    pub fn assign(&self, epoch: i32, offset: i64) -> Result<()> {
        if epoch < 0 {
            return Ok(());
        }
        self.0.assign(epoch, offset).map_err(storage)?;
        Ok(())
    }
    /// Kafka `endOffsetFor`: `(epoch, end offset)`; `(-1, -1)` when undefined.
    pub fn end_offset_for(&self, epoch: i32, leo: i64) -> (i32, i64) {
        self.0.end_offset_for(epoch, leo)
    }
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.0.epoch_for_offset(offset)
    }
    pub fn truncate_from_end(&self, end_offset: i64) -> Result<()> {
        if !self.0.truncate_from_end(end_offset).is_empty() {
            self.0.flush().map_err(storage)?;
        }
        Ok(())
    }
    pub fn truncate_from_start(&self, start_offset: i64) -> Result<()> {
        if !self.0.truncate_from_start(start_offset).is_empty() {
            self.0.flush().map_err(storage)?;
        }
        Ok(())
    }
    pub fn clear(&self) -> Result<()> {
        self.0.clear_and_flush().map_err(storage)
    }
}

/// A duplicate of an earlier batch: answer with its original offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DuplicateBatch {
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

/// Outcome of the producer-state check of an append.
#[derive(Debug)]
pub enum ProducerCheck {
    Duplicate(DuplicateBatch),
    Valid(PendingProducerUpdate),
}

fn map_ps(e: ProducerStateError) -> Error {
    match e {
        ProducerStateError::InvalidProducerEpoch(m) => Error::InvalidProducerEpoch(m),
        ProducerStateError::OutOfOrderSequence(m) => Error::OutOfOrderSequence(m),
        ProducerStateError::InvalidTxnState(m) => Error::InvalidTxnState(m),
        ProducerStateError::TransactionCoordinatorFenced(m) => Error::Kafka(
            kafka_protocol::ResponseError::TransactionCoordinatorFenced,
            m,
        ),
        ProducerStateError::InvalidRecord(m) => Error::InvalidRecord(m),
    }
}

fn origin(o: AppendOrigin) -> ps::AppendOrigin {
    match o {
        AppendOrigin::Client => ps::AppendOrigin::Client,
        AppendOrigin::Coordinator => ps::AppendOrigin::Coordinator,
        AppendOrigin::Replication => ps::AppendOrigin::Replication,
    }
}

/// Producer state adapter.
#[derive(Debug)]
pub struct ProducerState(pub(crate) ProducerStateManager);

impl ProducerState {
    pub fn new(dir: &Path, config: ProducerStateConfig) -> Result<Self> {
        Ok(Self(
            ProducerStateManager::new(dir, config).map_err(storage)?,
        ))
    }

    /// Sequence / epoch / transaction checks of an append whose offsets are assigned.
    pub fn check(
        &mut self,
        records: &[u8],
        o: AppendOrigin,
        guard: VerificationGuard,
    ) -> Result<ProducerCheck> {
        match self
            .0
            .analyze_records(records, origin(o), guard)
            .map_err(map_ps)?
        {
            AppendAnalysis::Duplicate(b) => Ok(ProducerCheck::Duplicate(DuplicateBatch {
                first_offset: b.first_offset(),
                last_offset: b.last_offset,
                timestamp: b.timestamp,
            })),
            AppendAnalysis::Valid(p) => Ok(ProducerCheck::Valid(p)),
        }
    }

    /// Applies a checked append after its bytes were written; aborts go to `txn_index`.
    pub fn apply(
        &mut self,
        pending: PendingProducerUpdate,
        last_offset: i64,
        txn_index: Option<&TxnIndex>,
    ) -> Result<()> {
        self.0
            .apply_append(pending, last_offset, txn_index)
            .map_err(storage)
    }

    /// Recovery replay of one batch.
    pub fn recover_batch(&mut self, batch: &[u8], txn_index: Option<&TxnIndex>) -> Result<()> {
        self.0
            .recover_batch_bytes(batch, txn_index)
            .map_err(storage)
    }

    /// Snapshot at the current map end offset (roll: the new segment base; close: LEO).
    pub fn take_snapshot(&mut self) -> Result<()> {
        self.0.take_snapshot(true).map_err(storage)?;
        Ok(())
    }

    pub fn map_end_offset(&self) -> i64 {
        self.0.map_end_offset()
    }

    /// Load-time rebuild (Kafka `rebuildProducerState`); `scan(base, start, f)` feeds
    /// the batches of segment `base` from offset `start`.
    pub fn rebuild(
        &mut self,
        segment_bases: &[i64],
        log_start: i64,
        last_offset: i64,
        clean: bool,
        now: i64,
        scan: impl FnMut(i64, i64, &mut dyn FnMut(&[u8])) -> std::io::Result<()>,
    ) -> Result<()> {
        self.0
            .rebuild(segment_bases, log_start, last_offset, clean, now, scan)
            .map_err(storage)
    }

    pub fn remove_stray_snapshots(&mut self, bases: &[i64]) -> Result<()> {
        self.0.remove_stray_snapshots(bases).map_err(storage)
    }

    pub fn truncate_and_reload(&mut self, log_start: i64, leo: i64, now: i64) -> Result<()> {
        self.0
            .truncate_and_reload(log_start, leo, now)
            .map_err(storage)
    }

    pub fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<()> {
        self.0.truncate_fully_and_start_at(offset).map_err(storage)
    }

    /// A segment was deleted: its snapshot goes with it.
    pub fn remove_snapshot_of_segment(&mut self, base: i64) -> Result<()> {
        self.0
            .remove_and_mark_snapshot_for_deletion(base)
            .map_err(storage)?;
        Ok(())
    }

    pub fn on_log_start_offset_incremented(&mut self, offset: i64) {
        self.0.on_log_start_offset_incremented(offset)
    }
    pub fn on_high_watermark_updated(&mut self, hw: i64) {
        self.0.on_high_watermark_updated(hw)
    }
    /// First offset of the oldest open transaction.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.0.first_unstable_offset()
    }
    /// KIP-890: starts verification for a transactional producer's first batch.
    pub fn maybe_start_verification(
        &mut self,
        producer_id: i64,
        sequence: i32,
        epoch: i16,
    ) -> VerificationGuard {
        self.0
            .maybe_create_verification_state_entry(
                producer_id,
                sequence,
                epoch,
                super::segment::now_ms(),
            )
            .guard
    }
    pub fn remove_expired_producers(&mut self, now: i64) {
        self.0.remove_expired_producers(now)
    }
}
