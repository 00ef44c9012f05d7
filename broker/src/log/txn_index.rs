//! The aborted-transaction index of one segment (`<base offset, 20 digits>.txnindex`).
//!
//! On-disk format: back-to-back 34-byte entries, big-endian, no header, never
//! preallocated (the file length is exactly 34 × entries):
//!
//! | off | size | field                                                        |
//! |-----|------|--------------------------------------------------------------|
//! | 0   | 2    | version (int16, 0)                                           |
//! | 2   | 8    | producerId                                                   |
//! | 10  | 8    | firstOffset (first offset of the aborted transaction)        |
//! | 18  | 8    | lastOffset (offset of the ABORT marker)                      |
//! | 26  | 8    | lastStableOffset (LSO right after the abort was written)     |
//!
//! Entries are appended to the index of the segment that receives the ABORT marker, in
//! increasing `lastOffset` order. The file is created lazily on the first append, so it
//! is usually absent. A trailing partial entry (torn write) is ignored by readers.
//! Recovery: `sanity_check` fails when an entry's lastOffset is below the segment base;
//! the log loader then rebuilds the segment (which rewrites this index from the markers).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Size of one index entry.
pub const ABORTED_TXN_SIZE: usize = 34;
/// The only entry version Kafka 3.9 writes.
pub const ABORTED_TXN_VERSION: i16 = 0;

