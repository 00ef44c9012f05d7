//! Log-level tests on real files in temp dirs.

use std::sync::Arc;

use bytes::BytesMut;

use super::config::{CompressionCodec, LogConfig};
use super::log::{AppendOrigin, Log};
use super::records::{build_batch, BatchIter, BatchMeta, OwnedRecordRef};
use super::segment::now_ms;

pub(crate) fn meta() -> BatchMeta {
    BatchMeta {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
        control: false,
        log_append_time: false,
        partition_leader_epoch: -1,
    }
}

/// A producer-style batch (base offset 0) of `n` records of `size`-byte values.
pub(crate) fn batch(n: usize, size: usize, ts: i64, codec: CompressionCodec) -> BytesMut {
    let value = vec![b'x'; size];
    let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
    let recs: Vec<OwnedRecordRef<'_>> = (0..n)
        .map(|i| OwnedRecordRef {
            timestamp: ts + i as i64,
            key: Some(keys[i].as_bytes()),
            value: Some(&value),
            header_count: 0,
            headers_raw: &[],
        })
        .collect();
    let mut out = Vec::new();
    build_batch(&mut out, 0, &meta(), &recs, codec, None, None).expect("build");
    BytesMut::from(&out[..])
}

pub(crate) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        segment_index_bytes: 4096,
        index_interval_bytes: 1024,
        ..LogConfig::default()
    }
}

pub(crate) fn open(dir: &std::path::Path, cfg: LogConfig) -> Arc<Log> {
    Log::open_standalone(&dir.join("t-0"), cfg).expect("open")
}

/// Offsets of all batches in the slices of a read.
pub(crate) fn read_all_offsets(log: &Log) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut off = log.log_start_offset();
    let leo = log.log_end_offset();
    while off < leo {
        let r = log.read(off, 1 << 20, leo, true).expect("read");
        let bytes: Vec<u8> = r
            .slices
            .iter()
            .flat_map(|s| s.read_to_vec().expect("slice"))
            .collect();
        let mut any = false;
        for (_, b) in BatchIter::new(&bytes).flatten() {
            let s = super::records::shallow(b).expect("shallow");
            if s.last_offset >= off {
                out.push((s.base_offset, s.last_offset));
                off = s.last_offset + 1;
                any = true;
            }
        }
        assert!(any, "read at {off} returned no batch");
    }
    out
}

#[test]
fn append_read_roll_and_index() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = open(dir.path(), small_config());
    let now = now_ms();
    for _ in 0..100 {
        let info = log
            .append_as_leader(
                batch(10, 100, now, CompressionCodec::None),
                5,
                AppendOrigin::Client,
            )
            .expect("append");
        assert_eq!(info.last_offset - info.first_offset, 9);
    }
    assert_eq!(log.log_end_offset(), 1000);
    assert!(log.num_segments() > 1, "rolled at 64 KiB");
    let batches = read_all_offsets(&log);
    assert_eq!(batches.len(), 100);
    for (i, (b, l)) in batches.iter().enumerate() {
        assert_eq!((*b, *l), (i as i64 * 10, i as i64 * 10 + 9));
    }
    // Reads starting mid-batch start at the containing batch.
    let r = log.read(437, 100, 1000, true).expect("read");
    let bytes = r.slices[0].read_to_vec().expect("bytes");
    let h = super::batch::BatchHeader::parse(&bytes).expect("hdr");
    assert_eq!(h.base_offset, 430);
    assert_eq!(h.partition_leader_epoch, 5);
    // HW bounds reads.
    log.update_high_watermark(500);
    let r = log
        .read(490, 1 << 20, log.high_watermark(), false)
        .expect("read");
    let bytes = r.slices[0].read_to_vec().expect("bytes");
    let offs: Vec<_> = BatchIter::new(&bytes)
        .flatten()
        .map(|(_, b)| super::records::shallow(b).expect("s").base_offset)
        .collect();
    assert_eq!(offs, vec![490]);
    assert_eq!(log.epoch_entries(), vec![(5, 0)]);
    // Inactive segments have trimmed indexes.
    let segs = log.segments();
    for s in &segs[..segs.len() - 1] {
        let idx = super::segment::file_name(&log.dir(), s.base_offset(), ".index");
        let len = std::fs::metadata(idx).expect("idx").len();
        assert_eq!(len as usize, s.offset_index_entries() * 8);
        assert!(s.offset_index_entries() > 0);
    }
}

use super::log::LoadParams;
use super::manager::{LogManager, LogManagerConfig, MetaProperties, CLEAN_SHUTDOWN_FILE};
use crate::error::Error;
use proptest::prelude::*;
use samsa_common::types::TopicPartition;

fn reopen(dir: &std::path::Path, cfg: LogConfig, params: LoadParams) -> Arc<Log> {
    Log::open(
        &dir.join("t-0"),
        TopicPartition::new("t", 0),
        cfg,
        params,
        Arc::new(super::log::DeleteQueue::default()),
        None,
    )
    .expect("reopen")
}

fn big_segment_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 20,
        segment_index_bytes: 1 << 16,
        index_interval_bytes: 512,
        ..LogConfig::default()
    }
}

