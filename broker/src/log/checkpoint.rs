//! Kafka's offset checkpoint text files.
//!
//! On-disk format (UTF-8 text, every line ends with `\n`), identical for all of Kafka's
//! checkpoint files so Kafka 3.9 and Samsa can read each other's log dirs:
//!
//! ```text
//! 0                 <- version line, always 0
//! 2                 <- number of entry lines that follow
//! orders 0 1234     <- one entry per line, fields separated by a single space
//! orders 1 0
//! ```
//!
//! Entry shapes:
//! * [`TopicPartitionOffset`]: `<topic> <partition> <offset>` — used by
//!   `recovery-point-offset-checkpoint`, `replication-offset-checkpoint`,
//!   `log-start-offset-checkpoint` and `cleaner-offset-checkpoint` at the log-dir root.
//! * [`EpochEntry`]: `<epoch> <startOffset>` — used by each partition's
//!   `leader-epoch-checkpoint`.
//!
//! Writing goes to `<name>.tmp`, which is fsynced and then atomically renamed over the
//! target (the parent directory is fsynced too), so a crash leaves either the old or the
//! new file, never a torn one. Because every writer of a file shares that one tmp name,
//! writes must be serialized per file: [`CheckpointFile`] holds a lock around the
//! tmp-write + fsync + rename (as Kafka's `CheckpointFile` does), otherwise one writer can
//! rename the tmp file away under another (ENOENT).
//!
//! Reading is strict like Kafka's `CheckpointFile`: an unknown version, a malformed line
//! or an entry count that differs from the count line is an `InvalidData` I/O error
//! (Kafka then takes the log dir offline). An empty file, or a file holding only the
//! version line, has no entries. A missing file is created empty by [`CheckpointFile::new`].

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use samsa_common::types::TopicPartition;

/// The only checkpoint version Kafka 3.9 writes or accepts.
pub const CHECKPOINT_VERSION: i32 = 0;

/// Root-of-log-dir checkpoint file names.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Per-partition leader epoch checkpoint file name.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// One line of a checkpoint file.
pub trait CheckpointEntry: Sized {
    /// Appends this entry's line text (without the newline).
    fn format_line(&self, out: &mut String);
    /// Parses one line; `None` when malformed.
    fn parse_line(line: &str) -> Option<Self>;
}

/// Splits like Java's `line.split("\\s+")`: runs of whitespace separate fields, a
/// leading separator yields an empty first field, trailing empty fields are dropped.
fn java_split_ws(line: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = Vec::new();
    let mut start = 0usize;
    let mut in_ws = false;
    for (i, c) in line.char_indices() {
        let ws = matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r');
        if ws && !in_ws {
            parts.push(&line[start..i]);
            in_ws = true;
        } else if !ws && in_ws {
            start = i;
            in_ws = false;
        }
    }
    if !in_ws {
        parts.push(&line[start..]);
    }
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// `<topic> <partition> <offset>` entry of the log-dir root checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPartitionOffset {
    pub tp: TopicPartition,
    pub offset: i64,
}

impl CheckpointEntry for TopicPartitionOffset {
    fn format_line(&self, out: &mut String) {
        let _ = write!(
            out,
            "{} {} {}",
            self.tp.topic, self.tp.partition, self.offset
        );
    }
    fn parse_line(line: &str) -> Option<Self> {
        let parts = java_split_ws(line);
        if parts.len() != 3 {
            return None;
        }
        let partition = parts[1].parse::<i32>().ok()?;
        let offset = parts[2].parse::<i64>().ok()?;
        Some(Self {
            tp: TopicPartition::new(parts[0], partition),
            offset,
        })
    }
}

/// `<epoch> <startOffset>` entry of `leader-epoch-checkpoint`: epoch `epoch` began at
/// `start_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

impl EpochEntry {
    pub fn new(epoch: i32, start_offset: i64) -> Self {
        Self {
            epoch,
            start_offset,
        }
    }
}

