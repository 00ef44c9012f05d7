//! `Log`: one partition's log (Kafka `UnifiedLog` + `LocalLog`) — segments, offsets,
//! appends as leader and follower, reads as file slices, truncation, retention.
//!
//! Partition dir `<topic>-<partition>` holds the segments (see `segment.rs`),
//! `leader-epoch-checkpoint`, producer `.snapshot` files and `partition.metadata`
//! (`version: 0\ntopic_id: <base64url uuid>`, no trailing newline).
//!
//! Locking: `append_lock` serializes writers (append, roll, truncate, retention); readers
//! take the `segments` read lock only long enough to clone `Arc`s of the segments they
//! need, then read without locks.

mod cleaning;
pub use cleaning::clean_dir_once;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::BytesMut;
use samsa_common::types::TopicPartition;
use uuid::Uuid;

use super::batch::BatchHeader;
use super::config::{CompressionCodec, LogConfig};
use super::hooks::{EpochCache, ProducerCheck, ProducerState};
use super::producer_state::{PendingProducerUpdate, VerificationGuard};
use super::records::{BatchIter, FileSlice};
use super::segment::{
    file_name, now_ms, LogOffsetMetadata, LogSegment, DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
};
use super::validate::{analyze, validate_and_assign_offsets, ValidateParams};
use crate::error::{Error, Result};

pub use super::validate::AppendOrigin;

/// `partition.metadata` file name.
pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// ListOffsets special timestamps.
pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;

/// What an append did (Kafka `LogAppendInfo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogAppendInfo {
    /// First offset of the append (-1 if nothing was appended).
    pub first_offset: i64,
    pub last_offset: i64,
    /// Max record timestamp, or the broker time for LogAppendTime topics.
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    /// Broker time for LogAppendTime topics, else -1 (Produce response `log_append_time`).
    pub log_append_time: i64,
    pub log_start_offset: i64,
    pub num_messages: i64,
    /// Bytes appended.
    pub valid_bytes: usize,
    pub source_codec: CompressionCodec,
    pub target_codec: CompressionCodec,
    /// The batch repeated an already-written one: offsets are the original ones and
    /// nothing was written.
    pub duplicate: bool,
    pub last_leader_epoch: i32,
}

impl LogAppendInfo {
    fn empty(log_start: i64) -> Self {
        Self {
            first_offset: -1,
            last_offset: -1,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            log_append_time: -1,
            log_start_offset: log_start,
            num_messages: 0,
            valid_bytes: 0,
            source_codec: CompressionCodec::None,
            target_codec: CompressionCodec::None,
            duplicate: false,
            last_leader_epoch: -1,
        }
    }
}

/// An aborted transaction for read_committed fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTransaction {
    pub producer_id: i64,
    pub first_offset: i64,
}

/// Result of a read (Kafka `FetchDataInfo`): file slices to send as they are.
#[derive(Clone, Debug)]
pub struct FetchDataInfo {
    /// Where the read started (used by the fetch purgatory to count accumulated bytes).
    pub fetch_offset_metadata: LogOffsetMetadata,
    /// Record bytes; the last batch may be cut short (clients skip a partial batch).
    pub slices: Vec<FileSlice>,
    /// For read_committed: aborted transactions overlapping the returned range.
    pub aborted_transactions: Option<Vec<AbortedTransaction>>,
}

impl FetchDataInfo {
    pub fn size_bytes(&self) -> usize {
        self.slices.iter().map(|s| s.len).sum()
    }
    fn empty(meta: LogOffsetMetadata) -> Self {
        Self {
            fetch_offset_metadata: meta,
            slices: Vec::new(),
            aborted_transactions: None,
        }
    }
}

/// Timestamp lookup answer (ListOffsets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampAndOffset {
    pub timestamp: i64,
    pub offset: i64,
    pub leader_epoch: Option<i32>,
}

/// Segment files waiting for `file.delete.delay.ms` before removal (shared with the
/// log manager, whose background task drains it).
#[derive(Debug, Default)]
pub struct DeleteQueue {
    items: Mutex<Vec<(i64, Arc<LogSegment>)>>,
}