/// Appends batches of varying size; returns (end position in the segment, next offset)
/// after each batch.
fn fill(log: &Log, sizes: &[usize]) -> Vec<(u64, i64)> {
    let now = now_ms();
    let mut ends = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let info = log
            .append_as_leader(
                batch(*n, 37 + i % 50, now, CompressionCodec::None),
                1,
                AppendOrigin::Client,
            )
            .expect("append");
        ends.push((
            log.segments().last().expect("seg").size(),
            info.last_offset + 1,
        ));
    }
    ends
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// kill -9 then a cut at a random byte: exactly the whole batches before the cut survive.
    #[test]
    fn recovery_keeps_whole_batches_before_a_cut(sizes in proptest::collection::vec(1usize..20, 1..30), frac in 0.0f64..1.0) {
        let dir = tempfile::tempdir().expect("tmp");
        let log = open(dir.path(), big_segment_config());
        let ends = fill(&log, &sizes);
        let seg_path = log.segments()[0].log_path();
        drop(log);
        let total = ends.last().expect("end").0;
        let cut = (total as f64 * frac) as u64;
        let f = std::fs::OpenOptions::new().write(true).open(&seg_path).expect("open");
        f.set_len(cut).expect("cut");
        drop(f);
        let log = reopen(dir.path(), big_segment_config(), LoadParams::default());
        let expect = ends.iter().rev().find(|(e, _)| *e <= cut).map(|(_, o)| *o).unwrap_or(0);
        prop_assert_eq!(log.log_end_offset(), expect);
        let want_len = ends.iter().rev().find(|(e, _)| *e <= cut).map(|(e, _)| *e).unwrap_or(0);
        prop_assert_eq!(std::fs::metadata(&seg_path).expect("m").len(), want_len);
        let batches = read_all_offsets(&log);
        prop_assert_eq!(batches.last().map(|b| b.1 + 1).unwrap_or(0), expect);
        // The log keeps working after recovery.
        let info = log.append_as_leader(batch(3, 10, now_ms(), CompressionCodec::None), 1, AppendOrigin::Client).expect("append");
        prop_assert_eq!(info.first_offset, expect);
    }

    /// Truncation to any offset leaves exactly the batches below it and appends continue.
    #[test]
    fn truncate_to_any_offset(sizes in proptest::collection::vec(1usize..10, 1..40), pick in 0usize..40) {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = LogConfig { segment_bytes: 2048, ..small_config() };
        let log = open(dir.path(), cfg);
        let ends = fill(&log, &sizes);
        let mut bounds: Vec<i64> = vec![0];
        bounds.extend(ends.iter().map(|e| e.1));
        let target = bounds[pick % bounds.len()];
        log.truncate_to(target).expect("truncate");
        prop_assert_eq!(log.log_end_offset(), target);
        let got = read_all_offsets(&log);
        prop_assert_eq!(got.last().map(|b| b.1 + 1).unwrap_or(log.log_start_offset()), target);
        let info = log.append_as_leader(batch(2, 10, now_ms(), CompressionCodec::None), 2, AppendOrigin::Client).expect("append");
        prop_assert_eq!(info.first_offset, target);
    }
}

#[test]
fn garbage_tail_is_truncated() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = open(dir.path(), big_segment_config());
    let ends = fill(&log, &[5, 5, 5]);
    let path = log.segments()[0].log_path();
    drop(log);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.extend((0..1000u32).map(|i| (i * 7919 % 251) as u8));
    std::fs::write(&path, &bytes).expect("write");
    let log = reopen(dir.path(), big_segment_config(), LoadParams::default());
    assert_eq!(log.log_end_offset(), 15);
    assert_eq!(std::fs::metadata(&path).expect("m").len(), ends[2].0);
}

#[test]
fn flipped_byte_truncates_and_drops_later_segments() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = LogConfig {
        segment_bytes: 4096,
        ..small_config()
    };
    let log = open(dir.path(), cfg.clone());
    fill(&log, &[10; 40]);
    let segs = log.segments();
    assert!(segs.len() >= 3);
    let first = segs[0].log_path();
    let nsegs = segs.len();
    drop(segs);
    drop(log);
    // Flip a byte inside the 3rd batch of the first segment.
    let mut bytes = std::fs::read(&first).expect("read");
    let mut pos = 0usize;
    for _ in 0..2 {
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().expect("4")) as usize + 12;
        pos += len;
    }
    bytes[pos + 70] ^= 0xff;
    std::fs::write(&first, &bytes).expect("write");
    let log = reopen(dir.path(), cfg, LoadParams::default());
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(
        log.num_segments(),
        1,
        "later segments deleted (was {nsegs})"
    );
}

