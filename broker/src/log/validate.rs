//! Leader-side batch validation and offset assignment (Kafka `LogValidator` +
//! `UnifiedLog.analyzeAndValidateRecords`).
//!
//! Common case (uncompressed magic-2 batch, uncompressed or `producer` topic codec): the
//! records are walked once without allocating (timestamps, keys, structure) and only
//! header fields are rewritten in place — baseOffset, partitionLeaderEpoch, and
//! maxTimestamp/attributes (with a CRC recompute only if those changed). Compressed batches
//! are decompressed for validation and kept as they are when the codec matches and inner
//! offsets are 0..n-1; otherwise (codec change, bad inner offsets, magic 0/1) a new magic-2
//! batch is built with the target codec.

use bytes::BytesMut;

use super::batch::{attr, BatchHeader, HEADER_LEN, MAGIC_OFFSET};
use super::config::{CompressionCodec, LogConfig, TimestampType, TopicCompression};
use super::records::{
    build_batch, check_batch_integrity, decompress, fix_crc, BatchIter, BatchMeta, FrameError,
    OwnedRecordRef, RecordIter,
};
use crate::error::{Error, RecordError, Result};

/// Who is appending: decides which checks apply (Kafka `AppendOrigin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOrigin {
    /// A producer via Produce: full validation.
    Client,
    /// The group / transaction coordinator writing its own records (and markers).
    Coordinator,
    /// A follower copying the leader's batches (offsets kept).
    Replication,
}

/// A decoded record: timestamp, key/value ranges in the arena, header count, headers range.
type DecodedRecord = (
    i64,
    Option<(usize, usize)>,
    Option<(usize, usize)>,
    i32,
    (usize, usize),
);

/// Result of leader validation.
#[derive(Debug)]
pub struct ValidationResult {
    /// The bytes to append (the input buffer when rewritten in place).
    pub records: BytesMut,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    /// Broker time when the topic uses LogAppendTime, else -1.
    pub log_append_time: i64,
    pub num_messages: i64,
    pub source_codec: CompressionCodec,
    pub target_codec: CompressionCodec,
    /// True when a new batch was built (its size must be rechecked).
    pub rebuilt: bool,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidRecord(msg.into())
}

/// Shallow checks for every appended batch (`analyzeAndValidateRecords`): framing, size
/// against `max.message.bytes` (unless `ignore_size`), CRC, client base offset. Returns the
/// number of bytes made of complete batches (a partial trailing batch is dropped) and the
/// last non-none source codec.
pub fn analyze(
    buf: &[u8],
    config: &LogConfig,
    origin: AppendOrigin,
    ignore_size: bool,
) -> Result<(usize, CompressionCodec, usize)> {
    let mut it = BatchIter::new(buf);
    let mut codec = CompressionCodec::None;
    let mut batches = 0;
    for item in &mut it {
        let (_, b) = item.map_err(|FrameError::Corrupt(m)| Error::CorruptMessage(m))?;
        let magic = b[MAGIC_OFFSET] as i8;
        if origin == AppendOrigin::Client && magic >= 2 {
            let base = i64::from_be_bytes(b[0..8].try_into().unwrap_or([0; 8]));
            if base != 0 {
                return Err(invalid(format!(
                    "The baseOffset of the record batch in the append should be 0, but it is {base}"
                )));
            }
        }
        if !ignore_size && b.len() > config.max_message_bytes as usize {
            return Err(Error::MessageTooLarge(format!(
                "The record batch size in the append is {} bytes which exceeds the maximum configured value of {}.",
                b.len(),
                config.max_message_bytes
            )));
        }
        check_batch_integrity(b).map_err(|m| {
            if b.len() < HEADER_LEN && magic >= 2 {
                invalid(m)
            } else {
                Error::CorruptMessage(m)
            }
        })?;
        let c = if magic >= 2 {
            i16::from_be_bytes([b[21], b[22]]) & attr::COMPRESSION_MASK
        } else {
            (b[17] & 0x07) as i16
        };
        let c = CompressionCodec::from_id(c)
            .ok_or_else(|| Error::CorruptMessage(format!("unknown compression codec {c}")))?;
        if c != CompressionCodec::None {
            codec = c;
        }
        batches += 1;
    }
    Ok((it.position(), codec, batches))
}