impl CheckpointEntry for EpochEntry {
    fn format_line(&self, out: &mut String) {
        let _ = write!(out, "{} {}", self.epoch, self.start_offset);
    }
    fn parse_line(line: &str) -> Option<Self> {
        let parts = java_split_ws(line);
        if parts.len() != 2 {
            return None;
        }
        Some(Self {
            epoch: parts[0].parse().ok()?,
            start_offset: parts[1].parse().ok()?,
        })
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Renders entries in the checkpoint text format.
pub fn encode_checkpoint<T: CheckpointEntry>(entries: &[T]) -> String {
    let mut out = String::with_capacity(16 + entries.len() * 32);
    let _ = writeln!(out, "{CHECKPOINT_VERSION}");
    let _ = writeln!(out, "{}", entries.len());
    for e in entries {
        e.format_line(&mut out);
        out.push('\n');
    }
    out
}

/// Parses checkpoint text strictly; `what` names the file in error messages.
pub fn decode_checkpoint<T: CheckpointEntry>(text: &str, what: &str) -> io::Result<Vec<T>> {
    let mut lines = text.lines();
    let Some(version_line) = lines.next() else {
        return Ok(Vec::new());
    };
    let malformed = |line: &str| {
        invalid(format!(
            "malformed line in checkpoint file ({what}): '{line}'"
        ))
    };
    let version: i32 = version_line.parse().map_err(|_| malformed(version_line))?;
    if version != CHECKPOINT_VERSION {
        return Err(invalid(format!(
            "unrecognised version: {version}, file: {what}"
        )));
    }
    let Some(count_line) = lines.next() else {
        return Ok(Vec::new());
    };
    let expected: usize = count_line
        .parse::<i32>()
        .ok()
        .and_then(|c| usize::try_from(c).ok())
        .ok_or_else(|| malformed(count_line))?;
    let mut entries = Vec::with_capacity(expected.min(1 << 16));
    for line in lines {
        entries.push(T::parse_line(line).ok_or_else(|| malformed(line))?);
    }
    if entries.len() != expected {
        return Err(invalid(format!(
            "expected {expected} entries in checkpoint file ({what}), but found {}",
            entries.len()
        )));
    }
    Ok(entries)
}

/// fsyncs a directory so a rename inside it is durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `<path>.tmp`, fsyncs it, renames it over `path` and fsyncs the
/// parent directory: Kafka's `atomicMoveWithFallback` protocol.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            fsync_dir(parent)?;
        }
    }
    Ok(())
}

/// A checkpoint file at a fixed path holding entries of type `T`. Share one instance
/// between all writers of a path: its lock serializes the writes that use `<path>.tmp`.
#[derive(Debug)]
pub struct CheckpointFile<T> {
    path: PathBuf,
    /// Held only around one tmp-write + fsync + rename (never across other I/O).
    write_lock: Mutex<()>,
    _entry: std::marker::PhantomData<fn() -> T>,
}