impl DeleteQueue {
    pub fn push(&self, due_ms: i64, seg: Arc<LogSegment>) {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((due_ms, seg));
    }
    /// Deletes every segment due by `now` (all of them with `i64::MAX`).
    pub fn run_due(&self, now: i64) -> usize {
        let due: Vec<_> = {
            let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
            let (due, keep): (Vec<_>, Vec<_>) = items.drain(..).partition(|(t, _)| *t <= now);
            *items = keep;
            due
        };
        for (_, seg) in &due {
            if let Err(e) = seg.delete_files() {
                tracing::warn!("failed to delete segment files {:?}: {e}", seg.log_path());
            }
        }
        due.len()
    }
    pub fn len(&self) -> usize {
        self.items.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Called with the log dir when an I/O error happens, so the manager can take the dir
/// offline (Kafka `LogDirFailureChannel`).
pub type DirFailureHook = Arc<dyn Fn(&Path) + Send + Sync>;

struct WriterState {
    epochs: EpochCache,
    producers: ProducerState,
    unflushed_messages: i64,
    last_flush_ms: i64,
}

/// One partition's log.
pub struct Log {
    tp: TopicPartition,
    dir: RwLock<PathBuf>,
    parent_dir: PathBuf,
    config: RwLock<Arc<LogConfig>>,
    segments: RwLock<BTreeMap<i64, Arc<LogSegment>>>,
    writer: Mutex<WriterState>,
    leo: RwLock<LogOffsetMetadata>,
    high_watermark: AtomicI64,
    log_start_offset: AtomicI64,
    recovery_point: Arc<AtomicI64>,
    topic_id: Mutex<Option<Uuid>>,
    offline: AtomicBool,
    deletes: Arc<DeleteQueue>,
    on_dir_failure: Option<DirFailureHook>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("tp", &self.tp)
            .field("leo", &self.log_end_offset())
            .finish()
    }
}

/// Parses `<topic>-<partition>` (partition after the last `-`), ignoring suffixes of
/// `-delete` / `-future` dirs (`<topic>-<p>.<uuid>-delete`).
pub fn parse_partition_dir_name(name: &str) -> Option<TopicPartition> {
    let base = if name.ends_with("-delete") || name.ends_with("-future") || name.ends_with("-stray")
    {
        let dot = name.rfind('.')?;
        &name[..dot]
    } else {
        name
    };
    let dash = base.rfind('-')?;
    let topic = &base[..dash];
    let partition: i32 = base[dash + 1..].parse().ok()?;
    if topic.is_empty() || partition < 0 {
        return None;
    }
    Some(TopicPartition::new(topic, partition))
}

fn roll_jitter(config: &LogConfig) -> i64 {
    if config.segment_jitter_ms <= 0 {
        return 0;
    }
    use rand::Rng;
    let bound = config.segment_jitter_ms.min(config.segment_ms).max(1);
    rand::thread_rng().gen_range(0..bound)
}

fn io_err(e: std::io::Error) -> Error {
    Error::KafkaStorageError(e.to_string())
}

/// What loading found, for the manager's bookkeeping.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadParams {
    pub had_clean_shutdown: bool,
    pub recovery_point: i64,
    pub log_start_offset_checkpoint: i64,
    pub high_watermark_checkpoint: Option<i64>,
    /// `-delete` dirs are loaded without recovery.
    pub is_delete_dir: bool,
    /// Broker-wide producer-state settings (`producer.id.expiration.ms`,
    /// `transaction.partition.verification.enable`, `transaction.max.timeout.ms`).
    pub producer_state: super::producer_state::ProducerStateConfig,
}

impl Log {
    /// Opens (creating if needed) the log in `dir`, running Kafka's `LogLoader`: temp-file
    /// cleanup, swap completion, segment load, recovery of unflushed segments.
    pub fn open(
        dir: &Path,
        tp: TopicPartition,
        config: LogConfig,
        params: LoadParams,
        deletes: Arc<DeleteQueue>,
        on_dir_failure: Option<DirFailureHook>,
    ) -> Result<Arc<Log>> {
        std::fs::create_dir_all(dir)?;
        let loaded = super::loader::load(dir, &config, &params)?;
        let parent_dir = dir
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let leo = loaded.leo;
        let mut segments = BTreeMap::new();
        for s in loaded.segments {
            segments.insert(s.base_offset(), Arc::new(s));
        }
        let log_start = params
            .log_start_offset_checkpoint
            .max(segments.keys().next().copied().unwrap_or(0));
        let epochs = loaded.epochs;
        epochs.truncate_from_end(leo.message_offset)?;
        epochs.truncate_from_start(log_start)?;
        let hw = params
            .high_watermark_checkpoint
            .unwrap_or(0)
            .clamp(log_start, leo.message_offset.max(log_start));
        let mut producers = loaded.producers;
        producers.on_high_watermark_updated(hw);
        let topic_id = read_partition_metadata(dir).ok().flatten();
        let log = Log {
            tp,
            dir: RwLock::new(dir.to_path_buf()),
            parent_dir,
            config: RwLock::new(Arc::new(config)),
            segments: RwLock::new(segments),
            writer: Mutex::new(WriterState {
                epochs,
                producers,
                unflushed_messages: 0,
                last_flush_ms: now_ms(),
            }),
            leo: RwLock::new(leo),
            high_watermark: AtomicI64::new(hw),
            log_start_offset: AtomicI64::new(log_start),
            recovery_point: Arc::new(AtomicI64::new(loaded.recovery_point)),
            topic_id: Mutex::new(topic_id),
            offline: AtomicBool::new(false),
            deletes,
            on_dir_failure,
        };
        Ok(Arc::new(log))
    }

