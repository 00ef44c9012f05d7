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
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use memmap2::MmapMut;

/// A preallocated index file of fixed-size big-endian entries, memory-mapped only while in use.
///
/// Holds the only `unsafe` of the storage engine (the mmap itself). No file descriptor is
/// kept: the mapping stays valid after the file is closed (as Kafka's `AbstractIndex` closes
/// its `RandomAccessFile` once mapped), and the rare length changes reopen the file by path.
///
/// The mapping itself is lazy (Kafka's `LazyIndex`): opening an index reads its length and
/// last entry with `pread` and maps nothing; the first append or search that needs an entry
/// maps the file, and [`IndexFile::unmap_if_idle`] (the log manager's idle sweep) drops maps
/// not touched for a while. Counts and the last entry live in memory, so an idle partition
/// costs no map at all: 30,000 replicas per broker stay far below `vm.max_map_count`.
#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    mmap: Option<MmapMut>,
    /// Length of the file (bytes, a multiple of the entry size): what a map would cover.
    len: usize,
    entry_size: usize,
    entries: usize,
    max_entries: usize,
    /// When the map was last needed (meaningful only while mapped).
    last_used: Instant,
}

/// Largest entry size (time index: 12 bytes).
pub(crate) const MAX_ENTRY_SIZE: usize = 12;

/// One entry's bytes, copied out of the map or the file.
pub(crate) type Slot = [u8; MAX_ENTRY_SIZE];

