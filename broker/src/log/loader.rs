//! Opening a partition dir exactly as Kafka's `LogLoader` does (storage spec §1.8, §3.7):
//!
//! 1. delete `*.deleted`; collect `*.cleaned` (min prefix) and `*.swap`;
//! 2. delete swaps at/above the min cleaned prefix, then every `*.cleaned`;
//! 3. each remaining `*.log.swap` replaces the segments in its offset range, then all
//!    `.swap` suffixes are dropped;
//! 4. load segments in offset order (index files without a `.log` are deleted; a segment
//!    without `.index` or with a corrupt index is recovered);
//! 5. unless this is a `-delete` dir or the dir was shut down cleanly, recover every
//!    segment from the one containing the recovery point; on the first truncation all
//!    later segments are deleted;
//! 6. start empty at the log-start checkpoint if it is beyond the data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::batch::BatchHeader;
use super::config::LogConfig;
use super::hooks::{EpochCache, ProducerState};
use super::records::FileBatchIter;
use super::segment::{
    file_name, LogOffsetMetadata, LogSegment, CLEANED_SUFFIX, DELETED_SUFFIX, INDEX_SUFFIX,
    LOG_SUFFIX, SWAP_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX,
};
use crate::error::Result;
use crate::log::log::LoadParams;

pub(crate) struct Loaded {
    pub segments: Vec<LogSegment>,
    pub leo: LogOffsetMetadata,
    pub recovery_point: i64,
    pub epochs: EpochCache,
    pub producers: ProducerState,
}

/// Numeric prefix of a segment file name (text before the first `.`).
fn prefix_offset(name: &str) -> Option<i64> {
    name.split('.').next()?.parse().ok()
}

