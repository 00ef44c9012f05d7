//! Moving a replica between log dirs (Kafka's `ReplicaManager.alterReplicaLogDirs` and
//! `ReplicaAlterLogDirsThread`).
//!
//! AlterReplicaLogDirs creates a future log in the target dir (`log/future.rs`); one task
//! per moving partition copies batches from the current log into it, with their offsets,
//! epochs and producer state (a follower append), while the partition keeps serving.
//! Once a pass finds the copy at the current log end, the swap runs under the
//! partition's transition lock, which leader appends and follower writes also hold: the
//! last batches are copied, the high watermark, log start offset and leader epochs are
//! carried over, and the future log replaces the current one in the log manager and in
//! the partition. A produce waiting on that lock then appends to the new log, so no
//! acknowledged record can land in the old copy.
//!
//! The move stops when the future log goes (a new AlterReplicaLogDirs to another dir,
//! the partition deleted) or either dir fails; a failed target dir leaves the current
//! replica serving, as in Kafka.

use std::sync::Arc;
use std::time::Duration;

use samsa_common::types::TopicPartition;

use super::manager::ReplicaManager;
use super::partition::Partition;
use crate::error::{Error, Result};
use crate::log::{Log, LogManager};

/// Bytes read from the current log per copy step.
const COPY_CHUNK: usize = 1024 * 1024;

/// Kafka's `alterReplicaLogDirs` for one partition (its errors map to Kafka's codes).
pub fn alter_replica_log_dir(
    rm: &Arc<ReplicaManager>,
    lm: &Arc<LogManager>,
    tp: &TopicPartition,
    dir: &str,
) -> Result<()> {
    // Kafka refuses topic names too long for the `-future` dir name (KAFKA-4893).
    if crate::log::future::future_dir_name(tp).len() > 255 {
        return Err(Error::InvalidTopic("The topic name is too long.".into()));
    }
    let (dir, online) = lm.resolve_log_dir(dir)?;
    if !online {
        return Err(Error::KafkaStorageError(format!(
            "Log directory {} is offline",
            dir.display()
        )));
    }
    if let Some(p) = rm.partition(tp) {
        if p.is_offline() {
            return Err(Error::KafkaStorageError(format!(
                "Partition {tp} is offline"
            )));
        }
        // A move to another dir is under way: it stops, and this one starts over.
        if lm.future_log(tp).is_some_and(|f| f.parent_dir() != dir) {
            lm.remove_future_log(tp);
        }
    }
    // Not created yet: the LeaderAndIsr that creates it uses this dir.
    lm.maybe_update_preferred_log_dir(tp, &dir);
    let not_here = || Error::ReplicaNotAvailable(format!("Replica {tp} is not available"));
    let p = rm.partition(tp).ok_or_else(not_here)?;
    if p.log().is_none() {
        return Err(not_here());
    }
    if let Some(fut) = lm.maybe_create_future_log(tp, &dir, p.topic_id())? {
        tracing::info!(%tp, dir = %dir.display(), "moving replica to another log dir");
        tokio::spawn(run_move(rm.clone(), lm.clone(), tp.clone(), fut));
    }
    Ok(())
}

/// The copy loop of one move; ends with the swap or when the move is abandoned.
async fn run_move(rm: Arc<ReplicaManager>, lm: Arc<LogManager>, tp: TopicPartition, fut: Arc<Log>) {
    loop {
        let still_ours = lm.future_log(&tp).is_some_and(|f| Arc::ptr_eq(&f, &fut));
        if !still_ours {
            return;
        }
        let Some(p) = rm.partition(&tp).filter(|p| !p.is_offline()) else {
            tracing::warn!(%tp, "replica move stopped: the partition is gone or offline");
            abandon(&lm, &tp, &fut);
            return;
        };
        let mut changed = p.signal.subscribe();
        let (p2, f2) = (p.clone(), fut.clone());
        let step = tokio::task::spawn_blocking(move || copy_step(&p2, &f2)).await;
        let caught_up = match step {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::warn!(%tp, error = %e, "replica move failed");
                abandon(&lm, &tp, &fut);
                return;
            }
            Err(e) => {
                tracing::error!(%tp, error = %e, "replica move task panicked");
                abandon(&lm, &tp, &fut);
                return;
            }
        };
        if caught_up {
            let (p2, f2, lm2, tp2) = (p.clone(), fut.clone(), lm.clone(), tp.clone());
            let swapped = tokio::task::spawn_blocking(move || swap(&lm2, &tp2, &p2, &f2)).await;
            match swapped {
                Ok(Ok(true)) => {
                    p.signal.bump();
                    return;
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(%tp, error = %e, "replica move failed at the swap");
                    abandon(&lm, &tp, &fut);
                    return;
                }
                Err(e) => {
                    tracing::error!(%tp, error = %e, "replica swap task panicked");
                    abandon(&lm, &tp, &fut);
                    return;
                }
            }
            // Nothing new to copy: wait for the next append (or re-check soon).
            let _ = tokio::time::timeout(Duration::from_millis(500), changed.changed()).await;
        }
    }
}