/// What [`check_record`] needs to know about one record.
struct RecordFacts {
    /// Offset as the producer numbered it (Kafka's `record.offset()` before assignment).
    offset: i64,
    timestamp: i64,
    key_len: Option<usize>,
    value_len: Option<usize>,
    batch_log_append: bool,
    /// Magic 0/1 input: how Kafka prints the record, and whether its magic differs from
    /// the shallow message's.
    legacy: Option<(LegacyInfo, i8)>,
}

/// Per-record checks shared by all paths (Kafka `LogValidator.validateRecord`). Returns
/// `Some((is_timestamp_error, message))`.
fn check_record(r: &RecordFacts, p: &ValidateParams<'_>) -> Option<(bool, String)> {
    let config = p.config;
    if let Some((info, outer_magic)) = &r.legacy {
        if info.magic != *outer_magic {
            return Some((
                false,
                format!(
                    "Record {}'s magic does not match outer magic {outer_magic} in topic partition {}",
                    info.describe(r),
                    p.topic_partition
                ),
            ));
        }
    }
    if config.compact && r.key_len.is_none() {
        return Some((
            false,
            format!(
                "Compacted topic cannot accept message without key in topic partition {}",
                p.topic_partition
            ),
        ));
    }
    let now = p.now_ms;
    if config.message_timestamp_type == TimestampType::CreateTime && r.timestamp != -1 {
        let diff = now.saturating_sub(r.timestamp);
        if diff > config.timestamp_before_max_ms()
            || diff.saturating_neg() > config.timestamp_after_max_ms()
        {
            return Some((
                true,
                format!(
                    "Timestamp {} of message with offset {} is out of range. The timestamp should be within [{}, {}]",
                    r.timestamp,
                    r.offset,
                    now.saturating_sub(config.timestamp_before_max_ms()),
                    now.saturating_add(config.timestamp_after_max_ms())
                ),
            ));
        }
    } else if r.batch_log_append {
        let record = match &r.legacy {
            Some((info, _)) => info.describe(r),
            None => format!(
                "DefaultRecord(offset={}, timestamp={}, key={} bytes, value={} bytes)",
                r.offset,
                r.timestamp,
                r.key_len.unwrap_or(0),
                r.value_len.unwrap_or(0)
            ),
        };
        return Some((
            true,
            format!(
                "Invalid timestamp type in message {record}. Producer should not set timestamp type to LogAppendTime."
            ),
        ));
    }
    None
}

/// Record errors collected over one batch; like Kafka's `processRecordErrors`, the whole
/// append fails after the batch if any record failed, listing every failed record.
#[derive(Default)]
struct BatchErrors(Vec<(bool, RecordError)>);

impl BatchErrors {
    fn record(&mut self, batch_index: usize, e: Option<(bool, String)>) {
        if let Some((is_ts, message)) = e {
            self.0.push((
                is_ts,
                RecordError {
                    batch_index: batch_index as i32,
                    message: Some(message),
                },
            ));
        }
    }

    fn end_of_batch(&mut self) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let errs = std::mem::take(&mut self.0);
        let invalid_timestamp = errs.iter().any(|e| e.0);
        let record_errors: Vec<RecordError> = errs.into_iter().map(|e| e.1).collect();
        let message = if invalid_timestamp {
            "One or more records have been rejected due to invalid timestamp".to_string()
        } else {
            let shown: Vec<String> = record_errors
                .iter()
                .take(3)
                .map(|e| {
                    format!(
                        "RecordError(batchIndex={}, message='{}')",
                        e.batch_index,
                        e.message.as_deref().unwrap_or("")
                    )
                })
                .collect();
            format!(
                "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                record_errors.len(),
                shown.join(", ")
            )
        };
        Err(Error::RecordValidation {
            invalid_timestamp,
            message,
            record_errors,
        })
    }
}

