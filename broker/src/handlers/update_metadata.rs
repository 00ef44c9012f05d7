//! UpdateMetadata (key 6), v0-v8: the controller installs its cluster view in
//! our metadata cache (Kafka `KafkaApis.handleUpdateMetadataRequest`, ZK mode).
//!
//! A broker epoch older than ours → STALE_BROKER_EPOCH; a controller epoch older
//! than the newest we know → STALE_CONTROLLER_EPOCH; otherwise the cache is
//! updated and NONE returned.

use std::sync::Arc;

use kafka_protocol::messages::{RequestHeader, UpdateMetadataRequest, UpdateMetadataResponse};
use kafka_protocol::ResponseError;
use tracing::{debug, warn};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

/// Kafka `AbstractControlRequest.UNKNOWN_BROKER_EPOCH`: the request does not carry one.
pub const UNKNOWN_BROKER_EPOCH: i64 = -1;

/// Kafka `ZkSupport.isBrokerEpochStale` for a ZK controller's request.
pub fn is_broker_epoch_stale(ctx: &BrokerContext, epoch_in_request: i64) -> bool {
    epoch_in_request != UNKNOWN_BROKER_EPOCH && epoch_in_request < ctx.broker_epoch()
}

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: UpdateMetadataRequest,
) -> Result<UpdateMetadataResponse> {
    let mut resp = UpdateMetadataResponse::default();
    if !enforce::cluster(ctx, conn, Operation::ClusterAction) {
        resp.error_code = denied_error(ResourceType::Cluster).code();
        return Ok(resp);
    }
    if is_broker_epoch_stale(ctx, req.broker_epoch) {
        debug!(
            got = req.broker_epoch,
            current = ctx.broker_epoch(),
            "ignoring UpdateMetadata with stale broker epoch"
        );
        resp.error_code = ResponseError::StaleBrokerEpoch.code();
        return Ok(resp);
    }
    match ctx.metadata_cache.apply_checked(
        &req,
        header.request_api_version,
        other_controller_epoch(ctx),
    ) {
        Ok(deleted) => {
            if !deleted.is_empty() {
                debug!(
                    count = deleted.len(),
                    "partitions deleted by UpdateMetadata"
                );
            }
        }
        Err(e) => {
            warn!(controller = req.controller_id.0, "{e}");
            resp.error_code = ResponseError::StaleControllerEpoch.code();
        }
    }
    Ok(resp)
}

/// The controller epoch the replica manager learned from LeaderAndIsr/StopReplica.
fn other_controller_epoch(ctx: &BrokerContext) -> i32 {
    ctx.replica_manager
        .get()
        .map(|rm| rm.controller_epoch())
        .unwrap_or(0)
}