fn list(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if !e.file_type()?.is_file() {
            continue;
        }
        if let Some(n) = e.file_name().to_str() {
            out.push((n.to_string(), e.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn is_index_name(n: &str) -> bool {
    n.ends_with(INDEX_SUFFIX) || n.ends_with(TIME_INDEX_SUFFIX) || n.ends_with(TXN_INDEX_SUFFIX)
}

fn remove(p: &Path) {
    if let Err(e) = std::fs::remove_file(p) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("could not delete {}: {e}", p.display());
        }
    }
}

pub(crate) fn load(dir: &Path, config: &LogConfig, params: &LoadParams) -> Result<Loaded> {
    // Steps 1-2.
    let mut min_cleaned = i64::MAX;
    let mut swaps = Vec::new();
    for (name, path) in list(dir)? {
        if name.ends_with(DELETED_SUFFIX) {
            remove(&path);
        } else if name.ends_with(CLEANED_SUFFIX) {
            if let Some(o) = prefix_offset(&name) {
                min_cleaned = min_cleaned.min(o);
            }
            remove(&path);
        } else if name.ends_with(SWAP_SUFFIX) {
            swaps.push((name, path));
        }
    }
    let mut kept_swaps = Vec::new();
    for (name, path) in swaps {
        match prefix_offset(&name) {
            Some(o) if o >= min_cleaned => remove(&path),
            _ => kept_swaps.push((name, path)),
        }
    }
    // Step 3.
    for (name, path) in &kept_swaps {
        if !name.ends_with(&format!("{LOG_SUFFIX}{SWAP_SUFFIX}")) {
            continue;
        }
        let Some(base) = prefix_offset(name) else {
            continue;
        };
        let next = {
            let f = std::fs::File::open(path)?;
            let len = f.metadata()?.len();
            let mut it = FileBatchIter::new(&f, 0, len);
            let mut next = base;
            while let Ok(Some((_, b))) = it.next_batch() {
                next = b.last_offset + 1;
            }
            next
        };
        for (n, p) in list(dir)? {
            if n.ends_with(SWAP_SUFFIX) {
                continue;
            }
            let is_seg_file = n.ends_with(LOG_SUFFIX) || is_index_name(&n);
            if let Some(o) = prefix_offset(&n) {
                if is_seg_file && o >= base && o < next {
                    remove(&p);
                }
            }
        }
    }
    for (name, path) in list(dir)? {
        if let Some(stripped) = name.strip_suffix(SWAP_SUFFIX) {
            std::fs::rename(&path, dir.join(stripped))?;
        }
    }

    // Step 4.
    let files = list(dir)?;
    let logs: BTreeMap<i64, ()> = files
        .iter()
        .filter(|(n, _)| n.ends_with(LOG_SUFFIX))
        .filter_map(|(n, _)| prefix_offset(n).map(|o| (o, ())))
        .collect();
    for (n, p) in &files {
        if is_index_name(n) {
            match prefix_offset(n) {
                Some(o) if logs.contains_key(&o) => {}
                _ => remove(p),
            }
        }
    }
    let epochs = EpochCache::load(dir)?;
    let mut producers = ProducerState::new(dir, params.producer_state)?;
    let max_index = config.index_bytes();
    let interval = config.index_interval_bytes.max(0) as usize;
    let mut segments: Vec<LogSegment> = Vec::new();
    for &base in logs.keys() {
        let had_index = file_name(dir, base, INDEX_SUFFIX).exists();
        let (seg, time_created) = LogSegment::open(dir, base, config, true, 0)?;
        if let Err(e) = seg.sanity_check(time_created, had_index) {
            // As Kafka's LogLoader: a missing index is an error only where it should exist (clean
            // shutdown or below the recovery point); a corrupt one (e.g. the zero-filled
            // preallocated tail left by kill -9) is a warning.
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(
                    "corrupt index of segment {base} in {} ({e}); rebuilding",
                    dir.display()
                );
            } else if params.had_clean_shutdown || base < params.recovery_point {
                tracing::error!(
                    "could not find the index of segment {base} in {} ({e}); rebuilding",
                    dir.display()
                );
            }
            seg.recover(interval, max_index, |_, _| {})?;
        }
        segments.push(seg);
    }

    let bases: Vec<i64> = segments.iter().map(|s| s.base_offset()).collect();
    producers.remove_stray_snapshots(&bases)?;
    let now = super::segment::now_ms();
    let log_start_ckpt = params.log_start_offset_checkpoint;

    // Step 5.
    if !params.is_delete_dir && !params.had_clean_shutdown {
        let start = segments
            .iter()
            .rposition(|s| s.base_offset() <= params.recovery_point)
            .unwrap_or(0);
        let mut cut_at = None;
        if let Some(first) = segments.get(start) {
            // Producer state as of the first recovered segment, then replay while recovering.
            let base = first.base_offset();
            producers.truncate_and_reload(log_start_ckpt, base, now)?;
            producers.rebuild(&bases, log_start_ckpt, base, false, now, |b, from, f| {
                scan_segment(&segments, b, from, f)
            })?;
        }
        for (i, seg) in segments.iter().enumerate().skip(start) {
            let mut ps_err = None;
            let truncated = seg.recover(interval, max_index, |batch, txn| {
                if let Err(e) = producers.recover_batch(batch, Some(txn)) {
                    ps_err.get_or_insert(e);
                }
                if let Some(h) = BatchHeader::parse(batch) {
                    if h.partition_leader_epoch >= 0
                        && epochs
                            .latest_epoch()
                            .is_none_or(|e| h.partition_leader_epoch > e)
                    {
                        if let Err(e) = epochs.assign(h.partition_leader_epoch, h.base_offset) {
                            tracing::warn!("epoch cache update failed: {e}");
                        }
                    }
                }
            })?;
            if let Some(e) = ps_err {
                return Err(e);
            }
            if truncated > 0 {
                tracing::warn!(
                    "truncated {truncated} invalid bytes at the end of segment {} in {}",
                    seg.base_offset(),
                    dir.display()
                );
                cut_at = Some(i + 1);
                break;
            }
        }
        if let Some(cut) = cut_at {
            for seg in segments.drain(cut..) {
                seg.delete_files()?;
            }
        }
    }
    let mut leo = match segments.last() {
        Some(s) => s.read_next_offset()?,
        None => params.log_start_offset_checkpoint,
    };
    // Step 6.
    if leo < params.log_start_offset_checkpoint {
        for seg in segments.drain(..) {
            seg.delete_files()?;
        }
        leo = params.log_start_offset_checkpoint;
    }
    if segments.is_empty() {
        let (seg, _) = LogSegment::open(dir, leo, config, false, 0)?;
        segments.push(seg);
    }
    let recovery_point = if params.had_clean_shutdown {
        leo
    } else {
        params.recovery_point.min(leo)
    };
    let bases: Vec<i64> = segments.iter().map(|s| s.base_offset()).collect();
    let log_start = log_start_ckpt.max(bases.first().copied().unwrap_or(0));
    producers.rebuild(
        &bases,
        log_start,
        leo,
        params.had_clean_shutdown,
        now,
        |b, from, f| scan_segment(&segments, b, from, f),
    )?;
    let active = segments
        .last()
        .ok_or_else(|| crate::error::Error::Internal("no segment after load".into()))?;
    active.resize_indexes(max_index)?;
    let leo_meta = LogOffsetMetadata {
        message_offset: leo,
        segment_base_offset: active.base_offset(),
        relative_position_in_segment: active.size(),
    };
    Ok(Loaded {
        segments,
        leo: leo_meta,
        recovery_point,
        epochs,
        producers,
    })
}

fn scan_segment(
    segments: &[LogSegment],
    base: i64,
    from: i64,
    f: &mut dyn FnMut(&[u8]),
) -> std::io::Result<()> {
    match segments.iter().find(|s| s.base_offset() == base) {
        Some(s) => s.for_each_batch_from(from, f),
        None => Ok(()),
    }
}