#[test]
fn validation_errors_map_to_kafka_codes() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = open(dir.path(), small_config());
    let now = now_ms();
    // CRC mismatch.
    let mut b = batch(3, 10, now, CompressionCodec::None);
    let n = b.len();
    b[n - 1] ^= 1;
    let e = log
        .append_as_leader(b, 0, AppendOrigin::Client)
        .expect_err("crc");
    assert!(matches!(e, Error::CorruptMessage(_)), "{e:?}");
    // Non-zero base offset from a client.
    let mut b = batch(3, 10, now, CompressionCodec::None);
    b[7] = 5;
    let e = log
        .append_as_leader(b, 0, AppendOrigin::Client)
        .expect_err("base");
    assert!(matches!(e, Error::InvalidRecord(_)), "{e:?}");
    // Too large.
    let cfg = LogConfig {
        max_message_bytes: 100,
        ..small_config()
    };
    log.update_config(cfg);
    let e = log
        .append_as_leader(
            batch(3, 100, now, CompressionCodec::None),
            0,
            AppendOrigin::Client,
        )
        .expect_err("size");
    assert!(matches!(e, Error::MessageTooLarge(_)), "{e:?}");
    // Timestamp out of range.
    let cfg = LogConfig {
        message_timestamp_before_max_ms: 3_600_000,
        ..small_config()
    };
    log.update_config(cfg);
    let e = log
        .append_as_leader(
            batch(3, 10, now - 7_200_000, CompressionCodec::None),
            0,
            AppendOrigin::Client,
        )
        .expect_err("ts");
    assert!(
        matches!(&e, Error::RecordValidation { invalid_timestamp: true, record_errors, .. }
            if record_errors.iter().map(|r| r.batch_index).eq(0..3)),
        "{e:?}"
    );
    assert_eq!(e.code(), 32);
    // Compacted topic without key.
    let cfg = LogConfig {
        compact: true,
        ..small_config()
    };
    log.update_config(cfg);
    let recs = [OwnedRecordRef {
        timestamp: now,
        key: None,
        value: Some(b"v"),
        header_count: 0,
        headers_raw: &[],
    }];
    let mut out = Vec::new();
    build_batch(
        &mut out,
        0,
        &meta(),
        &recs,
        CompressionCodec::None,
        None,
        None,
    )
    .expect("build");
    let e = log
        .append_as_leader(BytesMut::from(&out[..]), 0, AppendOrigin::Client)
        .expect_err("key");
    assert!(
        matches!(&e, Error::RecordValidation { invalid_timestamp: false, record_errors, .. }
            if record_errors.len() == 1),
        "{e:?}"
    );
    assert_eq!(e.code(), 87);
    assert_eq!(log.log_end_offset(), 0, "nothing appended");
}

fn stored_batches(log: &Log) -> Vec<Vec<u8>> {
    let r = log
        .read(log.log_start_offset(), 1 << 24, log.log_end_offset(), true)
        .expect("read");
    let bytes = r.slices[0].read_to_vec().expect("bytes");
    BatchIter::new(&bytes)
        .flatten()
        .map(|(_, b)| b.to_vec())
        .collect()
}

#[test]
fn codecs_timestamps_and_rebuilds() {
    let dir = tempfile::tempdir().expect("tmp");
    let now = now_ms();
    // producer: codec kept, in place (same bytes after the header fields).
    let log = open(dir.path(), small_config());
    let b = batch(5, 50, now, CompressionCodec::Gzip);
    let original = b.to_vec();
    log.append_as_leader(b, 3, AppendOrigin::Client)
        .expect("gzip");
    let stored = stored_batches(&log);
    assert_eq!(stored[0][61..], original[61..]);
    let h = super::batch::BatchHeader::parse(&stored[0]).expect("h");
    assert_eq!(h.compression(), 1);
    assert_eq!(h.max_timestamp, now + 4);
    super::records::check_batch_integrity(&stored[0]).expect("crc");
    // zstd topic: gzip batch rebuilt as zstd, offsets continue.
    log.update_config(LogConfig {
        compression_type: super::config::TopicCompression::Codec(CompressionCodec::Zstd),
        ..small_config()
    });
    let info = log
        .append_as_leader(
            batch(4, 50, now, CompressionCodec::Gzip),
            3,
            AppendOrigin::Client,
        )
        .expect("zstd");
    assert_eq!((info.first_offset, info.last_offset), (5, 8));
    let stored = stored_batches(&log);
    let h = super::batch::BatchHeader::parse(&stored[1]).expect("h");
    assert_eq!(h.compression(), 4);
    assert_eq!(h.base_offset, 5);
    assert_eq!(h.partition_leader_epoch, 3);
    let mut bytes = bytes::Bytes::from(stored[1].clone());
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).expect("decode");
    assert_eq!(set.records.len(), 4);
    assert_eq!(set.records[3].offset, 8);
    // LogAppendTime: batch max timestamp = broker time, type bit set.
    log.update_config(LogConfig {
        message_timestamp_type: super::config::TimestampType::LogAppendTime,
        ..small_config()
    });
    let info = log
        .append_as_leader(
            batch(2, 10, 1000, CompressionCodec::None),
            3,
            AppendOrigin::Client,
        )
        .expect("lat");
    assert!(info.log_append_time >= now);
    let stored = stored_batches(&log);
    let h = super::batch::BatchHeader::parse(&stored[2]).expect("h");
    assert!(h.is_log_append_time());
    assert_eq!(h.max_timestamp, info.log_append_time);
    super::records::check_batch_integrity(&stored[2]).expect("crc");
    // Wrong client max timestamp is corrected.
    log.update_config(small_config());
    let mut b = batch(2, 10, now, CompressionCodec::None);
    b[35..43].copy_from_slice(&1i64.to_be_bytes());
    super::records::fix_crc(&mut b);
    log.append_as_leader(b, 3, AppendOrigin::Client)
        .expect("fix ts");
    let stored = stored_batches(&log);
    let h = super::batch::BatchHeader::parse(&stored[3]).expect("h");
    assert_eq!(h.max_timestamp, now + 1);
}

