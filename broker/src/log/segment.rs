//! One log segment: `<base>.log` plus its `.index`, `.timeindex` (and optional `.txnindex`).
//!
//! File naming: the base offset zero-padded to 20 digits, e.g.
//! `00000000000000001234.log`. The `.log` holds record batches back to back exactly as
//! produced/replicated (see `batch.rs`). Index formats are documented in `offset_index.rs`
//! and `time_index.rs`. Suffixes `.deleted`, `.cleaned`, `.swap` mark files in transit
//! (see `manager.rs` for what startup does with them).
//!
//! Concurrency: appends and structural changes are serialized by the owning `Log`; reads
//! only need the committed size (an atomic) and a short lock on the indexes, so a fetch
//! never waits on another fetch's disk I/O.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::batch::{BatchHeader, HEADER_LEN, MAGIC_OFFSET};
use super::config::{CompressionCodec, LogConfig};
use super::offset_index::OffsetIndex;
use super::records::{
    check_batch_integrity, decompress, read_fully_at, FileBatchIter, FileSlice, RecordIter,
    ShallowBatch, HEADER_SIZE_UP_TO_MAGIC, MIN_SIZE_FIELD,
};
use super::time_index::{TimeIndex, TimestampOffset, NO_TIMESTAMP};
use super::txn_index::TxnIndex;

pub const LOG_SUFFIX: &str = ".log";
pub const INDEX_SUFFIX: &str = ".index";
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";
pub const TXN_INDEX_SUFFIX: &str = ".txnindex";
pub const DELETED_SUFFIX: &str = ".deleted";
pub const CLEANED_SUFFIX: &str = ".cleaned";
pub const SWAP_SUFFIX: &str = ".swap";

/// `<dir>/<offset padded to 20 digits><suffix>`.
pub fn file_name(dir: &Path, offset: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{offset:020}{suffix}"))
}

/// A position in the log: offset, the base offset of its segment and the byte position of
/// its batch inside that segment (Kafka `LogOffsetMetadata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOffsetMetadata {
    pub message_offset: i64,
    pub segment_base_offset: i64,
    pub relative_position_in_segment: u64,
}

impl LogOffsetMetadata {
    /// Offset-only metadata (unknown position).
    pub fn offset_only(offset: i64) -> Self {
        Self {
            message_offset: offset,
            segment_base_offset: -1,
            relative_position_in_segment: u64::MAX,
        }
    }
    pub fn message_offset_only(&self) -> bool {
        self.segment_base_offset < 0
    }
}

/// Where an offset's batch starts in a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPosition {
    pub last_offset: i64,
    pub position: u64,
    pub size: usize,
}

#[derive(Debug)]
struct SegState {
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_last_index_entry: usize,
    max_ts_so_far: Option<TimestampOffset>,
    rolling_based_timestamp: Option<i64>,
    log_path: PathBuf,
    created_ms: i64,
}

