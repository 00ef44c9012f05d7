//! Down-conversion of stored batches for Fetch v0-v3 consumers (Kafka `RecordsUtil.downConvert`
//! as driven by `LazyDownConversionRecords`).
//!
//! Fetch v0/v1 clients read only magic 0 message sets and v2/v3 clients only magic 0/1, while
//! the log holds magic 2 batches. Each stored batch becomes legacy messages:
//! `offset i64, size i32, crc u32 (CRC-32 of magic..end), magic i8, attributes i8,
//! [timestamp i64 at magic 1], key bytes (i32 length, -1 = null), value bytes`.
//!
//! * Uncompressed batches become one message per record, with absolute offsets; records
//!   before the fetch offset are dropped (Kafka does this only for uncompressed batches).
//! * Compressed batches become one wrapper message, compressed with the same codec, whose
//!   value is the inner message set. Inner offsets are relative (0..n-1) at magic 1 and
//!   absolute at magic 0; the wrapper's offset is the last inner offset and its timestamp
//!   the largest inner timestamp (or the log-append time). At magic 0 the LZ4 frame carries
//!   Kafka's historical header checksum (computed over the frame magic too), as Kafka's
//!   `Lz4BlockOutputStream` writes it for magic 0.
//! * Headers are dropped (magic 0/1 cannot carry them); control batches are skipped; zstd
//!   batches cannot be expressed at magic 0/1 (UNSUPPORTED_COMPRESSION_TYPE).
//! * Batches already at or below the target magic are copied as they are.
//!
//! This path copies the records through memory; it is not zero-copy.

use super::batch::{BatchHeader, HEADER_LEN, MAGIC_OFFSET};
use super::config::CompressionCodec;
use super::records::{compress, decompress, BatchIter, FrameError, RecordIter};

/// Why a partition's data could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownConvertError {
    /// A zstd batch (magic 0/1 has no zstd): Kafka answers UNSUPPORTED_COMPRESSION_TYPE.
    UnsupportedCompression,
    /// The stored bytes did not parse.
    Corrupt(String),
}

/// One record to write as a legacy message.
struct LegacyRecord<'a> {
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

/// Attribute bit for LogAppendTime in legacy (magic 1) messages.
const LEGACY_LOG_APPEND_TIME: u8 = 0x08;

/// Kafka's `Records.LOG_OVERHEAD`: an overflow message is at least its offset and size.
const MIN_OVERFLOW_LEN: usize = 12;
/// Kafka's `LazyDownConversionRecordsSend.MAX_READ_SIZE`: stored bytes converted per chunk (and
/// the most one overflow message covers).
const MAX_READ_SIZE: usize = 128 * 1024;
/// Kafka's `DefaultRecordBatch.RECORD_BATCH_OVERHEAD`: the least size an overflow message claims.
const RECORD_BATCH_OVERHEAD: usize = 61;

