//! StopReplica (API 5, v0-v4): stop serving partitions, optionally deleting them
//! (Kafka `ReplicaManager.stopReplicas`; rules in `replica::manager`).

use std::sync::Arc;

use kafka_protocol::messages::{RequestHeader, StopReplicaRequest, StopReplicaResponse};

use crate::broker::BrokerContext;
use crate::error::Result;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    header: &RequestHeader,
    req: StopReplicaRequest,
) -> Result<StopReplicaResponse> {
    let rm = ctx.replicas()?.clone();
    rm.observe_controller_epoch(ctx.metadata_cache.controller_epoch());
    let version = header.request_api_version;
    let broker_epoch = ctx.broker_epoch();
    let resp = tokio::task::spawn_blocking(move || rm.stop_replicas(&req, version, broker_epoch))
        .await
        .map_err(|e| crate::error::Error::Internal(format!("StopReplica task failed: {e}")))?;
    Ok(resp)
}
