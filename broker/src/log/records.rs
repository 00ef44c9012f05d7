//! Record-level helpers: file slices handed to `sendfile`, batch framing over byte buffers
//! and files, varint record parsing, codecs, and a batch builder for rebuilt batches.
//!
//! Formats: see `batch.rs` (v2 header) and the storage spec §2.3 (records: zigzag varints;
//! `length, attributes i8, timestampDelta varlong, offsetDelta varint, key, value,
//! headers`). Legacy magic 0/1 messages: `offset i64, size i32, crc u32 (CRC-32 over
//! magic..end), magic i8, attributes i8, [timestamp i64 if v1], key bytes, value bytes`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use super::batch::{BatchHeader, CRC_START, HEADER_LEN, LOG_OVERHEAD, MAGIC_OFFSET};
use super::config::CompressionCodec;

/// A byte range of a segment file, sent to the socket with `sendfile` (zero copy).
#[derive(Clone, Debug)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
}

impl FileSlice {
    /// Copies the slice into memory (tests, down-conversion, tools; not the fetch path).
    pub fn read_to_vec(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len];
        let n = read_fully_at(&self.file, &mut buf, self.position)?;
        buf.truncate(n);
        Ok(buf)
    }
}

/// `pread` until `buf` is full or EOF; returns bytes read.
pub fn read_fully_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], pos + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Smallest legal value of the batch size field (Kafka's `RECORD_OVERHEAD_V0`).
pub const MIN_SIZE_FIELD: i32 = 14;
/// Bytes needed to read offset, size and magic (Kafka's `HEADER_SIZE_UP_TO_MAGIC`).
pub const HEADER_SIZE_UP_TO_MAGIC: usize = 17;

/// The shallow view of one batch (any magic) needed by the log: its offsets, size and
/// timestamps. For magic 0/1 the "batch" is one (possibly compressed wrapper) message and
/// its offset field is the last offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShallowBatch {
    pub magic: i8,
    pub base_offset: i64,
    pub last_offset: i64,
    pub size: usize,
    pub max_timestamp: i64,
    pub partition_leader_epoch: i32,
}

/// Framing problems found while walking batches.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Size field below 14: Kafka's `CorruptRecordException`.
    Corrupt(String),
}

/// Walks batches in an in-memory buffer. Stops (returns `None`) at a partial trailing batch.
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    /// Bytes consumed by complete batches so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for BatchIter<'a> {
    /// `(start position, batch bytes)` or a framing error.
    type Item = Result<(usize, &'a [u8]), FrameError>;
    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.buf[self.pos..];
        if rest.len() < HEADER_SIZE_UP_TO_MAGIC {
            return None;
        }
        let size = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        if size < MIN_SIZE_FIELD {
            return Some(Err(FrameError::Corrupt(format!(
                "record size {size} is less than the minimum record overhead (14)"
            ))));
        }
        let total = size as usize + LOG_OVERHEAD;
        if rest.len() < total {
            return None;
        }
        let start = self.pos;
        self.pos += total;
        Some(Ok((start, &rest[..total])))
    }
}

/// Shallow view of a complete batch's bytes (any magic). `None` if too short for its magic.
pub fn shallow(bytes: &[u8]) -> Option<ShallowBatch> {
    if bytes.len() < HEADER_SIZE_UP_TO_MAGIC {
        return None;
    }
    let magic = bytes[MAGIC_OFFSET] as i8;
    if magic >= 2 {
        let h = BatchHeader::parse(bytes)?;
        Some(ShallowBatch {
            magic,
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            size: bytes.len(),
            max_timestamp: h.max_timestamp,
            partition_leader_epoch: h.partition_leader_epoch,
        })
    } else {
        let off = i64::from_be_bytes(bytes[0..8].try_into().ok()?);
        let ts = if magic == 1 && bytes.len() >= 26 {
            i64::from_be_bytes(bytes[18..26].try_into().ok()?)
        } else {
            -1
        };
        Some(ShallowBatch {
            magic,
            base_offset: off,
            last_offset: off,
            size: bytes.len(),
            max_timestamp: ts,
            partition_leader_epoch: -1,
        })
    }
}

