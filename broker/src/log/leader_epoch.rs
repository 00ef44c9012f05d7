//! The leader epoch cache of one partition: which leader epoch started at which offset.
//!
//! Backing file: `<partition dir>/leader-epoch-checkpoint`, the checkpoint text format of
//! [`crate::log::checkpoint`] with `<epoch> <startOffset>` entry lines, ascending in both
//! fields:
//!
//! ```text
//! 0
//! 2
//! 0 0
//! 3 1500
//! ```
//!
//! Durability follows Kafka's `LeaderEpochFileCache`: a new entry is written (tmp file,
//! fsync, rename) before `assign` returns, so the file never misses an epoch; truncations only
//! mark the cache dirty and are written by [`LeaderEpochFileCache::flush`], which the
//! owner calls outside its hot locks. After an unclean shutdown the file may hold stale
//! entries past the log end or before the log start; log loading repairs that by calling
//! `truncate_from_end(LEO)` / `truncate_from_start(logStart)` again.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::log::checkpoint::{CheckpointFile, EpochEntry, LEADER_EPOCH_CHECKPOINT};

/// Epoch answer when nothing is known (OffsetsForLeaderEpoch `UNDEFINED_EPOCH`).
pub const UNDEFINED_EPOCH: i32 = -1;
/// Offset answer when nothing is known (OffsetsForLeaderEpoch `UNDEFINED_EPOCH_OFFSET`).
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

#[derive(Debug, Default)]
struct Inner {
    /// epoch → entry; ordered by epoch, and (invariant) by start offset too.
    epochs: BTreeMap<i32, EpochEntry>,
    /// Truncated in memory but not yet written to the checkpoint.
    dirty: bool,
}

/// Kafka's `LeaderEpochFileCache`. Shareable (`&self` everywhere, internal lock).
#[derive(Debug)]
pub struct LeaderEpochFileCache {
    path: RwLock<PathBuf>,
    inner: RwLock<Inner>,
}

fn invalid_entry(e: &EpochEntry) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "invalid partition leader epoch entry (epoch {}, start offset {})",
            e.epoch, e.start_offset
        ),
    )
}

