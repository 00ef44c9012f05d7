//! Future logs: a replica being moved to another `log.dirs` entry (Kafka's
//! `LogManager` future-log half, driven by AlterReplicaLogDirs).
//!
//! On disk, as Kafka: the copy lives in `<target dir>/<topic>-<p>.<uuid hex>-future`
//! (the uuid without dashes, as in `-delete` names). When it has caught up, the swap
//! renames it to `<topic>-<p>` in the target dir first, then the old dir to
//! `<topic>-<p>.<uuid hex>-delete` (deleted after `file.delete.delay.ms`), the order
//! Kafka's `replaceCurrentWithFutureLog` uses: a crash between the two renames leaves
//! both copies (the broker refuses to start with a duplicate and nothing is lost).
//! A `-future` dir found at start-up is a move cut short; the current replica is
//! intact, so the copy is deleted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use samsa_common::types::TopicPartition;
use uuid::Uuid;

use super::log::{LoadParams, Log};
use super::manager::{LogManager, FUTURE_DIR_SUFFIX};
use crate::error::{Error, Result};

/// `<topic>-<p>.<uuid hex>-future` (Kafka's `LocalLog.logFutureDirName`).
pub fn future_dir_name(tp: &TopicPartition) -> String {
    format!("{tp}.{}{FUTURE_DIR_SUFFIX}", Uuid::new_v4().simple())
}

impl LogManager {
    /// The configured dir whose absolute path is `dir`, and whether it is online
    /// (Kafka's `isLogDirOnline`); LOG_DIR_NOT_FOUND for any other path.
    pub fn resolve_log_dir(&self, dir: &str) -> Result<(PathBuf, bool)> {
        let live = self.live_dirs();
        let mut all = live.clone();
        all.extend(self.offline_dirs());
        for d in all {
            let abs = std::path::absolute(&d).unwrap_or_else(|_| d.clone());
            if abs.as_os_str() == dir || d.as_os_str() == dir {
                let online = live.contains(&d);
                return Ok((d, online));
            }
        }
        Err(Error::LogDirNotFound(format!(
            "Log dir {dir} is not found in the config."
        )))
    }

    /// Remembers `dir` for `tp`'s log if it is created later (Kafka's
    /// `maybeUpdatePreferredLogDir`): not if the current or future log is already there.
    pub fn maybe_update_preferred_log_dir(&self, tp: &TopicPartition, dir: &Path) {
        let here = |l: Option<Arc<Log>>| l.is_some_and(|l| l.parent_dir() == dir);
        if here(self.get_log(tp)) || here(self.future_log(tp)) {
            return;
        }
        self.preferred_dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tp.clone(), dir.to_path_buf());
    }

    pub fn future_log(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.future_logs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tp)
            .cloned()
    }

    pub fn future_logs(&self) -> Vec<Arc<Log>> {
        self.future_logs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Kafka's `Partition.maybeCreateFutureReplica`: creates the future log of `tp` in
    /// `dir` unless the current log is already there or a future log exists. Returns
    /// the new log, or `None` when there is nothing to start.
    pub fn maybe_create_future_log(
        self: &Arc<Self>,
        tp: &TopicPartition,
        dir: &Path,
        topic_id: Option<Uuid>,
    ) -> Result<Option<Arc<Log>>> {
        let _g = self.create_lock.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.get_log(tp).ok_or_else(|| {
            Error::ReplicaNotAvailable(format!("Replica for partition {tp} is not available"))
        })?;
        if current.parent_dir() == dir {
            return Ok(None);
        }
        if self.future_log(tp).is_some() {
            return Ok(None);
        }
        // One copy per partition: never a future log while a dir (which may hold another
        // copy) is offline.
        let offline = self.offline_dirs();
        if !offline.is_empty() {
            return Err(Error::KafkaStorageError(format!(
                "Can not create log for {tp} because log directories {offline:?} are offline"
            )));
        }
        self.preferred_dirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tp);
        let config = self.config_for(&tp.topic);
        let log = Log::open(
            &dir.join(future_dir_name(tp)),
            tp.clone(),
            config,
            LoadParams {
                producer_state: self.producer_state_config(),
                ..LoadParams::default()
            },
            self.deletes.clone(),
            Some(self.failure_hook()),
        )
        .inspect_err(|_| self.mark_dir_offline(dir))?;
        if let Some(id) = topic_id.or(current.topic_id()) {
            log.assign_topic_id(id)?;
        }
        self.future_logs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tp.clone(), log.clone());
        Ok(Some(log))
    }

    /// Drops the future log of `tp` (a cancelled or failed move): its dir is renamed
    /// for deletion unless the dir is offline. Its mover sees it gone and stops.
    pub fn remove_future_log(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        let log = self
            .future_logs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tp)?;
        if !log.is_offline() {
            if let Err(e) = self.rename_for_deletion(&log) {
                tracing::warn!(%tp, error = %e, "could not remove the future log");
            }
        }
        Some(log)
    }

    /// Kafka's `replaceCurrentWithFutureLog`: the future log `fut` becomes `tp`'s log.
    /// The caller holds the partition's write exclusion and has checked that `fut` has
    /// every offset of the current log.
    pub fn replace_current_with_future(&self, tp: &TopicPartition, fut: &Arc<Log>) -> Result<()> {
        {
            let futures = self.future_logs.read().unwrap_or_else(|p| p.into_inner());
            if !futures.get(tp).is_some_and(|f| Arc::ptr_eq(f, fut)) {
                return Err(Error::ReplicaNotAvailable(format!(
                    "the move of {tp} was cancelled"
                )));
            }
        }
        let current = self.get_log(tp);
        fut.rename_dir(&fut.parent_dir().join(tp.to_string()))?;
        {
            let mut logs = self.logs.write().unwrap_or_else(|p| p.into_inner());
            let mut futures = self.future_logs.write().unwrap_or_else(|p| p.into_inner());
            futures.remove(tp);
            logs.insert(tp.clone(), fut.clone());
        }
        if let Some(old) = current {
            if let Err(e) = self.rename_for_deletion(&old) {
                // The new copy serves; the old dir is left (a duplicate at restart).
                tracing::error!(%tp, error = %e, "could not rename the old replica dir");
                self.mark_dir_offline(old.parent_dir());
            }
        }
        let _ = self.checkpoint_all();
        tracing::info!(
            %tp,
            dir = %fut.parent_dir().display(),
            "the future replica replaced the current one"
        );
        Ok(())
    }
}