/// Kafka's `ensureValid` for a complete batch as stored: size ≥ 61 and CRC-32C for magic 2;
/// CRC-32 for legacy messages.
pub fn check_batch_integrity(bytes: &[u8]) -> Result<(), String> {
    let magic = bytes.get(MAGIC_OFFSET).copied().unwrap_or(0) as i8;
    if magic >= 2 {
        if magic > 2 {
            return Err(format!("unknown magic {magic}"));
        }
        if bytes.len() < HEADER_LEN {
            return Err(format!(
                "record batch is only {} bytes, below the 61-byte header",
                bytes.len()
            ));
        }
        let stored = u32::from_be_bytes([bytes[17], bytes[18], bytes[19], bytes[20]]);
        let computed = crc32c::crc32c(&bytes[CRC_START..]);
        if stored != computed {
            return Err(format!(
                "record batch is corrupt (stored crc = {stored}, computed crc = {computed})"
            ));
        }
        Ok(())
    } else {
        // offset(8) size(4) crc(4) magic(1) attributes(1) [ts(8)] key(4+) value(4+)
        let min = if magic == 1 { 34 } else { 26 };
        if bytes.len() < min {
            return Err("legacy message too short".into());
        }
        let stored = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let computed = crc32fast::hash(&bytes[16..]);
        if stored != computed {
            return Err(format!(
                "message is corrupt (stored crc = {stored}, computed crc = {computed})"
            ));
        }
        Ok(())
    }
}

/// Walks batch headers of a file from `pos` to `end` with `pread`s, for index rebuilds,
/// offset translation and recovery. Yields `(position, header bytes up to 61)`.
pub struct FileBatchIter<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    buf: [u8; HEADER_LEN],
}

impl<'a> FileBatchIter<'a> {
    pub fn new(file: &'a File, pos: u64, end: u64) -> Self {
        Self {
            file,
            pos,
            end,
            buf: [0; HEADER_LEN],
        }
    }

    /// Next batch: `Ok(None)` at the end or at a torn tail; `Err` on a size field < 14.
    pub fn next_batch(&mut self) -> io::Result<Option<(u64, ShallowBatch)>> {
        if self.end.saturating_sub(self.pos) <= HEADER_SIZE_UP_TO_MAGIC as u64 {
            // Kafka stops when `position >= end - HEADER_SIZE_UP_TO_MAGIC`.
            return Ok(None);
        }
        let want = ((self.end - self.pos) as usize).min(HEADER_LEN);
        let n = read_fully_at(self.file, &mut self.buf[..want], self.pos)?;
        if n < HEADER_SIZE_UP_TO_MAGIC {
            return Ok(None);
        }
        let size = i32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]);
        if size < MIN_SIZE_FIELD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("record size {size} below minimum at position {}", self.pos),
            ));
        }
        let total = size as u64 + LOG_OVERHEAD as u64;
        if self.pos + total > self.end {
            return Ok(None);
        }
        let magic = self.buf[MAGIC_OFFSET] as i8;
        let sb = if magic >= 2 {
            if n < HEADER_LEN {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "batch shorter than its header",
                ));
            }
            let mut s = shallow(&self.buf[..n]).ok_or_else(|| io::Error::other("short"))?;
            s.size = total as usize;
            s
        } else {
            let mut s = shallow(&self.buf[..n.min(26)]).ok_or_else(|| io::Error::other("short"))?;
            s.size = total as usize;
            s
        };
        let at = self.pos;
        self.pos += total;
        Ok(Some((at, sb)))
    }
}

// ---------------------------------------------------------------------------------------
// Varints (zigzag), as in protobuf / Kafka `ByteUtils`.

/// Reads a zigzag varint (≤ 5 bytes) from `buf[*pos..]`.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Option<i32> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        value |= ((b & 0x7f) as u32) << (7 * i);
        if b & 0x80 == 0 {
            return Some(((value >> 1) as i32) ^ -((value & 1) as i32));
        }
    }
    None
}

/// Reads a zigzag varlong (≤ 10 bytes).
pub fn read_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(*pos)?;
        *pos += 1;
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Some(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    None
}

pub fn write_varint(out: &mut Vec<u8>, v: i32) {
    let mut z = ((v << 1) ^ (v >> 31)) as u32;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

pub fn write_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// One v2 record, borrowed from the (decompressed) records section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub header_count: i32,
    /// Raw bytes of all headers, copied verbatim when rebuilding.
    pub headers_raw: &'a [u8],
}

/// Iterates the records of an uncompressed (or decompressed) v2 records section without
/// allocating. Malformed data yields `Err` with Kafka-like messages.
pub struct RecordIter<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: i32,
}