    /// A standalone log (tests, tools): own delete queue, no failure hook.
    pub fn open_standalone(dir: &Path, config: LogConfig) -> Result<Arc<Log>> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("unknown-0")
            .to_string();
        let tp = parse_partition_dir_name(&name).unwrap_or_else(|| TopicPartition::new(name, 0));
        Self::open(
            dir,
            tp,
            config,
            LoadParams::default(),
            Arc::new(DeleteQueue::default()),
            None,
        )
    }

    fn w(&self) -> MutexGuard<'_, WriterState> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail<T>(&self, e: std::io::Error) -> Result<T> {
        if !self.offline.swap(true, Ordering::AcqRel) {
            // Kafka's "Error while ... in dir": the cause, once per log.
            tracing::error!(
                "I/O error in the log of {} in dir {}: {e}{}",
                self.tp,
                self.parent_dir.display(),
                super::limit_hint(&e)
            );
        }
        if let Some(h) = &self.on_dir_failure {
            h(&self.parent_dir);
        }
        Err(io_err(e))
    }

    fn check_online(&self) -> Result<()> {
        if self.offline.load(Ordering::Acquire) {
            return Err(Error::KafkaStorageError(format!(
                "log dir of {} is offline",
                self.tp
            )));
        }
        Ok(())
    }

    /// Marks the log unusable (its dir failed).
    pub fn mark_offline(&self) {
        self.offline.store(true, Ordering::Release);
    }

    /// Drops the segments of a log whose dir failed, closing their descriptors and index
    /// maps (Kafka's `closeHandlers`): when the failure was running out of descriptors or
    /// maps, this is what lets the other dirs go on. Files are left as they are; reads in
    /// flight keep their own handle. Only for an offline log (every use checks that first).
    pub fn close_handles(&self) {
        if self.is_offline() {
            let dropped = std::mem::take(&mut *self.segs_mut());
            drop(dropped);
        }
    }
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }
    pub fn dir(&self) -> PathBuf {
        self.dir.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// The log dir (`log.dirs` entry) holding this partition.
    pub fn parent_dir(&self) -> &Path {
        &self.parent_dir
    }
    pub fn config(&self) -> Arc<LogConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    pub fn update_config(&self, config: LogConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }
    pub fn log_end_offset(&self) -> i64 {
        self.leo
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .message_offset
    }
    pub fn log_end_offset_metadata(&self) -> LogOffsetMetadata {
        *self.leo.read().unwrap_or_else(|p| p.into_inner())
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    /// Sets the HW, clamped into `[log start, LEO]`; returns the value set.
    pub fn update_high_watermark(&self, hw: i64) -> i64 {
        let hw = hw.clamp(self.log_start_offset(), self.log_end_offset());
        self.high_watermark.store(hw, Ordering::Release);
        self.w().producers.on_high_watermark_updated(hw);
        hw
    }

    /// Raises the HW if `hw` is larger (leaders never lower it). Returns the old value
    /// when it moved.
    pub fn maybe_increment_high_watermark(&self, hw: i64) -> Option<i64> {
        let hw = hw.min(self.log_end_offset());
        let old = self.high_watermark.fetch_max(hw, Ordering::AcqRel);
        if hw > old {
            self.w().producers.on_high_watermark_updated(hw);
        }
        (hw > old).then_some(old)
    }

    /// LSO: min(first offset of the oldest open transaction, HW).
    pub fn last_stable_offset(&self) -> i64 {
        let hw = self.high_watermark();
        match self.w().producers.first_unstable_offset() {
            Some(o) => o.min(hw),
            None => hw,
        }
    }

    pub fn topic_id(&self) -> Option<Uuid> {
        *self.topic_id.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the topic id and writes `partition.metadata` if it was not there. A
    /// different existing id is `InconsistentTopicId`.
    pub fn assign_topic_id(&self, id: Uuid) -> Result<()> {
        let mut cur = self.topic_id.lock().unwrap_or_else(|p| p.into_inner());
        match *cur {
            Some(existing) if existing != id => Err(Error::InconsistentTopicId(format!(
                "topic id {id} differs from {existing} in {}",
                self.tp
            ))),
            Some(_) => Ok(()),
            None => {
                write_partition_metadata(&self.dir(), id)?;
                *cur = Some(id);
                Ok(())
            }
        }
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segs().values().map(|s| s.size()).sum()
    }
    pub fn num_segments(&self) -> usize {
        self.segs().len()
    }
    /// Snapshot of the segments, oldest first.
    pub fn segments(&self) -> Vec<Arc<LogSegment>> {
        self.segs().values().cloned().collect()
    }
    fn segs(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<i64, Arc<LogSegment>>> {
        self.segments.read().unwrap_or_else(|p| p.into_inner())
    }
    fn segs_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<i64, Arc<LogSegment>>> {
        self.segments.write().unwrap_or_else(|p| p.into_inner())
    }
    fn active_segment(&self) -> Option<Arc<LogSegment>> {
        self.segs().values().next_back().cloned()
    }

    // ---------------------------------------------------------------- leader epochs

    pub fn latest_epoch(&self) -> Option<i32> {
        self.w().epochs.latest_epoch()
    }
    /// `(epoch, end offset)` for OffsetsForLeaderEpoch and divergence checks.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let leo = self.log_end_offset();
        self.w().epochs.end_offset_for(epoch, leo)
    }
    /// New leader: record `(epoch, LEO)` before any write.
    pub fn assign_epoch_start_offset(&self, epoch: i32, offset: i64) -> Result<()> {
        self.w().epochs.assign(epoch, offset)
    }
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.w().epochs.entries()
    }

    // ---------------------------------------------------------------- appends

    /// Leader append (Produce, coordinators): validate, assign offsets in place (or
    /// rebuild), check producer state, write. See `validate.rs`.
    pub fn append_as_leader(
        &self,
        records: BytesMut,
        leader_epoch: i32,
        origin: AppendOrigin,
    ) -> Result<LogAppendInfo> {
        self.append_as_leader_verified(records, leader_epoch, origin, VerificationGuard::SENTINEL)
    }

    /// KIP-890: before a transactional producer's first batch is appended, the produce
    /// path gets a guard here, verifies with the transaction coordinator, and passes the
    /// guard to [`Log::append_as_leader_verified`].
    pub fn maybe_start_transaction_verification(
        &self,
        producer_id: i64,
        sequence: i32,
        epoch: i16,
    ) -> VerificationGuard {
        let mut w = self.w();
        // A producer already in a transaction here needs no verification (Kafka 3.9).
        if w.producers.0.has_ongoing_transaction(producer_id, epoch) {
            return VerificationGuard::SENTINEL;
        }
        w.producers
            .maybe_start_verification(producer_id, sequence, epoch)
    }

    /// Every producer with state in this partition (DescribeProducers), by producer id.
    pub fn active_producers(&self) -> Vec<super::producer_state::ProducerStateEntry> {
        let w = self.w();
        let mut out: Vec<_> = w.producers.0.active_producers().values().cloned().collect();
        out.sort_by_key(|e| e.producer_id);
        out
    }

    /// [`Log::append_as_leader`] carrying a transaction verification guard.
    pub fn append_as_leader_verified(
        &self,
        records: BytesMut,
        leader_epoch: i32,
        origin: AppendOrigin,
        guard: VerificationGuard,
    ) -> Result<LogAppendInfo> {
        self.check_online()?;
        let config = self.config();
        let (valid, source_codec, _) = analyze(&records, &config, origin, false)?;
        let mut records = records;
        records.truncate(valid);
        if valid == 0 {
            return Ok(LogAppendInfo::empty(self.log_start_offset()));
        }
        let mut w = self.w();
        let leo = self.log_end_offset();
        let now = now_ms();
        let v = validate_and_assign_offsets(
            records,
            source_codec,
            &ValidateParams {
                config: &config,
                now_ms: now,
                next_offset: leo,
                leader_epoch,
                origin,
                topic_partition: &self.tp,
            },
        )?;
        if v.rebuilt {
            for b in BatchIter::new(&v.records).flatten() {
                if b.1.len() > config.max_message_bytes as usize {
                    return Err(Error::MessageTooLarge(format!(
                        "Message batch size is {} bytes in append to partition {} which exceeds the maximum configured size of {}.",
                        b.1.len(),
                        self.tp,
                        config.max_message_bytes
                    )));
                }
            }
        }
        // Producer-state checks (duplicates answer with the original offsets).
        let pending = match w.producers.check(&v.records, origin, guard)? {
            ProducerCheck::Duplicate(d) => {
                let mut info = LogAppendInfo::empty(self.log_start_offset());
                info.first_offset = d.first_offset;
                info.last_offset = d.last_offset;
                info.max_timestamp = d.timestamp;
                info.log_append_time = v.log_append_time;
                info.duplicate = true;
                return Ok(info);
            }
            ProducerCheck::Valid(p) => p,
        };
        let info = LogAppendInfo {
            first_offset: v.first_offset,
            last_offset: v.last_offset,
            max_timestamp: v.max_timestamp,
            offset_of_max_timestamp: v.offset_of_max_timestamp,
            log_append_time: v.log_append_time,
            log_start_offset: self.log_start_offset(),
            num_messages: v.num_messages,
            valid_bytes: v.records.len(),
            source_codec: v.source_codec,
            target_codec: v.target_codec,
            duplicate: false,
            last_leader_epoch: leader_epoch,
        };
        self.append_locked(&mut w, &config, &v.records, &info, now, pending)?;
        Ok(info)
    }

    /// Follower append: batches keep the leader's offsets; a partial trailing batch is
    /// dropped; offsets must start at or after LEO and increase.
    pub fn append_as_follower(&self, records: &[u8]) -> Result<LogAppendInfo> {
        self.check_online()?;
        let config = self.config();
        let (valid, source_codec, _) = analyze(records, &config, AppendOrigin::Replication, true)?;
        let records = &records[..valid];
        if valid == 0 {
            return Ok(LogAppendInfo::empty(self.log_start_offset()));
        }
        let mut w = self.w();
        let leo = self.log_end_offset();
        let mut first = -1i64;
        let mut last = -1i64;
        let mut max_ts = -1i64;
        let mut off_max = -1i64;
        let mut n = 0i64;
        let mut epoch = -1;
        for (_, b) in BatchIter::new(records).flatten() {
            let Some(sb) = super::records::shallow(b) else {
                return Err(Error::CorruptMessage("short batch".into()));
            };
            // The base offset and delta are outside the CRC: a negative delta or one that runs
            // past i64::MAX (nothing could follow it) is a corrupt batch, not an append.
            if sb.last_offset < sb.base_offset || sb.last_offset == i64::MAX {
                return Err(Error::CorruptMessage(format!(
                    "batch in append to {} has offsets {} to {}",
                    self.tp, sb.base_offset, sb.last_offset
                )));
            }
            if first < 0 {
                first = sb.base_offset;
            } else if sb.base_offset <= last {
                return Err(Error::InvalidRecord(format!(
                    "Out of order offsets found in append to {}: {} after {}",
                    self.tp, sb.base_offset, last
                )));
            }
            if sb.max_timestamp > max_ts {
                max_ts = sb.max_timestamp;
                off_max = sb.last_offset;
            }
            last = sb.last_offset;
            n += sb.last_offset - sb.base_offset + 1;
            epoch = sb.partition_leader_epoch;
        }
        if first < leo {
            return Err(Error::OffsetOutOfRange(format!(
                "Unexpected offset in append to {}. First offset {first} is less than the next offset {leo}.",
                self.tp
            )));
        }
        let info = LogAppendInfo {
            first_offset: first,
            last_offset: last,
            max_timestamp: max_ts,
            offset_of_max_timestamp: off_max,
            log_append_time: -1,
            log_start_offset: self.log_start_offset(),
            num_messages: n,
            valid_bytes: valid,
            source_codec,
            target_codec: source_codec,
            duplicate: false,
            last_leader_epoch: epoch,
        };
        let now = now_ms();
        let pending = match w.producers.check(
            records,
            AppendOrigin::Replication,
            VerificationGuard::SENTINEL,
        )? {
            ProducerCheck::Valid(p) => p,
            ProducerCheck::Duplicate(_) => PendingProducerUpdate::default(),
        };
        self.append_locked(&mut w, &config, records, &info, now, pending)?;
        Ok(info)
    }

    fn append_locked(
        &self,
        w: &mut WriterState,
        config: &LogConfig,
        records: &[u8],
        info: &LogAppendInfo,
        now: i64,
        pending: PendingProducerUpdate,
    ) -> Result<()> {
        if records.len() > config.segment_bytes as usize {
            return Err(Error::RecordListTooLarge(format!(
                "Message batch size is {} bytes in append to partition {}, which exceeds the maximum configured segment size of {}.",
                records.len(),
                self.tp,
                config.segment_bytes
            )));
        }
        let seg = self.maybe_roll(w, config, records.len(), info, now)?;
        for (_, b) in BatchIter::new(records).flatten() {
            if let Some(h) = BatchHeader::parse(b) {
                if h.magic >= 2 && h.partition_leader_epoch >= 0 {
                    let newer = w
                        .epochs
                        .latest_epoch()
                        .is_none_or(|e| h.partition_leader_epoch > e);
                    if newer {
                        w.epochs.assign(h.partition_leader_epoch, h.base_offset)?;
                    }
                }
            }
        }
        if let Err(e) = seg.append(
            info.last_offset,
            info.max_timestamp,
            info.offset_of_max_timestamp,
            records,
            config.index_interval_bytes.max(0) as usize,
        ) {
            return self.fail(e);
        }
        {
            let mut leo = self.leo.write().unwrap_or_else(|p| p.into_inner());
            *leo = LogOffsetMetadata {
                message_offset: info.last_offset + 1,
                segment_base_offset: seg.base_offset(),
                relative_position_in_segment: seg.size(),
            };
        }
        w.producers
            .apply(pending, info.last_offset, Some(seg.txn_index()))?;
        w.unflushed_messages += info.num_messages;
        if w.unflushed_messages >= config.flush_messages {
            self.flush_locked(w, info.last_offset + 1)?;
        }
        Ok(())
    }

    fn maybe_roll(
        &self,
        w: &mut WriterState,
        config: &LogConfig,
        size: usize,
        info: &LogAppendInfo,
        now: i64,
    ) -> Result<Arc<LogSegment>> {
        let active = match self.active_segment() {
            Some(s) => s,
            None => return self.roll_locked(w, config, Some(info.first_offset)),
        };
        let roll = active
            .should_roll(config, size, info.max_timestamp, info.last_offset, now)
            .or_else(|e| self.fail(e))?;
        if roll {
            // New base: the append's first offset (followers may skip ahead) or LEO.
            self.roll_locked(w, config, Some(info.first_offset))
        } else {
            Ok(active)
        }
    }

    /// Rolls a new active segment at `max(expected, LEO)`.
    pub fn roll(&self, expected_next_offset: Option<i64>) -> Result<Arc<LogSegment>> {
        let config = self.config();
        let mut w = self.w();
        self.roll_locked(&mut w, &config, expected_next_offset)
    }

    fn roll_locked(
        &self,
        w: &mut WriterState,
        config: &LogConfig,
        expected: Option<i64>,
    ) -> Result<Arc<LogSegment>> {
        let leo = self.log_end_offset();
        let new_base = expected.unwrap_or(leo).max(leo);
        let dir = self.dir();
        if let Some(active) = self.active_segment() {
            if active.base_offset() == new_base && active.size() == 0 {
                return Ok(active);
            }
            if active.base_offset() >= new_base {
                return Err(Error::KafkaStorageError(format!(
                    "Trying to roll a new segment for {} at offset {new_base} at or below the active segment {}",
                    self.tp,
                    active.base_offset()
                )));
            }
            if let Err(e) = active.on_become_inactive() {
                return self.fail(e);
            }
        }
        for suffix in [INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            let _ = std::fs::remove_file(file_name(&dir, new_base, suffix));
        }
        if file_name(&dir, new_base, LOG_SUFFIX).exists() {
            return Err(Error::KafkaStorageError(format!(
                "segment file for offset {new_base} already exists in {}",
                dir.display()
            )));
        }
        let (seg, _) = match LogSegment::open(&dir, new_base, config, false, roll_jitter(config)) {
            Ok(s) => s,
            Err(e) => return self.fail(e),
        };
        let seg = Arc::new(seg);
        self.segs_mut().insert(new_base, seg.clone());
        if leo == new_base || self.segs().len() == 1 {
            let mut l = self.leo.write().unwrap_or_else(|p| p.into_inner());
            if l.message_offset == new_base || l.segment_base_offset < 0 {
                *l = LogOffsetMetadata {
                    message_offset: l.message_offset,
                    segment_base_offset: new_base,
                    relative_position_in_segment: 0,
                };
            }
        }
        w.producers.take_snapshot()?;
        // Flush everything below the new segment off the append path.
        let older: Vec<Arc<LogSegment>> = self
            .segs()
            .range(self.recovery_point().min(new_base)..new_base)
            .map(|(_, s)| s.clone())
            .collect();
        let floor = self
            .segs()
            .range(..=self.recovery_point())
            .next_back()
            .map(|(_, s)| s.clone());
        let rp = self.recovery_point.clone();
        let hook = self.on_dir_failure.clone();
        let parent = self.parent_dir.clone();
        std::thread::spawn(move || {
            let mut all = older;
            if let Some(f) = floor {
                if all.first().map(|s| s.base_offset()) != Some(f.base_offset()) {
                    all.insert(0, f);
                }
            }
            for s in &all {
                if s.base_offset() >= new_base {
                    continue;
                }
                if let Err(e) = s.flush() {
                    tracing::error!("flush of {:?} failed: {e}", s.log_path());
                    if let Some(h) = &hook {
                        h(&parent);
                    }
                    return;
                }
            }
            rp.fetch_max(new_base, Ordering::AcqRel);
        });
        Ok(seg)
    }

    fn rebuild_producer_state(&self, w: &mut WriterState, last_offset: i64) -> Result<()> {
        let segs = self.segments();
        let bases: Vec<i64> = segs.iter().map(|s| s.base_offset()).collect();
        w.producers.rebuild(
            &bases,
            self.log_start_offset(),
            last_offset,
            false,
            now_ms(),
            |b, from, f| match segs.iter().find(|s| s.base_offset() == b) {
                Some(s) => s.for_each_batch_from(from, f),
                None => Ok(()),
            },
        )
    }

    // ---------------------------------------------------------------- flush

    /// fsyncs segments up to `offset` (exclusive) and moves the recovery point there.
    pub fn flush(&self, offset: i64) -> Result<()> {
        let mut w = self.w();
        self.flush_locked(&mut w, offset)
    }

    fn flush_locked(&self, w: &mut WriterState, offset: i64) -> Result<()> {
        let offset = offset.min(self.log_end_offset());
        let rp = self.recovery_point();
        if offset <= rp {
            return Ok(());
        }
        let segs: Vec<_> = {
            let s = self.segs();
            let start = s
                .range(..=rp)
                .next_back()
                .map(|(b, _)| *b)
                .unwrap_or(i64::MIN);
            s.range(start..offset).map(|(_, s)| s.clone()).collect()
        };
        let started = std::time::Instant::now();
        for s in segs {
            if let Err(e) = s.flush() {
                return self.fail(e);
            }
        }
        crate::metrics::log_flushed(started.elapsed());
        self.recovery_point.fetch_max(offset, Ordering::AcqRel);
        w.unflushed_messages = 0;
        w.last_flush_ms = now_ms();
        Ok(())
    }

    /// Periodic flush policy (`flush.ms`): flush when the last flush is older.
    pub fn flush_if_due(&self, now: i64) -> Result<()> {
        let config = self.config();
        let due = {
            let w = self.w();
            config.flush_ms != i64::MAX && now - w.last_flush_ms >= config.flush_ms
        };
        if due {
            let leo = self.log_end_offset();
            self.flush(leo)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- reads

    /// Reads from `fetch_offset` up to `max_bytes`, never past `max_offset` (HW, LSO or
    /// LEO). With `min_one_message` a first batch larger than `max_bytes` is returned
    /// whole (KIP-74). Offsets below log start or above LEO → `OffsetOutOfRange`.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_message: bool,
    ) -> Result<FetchDataInfo> {
        self.check_online()?;
        let leo = self.log_end_offset_metadata();
        let log_start = self.log_start_offset();
        if fetch_offset < log_start || fetch_offset > leo.message_offset {
            return Err(Error::OffsetOutOfRange(format!(
                "Received request for offset {fetch_offset} for partition {}, but we only have log segments in the range {log_start} to {}.",
                self.tp, leo.message_offset
            )));
        }
        let max_offset = max_offset.min(leo.message_offset);
        let max_meta = if max_offset == leo.message_offset {
            leo
        } else {
            self.offset_metadata(max_offset)?
        };
        if fetch_offset == max_offset {
            return Ok(FetchDataInfo::empty(max_meta));
        }
        if fetch_offset > max_offset {
            return Ok(FetchDataInfo::empty(self.offset_metadata(fetch_offset)?));
        }
        let segs: Vec<Arc<LogSegment>> = {
            let s = self.segs();
            let start = s
                .range(..=fetch_offset)
                .next_back()
                .map(|(b, _)| *b)
                .unwrap_or(i64::MIN);
            s.range(start..).map(|(_, s)| s.clone()).collect()
        };
        for seg in segs {
            let max_position = if seg.base_offset() == max_meta.segment_base_offset {
                max_meta.relative_position_in_segment
            } else {
                seg.size()
            };
            match seg.read(fetch_offset, max_bytes, max_position, min_one_message) {
                Ok(Some((slice, meta))) => {
                    return Ok(FetchDataInfo {
                        fetch_offset_metadata: meta,
                        slices: if slice.len > 0 { vec![slice] } else { vec![] },
                        aborted_transactions: None,
                    })
                }
                Ok(None) => continue,
                Err(e) => return self.fail(e),
            }
        }
        Ok(FetchDataInfo::empty(leo))
    }

    /// [`Log::read`] for read_committed consumers: also lists the aborted transactions
    /// overlapping the returned bytes (Kafka `addAbortedTransactions`).
    pub fn read_with_aborted_transactions(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one_message: bool,
    ) -> Result<FetchDataInfo> {
        let mut info = self.read(fetch_offset, max_bytes, max_offset, min_one_message)?;
        let meta = info.fetch_offset_metadata;
        let segs = self.segments();
        let upper = match segs
            .iter()
            .position(|s| s.base_offset() == meta.segment_base_offset)
        {
            Some(i) => {
                let end = meta.relative_position_in_segment + info.size_bytes() as u64;
                let bound = match segs[i].fetch_upper_bound_offset(end) {
                    Ok(b) => b,
                    Err(e) => return self.fail(e),
                };
                bound
                    .or_else(|| segs.get(i + 1).map(|s| s.base_offset()))
                    .unwrap_or_else(|| self.log_end_offset())
            }
            None => self.log_end_offset(),
        };
        let mut aborted = Vec::new();
        let start = segs
            .iter()
            .rposition(|s| s.base_offset() <= fetch_offset)
            .unwrap_or(0);
        for seg in &segs[start..] {
            let r = match seg.txn_index().collect_aborted_txns(fetch_offset, upper) {
                Ok(r) => r,
                Err(e) => return self.fail(e),
            };
            aborted.extend(r.aborted.iter().map(|t| AbortedTransaction {
                producer_id: t.producer_id,
                first_offset: t.first_offset,
            }));
            if r.is_complete {
                break;
            }
        }
        info.aborted_transactions = Some(aborted);
        Ok(info)
    }

    /// Offset → (segment, position of the batch holding it).
    pub fn offset_metadata(&self, offset: i64) -> Result<LogOffsetMetadata> {
        let leo = self.log_end_offset_metadata();
        if offset >= leo.message_offset {
            return Ok(leo);
        }
        let seg = self
            .segs()
            .range(..=offset)
            .next_back()
            .map(|(_, s)| s.clone());
        let Some(seg) = seg else {
            return Ok(LogOffsetMetadata::offset_only(offset));
        };
        match seg.translate_offset(offset) {
            Ok(Some(bp)) => Ok(LogOffsetMetadata {
                message_offset: offset,
                segment_base_offset: seg.base_offset(),
                relative_position_in_segment: bp.position,
            }),
            Ok(None) => Ok(LogOffsetMetadata {
                message_offset: offset,
                segment_base_offset: seg.base_offset(),
                relative_position_in_segment: seg.size(),
            }),
            Err(e) => self.fail(e),
        }
    }

    /// ListOffsets lookup. Special timestamps: -2 earliest (log start), -4 earliest local,
    /// -1 latest (LEO: the caller clamps to HW/LSO by isolation level), -3 max timestamp.
    /// Otherwise the first record with timestamp ≥ `ts`; `None` if there is none.
    pub fn fetch_offset_by_timestamp(&self, ts: i64) -> Result<Option<TimestampAndOffset>> {
        let epoch_of = |o: i64| self.w().epochs.epoch_for_offset(o);
        match ts {
            EARLIEST_TIMESTAMP | EARLIEST_LOCAL_TIMESTAMP => {
                let s = self.log_start_offset();
                return Ok(Some(TimestampAndOffset {
                    timestamp: -1,
                    offset: s,
                    leader_epoch: epoch_of(s),
                }));
            }
            LATEST_TIMESTAMP => {
                return Ok(Some(TimestampAndOffset {
                    timestamp: -1,
                    offset: self.log_end_offset(),
                    leader_epoch: self.latest_epoch(),
                }));
            }
            _ => {}
        }
        let segs = self.segments();
        if ts == MAX_TIMESTAMP {
            let best = segs
                .iter()
                .max_by_key(|s| s.max_timestamp_so_far())
                .cloned();
            let Some(seg) = best else { return Ok(None) };
            let m = seg.max_timestamp_entry();
            if m.timestamp < 0 {
                return Ok(None);
            }
            let hit = seg
                .find_offset_by_timestamp(m.timestamp, self.log_start_offset())
                .or_else(|e| self.fail(e))?;
            return Ok(hit.map(|(t, o, _)| TimestampAndOffset {
                timestamp: t,
                offset: o,
                leader_epoch: epoch_of(o),
            }));
        }
        let start = self.log_start_offset();
        for seg in segs.iter().filter(|s| s.largest_timestamp() >= ts) {
            let hit = seg
                .find_offset_by_timestamp(ts, start)
                .or_else(|e| self.fail(e))?;
            if let Some((t, o, e)) = hit {
                return Ok(Some(TimestampAndOffset {
                    timestamp: t,
                    offset: o,
                    leader_epoch: if e >= 0 { Some(e) } else { epoch_of(o) },
                }));
            }
        }
        Ok(None)
    }

    // ---------------------------------------------------------------- truncation

    /// Removes everything at and above `target` (follower divergence). Returns whether
    /// anything was removed.
    pub fn truncate_to(&self, target: i64) -> Result<bool> {
        if target < 0 {
            return Err(Error::Internal(format!("cannot truncate to {target}")));
        }
        let config = self.config();
        let mut w = self.w();
        if target >= self.log_end_offset() {
            // Nothing to cut, but (as Kafka does) still drop epoch entries starting at or past
            // the LEO: a broker that led briefly and appended nothing keeps a `(epoch, LEO)`
            // entry the new leader never had, and would otherwise be told it diverges forever.
            w.epochs.truncate_from_end(self.log_end_offset())?;
            return Ok(false);
        }
        let first_base = self.segs().keys().next().copied().unwrap_or(0);
        if target <= first_base {
            drop(w);
            self.truncate_fully_and_start_at(target)?;
            return Ok(true);
        }
        w.epochs.truncate_from_end(target)?;
        let to_delete: Vec<Arc<LogSegment>> = {
            let mut s = self.segs_mut();
            let doomed: Vec<i64> = s.range(target + 1..).map(|(b, _)| *b).collect();
            doomed.iter().filter_map(|b| s.remove(b)).collect()
        };
        self.delete_segments_async(&to_delete, &config)?;
        let active = self
            .active_segment()
            .ok_or_else(|| Error::Internal("no segment left".into()))?;
        if let Err(e) = active.truncate_to(target, config.index_bytes()) {
            return self.fail(e);
        }
        *self.leo.write().unwrap_or_else(|p| p.into_inner()) = LogOffsetMetadata {
            message_offset: target,
            segment_base_offset: active.base_offset(),
            relative_position_in_segment: active.size(),
        };
        self.rebuild_producer_state(&mut w, target)?;
        self.high_watermark.fetch_min(target, Ordering::AcqRel);
        self.recovery_point.fetch_min(target, Ordering::AcqRel);
        let ls = self.log_start_offset().min(target);
        self.log_start_offset.store(ls, Ordering::Release);
        Ok(true)
    }

    /// Deletes all segments and starts empty at `offset` (follower far behind / ahead).
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<()> {
        let config = self.config();
        let mut w = self.w();
        let all: Vec<Arc<LogSegment>> = std::mem::take(&mut *self.segs_mut())
            .into_values()
            .collect();
        self.delete_segments_async(&all, &config)?;
        w.epochs.clear()?;
        *self.leo.write().unwrap_or_else(|p| p.into_inner()) = LogOffsetMetadata {
            message_offset: offset,
            segment_base_offset: -1,
            relative_position_in_segment: 0,
        };
        self.roll_locked(&mut w, &config, Some(offset))?;
        w.producers.truncate_fully_and_start_at(offset)?;
        self.log_start_offset.store(offset, Ordering::Release);
        self.high_watermark.store(offset, Ordering::Release);
        self.recovery_point.store(offset, Ordering::Release);
        Ok(())
    }

    fn delete_segments_async(&self, segs: &[Arc<LogSegment>], config: &LogConfig) -> Result<()> {
        let due = now_ms().saturating_add(config.file_delete_delay_ms);
        for s in segs {
            if let Err(e) = s.change_file_suffixes("", DELETED_SUFFIX) {
                return self.fail(e);
            }
            self.deletes.push(due, s.clone());
        }
        Ok(())
    }

    /// Deletes queued `.deleted` segments whose delay has passed.
    pub fn run_pending_deletions(&self, now: i64) -> usize {
        self.deletes.run_due(now)
    }

    // ---------------------------------------------------------------- log start / retention

    /// DeleteRecords / follower catch-up: raise the log start offset (must be ≤ HW).
    pub fn maybe_increment_log_start_offset(&self, new_start: i64) -> Result<bool> {
        let mut w = self.w();
        self.increment_log_start_locked(&mut w, new_start, true)
    }

    fn increment_log_start_locked(
        &self,
        w: &mut WriterState,
        new_start: i64,
        check_hw: bool,
    ) -> Result<bool> {
        if check_hw && new_start > self.high_watermark() {
            return Err(Error::OffsetOutOfRange(format!(
                "Cannot increment the log start offset to {new_start} of partition {} since it is larger than the high watermark {}",
                self.tp,
                self.high_watermark()
            )));
        }
        if new_start <= self.log_start_offset() {
            return Ok(false);
        }
        self.log_start_offset.store(new_start, Ordering::Release);
        w.epochs.truncate_from_start(new_start)?;
        w.producers.on_log_start_offset_incremented(new_start);
        Ok(true)
    }

    /// One retention pass (Kafka `deleteOldSegments`): log-start breach always;
    /// `retention.ms` and `retention.bytes` when `cleanup.policy` has `delete`. Only
    /// segments wholly below the HW are candidates. Returns segments deleted.
    pub fn delete_old_segments(&self, now: i64) -> Result<usize> {
        let config = self.config();
        let mut n = 0;
        if config.delete {
            if config.retention_ms >= 0 {
                n += self.delete_segments_where(&config, |seg, _, _| {
                    now - seg.largest_timestamp() > config.retention_ms
                })?;
            }
            if let Some(limit) = config.retention_bytes_limit() {
                let size = self.size_bytes();
                if size >= limit {
                    let mut diff = size - limit;
                    n += self.delete_segments_where(&config, move |seg, _, _| {
                        if diff >= seg.size() {
                            diff -= seg.size();
                            true
                        } else {
                            false
                        }
                    })?;
                }
            }
        }
        let start = self.log_start_offset();
        n += self.delete_segments_where(&config, |_, next, _| next.is_some_and(|b| b <= start))?;
        Ok(n)
    }

    fn delete_segments_where(
        &self,
        config: &LogConfig,
        mut pred: impl FnMut(&LogSegment, Option<i64>, i64) -> bool,
    ) -> Result<usize> {
        let mut w = self.w();
        let hw = self.high_watermark();
        let leo = self.log_end_offset();
        let segs = self.segments();
        let mut doomed = Vec::new();
        for (i, seg) in segs.iter().enumerate() {
            let next = segs.get(i + 1).map(|s| s.base_offset());
            let last_and_empty = next.is_none() && seg.size() == 0;
            let upper = next.unwrap_or(leo);
            if hw >= upper && !last_and_empty && pred(seg, next, hw) {
                doomed.push(seg.clone());
            } else {
                break;
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        if doomed.len() == segs.len() {
            self.roll_locked(&mut w, config, None)?;
        }
        {
            let mut s = self.segs_mut();
            for d in &doomed {
                s.remove(&d.base_offset());
            }
        }
        self.delete_segments_async(&doomed, config)?;
        for d in &doomed {
            w.producers.remove_snapshot_of_segment(d.base_offset())?;
        }
        let first = self.segs().keys().next().copied().unwrap_or(leo);
        self.increment_log_start_locked(&mut w, first, false)?;
        Ok(doomed.len())
    }

    // ---------------------------------------------------------------- lifecycle

    /// Clean close: final time-index entries, trimmed indexes, producer snapshot at LEO,
    /// everything fsynced (the manager then writes checkpoints and the marker).
    pub fn close(&self) -> Result<()> {
        let mut w = self.w();
        let leo = self.log_end_offset();
        self.flush_locked(&mut w, leo)?;
        w.producers.take_snapshot()?;
        for s in self.segments() {
            if let Err(e) = s.close().and_then(|_| s.flush()) {
                return self.fail(e);
            }
        }
        self.recovery_point.fetch_max(leo, Ordering::AcqRel);
        Ok(())
    }

    /// Renames the partition dir (e.g. to `<tp>.<uuid>-delete`).
    /// Every file handle follows: segments and their indexes, the leader-epoch checkpoint
    /// and the producer snapshots (a moved replica keeps being written after its rename).
    pub fn rename_dir(&self, new_dir: &Path) -> Result<()> {
        let mut w = self.w();
        let old = self.dir();
        std::fs::rename(&old, new_dir)?;
        *self.dir.write().unwrap_or_else(|p| p.into_inner()) = new_dir.to_path_buf();
        for s in self.segments() {
            s.update_dir(new_dir);
        }
        w.epochs.set_dir(new_dir);
        w.producers.0.update_parent_dir(new_dir);
        Ok(())
    }
}

/// Reads `partition.metadata` (`version: 0\ntopic_id: <base64url>`).
pub fn read_partition_metadata(dir: &Path) -> Result<Option<Uuid>> {
    let path = dir.join(PARTITION_METADATA_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut version = None;
    let mut id = None;
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            match k.trim() {
                "version" => version = Some(v.trim().to_string()),
                "topic_id" => id = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    if version.as_deref() != Some("0") {
        return Err(Error::KafkaStorageError(format!(
            "unsupported partition.metadata version in {}",
            path.display()
        )));
    }
    let Some(id) = id else { return Ok(None) };
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id.as_bytes())
        .map_err(|e| {
            Error::KafkaStorageError(format!("bad topic id in {}: {e}", path.display()))
        })?;
    let arr: [u8; 16] = bytes
        .try_into()
        .map_err(|_| Error::KafkaStorageError("topic id is not 16 bytes".into()))?;
    Ok(Some(Uuid::from_bytes(arr)))
}

/// Writes `partition.metadata` atomically (tmp + fsync + rename).
pub fn write_partition_metadata(dir: &Path, id: Uuid) -> Result<()> {
    use base64::Engine;
    let text = format!(
        "version: 0\ntopic_id: {}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
    );
    let tmp = dir.join(format!("{PARTITION_METADATA_FILE}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(PARTITION_METADATA_FILE))?;
    Ok(())
}