fn validate_batch_header(h: &BatchHeader, origin: AppendOrigin) -> Result<()> {
    if origin == AppendOrigin::Client {
        let count_from_offsets = h.last_offset_delta as i64 + 1;
        if count_from_offsets <= 0 {
            return Err(invalid("Batch has an invalid offset range"));
        }
        if h.records_count <= 0 {
            return Err(invalid("Batch has an invalid record count"));
        }
        if count_from_offsets != h.records_count as i64 {
            return Err(invalid(format!(
                "Inconsistent batch offset range [{}, {}] and count of records {}",
                h.base_offset,
                h.last_offset(),
                h.records_count
            )));
        }
        if h.is_control() {
            return Err(invalid("Clients are not allowed to write control records"));
        }
        if h.has_producer_id() && h.base_sequence < 0 {
            return Err(invalid(format!(
                "Invalid sequence number {} in record batch with producerId {}",
                h.base_sequence, h.producer_id
            )));
        }
    }
    Ok(())
}

/// Input to [`validate_and_assign_offsets`].
pub struct ValidateParams<'a> {
    pub config: &'a LogConfig,
    pub now_ms: i64,
    /// First offset to assign (the log end offset).
    pub next_offset: i64,
    pub leader_epoch: i32,
    pub origin: AppendOrigin,
    /// `topic-partition`, for error messages (formatted only when a record fails).
    pub topic_partition: &'a dyn std::fmt::Display,
}

