//! Storage engine benchmark (harness = false):
//!
//! `cargo bench -p samsa-broker --bench log_bench`
//!
//! * page-cache copy bandwidth: the same bytes copied file → file in 1 MiB chunks (the
//!   ceiling an append can reach on this machine, measured in the same run);
//! * append: 1 MiB batches of 100-byte records through `Log::append_as_leader`
//!   (validation, in-place offset assignment, index, page-cache write);
//! * read: `Log::read` of 1 MiB file slices over the whole log, plus copying the slices
//!   to user space (what a non-sendfile path would cost);
//! * recovery: reopening a 1 GiB log after an unclean stop (every batch CRC-checked,
//!   indexes rebuilt).
//!
//! Each figure is the median of `SAMSA_BENCH_RUNS` (3) runs; the data size is
//! `SAMSA_BENCH_MB` (1024) MiB.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use samsa_broker::log::log::{DeleteQueue, LoadParams};
use samsa_broker::log::records::{build_batch, BatchMeta, OwnedRecordRef};
use samsa_broker::log::{AppendOrigin, CompressionCodec, Log, LogConfig};
use samsa_common::types::TopicPartition;

const RECORD: usize = 100;

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One producer batch (base offset 0) of 100-byte values, just under 1 MiB.
fn template() -> (BytesMut, usize) {
    let value = vec![b'v'; RECORD];
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    // 100-byte value + ~11 bytes of record framing: stays under max.message.bytes.
    let n = 1_040_000 / (RECORD + 11);
    let recs: Vec<OwnedRecordRef<'_>> = (0..n)
        .map(|i| OwnedRecordRef {
            timestamp: now + (i as i64 % 100),
            key: None,
            value: Some(&value),
            header_count: 0,
            headers_raw: &[],
        })
        .collect();
    let meta = BatchMeta {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
        control: false,
        log_append_time: false,
        partition_leader_epoch: -1,
    };
    let mut out = Vec::new();
    build_batch(
        &mut out,
        0,
        &meta,
        &recs,
        CompressionCodec::None,
        None,
        None,
    )
    .expect("build");
    (BytesMut::from(&out[..]), n)
}

fn open_log(dir: &std::path::Path, params: LoadParams) -> Arc<Log> {
    let cfg = LogConfig {
        segment_bytes: 1 << 30,
        ..LogConfig::default()
    };
    Log::open(
        &dir.join("bench-0"),
        TopicPartition::new("bench", 0),
        cfg,
        params,
        Arc::new(DeleteQueue::default()),
        None,
    )
    .expect("open log")
}

fn copy_bandwidth(src: &std::path::Path, dst: &std::path::Path) -> f64 {
    let mut f = std::fs::File::open(src).expect("src");
    let mut out = std::fs::File::create(dst).expect("dst");
    let mut buf = vec![0u8; 1 << 20];
    let start = Instant::now();
    let mut total = 0usize;
    loop {
        let n = f.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).expect("write");
        total += n;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(out);
    let _ = std::fs::remove_file(dst);
    total as f64 / secs / 1e6
}

fn main() {
    let mb = env_usize("SAMSA_BENCH_MB", 1024);
    let runs = env_usize("SAMSA_BENCH_RUNS", 3).max(1);
    let base = std::env::var("SAMSA_BENCH_DIR")
        .unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").to_string());
    std::fs::create_dir_all(&base).expect("bench dir");
    let (tpl, per_batch) = template();
    let batches = mb;
    println!(
        "log_bench: {batches} batches of {} bytes ({per_batch} records of {RECORD} B), {runs} runs",
        tpl.len()
    );
    let (mut copy, mut app_mb, mut app_rec, mut rd_slices, mut rd_copy, mut rec_s, mut rec_mb) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let dir = tempfile::tempdir_in(&base).expect("tmp");
        // Append (unclean stop at the end: the log is dropped without close).
        let log = open_log(dir.path(), LoadParams::default());
        let mut spent = Duration::ZERO;
        let mut pending: Vec<BytesMut> = Vec::with_capacity(64);
        let mut done = 0;
        while done < batches {
            pending.clear();
            for _ in 0..64.min(batches - done) {
                pending.push(tpl.clone());
            }
            for b in pending.drain(..) {
                let t = Instant::now();
                log.append_as_leader(b, 0, AppendOrigin::Client)
                    .expect("append");
                spent += t.elapsed();
                done += 1;
            }
        }
        let bytes = (tpl.len() * batches) as f64;
        app_mb.push(bytes / spent.as_secs_f64() / 1e6);
        app_rec.push((per_batch * batches) as f64 / spent.as_secs_f64());
        let seg_path = log.segments()[0].log_path();
        // Same bytes, file → file, in the same run.
        copy.push(copy_bandwidth(&seg_path, &dir.path().join("copy.bin")));
        // Read: slices of up to 1 MiB over the whole log, then the same with a user copy.
        let leo = log.log_end_offset();
        log.update_high_watermark(leo);
        let t = Instant::now();
        let (mut off, mut total, mut n) = (0i64, 0usize, 0usize);
        while off < leo {
            let r = log.read(off, 1 << 20, leo, true).expect("read");
            total += r.size_bytes();
            n += 1;
            off += per_batch as i64;
        }
        let secs = t.elapsed().as_secs_f64();
        rd_slices.push(n as f64 / secs);
        let _ = total;
        let t = Instant::now();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0usize;
        off = 0;
        while off < leo {
            let r = log.read(off, 1 << 20, leo, true).expect("read");
            for s in &r.slices {
                let k = samsa_broker::log::records::read_fully_at(
                    &s.file,
                    &mut buf[..s.len],
                    s.position,
                )
                .expect("pread");
                total += k;
            }
            off += per_batch as i64;
        }
        rd_copy.push(total as f64 / t.elapsed().as_secs_f64() / 1e6);
        drop(log);
        // Recovery after the unclean stop.
        let t = Instant::now();
        let log = open_log(dir.path(), LoadParams::default());
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(log.log_end_offset(), leo, "recovery kept every batch");
        rec_s.push(secs);
        rec_mb.push(bytes / secs / 1e6);
        println!(
            "run {run}: copy {:.0} MB/s, append {:.0} MB/s ({:.2} M rec/s), read {:.0} slices/s, read+copy {:.0} MB/s, recovery {:.2} s ({:.0} MB/s)",
            copy[run], app_mb[run], app_rec[run] / 1e6, rd_slices[run], rd_copy[run], rec_s[run], rec_mb[run]
        );
    }
    let (c, a) = (median(copy), median(app_mb));
    println!("median page-cache copy bandwidth: {c:.0} MB/s");
    println!(
        "median append: {a:.0} MB/s, {:.2} M records/s = {:.0}% of copy bandwidth",
        median(app_rec) / 1e6,
        100.0 * a / c
    );
    println!(
        "median read: {:.0} slice lookups/s (1 MiB each, zero copy); read + user copy {:.0} MB/s",
        median(rd_slices),
        median(rd_copy)
    );
    println!(
        "median recovery of {} MiB after unclean stop: {:.2} s ({:.0} MB/s)",
        mb,
        median(rec_s),
        median(rec_mb)
    );
}
