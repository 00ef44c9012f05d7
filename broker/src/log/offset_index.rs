//! Offset index (`<base>.index`) and the memory-mapped index file both indexes share.
//!
//! File format (Kafka `OffsetIndex`): a flat array of 8-byte entries, big-endian
//! `int32 relativeOffset` (offset − segment base) then `int32 position` (byte position of
//! a batch in the `.log`). Entries strictly increase in offset. An entry `(k, p)` means
//! "the batch holding offset `k` starts at or after byte `p`".
//!
//! Sizing: a *new* index file is preallocated to `segment.index.bytes` rounded down to a
//! multiple of the entry size and memory-mapped; an *existing* file is taken to be full of
//! valid entries (count = length / 8). That is why an index must be trimmed to its real
//! entry count when its segment is rolled or closed — Kafka relies on it when it reopens
//! our files, and we rely on it when we reopen Kafka's.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

/// A preallocated, memory-mapped array of fixed-size big-endian entries.
///
/// Holds the only `unsafe` of the storage engine (the mmap itself). No file descriptor is
/// kept: the mapping stays valid after the file is closed (as Kafka's `AbstractIndex` closes
/// its `RandomAccessFile` once mapped), and the rare length changes reopen the file by path.
/// With tens of thousands of segments this is two descriptors per segment fewer (one
/// `.log` descriptor each instead of three), which is what keeps 10,000 replicas per broker
/// under a 20,000 open-files limit.
#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    mmap: Option<MmapMut>,
    entry_size: usize,
    entries: usize,
    max_entries: usize,
}

impl IndexFile {
    /// Opens (or creates) an index file. A newly created (or empty) file is preallocated to
    /// `max_index_size` rounded down to the entry size; an existing one keeps its length and
    /// every slot counts as a valid entry.
    pub(crate) fn open(
        path: &Path,
        entry_size: usize,
        max_index_size: usize,
        writable: bool,
    ) -> io::Result<(Self, bool)> {
        let newly_created = !path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len() as usize;
        let (entries, size) = if newly_created && writable {
            let size = max_index_size / entry_size * entry_size;
            file.set_len(size as u64)?;
            (0, size)
        } else {
            let size = len / entry_size * entry_size;
            (size / entry_size, len)
        };
        let mut idx = Self {
            path: path.to_path_buf(),
            mmap: None,
            entry_size,
            entries,
            max_entries: size / entry_size,
        };
        idx.remap(&file, size)?;
        Ok((idx, newly_created))
    }

