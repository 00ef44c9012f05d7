//! Record batch v2 header (magic 2), the unit Samsa stores, replicates and serves.
//!
//! Layout (61 bytes, big-endian), from Kafka's `DefaultRecordBatch`:
//!
//! | off | size | field                  |
//! |-----|------|------------------------|
//! | 0   | 8    | baseOffset             |
//! | 8   | 4    | batchLength (bytes after this field) |
//! | 12  | 4    | partitionLeaderEpoch   |
//! | 16  | 1    | magic (2)              |
//! | 17  | 4    | crc (CRC-32C of bytes 21..end) |
//! | 21  | 2    | attributes             |
//! | 23  | 4    | lastOffsetDelta        |
//! | 27  | 8    | baseTimestamp          |
//! | 35  | 8    | maxTimestamp           |
//! | 43  | 8    | producerId             |
//! | 51  | 2    | producerEpoch          |
//! | 53  | 4    | baseSequence           |
//! | 57  | 4    | recordsCount           |
//!
//! The CRC starts at byte 21, so baseOffset, batchLength, partitionLeaderEpoch and
//! magic can be rewritten in place without recomputing it.

/// Size of the fixed v2 batch header.
pub const HEADER_LEN: usize = 61;
/// Bytes before and including `batchLength`: the log overhead of every batch.
pub const LOG_OVERHEAD: usize = 12;
/// Offset of the magic byte, readable from any magic's header.
pub const MAGIC_OFFSET: usize = 16;
/// First byte covered by the v2 CRC.
pub const CRC_START: usize = 21;

/// Attribute bits (low byte of the int16 attributes field).
pub mod attr {
    pub const COMPRESSION_MASK: i16 = 0x07;
    pub const TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;
    pub const TRANSACTIONAL: i16 = 0x10;
    pub const CONTROL: i16 = 0x20;
    pub const DELETE_HORIZON: i16 = 0x40;
}

/// Parsed fixed fields of a magic-2 batch header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the 61-byte header; `None` when `buf` is shorter than that.
    /// Does not check magic, length or CRC: validation lives with the append path.
    pub fn parse(buf: &[u8]) -> Option<Self> {
        if buf.len() < HEADER_LEN {
            return None;
        }
        let i64_at = |o: usize| i64::from_be_bytes(buf[o..o + 8].try_into().unwrap_or([0; 8]));
        let i32_at = |o: usize| i32::from_be_bytes(buf[o..o + 4].try_into().unwrap_or([0; 4]));
        let i16_at = |o: usize| i16::from_be_bytes(buf[o..o + 2].try_into().unwrap_or([0; 2]));
        Some(Self {
            base_offset: i64_at(0),
            batch_length: i32_at(8),
            partition_leader_epoch: i32_at(12),
            magic: buf[16] as i8,
            crc: i32_at(17) as u32,
            attributes: i16_at(21),
            last_offset_delta: i32_at(23),
            base_timestamp: i64_at(27),
            max_timestamp: i64_at(35),
            producer_id: i64_at(43),
            producer_epoch: i16_at(51),
            base_sequence: i32_at(53),
            records_count: i32_at(57),
        })
    }

    /// Total size of the batch on disk, header included.
    pub fn total_size(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }
    /// Wraps like Kafka's Java arithmetic: the base offset is outside the CRC, so a damaged
    /// file or a bad peer can put anything there; callers range-check the result.
    pub fn last_offset(&self) -> i64 {
        self.base_offset.wrapping_add(self.last_offset_delta as i64)
    }
    pub fn compression(&self) -> i16 {
        self.attributes & attr::COMPRESSION_MASK
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & attr::TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & attr::CONTROL != 0
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & attr::TIMESTAMP_TYPE_LOG_APPEND != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// Last sequence of the batch; sequences wrap from `i32::MAX` to 0.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// `seq + delta` with Kafka's wrap-around past `i32::MAX` to 0.
pub fn increment_sequence(seq: i32, delta: i32) -> i32 {
    if seq > i32::MAX - delta {
        delta - (i32::MAX - seq) - 1
    } else {
        seq + delta
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_wraps_past_max() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 4), 9);
    }

    #[test]
    fn short_buffer_is_not_a_header() {
        assert!(BatchHeader::parse(&[0u8; 60]).is_none());
    }
}