/// One aborted transaction, as stored in the index and reported to read_committed fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    pub fn encode(&self) -> [u8; ABORTED_TXN_SIZE] {
        let mut b = [0u8; ABORTED_TXN_SIZE];
        b[0..2].copy_from_slice(&ABORTED_TXN_VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    /// Decodes one entry; an unknown (newer) version is `InvalidData`.
    pub fn decode(b: &[u8; ABORTED_TXN_SIZE]) -> io::Result<Self> {
        let version = i16::from_be_bytes([b[0], b[1]]);
        if version > ABORTED_TXN_VERSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected aborted transaction version {version} in transaction index"),
            ));
        }
        let i64_at = |o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[o..o + 8]);
            i64::from_be_bytes(a)
        };
        Ok(Self {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// Result of [`TxnIndex::collect_aborted_txns`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnIndexSearchResult {
    pub aborted: Vec<AbortedTxn>,
    /// True when an entry's LSO reached the upper bound: later segments cannot hold
    /// more overlapping aborts, so the search can stop.
    pub is_complete: bool,
}

#[derive(Debug)]
struct State {
    path: PathBuf,
    file: Option<Arc<File>>,
    /// Bytes of whole entries known to be in the file.
    len: u64,
    /// lastOffset of the latest entry appended through this handle (Kafka does not load
    /// it from an existing file either).
    last_offset: Option<i64>,
}

/// Kafka's `TransactionIndex`. Internally locked: appends and truncations serialize,
/// readers take the file handle and length under the lock and then read without it.
#[derive(Debug)]
pub struct TxnIndex {
    start_offset: i64,
    state: Mutex<State>,
}

impl TxnIndex {
    /// Opens the index of the segment starting at `start_offset`; does not create the file.
    pub fn open(start_offset: i64, path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        let mut st = State {
            path,
            file: None,
            len: 0,
            last_offset: None,
        };
        if st.path.exists() {
            Self::open_file(&mut st)?;
        }
        Ok(Self {
            start_offset,
            state: Mutex::new(st),
        })
    }

    fn open_file(st: &mut State) -> io::Result<Arc<File>> {
        let f = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&st.path)?;
        let size = f.metadata()?.len();
        st.len = size - size % ABORTED_TXN_SIZE as u64;
        let f = Arc::new(f);
        st.file = Some(f.clone());
        Ok(f)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    pub fn path(&self) -> PathBuf {
        self.lock().path.clone()
    }

    /// Whether the index file exists on disk.
    pub fn exists(&self) -> bool {
        self.lock().path.exists()
    }

    /// Appends an entry; its `last_offset` must exceed the previous append's.
    pub fn append(&self, txn: &AbortedTxn) -> io::Result<()> {
        let mut st = self.lock();
        if let Some(last) = st.last_offset {
            if last >= txn.last_offset {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "the last offset of appended transactions must increase sequentially, but {} is not greater than current last offset {} of index {}",
                        txn.last_offset,
                        last,
                        st.path.display()
                    ),
                ));
            }
        }
        let file = match &st.file {
            Some(f) => f.clone(),
            None => Self::open_file(&mut st)?,
        };
        file.write_all_at(&txn.encode(), st.len)?;
        st.len += ABORTED_TXN_SIZE as u64;
        st.last_offset = Some(txn.last_offset);
        Ok(())
    }

    /// fsyncs the file if it exists.
    pub fn flush(&self) -> io::Result<()> {
        let f = self.lock().file.clone();
        if let Some(f) = f {
            f.sync_all()?;
        }
        Ok(())
    }

    /// Removes all entries (the file stays, empty).
    pub fn reset(&self) -> io::Result<()> {
        let mut st = self.lock();
        if let Some(f) = &st.file {
            f.set_len(0)?;
        }
        st.len = 0;
        st.last_offset = None;
        Ok(())
    }

    /// Deletes the file; returns whether it existed.
    pub fn delete_if_exists(&self) -> io::Result<bool> {
        let mut st = self.lock();
        st.file = None;
        st.len = 0;
        match fs::remove_file(&st.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Renames the file (if it exists) and points this index at the new path either way.
    pub fn rename_to(&self, new_path: &Path) -> io::Result<()> {
        let mut st = self.lock();
        let res = if st.path.exists() {
            fs::rename(&st.path, new_path)
        } else {
            Ok(())
        };
        st.path = new_path.to_path_buf();
        res
    }

    /// Points at the same file name inside a renamed partition directory.
    pub fn update_parent_dir(&self, dir: &Path) {
        let mut st = self.lock();
        if let Some(name) = st.path.file_name() {
            st.path = dir.join(name);
        }
    }

    /// Closes the file handle (it is reopened on the next use).
    pub fn close(&self) {
        self.lock().file = None;
    }

    fn snapshot(&self) -> io::Result<Option<(Arc<File>, u64)>> {
        let mut st = self.lock();
        match &st.file {
            Some(f) => Ok(Some((f.clone(), st.len))),
            None if st.path.exists() => {
                let f = Self::open_file(&mut st)?;
                Ok(Some((f, st.len)))
            }
            None => Ok(None),
        }
    }

    /// Visits every entry with its byte position, stopping early when `f` says so.
    fn for_each(&self, mut f: impl FnMut(AbortedTxn, u64) -> bool) -> io::Result<()> {
        let Some((file, len)) = self.snapshot()? else {
            return Ok(());
        };
        let mut buf = [0u8; ABORTED_TXN_SIZE];
        let mut pos = 0u64;
        while pos + ABORTED_TXN_SIZE as u64 <= len {
            file.read_exact_at(&mut buf, pos)?;
            if !f(AbortedTxn::decode(&buf)?, pos) {
                break;
            }
            pos += ABORTED_TXN_SIZE as u64;
        }
        Ok(())
    }

    /// Drops entries whose `last_offset` ≥ `offset` (log truncated to `offset`).
    pub fn truncate_to(&self, offset: i64) -> io::Result<()> {
        let mut cut: Option<(u64, Option<i64>)> = None;
        let mut prev_last: Option<i64> = None;
        self.for_each(|t, pos| {
            if t.last_offset >= offset {
                cut = Some((pos, prev_last));
                return false;
            }
            prev_last = Some(t.last_offset);
            true
        })?;
        if let Some((pos, new_last)) = cut {
            let mut st = self.lock();
            if let Some(f) = &st.file {
                f.set_len(pos)?;
            }
            st.len = pos;
            st.last_offset = new_last;
        }
        Ok(())
    }

    pub fn all_aborted_txns(&self) -> io::Result<Vec<AbortedTxn>> {
        let mut out = Vec::new();
        self.for_each(|t, _| {
            out.push(t);
            true
        })?;
        Ok(out)
    }

    /// Aborted transactions overlapping `[fetch_offset, upper_bound_offset)`; stops at the
    /// first entry whose LSO ≥ upper bound (then `is_complete`).
    pub fn collect_aborted_txns(
        &self,
        fetch_offset: i64,
        upper_bound_offset: i64,
    ) -> io::Result<TxnIndexSearchResult> {
        let mut res = TxnIndexSearchResult::default();
        self.for_each(|t, _| {
            if t.last_offset >= fetch_offset && t.first_offset < upper_bound_offset {
                res.aborted.push(t);
            }
            if t.last_stable_offset >= upper_bound_offset {
                res.is_complete = true;
                return false;
            }
            true
        })?;
        Ok(res)
    }

    /// Fails (`InvalidData`) when an entry's `last_offset` is below the segment base: the
    /// index belongs to another segment or is garbage, and the segment must be recovered.
    pub fn sanity_check(&self) -> io::Result<()> {
        let mut bad: Option<AbortedTxn> = None;
        let start = self.start_offset;
        self.for_each(|t, _| {
            if t.last_offset < start {
                bad = Some(t);
                return false;
            }
            true
        })?;
        match bad {
            Some(t) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "last offset of aborted transaction {t:?} in index {} is less than start offset {start}",
                    self.path().display()
                ),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn txn(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn {
            producer_id: pid,
            first_offset: first,
            last_offset: last,
            last_stable_offset: lso,
        }
    }

    #[test]
    fn lazily_created_and_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.txnindex");
        let idx = TxnIndex::open(0, &path).unwrap();
        assert!(!path.exists());
        assert!(idx.all_aborted_txns().unwrap().is_empty());
        idx.append(&txn(7, 1, 5, 6)).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 34);
        assert_eq!(&bytes[0..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &7i64.to_be_bytes());
        assert_eq!(&bytes[26..34], &6i64.to_be_bytes());
        idx.flush().unwrap();
        let idx2 = TxnIndex::open(0, &path).unwrap();
        assert_eq!(idx2.all_aborted_txns().unwrap(), vec![txn(7, 1, 5, 6)]);
    }

    #[test]
    fn append_requires_increasing_last_offset() {
        let dir = tempfile::tempdir().unwrap();
        let idx = TxnIndex::open(0, dir.path().join("a.txnindex")).unwrap();
        idx.append(&txn(1, 0, 10, 11)).unwrap();
        assert!(idx.append(&txn(2, 3, 10, 11)).is_err());
        assert!(idx.append(&txn(2, 3, 9, 11)).is_err());
        idx.append(&txn(2, 3, 11, 12)).unwrap();
    }

    #[test]
    fn collect_matches_kafka_rules() {
        let dir = tempfile::tempdir().unwrap();
        let idx = TxnIndex::open(0, dir.path().join("a.txnindex")).unwrap();
        idx.append(&txn(0, 0, 10, 11)).unwrap();
        idx.append(&txn(1, 5, 15, 13)).unwrap();
        idx.append(&txn(2, 18, 35, 25)).unwrap();
        idx.append(&txn(3, 32, 50, 40)).unwrap();
        let r = idx.collect_aborted_txns(0, 32).unwrap();
        assert_eq!(
            r.aborted,
            vec![txn(0, 0, 10, 11), txn(1, 5, 15, 13), txn(2, 18, 35, 25)]
        );
        assert!(r.is_complete, "entry with lso 40 >= 32 ends the search");
        let r = idx.collect_aborted_txns(0, 100).unwrap();
        assert_eq!(r.aborted.len(), 4);
        assert!(
            !r.is_complete,
            "no entry's lso reaches 100: continue in the next segment"
        );
        let r = idx.collect_aborted_txns(0, 35).unwrap();
        assert_eq!(r.aborted.len(), 4);
        assert!(r.is_complete, "entry with lso 40 >= 35 ends the search");
        let r = idx.collect_aborted_txns(16, 20).unwrap();
        assert_eq!(r.aborted, vec![txn(2, 18, 35, 25)]);
        assert!(r.is_complete);
    }

    #[test]
    fn truncate_and_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txnindex");
        let idx = TxnIndex::open(0, &path).unwrap();
        for i in 0..5 {
            idx.append(&txn(i, i * 10, i * 10 + 5, i * 10 + 6)).unwrap();
        }
        idx.truncate_to(25).unwrap();
        assert_eq!(idx.all_aborted_txns().unwrap().len(), 2);
        assert_eq!(fs::metadata(&path).unwrap().len(), 68);
        // last_offset restored: the next append must be above 15.
        assert!(idx.append(&txn(9, 0, 15, 16)).is_err());
        idx.append(&txn(9, 16, 17, 18)).unwrap();
        idx.truncate_to(1000).unwrap();
        assert_eq!(idx.all_aborted_txns().unwrap().len(), 3);
        idx.reset().unwrap();
        assert!(idx.all_aborted_txns().unwrap().is_empty());
        idx.append(&txn(1, 0, 1, 2)).unwrap();
        assert!(idx.delete_if_exists().unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn sanity_check_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.txnindex");
        let idx = TxnIndex::open(100, &path).unwrap();
        idx.append(&txn(1, 90, 120, 121)).unwrap();
        idx.sanity_check().unwrap();
        idx.append(&txn(1, 90, 121, 122)).unwrap();
        // A partial trailing entry is ignored by a fresh reader.
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0u8; 10]);
        fs::write(&path, &bytes).unwrap();
        let idx2 = TxnIndex::open(100, &path).unwrap();
        assert_eq!(idx2.all_aborted_txns().unwrap().len(), 2);

        let bad = TxnIndex::open(200, &path).unwrap();
        assert_eq!(
            bad.sanity_check().unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );

        // Unknown version is an error.
        let mut b = txn(1, 1, 2, 3).encode();
        b[1] = 1;
        assert!(AbortedTxn::decode(&b).is_err());
    }

    #[test]
    fn rename_follows_file() {
        let dir = tempfile::tempdir().unwrap();
        let p1 = dir.path().join("a.txnindex");
        let p2 = dir.path().join("a.txnindex.deleted");
        let idx = TxnIndex::open(0, &p1).unwrap();
        idx.append(&txn(1, 1, 2, 3)).unwrap();
        idx.rename_to(&p2).unwrap();
        assert!(p2.exists() && !p1.exists());
        assert_eq!(idx.all_aborted_txns().unwrap().len(), 1);
    }

    proptest! {
        #[test]
        fn prop_round_trip(v in proptest::collection::vec((any::<i64>(), any::<i64>(), any::<i64>()), 0..40)) {
            let dir = tempfile::tempdir().unwrap();
            let idx = TxnIndex::open(0, dir.path().join("p.txnindex")).unwrap();
            let mut expect = Vec::new();
            for (i, (pid, first, lso)) in v.into_iter().enumerate() {
                let t = txn(pid, first, i as i64 * 3, lso);
                idx.append(&t).unwrap();
                expect.push(t);
            }
            let reopened = TxnIndex::open(0, dir.path().join("p.txnindex")).unwrap();
            prop_assert_eq!(reopened.all_aborted_txns().unwrap(), expect);
        }
    }
}
