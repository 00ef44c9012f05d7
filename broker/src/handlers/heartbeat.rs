//! Heartbeat (API 12, v0-4): keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin.

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse, RequestHeader};

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::group::{codes, coordinator_error};
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    _header: &RequestHeader,
    req: HeartbeatRequest,
) -> Result<HeartbeatResponse> {
    let gid = req.group_id.0.to_string();
    let mut resp = HeartbeatResponse::default();
    if !enforce::allow(ctx, conn, Operation::Read, ResourceType::Group, &gid) {
        resp.error_code = denied_error(ResourceType::Group).code();
        return Ok(resp);
    }
    resp.error_code = match coordinator_error(ctx, &gid) {
        // Kafka answers a heartbeat during loading with NONE.
        Some(codes::COORDINATOR_LOAD_IN_PROGRESS) => codes::NONE,
        Some(code) => code,
        None => ctx.groups.heartbeat(
            &gid,
            req.generation_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
        ),
    };
    Ok(resp)
}