/// Validates leader appends and assigns offsets (see module docs).
pub fn validate_and_assign_offsets(
    mut buf: BytesMut,
    source_codec: CompressionCodec,
    p: &ValidateParams<'_>,
) -> Result<ValidationResult> {
    let target_codec = match p.config.compression_type {
        TopicCompression::Producer => source_codec,
        TopicCompression::Codec(c) => c,
    };
    let all_v2 = BatchIter::new(&buf)
        .flatten()
        .all(|(_, b)| b[MAGIC_OFFSET] as i8 == 2);
    if source_codec == CompressionCodec::None && target_codec == CompressionCodec::None && all_v2 {
        return assign_in_place_uncompressed(buf, p, target_codec);
    }
    // Compressed or converting path: decode every record, decide in-place vs rebuild.
    let mut in_place = source_codec == target_codec && all_v2;
    let mut scratch = Vec::new();
    let mut recs: Vec<DecodedRecord> = Vec::new();
    // All decompressed record bytes go in one arena so records can borrow ranges of it.
    let mut arena: Vec<u8> = Vec::new();
    let mut max_timestamp = -1i64;
    let mut first_meta: Option<BatchMeta> = None;
    let mut nbatches = 0usize;
    let mut first_magic: Option<i8> = None;
    for item in BatchIter::new(&buf) {
        let (_, b) = item.map_err(|FrameError::Corrupt(m)| Error::CorruptMessage(m))?;
        nbatches += 1;
        let magic = b[MAGIC_OFFSET] as i8;
        let first = *first_magic.get_or_insert(magic);
        if magic != first {
            return Err(invalid(format!(
                "Batch magic {magic} is not the same as the first batch's magic byte {first} in topic partition {}",
                p.topic_partition
            )));
        }
        if magic == 2 {
            let h = BatchHeader::parse(b).ok_or_else(|| invalid("short batch"))?;
            validate_batch_header(&h, p.origin)?;
            let codec = CompressionCodec::from_id(h.compression())
                .ok_or_else(|| Error::CorruptMessage("unknown codec".into()))?;
            if first_meta.is_none() {
                first_meta = Some(BatchMeta {
                    producer_id: h.producer_id,
                    producer_epoch: h.producer_epoch,
                    base_sequence: h.base_sequence,
                    transactional: h.is_transactional(),
                    control: h.is_control(),
                    log_append_time: false,
                    partition_leader_epoch: p.leader_epoch,
                });
            }
            max_timestamp = max_timestamp.max(h.max_timestamp);
            decompress(codec, &b[HEADER_LEN..], &mut scratch)
                .map_err(|e| invalid(format!("failed to decompress batch: {e}")))?;
            let base_in_arena = arena.len();
            arena.extend_from_slice(&scratch);
            let section = &arena[base_in_arena..];
            let mut it = RecordIter::new(section, h.records_count);
            let mut errors = BatchErrors::default();
            for (expected_inner, r) in (&mut it).enumerate() {
                let r = r.map_err(invalid)?;
                let ts = if h.is_log_append_time() {
                    h.max_timestamp
                } else {
                    h.base_timestamp.wrapping_add(r.timestamp_delta)
                };
                max_timestamp = max_timestamp.max(ts);
                if r.offset_delta as i64 != expected_inner as i64 {
                    in_place = false;
                }
                let facts = RecordFacts {
                    offset: h.base_offset.wrapping_add(r.offset_delta as i64),
                    timestamp: ts,
                    key_len: r.key.map(<[u8]>::len),
                    value_len: r.value.map(<[u8]>::len),
                    batch_log_append: h.is_log_append_time(),
                    legacy: None,
                };
                errors.record(expected_inner, check_record(&facts, p));
                let off = |s: &[u8]| {
                    let start = s.as_ptr() as usize - section.as_ptr() as usize + base_in_arena;
                    (start, s.len())
                };
                recs.push((
                    ts,
                    r.key.map(off),
                    r.value.map(off),
                    r.header_count,
                    if r.headers_raw.is_empty() {
                        (0, 0)
                    } else {
                        off(r.headers_raw)
                    },
                ));
            }
            if !it.finished_cleanly() {
                return Err(invalid(
                    "Incorrect declared batch size or record count in compressed batch",
                ));
            }
            errors.end_of_batch()?;
        } else {
            in_place = false;
            if p.origin == AppendOrigin::Client && first_meta.is_none() {
                first_meta = Some(BatchMeta {
                    producer_id: -1,
                    producer_epoch: -1,
                    base_sequence: -1,
                    transactional: false,
                    control: false,
                    log_append_time: false,
                    partition_leader_epoch: p.leader_epoch,
                });
            }
            if first_meta.is_none() {
                first_meta = Some(BatchMeta {
                    producer_id: -1,
                    producer_epoch: -1,
                    base_sequence: -1,
                    transactional: false,
                    control: false,
                    log_append_time: false,
                    partition_leader_epoch: p.leader_epoch,
                });
            }
            let start = arena.len();
            let mut infos = Vec::new();
            legacy_records(b, &mut arena, &mut infos)?;
            // Kafka treats each shallow message as a batch: an uncompressed one holds one
            // record (batch index 0), a compressed wrapper its inner messages (0..n). The
            // wrapper's (or message's) timestamp type is the batch's.
            let batch_log_append = magic == 1 && b[17] & 0x08 != 0;
            // Records were appended to `arena` as (ts, key, value) triples; re-walk them.
            let mut q = start;
            let mut errors = BatchErrors::default();
            let mut batch_index = 0usize;
            while q < arena.len() {
                let (ts, key, value, next) = read_arena_legacy(&arena, q)?;
                if magic > 0 {
                    max_timestamp = max_timestamp.max(ts);
                }
                let info = infos
                    .get(batch_index)
                    .copied()
                    .ok_or_else(|| Error::Internal("legacy record info".into()))?;
                let facts = RecordFacts {
                    offset: info.offset,
                    timestamp: ts,
                    key_len: key.map(|k| k.1),
                    value_len: value.map(|v| v.1),
                    batch_log_append,
                    legacy: Some((info, magic)),
                };
                errors.record(batch_index, check_record(&facts, p));
                recs.push((ts, key, value, 0, (0, 0)));
                batch_index += 1;
                q = next;
            }
            errors.end_of_batch()?;
        }
    }
    let meta = first_meta.ok_or_else(|| invalid("no record batch in the append"))?;
    let log_append = p.config.message_timestamp_type == TimestampType::LogAppendTime;
    if in_place {
        if nbatches != 1 {
            return Err(invalid("Compressed outer record has more than one batch"));
        }
        let n = recs.len() as i64;
        let last = p.next_offset + n - 1;
        let max_ts = if log_append { p.now_ms } else { max_timestamp };
        rewrite_header(&mut buf[..], last, p.leader_epoch, max_ts, log_append);
        return Ok(ValidationResult {
            records: buf,
            first_offset: p.next_offset,
            last_offset: last,
            max_timestamp: max_ts,
            offset_of_max_timestamp: last,
            log_append_time: if log_append { p.now_ms } else { -1 },
            num_messages: n,
            source_codec,
            target_codec,
            rebuilt: false,
        });
    }
    let refs: Vec<OwnedRecordRef<'_>> = recs
        .iter()
        .map(|&(ts, k, v, hc, h)| OwnedRecordRef {
            timestamp: ts,
            key: k.map(|(s, l)| &arena[s..s + l]),
            value: v.map(|(s, l)| &arena[s..s + l]),
            header_count: hc,
            headers_raw: &arena[h.0..h.0 + h.1],
        })
        .collect();
    let mut meta = meta;
    meta.log_append_time = log_append;
    meta.partition_leader_epoch = p.leader_epoch;
    let level = match target_codec {
        CompressionCodec::Gzip => Some(p.config.compression_gzip_level),
        CompressionCodec::Lz4 => Some(p.config.compression_lz4_level),
        CompressionCodec::Zstd => Some(p.config.compression_zstd_level),
        _ => None,
    };
    let mut out = Vec::new();
    build_batch(
        &mut out,
        p.next_offset,
        &meta,
        &refs,
        target_codec,
        level,
        log_append.then_some(p.now_ms),
    )
    .map_err(|e| Error::Internal(format!("failed to build batch: {e}")))?;
    let n = refs.len() as i64;
    let last = p.next_offset + n - 1;
    let max_ts = if log_append {
        p.now_ms
    } else {
        refs.iter().map(|r| r.timestamp).max().unwrap_or(-1)
    };
    Ok(ValidationResult {
        records: BytesMut::from(&out[..]),
        first_offset: p.next_offset,
        last_offset: last,
        max_timestamp: max_ts,
        offset_of_max_timestamp: last,
        log_append_time: if log_append { p.now_ms } else { -1 },
        num_messages: n,
        source_codec,
        target_codec,
        rebuilt: true,
    })
}

