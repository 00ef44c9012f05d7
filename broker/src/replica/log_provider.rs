//! The replica manager's view of storage, implemented by the real `LogManager`.

use std::path::PathBuf;
use std::sync::Arc;

use samsa_common::types::TopicPartition;
use uuid::Uuid;

use super::manager::LogProvider;
use crate::error::{Error, Result};
use crate::log::{Log, LogManager};

/// `LogProvider` over the broker's `LogManager`.
#[derive(Debug)]
pub struct ManagedLogs(pub Arc<LogManager>);

impl LogProvider for ManagedLogs {
    fn get_log(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.0.get_log(tp)
    }

    fn get_or_create_log(
        &self,
        tp: &TopicPartition,
        topic_id: Option<Uuid>,
        is_new: bool,
    ) -> Result<Arc<Log>> {
        if let Some(log) = self.0.get_log(tp) {
            if log.is_offline() {
                return Err(Error::KafkaStorageError(format!(
                    "the log of {tp} is in an offline log directory"
                )));
            }
        } else if !is_new {
            // Kafka: an existing replica may be in a failed dir, so it is never re-created
            // elsewhere while a dir is offline (it would come back empty).
            let offline = self.0.offline_dirs();
            if !offline.is_empty() {
                return Err(Error::KafkaStorageError(format!(
                    "Can not create log for {tp} because log directories {offline:?} are offline"
                )));
            }
        }
        let config = self.0.topic_config(&tp.topic);
        self.0.get_or_create_log(tp, topic_id, config)
    }

    fn delete_log(&self, tp: &TopicPartition) -> Result<()> {
        self.0.delete_log(tp).map(|_| ())
    }

    fn log_dirs(&self) -> Vec<PathBuf> {
        self.0.live_dirs()
    }

    fn offline_log_dirs(&self) -> Vec<PathBuf> {
        self.0.offline_dirs()
    }

    fn all_logs(&self) -> Vec<Arc<Log>> {
        self.0.all_logs()
    }

    fn future_logs(&self) -> Vec<Arc<Log>> {
        self.0.future_logs()
    }

    fn checkpoint_high_watermarks(&self) -> Result<()> {
        self.0.checkpoint_high_watermarks()
    }
}