#[test]
fn follower_append_keeps_offsets_and_epochs() {
    let dir = tempfile::tempdir().expect("tmp");
    let leader = open(&dir.path().join("a"), small_config());
    std::fs::create_dir_all(dir.path().join("b")).expect("dir");
    let follower = open(&dir.path().join("b"), small_config());
    let now = now_ms();
    for epoch in [1, 1, 4, 4, 7] {
        leader
            .append_as_leader(
                batch(3, 20, now, CompressionCodec::None),
                epoch,
                AppendOrigin::Client,
            )
            .expect("append");
    }
    let r = leader
        .read(0, 1 << 20, leader.log_end_offset(), true)
        .expect("read");
    let bytes = r.slices[0].read_to_vec().expect("bytes");
    // A partial trailing batch is ignored.
    let info = follower
        .append_as_follower(&bytes[..bytes.len() - 5])
        .expect("follow");
    assert_eq!(info.last_offset, 11);
    let info = follower
        .append_as_follower(&bytes[bytes.len() - (bytes.len() / 5)..])
        .expect("tail");
    assert_eq!(info.last_offset, 14);
    assert_eq!(follower.log_end_offset(), 15);
    assert_eq!(follower.epoch_entries(), vec![(1, 0), (4, 6), (7, 12)]);
    assert_eq!(follower.end_offset_for_epoch(4), (4, 12));
    let fb = stored_batches(&follower);
    let lb = stored_batches(&leader);
    assert_eq!(fb, lb, "follower bytes equal leader bytes");
    assert!(
        follower.append_as_follower(&bytes).is_err(),
        "offsets below LEO"
    );
}

/// A broker that led briefly at a new epoch without appending keeps `(epoch, LEO)`; when it
/// follows again, truncating to its own LEO must drop that entry (Kafka's rule), or the
/// leader answers every fetch with a diverging epoch forever.
#[test]
fn truncate_at_leo_drops_epoch_entries_at_leo() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = open(dir.path(), small_config());
    log.append_as_leader(
        batch(3, 20, now_ms(), CompressionCodec::None),
        1,
        AppendOrigin::Client,
    )
    .expect("append");
    let leo = log.log_end_offset();
    log.assign_epoch_start_offset(2, leo).expect("assign");
    assert_eq!(log.latest_epoch(), Some(2));
    assert!(!log.truncate_to(leo).expect("truncate"), "no data removed");
    assert_eq!(log.latest_epoch(), Some(1));
    assert_eq!(log.epoch_entries(), vec![(1, 0)]);
    assert_eq!(log.log_end_offset(), leo);
}

#[test]
fn offsets_for_timestamps() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = open(
        dir.path(),
        LogConfig {
            segment_bytes: 2048,
            ..small_config()
        },
    );
    for i in 0..50i64 {
        log.append_as_leader(
            batch(4, 20, 10_000 + i * 100, CompressionCodec::None),
            0,
            AppendOrigin::Client,
        )
        .expect("append");
    }
    assert!(log.num_segments() > 2);
    for (ts, want) in [
        (0, 0),
        (10_000, 0),
        (10_002, 2),
        (10_004, 4),
        (12_050, 84),
        (14_903, 199),
    ] {
        let r = log
            .fetch_offset_by_timestamp(ts)
            .expect("ok")
            .expect("found");
        assert_eq!(r.offset, want, "ts {ts}");
    }
    assert!(log.fetch_offset_by_timestamp(20_000).expect("ok").is_none());
    let max = log
        .fetch_offset_by_timestamp(super::log::MAX_TIMESTAMP)
        .expect("ok")
        .expect("max");
    assert_eq!((max.timestamp, max.offset), (14_903, 199));
    let e = log
        .fetch_offset_by_timestamp(super::log::EARLIEST_TIMESTAMP)
        .expect("ok")
        .expect("e");
    assert_eq!(e.offset, 0);
}

#[test]
fn retention_and_log_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = LogConfig {
        segment_bytes: 2048,
        file_delete_delay_ms: 0,
        ..small_config()
    };
    let log = open(dir.path(), cfg.clone());
    fill(&log, &[10; 30]);
    let n = log.num_segments();
    assert!(n > 4);
    // Nothing below HW 0 can go.
    assert_eq!(log.delete_old_segments(now_ms()).expect("ret"), 0);
    log.update_high_watermark(log.log_end_offset());
    // retention.bytes: keep ≥ limit, < limit + oldest remaining segment.
    let limit = log.size_bytes() / 2;
    log.update_config(LogConfig {
        retention_bytes: limit as i64,
        ..cfg.clone()
    });
    assert!(log.delete_old_segments(now_ms()).expect("ret") > 0);
    let size = log.size_bytes();
    assert!(
        size >= limit && size < limit + log.segments()[0].size(),
        "{size} vs {limit}"
    );
    assert_eq!(log.log_start_offset(), log.segments()[0].base_offset());
    assert!(log.run_pending_deletions(i64::MAX) > 0);
    // DeleteRecords past the HW is refused, below it moves log start; reads below fail.
    assert!(log
        .maybe_increment_log_start_offset(log.log_end_offset() + 1)
        .is_err());
    let mid = log.log_start_offset() + 25;
    assert!(log.maybe_increment_log_start_offset(mid).expect("lso"));
    let e = log
        .read(mid - 1, 100, log.log_end_offset(), true)
        .expect_err("oor");
    assert!(matches!(e, Error::OffsetOutOfRange(_)));
    // retention.ms with old timestamps removes everything but a fresh empty segment.
    log.update_config(LogConfig {
        retention_ms: 1000,
        ..cfg
    });
    log.delete_old_segments(now_ms() + 10_000_000).expect("ret");
    assert_eq!(log.num_segments(), 1);
    assert_eq!(log.segments()[0].size(), 0);
    assert_eq!(log.log_start_offset(), log.log_end_offset());
    let leo = log.log_end_offset();
    let info = log
        .append_as_leader(
            batch(1, 1, now_ms(), CompressionCodec::None),
            0,
            AppendOrigin::Client,
        )
        .expect("append");
    assert_eq!(info.first_offset, leo);
}

