//! StopReplica (API 5, v0-v4): stop serving partitions, optionally deleting them
//! (Kafka `ReplicaManager.stopReplicas`; rules in `replica::manager`).

use std::sync::Arc;

use kafka_protocol::messages::stop_replica_response::StopReplicaPartitionError;
use kafka_protocol::messages::{RequestHeader, StopReplicaRequest, StopReplicaResponse, TopicName};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: StopReplicaRequest,
) -> Result<StopReplicaResponse> {
    if !enforce::cluster(ctx, conn, Operation::ClusterAction) {
        return Ok(denied(&req));
    }
    let rm = ctx.replicas()?.clone();
    rm.observe_controller_epoch(ctx.metadata_cache.controller_epoch());
    let version = header.request_api_version;
    let broker_epoch = ctx.broker_epoch();
    let resp = tokio::task::spawn_blocking(move || rm.stop_replicas(&req, version, broker_epoch))
        .await
        .map_err(|e| crate::error::Error::Internal(format!("StopReplica task failed: {e}")))?;
    Ok(resp)
}

/// Without CLUSTER_ACTION: every partition carries CLUSTER_AUTHORIZATION_FAILED (Kafka's
/// `StopReplicaRequest.getErrorResponse`). Only one of the three layouts is filled per version.
fn denied(req: &StopReplicaRequest) -> StopReplicaResponse {
    let code = denied_error(ResourceType::Cluster).code();
    let mut resp = StopReplicaResponse::default();
    resp.error_code = code;
    let mut push = |topic: &TopicName, partition: i32| {
        let mut e = StopReplicaPartitionError::default();
        e.topic_name = topic.clone();
        e.partition_index = partition;
        e.error_code = code;
        resp.partition_errors.push(e);
    };
    for p in &req.ungrouped_partitions {
        push(&p.topic_name, p.partition_index);
    }
    for t in &req.topics {
        for p in &t.partition_indexes {
            push(&t.name, *p);
        }
    }
    for t in &req.topic_states {
        for p in &t.partition_states {
            push(&t.topic_name, p.partition_index);
        }
    }
    resp
}
