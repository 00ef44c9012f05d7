//! Time index (`<base>.timeindex`).
//!
//! File format (Kafka `TimeIndex`): flat array of 12-byte entries, big-endian
//! `int64 timestamp` then `int32 relativeOffset`. An entry `(t, o)` records that the
//! largest timestamp seen up to offset `o` (the *last* offset of the batch that carried
//! it) is `t`. Entries are only added when the running max timestamp grows, so both
//! columns are non-decreasing. Same preallocate / trim-on-roll rule as the offset index
//! (10485760 bytes round down to 10485756). The index counts as full one slot early: the
//! last slot is kept for the entry written when the segment is rolled or closed.

use std::io;
use std::path::Path;

use super::offset_index::{be_i32, be_i64, IndexFile};

/// Entry size of the time index.
pub const TIME_ENTRY_SIZE: usize = 12;

/// `RecordBatch.NO_TIMESTAMP`.
pub const NO_TIMESTAMP: i64 = -1;

/// A timestamp → offset pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampOffset {
    pub timestamp: i64,
    pub offset: i64,
}

/// The sparse time index of one segment.
#[derive(Debug)]
pub struct TimeIndex {
    file: IndexFile,
    base_offset: i64,
    last: TimestampOffset,
}

impl TimeIndex {
    /// Opens or creates `path`; returns whether the file was newly created (Kafka then
    /// shrinks it to zero for a segment that is not being recovered).
    pub fn open(path: &Path, base_offset: i64, max_index_size: usize) -> io::Result<(Self, bool)> {
        let (file, created) = IndexFile::open(path, TIME_ENTRY_SIZE, max_index_size, true)?;
        let mut idx = Self {
            file,
            base_offset,
            last: TimestampOffset {
                timestamp: NO_TIMESTAMP,
                offset: base_offset,
            },
        };
        idx.last = idx.compute_last()?;
        Ok((idx, created))
    }

    fn compute_last(&mut self) -> io::Result<TimestampOffset> {
        Ok(match self.file.entries() {
            0 => TimestampOffset {
                timestamp: NO_TIMESTAMP,
                offset: self.base_offset,
            },
            n => self.entry(n - 1)?,
        })
    }

    fn entry(&mut self, n: usize) -> io::Result<TimestampOffset> {
        let s = self.file.slot(n)?;
        Ok(TimestampOffset {
            timestamp: be_i64(&s[0..8]),
            offset: self.base_offset + be_i32(&s[8..12]) as i64,
        })
    }

    /// Whether the file is mapped now (lazy map; tests).
    pub fn is_mapped(&self) -> bool {
        self.file.is_mapped()
    }
    /// Drops the map if unused for `idle` (the log manager's sweep).
    pub fn unmap_if_idle(&mut self, idle: std::time::Duration) -> bool {
        self.file.unmap_if_idle(idle)
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }
    pub fn entries(&self) -> usize {
        self.file.entries()
    }
    pub fn size_bytes(&self) -> usize {
        self.file.size_bytes()
    }
    /// Full one slot early (the last slot is reserved for the roll/close entry).
    pub fn is_full(&self) -> bool {
        self.file.entries() + 1 >= self.file.max_entries()
    }
    /// Last entry, or `(-1, base)` when empty.
    pub fn last_entry(&self) -> TimestampOffset {
        self.last
    }

    /// Appends `(timestamp, offset)` if `timestamp` is above the last entry's. With
    /// `skip_full_check` the reserved last slot may be used (roll/close).
    pub fn maybe_append(
        &mut self,
        timestamp: i64,
        offset: i64,
        skip_full_check: bool,
    ) -> io::Result<()> {
        if !skip_full_check && self.is_full() {
            return Err(io::Error::other(format!(
                "time index {} is full",
                self.path().display()
            )));
        }
        if self.entries() > 0 && offset < self.last.offset {
            return Err(io::Error::other(format!(
                "time index append of offset {offset} below last offset {}",
                self.last.offset
            )));
        }
        if self.entries() > 0 && timestamp < self.last.timestamp {
            return Err(io::Error::other(format!(
                "time index append of timestamp {timestamp} below last {}",
                self.last.timestamp
            )));
        }
        if timestamp > self.last.timestamp {
            let rel = offset - self.base_offset;
            if !(0..=i32::MAX as i64).contains(&rel) {
                return Err(io::Error::other("time index offset not relative to base"));
            }
            let mut e = [0u8; TIME_ENTRY_SIZE];
            e[0..8].copy_from_slice(&timestamp.to_be_bytes());
            e[8..12].copy_from_slice(&(rel as i32).to_be_bytes());
            if self.file.is_full() {
                return Err(io::Error::other("time index has no free slot"));
            }
            self.file.push(&e)?;
            self.last = TimestampOffset { timestamp, offset };
        }
        Ok(())
    }

