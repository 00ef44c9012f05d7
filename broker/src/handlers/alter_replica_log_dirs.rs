//! AlterReplicaLogDirs (API 34, v0-v2): move replicas of this broker to another log dir
//! (`kafka-reassign-partitions.sh` with `log_dirs`, Admin `alterReplicaLogDirs`). The
//! move runs in the background (`replica::alter_log_dirs`); the answer only says it
//! started, and DescribeLogDirs shows the copy (`is_future_key`) until it is done.

// kafka-protocol messages are non_exhaustive: built from Default, then filled in.
#![allow(clippy::field_reassign_with_default)]

use std::sync::Arc;

use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::types::TopicPartition;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::{Error, Result};
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: AlterReplicaLogDirsRequest,
) -> Result<AlterReplicaLogDirsResponse> {
    // Kafka keys the request by partition: a partition listed twice takes its last dir.
    let mut wanted: Vec<(TopicPartition, String)> = Vec::new();
    for d in &req.dirs {
        for t in &d.topics {
            for &p in &t.partitions {
                let tp = TopicPartition::new(t.name.as_str(), p);
                wanted.retain(|(w, _)| *w != tp);
                wanted.push((tp, d.path.to_string()));
            }
        }
    }
    let allowed = enforce::cluster(ctx, conn, Operation::Alter);
    let mut codes = Vec::with_capacity(wanted.len());
    for (tp, dir) in wanted {
        let code = if !allowed {
            denied_error(ResourceType::Cluster).code()
        } else {
            match (ctx.replicas(), ctx.log_manager()) {
                (Ok(rm), Some(lm)) => {
                    match crate::replica::alter_log_dirs::alter_replica_log_dir(rm, lm, &tp, &dir) {
                        Ok(()) => 0,
                        Err(e) => {
                            tracing::warn!(%tp, %dir, error = %e, "Unable to alter log dirs");
                            // Kafka keeps REPLICA_NOT_AVAILABLE here for a replica this
                            // broker does not host (not NOT_LEADER_OR_FOLLOWER).
                            match e {
                                Error::NotLeaderOrFollower(_) => {
                                    Error::ReplicaNotAvailable(String::new()).code()
                                }
                                e => e.code(),
                            }
                        }
                    }
                }
                _ => Error::KafkaStorageError(String::new()).code(),
            }
        };
        codes.push((tp, code));
    }
    let mut resp = AlterReplicaLogDirsResponse::default();
    for (tp, code) in codes {
        let pos = resp
            .results
            .iter()
            .position(|r| r.topic_name.as_str() == tp.topic);
        let i = match pos {
            Some(i) => i,
            None => {
                let mut r = AlterReplicaLogDirTopicResult::default();
                r.topic_name = TopicName(StrBytes::from_string(tp.topic.clone()));
                resp.results.push(r);
                resp.results.len() - 1
            }
        };
        let mut pr = AlterReplicaLogDirPartitionResult::default();
        pr.partition_index = tp.partition;
        pr.error_code = code;
        resp.results[i].partitions.push(pr);
    }
    Ok(resp)
}
