//! Golden test: a partition dir in Kafka's format, written by the Java client 3.9.1
//! (`tests/fixtures/golden/Golden.java`: FileRecords-style `.log` with uncompressed, gzip,
//! snappy (xerial), lz4 and zstd batches plus an idempotent batch; no index files, as
//! after a crash), is opened, recovered, indexed and served; Java-built producer batches
//! of every codec are appended as leader.

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use samsa_broker::log::batch::{BatchHeader, HEADER_LEN};
use samsa_broker::log::records::{decompress, BatchIter, RecordIter};
use samsa_broker::log::{AppendOrigin, CompressionCodec, Log, LogConfig, TopicCompression};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/golden/golden-0")
        .join(name)
}

/// (offset, timestamp, codec, key, value, header count, leader epoch) of every record.
type Rec = (i64, i64, i16, Option<String>, Option<String>, i32, i32);

fn decode_all(bytes: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    for (_, b) in BatchIter::new(bytes).flatten() {
        let h = BatchHeader::parse(b).expect("header");
        let codec = CompressionCodec::from_id(h.compression()).expect("codec");
        decompress(codec, &b[HEADER_LEN..], &mut scratch).expect("decompress");
        let it = RecordIter::new(&scratch, h.records_count);
        for r in it {
            let r = r.expect("record");
            let s = |x: Option<&[u8]>| x.map(|v| String::from_utf8_lossy(v).to_string());
            out.push((
                h.base_offset + r.offset_delta as i64,
                h.base_timestamp + r.timestamp_delta,
                h.compression(),
                s(r.key),
                s(r.value),
                r.header_count,
                h.partition_leader_epoch,
            ));
        }
    }
    out
}

/// What Golden.java wrote for batch `tag` with base offset `base`.
fn expected(tag: &str, base: i64, n: i64, codec: i16, epoch: i32) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            (
                base + i,
                1_700_000_000_000 + base + i,
                codec,
                (i % 3 != 2).then(|| format!("{tag}-k{i}")),
                (i % 4 != 3).then(|| format!("{tag}-value-{i}")),
                if i % 2 == 0 { 2 } else { 0 },
                epoch,
            )
        })
        .collect()
}

fn read_everything(log: &Log) -> Vec<u8> {
    let r = log
        .read(log.log_start_offset(), 1 << 24, log.log_end_offset(), true)
        .expect("read");
    r.slices
        .iter()
        .flat_map(|s| s.read_to_vec().expect("slice"))
        .collect()
}

#[test]
fn java_written_log_dir_is_recovered_and_served() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("golden-0");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let seg = "00000000000000000000.log";
    std::fs::copy(fixture(seg), dir.join(seg)).expect("copy fixture");
    let log = Log::open_standalone(&dir, LogConfig::default()).expect("open");
    assert_eq!(log.log_end_offset(), 27);
    let mut want = Vec::new();
    for (i, tag) in ["none", "gzip", "snappy", "lz4", "zstd"].iter().enumerate() {
        want.extend(expected(tag, i as i64 * 5, 5, i as i16, 1 + i as i32 / 2));
    }
    want.extend(expected("idem", 25, 2, 0, 3));
    let got = decode_all(&read_everything(&log));
    assert_eq!(got, want);
    // Leader epochs were rebuilt from the batches during recovery.
    assert_eq!(log.epoch_entries(), vec![(1, 0), (2, 10), (3, 20)]);
    // Indexes were created; seeks land on the batch holding the offset.
    for off in [0i64, 7, 13, 22, 26] {
        let r = log.read(off, 1, 27, true).expect("seek");
        let bytes = r.slices[0].read_to_vec().expect("bytes");
        let h = BatchHeader::parse(&bytes).expect("h");
        assert!(
            h.base_offset <= off && off <= h.last_offset(),
            "offset {off}"
        );
    }
    // Time lookup.
    let t = log
        .fetch_offset_by_timestamp(1_700_000_000_000 + 12)
        .expect("ts")
        .expect("found");
    assert_eq!(t.offset, 12);
    // Producer state was rebuilt: pid 1000 continues at sequence 2, a gap is refused.
    let mut idem = BytesMut::from(&std::fs::read(fixture("produce-none.bin")).expect("bin")[..]);
    idem[43..51].copy_from_slice(&1000i64.to_be_bytes());
    idem[51..53].copy_from_slice(&0i16.to_be_bytes());
    idem[53..57].copy_from_slice(&7i32.to_be_bytes());
    samsa_broker::log::records::fix_crc(&mut idem);
    let e = log
        .append_as_leader(idem.clone(), 4, AppendOrigin::Client)
        .expect_err("sequence gap");
    assert_eq!(e.code(), 45);
    idem[53..57].copy_from_slice(&2i32.to_be_bytes());
    samsa_broker::log::records::fix_crc(&mut idem);
    let info = log
        .append_as_leader(idem, 4, AppendOrigin::Client)
        .expect("next sequence");
    assert_eq!(info.first_offset, 27);
}

#[test]
fn java_producer_batches_of_every_codec_append() {
    let tmp = tempfile::tempdir().expect("tmp");
    let names = ["none", "gzip", "snappy", "lz4", "zstd"];
    // compression.type=producer keeps each codec; zstd topic converts all to zstd.
    for (topic_codec, dir) in [
        (TopicCompression::Producer, "keep-0"),
        (TopicCompression::Codec(CompressionCodec::Zstd), "zstd-0"),
        (
            TopicCompression::Codec(CompressionCodec::Snappy),
            "snappy-0",
        ),
        (TopicCompression::Codec(CompressionCodec::None), "none-0"),
        (TopicCompression::Codec(CompressionCodec::Gzip), "gzip-0"),
        (TopicCompression::Codec(CompressionCodec::Lz4), "lz4-0"),
    ] {
        let cfg = LogConfig {
            compression_type: topic_codec,
            ..LogConfig::default()
        };
        let log = Log::open_standalone(&tmp.path().join(dir), cfg).expect("open");
        let mut want = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let bytes = std::fs::read(fixture(&format!("produce-{name}.bin"))).expect("bin");
            let info = log
                .append_as_leader(BytesMut::from(&bytes[..]), 9, AppendOrigin::Client)
                .expect("append");
            assert_eq!(info.first_offset, i as i64 * 4);
            let codec = match topic_codec {
                TopicCompression::Producer => i as i16,
                TopicCompression::Codec(c) => c.id(),
            };
            let mut e = expected(&format!("p{name}"), 0, 4, codec, 9);
            for (k, r) in e.iter_mut().enumerate() {
                r.0 = i as i64 * 4 + k as i64;
            }
            want.extend(e);
        }
        let stored = read_everything(&log);
        assert_eq!(decode_all(&stored), want, "{dir}");
        if let Ok(out) = std::env::var("SAMSA_GOLDEN_OUT") {
            std::fs::write(Path::new(&out).join(format!("{dir}.bin")), &stored).expect("dump");
        }
    }
}