impl<T: CheckpointEntry> CheckpointFile<T> {
    /// Opens the checkpoint at `path`, creating an empty file when it is missing (as
    /// Kafka does), so later reads see "no entries" rather than an error.
    pub fn new(path: impl Into<PathBuf>) -> io::Result<Self> {
        let path = path.into();
        if !path.exists() {
            OpenOptions::new().create(true).append(true).open(&path)?;
        }
        Ok(Self {
            path,
            write_lock: Mutex::new(()),
            _entry: std::marker::PhantomData,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's contents with `entries` (tmp + fsync + rename).
    /// Concurrent callers are serialized, so each write completes and the file always
    /// holds one writer's complete entries.
    pub fn write(&self, entries: &[T]) -> io::Result<()> {
        let text = encode_checkpoint(entries);
        let _guard = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        write_atomically(&self.path, text.as_bytes())
    }

    /// Reads all entries; strict (see module docs).
    pub fn read(&self) -> io::Result<Vec<T>> {
        let text = fs::read_to_string(&self.path)?;
        decode_checkpoint(&text, &self.path.display().to_string())
    }
}

/// The `<topic> <partition> <offset>` checkpoints at a log-dir root.
pub type OffsetCheckpointFile = CheckpointFile<TopicPartitionOffset>;

impl CheckpointFile<TopicPartitionOffset> {
    /// Writes a map of partition → offset (sorted for stable output).
    pub fn write_offsets<'a>(
        &self,
        offsets: impl IntoIterator<Item = (&'a TopicPartition, i64)>,
    ) -> io::Result<()> {
        let mut entries: Vec<TopicPartitionOffset> = offsets
            .into_iter()
            .map(|(tp, offset)| TopicPartitionOffset {
                tp: tp.clone(),
                offset,
            })
            .collect();
        entries.sort_by(|a, b| a.tp.cmp(&b.tp));
        self.write(&entries)
    }

    /// Reads the file as a map; a partition listed twice keeps its last offset.
    pub fn read_offsets(&self) -> io::Result<std::collections::HashMap<TopicPartition, i64>> {
        Ok(self.read()?.into_iter().map(|e| (e.tp, e.offset)).collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tpo(t: &str, p: i32, o: i64) -> TopicPartitionOffset {
        TopicPartitionOffset {
            tp: TopicPartition::new(t, p),
            offset: o,
        }
    }

    #[test]
    fn offsets_round_trip_and_exact_text() {
        let dir = tempfile::tempdir().unwrap();
        let f = OffsetCheckpointFile::new(dir.path().join(RECOVERY_POINT_CHECKPOINT)).unwrap();
        assert!(f.read().unwrap().is_empty(), "fresh file has no entries");
        let entries = vec![tpo("orders", 0, 1234), tpo("__consumer_offsets", 12, 99)];
        f.write(&entries).unwrap();
        let text = fs::read_to_string(f.path()).unwrap();
        assert_eq!(text, "0\n2\norders 0 1234\n__consumer_offsets 12 99\n");
        assert_eq!(f.read().unwrap(), entries);
        assert!(!dir
            .path()
            .join("recovery-point-offset-checkpoint.tmp")
            .exists());
    }

    #[test]
    fn epoch_entries_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let f =
            CheckpointFile::<EpochEntry>::new(dir.path().join(LEADER_EPOCH_CHECKPOINT)).unwrap();
        let entries = vec![EpochEntry::new(0, 0), EpochEntry::new(3, 1500)];
        f.write(&entries).unwrap();
        assert_eq!(fs::read_to_string(f.path()).unwrap(), "0\n2\n0 0\n3 1500\n");
        assert_eq!(f.read().unwrap(), entries);
    }

    #[test]
    fn strict_reader_rejects_bad_files() {
        let bad = [
            "1\n0\n",               // unknown version
            "x\n0\n",               // malformed version
            "0\n2\na 0 1\n",        // too few entries
            "0\n1\na 0 1\nb 0 2\n", // too many entries
            "0\n1\na 0\n",          // missing field
            "0\n1\na zero 1\n",     // bad partition
            "0\n1\na 0 1 extra\n",  // extra field
            "0\n1\n a 0 1\n",       // leading whitespace = empty topic field (Java split)
            "0\n-1\n",              // negative count
            "0\n1\n\n",             // empty entry line
        ];
        for text in bad {
            let r = decode_checkpoint::<TopicPartitionOffset>(text, "t");
            let err = r.expect_err(text);
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{text:?}");
        }
        let r = decode_checkpoint::<EpochEntry>("0\n1\n5\n", "t");
        assert!(r.is_err());
    }

    #[test]
    fn lenient_where_kafka_is_lenient() {
        assert!(decode_checkpoint::<EpochEntry>("", "t").unwrap().is_empty());
        assert!(decode_checkpoint::<EpochEntry>("0\n", "t")
            .unwrap()
            .is_empty());
        // Multiple spaces / tabs between fields and trailing spaces are fine.
        let e = decode_checkpoint::<TopicPartitionOffset>("0\n1\nt-1.x  3\t7  \n", "t").unwrap();
        assert_eq!(e, vec![tpo("t-1.x", 3, 7)]);
        // No trailing newline on the last line.
        let e = decode_checkpoint::<EpochEntry>("0\n1\n4 10", "t").unwrap();
        assert_eq!(e, vec![EpochEntry::new(4, 10)]);
    }

    #[test]
    fn offsets_map_helpers() {
        let dir = tempfile::tempdir().unwrap();
        let f = OffsetCheckpointFile::new(dir.path().join(REPLICATION_OFFSET_CHECKPOINT)).unwrap();
        let a = TopicPartition::new("b", 1);
        let b = TopicPartition::new("a", 2);
        f.write_offsets([(&a, 5), (&b, 9)]).unwrap();
        assert_eq!(
            fs::read_to_string(f.path()).unwrap(),
            "0\n2\na 2 9\nb 1 5\n"
        );
        let m = f.read_offsets().unwrap();
        assert_eq!(m.get(&a), Some(&5));
        assert_eq!(m.get(&b), Some(&9));
    }

    /// Several threads rewriting the same checkpoint at once (the periodic HW checkpoint
    /// racing shutdown's) must all succeed and leave one writer's complete entries.
    #[test]
    fn concurrent_writes_of_one_file_are_serialized() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::sync::Arc::new(
            OffsetCheckpointFile::new(dir.path().join(REPLICATION_OFFSET_CHECKPOINT)).unwrap(),
        );
        let threads = 8;
        let rounds = 200;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = f.clone();
                std::thread::spawn(move || -> io::Result<()> {
                    for r in 0..rounds {
                        let entries: Vec<_> = (0..t + 1)
                            .map(|p| tpo("topic", p as i32, (t * 1_000_000 + r) as i64))
                            .collect();
                        f.write(&entries)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().expect("no concurrent write fails");
        }
        let entries = f.read().expect("final file is valid");
        assert!(!entries.is_empty() && entries.len() <= threads);
        let writer = entries.len() - 1;
        for (p, e) in entries.iter().enumerate() {
            assert_eq!(e.tp, TopicPartition::new("topic", p as i32));
            assert_eq!(e.offset / 1_000_000, writer as i64, "one writer's entries");
        }
        assert!(!dir
            .path()
            .join("replication-offset-checkpoint.tmp")
            .exists());
    }

    proptest! {
        #[test]
        fn prop_round_trip(entries in proptest::collection::vec(
            ("[a-zA-Z0-9._-]{1,40}", 0i32..100_000, any::<i64>()), 0..50)) {
            let entries: Vec<_> = entries.into_iter().map(|(t, p, o)| tpo(&t, p, o)).collect();
            let text = encode_checkpoint(&entries);
            prop_assert_eq!(decode_checkpoint::<TopicPartitionOffset>(&text, "p").unwrap(), entries);
        }

        #[test]
        fn prop_epoch_round_trip(entries in proptest::collection::vec((any::<i32>(), any::<i64>()), 0..50)) {
            let entries: Vec<_> = entries.into_iter().map(|(e, o)| EpochEntry::new(e, o)).collect();
            let text = encode_checkpoint(&entries);
            prop_assert_eq!(decode_checkpoint::<EpochEntry>(&text, "p").unwrap(), entries);
        }

        #[test]
        fn prop_truncated_file_never_panics(cut in 0usize..60) {
            let text = encode_checkpoint(&[tpo("topic", 1, 12345), tpo("other", 2, 99)]);
            let cut = cut.min(text.len());
            // A torn file is an error unless the cut leaves no entries at all, or only the
            // final newline (or trailing digits) is missing and the count still matches.
            match decode_checkpoint::<TopicPartitionOffset>(&text[..cut], "p") {
                Ok(v) => prop_assert!(v.is_empty() || v.len() == 2, "{:?}", v),
                Err(e) => prop_assert_eq!(e.kind(), io::ErrorKind::InvalidData),
            }
        }
    }
}