/// One segment of a partition log.
#[derive(Debug)]
pub struct LogSegment {
    base_offset: i64,
    file: Arc<File>,
    size: AtomicU64,
    state: Mutex<SegState>,
    txn_index: TxnIndex,
    roll_jitter_ms: i64,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl LogSegment {
    /// Opens or creates the segment files. `file_already_exists` opens the `.log` as is;
    /// otherwise it is created (preallocated to `segment.bytes` if `preallocate`).
    pub fn open(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        file_already_exists: bool,
        roll_jitter_ms: i64,
    ) -> io::Result<(Self, bool)> {
        let log_path = file_name(dir, base_offset, LOG_SUFFIX);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(!file_already_exists)
            .truncate(false)
            .open(&log_path)?;
        let mut size = file.metadata()?.len();
        if !file_already_exists && config.preallocate && size == 0 {
            file.set_len(config.segment_bytes as u64)?;
            size = 0;
        } else if file_already_exists && config.preallocate {
            size = preallocated_end(&file, size)?;
        }
        let max_index = config.index_bytes();
        let offset_index = OffsetIndex::open(
            &file_name(dir, base_offset, INDEX_SUFFIX),
            base_offset,
            max_index,
        )?;
        let (time_index, time_created) = TimeIndex::open(
            &file_name(dir, base_offset, TIME_INDEX_SUFFIX),
            base_offset,
            max_index,
        )?;
        let txn_index = TxnIndex::open(base_offset, file_name(dir, base_offset, TXN_INDEX_SUFFIX))?;
        let seg = Self {
            base_offset,
            file: Arc::new(file),
            size: AtomicU64::new(size),
            state: Mutex::new(SegState {
                offset_index,
                time_index,
                bytes_since_last_index_entry: 0,
                max_ts_so_far: None,
                rolling_based_timestamp: None,
                log_path,
                created_ms: now_ms(),
            }),
            txn_index,
            roll_jitter_ms,
        };
        Ok((seg, time_created))
    }

    fn st(&self) -> MutexGuard<'_, SegState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// Committed bytes in the `.log`.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
    pub fn log_path(&self) -> PathBuf {
        self.st().log_path.clone()
    }
    pub fn roll_jitter_ms(&self) -> i64 {
        self.roll_jitter_ms
    }
    pub fn offset_index_entries(&self) -> usize {
        self.st().offset_index.entries()
    }
    pub fn time_index_entries(&self) -> io::Result<Vec<TimestampOffset>> {
        self.st().time_index.entries_vec()
    }
    pub fn offset_index_entries_vec(&self) -> io::Result<Vec<super::offset_index::OffsetPosition>> {
        self.st().offset_index.entries_vec()
    }
    /// How many of the two index files are memory-mapped now (lazy maps; tests).
    pub fn mapped_indexes(&self) -> usize {
        let st = self.st();
        usize::from(st.offset_index.is_mapped()) + usize::from(st.time_index.is_mapped())
    }
    /// Unmaps the indexes not used for `idle` (the log manager's sweep); returns how many.
    pub fn unmap_idle_indexes(&self, idle: std::time::Duration) -> usize {
        let mut st = self.st();
        usize::from(st.offset_index.unmap_if_idle(idle))
            + usize::from(st.time_index.unmap_if_idle(idle))
    }

    /// Kafka's `sanityCheck` on load: missing offset index → `NotFound` (caller recovers);
    /// a newly created time index is shrunk to zero.
    pub fn sanity_check(
        &self,
        time_index_newly_created: bool,
        offset_index_existed: bool,
    ) -> io::Result<()> {
        let mut st = self.st();
        if !offset_index_existed {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "offset index missing",
            ));
        }
        if time_index_newly_created {
            st.time_index.resize(0)?;
        }
        st.offset_index
            .sanity_check()
            .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m))?;
        st.time_index
            .sanity_check()
            .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m))?;
        self.txn_index.sanity_check()
    }

    /// The segment's aborted-transaction index (file created on first entry).
    pub fn txn_index(&self) -> &TxnIndex {
        &self.txn_index
    }

    fn max_ts_so_far(&self, st: &mut SegState) -> TimestampOffset {
        if let Some(m) = st.max_ts_so_far {
            return m;
        }
        let m = st.time_index.last_entry();
        st.max_ts_so_far = Some(m);
        m
    }

    /// Largest batch max timestamp seen in this segment (or -1).
    pub fn max_timestamp_so_far(&self) -> i64 {
        let mut st = self.st();
        self.max_ts_so_far(&mut st).timestamp
    }

    /// Retention's notion of age: max timestamp, or the file mtime when there is none.
    pub fn largest_timestamp(&self) -> i64 {
        let ts = self.max_timestamp_so_far();
        if ts >= 0 {
            return ts;
        }
        self.last_modified_ms()
    }

    pub fn last_modified_ms(&self) -> i64 {
        self.file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    /// Appends complete batches at the end of the `.log` and adds index entries every
    /// `index.interval.bytes` (Kafka `LogSegment.append`).
    pub fn append(
        &self,
        largest_offset: i64,
        largest_timestamp: i64,
        offset_of_max_timestamp: i64,
        records: &[u8],
        index_interval_bytes: usize,
    ) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let pos = self.size();
        let mut st = self.st();
        if pos == 0 {
            st.rolling_based_timestamp = Some(largest_timestamp);
        }
        if largest_offset - self.base_offset > i32::MAX as i64 || largest_offset < self.base_offset
        {
            return Err(io::Error::other(format!(
                "offset {largest_offset} cannot be relative to segment base {}",
                self.base_offset
            )));
        }
        self.file.write_all_at(records, pos)?;
        let max_so_far = self.max_ts_so_far(&mut st);
        if largest_timestamp > max_so_far.timestamp {
            st.max_ts_so_far = Some(TimestampOffset {
                timestamp: largest_timestamp,
                offset: offset_of_max_timestamp,
            });
        }
        if st.bytes_since_last_index_entry > index_interval_bytes {
            st.offset_index.append(largest_offset, pos as u32)?;
            let m = self.max_ts_so_far(&mut st);
            st.time_index.maybe_append(m.timestamp, m.offset, false)?;
            st.bytes_since_last_index_entry = 0;
        }
        st.bytes_since_last_index_entry += records.len();
        self.size
            .store(pos + records.len() as u64, Ordering::Release);
        Ok(())
    }

    /// First batch whose last offset ≥ `offset`, scanning from the offset index's hint.
    pub fn translate_offset(&self, offset: i64) -> io::Result<Option<BatchPosition>> {
        let start = self.st().offset_index.lookup(offset)?.position as u64;
        self.search_from(offset, start, self.size())
    }

    fn search_from(&self, offset: i64, start: u64, end: u64) -> io::Result<Option<BatchPosition>> {
        let mut it = FileBatchIter::new(&self.file, start, end);
        while let Some((pos, b)) = it.next_batch()? {
            if b.last_offset >= offset {
                return Ok(Some(BatchPosition {
                    last_offset: b.last_offset,
                    position: pos,
                    size: b.size,
                }));
            }
        }
        Ok(None)
    }

    /// Kafka `LogSegment.read`: a slice starting at the batch holding `start_offset`, at most
    /// `max_size` bytes (or one whole batch with `min_one_message`), ending before
    /// `max_position`. `None` when `start_offset` is past this segment's data.
    pub fn read(
        &self,
        start_offset: i64,
        max_size: usize,
        max_position: u64,
        min_one_message: bool,
    ) -> io::Result<Option<(FileSlice, LogOffsetMetadata)>> {
        let Some(bp) = self.translate_offset(start_offset)? else {
            return Ok(None);
        };
        let meta = LogOffsetMetadata {
            message_offset: start_offset,
            segment_base_offset: self.base_offset,
            relative_position_in_segment: bp.position,
        };
        let adjusted = if min_one_message {
            max_size.max(bp.size)
        } else {
            max_size
        };
        if adjusted == 0 {
            return Ok(Some((
                FileSlice {
                    file: self.file.clone(),
                    position: bp.position,
                    len: 0,
                },
                meta,
            )));
        }
        let len = (max_position.saturating_sub(bp.position) as usize).min(adjusted);
        Ok(Some((
            FileSlice {
                file: self.file.clone(),
                position: bp.position,
                len,
            },
            meta,
        )))
    }

    /// Offset after the last batch (Kafka `readNextOffset`).
    pub fn read_next_offset(&self) -> io::Result<i64> {
        let (last_idx, start) = {
            let mut st = self.st();
            let last = st.offset_index.last_offset();
            (last, st.offset_index.lookup(last)?.position as u64)
        };
        let _ = last_idx;
        let mut it = FileBatchIter::new(&self.file, start, self.size());
        let mut next = self.base_offset;
        while let Some((_, b)) = it.next_batch()? {
            next = b.last_offset + 1;
        }
        Ok(next)
    }

    /// Rebuilds the indexes from the `.log`, validating every batch; truncates the file at
    /// the first invalid byte. `on_batch` sees each valid batch (epoch cache / producer
    /// state). Returns the number of bytes truncated (Kafka `LogSegment.recover`).
    pub fn recover(
        &self,
        index_interval_bytes: usize,
        max_index_size: usize,
        mut on_batch: impl FnMut(&[u8], &TxnIndex),
    ) -> io::Result<u64> {
        let mut st = self.st();
        st.offset_index.reset(max_index_size)?;
        st.time_index.reset(max_index_size)?;
        self.txn_index.reset()?;
        st.max_ts_so_far = Some(TimestampOffset {
            timestamp: NO_TIMESTAMP,
            offset: self.base_offset,
        });
        let end = self.file.metadata()?.len();
        let mut valid: u64 = 0;
        let mut last_index_entry: u64 = 0;
        let mut buf: Vec<u8> = vec![0; 4 << 20];
        let (mut buf_start, mut buf_len) = (0u64, 0usize);
        loop {
            if end.saturating_sub(valid) <= HEADER_SIZE_UP_TO_MAGIC as u64 {
                break;
            }
            // Make sure the header is buffered.
            if valid + HEADER_SIZE_UP_TO_MAGIC as u64 > buf_start + buf_len as u64 {
                buf_start = valid;
                buf_len = read_fully_at(&self.file, &mut buf, buf_start)?;
            }
            let off = (valid - buf_start) as usize;
            let h = &buf[off..buf_len.min(off + HEADER_SIZE_UP_TO_MAGIC)];
            if h.len() < HEADER_SIZE_UP_TO_MAGIC {
                break;
            }
            let size_field = i32::from_be_bytes([h[8], h[9], h[10], h[11]]);
            if size_field < MIN_SIZE_FIELD {
                break; // corrupt
            }
            let total = size_field as u64 + 12;
            if valid + total > end {
                break; // torn tail
            }
            if valid + total > buf_start + buf_len as u64 {
                if total as usize > buf.len() {
                    buf.resize(total as usize, 0);
                }
                buf_start = valid;
                buf_len = read_fully_at(&self.file, &mut buf, buf_start)?;
                if (buf_len as u64) < total {
                    break;
                }
            }
            let off = (valid - buf_start) as usize;
            let batch = &buf[off..off + total as usize];
            if check_batch_integrity(batch).is_err() {
                break;
            }
            let Some(sb) = super::records::shallow(batch) else {
                break;
            };
            if sb.last_offset < self.base_offset
                || sb.last_offset - self.base_offset > i32::MAX as i64
            {
                break;
            }
            let m = self.max_ts_so_far(&mut st);
            if sb.max_timestamp > m.timestamp {
                st.max_ts_so_far = Some(TimestampOffset {
                    timestamp: sb.max_timestamp,
                    offset: sb.last_offset,
                });
            }
            // A segment written under a larger `segment.index.bytes` can need more entries than
            // fit now: the index just gets sparser (lookups scan further), the load goes on.
            if valid - last_index_entry > index_interval_bytes as u64
                && !st.offset_index.is_full()
                && !st.time_index.is_full()
            {
                st.offset_index.append(sb.last_offset, valid as u32)?;
                let m = self.max_ts_so_far(&mut st);
                st.time_index.maybe_append(m.timestamp, m.offset, false)?;
                last_index_entry = valid;
            }
            valid += total;
            if sb.magic >= 2 {
                on_batch(batch, &self.txn_index);
            }
        }
        let truncated = end - valid;
        if truncated > 0 {
            self.file.set_len(valid)?;
        }
        self.size.store(valid, Ordering::Release);
        st.offset_index.trim_to_valid_size()?;
        let m = self.max_ts_so_far(&mut st);
        st.time_index.maybe_append(m.timestamp, m.offset, true)?;
        st.time_index.trim_to_valid_size()?;
        st.bytes_since_last_index_entry = (valid - last_index_entry) as usize;
        st.rolling_based_timestamp = None;
        Ok(truncated)
    }

    /// Calls `f` with every complete batch whose last offset is ≥ `start_offset`, in order
    /// (producer-state rebuilds, tools). Stops at a torn or corrupt tail.
    pub fn for_each_batch_from(
        &self,
        start_offset: i64,
        mut f: impl FnMut(&[u8]),
    ) -> io::Result<()> {
        let Some(bp) = self.translate_offset(start_offset)? else {
            return Ok(());
        };
        let end = self.size();
        let mut pos = bp.position;
        let mut buf = vec![0u8; 1 << 20];
        while pos < end {
            let n = read_fully_at(
                &self.file,
                &mut buf[..((end - pos) as usize).min(1 << 20)],
                pos,
            )?;
            if n == 0 {
                break;
            }
            let mut consumed = 0usize;
            for item in super::records::BatchIter::new(&buf[..n]) {
                let Ok((at, b)) = item else { return Ok(()) };
                f(b);
                consumed = at + b.len();
            }
            if consumed == 0 {
                // One batch bigger than the buffer: read it whole.
                let mut hdr = [0u8; 12];
                read_fully_at(&self.file, &mut hdr, pos)?;
                let size = i32::from_be_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]);
                if size < MIN_SIZE_FIELD {
                    return Ok(());
                }
                let total = size as usize + 12;
                if pos + total as u64 > end {
                    return Ok(());
                }
                let mut big = vec![0u8; total];
                read_fully_at(&self.file, &mut big, pos)?;
                f(&big);
                consumed = total;
            }
            pos += consumed as u64;
        }
        Ok(())
    }

    /// Drops everything at and above `offset` (Kafka `LogSegment.truncateTo`). Returns the
    /// bytes removed. The indexes are regrown since this segment becomes the active one.
    pub fn truncate_to(&self, offset: i64, max_index_size: usize) -> io::Result<u64> {
        let mapping = self.translate_offset(offset)?;
        let mut st = self.st();
        st.offset_index.truncate_to(offset)?;
        st.time_index.truncate_to(offset)?;
        self.txn_index.truncate_to(offset)?;
        st.offset_index.resize(max_index_size)?;
        st.time_index.resize(max_index_size)?;
        let size = self.size();
        let truncated = match mapping {
            None => 0,
            Some(bp) => {
                self.file.set_len(bp.position)?;
                self.size.store(bp.position, Ordering::Release);
                size - bp.position
            }
        };
        if self.size() == 0 {
            st.created_ms = now_ms();
            st.rolling_based_timestamp = None;
        }
        st.bytes_since_last_index_entry = 0;
        // Reload the largest timestamp from the time index plus a scan of the tail.
        let last = st.time_index.last_entry();
        let start = st.offset_index.lookup(last.offset)?.position as u64;
        let mut m = last;
        let mut it = FileBatchIter::new(&self.file, start, self.size());
        while let Some((_, b)) = it.next_batch()? {
            if b.max_timestamp > m.timestamp {
                m = TimestampOffset {
                    timestamp: b.max_timestamp,
                    offset: b.last_offset,
                };
            }
        }
        st.max_ts_so_far = Some(m);
        Ok(truncated)
    }

    /// Whether an append of `messages_size` bytes with these offsets/timestamps must go to
    /// a new segment (Kafka `shouldRoll`).
    pub fn should_roll(
        &self,
        config: &LogConfig,
        messages_size: usize,
        max_timestamp_in_messages: i64,
        max_offset_in_messages: i64,
        now: i64,
    ) -> io::Result<bool> {
        let size = self.size();
        let waited = self.time_waited_for_roll(now, max_timestamp_in_messages)?;
        let reached_roll_ms = waited > config.effective_segment_ms() - self.roll_jitter_ms;
        let st = self.st();
        Ok(
            size > (config.segment_bytes as u64).saturating_sub(messages_size as u64)
                || (size > 0 && reached_roll_ms)
                || st.offset_index.is_full()
                || st.time_index.is_full()
                || max_offset_in_messages - self.base_offset > i32::MAX as i64
                || max_offset_in_messages < self.base_offset,
        )
    }

    fn time_waited_for_roll(&self, now: i64, message_ts: i64) -> io::Result<i64> {
        let rolling = {
            let st = self.st();
            st.rolling_based_timestamp
        };
        let rolling = match rolling {
            Some(t) => Some(t),
            None if self.size() > 0 => {
                let mut hdr = [0u8; HEADER_LEN];
                let n = read_fully_at(&self.file, &mut hdr, 0)?;
                let ts = super::records::shallow(&hdr[..n]).map(|b| b.max_timestamp);
                self.st().rolling_based_timestamp = ts;
                ts
            }
            None => None,
        };
        Ok(match rolling {
            Some(t) if t >= 0 => message_ts - t,
            _ => now - self.st().created_ms,
        })
    }

    /// Called when a newer segment takes over: final time index entry, trim indexes to
    /// their entries and the `.log` to its data (if preallocated).
    pub fn on_become_inactive(&self) -> io::Result<()> {
        let mut st = self.st();
        let m = self.max_ts_so_far(&mut st);
        st.time_index.maybe_append(m.timestamp, m.offset, true)?;
        st.offset_index.trim_to_valid_size()?;
        st.time_index.trim_to_valid_size()?;
        let size = self.size();
        if self.file.metadata()?.len() != size {
            self.file.set_len(size)?;
        }
        Ok(())
    }

    /// Regrows the indexes (the active segment after load).
    pub fn resize_indexes(&self, max_index_size: usize) -> io::Result<()> {
        let mut st = self.st();
        st.offset_index.resize(max_index_size)?;
        st.time_index.resize(max_index_size)
    }

    /// Close: like becoming inactive (Kafka `close`).
    pub fn close(&self) -> io::Result<()> {
        self.on_become_inactive()
    }

    /// fsync the `.log` and the indexes.
    pub fn flush(&self) -> io::Result<()> {
        self.file.sync_data()?;
        let st = self.st();
        st.offset_index.flush()?;
        st.time_index.flush()?;
        self.txn_index.flush()
    }

    /// Renames every file of the segment from `old_suffix` to `new_suffix` appended after
    /// the base name (e.g. `""` → `".deleted"`).
    pub fn change_file_suffixes(&self, old_suffix: &str, new_suffix: &str) -> io::Result<()> {
        let mut st = self.st();
        let dir = st
            .log_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let b = self.base_offset;
        let to_log = file_name(&dir, b, &format!("{LOG_SUFFIX}{new_suffix}"));
        std::fs::rename(&st.log_path, &to_log)?;
        st.log_path = to_log;
        let to = file_name(&dir, b, &format!("{INDEX_SUFFIX}{new_suffix}"));
        st.offset_index.rename_to(&to)?;
        let to = file_name(&dir, b, &format!("{TIME_INDEX_SUFFIX}{new_suffix}"));
        st.time_index.rename_to(&to)?;
        let _ = old_suffix;
        self.txn_index.rename_to(&file_name(
            &dir,
            b,
            &format!("{TXN_INDEX_SUFFIX}{new_suffix}"),
        ))?;
        Ok(())
    }

    /// Updates the recorded directory after the partition dir was renamed.
    pub fn update_dir(&self, dir: &Path) {
        let mut st = self.st();
        let name = st.log_path.file_name().map(|n| n.to_os_string());
        if let Some(n) = name {
            st.log_path = dir.join(n);
        }
        let b = self.base_offset;
        st.offset_index
            .rename_path_only(file_name(dir, b, INDEX_SUFFIX));
        st.time_index
            .rename_path_only(file_name(dir, b, TIME_INDEX_SUFFIX));
        self.txn_index.update_parent_dir(dir);
    }

    /// Deletes all files of the segment (whatever suffix they currently carry).
    pub fn delete_files(&self) -> io::Result<()> {
        let mut st = self.st();
        match std::fs::remove_file(&st.log_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        st.offset_index.delete()?;
        st.time_index.delete()?;
        self.txn_index.delete_if_exists()?;
        Ok(())
    }

    /// First record with timestamp ≥ `ts` and offset ≥ `starting_offset`:
    /// `(timestamp, offset, leader epoch)` (Kafka `findOffsetByTimestamp`).
    pub fn find_offset_by_timestamp(
        &self,
        ts: i64,
        starting_offset: i64,
    ) -> io::Result<Option<(i64, i64, i32)>> {
        let position = {
            let mut st = self.st();
            let t = st.time_index.lookup(ts)?;
            st.offset_index
                .lookup(t.offset.max(starting_offset))?
                .position as u64
        };
        let mut it = FileBatchIter::new(&self.file, position, self.size());
        let mut scratch = Vec::new();
        while let Some((pos, b)) = it.next_batch()? {
            if b.max_timestamp < ts || b.last_offset < starting_offset {
                continue;
            }
            let mut bytes = vec![0u8; b.size];
            read_fully_at(&self.file, &mut bytes, pos)?;
            if let Some(hit) =
                first_record_at_or_after(&bytes, &b, ts, starting_offset, &mut scratch)
            {
                return Ok(Some(hit));
            }
        }
        Ok(None)
    }

    /// Offset of the batch holding the max timestamp, for ListOffsets `MAX_TIMESTAMP` (-3).
    pub fn max_timestamp_entry(&self) -> TimestampOffset {
        let mut st = self.st();
        self.max_ts_so_far(&mut st)
    }

    /// Offset of the first offset-index entry at or past byte `position` (Kafka
    /// `fetchUpperBoundOffset`, the aborted-txn upper bound of a read).
    pub fn fetch_upper_bound_offset(&self, position: u64) -> io::Result<Option<i64>> {
        let pos = u32::try_from(position).unwrap_or(u32::MAX);
        self.st().offset_index.fetch_upper_bound_by_position(pos)
    }
}