/// The records of one partition as Kafka's `LazyDownConversionRecords` /
/// `LazyDownConversionRecordsSend` answer them: `raw` (the stored bytes read, maybe ending in a
/// partial batch) converted to `to_magic` (0 or 1) for a fetch at `fetch_offset`.
///
/// The answer is exactly `max(raw.len(), size of the first converted batch)` bytes, so a
/// consumer always gets at least one whole converted batch however much records grow:
/// converted messages cut at that size (a trailing partial message, which clients ignore), or,
/// when the converted data is shorter, padded with overflow messages (offset -1, a size past
/// the end). If no batch converts to anything (control batches only) the answer is one 12-byte
/// overflow message. After the first converted batch the rest is converted in chunks of up to
/// 128 KiB of stored data; a chunk holding a zstd batch is replaced by overflow padding, so the
/// client reads up to it and then gets UNSUPPORTED_COMPRESSION_TYPE when it fetches from there.
/// A zstd batch before anything converts fails the partition.
pub fn down_convert(
    raw: &[u8],
    to_magic: i8,
    fetch_offset: i64,
) -> Result<Vec<u8>, DownConvertError> {
    let mut batches = Vec::new();
    for item in BatchIter::new(raw) {
        let (_, batch) = item.map_err(|FrameError::Corrupt(m)| DownConvertError::Corrupt(m))?;
        batches.push(batch);
    }
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    let mut scratch = Vec::new();
    // Kafka converts the first batch with something to send up front, to size the answer.
    let mut first = None;
    for (i, batch) in batches.iter().enumerate() {
        let mut converted = Vec::new();
        convert_batch(batch, to_magic, fetch_offset, &mut scratch, &mut converted)?;
        if !converted.is_empty() {
            first = Some((i, converted));
            break;
        }
    }
    let Some((first_index, mut out)) = first else {
        // Nothing to send but stored batches were read: an overflow message alone, which tells
        // an old consumer the data did not fit.
        let mut out = Vec::with_capacity(MIN_OVERFLOW_LEN);
        pad_with_overflow(&mut out, MIN_OVERFLOW_LEN);
        return Ok(out);
    };
    let size = raw.len().max(out.len());
    out.reserve(size.saturating_sub(out.len()));
    // Kafka re-reads the batches after the first one only (a converted batch preceded by
    // empty ones, e.g. a control batch, would be sent twice there); each batch is sent once here.
    let mut rest = &batches[first_index + 1..];
    while out.len() < size && !rest.is_empty() {
        let mut n = 1;
        let mut stored = rest[0].len();
        while n < rest.len() && stored + rest[n].len() <= MAX_READ_SIZE {
            stored += rest[n].len();
            n += 1;
        }
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let mut converted = Vec::new();
        let ok = chunk.iter().all(|batch| {
            convert_batch(batch, to_magic, fetch_offset, &mut scratch, &mut converted).is_ok()
        });
        if !ok {
            // The whole chunk is lost to the overflow padding, as in Kafka.
            break;
        }
        out.extend_from_slice(&converted);
    }
    if out.len() < size {
        let remaining = size - out.len();
        pad_with_overflow(&mut out, remaining);
    }
    out.truncate(size);
    Ok(out)
}

/// Kafka's `buildOverflowBatch`, repeated until `remaining` bytes are written: offset -1 and a
/// size one past the remaining bytes (at least a batch header), then zeros, each message cut
/// at 128 KiB and at the end of the answer.
fn pad_with_overflow(out: &mut Vec<u8>, mut remaining: usize) {
    while remaining > 0 {
        let len = MIN_OVERFLOW_LEN.max((remaining + 1).min(MAX_READ_SIZE));
        let claimed = (remaining + 1)
            .max(RECORD_BATCH_OVERHEAD)
            .min(i32::MAX as usize) as i32;
        let mut message = vec![0u8; len];
        message[..8].copy_from_slice(&(-1i64).to_be_bytes());
        message[8..12].copy_from_slice(&claimed.to_be_bytes());
        let n = len.min(remaining);
        out.extend_from_slice(&message[..n]);
        remaining -= n;
    }
}

fn convert_batch(
    batch: &[u8],
    to_magic: i8,
    fetch_offset: i64,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), DownConvertError> {
    let magic = batch[MAGIC_OFFSET] as i8;
    if magic <= to_magic {
        out.extend_from_slice(batch);
        return Ok(());
    }
    if magic == 1 {
        return convert_legacy_v1(batch, fetch_offset, scratch, out);
    }
    let h = BatchHeader::parse(batch)
        .ok_or_else(|| DownConvertError::Corrupt("short record batch".into()))?;
    if h.is_control() {
        return Ok(());
    }
    let codec = CompressionCodec::from_id(h.compression())
        .ok_or_else(|| DownConvertError::Corrupt(format!("unknown codec {}", h.compression())))?;
    if codec == CompressionCodec::Zstd {
        return Err(DownConvertError::UnsupportedCompression);
    }
    decompress(codec, &batch[HEADER_LEN..], scratch)
        .map_err(|e| DownConvertError::Corrupt(format!("decompress: {e}")))?;
    let log_append = h.is_log_append_time();
    // The count comes from the batch: bound the reservation by the bytes that hold the records.
    let mut records = Vec::with_capacity((h.records_count.max(0) as usize).min(scratch.len()));
    for r in RecordIter::new(scratch, h.records_count) {
        let r = r.map_err(DownConvertError::Corrupt)?;
        let offset = h.base_offset.wrapping_add(r.offset_delta as i64);
        if codec == CompressionCodec::None && offset < fetch_offset {
            continue;
        }
        records.push(LegacyRecord {
            offset,
            timestamp: if log_append {
                h.max_timestamp
            } else {
                h.base_timestamp.wrapping_add(r.timestamp_delta)
            },
            key: r.key,
            value: r.value,
        });
    }
    let log_append_time = log_append.then_some(h.max_timestamp);
    write_legacy(out, to_magic, codec, log_append_time, &records)
}