/// Sets lastOffset (via baseOffset), leader epoch and max timestamp / type of one v2 batch.
fn rewrite_header(b: &mut [u8], last_offset: i64, epoch: i32, max_ts: i64, log_append: bool) {
    let delta = i32::from_be_bytes([b[23], b[24], b[25], b[26]]) as i64;
    b[0..8].copy_from_slice(&(last_offset - delta).to_be_bytes());
    b[12..16].copy_from_slice(&epoch.to_be_bytes());
    let attrs = i16::from_be_bytes([b[21], b[22]]);
    let new_attrs = if log_append {
        attrs | attr::TIMESTAMP_TYPE_LOG_APPEND
    } else {
        attrs & !attr::TIMESTAMP_TYPE_LOG_APPEND
    };
    let cur_ts = i64::from_be_bytes(b[35..43].try_into().unwrap_or([0; 8]));
    if new_attrs != attrs || cur_ts != max_ts {
        b[21..23].copy_from_slice(&new_attrs.to_be_bytes());
        b[35..43].copy_from_slice(&max_ts.to_be_bytes());
        fix_crc(b);
    }
}

fn assign_in_place_uncompressed(
    mut buf: BytesMut,
    p: &ValidateParams<'_>,
    codec: CompressionCodec,
) -> Result<ValidationResult> {
    let log_append = p.config.message_timestamp_type == TimestampType::LogAppendTime;
    let mut next = p.next_offset;
    let mut max_timestamp = -1i64;
    let mut offset_of_max = -1i64;
    let mut pos = 0usize;
    let total = buf.len();
    while pos < total {
        let size = i32::from_be_bytes([buf[pos + 8], buf[pos + 9], buf[pos + 10], buf[pos + 11]])
            as usize
            + 12;
        let b = &mut buf[pos..pos + size];
        let h = BatchHeader::parse(b).ok_or_else(|| invalid("short batch"))?;
        validate_batch_header(&h, p.origin)?;
        let mut batch_max = -1i64;
        let mut it = RecordIter::new(&b[HEADER_LEN..], h.records_count);
        let mut count = 0i64;
        let mut errors = BatchErrors::default();
        for r in &mut it {
            let r = r.map_err(invalid)?;
            let ts = if h.is_log_append_time() {
                h.max_timestamp
            } else {
                h.base_timestamp.wrapping_add(r.timestamp_delta)
            };
            let facts = RecordFacts {
                offset: h.base_offset.wrapping_add(r.offset_delta as i64),
                timestamp: ts,
                key_len: r.key.map(<[u8]>::len),
                value_len: r.value.map(<[u8]>::len),
                batch_log_append: h.is_log_append_time(),
                legacy: None,
            };
            errors.record(count as usize, check_record(&facts, p));
            batch_max = batch_max.max(ts);
            count += 1;
        }
        if !it.finished_cleanly() {
            return Err(invalid(
                "Incorrect declared batch size, records still remaining in file",
            ));
        }
        errors.end_of_batch()?;
        let last = next + count - 1;
        if batch_max > max_timestamp {
            max_timestamp = batch_max;
            offset_of_max = last;
        }
        let stamp = if log_append { p.now_ms } else { batch_max };
        rewrite_header(b, last, p.leader_epoch, stamp, log_append);
        next = last + 1;
        pos += size;
    }
    if log_append {
        max_timestamp = p.now_ms;
        offset_of_max = next - 1;
    }
    Ok(ValidationResult {
        records: buf,
        first_offset: p.next_offset,
        last_offset: next - 1,
        max_timestamp,
        offset_of_max_timestamp: offset_of_max,
        log_append_time: if log_append { p.now_ms } else { -1 },
        num_messages: next - p.next_offset,
        source_codec: codec,
        target_codec: codec,
        rebuilt: false,
    })
}