impl<'a> RecordIter<'a> {
    pub fn new(buf: &'a [u8], count: i32) -> Self {
        Self {
            buf,
            pos: 0,
            remaining: count,
        }
    }
    /// True when every declared record was read and no bytes are left over.
    pub fn finished_cleanly(&self) -> bool {
        self.remaining == 0 && self.pos == self.buf.len()
    }
}

fn read_bytes<'a>(buf: &'a [u8], pos: &mut usize, limit: usize) -> Option<Option<&'a [u8]>> {
    let len = read_varint(buf, pos)?;
    if len < 0 {
        return Some(None);
    }
    let end = pos.checked_add(len as usize)?;
    if end > limit {
        return None;
    }
    let s = &buf[*pos..end];
    *pos = end;
    Some(Some(s))
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordView<'a>, String>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining <= 0 {
            return None;
        }
        self.remaining -= 1;
        Some(
            self.parse_one()
                .ok_or_else(|| "invalid record encoding".to_string()),
        )
    }
}

impl<'a> RecordIter<'a> {
    fn parse_one(&mut self) -> Option<RecordView<'a>> {
        let buf = self.buf;
        let mut p = self.pos;
        let len = read_varint(buf, &mut p)?;
        if len < 0 {
            return None;
        }
        let end = p.checked_add(len as usize)?;
        if end > buf.len() {
            return None;
        }
        let attributes = *buf.get(p)? as i8;
        p += 1;
        let timestamp_delta = read_varlong(buf, &mut p)?;
        let offset_delta = read_varint(buf, &mut p)?;
        let key = read_bytes(buf, &mut p, end)?;
        let value = read_bytes(buf, &mut p, end)?;
        let header_count = read_varint(buf, &mut p)?;
        if header_count < 0 {
            return None;
        }
        let h_start = p;
        for _ in 0..header_count {
            let klen = read_varint(buf, &mut p)?;
            if klen < 0 {
                return None;
            }
            p = p.checked_add(klen as usize)?;
            if p > end {
                return None;
            }
            read_bytes(buf, &mut p, end)?;
        }
        if p != end {
            return None;
        }
        self.pos = end;
        Some(RecordView {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            header_count,
            headers_raw: &buf[h_start..end],
        })
    }
}

// ---------------------------------------------------------------------------------------
// Codecs. Kafka framing: gzip stream, xerial-framed snappy (raw snappy accepted on input),
// LZ4 frame, zstd frame.

const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

/// Most bytes one byte of snappy input can expand to: a 3-byte copy element writes at most
/// 64 bytes. A block claiming more cannot be valid.
const SNAPPY_MAX_RATIO: usize = 22;

/// Declared length of a raw snappy block, refused when the block is too short to produce it
/// (the length is read from the wire: trusting it would let 5 bytes reserve 4 GiB).
fn snappy_len(block: &[u8]) -> io::Result<usize> {
    let n = snap::raw::decompress_len(block).map_err(io::Error::other)?;
    if n > block.len().saturating_mul(SNAPPY_MAX_RATIO) {
        return Err(io::Error::other(format!(
            "snappy block of {} bytes claims {n} uncompressed bytes",
            block.len()
        )));
    }
    Ok(n)
}

pub fn decompress(codec: CompressionCodec, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    out.clear();
    match codec {
        CompressionCodec::None => out.extend_from_slice(data),
        CompressionCodec::Gzip => {
            flate2::read::GzDecoder::new(data).read_to_end(out)?;
        }
        CompressionCodec::Snappy => {
            if data.len() >= 16 && data[..8] == XERIAL_MAGIC {
                let mut p = 16;
                while p < data.len() {
                    let len = data
                        .get(p..p + 4)
                        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
                        .ok_or_else(|| io::Error::other("truncated xerial snappy block"))?;
                    p += 4;
                    let block = data
                        .get(p..p + len)
                        .ok_or_else(|| io::Error::other("truncated xerial snappy block"))?;
                    let n = snappy_len(block)?;
                    let start = out.len();
                    out.resize(start + n, 0);
                    snap::raw::Decoder::new()
                        .decompress(block, &mut out[start..])
                        .map_err(io::Error::other)?;
                    p += len;
                }
            } else {
                let n = snappy_len(data)?;
                let start = out.len();
                out.resize(start + n, 0);
                snap::raw::Decoder::new()
                    .decompress(data, &mut out[start..])
                    .map_err(io::Error::other)?;
            }
        }
        CompressionCodec::Lz4 => {
            lz4_flex::frame::FrameDecoder::new(data).read_to_end(out)?;
        }
        CompressionCodec::Zstd => {
            zstd::stream::read::Decoder::new(data)?.read_to_end(out)?;
        }
    }
    Ok(())
}