/// A magic 1 message (plain or compressed wrapper) rewritten at magic 0.
fn convert_legacy_v1(
    msg: &[u8],
    fetch_offset: i64,
    scratch: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), DownConvertError> {
    let wrapper = parse_legacy(msg)?;
    let codec = CompressionCodec::from_id((wrapper.attributes & 0x07) as i16)
        .ok_or_else(|| DownConvertError::Corrupt("unknown legacy codec".into()))?;
    if codec == CompressionCodec::None {
        if wrapper.offset < fetch_offset {
            return Ok(());
        }
        let r = LegacyRecord {
            offset: wrapper.offset,
            timestamp: wrapper.timestamp,
            key: wrapper.key,
            value: wrapper.value,
        };
        return write_legacy(out, 0, codec, None, &[r]);
    }
    if codec == CompressionCodec::Zstd {
        return Err(DownConvertError::UnsupportedCompression);
    }
    let value = wrapper
        .value
        .ok_or_else(|| DownConvertError::Corrupt("compressed wrapper without value".into()))?;
    decompress(codec, value, scratch)
        .map_err(|e| DownConvertError::Corrupt(format!("decompress: {e}")))?;
    let mut inner = Vec::new();
    for item in BatchIter::new(scratch) {
        let (_, m) = item.map_err(|FrameError::Corrupt(m)| DownConvertError::Corrupt(m))?;
        inner.push(parse_legacy(m)?);
    }
    // Magic 1 inner offsets are relative; the wrapper carries the last absolute offset.
    let last_relative = inner.last().map_or(0, |m| m.offset);
    let base = wrapper.offset.wrapping_sub(last_relative);
    let records: Vec<LegacyRecord<'_>> = inner
        .iter()
        .map(|m| LegacyRecord {
            offset: base.wrapping_add(m.offset),
            timestamp: m.timestamp,
            key: m.key,
            value: m.value,
        })
        .collect();
    write_legacy(out, 0, codec, None, &records)
}

struct LegacyMessage<'a> {
    offset: i64,
    attributes: u8,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

fn parse_legacy(msg: &[u8]) -> Result<LegacyMessage<'_>, DownConvertError> {
    let bad = || DownConvertError::Corrupt("invalid legacy message".into());
    let i64_at =
        |p: usize| -> Option<i64> { Some(i64::from_be_bytes(msg.get(p..p + 8)?.try_into().ok()?)) };
    let offset = i64_at(0).ok_or_else(bad)?;
    let magic = *msg.get(MAGIC_OFFSET).ok_or_else(bad)? as i8;
    let attributes = *msg.get(17).ok_or_else(bad)?;
    let (timestamp, mut p) = if magic == 1 {
        (i64_at(18).ok_or_else(bad)?, 26)
    } else {
        (-1, 18)
    };
    let mut blob = || -> Result<Option<&[u8]>, DownConvertError> {
        let len = i32::from_be_bytes(
            msg.get(p..p + 4)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        p += 4;
        if len < 0 {
            return Ok(None);
        }
        let s = msg.get(p..p + len as usize).ok_or_else(bad)?;
        p += len as usize;
        Ok(Some(s))
    };
    let key = blob()?;
    let value = blob()?;
    Ok(LegacyMessage {
        offset,
        attributes,
        timestamp,
        key,
        value,
    })
}

