//! SyncGroup (API 14, v0-5): members wait for the leader's assignment.

use std::sync::Arc;

use kafka_protocol::messages::{RequestHeader, SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::BrokerContext;
use crate::connection::ConnInfo;
use crate::coordinator::group::coordinator_error;
use crate::error::Result;
use crate::security::authorizer::{denied_error, enforce, Operation, ResourceType};

const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;

pub async fn handle(
    ctx: &Arc<BrokerContext>,
    conn: &ConnInfo,
    header: &RequestHeader,
    req: SyncGroupRequest,
) -> Result<SyncGroupResponse> {
    let gid = req.group_id.0.to_string();
    let mut resp = SyncGroupResponse::default();
    // Kafka checks the v5 mandatory fields before authorizing.
    if header.request_api_version >= 5
        && (req.protocol_type.is_none() || req.protocol_name.is_none())
    {
        resp.error_code = INCONSISTENT_GROUP_PROTOCOL;
        return Ok(resp);
    }
    if !enforce::allow(ctx, conn, Operation::Read, ResourceType::Group, &gid) {
        resp.error_code = denied_error(ResourceType::Group).code();
        return Ok(resp);
    }
    if let Some(code) = coordinator_error(ctx, &gid) {
        resp.error_code = code;
        return Ok(resp);
    }
    let r = ctx
        .groups
        .sync(
            &gid,
            req.generation_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.protocol_type.as_deref(),
            req.protocol_name.as_deref(),
            req.assignments
                .iter()
                .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                .collect(),
        )
        .await;
    resp.error_code = r.error;
    resp.protocol_type = r.protocol_type.map(StrBytes::from_string);
    resp.protocol_name = r.protocol_name.map(StrBytes::from_string);
    resp.assignment = r.assignment;
    Ok(resp)
}
