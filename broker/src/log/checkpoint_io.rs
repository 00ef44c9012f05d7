//! The log manager's calls into offset checkpoint files, in one place. The format
//! (owned by `checkpoint.rs`): line `0` (version), line `<count>`, then
//! `<topic> <partition> <offset>` lines; written to `<name>.tmp`, fsynced, renamed.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use samsa_common::types::TopicPartition;

use crate::error::{Error, Result};

/// Reads an offset checkpoint; a missing file is empty. A malformed file is a storage
/// error (the dir goes offline, as in Kafka).
pub fn read_or_empty(path: &Path) -> Result<HashMap<TopicPartition, i64>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e.into()),
    };
    let bad = || Error::KafkaStorageError(format!("malformed checkpoint file {}", path.display()));
    let mut lines = text.lines();
    let Some(version) = lines.next() else {
        return Ok(HashMap::new());
    };
    if version.trim() != "0" {
        return Err(bad());
    }
    let count: usize = lines
        .next()
        .ok_or_else(bad)?
        .trim()
        .parse()
        .map_err(|_| bad())?;
    let mut out = HashMap::new();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(t), Some(p), Some(o), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let p: i32 = p.parse().map_err(|_| bad())?;
        let o: i64 = o.parse().map_err(|_| bad())?;
        out.insert(TopicPartition::new(t, p), o);
    }
    if out.len() != count {
        return Err(bad());
    }
    Ok(out)
}

/// Writes an offset checkpoint atomically.
pub fn write(path: &Path, entries: &[(TopicPartition, i64)]) -> Result<()> {
    let mut s = format!("0\n{}\n", entries.len());
    for (tp, o) in entries {
        s.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, o));
    }
    write_atomic(path, s.as_bytes())
}

/// tmp + fsync + rename + fsync of the parent dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}