impl IndexFile {
    /// Opens (or creates) an index file. A newly created (or empty) file is preallocated to
    /// `max_index_size` rounded down to the entry size; an existing one keeps its length and
    /// every slot counts as a valid entry. Nothing is mapped yet.
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
        let idx = Self {
            path: path.to_path_buf(),
            mmap: None,
            len: size,
            entry_size,
            entries,
            max_entries: size / entry_size,
            last_used: Instant::now(),
        };
        Ok((idx, newly_created))
    }

    fn open_rw(&self) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).open(&self.path)
    }

    /// The map of the whole file, made now if there is none.
    #[allow(unsafe_code)]
    fn mapped(&mut self) -> io::Result<&mut MmapMut> {
        self.last_used = Instant::now();
        if self.mmap.is_none() {
            let file = self.open_rw()?;
            // SAFETY: the mapping covers exactly the file's current length, which only this
            // struct changes (every set_len drops the map first). Index files are private to
            // this broker's locked log dir, so no other process truncates them under us; all
            // access goes through bounds-checked slices of the map.
            // A failure keeps its errno (ENOMEM past vm.max_map_count): the log-dir failure
            // line names the limit to raise (`log::limit_hint`).
            let map = unsafe { memmap2::MmapOptions::new().len(self.len).map_mut(&file)? };
            self.mmap = Some(map);
        }
        match &mut self.mmap {
            Some(m) => Ok(m),
            None => Err(io::Error::other("index map vanished")),
        }
    }

    /// Whether the file is mapped right now (tests, metrics).
    pub(crate) fn is_mapped(&self) -> bool {
        self.mmap.is_some()
    }

    /// Drops the map when it was not needed for `idle`; returns whether it did. The entries
    /// stay in the page cache and the file (a shared map writes through), nothing is lost.
    pub(crate) fn unmap_if_idle(&mut self, idle: Duration) -> bool {
        if self.mmap.is_some() && self.last_used.elapsed() >= idle {
            self.mmap = None;
            return true;
        }
        false
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

    /// The bytes of slot `n` (must be `< entries`): from the map when there is one, else
    /// read from the file without mapping it (loading a log reads only last entries).
    pub(crate) fn slot(&mut self, n: usize) -> io::Result<Slot> {
        let start = n * self.entry_size;
        let mut out = [0u8; MAX_ENTRY_SIZE];
        if n >= self.entries {
            return Err(io::Error::other(format!(
                "index {} slot {n} beyond its {} entries",
                self.path.display(),
                self.entries
            )));
        }
        let es = self.entry_size;
        if let Some(m) = &self.mmap {
            out[..es].copy_from_slice(&m[start..start + es]);
        } else {
            let file = File::open(&self.path)?;
            file.read_exact_at(&mut out[..es], start as u64)?;
        }
        Ok(out)
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
        let es = self.entry_size;
        let m = self.mapped()?;
        m[start..start + es].copy_from_slice(&entry[..es]);
        self.entries += 1;
        Ok(())
    }

    /// Drops every entry from slot `n` on.
    pub(crate) fn truncate_entries(&mut self, n: usize) {
        self.entries = self.entries.min(n);
    }

    /// Changes the file length (rounded down to the entry size). Entries beyond the new size
    /// are dropped. The file is mapped again on its next use.
    pub(crate) fn resize(&mut self, new_size: usize) -> io::Result<()> {
        let rounded = new_size / self.entry_size * self.entry_size;
        if rounded == self.len {
            return Ok(());
        }
        self.mmap = None;
        let file = self.open_rw()?;
        file.set_len(rounded as u64)?;
        self.len = rounded;
        self.max_entries = rounded / self.entry_size;
        self.entries = self.entries.min(self.max_entries);
        Ok(())
    }

    /// Shrinks the file to exactly the valid entries (done on roll and close).
    pub(crate) fn trim_to_valid_size(&mut self) -> io::Result<()> {
        self.resize(self.entries * self.entry_size)
    }

    pub(crate) fn flush(&self) -> io::Result<()> {
        if let Some(m) = &self.mmap {
            m.flush()?;
        }
        // The length (set on create, trim and resize) is file metadata, and pages written
        // through a map since dropped are in the page cache: sync the file too. A file
        // already deleted (segment being removed) has nothing left to make durable.
        match self.open_rw() {
            Ok(f) => f.sync_all(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Renames the file (e.g. to `.deleted`); a mapping stays valid.
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
        &mut self,
        target: i64,
        key_of: impl Fn(&[u8]) -> i64,
    ) -> io::Result<Option<usize>> {
        if self.entries == 0 {
            return Ok(None);
        }
        let (n, es) = (self.entries, self.entry_size);
        let m = self.mapped()?;
        let key = |i: usize| key_of(&m[i * es..(i + 1) * es]);
        if key(0) > target {
            return Ok(None);
        }
        let (mut lo, mut hi) = (0usize, n - 1);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if key(mid) <= target {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(Some(lo))
    }

    /// Smallest slot whose key is ≥ `target`; `None` if all keys are smaller.
    pub(crate) fn smallest_upper_bound(
        &mut self,
        target: i64,
        key_of: impl Fn(&[u8]) -> i64,
    ) -> io::Result<Option<usize>> {
        if self.entries == 0 {
            return Ok(None);
        }
        let (n, es) = (self.entries, self.entry_size);
        let m = self.mapped()?;
        let key = |i: usize| key_of(&m[i * es..(i + 1) * es]);
        if key(n - 1) < target {
            return Ok(None);
        }
        let (mut lo, mut hi) = (0usize, n - 1);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if key(mid) >= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(Some(lo))
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
        idx.last_offset = idx.compute_last_offset()?;
        Ok(idx)
    }

    fn compute_last_offset(&mut self) -> io::Result<i64> {
        Ok(match self.file.entries() {
            0 => self.base_offset,
            n => self.entry(n - 1)?.offset,
        })
    }

    fn entry(&mut self, n: usize) -> io::Result<OffsetPosition> {
        let s = self.file.slot(n)?;
        Ok(OffsetPosition {
            offset: self.base_offset + be_i32(&s[0..4]) as i64,
            position: be_i32(&s[4..8]) as u32,
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

    /// Greatest entry with offset ≤ `target`, or `(base, 0)` when there is none. Maps the
    /// file if needed (an empty index never is).
    pub fn lookup(&mut self, target: i64) -> io::Result<OffsetPosition> {
        let rel = target - self.base_offset;
        match self
            .file
            .largest_lower_bound(rel, |s| be_i32(&s[0..4]) as i64)?
        {
            Some(n) => self.entry(n),
            None => Ok(OffsetPosition {
                offset: self.base_offset,
                position: 0,
            }),
        }
    }

    /// Smallest entry with offset ≥ `target` (used to bound aborted-txn scans).
    pub fn fetch_upper_bound(&mut self, target: i64) -> io::Result<Option<OffsetPosition>> {
        let rel = target - self.base_offset;
        match self
            .file
            .smallest_upper_bound(rel, |s| be_i32(&s[0..4]) as i64)?
        {
            Some(n) => self.entry(n).map(Some),
            None => Ok(None),
        }
    }

    /// Offset of the first entry whose position is ≥ `position` (bounds aborted-txn
    /// lookups to the bytes a fetch returned).
    pub fn fetch_upper_bound_by_position(&mut self, position: u32) -> io::Result<Option<i64>> {
        match self
            .file
            .smallest_upper_bound(position as i64, |s| be_i32(&s[4..8]) as u32 as i64)?
        {
            Some(n) => Ok(Some(self.entry(n)?.offset)),
            None => Ok(None),
        }
    }

    /// Removes every entry with offset ≥ `offset`.
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let rel = offset - self.base_offset;
        let keep = match self
            .file
            .largest_lower_bound(rel, |s| be_i32(&s[0..4]) as i64)?
        {
            None => 0,
            Some(n) if be_i32(&self.file.slot(n)?[0..4]) as i64 == rel => n,
            Some(n) => n + 1,
        };
        self.file.truncate_entries(keep);
        self.last_offset = self.compute_last_offset()?;
        Ok(())
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
    pub fn sanity_check(&mut self) -> Result<(), String> {
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
            let e = self.entry(i).map_err(|e| e.to_string())?;
            if e.offset <= prev {
                return Err(format!("corrupt index {}", self.path().display()));
            }
            prev = e.offset;
        }
        Ok(())
    }

    /// All entries (tests and tools).
    pub fn entries_vec(&mut self) -> io::Result<Vec<OffsetPosition>> {
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
            idx.lookup(99).expect("lookup"),
            OffsetPosition {
                offset: 100,
                position: 0
            }
        );
        assert_eq!(
            idx.lookup(107).expect("lookup"),
            OffsetPosition {
                offset: 105,
                position: 0
            }
        );
        assert_eq!(
            idx.lookup(500).expect("lookup"),
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
        assert_eq!(idx.lookup(10).expect("lookup").position, 900);
    }

    /// Lazy maps: opening (new or existing) maps nothing, a lookup on an empty index maps
    /// nothing, the first append or search maps, the idle sweep unmaps, and everything still
    /// reads back the same after unmapping and after reopening.
    #[test]
    fn maps_only_when_needed() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("00000000000000000050.index");
        let mut idx = OffsetIndex::open(&p, 50, 800).expect("open");
        assert!(!idx.is_mapped(), "a new index is mapped at open");
        assert_eq!(idx.lookup(70).expect("lookup").offset, 50);
        assert!(!idx.is_mapped(), "an empty index was mapped for a lookup");
        idx.append(60, 10).expect("append");
        assert!(idx.is_mapped());
        assert!(
            !idx.unmap_if_idle(Duration::from_secs(3600)),
            "unmapped while in use"
        );
        assert!(idx.unmap_if_idle(Duration::ZERO));
        assert!(!idx.is_mapped());
        idx.append(70, 20).expect("append after unmap");
        assert!(idx.unmap_if_idle(Duration::ZERO));
        assert_eq!(idx.lookup(75).expect("lookup").position, 20);
        assert!(idx.is_mapped(), "a search maps the file");
        idx.trim_to_valid_size().expect("trim");
        assert!(!idx.is_mapped(), "a resize leaves the map to the next use");
        drop(idx);
        let mut idx = OffsetIndex::open(&p, 50, 800).expect("reopen");
        assert!(!idx.is_mapped(), "reopening maps the file");
        assert_eq!(idx.last_offset(), 70, "last entry read without a map");
        idx.sanity_check().expect("sane");
        assert!(!idx.is_mapped(), "sanity check maps the file");
        assert_eq!(
            idx.entries_vec().expect("entries"),
            vec![
                OffsetPosition {
                    offset: 60,
                    position: 10
                },
                OffsetPosition {
                    offset: 70,
                    position: 20
                }
            ]
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Append(i64),
        Lookup(i64),
        Unmap,
        Truncate(i64),
        Trim,
        Regrow,
        Reopen,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1i64..40).prop_map(Op::Append),
            2 => (0i64..2000).prop_map(Op::Lookup),
            1 => Just(Op::Unmap),
            1 => (0i64..2000).prop_map(Op::Truncate),
            1 => Just(Op::Trim),
            1 => Just(Op::Regrow),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        /// Any interleaving of appends, searches, idle unmaps, truncations, trims, regrowth
        /// and reopening gives the answers of an in-memory model, and the file holds exactly
        /// the model's entries in Kafka's format at the end.
        #[test]
        fn lazy_map_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
            let dir = tempfile::tempdir().expect("tmp");
            let p = dir.path().join("00000000000000000000.index");
            let mut idx = OffsetIndex::open(&p, 0, 4096).expect("open");
            let mut model: Vec<(i64, u32)> = Vec::new();
            let mut next_pos = 0u32;
            for op in ops {
                match op {
                    Op::Append(d) => {
                        let off = model.last().map_or(0, |m| m.0) + d;
                        match idx.append(off, next_pos) {
                            Ok(()) => model.push((off, next_pos)),
                            Err(_) => prop_assert!(idx.is_full()),
                        }
                        next_pos += 100;
                    }
                    Op::Lookup(t) => {
                        let want = model.iter().rev().find(|m| m.0 <= t).map_or(
                            OffsetPosition { offset: 0, position: 0 },
                            |&(offset, position)| OffsetPosition { offset, position },
                        );
                        prop_assert_eq!(idx.lookup(t).expect("lookup"), want);
                    }
                    Op::Unmap => {
                        idx.unmap_if_idle(Duration::ZERO);
                        prop_assert!(!idx.is_mapped());
                    }
                    Op::Truncate(t) => {
                        idx.truncate_to(t).expect("truncate");
                        model.retain(|m| m.0 < t);
                    }
                    Op::Trim => idx.trim_to_valid_size().expect("trim"),
                    Op::Regrow => idx.resize(4096).expect("regrow"),
                    Op::Reopen => {
                        idx.trim_to_valid_size().expect("trim");
                        drop(idx);
                        idx = OffsetIndex::open(&p, 0, 4096).expect("reopen");
                        prop_assert!(!idx.is_mapped());
                        idx.resize(4096).expect("regrow");
                    }
                }
                prop_assert_eq!(idx.entries(), model.len());
                prop_assert_eq!(idx.last_offset(), model.last().map_or(0, |m| m.0));
            }
            idx.trim_to_valid_size().expect("trim");
            drop(idx);
            let mut want = Vec::new();
            for (o, p) in &model {
                want.extend_from_slice(&(*o as i32).to_be_bytes());
                want.extend_from_slice(&(*p as i32).to_be_bytes());
            }
            prop_assert_eq!(std::fs::read(&p).expect("read"), want);
        }
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
            prop_assert_eq!(idx.lookup(probe).expect("lookup"), expect);
            idx.truncate_to(cut).expect("truncate");
            model.retain(|(o, _)| *o < cut);
            prop_assert_eq!(idx.entries(), model.len());
            prop_assert_eq!(idx.last_offset(), model.last().map(|m| m.0).unwrap_or(0));
        }
    }
}