/// What Kafka knows of one magic 0/1 record besides its key, value and timestamp.
#[derive(Clone, Copy, Debug)]
struct LegacyInfo {
    /// Kafka's `record.offset()`: the message's own offset, or for an inner message of a
    /// magic-1 wrapper the absolute offset derived from the wrapper's.
    offset: i64,
    magic: i8,
    attributes: u8,
    crc: u32,
    /// Timestamp type as Kafka names it (an inner magic-1 message takes its wrapper's).
    timestamp_type: &'static str,
}

impl LegacyInfo {
    /// Kafka's `LegacyRecordBatch.toString` (used in record error messages).
    fn describe(&self, r: &RecordFacts) -> String {
        let codec = match self.attributes & 0x07 {
            0 => "NONE",
            1 => "GZIP",
            2 => "SNAPPY",
            3 => "LZ4",
            4 => "ZSTD",
            _ => "UNKNOWN",
        };
        let (key, value) = (r.key_len.unwrap_or(0), r.value_len.unwrap_or(0));
        let record = if self.magic > 0 {
            format!(
                "Record(magic={}, attributes={}, compression={codec}, crc={}, {}={}, key={key} bytes, value={value} bytes)",
                self.magic, self.attributes, self.crc, self.timestamp_type, r.timestamp
            )
        } else {
            format!(
                "Record(magic={}, attributes={}, compression={codec}, crc={}, key={key} bytes, value={value} bytes)",
                self.magic, self.attributes, self.crc
            )
        };
        format!("LegacyRecordBatch(offset={}, {record})", self.offset)
    }
}

fn legacy_timestamp_type(magic: i8, attrs: u8) -> &'static str {
    match (magic, attrs & 0x08 != 0) {
        (0, _) => "NoTimestampType",
        (_, true) => "LogAppendTime",
        (_, false) => "CreateTime",
    }
}