/// Compresses `data` with Kafka's framing for `codec`; `level` is the topic's level for the
/// codec (`None` = codec default).
pub fn compress(
    codec: CompressionCodec,
    data: &[u8],
    level: Option<i32>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    match codec {
        CompressionCodec::None => out.extend_from_slice(data),
        CompressionCodec::Gzip => {
            let lvl = match level {
                Some(l) if (1..=9).contains(&l) => flate2::Compression::new(l as u32),
                _ => flate2::Compression::default(),
            };
            let mut e = flate2::write::GzEncoder::new(std::mem::take(out), lvl);
            e.write_all(data)?;
            *out = e.finish()?;
        }
        CompressionCodec::Snappy => {
            // xerial framing, 32 KiB blocks like snappy-java's default.
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for chunk in data.chunks(32 * 1024) {
                let c = enc.compress_vec(chunk).map_err(io::Error::other)?;
                out.extend_from_slice(&(c.len() as u32).to_be_bytes());
                out.extend_from_slice(&c);
            }
        }
        CompressionCodec::Lz4 => {
            let mut info = lz4_flex::frame::FrameInfo::new();
            info.block_size = lz4_flex::frame::BlockSize::Max64KB;
            info.block_mode = lz4_flex::frame::BlockMode::Independent;
            let mut e = lz4_flex::frame::FrameEncoder::with_frame_info(info, std::mem::take(out));
            e.write_all(data)?;
            *out = e.finish().map_err(io::Error::other)?;
        }
        CompressionCodec::Zstd => {
            let lvl = level.unwrap_or(3);
            let v = zstd::stream::encode_all(data, lvl)?;
            out.extend_from_slice(&v);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Batch building (used only when a batch must be rebuilt: codec change, non-sequential
// inner offsets, magic 0/1 up-conversion).

/// Producer fields carried over to a rebuilt batch.
#[derive(Clone, Copy, Debug)]
pub struct BatchMeta {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub transactional: bool,
    pub control: bool,
    pub log_append_time: bool,
    pub partition_leader_epoch: i32,
}

/// A record to write: absolute timestamp plus borrowed key/value/raw headers.
#[derive(Clone, Copy, Debug)]
pub struct OwnedRecordRef<'a> {
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub header_count: i32,
    pub headers_raw: &'a [u8],
}

/// Builds one magic-2 batch with offsets `base_offset..`, appended to `out`.
/// `max_timestamp_override` is used for LogAppendTime.
pub fn build_batch(
    out: &mut Vec<u8>,
    base_offset: i64,
    meta: &BatchMeta,
    records: &[OwnedRecordRef<'_>],
    codec: CompressionCodec,
    level: Option<i32>,
    max_timestamp_override: Option<i64>,
) -> io::Result<()> {
    let base_ts = records.first().map(|r| r.timestamp).unwrap_or(-1);
    let mut max_ts = -1i64;
    let mut body = Vec::with_capacity(records.len() * 32);
    let mut rec = Vec::with_capacity(64);
    for (i, r) in records.iter().enumerate() {
        max_ts = max_ts.max(r.timestamp);
        rec.clear();
        rec.push(0u8);
        // Kafka's `DefaultRecord.writeTo` (Java long): any pair of client timestamps encodes.
        write_varlong(&mut rec, r.timestamp.wrapping_sub(base_ts));
        write_varint(&mut rec, i as i32);
        match r.key {
            Some(k) => {
                write_varint(&mut rec, k.len() as i32);
                rec.extend_from_slice(k);
            }
            None => write_varint(&mut rec, -1),
        }
        match r.value {
            Some(v) => {
                write_varint(&mut rec, v.len() as i32);
                rec.extend_from_slice(v);
            }
            None => write_varint(&mut rec, -1),
        }
        write_varint(&mut rec, r.header_count);
        rec.extend_from_slice(r.headers_raw);
        write_varint(&mut body, rec.len() as i32);
        body.extend_from_slice(&rec);
    }
    let max_ts = max_timestamp_override.unwrap_or(max_ts);
    let start = out.len();
    out.extend_from_slice(&base_offset.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // length, patched below
    out.extend_from_slice(&meta.partition_leader_epoch.to_be_bytes());
    out.push(2);
    out.extend_from_slice(&0u32.to_be_bytes()); // crc, patched below
    let mut attrs = codec.id();
    if meta.log_append_time {
        attrs |= super::batch::attr::TIMESTAMP_TYPE_LOG_APPEND;
    }
    if meta.transactional {
        attrs |= super::batch::attr::TRANSACTIONAL;
    }
    if meta.control {
        attrs |= super::batch::attr::CONTROL;
    }
    out.extend_from_slice(&attrs.to_be_bytes());
    let last_delta = records.len().saturating_sub(1) as i32;
    out.extend_from_slice(&last_delta.to_be_bytes());
    out.extend_from_slice(&base_ts.to_be_bytes());
    out.extend_from_slice(&max_ts.to_be_bytes());
    out.extend_from_slice(&meta.producer_id.to_be_bytes());
    out.extend_from_slice(&meta.producer_epoch.to_be_bytes());
    out.extend_from_slice(&meta.base_sequence.to_be_bytes());
    out.extend_from_slice(&(records.len() as i32).to_be_bytes());
    compress(codec, &body, level, out)?;
    let len = (out.len() - start - LOG_OVERHEAD) as i32;
    out[start + 8..start + 12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&out[start + CRC_START..]);
    out[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Rewrites the CRC of a v2 batch after header fields inside the CRC range changed.
pub fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_roundtrip(a in any::<i32>(), b in any::<i64>()) {
            let mut v = Vec::new();
            write_varint(&mut v, a);
            write_varlong(&mut v, b);
            let mut p = 0;
            prop_assert_eq!(read_varint(&v, &mut p), Some(a));
            prop_assert_eq!(read_varlong(&v, &mut p), Some(b));
            prop_assert_eq!(p, v.len());
        }
    }

    #[test]
    fn snappy_length_claims_are_bounded() {
        // Varint 0xFFFFFFFF (4 GiB) then one literal byte: refused before any allocation.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, b'x'];
        let mut out = Vec::new();
        assert!(decompress(CompressionCodec::Snappy, &bomb, &mut out).is_err());
        // Highly compressible data still decodes (ratio well under the bound).
        let data = vec![b'a'; 1 << 20];
        let mut c = Vec::new();
        compress(CompressionCodec::Snappy, &data, None, &mut c).expect("compress");
        decompress(CompressionCodec::Snappy, &c, &mut out).expect("decompress");
        assert_eq!(out, data);
        let raw = snap::raw::Encoder::new().compress_vec(&data).expect("raw");
        decompress(CompressionCodec::Snappy, &raw, &mut out).expect("raw decompress");
        assert_eq!(out, data);
    }

    #[test]
    fn codecs_roundtrip() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for codec in [
            CompressionCodec::None,
            CompressionCodec::Gzip,
            CompressionCodec::Snappy,
            CompressionCodec::Lz4,
            CompressionCodec::Zstd,
        ] {
            let mut c = Vec::new();
            compress(codec, &data, None, &mut c).expect("compress");
            let mut d = Vec::new();
            decompress(codec, &c, &mut d).expect("decompress");
            assert_eq!(d, data, "{codec:?}");
        }
    }

    #[test]
    fn built_batch_decodes_with_kafka_protocol() {
        let meta = BatchMeta {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: false,
            log_append_time: false,
            partition_leader_epoch: 3,
        };
        let recs = [
            OwnedRecordRef {
                timestamp: 1000,
                key: Some(b"k"),
                value: Some(b"v1"),
                header_count: 0,
                headers_raw: &[],
            },
            OwnedRecordRef {
                timestamp: 1005,
                key: None,
                value: None,
                header_count: 0,
                headers_raw: &[],
            },
        ];
        for codec in [
            CompressionCodec::None,
            CompressionCodec::Gzip,
            CompressionCodec::Zstd,
        ] {
            let mut out = Vec::new();
            build_batch(&mut out, 42, &meta, &recs, codec, None, None).expect("build");
            check_batch_integrity(&out).expect("crc");
            let mut b = bytes::Bytes::from(out);
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut b).expect("decode");
            assert_eq!(set.records.len(), 2);
            assert_eq!(set.records[1].offset, 43);
            assert_eq!(set.records[1].timestamp, 1005);
            assert_eq!(set.records[0].value.as_deref(), Some(&b"v1"[..]));
        }
    }
}