fn mgr_config(dir: &std::path::Path) -> LogManagerConfig {
    let mut c = LogManagerConfig::new(vec![dir.to_path_buf()]);
    c.default_config = LogConfig {
        segment_bytes: 4096,
        ..small_config()
    };
    c
}

#[test]
fn manager_clean_shutdown_checkpoints_and_lock() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("logs");
    let m = LogManager::open(mgr_config(&root)).expect("open");
    assert!(
        LogManager::open(mgr_config(&root)).is_err(),
        "dir is locked"
    );
    let tp = TopicPartition::new("orders-x", 3);
    let id = uuid::Uuid::new_v4();
    let log = m
        .get_or_create_log(&tp, Some(id), m.default_config().clone())
        .expect("create");
    fill(&log, &[10; 30]);
    log.update_high_watermark(200);
    MetaProperties::new(7, "abcdefghijklmnopqrstuv")
        .write(&root)
        .expect("meta");
    let leo = log.log_end_offset();
    drop(log);
    m.shutdown().expect("shutdown");
    drop(m);
    assert!(root.join(CLEAN_SHUTDOWN_FILE).exists());
    let rp = std::fs::read_to_string(root.join("recovery-point-offset-checkpoint")).expect("rp");
    assert_eq!(rp, format!("0\n1\norders-x 3 {leo}\n"));
    let hw = std::fs::read_to_string(root.join("replication-offset-checkpoint")).expect("hw");
    assert_eq!(hw, "0\n1\norders-x 3 200\n");
    let part = root.join("orders-x-3");
    // Inactive and active indexes are trimmed at close.
    for e in std::fs::read_dir(&part).expect("ls") {
        let p = e.expect("e").path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let len = std::fs::metadata(&p).expect("m").len();
        if name.ends_with(".index") {
            assert_eq!(len % 8, 0);
            assert!(len < 4096, "{name} trimmed: {len}");
        }
        if name.ends_with(".timeindex") {
            assert_eq!(len % 12, 0);
            assert!(len < 4092, "{name} trimmed: {len}");
        }
    }
    let m = LogManager::open(mgr_config(&root)).expect("reopen");
    assert!(
        !root.join(CLEAN_SHUTDOWN_FILE).exists(),
        "marker deleted at startup"
    );
    assert!(m.had_clean_shutdown(&root));
    assert_eq!(
        MetaProperties::read(&root).expect("read"),
        Some(MetaProperties::new(7, "abcdefghijklmnopqrstuv"))
    );
    let log = m.get_log(&tp).expect("loaded");
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(log.high_watermark(), 200);
    assert_eq!(log.topic_id(), Some(id));
    assert_eq!(read_all_offsets(&log).len(), 30);
    // delete_log renames to -delete and removes it after the delay.
    m.delete_log(&tp).expect("delete");
    assert!(m.get_log(&tp).is_none());
    let deleted: Vec<_> = std::fs::read_dir(&root)
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with("-delete"))
        .collect();
    assert_eq!(deleted.len(), 1);
    m.run_pending_deletions(i64::MAX);
    assert!(!deleted[0].path().exists());
    m.shutdown().expect("shutdown");
}

#[test]
fn missing_indexes_and_temp_files_at_startup() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("logs");
    let m = LogManager::open(mgr_config(&root)).expect("open");
    let tp = TopicPartition::new("t", 0);
    let log = m
        .get_or_create_log(&tp, None, m.default_config().clone())
        .expect("create");
    fill(&log, &[10; 30]);
    let segs = log.segments();
    let part = log.dir();
    let first = segs[0].base_offset();
    let second = segs[1].base_offset();
    let before: Vec<_> = segs[0].offset_index_entries_vec().expect("index entries");
    drop(segs);
    drop(log);
    m.shutdown().expect("shutdown");
    drop(m);
    let f = |b: i64, s: &str| super::segment::file_name(&part, b, s);
    std::fs::remove_file(f(first, ".index")).expect("rm");
    std::fs::remove_file(f(first, ".timeindex")).expect("rm");
    std::fs::write(f(second, ".log.deleted"), b"x").expect("w");
    std::fs::write(f(999, ".log.cleaned"), b"x").expect("w");
    std::fs::write(f(999_999, ".index"), b"").expect("orphan index");
    let m = LogManager::open(mgr_config(&root)).expect("reopen");
    let log = m.get_log(&tp).expect("log");
    assert_eq!(
        log.segments()[0]
            .offset_index_entries_vec()
            .expect("index entries"),
        before,
        "index rebuilt"
    );
    assert!(!f(second, ".log.deleted").exists());
    assert!(!f(999, ".log.cleaned").exists());
    assert!(!f(999_999, ".index").exists());
    assert_eq!(read_all_offsets(&log).len(), 30);
    m.shutdown().expect("shutdown");
}