// Legacy (magic 0/1) parsing into the arena as: ts i64, key len i32 (-1 null), key,
// value len i32, value; one `LegacyInfo` per record in `infos`. Compressed wrappers are
// expanded (Kafka's legacy deep iterator, with its errors).
fn legacy_records(msg: &[u8], arena: &mut Vec<u8>, infos: &mut Vec<LegacyInfo>) -> Result<()> {
    let bad = || invalid("invalid legacy message");
    let offset = i64::from_be_bytes(
        msg.get(0..8)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    let crc = u32::from_be_bytes(
        msg.get(12..16)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    let magic = msg[16] as i8;
    let attrs = msg[17];
    let mut p = 18;
    let ts = if magic == 1 {
        let t = i64::from_be_bytes(
            msg.get(18..26)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        p = 26;
        t
    } else {
        -1
    };
    let read_blob = |p: &mut usize| -> Result<Option<&[u8]>> {
        let l = i32::from_be_bytes(
            msg.get(*p..*p + 4)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        *p += 4;
        if l < 0 {
            return Ok(None);
        }
        let s = msg.get(*p..*p + l as usize).ok_or_else(bad)?;
        *p += l as usize;
        Ok(Some(s))
    };
    let key = read_blob(&mut p)?;
    let value = read_blob(&mut p)?;
    let codec = CompressionCodec::from_id((attrs & 0x07) as i16).ok_or_else(bad)?;
    if codec == CompressionCodec::None {
        push_arena(arena, ts, key, value);
        infos.push(LegacyInfo {
            offset,
            magic,
            attributes: attrs,
            crc,
            timestamp_type: legacy_timestamp_type(magic, attrs),
        });
        return Ok(());
    }
    let inner_src = value.ok_or_else(|| {
        invalid(format!(
            "Found invalid compressed record set with null value (magic = {magic})"
        ))
    })?;
    let mut inner = Vec::new();
    decompress(codec, inner_src, &mut inner).map_err(|e| invalid(format!("decompress: {e}")))?;
    let wrapper_log_append = magic == 1 && attrs & 0x08 != 0;
    let first_info = infos.len();
    for item in BatchIter::new(&inner) {
        let (_, m) = item.map_err(|FrameError::Corrupt(m)| Error::CorruptMessage(m))?;
        if m.get(17).copied().unwrap_or(0) & 0x07 != 0 {
            return Err(invalid("Inner messages must not be compressed"));
        }
        check_batch_integrity(m).map_err(Error::CorruptMessage)?;
        let start = arena.len();
        legacy_records(m, arena, infos)?;
        if let Some(info) = infos.last_mut() {
            // An inner magic-1 message reads the wrapper's timestamp type (and, for
            // LogAppendTime, its timestamp).
            if info.magic == 1 {
                info.timestamp_type = legacy_timestamp_type(magic, attrs);
                if wrapper_log_append {
                    arena[start..start + 8].copy_from_slice(&ts.to_be_bytes());
                }
            }
        }
    }
    let Some(last_inner) = infos.get(first_info..).and_then(<[LegacyInfo]>::last) else {
        return Err(invalid(
            "Found invalid compressed record set with no inner records",
        ));
    };
    if magic == 1 {
        // Inner offsets are relative to the wrapper's (last) offset; some librdkafka
        // versions send wrapper offset 0.
        let base = if offset == 0 {
            0
        } else if offset < last_inner.offset {
            return Err(invalid(format!(
                "Found invalid wrapper offset in compressed v1 message set, wrapper offset '{offset}' is less than the last inner message offset '{}' and it is not zero.",
                last_inner.offset
            )));
        } else {
            offset - last_inner.offset
        };
        for info in &mut infos[first_info..] {
            info.offset += base;
        }
    }
    Ok(())
}

fn push_arena(arena: &mut Vec<u8>, ts: i64, key: Option<&[u8]>, value: Option<&[u8]>) {
    arena.extend_from_slice(&ts.to_be_bytes());
    for blob in [key, value] {
        match blob {
            Some(b) => {
                arena.extend_from_slice(&(b.len() as i32).to_be_bytes());
                arena.extend_from_slice(b);
            }
            None => arena.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
}

type Range = Option<(usize, usize)>;

fn read_arena_legacy(arena: &[u8], mut q: usize) -> Result<(i64, Range, Range, usize)> {
    let bad = || Error::Internal("legacy arena".into());
    let ts = i64::from_be_bytes(
        arena
            .get(q..q + 8)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    );
    q += 8;
    let blob = |q: &mut usize| -> Result<Range> {
        let l = i32::from_be_bytes(
            arena
                .get(*q..*q + 4)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        *q += 4;
        if l < 0 {
            return Ok(None);
        }
        let r = (*q, l as usize);
        *q += l as usize;
        Ok(Some(r))
    };
    let k = blob(&mut q)?;
    let v = blob(&mut q)?;
    Ok((ts, k, v, q))
}