/// Writes `records` as magic `magic` messages: one per record when uncompressed, else one
/// wrapper holding them all compressed with `codec`.
fn write_legacy(
    out: &mut Vec<u8>,
    magic: i8,
    codec: CompressionCodec,
    log_append_time: Option<i64>,
    records: &[LegacyRecord<'_>],
) -> Result<(), DownConvertError> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(());
    };
    let ts_bit = if magic >= 1 && log_append_time.is_some() {
        LEGACY_LOG_APPEND_TIME
    } else {
        0
    };
    let stamp = |r: &LegacyRecord<'_>| log_append_time.unwrap_or(r.timestamp);
    if codec == CompressionCodec::None {
        for r in records {
            write_message(out, r.offset, magic, ts_bit, stamp(r), r.key, r.value);
        }
        return Ok(());
    }
    let mut inner = Vec::new();
    for r in records {
        let offset = if magic >= 1 {
            r.offset.wrapping_sub(first.offset)
        } else {
            r.offset
        };
        write_message(&mut inner, offset, magic, ts_bit, stamp(r), r.key, r.value);
    }
    let mut compressed = Vec::new();
    compress(codec, &inner, None, &mut compressed)
        .map_err(|e| DownConvertError::Corrupt(format!("compress: {e}")))?;
    if codec == CompressionCodec::Lz4 && magic == 0 {
        kafka_v0_lz4_header_checksum(&mut compressed);
    }
    let wrapper_ts =
        log_append_time.unwrap_or_else(|| records.iter().map(|r| r.timestamp).max().unwrap_or(-1));
    write_message(
        out,
        last.offset,
        magic,
        codec.id() as u8 | ts_bit,
        wrapper_ts,
        None,
        Some(&compressed),
    );
    Ok(())
}