impl LeaderEpochFileCache {
    /// Opens (creating empty if missing) `<dir>/leader-epoch-checkpoint` and loads it by
    /// assigning every entry in file order, like Kafka's constructor does. A malformed
    /// file is an `InvalidData` error; negative epochs/offsets are `InvalidInput`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let file = CheckpointFile::<EpochEntry>::new(&path)?;
        let entries = file.read()?;
        let cache = Self {
            path: RwLock::new(path),
            inner: RwLock::new(Inner::default()),
        };
        {
            let mut inner = cache.write_inner();
            for e in &entries {
                Self::assign_locked(&mut inner, *e)?;
            }
        }
        Ok(cache)
    }

    fn read_inner(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }
    fn write_inner(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Current checkpoint path.
    pub fn path(&self) -> PathBuf {
        self.path.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Points the cache at a renamed partition directory (e.g. `-delete` / `-future`
    /// renames); nothing is written.
    pub fn set_dir(&self, dir: &Path) {
        *self.path.write().unwrap_or_else(|p| p.into_inner()) = dir.join(LEADER_EPOCH_CHECKPOINT);
    }

    fn is_update_needed(inner: &Inner, e: &EpochEntry) -> bool {
        match inner.epochs.values().next_back() {
            Some(last) => e.epoch != last.epoch || e.start_offset < last.start_offset,
            None => true,
        }
    }

    /// Adds `e` after removing every entry that would break monotonicity (epoch ≥ new
    /// epoch or start offset ≥ new start offset). Returns whether anything changed.
    fn assign_locked(inner: &mut Inner, e: EpochEntry) -> io::Result<bool> {
        if e.epoch < 0 || e.start_offset < 0 {
            return Err(invalid_entry(&e));
        }
        if !Self::is_update_needed(inner, &e) {
            return Ok(false);
        }
        while let Some((&k, last)) = inner.epochs.iter().next_back() {
            if last.epoch >= e.epoch || last.start_offset >= e.start_offset {
                inner.epochs.remove(&k);
            } else {
                break;
            }
        }
        inner.epochs.insert(e.epoch, e);
        Ok(true)
    }

    fn write_locked(&self, inner: &mut Inner) -> io::Result<()> {
        let entries: Vec<EpochEntry> = inner.epochs.values().copied().collect();
        CheckpointFile::<EpochEntry>::new(self.path())?.write(&entries)?;
        inner.dirty = false;
        Ok(())
    }

    /// Records that `epoch` starts at `start_offset`; written to disk synchronously when
    /// it changes the cache. Returns whether the cache changed.
    pub fn assign(&self, epoch: i32, start_offset: i64) -> io::Result<bool> {
        let e = EpochEntry::new(epoch, start_offset);
        // Fast path without the write lock: the common case is "same epoch again".
        if !Self::is_update_needed(&self.read_inner(), &e) {
            if e.epoch < 0 || e.start_offset < 0 {
                return Err(invalid_entry(&e));
            }
            return Ok(false);
        }
        let mut inner = self.write_inner();
        if Self::assign_locked(&mut inner, e)? {
            self.write_locked(&mut inner)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Assigns several entries, then writes once if any were given.
    pub fn assign_all(&self, entries: &[EpochEntry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut inner = self.write_inner();
        for e in entries {
            Self::assign_locked(&mut inner, *e)?;
        }
        self.write_locked(&mut inner)
    }

    pub fn non_empty(&self) -> bool {
        !self.read_inner().epochs.is_empty()
    }

    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.read_inner().epochs.values().next_back().copied()
    }

    /// The newest epoch with an entry (the current leader epoch on a leader).
    pub fn latest_epoch(&self) -> Option<i32> {
        self.latest_entry().map(|e| e.epoch)
    }

    /// The epoch before the latest one.
    pub fn previous_epoch(&self) -> Option<i32> {
        let inner = self.read_inner();
        let mut it = inner.epochs.keys().rev();
        it.next()?;
        it.next().copied()
    }

    pub fn earliest_entry(&self) -> Option<EpochEntry> {
        self.read_inner().epochs.values().next().copied()
    }

    /// Largest epoch strictly below `epoch`.
    pub fn previous_epoch_of(&self, epoch: i32) -> Option<i32> {
        self.previous_entry(epoch).map(|e| e.epoch)
    }

    /// Entry with the largest epoch strictly below `epoch`.
    pub fn previous_entry(&self, epoch: i32) -> Option<EpochEntry> {
        self.read_inner()
            .epochs
            .range(..epoch)
            .next_back()
            .map(|(_, e)| *e)
    }

    /// Smallest epoch strictly above `epoch`.
    pub fn next_epoch(&self, epoch: i32) -> Option<i32> {
        let inner = self.read_inner();
        let next = epoch.checked_add(1)?;
        inner.epochs.range(next..).next().map(|(k, _)| *k)
    }

    pub fn epoch_entry(&self, epoch: i32) -> Option<EpochEntry> {
        self.read_inner().epochs.get(&epoch).copied()
    }

    /// OffsetsForLeaderEpoch answer `(epoch, endOffset)` for `requested_epoch`, given this
    /// replica's log end offset:
    /// * requested −1 → (−1, −1);
    /// * requested = latest epoch → (requested, LEO);
    /// * no epoch above requested → (−1, −1);
    /// * no epoch at or below requested → (requested, start of the next higher epoch);
    /// * else (largest epoch ≤ requested, start of the smallest epoch > requested).
    pub fn end_offset_for(&self, requested_epoch: i32, log_end_offset: i64) -> (i32, i64) {
        let inner = self.read_inner();
        if requested_epoch == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if inner.epochs.keys().next_back() == Some(&requested_epoch) {
            return (requested_epoch, log_end_offset);
        }
        let higher = requested_epoch
            .checked_add(1)
            .and_then(|n| inner.epochs.range(n..).next().map(|(_, e)| *e));
        let Some(higher) = higher else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match inner.epochs.range(..=requested_epoch).next_back() {
            None => (requested_epoch, higher.start_offset),
            Some((_, floor)) => (floor.epoch, higher.start_offset),
        }
    }

    fn truncate_from_end_map(
        epochs: &mut BTreeMap<i32, EpochEntry>,
        end_offset: i64,
    ) -> Vec<EpochEntry> {
        let mut removed = Vec::new();
        let last_start = epochs.values().next_back().map(|e| e.start_offset);
        if end_offset >= 0 && last_start.is_some_and(|s| s >= end_offset) {
            while let Some((&k, e)) = epochs.iter().next_back() {
                if e.start_offset >= end_offset {
                    removed.push(*e);
                    epochs.remove(&k);
                } else {
                    break;
                }
            }
        }
        removed
    }

    fn truncate_from_start_map(
        epochs: &mut BTreeMap<i32, EpochEntry>,
        start_offset: i64,
    ) -> Vec<EpochEntry> {
        let mut removed = Vec::new();
        while let Some((&k, e)) = epochs.iter().next() {
            if e.start_offset <= start_offset {
                removed.push(*e);
                epochs.remove(&k);
            } else {
                break;
            }
        }
        if let Some(last) = removed.last() {
            epochs.insert(last.epoch, EpochEntry::new(last.epoch, start_offset));
        }
        removed
    }

    /// Removes entries whose start offset is ≥ `end_offset` (log truncated to
    /// `end_offset`). Not written until [`Self::flush`]. Returns the removed entries.
    pub fn truncate_from_end(&self, end_offset: i64) -> Vec<EpochEntry> {
        let mut inner = self.write_inner();
        let removed = Self::truncate_from_end_map(&mut inner.epochs, end_offset);
        if !removed.is_empty() {
            inner.dirty = true;
        }
        removed
    }

    /// Log start raised to `start_offset`: drops entries starting at or below it and
    /// re-adds the last dropped epoch as starting at `start_offset` (so an entry at exactly
    /// `start_offset` survives). Not written until [`Self::flush`].
    pub fn truncate_from_start(&self, start_offset: i64) -> Vec<EpochEntry> {
        let mut inner = self.write_inner();
        let removed = Self::truncate_from_start_map(&mut inner.epochs, start_offset);
        if !removed.is_empty() {
            inner.dirty = true;
        }
        removed
    }

    /// Writes pending truncations, if any, unless the partition directory is gone (the
    /// log was deleted or moved meanwhile, as Kafka's `writeIfDirExists`).
    pub fn flush(&self) -> io::Result<()> {
        let mut inner = self.write_inner();
        if !inner.dirty {
            return Ok(());
        }
        let path = self.path();
        if path.parent().is_some_and(|d| !d.is_dir()) {
            return Ok(());
        }
        self.write_locked(&mut inner)
    }

    /// Whether truncations are waiting for [`Self::flush`].
    pub fn is_dirty(&self) -> bool {
        self.read_inner().dirty
    }

    /// The epoch of the batch holding `offset`: the entry starting exactly at `offset`,
    /// else the last entry starting before it.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let inner = self.read_inner();
        let mut previous = None;
        for e in inner.epochs.values() {
            if e.start_offset == offset {
                return Some(e.epoch);
            }
            if e.start_offset > offset {
                return previous;
            }
            previous = Some(e.epoch);
        }
        previous
    }

    /// Entries covering `[start_offset, end_offset)` as if the cache were truncated at
    /// both ends (start ignored when negative).
    pub fn epoch_entries_in_range(&self, start_offset: i64, end_offset: i64) -> Vec<EpochEntry> {
        let mut copy = self.read_inner().epochs.clone();
        if start_offset >= 0 {
            Self::truncate_from_start_map(&mut copy, start_offset);
        }
        Self::truncate_from_end_map(&mut copy, end_offset);
        copy.into_values().collect()
    }

    /// Deletes every entry and writes the empty file.
    pub fn clear_and_flush(&self) -> io::Result<()> {
        let mut inner = self.write_inner();
        inner.epochs.clear();
        self.write_locked(&mut inner)
    }

    /// Deletes every entry in memory only.
    pub fn clear(&self) {
        let mut inner = self.write_inner();
        inner.epochs.clear();
        inner.dirty = true;
    }

    pub fn epoch_entries(&self) -> Vec<EpochEntry> {
        self.read_inner().epochs.values().copied().collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::fs;

    fn cache() -> (tempfile::TempDir, LeaderEpochFileCache) {
        let dir = tempfile::tempdir().unwrap();
        let c = LeaderEpochFileCache::open(dir.path()).unwrap();
        (dir, c)
    }

    fn entries(c: &LeaderEpochFileCache) -> Vec<(i32, i64)> {
        c.epoch_entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn assign_writes_synchronously_and_reloads() {
        let (dir, c) = cache();
        assert!(c.assign(0, 0).unwrap());
        assert!(c.assign(3, 1500).unwrap());
        assert!(
            !c.assign(3, 1600).unwrap(),
            "same epoch at a later offset is a no-op"
        );
        let text = fs::read_to_string(dir.path().join("leader-epoch-checkpoint")).unwrap();
        assert_eq!(text, "0\n2\n0 0\n3 1500\n");
        let c2 = LeaderEpochFileCache::open(dir.path()).unwrap();
        assert_eq!(entries(&c2), vec![(0, 0), (3, 1500)]);
        assert_eq!(c2.latest_epoch(), Some(3));
        assert_eq!(c2.previous_epoch(), Some(0));
    }

    #[test]
    fn assign_removes_non_monotonic_entries() {
        let (_d, c) = cache();
        c.assign(2, 6).unwrap();
        c.assign(3, 8).unwrap();
        c.assign(4, 11).unwrap();
        // Same epoch, lower offset: replaces it.
        c.assign(4, 10).unwrap();
        assert_eq!(entries(&c), vec![(2, 6), (3, 8), (4, 10)]);
        // Higher epoch at a lower offset truncates every entry with offset >= 7.
        c.assign(5, 7).unwrap();
        assert_eq!(entries(&c), vec![(2, 6), (5, 7)]);
        // Lower epoch than latest removes entries with epoch >= it.
        c.assign(1, 9).unwrap();
        assert_eq!(entries(&c), vec![(1, 9)]);
        assert!(c.assign(-1, 5).is_err());
        assert!(c.assign(1, -5).is_err());
    }

    #[test]
    fn end_offset_for_matches_kafka() {
        let (_d, c) = cache();
        assert_eq!(
            c.end_offset_for(0, 0),
            (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)
        );
        c.assign(2, 6).unwrap();
        c.assign(4, 11).unwrap();
        c.assign(7, 20).unwrap();
        let leo = 30;
        assert_eq!(c.end_offset_for(-1, leo), (-1, -1));
        assert_eq!(c.end_offset_for(7, leo), (7, 30), "latest epoch → LEO");
        assert_eq!(
            c.end_offset_for(8, leo),
            (-1, -1),
            "above latest → undefined"
        );
        assert_eq!(c.end_offset_for(4, leo), (4, 20));
        assert_eq!(
            c.end_offset_for(5, leo),
            (4, 20),
            "gap → floor epoch, next start"
        );
        assert_eq!(c.end_offset_for(3, leo), (2, 11));
        assert_eq!(
            c.end_offset_for(1, leo),
            (1, 6),
            "below first → requested, first start"
        );
        assert_eq!(c.end_offset_for(2, leo), (2, 11));
    }

    #[test]
    fn epoch_for_offset_cases() {
        let (_d, c) = cache();
        assert_eq!(c.epoch_for_offset(5), None);
        c.assign(1, 5).unwrap();
        c.assign(3, 10).unwrap();
        assert_eq!(c.epoch_for_offset(4), None);
        assert_eq!(c.epoch_for_offset(5), Some(1));
        assert_eq!(c.epoch_for_offset(9), Some(1));
        assert_eq!(c.epoch_for_offset(10), Some(3));
        assert_eq!(c.epoch_for_offset(1000), Some(3));
    }

    #[test]
    fn truncations_are_flushed_lazily() {
        let (dir, c) = cache();
        c.assign(0, 0).unwrap();
        c.assign(1, 10).unwrap();
        c.assign(2, 20).unwrap();
        assert_eq!(c.truncate_from_end(20).len(), 1);
        assert!(
            c.truncate_from_end(25).is_empty(),
            "nothing starts at or after 25"
        );
        assert!(
            c.truncate_from_end(-1).is_empty(),
            "negative end offsets are ignored"
        );
        assert_eq!(entries(&c), vec![(0, 0), (1, 10)]);
        assert!(c.is_dirty());
        let path = dir.path().join("leader-epoch-checkpoint");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n3\n0 0\n1 10\n2 20\n"
        );
        c.flush().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n2\n0 0\n1 10\n");

        // Start truncation keeps the last epoch starting at or below the new start.
        c.assign(2, 20).unwrap();
        let removed = c.truncate_from_start(15);
        assert_eq!(removed.len(), 2);
        assert_eq!(entries(&c), vec![(1, 15), (2, 20)]);
        c.truncate_from_start(20);
        assert_eq!(
            entries(&c),
            vec![(2, 20)],
            "exclusive: an entry at the start survives"
        );
        assert!(c.truncate_from_start(19).is_empty());
        c.flush().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n1\n2 20\n");
    }

    #[test]
    fn flush_skips_deleted_dir_and_follows_renames() {
        let root = tempfile::tempdir().unwrap();
        let d1 = root.path().join("t-0");
        fs::create_dir(&d1).unwrap();
        let c = LeaderEpochFileCache::open(&d1).unwrap();
        c.assign(0, 0).unwrap();
        c.assign(1, 5).unwrap();
        let d2 = root.path().join("t-0.abc-delete");
        fs::rename(&d1, &d2).unwrap();
        c.truncate_from_end(5);
        c.flush().unwrap();
        assert!(!d1.exists());
        c.set_dir(&d2);
        c.assign(4, 7).unwrap();
        assert_eq!(
            fs::read_to_string(d2.join("leader-epoch-checkpoint")).unwrap(),
            "0\n2\n0 0\n4 7\n"
        );
    }

    #[test]
    fn corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("leader-epoch-checkpoint"), "0\n2\n0 0\n").unwrap();
        assert!(LeaderEpochFileCache::open(dir.path()).is_err());
    }

    #[test]
    fn range_and_navigation() {
        let (_d, c) = cache();
        c.assign(1, 0).unwrap();
        c.assign(3, 10).unwrap();
        c.assign(5, 20).unwrap();
        let r: Vec<_> = c
            .epoch_entries_in_range(5, 20)
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect();
        assert_eq!(r, vec![(1, 5), (3, 10)]);
        assert_eq!(entries(&c).len(), 3, "range query leaves the cache alone");
        assert_eq!(c.next_epoch(3), Some(5));
        assert_eq!(c.next_epoch(5), None);
        assert_eq!(c.previous_epoch_of(3), Some(1));
        assert_eq!(c.previous_entry(5), Some(EpochEntry::new(3, 10)));
        assert_eq!(c.earliest_entry(), Some(EpochEntry::new(1, 0)));
        c.clear_and_flush().unwrap();
        assert!(!c.non_empty());
    }

    proptest! {
        // Every assign fsyncs the checkpoint: keep the case count small.
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// After any sequence of assigns the cache is strictly increasing in both fields,
        /// the file round-trips, and end_offset_for agrees with a brute-force model.
        #[test]
        fn prop_monotonic_and_end_offset(ops in proptest::collection::vec((0i32..20, 0i64..200), 1..30),
                                         q in -1i32..25) {
            let (dir, c) = cache();
            for (e, o) in ops { c.assign(e, o).unwrap(); }
            let es = c.epoch_entries();
            for w in es.windows(2) {
                prop_assert!(w[0].epoch < w[1].epoch && w[0].start_offset < w[1].start_offset);
            }
            let reloaded = LeaderEpochFileCache::open(dir.path()).unwrap();
            prop_assert_eq!(reloaded.epoch_entries(), es.clone());
            let leo = 500;
            let got = c.end_offset_for(q, leo);
            let expect = if q == -1 { (-1, -1) }
                else if es.last().map(|e| e.epoch) == Some(q) { (q, leo) }
                else {
                    match es.iter().find(|e| e.epoch > q) {
                        None => (-1, -1),
                        Some(h) => match es.iter().rev().find(|e| e.epoch <= q) {
                            None => (q, h.start_offset),
                            Some(f) => (f.epoch, h.start_offset),
                        },
                    }
                };
            prop_assert_eq!(got, expect);
        }
    }
}
