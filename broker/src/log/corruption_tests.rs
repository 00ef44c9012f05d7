//! Crash-safety of log loading: a partition dir whose files were cut, overwritten or padded
//! (bad disk, kill -9, another tool) must open with an error or a recovered log, and the
//! opened log must serve reads and appends. Nothing here may panic.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use samsa_common::types::TopicPartition;

use super::batch::attr;
use super::cleaner::tests::{batch, marker, KV};
use super::config::{CompressionCodec, LogConfig};
use super::log::{DeleteQueue, LoadParams, Log};
use super::records::fix_crc;

fn cfg() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        segment_index_bytes: 4096,
        index_interval_bytes: 64,
        ..LogConfig::default()
    }
}

/// Follower-appends a mix of plain batches, idempotent batches and aborted / committed
/// transactions with rising leader epochs, so every file type of a partition dir exists.
fn fill(log: &Log, n: usize) {
    for i in 0..n {
        let at = log.log_end_offset();
        let epoch = (i / 4) as i32;
        let kv: [KV<'_>; 3] = [
            (Some(b"k1"), Some(b"value-one")),
            (Some(b"k2"), Some(b"value-two")),
            (None, Some(b"v3")),
        ];
        let mut b = match i % 3 {
            0 => batch(at, &kv, CompressionCodec::None, -1, 0),
            1 => batch(at, &kv[..2], CompressionCodec::Gzip, 100 + i as i64, 0),
            _ => batch(
                at,
                &kv[..1],
                CompressionCodec::None,
                100 + i as i64,
                attr::TRANSACTIONAL,
            ),
        };
        b[12..16].copy_from_slice(&epoch.to_be_bytes());
        fix_crc(&mut b);
        log.append_as_follower(&b).expect("append");
        if i % 3 == 2 {
            let mut m = marker(log.log_end_offset(), 100 + i as i64, i % 2 == 0);
            m[12..16].copy_from_slice(&epoch.to_be_bytes());
            fix_crc(&mut m);
            log.append_as_follower(&m).expect("marker");
        }
    }
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    v.sort();
    v
}

/// Damages `path`: 0 cut, 1 overwrite with noise, 2 append noise, 3 zero-fill the tail,
/// 4 grow with zeros, 5 replace with noise.
fn damage(path: &Path, mode: u8, frac: f64, noise: &[u8]) {
    let mut bytes = std::fs::read(path).expect("read");
    let at = ((bytes.len() as f64) * frac) as usize;
    match mode {
        0 => bytes.truncate(at),
        1 => {
            for (i, n) in noise.iter().enumerate() {
                if let Some(b) = bytes.get_mut(at + i) {
                    *b = *n;
                }
            }
        }
        2 => bytes.extend_from_slice(noise),
        3 => bytes[at..].iter_mut().for_each(|b| *b = 0),
        4 => bytes.resize(bytes.len() + 8 * noise.len() + 1, 0),
        _ => bytes = noise.to_vec(),
    }
    std::fs::write(path, bytes).expect("write");
}