/// Appends one legacy message (offset, size, crc, magic, attributes, [timestamp], key, value).
fn write_message(
    out: &mut Vec<u8>,
    offset: i64,
    magic: i8,
    attributes: u8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    out.extend_from_slice(&offset.to_be_bytes());
    let size_at = out.len();
    out.extend_from_slice(&[0; 8]); // size and crc, patched below
    let crc_from = out.len();
    out.push(magic as u8);
    out.push(attributes);
    if magic >= 1 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    for blob in [key, value] {
        match blob {
            Some(b) => {
                out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                out.extend_from_slice(b);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    let size = (out.len() - size_at - 4) as i32;
    out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    let crc = crc32fast::hash(&out[crc_from..]);
    out[size_at + 4..size_at + 8].copy_from_slice(&crc.to_be_bytes());
}

/// Rewrites the LZ4 frame-descriptor checksum the way Kafka writes it for magic 0
/// (KAFKA-3160): XXH32 over the frame magic *and* the descriptor, instead of the
/// descriptor alone. Frames written here have no content size, so the checksum is byte 6.
fn kafka_v0_lz4_header_checksum(frame: &mut [u8]) {
    if frame.len() < 7 || frame[4] & 0x08 != 0 {
        return;
    }
    frame[6] = (xxh32(&frame[..6], 0) >> 8) as u8;
}

/// XXH32 of a short input (< 16 bytes, the only use here).
fn xxh32(data: &[u8], seed: u32) -> u32 {
    const P1: u32 = 2_654_435_761;
    const P2: u32 = 2_246_822_519;
    const P3: u32 = 3_266_489_917;
    const P4: u32 = 668_265_263;
    const P5: u32 = 374_761_393;
    debug_assert!(data.len() < 16);
    let mut h = seed.wrapping_add(P5).wrapping_add(data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        h = h
            .wrapping_add(w.wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &b in chunks.remainder() {
        h = h
            .wrapping_add((b as u32).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::records::{build_batch, BatchMeta, OwnedRecordRef};

    const META: BatchMeta = BatchMeta {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
        control: false,
        log_append_time: false,
        partition_leader_epoch: 0,
    };

    /// A magic-2 batch at `base` with `n` records: key `k{i}` (none for i = 1), value
    /// `v{i}`, one header, timestamps 1000 + i.
    fn v2_batch(base: i64, n: usize, codec: CompressionCodec, meta: BatchMeta) -> Vec<u8> {
        let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
        let values: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
        let mut header = Vec::new();
        crate::log::records::write_varint(&mut header, 1);
        header.push(b'h');
        crate::log::records::write_varint(&mut header, 1);
        header.push(b'x');
        let recs: Vec<OwnedRecordRef<'_>> = (0..n)
            .map(|i| OwnedRecordRef {
                timestamp: 1000 + i as i64,
                key: (i != 1).then(|| keys[i].as_bytes()),
                value: Some(values[i].as_bytes()),
                header_count: 1,
                headers_raw: &header,
            })
            .collect();
        let mut out = Vec::new();
        let lat = meta.log_append_time.then_some(5555);
        build_batch(&mut out, base, &meta, &recs, codec, None, lat).expect("build");
        out
    }

    /// (offset, timestamp, key, value, attributes) of every message, expanding wrappers.
    type Msg = (i64, i64, Option<Vec<u8>>, Option<Vec<u8>>, u8);

    /// Parses legacy messages independently of the converter: checks size, magic and CRC.
    fn parse_all(buf: &[u8], magic: i8) -> Vec<Msg> {
        let mut out = Vec::new();
        let mut p = 0;
        while p < buf.len() {
            let offset = i64::from_be_bytes(buf[p..p + 8].try_into().expect("test"));
            let size = i32::from_be_bytes(buf[p + 8..p + 12].try_into().expect("test")) as usize;
            let m = &buf[p + 12..p + 12 + size];
            let crc = u32::from_be_bytes(m[0..4].try_into().expect("test"));
            assert_eq!(crc, crc32fast::hash(&m[4..]), "crc at {offset}");
            assert_eq!(m[4] as i8, magic);
            let attrs = m[5];
            let mut q = 6;
            let ts = if magic == 1 {
                q = 14;
                i64::from_be_bytes(m[6..14].try_into().expect("test"))
            } else {
                -1
            };
            let mut blob = || {
                let l = i32::from_be_bytes(m[q..q + 4].try_into().expect("test"));
                q += 4;
                if l < 0 {
                    return None;
                }
                let b = m[q..q + l as usize].to_vec();
                q += l as usize;
                Some(b)
            };
            let key = blob();
            let value = blob();
            assert_eq!(q, m.len(), "message size");
            let codec = CompressionCodec::from_id((attrs & 7) as i16).expect("test");
            if codec == CompressionCodec::None {
                out.push((offset, ts, key, value, attrs));
            } else {
                assert!(key.is_none());
                let mut inner = Vec::new();
                let mut data = value.expect("test");
                if codec == CompressionCodec::Lz4 && magic == 0 {
                    // Undo Kafka's v0 header checksum so a standard decoder accepts it.
                    let fixed = (xxh32(&data[4..6], 0) >> 8) as u8;
                    assert_eq!(data[6], (xxh32(&data[..6], 0) >> 8) as u8);
                    data[6] = fixed;
                }
                decompress(codec, &data, &mut inner).expect("test");
                let msgs = parse_all(&inner, magic);
                let last_inner = msgs.last().expect("test").0;
                let max_inner = msgs.iter().map(|m| m.1).max().expect("test");
                if magic == 1 && attrs & 0x08 == 0 {
                    assert_eq!(ts, max_inner, "wrapper timestamp is the max");
                }
                for (o, t, k, v, a) in msgs {
                    assert_eq!(a & 7, 0, "inner messages are uncompressed");
                    let abs = if magic == 1 {
                        offset - last_inner + o
                    } else {
                        o
                    };
                    out.push((abs, t, k, v, a));
                }
                if magic == 0 {
                    assert_eq!(
                        offset,
                        out.last().expect("test").0,
                        "v0 wrapper offset is the last"
                    );
                }
            }
            p += 12 + size;
        }
        out
    }

    #[test]
    fn every_codec_to_magic_0_and_1() {
        let codecs = [
            CompressionCodec::None,
            CompressionCodec::Gzip,
            CompressionCodec::Snappy,
            CompressionCodec::Lz4,
        ];
        for codec in codecs {
            let mut raw = v2_batch(10, 3, codec, META);
            raw.extend_from_slice(&v2_batch(13, 2, codec, META));
            for magic in [0i8, 1] {
                let out = convert_all(&raw, magic, 10).expect("convert");
                let msgs = parse_all(&out, magic);
                let offsets: Vec<i64> = msgs.iter().map(|m| m.0).collect();
                assert_eq!(offsets, vec![10, 11, 12, 13, 14], "{codec:?} m{magic}");
                for (i, m) in msgs.iter().enumerate() {
                    let j = if i < 3 { i } else { i - 3 };
                    let want_ts = if magic == 1 { 1000 + j as i64 } else { -1 };
                    assert_eq!(m.1, want_ts);
                    assert_eq!(m.2, (j != 1).then(|| format!("k{j}").into_bytes()));
                    assert_eq!(m.3, Some(format!("v{j}").into_bytes()));
                }
                // One wrapper per source batch when compressed, one message per record else.
                let outer = BatchIter::new(&out).count();
                let want = if codec == CompressionCodec::None {
                    5
                } else {
                    2
                };
                assert_eq!(outer, want, "{codec:?} m{magic}");
                let attrs = out[17];
                assert_eq!((attrs & 7) as i16, codec.id());
            }
        }
    }

    #[test]
    fn uncompressed_skips_records_before_fetch_offset_compressed_keeps_them() {
        let raw = v2_batch(10, 3, CompressionCodec::None, META);
        let msgs = parse_all(&convert_all(&raw, 1, 11).expect("test"), 1);
        assert_eq!(msgs.iter().map(|m| m.0).collect::<Vec<_>>(), vec![11, 12]);
        let raw = v2_batch(10, 3, CompressionCodec::Gzip, META);
        let msgs = parse_all(&convert_all(&raw, 1, 11).expect("test"), 1);
        assert_eq!(
            msgs.iter().map(|m| m.0).collect::<Vec<_>>(),
            vec![10, 11, 12]
        );
    }

    #[test]
    fn log_append_time_sets_attribute_and_timestamps() {
        let meta = BatchMeta {
            log_append_time: true,
            ..META
        };
        for codec in [CompressionCodec::None, CompressionCodec::Gzip] {
            let raw = v2_batch(0, 2, codec, meta);
            let out = convert_all(&raw, 1, 0).expect("test");
            assert_eq!(out[17] & 0x08, 0x08);
            let msgs = parse_all(&out, 1);
            assert!(
                msgs.iter().all(|m| m.1 == 5555 && m.4 & 0x08 == 0x08),
                "{msgs:?}"
            );
            // Magic 0 has no timestamp and no timestamp-type bit.
            let out = convert_all(&raw, 0, 0).expect("test");
            assert_eq!(out[17] & 0x08, 0);
        }
    }

    #[test]
    fn control_skipped_zstd_refused_partial_tail_ignored() {
        let control = BatchMeta {
            control: true,
            transactional: true,
            producer_id: 5,
            producer_epoch: 0,
            ..META
        };
        let mut raw = v2_batch(0, 1, CompressionCodec::None, control);
        raw.extend_from_slice(&v2_batch(1, 2, CompressionCodec::None, META));
        let partial = v2_batch(3, 2, CompressionCodec::None, META);
        raw.extend_from_slice(&partial[..partial.len() - 5]);
        let msgs = parse_all(&convert_all(&raw, 1, 0).expect("test"), 1);
        assert_eq!(msgs.iter().map(|m| m.0).collect::<Vec<_>>(), vec![1, 2]);

        let z = v2_batch(0, 2, CompressionCodec::Zstd, META);
        assert_eq!(
            convert_all(&z, 1, 0),
            Err(DownConvertError::UnsupportedCompression)
        );
        // A zstd batch after a convertible one ends the answer instead.
        let mut mixed = v2_batch(0, 1, CompressionCodec::None, META);
        mixed.extend_from_slice(&v2_batch(1, 1, CompressionCodec::Zstd, META));
        let msgs = parse_all(&convert_all(&mixed, 1, 0).expect("test"), 1);
        assert_eq!(msgs.len(), 1);
        assert_eq!(convert_all(&[], 1, 0), Ok(Vec::new()));
    }

    /// Every complete batch converted, without Kafka's sizing: stops at a batch it cannot
    /// convert unless that is the first.
    fn convert_all(
        raw: &[u8],
        to_magic: i8,
        fetch_offset: i64,
    ) -> Result<Vec<u8>, DownConvertError> {
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        for item in BatchIter::new(raw) {
            let (_, batch) = item.map_err(|FrameError::Corrupt(m)| DownConvertError::Corrupt(m))?;
            match convert_batch(batch, to_magic, fetch_offset, &mut scratch, &mut out) {
                Ok(()) => {}
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(out)
    }

    /// The whole legacy messages at the start of `buf`, as a client reads them (it stops at a
    /// message that runs past the end).
    fn whole_prefix(buf: &[u8]) -> &[u8] {
        let mut p = 0;
        while p + 12 <= buf.len() {
            let size = i32::from_be_bytes(buf[p + 8..p + 12].try_into().expect("test"));
            let end = p + 12 + size.max(0) as usize;
            if size < 0 || end > buf.len() {
                break;
            }
            p = end;
        }
        &buf[..p]
    }

    /// Kafka's overflow padding of `n` bytes (for `n` up to 128 KiB - 1).
    fn overflow(n: usize) -> Vec<u8> {
        let mut m = vec![0u8; n.max(12)];
        m[..8].copy_from_slice(&(-1i64).to_be_bytes());
        m[8..12].copy_from_slice(&((n + 1).max(61) as i32).to_be_bytes());
        m.truncate(n);
        m
    }

    #[test]
    fn answer_is_the_stored_size_or_the_first_converted_batch() {
        // Tiny records grow at magic 1 (no varints): the first batch is sent whole.
        let raw = v2_batch(0, 50, CompressionCodec::None, META);
        let out = down_convert(&raw, 1, 0).expect("test");
        assert!(out.len() > raw.len());
        assert_eq!(out, convert_all(&raw, 1, 0).expect("test"));
        // With more batches the answer is the stored size, cut inside a converted batch: the
        // client gets every whole message that fits, then a partial one it ignores.
        let mut raw = Vec::new();
        for i in 0..4 {
            raw.extend_from_slice(&v2_batch(i * 50, 50, CompressionCodec::None, META));
        }
        let all = convert_all(&raw, 1, 0).expect("test");
        assert!(all.len() > raw.len());
        let out = down_convert(&raw, 1, 0).expect("test");
        assert_eq!(out.len(), raw.len());
        assert_eq!(out[..], all[..raw.len()]);
        let whole = parse_all(whole_prefix(&out), 1);
        // More than the first batch: messages of a stored batch that only partly fits count.
        assert!(
            whole.len() > 50 && !whole.len().is_multiple_of(50),
            "{}",
            whole.len()
        );
        // A partial stored batch at the end counts in the size but is not converted.
        let mut partial = raw.clone();
        partial.extend_from_slice(&v2_batch(200, 5, CompressionCodec::None, META)[..30]);
        let out = down_convert(&partial, 1, 0).expect("test");
        assert_eq!(out.len(), partial.len());
        assert_eq!(out[..], all[..partial.len()]);
        // Only a partial batch: nothing.
        assert_eq!(down_convert(&partial[raw.len()..], 1, 0), Ok(Vec::new()));
    }

    #[test]
    fn shorter_conversions_are_padded_with_an_overflow_message() {
        // Fetching the last record of an uncompressed batch drops the others: one message,
        // then overflow padding up to the stored size.
        let raw = v2_batch(0, 50, CompressionCodec::None, META);
        let out = down_convert(&raw, 0, 49).expect("test");
        let one = convert_all(&raw, 0, 49).expect("test");
        assert_eq!(parse_all(&one, 0).len(), 1);
        assert_eq!(out.len(), raw.len());
        assert_eq!(out[..one.len()], one[..]);
        assert_eq!(out[one.len()..], overflow(raw.len() - one.len())[..]);
        assert_eq!(
            whole_prefix(&out),
            &one[..],
            "the client ignores the padding"
        );
        // A small remainder still claims a batch header's size.
        let mut pad = Vec::new();
        pad_with_overflow(&mut pad, 20);
        assert_eq!(pad, overflow(20));
        assert_eq!(&pad[8..12], &61i32.to_be_bytes());
        // Past 128 KiB the padding is a run of overflow messages, the first claiming it all.
        let mut pad = Vec::new();
        pad_with_overflow(&mut pad, 200_000);
        assert_eq!(pad.len(), 200_000);
        assert_eq!(&pad[8..12], &200_001i32.to_be_bytes());
        let second = 128 * 1024;
        assert_eq!(&pad[second..second + 8], &(-1i64).to_be_bytes());
        assert_eq!(
            &pad[second + 8..second + 12],
            &((200_000 - second + 1) as i32).to_be_bytes()
        );
    }

    #[test]
    fn control_only_reads_answer_one_overflow_message() {
        let control = BatchMeta {
            control: true,
            transactional: true,
            producer_id: 5,
            producer_epoch: 0,
            ..META
        };
        let raw = v2_batch(0, 1, CompressionCodec::None, control);
        let out = down_convert(&raw, 1, 0).expect("test");
        let mut want = (-1i64).to_be_bytes().to_vec();
        want.extend_from_slice(&61i32.to_be_bytes());
        assert_eq!(out, want);
        // A control batch before data: the data is sent (once).
        let mut raw = raw.clone();
        raw.extend_from_slice(&v2_batch(1, 2, CompressionCodec::Gzip, META));
        let out = down_convert(&raw, 1, 0).expect("test");
        let data = convert_all(&raw, 1, 0).expect("test");
        assert_eq!(parse_all(whole_prefix(&out), 1).len(), 2);
        assert_eq!(whole_prefix(&out), &data[..]);
    }

    #[test]
    fn zstd_after_the_first_batch_loses_its_chunk_to_padding() {
        let mut raw = v2_batch(0, 1, CompressionCodec::None, META);
        let first = convert_all(&raw, 1, 0).expect("test");
        raw.extend_from_slice(&v2_batch(1, 1, CompressionCodec::None, META));
        raw.extend_from_slice(&v2_batch(2, 1, CompressionCodec::Zstd, META));
        let out = down_convert(&raw, 1, 0).expect("test");
        assert_eq!(out.len(), raw.len());
        // Offset 1 shares the chunk with the zstd batch: only offset 0 is sent.
        assert_eq!(whole_prefix(&out), &first[..]);
        assert_eq!(out[first.len()..], overflow(raw.len() - first.len())[..]);
        // First in line: the partition fails.
        let z = v2_batch(0, 2, CompressionCodec::Zstd, META);
        assert_eq!(
            down_convert(&z, 1, 0),
            Err(DownConvertError::UnsupportedCompression)
        );
    }

    #[test]
    fn magic_1_messages_convert_to_magic_0_and_lower_magic_is_copied() {
        let raw = v2_batch(7, 3, CompressionCodec::Gzip, META);
        let m1 = convert_all(&raw, 1, 0).expect("test");
        // Already magic 1: copied as is when magic 1 is allowed.
        assert_eq!(convert_all(&m1, 1, 0).expect("test"), m1);
        let m0 = convert_all(&m1, 0, 0).expect("test");
        let msgs = parse_all(&m0, 0);
        assert_eq!(msgs.iter().map(|m| m.0).collect::<Vec<_>>(), vec![7, 8, 9]);
        assert_eq!(msgs[2].3.as_deref(), Some(&b"v2"[..]));
        let plain = convert_all(&v2_batch(7, 2, CompressionCodec::None, META), 1, 0).expect("test");
        let msgs = parse_all(&convert_all(&plain, 0, 8).expect("test"), 0);
        assert_eq!(msgs.iter().map(|m| m.0).collect::<Vec<_>>(), vec![8]);
    }

    #[test]
    fn xxh32_matches_the_lz4_frame_checksum() {
        let mut out = Vec::new();
        compress(CompressionCodec::Lz4, b"hello hello hello", None, &mut out).expect("test");
        assert_eq!(out[6], (xxh32(&out[4..6], 0) >> 8) as u8);
        // Reference values of XXH32 (seed 0).
        assert_eq!(xxh32(b"", 0), 0x02CC_5D05);
        assert_eq!(xxh32(b"a", 0), 0x550D_7456);
        assert_eq!(xxh32(b"abc", 0), 0x32D1_53FF);
    }
}
