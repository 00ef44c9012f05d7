//! Test helpers: a temp-dir `LogProvider` and record batch builders.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use samsa_common::types::TopicPartition;
use uuid::Uuid;

use super::manager::LogProvider;
use crate::error::Result;
use crate::log::Log;
use crate::log::LogConfig;

/// Logs in one temp dir, opened with a fixed config.
#[derive(Debug)]
pub struct TempLogs {
    pub dir: tempfile::TempDir,
    pub config: LogConfig,
    logs: Mutex<HashMap<TopicPartition, Arc<Log>>>,
}

impl TempLogs {
    pub fn new(config: LogConfig) -> Arc<Self> {
        Arc::new(Self {
            dir: tempfile::tempdir().expect("tempdir"),
            config,
            logs: Mutex::new(HashMap::new()),
        })
    }
}

impl LogProvider for TempLogs {
    fn get_log(&self, tp: &TopicPartition) -> Option<Arc<Log>> {
        self.logs.lock().ok()?.get(tp).cloned()
    }

    fn get_or_create_log(
        &self,
        tp: &TopicPartition,
        topic_id: Option<Uuid>,
        _is_new: bool,
    ) -> Result<Arc<Log>> {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = logs.get(tp) {
            return Ok(l.clone());
        }
        let log = Log::open_standalone(&self.dir.path().join(tp.to_string()), self.config.clone())?;
        if let Some(id) = topic_id {
            log.assign_topic_id(id)?;
        }
        logs.insert(tp.clone(), log.clone());
        Ok(log)
    }

    fn delete_log(&self, tp: &TopicPartition) -> Result<()> {
        let removed = self
            .logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tp);
        if let Some(l) = removed {
            std::fs::remove_dir_all(l.dir())?;
        }
        Ok(())
    }

    fn log_dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.path().to_path_buf()]
    }

    fn all_logs(&self) -> Vec<Arc<Log>> {
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn checkpoint_high_watermarks(&self) -> Result<()> {
        Ok(())
    }
}

/// A magic-2 batch of `n` records with values `v0..`, as a producer sends it.
pub fn batch(n: usize, compression: Compression) -> BytesMut {
    batch_with(n, compression, -1, -1, -1, chrono_now())
}

pub fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Batch with explicit producer id / epoch / base sequence and timestamp.
pub fn batch_with(
    n: usize,
    compression: Compression,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    timestamp: i64,
) -> BytesMut {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // kafka-protocol batches records whose offset - sequence is constant;
            // the header keeps the first record's sequence (-1 = none).
            sequence: base_sequence.wrapping_add(i as i32),
            timestamp,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf
}

/// A broker context for broker 1 with a minimal config (no sockets, no ZooKeeper).
pub fn test_context() -> Arc<crate::broker::BrokerContext> {
    let props = HashMap::from([
        ("broker.id".to_string(), "1".to_string()),
        ("zookeeper.connect".to_string(), "127.0.0.1:1".to_string()),
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        ),
        (
            "log.dirs".to_string(),
            "/tmp/samsa-data-test-unused".to_string(),
        ),
    ]);
    let config = samsa_common::config::BrokerConfig::from_props(&props).expect("config");
    Arc::new(crate::broker::BrokerContext::new(
        Arc::new(config),
        Vec::new(),
    ))
}

/// A broker context (broker 1) leading partition 0 of `topic`, whose logs use `config`.
pub fn leader_context(
    config: LogConfig,
    topic: &str,
    topic_id: uuid::Uuid,
) -> (Arc<crate::broker::BrokerContext>, Arc<TempLogs>) {
    use kafka_protocol::messages::leader_and_isr_request::{
        LeaderAndIsrPartitionState, LeaderAndIsrTopicState,
    };
    use kafka_protocol::messages::{BrokerId, LeaderAndIsrRequest, TopicName};
    let logs = TempLogs::new(config);
    let rm = crate::replica::manager::ReplicaManager::new(
        crate::replica::manager::ReplicaConfig::new(1),
        logs.clone(),
    );
    let ctx = test_context();
    ctx.replica_manager.set(rm.clone()).expect("set once");
    let mut ps = LeaderAndIsrPartitionState::default();
    ps.leader = BrokerId(1);
    ps.leader_epoch = 0;
    ps.isr = vec![BrokerId(1)];
    ps.replicas = vec![BrokerId(1)];
    ps.is_new = true;
    let mut ts = LeaderAndIsrTopicState::default();
    ts.topic_name = TopicName(topic.to_string().into());
    ts.topic_id = topic_id;
    ts.partition_states = vec![ps];
    let mut req = LeaderAndIsrRequest::default();
    req.controller_epoch = 1;
    req.broker_epoch = -1;
    req.topic_states = vec![ts];
    let resp = rm.become_leader_or_follower(&req, 7, -1);
    assert_eq!(resp.topics[0].partition_errors[0].error_code, 0);
    (ctx, logs)
}