#[test]
fn swap_file_replaces_its_range() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = LogConfig {
        segment_bytes: 2048,
        ..small_config()
    };
    let log = open(dir.path(), cfg.clone());
    fill(&log, &[10; 12]);
    let segs = log.segments();
    assert!(segs.len() >= 3);
    let part = log.dir();
    let (b0, b1) = (segs[0].base_offset(), segs[1].base_offset());
    drop(segs);
    log.close().expect("close");
    drop(log);
    let f = |b: i64, s: &str| super::segment::file_name(&part, b, s);
    // A "cleaned" copy of segment 0 (same bytes) parked as a swap file covers [b0, b1).
    std::fs::copy(f(b0, ".log"), f(b0, ".log.swap")).expect("copy");
    let log = reopen(
        dir.path(),
        cfg,
        LoadParams {
            had_clean_shutdown: true,
            ..LoadParams::default()
        },
    );
    assert!(!f(b0, ".log.swap").exists());
    assert!(f(b0, ".log").exists());
    assert_eq!(log.segments()[1].base_offset(), b1);
    assert_eq!(read_all_offsets(&log).len(), 12);
}

#[test]
fn idempotent_duplicates_answer_with_original_offsets() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = open(dir.path(), small_config());
    let now = now_ms();
    let mk = |seq: i32| {
        let m = BatchMeta {
            producer_id: 42,
            producer_epoch: 0,
            base_sequence: seq,
            ..meta()
        };
        let v = b"v";
        let recs: Vec<_> = (0..3)
            .map(|i| OwnedRecordRef {
                timestamp: now + i,
                key: Some(b"k"),
                value: Some(v),
                header_count: 0,
                headers_raw: &[],
            })
            .collect();
        let mut out = Vec::new();
        build_batch(&mut out, 0, &m, &recs, CompressionCodec::None, None, None).expect("b");
        BytesMut::from(&out[..])
    };
    let a = log
        .append_as_leader(mk(0), 0, AppendOrigin::Client)
        .expect("a");
    let b = log
        .append_as_leader(mk(3), 0, AppendOrigin::Client)
        .expect("b");
    let dup = log
        .append_as_leader(mk(0), 0, AppendOrigin::Client)
        .expect("dup");
    assert!(dup.duplicate);
    assert_eq!(
        (dup.first_offset, dup.last_offset),
        (a.first_offset, a.last_offset)
    );
    assert_eq!(log.log_end_offset(), b.last_offset + 1);
    let e = log
        .append_as_leader(mk(10), 0, AppendOrigin::Client)
        .expect_err("gap");
    assert!(matches!(e, Error::OutOfOrderSequence(_)), "{e:?}");
}

/// One legacy (magic 0 or 1) message as old producers send it.
pub(crate) fn legacy_message(magic: u8, ts: i64, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut body = vec![magic, 0u8];
    if magic == 1 {
        body.extend_from_slice(&ts.to_be_bytes());
    }
    body.extend_from_slice(&(key.len() as i32).to_be_bytes());
    body.extend_from_slice(key);
    body.extend_from_slice(&(value.len() as i32).to_be_bytes());
    body.extend_from_slice(value);
    let mut m = Vec::new();
    m.extend_from_slice(&0i64.to_be_bytes());
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    m.extend_from_slice(&body);
    m
}

#[test]
fn legacy_message_sets_are_up_converted_to_magic_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let log = open(dir.path(), small_config());
    let now = now_ms();
    let mut set = legacy_message(1, now, b"k1", b"v1");
    set.extend(legacy_message(1, now + 5, b"k2", b"v2"));
    let info = log
        .append_as_leader(BytesMut::from(&set[..]), 2, AppendOrigin::Client)
        .expect("v1 append");
    assert_eq!((info.first_offset, info.last_offset), (0, 1));
    let v0 = legacy_message(0, -1, b"k3", b"v3");
    let info = log
        .append_as_leader(BytesMut::from(&v0[..]), 2, AppendOrigin::Client)
        .expect("v0 append");
    assert_eq!(info.first_offset, 2);
    let stored = stored_batches(&log);
    assert_eq!(stored.len(), 2);
    let mut all = Vec::new();
    for b in &stored {
        assert_eq!(b[16], 2, "stored as magic 2");
        super::records::check_batch_integrity(b).expect("crc");
        let mut bytes = bytes::Bytes::from(b.clone());
        all.extend(
            kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes)
                .expect("decode")
                .records,
        );
    }
    let got: Vec<_> = all
        .iter()
        .map(|r| {
            (
                r.offset,
                r.timestamp,
                r.value.as_deref().map(|v| v.to_vec()),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, now, Some(b"v1".to_vec())),
            (1, now + 5, Some(b"v2".to_vec())),
            (2, -1, Some(b"v3".to_vec())),
        ]
    );
    // A corrupted legacy CRC is a CORRUPT_MESSAGE.
    let mut bad = legacy_message(1, now, b"k", b"v");
    let n = bad.len();
    bad[n - 1] ^= 1;
    let e = log
        .append_as_leader(BytesMut::from(&bad[..]), 2, AppendOrigin::Client)
        .expect_err("crc");
    assert!(matches!(e, Error::CorruptMessage(_)), "{e:?}");
}