fn first_record_at_or_after(
    bytes: &[u8],
    b: &ShallowBatch,
    ts: i64,
    starting_offset: i64,
    scratch: &mut Vec<u8>,
) -> Option<(i64, i64, i32)> {
    if bytes[MAGIC_OFFSET] as i8 != 2 {
        // Legacy messages are their own batch.
        if b.max_timestamp >= ts && b.last_offset >= starting_offset {
            return Some((b.max_timestamp, b.last_offset, -1));
        }
        return None;
    }
    let h = BatchHeader::parse(bytes)?;
    let codec = CompressionCodec::from_id(h.compression())?;
    decompress(codec, &bytes[HEADER_LEN..], scratch).ok()?;
    for r in RecordIter::new(scratch, h.records_count).flatten() {
        let rts = if h.is_log_append_time() {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(r.timestamp_delta)
        };
        let off = h.base_offset + r.offset_delta as i64;
        if rts >= ts && off >= starting_offset {
            return Some((rts, off, h.partition_leader_epoch));
        }
    }
    None
}

/// End of data in a preallocated (zero-padded) segment file: the first position where no
/// batch starts.
fn preallocated_end(file: &File, len: u64) -> io::Result<u64> {
    let mut it = FileBatchIter::new(file, 0, len);
    let mut end = 0;
    while let Ok(Some((pos, b))) = it.next_batch() {
        end = pos + b.size as u64;
    }
    Ok(end)
}