/// Drops the future log if it is still this move's.
fn abandon(lm: &LogManager, tp: &TopicPartition, fut: &Arc<Log>) {
    if lm.future_log(tp).is_some_and(|f| Arc::ptr_eq(&f, fut)) {
        lm.remove_future_log(tp);
    }
}

/// One copy step from the partition's current log into `fut`; true when `fut` has
/// reached the current log end.
fn copy_step(p: &Partition, fut: &Arc<Log>) -> Result<bool> {
    let cur = p
        .log()
        .ok_or_else(|| Error::ReplicaNotAvailable(format!("no log for {}", p.tp)))?;
    copy_from(&cur, fut, COPY_CHUNK)?;
    Ok(fut.log_end_offset() >= cur.log_end_offset())
}

/// Brings `fut` closer to `cur`: truncates what `cur` no longer has (follower
/// truncation, as the alter-log-dirs fetcher does with the leader epochs), restarts at
/// the log start offset if retention passed us, then appends up to `max_bytes`.
fn copy_from(cur: &Log, fut: &Log, max_bytes: usize) -> Result<()> {
    let leo = fut.log_end_offset();
    if let Some(epoch) = fut.latest_epoch() {
        let (_, end) = cur.end_offset_for_epoch(epoch);
        if end >= 0 && end < leo {
            fut.truncate_to(end)?;
            return Ok(());
        }
    }
    if leo > cur.log_end_offset() {
        fut.truncate_to(cur.log_end_offset())?;
        return Ok(());
    }
    let start = cur.log_start_offset();
    if leo < start || (leo == 0 && start > 0) {
        fut.truncate_fully_and_start_at(start)?;
    }
    let from = fut.log_end_offset();
    let data = match cur.read(from, max_bytes, cur.log_end_offset(), true) {
        Ok(d) => d,
        // Retention moved the start past us: the next step restarts there.
        Err(Error::OffsetOutOfRange(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    for s in &data.slices {
        let bytes = s.read_to_vec()?;
        fut.append_as_follower(&bytes)?;
    }
    let hw = cur.high_watermark().min(fut.log_end_offset());
    if hw > fut.high_watermark() {
        fut.update_high_watermark(hw);
    }
    let start = cur.log_start_offset();
    if start > fut.log_start_offset() && start <= fut.high_watermark() {
        fut.maybe_increment_log_start_offset(start)?;
    }
    Ok(())
}

/// Kafka's `maybeReplaceCurrentWithFutureReplica`: with appends held off, copies the
/// rest and swaps. False if the move was cancelled meanwhile.
fn swap(lm: &LogManager, tp: &TopicPartition, p: &Partition, fut: &Arc<Log>) -> Result<bool> {
    let _writes = p.lock_transition();
    if p.is_offline() || !lm.future_log(tp).is_some_and(|f| Arc::ptr_eq(&f, fut)) {
        return Ok(false);
    }
    let cur = p
        .log()
        .ok_or_else(|| Error::ReplicaNotAvailable(format!("no log for {tp}")))?;
    // Appends wait on the lock we hold, so this ends.
    let mut guard = 0;
    while fut.log_end_offset() != cur.log_end_offset() {
        copy_from(&cur, fut, COPY_CHUNK)?;
        guard += 1;
        if guard > 10_000 {
            return Ok(false);
        }
    }
    // Epochs recorded without a batch yet (a new leader's epoch start) come along too.
    let latest = fut.latest_epoch().unwrap_or(-1);
    for (epoch, start) in cur.epoch_entries() {
        if epoch > latest {
            fut.assign_epoch_start_offset(epoch, start)?;
        }
    }
    fut.update_high_watermark(cur.high_watermark());
    if cur.log_start_offset() > fut.log_start_offset() {
        fut.maybe_increment_log_start_offset(cur.log_start_offset())?;
    }
    lm.replace_current_with_future(tp, fut)?;
    p.set_log(fut.clone());
    Ok(true)
}