    /// Greatest entry with timestamp ≤ `target`, or `(-1, base)` when none.
    pub fn lookup(&mut self, target: i64) -> io::Result<TimestampOffset> {
        match self
            .file
            .largest_lower_bound(target, |s| be_i64(&s[0..8]))?
        {
            Some(n) => self.entry(n),
            None => Ok(TimestampOffset {
                timestamp: NO_TIMESTAMP,
                offset: self.base_offset,
            }),
        }
    }

    /// Removes every entry with offset ≥ `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let rel = offset - self.base_offset;
        let keep = match self
            .file
            .largest_lower_bound(rel, |s| be_i32(&s[8..12]) as i64)?
        {
            None => 0,
            Some(n) if be_i32(&self.file.slot(n)?[8..12]) as i64 == rel => {
                // Several entries can't share an offset, but be safe: drop equal ones.
                n
            }
            Some(n) => n + 1,
        };
        self.file.truncate_entries(keep);
        self.last = self.compute_last()?;
        Ok(())
    }

    pub fn reset(&mut self, max_index_size: usize) -> io::Result<()> {
        self.file.truncate_entries(0);
        self.last = self.compute_last()?;
        self.file.resize(max_index_size)
    }
    pub fn resize(&mut self, max_index_size: usize) -> io::Result<()> {
        self.file.resize(max_index_size)?;
        self.last = self.compute_last()?;
        Ok(())
    }
    pub fn trim_to_valid_size(&mut self) -> io::Result<()> {
        self.file.trim_to_valid_size()
    }
    pub fn flush(&self) -> io::Result<()> {
        self.file.flush()
    }
    pub fn rename_to(&mut self, to: &Path) -> io::Result<()> {
        self.file.rename_to(to)
    }
    pub fn delete(&mut self) -> io::Result<()> {
        self.file.delete()
    }
    pub(crate) fn rename_path_only(&mut self, to: std::path::PathBuf) {
        self.file.set_path(to)
    }

    /// Kafka's `sanityCheck`.
    pub fn sanity_check(&mut self) -> Result<(), String> {
        if self.entries() != 0 {
            let first = self.entry(0).map_err(|e| e.to_string())?;
            if self.last.timestamp < first.timestamp || self.last.offset < self.base_offset {
                return Err(format!("corrupt time index {}", self.path().display()));
            }
        }
        Ok(())
    }

    pub fn entries_vec(&mut self) -> io::Result<Vec<TimestampOffset>> {
        (0..self.entries()).map(|i| self.entry(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_only_on_growth_and_full_one_early() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("00000000000000000000.timeindex");
        let (mut idx, created) = TimeIndex::open(&p, 0, 40).expect("open");
        assert!(created);
        assert_eq!(std::fs::metadata(&p).expect("m").len(), 36);
        idx.maybe_append(10, 3, false).expect("a");
        idx.maybe_append(10, 5, false).expect("same ts ignored");
        assert_eq!(idx.entries(), 1);
        idx.maybe_append(20, 7, false).expect("b");
        assert!(idx.is_full());
        assert!(idx.maybe_append(30, 9, false).is_err());
        idx.maybe_append(30, 9, true).expect("reserved slot");
        assert_eq!(
            idx.lookup(25).expect("lookup"),
            TimestampOffset {
                timestamp: 20,
                offset: 7
            }
        );
        assert_eq!(
            idx.lookup(5).expect("lookup"),
            TimestampOffset {
                timestamp: -1,
                offset: 0
            }
        );
        idx.truncate_to(7).expect("truncate");
        assert_eq!(
            idx.last_entry(),
            TimestampOffset {
                timestamp: 10,
                offset: 3
            }
        );
        idx.trim_to_valid_size().expect("trim");
        assert_eq!(std::fs::metadata(&p).expect("m").len(), 12);
    }
}