    fn open_rw(&self) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(&self.path)
    }

    #[allow(unsafe_code)]
    fn remap(&mut self, file: &File, len: usize) -> io::Result<()> {
        self.mmap = None;
        if len == 0 {
            return Ok(());
        }
        // SAFETY: the mapping covers exactly the file's current length, which only this
        // struct changes (set_len is always followed by a remap). Index files are private to
        // this broker's locked log dir, so no other process truncates them under us; all
        // access goes through bounds-checked slices of the map.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(file)? };
        self.mmap = Some(map);
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
    pub(crate) fn entries(&self) -> usize {
        self.entries
    }
    pub(crate) fn max_entries(&self) -> usize {
        self.max_entries
    }
    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.max_entries
    }
    /// Bytes of valid entries.
    pub(crate) fn size_bytes(&self) -> usize {
        self.entries * self.entry_size
    }

    /// The raw bytes of slot `n` (must be `< entries`).
    pub(crate) fn slot(&self, n: usize) -> &[u8] {
        let start = n * self.entry_size;
        match &self.mmap {
            Some(m) => &m[start..start + self.entry_size],
            None => &[],
        }
    }

    /// Appends one entry; the caller checks ordering. Fails when the file is full.
    pub(crate) fn push(&mut self, entry: &[u8]) -> io::Result<()> {
        if self.is_full() {
            return Err(io::Error::other(format!(
                "index {} is full ({} entries)",
                self.path.display(),
                self.entries
            )));
        }
        let start = self.entries * self.entry_size;
        if let Some(m) = &mut self.mmap {
            m[start..start + self.entry_size].copy_from_slice(entry);
        }
        self.entries += 1;
        Ok(())
    }

    /// Drops every entry from slot `n` on.
    pub(crate) fn truncate_entries(&mut self, n: usize) {
        self.entries = self.entries.min(n);
    }

    /// Changes the file length (rounded down to the entry size) and remaps. Entries beyond
    /// the new size are dropped.
    pub(crate) fn resize(&mut self, new_size: usize) -> io::Result<()> {
        let rounded = new_size / self.entry_size * self.entry_size;
        self.mmap = None;
        let file = self.open_rw()?;
        file.set_len(rounded as u64)?;
        self.max_entries = rounded / self.entry_size;
        self.entries = self.entries.min(self.max_entries);
        self.remap(&file, rounded)
    }

    /// Shrinks the file to exactly the valid entries (done on roll and close).
    pub(crate) fn trim_to_valid_size(&mut self) -> io::Result<()> {
        self.resize(self.entries * self.entry_size)
    }

    pub(crate) fn flush(&self) -> io::Result<()> {
        if let Some(m) = &self.mmap {
            m.flush()?;
        }
        // The length (set on create, trim and resize) is file metadata: sync it too. A file
        // already deleted (segment being removed) has nothing left to make durable.
        match self.open_rw() {
            Ok(f) => f.sync_all(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Renames the file (e.g. to `.deleted`); the mapping stays valid.
    pub(crate) fn rename_to(&mut self, to: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, to)?;
        self.path = to.to_path_buf();
        Ok(())
    }

    /// Records a new path after the containing directory was renamed.
    pub(crate) fn set_path(&mut self, to: PathBuf) {
        self.path = to;
    }

    /// Unmaps and deletes the file (missing file is fine).
    pub(crate) fn delete(&mut self) -> io::Result<()> {
        self.mmap = None;
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Greatest slot whose key (from `key_of`) is ≤ `target`; `None` if all keys are larger.
    pub(crate) fn largest_lower_bound(
        &self,
        target: i64,
        key_of: impl Fn(&[u8]) -> i64,
    ) -> Option<usize> {
        if self.entries == 0 || key_of(self.slot(0)) > target {
            return None;
        }
        let (mut lo, mut hi) = (0usize, self.entries - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if key_of(self.slot(mid)) <= target {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Some(lo)
    }

    /// Smallest slot whose key is ≥ `target`; `None` if all keys are smaller.
    pub(crate) fn smallest_upper_bound(
        &self,
        target: i64,
        key_of: impl Fn(&[u8]) -> i64,
    ) -> Option<usize> {
        if self.entries == 0 || key_of(self.slot(self.entries - 1)) < target {
            return None;
        }
        let (mut lo, mut hi) = (0usize, self.entries - 1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if key_of(self.slot(mid)) >= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Some(lo)
    }
}

pub(crate) fn be_i32(b: &[u8]) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    i32::from_be_bytes(a)
}

pub(crate) fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

/// Entry size of the offset index.
pub const OFFSET_ENTRY_SIZE: usize = 8;

/// An offset → file position pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffsetPosition {
    pub offset: i64,
    pub position: u32,
}

/// The sparse offset index of one segment (see module docs for the byte layout).
#[derive(Debug)]
pub struct OffsetIndex {
    file: IndexFile,
    base_offset: i64,
    last_offset: i64,
}

impl OffsetIndex {
    /// Opens or creates `path`. `max_index_size` is `segment.index.bytes`.
    pub fn open(path: &Path, base_offset: i64, max_index_size: usize) -> io::Result<Self> {
        let (file, _) = IndexFile::open(path, OFFSET_ENTRY_SIZE, max_index_size, true)?;
        let mut idx = Self {
            file,
            base_offset,
            last_offset: base_offset,
        };
        idx.last_offset = idx.compute_last_offset();
        Ok(idx)
    }

    fn compute_last_offset(&self) -> i64 {
        match self.file.entries() {
            0 => self.base_offset,
            n => self.entry(n - 1).offset,
        }
    }

    fn entry(&self, n: usize) -> OffsetPosition {
        let s = self.file.slot(n);
        OffsetPosition {
            offset: self.base_offset + be_i32(&s[0..4]) as i64,
            position: be_i32(&s[4..8]) as u32,
        }
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn path(&self) -> &Path {
        self.file.path()
    }
    pub fn entries(&self) -> usize {
        self.file.entries()
    }
    pub fn max_entries(&self) -> usize {
        self.file.max_entries()
    }
    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }
    /// Offset of the last entry, or the base offset when empty.
    pub fn last_offset(&self) -> i64 {
        self.last_offset
    }
    pub fn size_bytes(&self) -> usize {
        self.file.size_bytes()
    }

    /// Adds `(offset, position)`; offsets must strictly increase.
    pub fn append(&mut self, offset: i64, position: u32) -> io::Result<()> {
        if self.entries() > 0 && offset <= self.last_offset {
            return Err(io::Error::other(format!(
                "offset index append of {offset} not above last offset {} in {}",
                self.last_offset,
                self.path().display()
            )));
        }
        let rel = offset - self.base_offset;
        if !(0..=i32::MAX as i64).contains(&rel) {
            return Err(io::Error::other(format!(
                "offset {offset} not relative to base {}",
                self.base_offset
            )));
        }
        let mut e = [0u8; OFFSET_ENTRY_SIZE];
        e[0..4].copy_from_slice(&(rel as i32).to_be_bytes());
        e[4..8].copy_from_slice(&(position as i32).to_be_bytes());
        self.file.push(&e)?;
        self.last_offset = offset;
        Ok(())
    }

    /// Greatest entry with offset ≤ `target`, or `(base, 0)` when there is none.
    pub fn lookup(&self, target: i64) -> OffsetPosition {
        let rel = target - self.base_offset;
        match self
            .file
            .largest_lower_bound(rel, |s| be_i32(&s[0..4]) as i64)
        {
            Some(n) => self.entry(n),
            None => OffsetPosition {
                offset: self.base_offset,
                position: 0,
            },
        }
    }

    /// Smallest entry with offset ≥ `target` (used to bound aborted-txn scans).
    pub fn fetch_upper_bound(&self, target: i64) -> Option<OffsetPosition> {
        let rel = target - self.base_offset;
        self.file
            .smallest_upper_bound(rel, |s| be_i32(&s[0..4]) as i64)
            .map(|n| self.entry(n))
    }

    /// Offset of the first entry whose position is ≥ `position` (bounds aborted-txn
    /// lookups to the bytes a fetch returned).
    pub fn fetch_upper_bound_by_position(&self, position: u32) -> Option<i64> {
        self.file
            .smallest_upper_bound(position as i64, |s| be_i32(&s[4..8]) as u32 as i64)
            .map(|n| self.entry(n).offset)
    }

    /// Removes every entry with offset ≥ `offset`.
    pub fn truncate_to(&mut self, offset: i64) {
        let rel = offset - self.base_offset;
        let keep = match self
            .file
            .largest_lower_bound(rel, |s| be_i32(&s[0..4]) as i64)
        {
            None => 0,
            Some(n) if be_i32(&self.file.slot(n)[0..4]) as i64 == rel => n,
            Some(n) => n + 1,
        };
        self.file.truncate_entries(keep);
        self.last_offset = self.compute_last_offset();
    }

    /// Empties the index and regrows it to `max_index_size` (recovery starts from here).
    pub fn reset(&mut self, max_index_size: usize) -> io::Result<()> {
        self.file.truncate_entries(0);
        self.last_offset = self.base_offset;
        self.file.resize(max_index_size)
    }

    pub fn resize(&mut self, max_index_size: usize) -> io::Result<()> {
        self.file.resize(max_index_size)
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
    pub(crate) fn rename_path_only(&mut self, to: PathBuf) {
        self.file.set_path(to)
    }

    /// Kafka's `sanityCheck`: a non-empty index whose last offset is below its base is corrupt.
    pub fn sanity_check(&self) -> Result<(), String> {
        if self.entries() != 0 && self.last_offset < self.base_offset {
            return Err(format!(
                "corrupt index {}: last offset {} below base {}",
                self.path().display(),
                self.last_offset,
                self.base_offset
            ));
        }
        let mut prev = i64::MIN;
        // Entries must strictly increase; cheap enough to verify only the tail.
        let n = self.entries();
        for i in n.saturating_sub(2)..n {
            let e = self.entry(i);
            if e.offset <= prev {
                return Err(format!("corrupt index {}", self.path().display()));
            }
            prev = e.offset;
        }
        Ok(())
    }

    /// All entries (tests and tools).
    pub fn entries_vec(&self) -> Vec<OffsetPosition> {
        (0..self.entries()).map(|i| self.entry(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn preallocates_trims_and_reopens() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("00000000000000000100.index");
        let mut idx = OffsetIndex::open(&p, 100, 1000).expect("open");
        assert_eq!(std::fs::metadata(&p).expect("meta").len(), 1000);
        assert_eq!(idx.max_entries(), 125);
        idx.append(105, 0).expect("append");
        idx.append(110, 4200).expect("append");
        assert!(idx.append(110, 5000).is_err());
        assert_eq!(
            idx.lookup(99),
            OffsetPosition {
                offset: 100,
                position: 0
            }
        );
        assert_eq!(
            idx.lookup(107),
            OffsetPosition {
                offset: 105,
                position: 0
            }
        );
        assert_eq!(
            idx.lookup(500),
            OffsetPosition {
                offset: 110,
                position: 4200
            }
        );
        idx.trim_to_valid_size().expect("trim");
        drop(idx);
        assert_eq!(std::fs::metadata(&p).expect("meta").len(), 16);
        let bytes = std::fs::read(&p).expect("read");
        assert_eq!(
            bytes,
            [0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0x10, 0x68]
        );
        let idx = OffsetIndex::open(&p, 100, 1000).expect("reopen");
        assert_eq!(idx.entries(), 2);
        assert!(idx.is_full());
        assert_eq!(idx.last_offset(), 110);
    }

    /// Whether any descriptor of this process is open on `p`.
    fn fd_open_on(p: &Path) -> bool {
        std::fs::read_dir("/proc/self/fd")
            .expect("fd dir")
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .any(|target| target == p)
    }

    /// An index holds its mapping but no file descriptor, through append, resize, trim and
    /// flush; the entries survive (the map is of the file, not of a private copy).
    #[test]
    fn keeps_no_descriptor_open() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("00000000000000000000.index");
        let mut idx = OffsetIndex::open(&p, 0, 1000).expect("open");
        let p = std::fs::canonicalize(&p).expect("canonical");
        assert!(!fd_open_on(&p), "descriptor left open after open");
        idx.append(3, 100).expect("append");
        idx.resize(2000).expect("resize");
        idx.append(9, 900).expect("append");
        idx.flush().expect("flush");
        assert!(!fd_open_on(&p), "descriptor left open after resize/flush");
        idx.trim_to_valid_size().expect("trim");
        assert_eq!(std::fs::metadata(&p).expect("meta").len(), 16);
        assert_eq!(
            std::fs::read(&p).expect("read"),
            [0, 0, 0, 3, 0, 0, 0, 100, 0, 0, 0, 9, 0, 0, 3, 0x84]
        );
        assert_eq!(idx.lookup(10).position, 900);
    }

    proptest! {
        #[test]
        fn lookup_and_truncate_match_model(deltas in proptest::collection::vec(1i64..50, 0..60), probe in 0i64..3000, cut in 0i64..3000) {
            let dir = tempfile::tempdir().expect("tmp");
            let p = dir.path().join("00000000000000000000.index");
            let mut idx = OffsetIndex::open(&p, 0, 4096).expect("open");
            let mut model = Vec::new();
            let mut off = 0i64;
            for (i, d) in deltas.iter().enumerate() {
                off += d;
                idx.append(off, (i * 100) as u32).expect("append");
                model.push((off, (i * 100) as u32));
            }
            let expect = model.iter().rev().find(|(o, _)| *o <= probe).map(|&(o, p)| OffsetPosition{offset:o, position:p}).unwrap_or(OffsetPosition{offset:0, position:0});
            prop_assert_eq!(idx.lookup(probe), expect);
            idx.truncate_to(cut);
            model.retain(|(o, _)| *o < cut);
            prop_assert_eq!(idx.entries(), model.len());
            prop_assert_eq!(idx.last_offset(), model.last().map(|m| m.0).unwrap_or(0));
        }
    }
}