/// A legacy message with its own offset, attributes and optional null key.
fn legacy_message_at(offset: i64, magic: u8, attrs: u8, ts: i64, key: Option<&[u8]>) -> Vec<u8> {
    let mut body = vec![magic, attrs];
    if magic == 1 {
        body.extend_from_slice(&ts.to_be_bytes());
    }
    match key {
        Some(k) => {
            body.extend_from_slice(&(k.len() as i32).to_be_bytes());
            body.extend_from_slice(k);
        }
        None => body.extend_from_slice(&(-1i32).to_be_bytes()),
    }
    body.extend_from_slice(&1i32.to_be_bytes());
    body.push(b'v');
    let mut m = Vec::new();
    m.extend_from_slice(&offset.to_be_bytes());
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    m.extend_from_slice(&body);
    m
}

/// A gzip magic-1 wrapper (CreateTime) around `inner`, with the wrapper offset `offset`.
fn legacy_gzip_wrapper(offset: i64, ts: i64, inner: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(inner).expect("gzip");
    let value = gz.finish().expect("gzip");
    let mut body = vec![1u8, 1u8];
    body.extend_from_slice(&ts.to_be_bytes());
    body.extend_from_slice(&(-1i32).to_be_bytes());
    body.extend_from_slice(&(value.len() as i32).to_be_bytes());
    body.extend_from_slice(&value);
    let mut m = Vec::new();
    m.extend_from_slice(&offset.to_be_bytes());
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
    m.extend_from_slice(&body);
    m
}

/// Magic 0/1 input follows Kafka's `LogValidator`: every uncompressed message is a batch of its
/// own (the first bad one fails the append, batch index 0), a compressed wrapper is one batch
/// (indexes of its inner messages); messages name the offsets the producer wrote (absolute for
/// inner magic-1 messages); a producer's LogAppendTime, mixed magics and bad wrapper offsets are
/// refused.
#[test]
fn legacy_input_record_errors_follow_kafkas_batches() {
    use super::config::TimestampType;
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = LogConfig {
        compact: true,
        ..small_config()
    };
    let log = open(dir.path(), cfg.clone());
    let now = now_ms();
    let errors = |e: &Error| match e {
        Error::RecordValidation {
            invalid_timestamp,
            record_errors,
            ..
        } => (
            *invalid_timestamp,
            record_errors
                .iter()
                .map(|r| (r.batch_index, r.message.clone().unwrap_or_default()))
                .collect::<Vec<_>>(),
        ),
        other => panic!("not a record validation error: {other:?}"),
    };
    let no_key = "Compacted topic cannot accept message without key in topic partition";
    // Uncompressed: messages 1 and 3 lack a key; only message 1 is reported, as index 0.
    let mut set = Vec::new();
    for (o, k) in [
        (0, Some(&b"k"[..])),
        (1, None),
        (2, Some(&b"k"[..])),
        (3, None),
    ] {
        set.extend(legacy_message_at(o, 1, 0, now, k));
    }
    let e = log
        .append_as_leader(BytesMut::from(&set[..]), 0, AppendOrigin::Client)
        .expect_err("no key");
    let (ts, errs) = errors(&e);
    assert!(!ts);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, 0);
    assert!(errs[0].1.starts_with(no_key), "{}", errs[0].1);
    // Compressed wrapper (last offset 10, inner 0..3): inner indexes 1 and 3.
    let mut inner = Vec::new();
    for (o, k) in [
        (0, Some(&b"k"[..])),
        (1, None),
        (2, Some(&b"k"[..])),
        (3, None),
    ] {
        inner.extend(legacy_message_at(o, 1, 0, now, k));
    }
    let wrapper = legacy_gzip_wrapper(10, now, &inner);
    let e = log
        .append_as_leader(BytesMut::from(&wrapper[..]), 0, AppendOrigin::Client)
        .expect_err("no key");
    let (_, errs) = errors(&e);
    assert_eq!(errs.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 3]);

    // Timestamps name the producer's offsets: 2 for the third uncompressed message, and
    // 10 - 3 + 1 = 8 for the second inner message of the wrapper.
    let cfg = LogConfig {
        message_timestamp_before_max_ms: 3_600_000,
        ..small_config()
    };
    log.update_config(cfg.clone());
    let old = now - 7_200_000;
    let mut set = Vec::new();
    for (o, t) in [(0, now), (1, now), (2, old)] {
        set.extend(legacy_message_at(o, 1, 0, t, Some(b"k")));
    }
    let e = log
        .append_as_leader(BytesMut::from(&set[..]), 0, AppendOrigin::Client)
        .expect_err("old");
    let (ts, errs) = errors(&e);
    assert!(ts);
    assert_eq!(errs[0].0, 0);
    assert!(
        errs[0].1.starts_with(&format!(
            "Timestamp {old} of message with offset 2 is out of range"
        )),
        "{}",
        errs[0].1
    );
    let mut inner = Vec::new();
    for (o, t) in [(0, now), (1, old), (2, now), (3, now)] {
        inner.extend(legacy_message_at(o, 1, 0, t, Some(b"k")));
    }
    let e = log
        .append_as_leader(
            BytesMut::from(&legacy_gzip_wrapper(10, now, &inner)[..]),
            0,
            AppendOrigin::Client,
        )
        .expect_err("old");
    let (_, errs) = errors(&e);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].0, 1);
    assert!(
        errs[0].1.starts_with(&format!(
            "Timestamp {old} of message with offset 8 is out of range"
        )),
        "{}",
        errs[0].1
    );
    // A wrapper offset below the last inner offset (and not 0) is invalid.
    let e = log
        .append_as_leader(
            BytesMut::from(&legacy_gzip_wrapper(2, now, &inner)[..]),
            0,
            AppendOrigin::Client,
        )
        .expect_err("wrapper offset");
    assert!(
        matches!(e, Error::InvalidRecord(ref m) if m.contains("wrapper offset '2'")),
        "{e:?}"
    );
    // Mixed magics in one message set.
    let mut set = legacy_message_at(0, 0, 0, -1, Some(b"k"));
    set.extend(legacy_message_at(1, 1, 0, now, Some(b"k")));
    let e = log
        .append_as_leader(BytesMut::from(&set[..]), 0, AppendOrigin::Client)
        .expect_err("mixed");
    assert!(
        matches!(e, Error::InvalidRecord(ref m) if m.starts_with("Batch magic 1 is not the same as the first batch's magic byte 0")),
        "{e:?}"
    );

    // A producer's LogAppendTime bit on a LogAppendTime topic is refused.
    log.update_config(LogConfig {
        message_timestamp_type: TimestampType::LogAppendTime,
        ..cfg
    });
    let lat = legacy_message_at(0, 1, 0x08, now, Some(b"k"));
    let e = log
        .append_as_leader(BytesMut::from(&lat[..]), 0, AppendOrigin::Client)
        .expect_err("log append time");
    let (ts, errs) = errors(&e);
    assert!(ts);
    assert_eq!(errs[0].0, 0);
    assert!(
        errs[0].1.starts_with(
            "Invalid timestamp type in message LegacyRecordBatch(offset=0, Record(magic=1, attributes=8, compression=NONE, crc="
        ) && errs[0].1.ends_with(&format!(
            "LogAppendTime={now}, key=1 bytes, value=1 bytes)). Producer should not set timestamp type to LogAppendTime."
        )),
        "{}",
        errs[0].1
    );
    assert_eq!(log.log_end_offset(), 0, "nothing appended");
    // Without the bit the same message is taken.
    let ok = legacy_message_at(0, 1, 0, now, Some(b"k"));
    log.append_as_leader(BytesMut::from(&ok[..]), 0, AppendOrigin::Client)
        .expect("create time message");
}