/// Reads the whole log back (every offset reachable from the start) and the read_committed
/// view, then appends: none may panic; errors are fine.
fn exercise(log: &Arc<Log>) {
    let leo = log.log_end_offset();
    let mut off = log.log_start_offset();
    for _ in 0..200 {
        if off >= leo {
            break;
        }
        match log.read(off, 256, leo, true) {
            Ok(r) if !r.slices.is_empty() => off += 1,
            _ => break,
        }
        let _ = log.read_with_aborted_transactions(off, 256, leo, true);
    }
    let _ = log.fetch_offset_by_timestamp(1000);
    let _ = log.fetch_offset_by_timestamp(-1);
    let _ = log.end_offset_for_epoch(1);
    let at = log.log_end_offset();
    let b = batch(
        at,
        &[(Some(b"k"), Some(b"after"))],
        CompressionCodec::None,
        -1,
        0,
    );
    let _ = log.append_as_follower(&b);
    let _ = log.truncate_to(log.log_start_offset());
    let _ = log.close();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn damaged_partition_dir_never_panics(
        n in 1usize..12,
        clean in any::<bool>(),
        pick in any::<prop::sample::Index>(),
        mode in 0u8..6,
        frac in 0.0f64..1.0,
        noise in proptest::collection::vec(any::<u8>(), 1..64),
        recovery_point in 0i64..40,
    ) {
        let root = tempfile::tempdir().expect("tmp");
        let dir = root.path().join("t-0");
        let log = Log::open_standalone(&dir, cfg()).expect("open");
        fill(&log, n);
        if clean {
            log.close().expect("close");
        }
        drop(log);
        let all = files(&dir);
        let victim = pick.get(&all).clone();
        damage(&victim, mode, frac, &noise);
        let params = LoadParams {
            had_clean_shutdown: clean,
            recovery_point,
            ..LoadParams::default()
        };
        let opened = Log::open(
            &dir,
            TopicPartition::new("t", 0),
            cfg(),
            params,
            Arc::new(DeleteQueue::default()),
            None,
        );
        if let Ok(log) = opened {
            exercise(&log);
        }
    }
}

// ------------------------------------------------------------------------------------------
// Header values a client, a peer or a damaged file can put in a batch. Each of these used to
// overflow (a panic in debug builds, which `scripts/cluster.sh` runs by default).

use bytes::BytesMut;

use super::log::AppendOrigin;
use super::records::{build_batch, OwnedRecordRef};
use super::segment::now_ms;
use super::tests::meta;

fn records_at(ts: &[i64]) -> BytesMut {
    let recs: Vec<OwnedRecordRef<'_>> = ts
        .iter()
        .map(|t| OwnedRecordRef {
            timestamp: *t,
            key: Some(b"k"),
            value: Some(b"v"),
            header_count: 0,
            headers_raw: &[],
        })
        .collect();
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
    BytesMut::from(&out[..])
}

fn fresh() -> (tempfile::TempDir, Arc<Log>) {
    let root = tempfile::tempdir().expect("tmp");
    let log = Log::open_standalone(&root.path().join("t-0"), cfg()).expect("open");
    (root, log)
}

/// A client batch whose `base timestamp + delta` runs past i64::MIN: validation wraps (as
/// Kafka does), but the record scan behind ListOffsets by timestamp overflowed.
#[test]
fn client_timestamps_that_wrap_append_and_look_up() {
    let (_root, log) = fresh();
    let now = now_ms();
    log.append_as_leader(records_at(&[now]), 0, AppendOrigin::Client)
        .expect("plain");
    let mut b = records_at(&[5, 0]);
    b[27..35].copy_from_slice(&(i64::MIN + 2).to_be_bytes());
    fix_crc(&mut b);
    log.append_as_leader(b, 0, AppendOrigin::Client)
        .expect("append");
    // Record 1 wraps to i64::MAX - 2, the first at or after `now + 1`.
    let found = log.fetch_offset_by_timestamp(now + 1).expect("lookup");
    assert_eq!(found.map(|t| t.offset), Some(2));
    exercise(&log);
}

/// Bytes from a leader carry whatever max timestamp it wrote. For an idempotent producer a
/// far-past one overflowed the periodic producer expiry (`now - last timestamp`).
#[test]
fn follower_batches_with_far_past_max_timestamp() {
    let (_root, log) = fresh();
    let first = batch(
        0,
        &[(Some(b"k"), Some(b"v"))],
        CompressionCodec::None,
        -1,
        0,
    );
    log.append_as_follower(&first).expect("first");
    let mut b = batch(1, &[(Some(b"k"), Some(b"v"))], CompressionCodec::None, 7, 0);
    b[35..43].copy_from_slice(&(i64::MIN + 1).to_be_bytes());
    fix_crc(&mut b);
    log.append_as_follower(&b).expect("far past");
    assert_eq!(log.log_end_offset(), 2);
    log.remove_expired_producers(now_ms());
    exercise(&log);
}

