//! Arbitrary bytes as the records of one Produce partition: the produce-level checks, the
//! log's shallow analysis, leader validation with offset assignment (every codec, legacy
//! magic 0/1 up-conversion), and Fetch down-conversion of the same bytes. The first byte
//! picks the topic settings and whether batch CRCs are fixed up first (random bytes never pass
//! a CRC, so without that the fuzzer would not get past the integrity check). None of it may
//! panic.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use samsa_broker::handlers::produce::validate_records;
use samsa_broker::log::config::{CompressionCodec, TimestampType, TopicCompression};
use samsa_broker::log::down_convert::down_convert;
use samsa_broker::log::records::{fix_crc, BatchIter};
use samsa_broker::log::validate::{analyze, validate_and_assign_offsets, ValidateParams};
use samsa_broker::log::{AppendOrigin, LogConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, records)) = data.split_first() else {
        return;
    };
    let mut owned;
    let records = if flags & 0x40 != 0 {
        owned = records.to_vec();
        fix_crcs(&mut owned);
        &owned[..]
    } else {
        records
    };
    let mut config = LogConfig::default();
    config.compact = flags & 1 != 0;
    if flags & 2 != 0 {
        config.message_timestamp_type = TimestampType::LogAppendTime;
    }
    config.compression_type = match (flags >> 2) & 7 {
        1 => TopicCompression::Codec(CompressionCodec::None),
        2 => TopicCompression::Codec(CompressionCodec::Gzip),
        3 => TopicCompression::Codec(CompressionCodec::Lz4),
        4 => TopicCompression::Codec(CompressionCodec::Snappy),
        _ => TopicCompression::Producer,
    };
    let _ = validate_records(((flags >> 5) & 7) as i16 + 2, records);
    let _ = down_convert(records, (flags & 1) as i8, 0);
    let origin = if flags & 0x80 != 0 {
        AppendOrigin::Replication
    } else {
        AppendOrigin::Client
    };
    let Ok((valid_len, codec, _)) = analyze(records, &config, origin, false) else {
        return;
    };
    if valid_len == 0 {
        return;
    }
    let params = ValidateParams {
        config: &config,
        now_ms: 1_700_000_000_000,
        next_offset: 42,
        leader_epoch: 3,
        origin,
        topic_partition: &"fuzz-0",
    };
    let _ = validate_and_assign_offsets(BytesMut::from(&records[..valid_len]), codec, &params);
});

/// Rewrites the CRC of every complete batch: CRC-32C for magic 2, CRC-32 for magic 0/1.
fn fix_crcs(buf: &mut [u8]) {
    let spans: Vec<(usize, usize)> = BatchIter::new(buf)
        .map_while(Result::ok)
        .map(|(start, b)| (start, b.len()))
        .collect();
    for (start, len) in spans {
        let b = &mut buf[start..start + len];
        if b[16] >= 2 {
            if b.len() >= 21 {
                fix_crc(b);
            }
        } else if b.len() >= 17 {
            let crc = crc32fast::hash(&b[16..]);
            b[12..16].copy_from_slice(&crc.to_be_bytes());
        }
    }
}