#[test]
fn segment_ms_rolls_on_record_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = LogConfig {
        segment_ms: 10_000,
        ..small_config()
    };
    let log = open(dir.path(), cfg);
    let t0 = now_ms();
    for dt in [0, 4_000, 9_000] {
        log.append_as_leader(
            batch(1, 10, t0 + dt, CompressionCodec::None),
            0,
            AppendOrigin::Client,
        )
        .expect("append");
    }
    assert_eq!(log.num_segments(), 1);
    log.append_as_leader(
        batch(1, 10, t0 + 10_001, CompressionCodec::None),
        0,
        AppendOrigin::Client,
    )
    .expect("append");
    assert_eq!(log.num_segments(), 2);
    assert_eq!(log.segments()[1].base_offset(), 3);
    // The rolled segment's producer snapshot and trimmed indexes exist.
    let d = log.dir();
    assert!(super::segment::file_name(&d, 3, ".snapshot").exists());
    assert_eq!(
        std::fs::metadata(super::segment::file_name(&d, 0, ".index"))
            .expect("idx")
            .len(),
        0
    );
    assert_eq!(
        std::fs::metadata(super::segment::file_name(&d, 0, ".timeindex"))
            .expect("tidx")
            .len(),
        12,
        "final time index entry written at roll"
    );
}

/// The periodic HW checkpoint, the replica manager's and shutdown's can run at once:
/// none may fail (shared `.tmp` file) or take the dir offline, and the file stays valid.
#[test]
fn concurrent_high_watermark_checkpoints_never_take_dir_offline() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("logs");
    let m = LogManager::open(mgr_config(&root)).expect("open");
    for p in 0..4 {
        let log = m
            .get_or_create_log(
                &TopicPartition::new("hw", p),
                None,
                m.default_config().clone(),
            )
            .expect("create");
        fill(&log, &[10; 5]);
        log.update_high_watermark(3);
    }
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    if i % 3 == 0 {
                        m.checkpoint_recovery_points().expect("rp");
                    }
                    m.checkpoint_high_watermarks().expect("hw");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread");
    }
    assert!(m.offline_dirs().is_empty(), "no dir taken offline");
    m.shutdown().expect("shutdown");
    assert!(root.join(CLEAN_SHUTDOWN_FILE).exists());
    let hw = super::checkpoint_io::read_or_empty(&root.join("replication-offset-checkpoint"))
        .expect("valid checkpoint");
    assert_eq!(hw.len(), 4);
    assert!((0..4).all(|p| hw.get(&TopicPartition::new("hw", p)) == Some(&3)));
}