/// A follower append (bytes from the leader) whose base offset is near i64::MAX: the last
/// offset overflowed. Now it is an offset error, and the log is untouched.
#[test]
fn follower_batch_with_base_offset_near_max_is_rejected() {
    let (_root, log) = fresh();
    let mut b = batch(
        i64::MAX - 1,
        &[
            (Some(b"k"), Some(b"v")),
            (Some(b"k"), Some(b"v")),
            (Some(b"k"), Some(b"v")),
        ],
        CompressionCodec::None,
        -1,
        0,
    );
    fix_crc(&mut b);
    assert!(log.append_as_follower(&b).is_err());
    assert_eq!(log.log_end_offset(), 0);
}

/// A damaged base offset on disk (it is outside the CRC) near i64::MAX: recovery cuts the
/// segment there instead of overflowing.
#[test]
fn recovery_cuts_at_a_base_offset_near_max() {
    let (root, log) = fresh();
    fill(&log, 2);
    let path = log.segments()[0].log_path();
    drop(log);
    let mut bytes = std::fs::read(&path).expect("read");
    let second = 12 + i32::from_be_bytes(bytes[8..12].try_into().expect("4")) as usize;
    bytes[second..second + 8].copy_from_slice(&(i64::MAX - 1).to_be_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let log = Log::open(
        &root.path().join("t-0"),
        TopicPartition::new("t", 0),
        cfg(),
        LoadParams::default(),
        Arc::new(DeleteQueue::default()),
        None,
    )
    .expect("reopen");
    assert_eq!(log.log_end_offset(), 3, "only the first batch survives");
    exercise(&log);
}

/// Old producers (magic 1) with timestamps at both ends of i64: up-conversion to magic 2
/// computed the record's timestamp delta with an overflowing subtraction.
#[test]
fn legacy_messages_with_extreme_timestamps_up_convert() {
    let (_root, log) = fresh();
    let mut set = super::tests::legacy_message(1, i64::MAX, b"k1", b"v1");
    set.extend(super::tests::legacy_message(1, i64::MIN + 1, b"k2", b"v2"));
    let info = log
        .append_as_leader(BytesMut::from(&set[..]), 0, AppendOrigin::Client)
        .expect("append");
    assert_eq!((info.first_offset, info.last_offset), (0, 1));
    exercise(&log);
}

/// The smallest `segment.index.bytes` Kafka accepts (4, via AlterConfigs) leaves indexes with
/// room for no entry: appends, reads, time lookups and a reopen still work.
#[test]
fn tiny_index_size_is_usable() {
    for bytes in [4, 8, 12, 13] {
        let root = tempfile::tempdir().expect("tmp");
        let dir = root.path().join("t-0");
        let cfg = LogConfig {
            segment_index_bytes: bytes,
            index_interval_bytes: 0,
            ..cfg()
        };
        let log = Log::open_standalone(&dir, cfg.clone()).expect("open");
        let now = now_ms();
        for i in 0..5 {
            log.append_as_leader(records_at(&[now + i, now + i + 1]), 0, AppendOrigin::Client)
                .expect("append");
        }
        assert_eq!(log.log_end_offset(), 10);
        let found = log.fetch_offset_by_timestamp(now + 3).expect("lookup");
        assert_eq!(found.map(|t| t.offset), Some(5));
        assert!(!log.is_offline());
        drop(log);
        let log = Log::open(
            &dir,
            TopicPartition::new("t", 0),
            cfg,
            LoadParams::default(),
            Arc::new(DeleteQueue::default()),
            None,
        )
        .expect("reopen");
        assert_eq!(log.log_end_offset(), 10);
        exercise(&log);
    }
}

/// Segments indexed under a large `segment.index.bytes`, recovered (unclean shutdown) after
/// it was lowered: the rebuilt index is sparser, the load does not fail (a failed load takes
/// the whole log dir offline).
#[test]
fn recovery_with_a_smaller_index_size_still_loads() {
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join("t-0");
    let big = LogConfig {
        segment_bytes: 1 << 20,
        index_interval_bytes: 0,
        ..cfg()
    };
    let log = Log::open_standalone(&dir, big.clone()).expect("open");
    let now = now_ms();
    for i in 0..50 {
        log.append_as_leader(records_at(&[now + i]), 0, AppendOrigin::Client)
            .expect("append");
    }
    drop(log);
    let small = LogConfig {
        segment_index_bytes: 4,
        ..big
    };
    let log = Log::open(
        &dir,
        TopicPartition::new("t", 0),
        small,
        LoadParams::default(),
        Arc::new(DeleteQueue::default()),
        None,
    )
    .expect("reopen");
    assert_eq!(log.log_end_offset(), 50);
    let found = log.fetch_offset_by_timestamp(now + 30).expect("lookup");
    assert_eq!(found.map(|t| t.offset), Some(30));
    exercise(&log);
}

/// Names no Kafka tool could create reach log creation through a forged LeaderAndIsr or a
/// hand-written topic znode: they are refused as INVALID_TOPIC_EXCEPTION. `..` used to
/// escape the log dir, and a name too long for the file system failed as an I/O error,
/// which takes the whole log dir offline.
#[test]
fn illegal_topic_names_do_not_touch_the_log_dir() {
    use super::manager::{LogManager, LogManagerConfig};
    let root = tempfile::tempdir().expect("tmp");
    let logs = root.path().join("logs");
    let m = LogManager::open(LogManagerConfig::new(vec![logs.clone()])).expect("open");
    for tp in [
        TopicPartition::new("../escape", 0),
        TopicPartition::new("a/b", 0),
        TopicPartition::new("x".repeat(300), 0),
        TopicPartition::new("t", -1),
    ] {
        let e = m
            .get_or_create_log(&tp, None, cfg())
            .expect_err("illegal name");
        assert_eq!(e.code(), 17, "{tp}: {e:?}");
    }
    assert!(!root.path().join("escape-0").exists());
    assert_eq!(m.live_dirs(), vec![logs]);
    m.get_or_create_log(&TopicPartition::new("ok", 0), None, cfg())
        .expect("legal name");
    m.shutdown().expect("shutdown");
}

/// Per-file damage that Kafka recovers from rather than failing the load (a failed load takes
/// the log dir offline): a corrupt producer snapshot is dropped and rebuilt from the log,
/// damaged indexes are rebuilt.
#[test]
fn recoverable_damage_opens_the_log() {
    for (suffix, clean) in [
        (".snapshot", true),
        (".snapshot", false),
        (".index", true),
        (".timeindex", true),
        (".index", false),
        (".timeindex", false),
    ] {
        let root = tempfile::tempdir().expect("tmp");
        let dir = root.path().join("t-0");
        let log = Log::open_standalone(&dir, cfg()).expect("open");
        fill(&log, 12);
        let leo = log.log_end_offset();
        if clean {
            log.close().expect("close");
        }
        drop(log);
        let mut hit = 0;
        for f in files(&dir) {
            if f.to_string_lossy().ends_with(suffix) {
                damage(&f, 1, 0.3, &[0xAB; 16]);
                hit += 1;
            }
        }
        assert!(hit > 0, "no {suffix} file");
        let log = Log::open(
            &dir,
            TopicPartition::new("t", 0),
            cfg(),
            LoadParams {
                had_clean_shutdown: clean,
                recovery_point: if clean { leo } else { 0 },
                ..LoadParams::default()
            },
            Arc::new(DeleteQueue::default()),
            None,
        )
        .unwrap_or_else(|e| panic!("{suffix} clean={clean}: {e:?}"));
        assert_eq!(log.log_end_offset(), leo, "{suffix} clean={clean}");
    }
}

/// Header fields outside the CRC can be anything (a client, a leader, a damaged file), and
/// inside it anything a CRC-fixing client sends. One or two fields at an extreme value, CRC
/// fixed: produce checks, leader and follower appends, reads, time lookups, down-conversion
/// and a reopen must not panic (debug builds check every overflow).
fn extreme_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        Just(-1),
        Just(1),
        Just(i64::MAX),
        Just(i64::MIN),
        Just(i64::MAX - 1),
        Just(i64::MIN + 1),
        Just(i64::from(i32::MAX)),
        Just(i64::from(i32::MIN)),
        any::<i64>(),
    ]
}

/// `(byte offset, width)` of each fixed header field of a v2 batch.
const FIELDS: [(usize, usize); 12] = [
    (0, 8),  // base offset
    (8, 4),  // batch length
    (12, 4), // partition leader epoch
    (21, 2), // attributes
    (23, 4), // last offset delta
    (27, 8), // base timestamp
    (35, 8), // max timestamp
    (43, 8), // producer id
    (51, 2), // producer epoch
    (53, 4), // base sequence
    (57, 4), // records count
    (16, 1), // magic
];

fn set_field(b: &mut [u8], field: usize, v: i64) {
    let (at, width) = FIELDS[field % FIELDS.len()];
    let bytes = v.to_be_bytes();
    b[at..at + width].copy_from_slice(&bytes[8 - width..]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn extreme_header_fields_never_panic(
        n in 1usize..4,
        gzip in any::<bool>(),
        edits in proptest::collection::vec((0usize..12, extreme_i64()), 1..3),
        fix in any::<bool>(),
    ) {
        let kv: [KV<'_>; 3] = [
            (Some(b"k1"), Some(b"value-one")),
            (Some(b"k2"), None),
            (None, Some(b"v3")),
        ];
        let codec = if gzip { CompressionCodec::Gzip } else { CompressionCodec::None };
        let mut b = batch(0, &kv[..n], codec, 5, 0);
        for (f, v) in &edits {
            set_field(&mut b, *f, *v);
        }
        if fix && b.len() >= 21 {
            fix_crc(&mut b);
        }
        let _ = crate::handlers::produce::validate_records(9, &b);
        let _ = super::down_convert::down_convert(&b, 1, 0);
        let _ = super::down_convert::down_convert(&b, 0, 0);
        let (root, log) = fresh();
        log.append_as_leader(records_at(&[now_ms()]), 0, AppendOrigin::Client).expect("seed");
        let _ = log.append_as_leader(BytesMut::from(&b[..]), 0, AppendOrigin::Client);
        let mut f = b.clone();
        set_field(&mut f, 0, log.log_end_offset());
        if fix {
            fix_crc(&mut f);
        }
        let _ = log.append_as_follower(&b);
        let _ = log.append_as_follower(&f);
        let _ = log.fetch_offset_by_timestamp(0);
        let _ = log.fetch_offset_by_timestamp(i64::MAX);
        let _ = log.fetch_offset_by_timestamp(-3);
        if let Ok(r) = log.read(0, 1 << 20, log.log_end_offset(), true) {
            for s in &r.slices {
                let bytes = s.read_to_vec().expect("slice");
                let _ = super::down_convert::down_convert(&bytes, 1, 0);
            }
        }
        log.remove_expired_producers(now_ms());
        drop(log);
        let reopened = Log::open(
            &root.path().join("t-0"),
            TopicPartition::new("t", 0),
            cfg(),
            LoadParams::default(),
            Arc::new(DeleteQueue::default()),
            None,
        );
        if let Ok(log) = reopened {
            exercise(&log);
        }
    }
}
